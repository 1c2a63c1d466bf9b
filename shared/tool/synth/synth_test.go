package synth

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/text/unicode/norm"

	"github.com/vaxpass/vaxpass/shared/domain/dose"
	"github.com/vaxpass/vaxpass/shared/domain/identity"
	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/domain/vaccine"
	"github.com/vaxpass/vaxpass/shared/domain/vnname"
)

type generated struct {
	registry, records, truth bytes.Buffer
	sum                      Summary
}

func generate(t testing.TB, cfg Config) *generated {
	t.Helper()
	var g generated
	sum, err := Generate(context.Background(), cfg, Output{&g.registry, &g.records, &g.truth}, nil)
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	g.sum = sum
	return &g
}

func TestDeterministic(t *testing.T) {
	a := generate(t, Config{People: 5000, Seed: 42})
	b := generate(t, Config{People: 5000, Seed: 42})
	c := generate(t, Config{People: 5000, Seed: 43})
	for name, pair := range map[string][2]*bytes.Buffer{
		"registry": {&a.registry, &b.registry}, "records": {&a.records, &b.records}, "truth": {&a.truth, &b.truth},
	} {
		if !bytes.Equal(pair[0].Bytes(), pair[1].Bytes()) {
			t.Errorf("%s differs between two runs with the same seed", name)
		}
	}
	if bytes.Equal(a.registry.Bytes(), c.registry.Bytes()) || bytes.Equal(a.records.Bytes(), c.records.Bytes()) {
		t.Error("a different seed gave the same output")
	}
}

// registryPeople parses the registry CSV and checks its shape.
func registryPeople(t *testing.T, data []byte) map[string]match.Person {
	t.Helper()
	r := csv.NewReader(bytes.NewReader(data))
	header, err := r.Read()
	if err != nil || strings.Join(header, ",") != RegistryHeader {
		t.Fatalf("header %q, %v; want %q", header, err, RegistryHeader)
	}
	people := map[string]match.Person{}
	for {
		row, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		p := match.Person{IDNumber: row[0], FullName: row[1], DOB: row[2], Gender: row[3]}
		if _, dup := people[p.IDNumber]; dup {
			t.Fatalf("ID %s given twice", p.IDNumber)
		}
		people[p.IDNumber] = p
		if _, err := identity.Parse(row[4][:min(3, len(row[4]))] + "085000001"); err != nil || len(row[4]) != 7 ||
			strings.Trim(row[4], "0123456789") != "" {
			t.Fatalf("commune code %q is not a province code and 4 digits", row[4])
		}
	}
	return people
}

func TestRegistryIDsAreValidCCCDs(t *testing.T) {
	g := generate(t, Config{People: 20000, Seed: 7})
	people := registryPeople(t, g.registry.Bytes())
	if len(people) != 20000 {
		t.Fatalf("%d people, want 20000", len(people))
	}
	for _, p := range people {
		id, err := identity.Parse(p.IDNumber)
		if err != nil || id.Kind != identity.Personal12 || id.Number != p.IDNumber {
			t.Fatalf("registry ID %s: %v", p.IDNumber, err)
		}
		dob, err := dose.ParsePartialDate(p.DOB)
		if err != nil || dob.Day == 0 {
			t.Fatalf("registry dob %q: %v", p.DOB, err)
		}
		if err := id.CheckRecord(p.Gender, dob); err != nil {
			t.Fatalf("ID %s contradicts its own person (%s, %s): %v", p.IDNumber, p.Gender, p.DOB, err)
		}
		if age := refYear - dob.Year; age < 12 || age > 95 {
			t.Fatalf("age %d out of 12-95", age)
		}
		if !norm.NFC.IsNormalString(p.FullName) || vnname.Normalize(p.FullName) != p.FullName {
			t.Fatalf("registry name %q is not in display form", p.FullName)
		}
	}
}

