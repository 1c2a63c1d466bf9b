package awsregistry_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/store/awsregistry"
	"github.com/vaxpass/vaxpass/shared/testkit/awstest"
	"github.com/vaxpass/vaxpass/shared/tool/registry"
	"github.com/vaxpass/vaxpass/shared/tool/synth"
)

// openTable creates a fresh registry table in the emulator (the test is skipped without one).
func openTable(t *testing.T) (*awsregistry.Registry, *dynamodb.Client) {
	t.Helper()
	cfg := awstest.Config(t)
	client := dynamodb.NewFromConfig(cfg)
	name := awstest.UniqueName(t, "reg")
	if err := awsregistry.CreateTable(context.Background(), client, name); err != nil {
		t.Fatal(err)
	}
	awstest.DeleteTablesAtCleanup(t, client, name)
	reg, err := awsregistry.New(client, name)
	if err != nil {
		t.Fatal(err)
	}
	return reg, client
}

// synthetic returns a generated registry extract read into memory: the reference the
// DynamoDB registry must answer like.
func synthetic(t *testing.T, people int) *registry.Memory {
	t.Helper()
	dir := t.TempDir()
	if _, err := synth.WriteDir(context.Background(), dir, synth.Config{People: people, Records: 1, Seed: 7}, nil); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(dir, synth.RegistryFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	mem, _, err := registry.LoadMemory(f, func(err error) { t.Fatalf("synthetic registry line rejected: %v", err) }, nil)
	if err != nil {
		t.Fatal(err)
	}
	return mem
}

func sameNameIDs(t *testing.T, r match.Registry, key string, year int) []string {
	t.Helper()
	var ids []string
	if err := r.SameName(key, year, func(p match.Person) bool { ids = append(ids, p.IDNumber); return true }); err != nil {
		t.Fatal(err)
	}
	slices.Sort(ids)
	return ids
}

// TestAnswersLikeTheMemoryRegistry loads a generated extract and checks every person's
// Lookup and every (name key, birth year) group against the in-memory registry.
func TestAnswersLikeTheMemoryRegistry(t *testing.T) {
	reg, _ := openTable(t)
	mem := synthetic(t, 300)
	n, err := reg.Load(context.Background(), mem.All)
	if err != nil {
		t.Fatal(err)
	}
	if n != mem.Len() {
		t.Fatalf("loaded %d people, the extract has %d", n, mem.Len())
	}
	groups := map[string]int{}
	for p := range mem.All {
		got, found, err := reg.Lookup(p.IDNumber)
		if err != nil || !found {
			t.Fatalf("Lookup(%s) = found %v, err %v", p.IDNumber, found, err)
		}
		if got != p {
			t.Errorf("Lookup(%s) = %+v, want %+v", p.IDNumber, got, p)
		}
		year, _ := strconv.Atoi(p.DOB[:4])
		groups[p.NameKey+"|"+p.DOB[:4]] = year
	}
	for k, year := range groups {
		key := k[:len(k)-5]
		if got, want := sameNameIDs(t, reg, key, year), sameNameIDs(t, mem, key, year); !slices.Equal(got, want) {
			t.Errorf("SameName(%q, %d) = %v, want %v", key, year, got, want)
		}
	}
	for _, id := range []string{"", "001099000000", "abc"} {
		if _, found, err := reg.Lookup(id); found || err != nil {
			t.Errorf("Lookup(%q) = found %v, err %v; want not found", id, found, err)
		}
	}
	if ids := sameNameIDs(t, reg, "no such name", 1990); len(ids) != 0 {
		t.Errorf("SameName of an unknown name = %v", ids)
	}
}

// TestLoadReplaces: a reload replaces a person (their old name group no longer lists them),
// the last of two lines with one ID wins, and an invalid person stops the load.
func TestLoadReplaces(t *testing.T) {
	reg, _ := openTable(t)
	ctx := context.Background()
	mem := synthetic(t, 3)
	var first match.Person
	for p := range mem.All {
		first = p
		break
	}
	if _, err := reg.Load(ctx, mem.All); err != nil {
		t.Fatal(err)
	}
	oldYear, _ := strconv.Atoi(first.DOB[:4])

	renamed := first
	renamed.FullName = "Trần Thị Bích Ngọc"
	between := first
	between.FullName = "Lê Văn Tám"
	if _, err := reg.Load(ctx, slices.Values([]match.Person{between, renamed})); err != nil {
		t.Fatal(err)
	}
	got, found, err := reg.Lookup(first.IDNumber)
	if err != nil || !found || got.FullName != renamed.FullName {
		t.Fatalf("after reload Lookup = %+v (found %v, err %v), want the name %q", got, found, err, renamed.FullName)
	}
	if slices.Contains(sameNameIDs(t, reg, first.NameKey, oldYear), first.IDNumber) {
		t.Errorf("the old name group still lists the renamed person")
	}
	if !slices.Contains(sameNameIDs(t, reg, got.NameKey, oldYear), first.IDNumber) {
		t.Errorf("the new name group does not list the renamed person")
	}

	bad := first
	bad.DOB = "1990-13-01"
	_, err = reg.Load(ctx, slices.Values([]match.Person{bad}))
	if !errors.Is(err, registry.ErrPerson) {
		t.Fatalf("loading an invalid person: err = %v, want registry.ErrPerson", err)
	}
}

func TestNewRequiresTable(t *testing.T) {
	if _, err := awsregistry.New(nil, "t"); !errors.Is(err, awsregistry.ErrConfig) {
		t.Errorf("nil client: %v", err)
	}
	if _, err := awsregistry.New(&dynamodb.Client{}, ""); !errors.Is(err, awsregistry.ErrConfig) {
		t.Errorf("no table: %v", err)
	}
}
