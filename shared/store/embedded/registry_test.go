package embedded

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/domain/vnname"
	"github.com/vaxpass/vaxpass/shared/tool/registry"
	"github.com/vaxpass/vaxpass/shared/tool/registry/registrytest"
)

func openTest(t testing.TB) *DB {
	t.Helper()
	db, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func sameName(t *testing.T, r match.Registry, name string, year int) []string {
	t.Helper()
	var ids []string
	if err := r.SameName(vnname.Key(name), year, func(p match.Person) bool {
		ids = append(ids, p.IDNumber)
		return true
	}); err != nil {
		t.Fatal(err)
	}
	return ids
}

func TestRegistry(t *testing.T) {
	db := openTest(t)
	reg := db.Registry()
	people := []match.Person{
		{IDNumber: "001 088 012 345", FullName: "Nguyễn  Văn An", DOB: "1988-04-02", Gender: "male"},
		{IDNumber: "001188012345", FullName: "Nguyễn Thị An", DOB: "1988-05-02", Gender: "female"},
		{IDNumber: "123456789", FullName: "Nguyen Van An", DOB: "1988-01-01", Gender: "male"},
	}
	st, err := db.LoadRegistry(context.Background(), slices.Values(people))
	if err != nil {
		t.Fatal(err)
	}
	if st != (RegistryLoadStats{Added: 3}) {
		t.Errorf("first load %+v", st)
	}
	p, ok, err := reg.Lookup("001088012345")
	if err != nil || !ok || p != (match.Person{IDNumber: "001088012345", FullName: "Nguyễn Văn An", DOB: "1988-04-02", Gender: "male", NameKey: "nguyen van an"}) {
		t.Fatalf("Lookup: %+v %v %v", p, ok, err)
	}
	if _, ok, err := reg.Lookup("001088012346"); ok || err != nil {
		t.Errorf("Lookup of an unknown ID: %v %v", ok, err)
	}
	if got := sameName(t, reg, "NGUYỄN VĂN AN", 1988); !slices.Equal(got, []string{"001088012345", "123456789"}) {
		t.Errorf("SameName: %v", got)
	}
	if got := sameName(t, reg, "Nguyen Van An", 1989); got != nil {
		t.Errorf("SameName other year: %v", got)
	}

	// Idempotent: the same people again change nothing.
	st, err = db.LoadRegistry(context.Background(), slices.Values(people))
	if err != nil || st != (RegistryLoadStats{Unchanged: 3}) {
		t.Errorf("second load %+v %v", st, err)
	}
	// A re-load updates: the name index follows the new name.
	st, err = db.LoadRegistry(context.Background(), slices.Values([]match.Person{
		{IDNumber: "001088012345", FullName: "Nguyễn Văn Anh", DOB: "1988-04-02", Gender: "male"},
	}))
	if err != nil || st != (RegistryLoadStats{Updated: 1}) {
		t.Errorf("update load %+v %v", st, err)
	}
	if got := sameName(t, reg, "Nguyen Van An", 1988); !slices.Equal(got, []string{"123456789"}) {
		t.Errorf("SameName old name after update: %v", got)
	}
	if got := sameName(t, reg, "Nguyen Van Anh", 1988); !slices.Equal(got, []string{"001088012345"}) {
		t.Errorf("SameName new name after update: %v", got)
	}
	if n, err := reg.Count(); n != 3 || err != nil {
		t.Errorf("Count %d %v", n, err)
	}

	// The state survives a reopen.
	dir := db.Path()[:len(db.Path())-len(FileName)-1]
	db.Close()
	db2, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	if p, ok, _ := db2.Registry().Lookup("001088012345"); !ok || p.FullName != "Nguyễn Văn Anh" {
		t.Errorf("after reopen: %+v %v", p, ok)
	}
}

func TestLoadRegistryRejects(t *testing.T) {
	db := openTest(t)
	bad := []match.Person{
		{IDNumber: "001088012345", FullName: "Nguyễn Văn An", DOB: "1988-04-02", Gender: "male"},
		{IDNumber: "001088012345", FullName: "Nguyễn Văn An", DOB: "1988", Gender: "male"},
	}
	_, err := db.LoadRegistry(context.Background(), slices.Values(bad))
	var pe *registry.PersonError
	if !errors.Is(err, registry.ErrPerson) || !errors.As(err, &pe) || pe.Field != "dob" {
		t.Errorf("LoadRegistry of a partial dob: %v", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := db.LoadRegistry(ctx, slices.Values(bad[:1])); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled load: %v", err)
	}
}

// TestRegistryAgreesWithMemory loads one population into both registries and checks that
// they answer every lookup and candidate query alike, and that the matcher gives the same
// results over both; the batch boundary is crossed.
func TestRegistryAgreesWithMemory(t *testing.T) {
	pop := registrytest.Population(LoadBatchSize+2000, 3)
	db := openTest(t)
	st, err := db.LoadRegistry(context.Background(), slices.Values(pop))
	if err != nil || st.Added != len(pop) {
		t.Fatalf("load %+v %v", st, err)
	}
	mem := registry.NewMemory(len(pop))
	for _, p := range pop {
		mem.Add(p)
	}
	now := func() time.Time { return time.Date(2022, 6, 1, 0, 0, 0, 0, time.UTC) }
	onDisk := &match.Matcher{Registry: db.Registry(), Now: now}
	inMemory := &match.Matcher{Registry: mem, Now: now}
	for _, r := range registrytest.Records(pop, 3000, 4) {
		a, errA := onDisk.Match(r)
		b, errB := inMemory.Match(r)
		if errA != nil || errB != nil {
			t.Fatal(errA, errB)
		}
		if a.Status != b.Status || !slices.Equal(a.Reasons, b.Reasons) || len(a.Corrected) != len(b.Corrected) || !slices.Equal(a.Candidates, b.Candidates) {
			t.Fatalf("record %+v: bbolt %+v, memory %+v", r, a, b)
		}
	}
}

func BenchmarkLoadRegistry(b *testing.B) {
	pop := registrytest.Population(100_000, 5)
	for b.Loop() {
		b.StopTimer()
		db, err := Open(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := db.LoadRegistry(context.Background(), slices.Values(pop)); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		db.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(len(pop)*b.N)/b.Elapsed().Seconds(), "people/s")
}

func BenchmarkLookup(b *testing.B) {
	pop := registrytest.Population(100_000, 5)
	db := openTest(b)
	if _, err := db.LoadRegistry(context.Background(), slices.Values(pop)); err != nil {
		b.Fatal(err)
	}
	reg := db.Registry()
	i := 0
	for b.Loop() {
		if _, ok, _ := reg.Lookup(pop[i%len(pop)].IDNumber); !ok {
			b.Fatal("not found")
		}
		i++
	}
}
