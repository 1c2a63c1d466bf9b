package registry

import (
	"errors"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/domain/vnname"
	"github.com/vaxpass/vaxpass/shared/tool/registry/registrytest"
)

func sameName(t *testing.T, r match.Registry, name string, year int) []string {
	t.Helper()
	var ids []string
	if err := r.SameName(vnname.Key(name), year, func(p match.Person) bool {
		ids = append(ids, p.IDNumber)
		return true
	}); err != nil {
		t.Fatal(err)
	}
	slices.Sort(ids)
	return ids
}

func TestMemory(t *testing.T) {
	m := NewMemory(0)
	add := func(id, name, dob, gender string) bool {
		t.Helper()
		replaced, err := m.Add(match.Person{IDNumber: id, FullName: name, DOB: dob, Gender: gender})
		if err != nil {
			t.Fatal(err)
		}
		return replaced
	}
	add("001088012345", "Nguyễn Văn An", "1988-04-02", "male")
	add("001188012345", "Nguyễn Thị An", "1988-05-02", "female")
	add("000000001", "Nguyen Van An", "1988-01-01", "male")    // 9 digits...
	add("001000000001", "Nguyen Van An", "1900-01-01", "male") // ...and 12 digits with the same value
	if m.Len() != 4 {
		t.Fatalf("Len %d", m.Len())
	}

	p, ok, err := m.Lookup("001088012345")
	if err != nil || !ok || p.FullName != "Nguyễn Văn An" || p.DOB != "1988-04-02" || p.Gender != "male" ||
		p.NameKey != "nguyen van an" || p.IDNumber != "001088012345" {
		t.Fatalf("Lookup: %+v %v %v", p, ok, err)
	}
	if p, ok, _ := m.Lookup("000000001"); !ok || p.DOB != "1988-01-01" {
		t.Errorf("9-digit lookup: %+v %v", p, ok)
	}
	for _, id := range []string{"001088012346", "00108801234", "", "00108801234x", "1"} {
		if _, ok, err := m.Lookup(id); ok || err != nil {
			t.Errorf("Lookup(%q) = %v, %v", id, ok, err)
		}
	}

	if got := sameName(t, m, "NGUYỄN VĂN AN", 1988); !slices.Equal(got, []string{"000000001", "001088012345"}) {
		t.Errorf("SameName 1988: %v", got)
	}
	if got := sameName(t, m, "Nguyen Van An", 1900); !slices.Equal(got, []string{"001000000001"}) {
		t.Errorf("SameName 1900: %v", got)
	}

	// A re-load replaces: the old name no longer finds the person, the new one does.
	if !add("001088012345", "Nguyễn Văn Anh", "1988-04-02", "male") {
		t.Error("update not reported as a replacement")
	}
	if m.Len() != 4 {
		t.Errorf("Len after update %d", m.Len())
	}
	if got := sameName(t, m, "Nguyen Van An", 1988); !slices.Equal(got, []string{"000000001"}) {
		t.Errorf("SameName after update: %v", got)
	}
	if got := sameName(t, m, "Nguyen Van Anh", 1988); !slices.Equal(got, []string{"001088012345"}) {
		t.Errorf("SameName new name: %v", got)
	}

	// visit returning false stops the walk.
	n := 0
	m.SameName("nguyen van an", 1988, func(match.Person) bool { n++; return false })
	if n != 1 {
		t.Errorf("visit called %d times after returning false", n)
	}
}

func TestMemoryRejects(t *testing.T) {
	m := NewMemory(0)
	for _, p := range []match.Person{
		{IDNumber: "0010880123", FullName: "A", DOB: "1988-04-02", Gender: "male"},
		{IDNumber: "001088012345", FullName: " ", DOB: "1988-04-02", Gender: "male"},
		{IDNumber: "001088012345", FullName: "A", DOB: "1988", Gender: "male"},
		{IDNumber: "001088012345", FullName: "A", DOB: "1988-04-02", Gender: "Male"},
		{IDNumber: "001088012345", FullName: strings.Repeat("a", maxText), DOB: "1988-04-02", Gender: "male"},
		{IDNumber: "001088012345", FullName: "A\x00", DOB: "1988-04-02", Gender: "male"},
		{IDNumber: "001088012345", FullName: "A", DOB: "1988-04-02", Gender: "female"}, // digit 4 says male
		{IDNumber: "001088012345", FullName: "A", DOB: "1989-04-02", Gender: "male"},   // digits 5-6 say 88
	} {
		if _, err := m.Add(p); !errors.Is(err, ErrPerson) {
			t.Errorf("Add(%.40v) = %v, want ErrPerson", p, err)
		}
	}
}

func TestMemoryConcurrentReaders(t *testing.T) {
	pop := registrytest.Population(20000, 7)
	m := NewMemory(len(pop))
	for _, p := range pop {
		if _, err := m.Add(p); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := w; i < len(pop); i += 4 {
				p := pop[i]
				got, ok, _ := m.Lookup(p.IDNumber)
				if !ok || got.FullName != p.FullName {
					t.Errorf("Lookup(%s) = %+v, %v", p.IDNumber, got, ok)
					return
				}
				found := false
				m.SameName(p.NameKey, dobYear(p.DOB), func(q match.Person) bool {
					found = q.IDNumber == p.IDNumber
					return !found
				})
				if !found {
					t.Errorf("SameName misses %s", p.IDNumber)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestLoadMemory(t *testing.T) {
	file := "id_number,full_name,dob,gender\n" +
		"001088012345,Nguyễn Văn An,1988-04-02,male\n" +
		"bad,Nguyễn Văn An,1988-04-02,male\n" +
		"001088012345,Nguyễn Văn Anh,1988-04-02,male\n"
	var rejected []error
	m, st, err := LoadMemory(strings.NewReader(file), func(err error) { rejected = append(rejected, err) }, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st != (LoadStats{Loaded: 2, Replaced: 1, Rejected: 1}) || m.Len() != 1 || len(rejected) != 1 {
		t.Fatalf("stats %+v, len %d, rejected %v", st, m.Len(), rejected)
	}
	if p, _, _ := m.Lookup("001088012345"); p.FullName != "Nguyễn Văn Anh" {
		t.Errorf("later line did not win: %+v", p)
	}
	if _, _, err := LoadMemory(strings.NewReader("a,b\n"), nil, nil); !errors.Is(err, ErrHeader) {
		t.Errorf("bad header: %v", err)
	}
}

// BenchmarkMemoryLoad reports the heap a 1,000,000-person registry takes, per person.
func BenchmarkMemoryLoad(b *testing.B) {
	pop := registrytest.Population(1_000_000, 1)
	for b.Loop() {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		m := NewMemory(0)
		for _, p := range pop {
			m.Add(p)
		}
		m.buildIndex()
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(m.Len()), "bytes/person")
		runtime.KeepAlive(m)
	}
}