func TestProvinceTableMatchesIdentity(t *testing.T) {
	if len(provinces) != identity.ProvinceCount() {
		t.Fatalf("%d provinces here, identity knows %d", len(provinces), identity.ProvinceCount())
	}
	for _, p := range provinces {
		if _, err := identity.Parse(p.code + "085000001"); err != nil {
			t.Errorf("province %s: %v", p.code, err)
		}
	}
	g := newGenerator(Config{Mix: DefaultMix()})
	for _, code := range g.badProvince {
		if _, err := identity.Parse(code + "085000001"); !errors.Is(err, identity.ErrProvince) {
			t.Errorf("code %s used as unknown province: identity says %v", code, err)
		}
	}
}

func TestNameTablesAreNFCAndDistinct(t *testing.T) {
	check := func(table string, words []string) {
		seen := map[string]bool{}
		for _, w := range words {
			if !norm.NFC.IsNormalString(w) || strings.TrimSpace(w) != w || w == "" {
				t.Errorf("%s: %q is not a clean NFC word", table, w)
			}
			if seen[w] {
				t.Errorf("%s: %q twice", table, w)
			}
			seen[w] = true
		}
	}
	values := func(ws []weighted) []string {
		var out []string
		for _, w := range ws {
			out = append(out, w.value)
		}
		return out
	}
	check("family", values(familyNames))
	check("male middle", values(maleMiddle))
	check("female middle", values(femaleMiddle))
	check("male second", maleSecond)
	check("female second", femaleSecond)
	check("male given", maleGiven)
	check("female given", femaleGiven)
}

// record and truth, read back in step.
type pair struct {
	rec   dose.Record
	truth Truth
}

