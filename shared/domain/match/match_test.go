package match

import (
	"errors"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/domain/dose"
	"github.com/vaxpass/vaxpass/shared/domain/vnname"
	"golang.org/x/text/unicode/norm"
)

// fakeRegistry is a map; SameName scans it (the real registries index).
type fakeRegistry struct {
	people map[string]Person
	err    error
}

func newFake(people ...Person) *fakeRegistry {
	f := &fakeRegistry{people: map[string]Person{}}
	for _, p := range people {
		p.NameKey = vnname.Key(p.FullName) // as the real registries precompute it
		f.people[p.IDNumber] = p
	}
	return f
}

func (f *fakeRegistry) Lookup(id string) (Person, bool, error) {
	if f.err != nil {
		return Person{}, false, f.err
	}
	p, ok := f.people[id]
	return p, ok, nil
}

func (f *fakeRegistry) SameName(key string, year int, visit func(Person) bool) error {
	if f.err != nil {
		return f.err
	}
	for _, id := range slices.Sorted(maps.Keys(f.people)) {
		p := f.people[id]
		d, _ := dose.ParsePartialDate(p.DOB)
		if vnname.Key(p.FullName) == key && d.Year == year && !visit(p) {
			break
		}
	}
	return nil
}

var (
	an    = Person{IDNumber: "001088012345", FullName: "Nguyễn Văn An", DOB: "1988-04-02", Gender: "male"}
	hong  = Person{IDNumber: "079190000123", FullName: "Đặng Thị Hồng", DOB: "1990-12-31", Gender: "female"}
	binh  = Person{IDNumber: "123456789", FullName: "Trần Văn Bình", DOB: "1975-06-15", Gender: "male"}
	mai1  = Person{IDNumber: "001195000001", FullName: "Lê Thị Mai", DOB: "1995-03-10", Gender: "female"}
	mai2  = Person{IDNumber: "001195000002", FullName: "Lê Thị Mai", DOB: "1995-07-21", Gender: "female"}
	mai3  = Person{IDNumber: "001095000003", FullName: "Lê Thị Mai", DOB: "1995-03-10", Gender: "male"}
	mai96 = Person{IDNumber: "002196000004", FullName: "Le Thi Mai", DOB: "1996-03-10", Gender: "female"}
)

func testMatcher(reg Registry) *Matcher {
	return &Matcher{Registry: reg, Now: func() time.Time { return time.Date(2022, 6, 1, 0, 0, 0, 0, time.UTC) }}
}

func rec(id, name, dob, gender string) dose.Record {
	return dose.Record{SourceID: "s1", IDNumber: id, FullName: name, DOB: dob, Gender: gender}
}

