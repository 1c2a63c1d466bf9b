package admin

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/store/awsregistry"
	"github.com/vaxpass/vaxpass/shared/testkit/awstest"
	"github.com/vaxpass/vaxpass/shared/tool/registry"
	"github.com/vaxpass/vaxpass/shared/tool/synth"
)

// interrupting passes puts to the registry until `after` people were put, then ends the
// load's context (Ctrl-C) and fails.
type interrupting struct {
	*awsregistry.Registry
	after  int64
	put    atomic.Int64
	cancel func()
}

func (i *interrupting) Put(ctx context.Context, people []match.Person) (int, error) {
	if i.put.Add(int64(len(people))) > i.after {
		i.cancel()
		return 0, context.Canceled
	}
	return i.Registry.Put(ctx, people)
}

// The registry load of a generated extract into a registry table on the emulator, with 4
// writers: interrupted in the middle, then run again, it resumes at its checkpoint; the
// table then holds exactly the extract's people (counted), each as the file has them.
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
	dir := t.TempDir()
	if _, err := synth.WriteDir(ctx, dir, synth.Config{People: 3000, Records: 1, Seed: 11}, nil); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, synth.RegistryFile)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	mem, _, err := registry.LoadMemory(f, func(err error) { t.Fatalf("synthetic line rejected: %v", err) }, nil)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}

	stop, cancel := context.WithCancel(ctx)
	defer cancel()
	first := &interrupting{Registry: reg, after: 1700, cancel: cancel}
	if _, err := LoadRegistryInto(stop, first, path, LoadOptions{Writers: 4, ChunkRecords: 250}); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted load: %v", err)
	}
	cp := readCP(t, dir)
	if cp.Records == 0 || cp.Records >= 3000 {
		t.Fatalf("checkpoint after the interruption: %+v", cp)
	}
	res, err := LoadRegistryInto(ctx, reg, path, LoadOptions{Writers: 4, ChunkRecords: 250})
	if err != nil {
		t.Fatal(err)
	}
	if res.ResumedAt != cp.Records || res.Loaded != int64(mem.Len()) || res.Rejected != 0 || res.Records != 3000 {
		t.Errorf("resumed load: %+v, want resumed at %d, %d loaded", res, cp.Records, mem.Len())
	}
	if n := countItems(t, client, table); n != mem.Len() {
		t.Errorf("the table holds %d people, the extract %d", n, mem.Len())
	}
	for p := range mem.All {
		got, found, err := reg.Lookup(p.IDNumber)
		if err != nil || !found || got != p {
			t.Fatalf("Lookup(%s) = %+v, %v, %v; want %+v", p.IDNumber, got, found, err, p)
		}
	}
}

// countItems counts a table's items with a paged Scan (Select COUNT).
func countItems(t *testing.T, client *dynamodb.Client, table string) int {
	t.Helper()
	n := 0
	in := &dynamodb.ScanInput{TableName: aws.String(table), Select: types.SelectCount}
	for {
		out, err := client.Scan(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		n += int(out.Count)
		if len(out.LastEvaluatedKey) == 0 {
			return n
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}
