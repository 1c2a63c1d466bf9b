package admin

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/vaxpass/vaxpass/shared/store/awsregistry"
	"github.com/vaxpass/vaxpass/shared/testkit/awstest"
)

// The registry load against a registry table on the emulator: interrupted after two
// batches (the context ends, as for Ctrl-C), then run again, it resumes at its checkpoint
// and every person is in the table.
func TestLoadRegistryIntoTheTableOnEmulator(t *testing.T) {
	cfg := awstest.Config(t)
	ctx := context.Background()
	client := dynamodb.NewFromConfig(cfg)
	table := awstest.UniqueName(t, "registry")
	awstest.DeleteTablesAtCleanup(t, client, table)
	if err := awsregistry.CreateTable(ctx, client, table); err != nil {
		t.Fatal(err)
	}
	reg, err := awsregistry.New(client, table)
	if err != nil {
		t.Fatal(err)
	}
	path, ids := extract(t, t.TempDir(), 120, map[int]bool{7: true})

	stop, cancel := context.WithCancel(ctx)
	defer cancel()
	batches := 0
	_, err = LoadRegistryInto(stop, reg, path, LoadOptions{BatchSize: 30, Progress: func(LoadProgress) {
		if batches++; batches == 2 {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted load: %v", err)
	}
	res, err := LoadRegistryInto(ctx, reg, path, LoadOptions{BatchSize: 30})
	if err != nil {
		t.Fatal(err)
	}
	if res.ResumedAt != 61 || res.Loaded != int64(len(ids)) || res.Rejected != 1 || res.Records != 120 {
		t.Errorf("resumed load: %+v, want resumed at record 61, %d loaded, 1 rejected", res, len(ids))
	}
	for _, id := range ids {
		if _, found, err := reg.Lookup(id); err != nil || !found {
			t.Fatalf("person %s not in the registry table after the resumed load (%v)", id, err)
		}
	}
}