func TestMatch(t *testing.T) {
	m := testMatcher(newFake(an, hong, binh, mai1, mai2, mai3, mai96))
	tests := []struct {
		name       string
		r          dose.Record
		status     Status
		reasons    []string
		corrected  map[string]string
		candidates []string // ID numbers, best first
	}{
		{"exact", rec("001088012345", "Nguyễn Văn An", "1988-04-02", "male"), Verified, nil, nil, nil},
		{"NFD name", rec("001088012345", norm.NFD.String("Nguyễn Văn An"), "1988-04-02", "male"), Verified, nil,
			map[string]string{"full_name": "Nguyễn Văn An"}, nil},
		{"no diacritics", rec("001088012345", "Nguyen Van An", "1988-04-02", "male"), Verified, nil,
			map[string]string{"full_name": "Nguyễn Văn An"}, nil},
		{"upper case, doubled spaces", rec("001088012345", " NGUYỄN  VĂN   AN ", "1988-04-02", "male"), Verified, nil,
			map[string]string{"full_name": "Nguyễn Văn An"}, nil},
		{"D for Đ", rec("079190000123", "Dang Thi Hong", "1990-12-31", "female"), Verified, nil,
			map[string]string{"full_name": "Đặng Thị Hồng"}, nil},
		{"ID with spaces", rec("001 088 012 345", "Nguyễn Văn An", "1988-04-02", "male"), Verified, nil,
			map[string]string{"id_number": "001088012345"}, nil},
		{"ID with dots", rec("001.088.012.345", "Nguyễn Văn An", "1988-04-02", "male"), Verified, nil,
			map[string]string{"id_number": "001088012345"}, nil},
		{"year-only dob", rec("001088012345", "Nguyễn Văn An", "1988", "male"), Verified, nil,
			map[string]string{"dob": "1988-04-02"}, nil},
		{"year-month dob", rec("001088012345", "Nguyen Van An", "1988-04", "male"), Verified, nil,
			map[string]string{"dob": "1988-04-02", "full_name": "Nguyễn Văn An"}, nil},
		{"gender in capitals", rec("001088012345", "Nguyễn Văn An", "1988-04-02", "Male"), Verified, nil,
			map[string]string{"gender": "male"}, nil},
		{"9-digit CMND found", rec("123 456 789", "Tran Van Binh", "1975-06-15", "male"), Verified, nil,
			map[string]string{"id_number": "123456789", "full_name": "Trần Văn Bình"}, nil},

		{"wrong name", rec("001088012345", "Nguyễn Văn Anh", "1988-04-02", "male"), Mismatch, []string{"NAME"}, nil, nil},
		{"wrong day", rec("001088012345", "Nguyễn Văn An", "1988-04-03", "male"), Mismatch, []string{"DOB"}, nil, nil},
		{"wrong month, partial dob", rec("001088012345", "Nguyễn Văn An", "1988-05", "male"), Mismatch, []string{"DOB"}, nil, nil},
		{"unreadable dob", rec("001088012345", "Nguyễn Văn An", "02/04/1988", "male"), Mismatch, []string{"DOB"}, nil, nil},
		{"gender contradicting ID digit, ID in registry", rec("001088012345", "Nguyễn Văn An", "1988-04-02", "female"),
			Mismatch, []string{"GENDER"}, nil, nil},
		{"birth year contradicting ID digits, ID in registry", rec("001088012345", "Nguyễn Văn An", "1989-04-02", "male"),
			Mismatch, []string{"DOB"}, nil, nil},
		{"century contradicting ID digit, ID in registry", rec("001088012345", "Nguyễn Văn An", "2088", "male"),
			Mismatch, []string{"DOB"}, nil, nil},
		{"everything wrong", rec("001088012345", "Trần Thị B", "1970", "female"), Mismatch, []string{"NAME", "DOB", "GENDER"}, nil, nil},
		{"9-digit CMND, wrong gender", rec("123456789", "Trần Văn Bình", "1975-06-15", "female"), Mismatch, []string{"GENDER"}, nil, nil},

		{"no ID", rec("", "Le Thi Mai", "1995-03-10", "female"), NoID, nil, nil,
			[]string{"001195000001", "001095000003", "001195000002"}},
		{"blank ID", rec("  ", "Lê Thị Mai", "1995", "female"), NoID, nil, nil,
			[]string{"001195000001", "001195000002", "001095000003"}},
		{"no ID, nobody of that name", rec("", "Hoàng Văn Z", "1995", "male"), NoID, nil, nil, nil},

		{"11 digits", rec("00108801234", "Nguyễn Văn An", "1988", "male"), InvalidID, []string{"ID_LENGTH"}, nil, []string{"001088012345"}},
		{"13 digits", rec("0010880123456", "Nguyễn Văn An", "1988", "male"), InvalidID, []string{"ID_LENGTH"}, nil, []string{"001088012345"}},
		{"letters", rec("00108801234O", "Nguyễn Văn An", "1988", "male"), InvalidID, []string{"ID_CHARACTERS"}, nil, []string{"001088012345"}},
		{"unknown province", rec("003088012345", "Nguyen Van An", "1988-04-02", "male"), InvalidID, []string{"ID_PROVINCE"}, nil, []string{"001088012345"}},
		{"invalid ID still gets candidates", rec("0011950000", "Lê Thị Mai", "1995-07-21", "female"), InvalidID, []string{"ID_LENGTH"}, nil,
			[]string{"001195000002", "001195000001", "001095000003"}},
		{"not in registry, gender digit contradicts", rec("001088099999", "Nguyễn Văn An", "1988", "female"),
			InvalidID, []string{"ID_GENDER_CENTURY"}, nil, []string{"001088012345"}},
		{"not in registry, century digit contradicts", rec("001088099999", "Nguyễn Văn An", "2088", "male"),
			InvalidID, []string{"ID_GENDER_CENTURY"}, nil, nil},
		{"not in registry, birth-year digits contradict", rec("001088099999", "Nguyễn Văn An", "1987-01-01", "male"),
			InvalidID, []string{"ID_BIRTH_YEAR"}, nil, nil},
		{"not in registry, both contradict", rec("001088099999", "Nguyễn Văn An", "1987", "female"),
			InvalidID, []string{"ID_GENDER_CENTURY", "ID_BIRTH_YEAR"}, nil, nil},
		{"encoded birth year in the future", rec("001299000001", "Nguyễn Văn An", "1999", "male"),
			InvalidID, []string{"ID_BIRTH_YEAR"}, nil, nil},

		{"not in registry, consistent", rec("001195999999", "Le Thi Mai", "1995-03", "female"), NotFound, nil, nil,
			[]string{"001195000001", "001195000002", "001095000003"}},
		{"not in registry, unknown gender not held against digits", rec("001088099999", "Nguyễn Văn An", "1988", "x"),
			NotFound, nil, nil, []string{"001088012345"}},
		{"9-digit CMND not found", rec("987654321", "Trần Văn Bình", "1975-06-15", "female"), NotFound, nil, nil, []string{"123456789"}},
		{"9-digit CMND not found, nobody of that name", rec("987654321", "Trần Văn C", "1975-06-15", "female"), NotFound, nil, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := m.Match(tt.r)
			if err != nil {
				t.Fatal(err)
			}
			if res.Status != tt.status {
				t.Fatalf("status %s, want %s (%+v)", res.Status, tt.status, res)
			}
			if res.Reasons == nil || !slices.Equal(res.Reasons, tt.reasons) && len(res.Reasons)+len(tt.reasons) > 0 {
				t.Errorf("reasons %#v, want %v", res.Reasons, tt.reasons)
			}
			if !maps.Equal(res.Corrected, tt.corrected) {
				t.Errorf("corrected %v, want %v", res.Corrected, tt.corrected)
			}
			var ids []string
			for _, c := range res.Candidates {
				ids = append(ids, c.IDNumber)
			}
			if !slices.Equal(ids, tt.candidates) {
				t.Errorf("candidates %v, want %v", ids, tt.candidates)
			}
		})
	}
}