func pairs(t *testing.T, g *generated) []pair {
	t.Helper()
	var out []pair
	recs := bufio.NewScanner(bytes.NewReader(g.records.Bytes()))
	recs.Buffer(nil, 1<<20)
	err := ReadTruth(bytes.NewReader(g.truth.Bytes()), func(tr Truth) error {
		if !recs.Scan() {
			return errors.New("fewer records than truth lines")
		}
		dec := json.NewDecoder(bytes.NewReader(recs.Bytes()))
		dec.DisallowUnknownFields()
		var r dose.Record
		if err := dec.Decode(&r); err != nil {
			return err
		}
		out = append(out, pair{r, tr})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if recs.Scan() {
		t.Fatal("more records than truth lines")
	}
	return out
}

// TestPlantedErrorsAreWhatTheTruthSays checks every record against the registry with the
// identity and name packages, independently of the matcher: the truth file's status must
// follow from the record and the registry.
func TestPlantedErrorsAreWhatTheTruthSays(t *testing.T) {
	g := generate(t, Config{People: 30000, Records: 30000, Seed: 11})
	people := registryPeople(t, g.registry.Bytes())
	ps := pairs(t, g)
	if len(ps) != 30000 || g.sum.Records != 30000 {
		t.Fatalf("%d records (summary %d), want 30000", len(ps), g.sum.Records)
	}
	today := time.Date(2022, 7, 1, 0, 0, 0, 0, time.UTC)
	seen := map[string]bool{}
	for _, p := range ps {
		r, tr := p.rec, p.truth
		if r.SourceID != tr.SourceID || seen[r.SourceID] {
			t.Fatalf("source_id %q (truth %q) out of step or repeated", r.SourceID, tr.SourceID)
		}
		seen[r.SourceID] = true
		if errs := r.Validate(today); len(errs) > 0 {
			t.Fatalf("record %s does not validate: %v", r.SourceID, errs)
		}
		reg, ok := people[tr.RegistryID]
		if !ok {
			t.Fatalf("truth names registry ID %s, not in the registry", tr.RegistryID)
		}
		status, reasons := tr.Class.Expect()
		if tr.Status != status || !slices.Equal(tr.Reasons, reasons) {
			t.Fatalf("%s: truth %s %v, class %s expects %s %v", r.SourceID, tr.Status, tr.Reasons, tr.Class, status, reasons)
		}

		dob, _ := dose.ParsePartialDate(r.DOB)
		regDOB, _ := dose.ParsePartialDate(reg.DOB)
		nameAgrees := vnname.Key(r.FullName) == vnname.Key(reg.FullName)
		dobAgrees := dob.Agrees(regDOB)
		genderAgrees := r.Gender == reg.Gender
		id, idErr := identity.Parse(r.IDNumber)
		_, inRegistry := people[id.Number]

		var got match.Status
		var gotReasons []string
		switch {
		case errors.Is(idErr, identity.ErrEmpty):
			got = match.NoID
		case idErr != nil:
			got, gotReasons = match.InvalidID, []string{identity.Code(idErr)}
		case !inRegistry:
			if codes := identity.Codes(id.CheckRecord(r.Gender, dob)); len(codes) > 0 {
				got, gotReasons = match.InvalidID, codes
			} else {
				got = match.NotFound
			}
		default:
			if id.Number != tr.RegistryID {
				t.Fatalf("%s: record ID is someone else's registry ID", r.SourceID)
			}
			for _, c := range []struct {
				ok     bool
				reason string
			}{{nameAgrees, match.ReasonName}, {dobAgrees, match.ReasonDOB}, {genderAgrees, match.ReasonGender}} {
				if !c.ok {
					gotReasons = append(gotReasons, c.reason)
				}
			}
			got = match.Verified
			if len(gotReasons) > 0 {
				got = match.Mismatch
			}
		}
		if got != tr.Status || !slices.Equal(gotReasons, tr.Reasons) {
			t.Fatalf("%s (%s): record gives %s %v, truth says %s %v", r.SourceID, tr.Class, got, gotReasons, tr.Status, tr.Reasons)
		}
		if got == match.Verified {
			var corrected []string
			if r.FullName != reg.FullName {
				corrected = append(corrected, match.FieldFullName)
			}
			if r.DOB != reg.DOB {
				corrected = append(corrected, match.FieldDOB)
			}
			if r.IDNumber != reg.IDNumber {
				corrected = append(corrected, match.FieldIDNumber)
			}
			if !slices.Equal(corrected, tr.Corrected) {
				t.Fatalf("%s (%s): corrected %v, truth says %v", r.SourceID, tr.Class, corrected, tr.Corrected)
			}
		}
	}
}

func TestDoseHistories(t *testing.T) {
	g := generate(t, Config{People: 20000, Seed: 3})
	ps := pairs(t, g)
	first, last := civilDayTime(campaignStart), civilDayTime(campaignEnd)
	var doses []dose.Record
	var class Class
	flush := func() {
		if len(doses) == 0 {
			return
		}
		if len(doses) > 4 {
			t.Fatalf("person with %d doses", len(doses))
		}
		dob, _ := dose.ParsePartialDate(doses[0].DOB)
		for k, d := range doses {
			if d.DoseNumber != k+1 {
				t.Fatalf("dose numbers %d at position %d", d.DoseNumber, k+1)
			}
			on, _ := time.Parse("2006-01-02", d.VaccinatedOn)
			if on.Before(first) || on.After(last) {
				t.Fatalf("vaccinated on %s, outside the campaign", d.VaccinatedOn)
			}
			if k > 0 && d.VaccinatedOn <= doses[k-1].VaccinatedOn {
				t.Fatalf("dose %d on %s, not after dose %d on %s", k+1, d.VaccinatedOn, k, doses[k-1].VaccinatedOn)
			}
			trueDOB := class != WrongDOB && class != WrongNameDOB
			if trueDOB && refYear-dob.Year < 18 && k == 0 && d.Vaccine != string(vaccine.Pfizer) && d.Vaccine != string(vaccine.Moderna) {
				t.Fatalf("minor given %s", d.Vaccine)
			}
		}
		doses = doses[:0]
	}
	var prev string
	for _, p := range ps {
		if p.truth.RegistryID != prev {
			flush()
			prev, class = p.truth.RegistryID, p.truth.Class
		}
		doses = append(doses, p.rec)
	}
	flush()
}

func civilDayTime(day int) time.Time { return time.Unix(int64(day)*86400, 0).UTC() }

// TestOnePersonOneStatus: every record of a person carries the same details and status.
func TestOnePersonOneStatus(t *testing.T) {
	g := generate(t, Config{People: 10000, Seed: 5})
	type details struct {
		name, dob, gender, id string
		class                 Class
	}
	byPerson := map[string]details{}
	for _, p := range pairs(t, g) {
		d := details{p.rec.FullName, p.rec.DOB, p.rec.Gender, p.rec.IDNumber, p.truth.Class}
		if old, ok := byPerson[p.truth.RegistryID]; ok && old != d {
			t.Fatalf("person %s: %+v then %+v", p.truth.RegistryID, old, d)
		}
		byPerson[p.truth.RegistryID] = d
	}
}

func TestMixFractions(t *testing.T) {
	const people = 60000
	mixes := []struct {
		name string
		mix  Mix
	}{
		{"default", DefaultMix()},
		{"errors only", Mix{NoID: 1, WrongName: 2, IDLength: 1}},
	}
	for _, tt := range mixes {
		t.Run(tt.name, func(t *testing.T) {
			g := generate(t, Config{People: people, Records: 4 * people, Seed: 9, Mix: tt.mix})
			n := float64(g.sum.Vaccinated)
			total := 0
			for i, c := range Classes {
				want := tt.mix.Fractions()[i]
				got := g.sum.PeopleByClass[c]
				total += got
				// Binomial: 4.5 standard deviations, so a correct generator never fails.
				tol := 4.5*math.Sqrt(n*want*(1-want)) + 1
				if math.Abs(float64(got)-n*want) > tol {
					t.Errorf("%s: %d people, want %.0f ± %.0f", c, got, n*want, tol)
				}
			}
			if total != g.sum.Vaccinated {
				t.Errorf("classes sum to %d, vaccinated %d", total, g.sum.Vaccinated)
			}
		})
	}
}

func TestFamilyNameFrequencies(t *testing.T) {
	g := generate(t, Config{People: 50000, Seed: 1})
	counts := map[string]int{}
	for _, p := range registryPeople(t, g.registry.Bytes()) {
		family, _ := vnname.Split(p.FullName)
		counts[family]++
	}
	for _, tt := range []struct {
		family  string
		percent float64
	}{{"Nguyễn", 38.4}, {"Trần", 11}, {"Lê", 9.5}, {"Phạm", 7.1}, {"Phan", 4.5}, {"Lý", 0.5}} {
		got := float64(counts[tt.family]) * 100 / 50000
		// Shares are relative to a table summing to about 100%: allow 10% relative + noise.
		if math.Abs(got-tt.percent) > 0.1*tt.percent+0.3 {
			t.Errorf("%s: %.2f%% of people, want about %.1f%%", tt.family, got, tt.percent)
		}
	}
}

func TestRecordsCount(t *testing.T) {
	tests := []struct {
		people, records, want int
	}{
		{1000, 0, 1000},
		{1000, 500, 500},
		{1000, 2000, 2000},
		{100, 10000, 0}, // too few people: fewer records, all of them vaccinated
		{0, 0, 0},
	}
	for _, tt := range tests {
		g := generate(t, Config{People: tt.people, Records: tt.records, Seed: 2})
		if tt.want == 0 && tt.people > 0 {
			if g.sum.Vaccinated != tt.people || g.sum.Records >= tt.records {
				t.Errorf("people %d records %d: %+v", tt.people, tt.records, g.sum)
			}
			continue
		}
		if g.sum.Records != tt.want || g.sum.People != tt.people {
			t.Errorf("people %d records %d: got %d records, %d people", tt.people, tt.records, g.sum.Records, g.sum.People)
		}
	}
}

func TestGenerateErrors(t *testing.T) {
	var w bytes.Buffer
	out := Output{&w, &w, &w}
	ctx := context.Background()
	for _, cfg := range []Config{{People: -1}, {People: MaxPeople + 1}, {People: 1, Records: -1}, {People: 1, Mix: Mix{}}, {People: 1, Mix: Mix{"bogus": 1}}} {
		if _, err := Generate(ctx, cfg, out, nil); err == nil {
			t.Errorf("Generate(%+v) accepted", cfg)
		}
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := Generate(cancelled, Config{People: 10}, out, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: %v", err)
	}
	if _, err := Generate(ctx, Config{People: 10}, Output{failWriter{}, &w, &w}, nil); err == nil || !strings.Contains(err.Error(), "registry") {
		t.Errorf("failing writer: %v", err)
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestParseMix(t *testing.T) {
	tests := []struct {
		in      string
		want    map[Class]float64 // checked entries
		wantErr bool
	}{
		{"", map[Class]float64{Clean: 0.715, NoID: 0.05}, false},
		{"no_id=0.2", map[Class]float64{Clean: 0.715, NoID: 0.2}, false},
		{"only,clean=1,no_id=1", map[Class]float64{Clean: 1, NoID: 1, WrongName: 0}, false},
		{" clean = 0.5 , wrong_dob=0.1", map[Class]float64{Clean: 0.5, WrongDOB: 0.1}, false},
		{"nonsense=1", nil, true},
		{"clean", nil, true},
		{"clean=-1", nil, true},
		{"clean=NaN", nil, true},
		{"clean=x", nil, true},
		{"only", nil, true},
		{"only,clean=0", nil, true},
	}
	for _, tt := range tests {
		m, err := ParseMix(tt.in)
		if tt.wantErr {
			if !errors.Is(err, ErrMix) {
				t.Errorf("ParseMix(%q) = %v, %v; want ErrMix", tt.in, m, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseMix(%q): %v", tt.in, err)
			continue
		}
		for c, v := range tt.want {
			if m[c] != v {
				t.Errorf("ParseMix(%q)[%s] = %v, want %v", tt.in, c, m[c], v)
			}
		}
		back, err := ParseMix(m.String())
		if err != nil || !slices.Equal(back.Fractions(), m.Fractions()) {
			t.Errorf("ParseMix(%q).String() = %q does not read back: %v", tt.in, m.String(), err)
		}
	}
}

func TestEveryClassHasAnExpectation(t *testing.T) {
	for _, c := range Classes {
		status, _ := c.Expect()
		if status == "" || status == match.Pending {
			t.Errorf("%s: status %q", c, status)
		}
	}
}

func TestEncoders(t *testing.T) {
	for _, s := range []string{"", "Nguyễn Văn An", "a\"b\\c", "tab\there", "\x01", "bad\xffutf8", "Nguyễn Văn An"} {
		var got string
		if err := json.Unmarshal(appendJSONString(nil, s), &got); err != nil {
			t.Errorf("appendJSONString(%q) is not JSON: %v", s, err)
			continue
		}
		if want := strings.ToValidUTF8(s, "\ufffd"); got != want {
			t.Errorf("appendJSONString(%q) reads back as %q", s, got)
		}
	}
	for _, s := range []string{"plain", "a,b", `say "hi"`, "two\nlines", " padded "} {
		row, err := csv.NewReader(bytes.NewReader(appendCSV(nil, s))).Read()
		if err != nil || len(row) != 1 || row[0] != s {
			t.Errorf("appendCSV(%q) reads back as %q, %v", s, row, err)
		}
	}
}

func FuzzParseMix(f *testing.F) {
	for _, s := range []string{"", "no_id=0.2", "only,clean=1,no_id=1", "clean=-1", "only,"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseMix(s)
		if err != nil {
			return
		}
		sum := 0.0
		for _, v := range m.Fractions() {
			if v < 0 || math.IsNaN(v) {
				t.Fatalf("ParseMix(%q) gives fraction %v", s, v)
			}
			sum += v
		}
		if math.Abs(sum-1) > 1e-9 {
			t.Fatalf("ParseMix(%q) fractions sum to %v", s, sum)
		}
	})
}

func BenchmarkGenerate(b *testing.B) {
	const people = 100000
	for b.Loop() {
		_, err := Generate(context.Background(), Config{People: people, Seed: 1},
			Output{io.Discard, io.Discard, io.Discard}, nil)
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*people), "ns/person")
}