func TestCandidateScores(t *testing.T) {
	m := testMatcher(newFake(mai1, mai2, mai3, mai96))
	tests := []struct {
		dob, gender string
		want        []float64
	}{
		{"1995-03-10", "female", []float64{1.0, 0.5, 0.5}},
		{"1995-03", "female", []float64{0.9, 0.5, 0.45}},
		{"1995", "female", []float64{0.8, 0.8, 0.4}},
		{"1995", "male", []float64{0.8, 0.4, 0.4}},
		{"1997", "female", nil},
		{"not a date", "female", nil},
	}
	for _, tt := range tests {
		got, err := m.Candidates("LÊ THỊ MAI", tt.dob, tt.gender)
		if err != nil {
			t.Fatal(err)
		}
		var scores []float64
		for _, c := range got {
			scores = append(scores, c.Score)
		}
		if !slices.Equal(scores, tt.want) {
			t.Errorf("%s %s: scores %v, want %v", tt.dob, tt.gender, scores, tt.want)
		}
	}

	m.MaxCandidates = 1
	if got, _ := m.Candidates("Le Thi Mai", "1995", "male"); len(got) != 1 || got[0].IDNumber != mai3.IDNumber {
		t.Errorf("limit 1: %+v", got)
	}
	m.MaxCandidates = -1
	if got, _ := m.Candidates("Le Thi Mai", "1995", "male"); got != nil {
		t.Errorf("limit -1: %+v", got)
	}
}

func TestRegistryError(t *testing.T) {
	boom := errors.New("disk on fire")
	f := newFake(an)
	f.err = boom
	m := testMatcher(f)
	for _, r := range []dose.Record{rec("001088012345", "Nguyễn Văn An", "1988", "male"), rec("", "Nguyễn Văn An", "1988", "male")} {
		res, err := m.Match(r)
		if !errors.Is(err, ErrRegistry) || !errors.Is(err, boom) {
			t.Errorf("Match(%q) error = %v, want ErrRegistry wrapping the cause", r.IDNumber, err)
		}
		if r.IDNumber != "" && res.Status != Pending {
			t.Errorf("status %s on a registry failure, want PENDING", res.Status)
		}
	}
}

func TestMatchAllocations(t *testing.T) {
	m := testMatcher(newFake(an))
	r := rec("001088012345", "Nguyễn Văn An", "1988-04-02", "male")
	if n := testing.AllocsPerRun(100, func() { _, _ = m.Match(r) }); n != 0 {
		t.Errorf("a clean VERIFIED match allocates %v times, want 0", n)
	}
}

func FuzzMatch(f *testing.F) {
	m := testMatcher(newFake(an, hong, binh, mai1, mai2, mai3))
	f.Add("001088012345", "Nguyễn Văn An", "1988-04-02", "male")
	f.Add("001 088 012 345", "NGUYEN VAN AN", "1988", "male")
	f.Add("", "Le Thi Mai", "1995", "female")
	f.Add("00108801234A", "x", "1995-13", "y")
	f.Add("123456789", "Trần Văn Bình", "1975-06-15", "female")
	f.Fuzz(func(t *testing.T, id, name, dob, gender string) {
		res, err := m.Match(rec(id, name, dob, gender))
		if err != nil {
			t.Fatal(err)
		}
		switch res.Status {
		case Verified:
			if len(res.Reasons) != 0 {
				t.Fatalf("VERIFIED with reasons %v", res.Reasons)
			}
		case Mismatch, InvalidID:
			if len(res.Reasons) == 0 {
				t.Fatalf("%s without reasons", res.Status)
			}
		case NoID, NotFound:
		default:
			t.Fatalf("unexpected status %s", res.Status)
		}
		if len(res.Candidates) > DefaultMaxCandidates {
			t.Fatalf("%d candidates", len(res.Candidates))
		}
		if res.Status == Verified {
			// What was taken from the registry verifies again, without corrections.
			fixed := rec(id, name, dob, gender)
			for field, v := range res.Corrected {
				switch field {
				case FieldFullName:
					fixed.FullName = v
				case FieldDOB:
					fixed.DOB = v
				case FieldGender:
					fixed.Gender = v
				case FieldIDNumber:
					fixed.IDNumber = v
				}
			}
			again, _ := m.Match(fixed)
			if again.Status != Verified || len(again.Corrected) != 0 {
				t.Fatalf("corrected record %+v gives %+v", fixed, again)
			}
		}
	})
}
