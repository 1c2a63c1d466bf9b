package dcc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/vaxpass/vaxpass/shared/domain/uvci"
	"github.com/vaxpass/vaxpass/shared/domain/vaccine"
	"golang.org/x/text/unicode/norm"
)

var reflectMapStringAny = reflect.TypeOf(map[string]any(nil))

// A fixed UVCI so the tests are deterministic.
var testUVCI = mustUVCI()

func mustUVCI() string {
	u, err := uvci.New(bytes.NewReader([]byte("vaxpass-test-key")))
	if err != nil {
		panic(err)
	}
	return u
}

func certifiedDose(t testing.TB, code vaccine.Code, dn, sd int, on string) vaccine.CertifiedDose {
	t.Helper()
	v, err := vaccine.Lookup(string(code))
	if err != nil {
		t.Fatal(err)
	}
	return vaccine.CertifiedDose{Vaccine: v, DoseNumber: dn, SeriesDoses: sd, VaccinatedOn: on}
}

// buildSample is a Pfizer booster, 3/3, for a typical Vietnamese name.
func buildSample(t testing.TB) *Certificate {
	t.Helper()
	c, err := Build(Person{FullName: "Nguyễn Văn An", DOB: "1985-03-07"}, certifiedDose(t, vaccine.Pfizer, 3, 3, "2022-01-05"), testUVCI)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var icaoRE = regexp.MustCompile(`^[A-Z<]*$`)

func TestBuildNames(t *testing.T) {
	nfd := norm.NFD.String
	tests := []struct {
		name, fullName   string
		fn, gn, fnt, gnt string
		source           string
	}{
		{"typical", "Nguyễn Văn An", "Nguyễn", "Văn An", "NGUYEN", "VAN<AN", "domain-vn.md: fnt NGUYEN, gnt VAN<AN"},
		{"NFD input", nfd("Nguyễn Văn An"), "Nguyễn", "Văn An", "NGUYEN", "VAN<AN", "hcert_spec §3.3.7: strings SHOULD be NFC"},
		{"doubled and outer spaces", "  Nguyễn   Văn\tAn ", "Nguyễn", "Văn An", "NGUYEN", "VAN<AN", "QA SpecialCaseHandling: trim whitespace"},
		{"upper case", "NGUYỄN VĂN AN", "NGUYỄN", "VĂN AN", "NGUYEN", "VAN<AN", "fn/gn as registered; fnt/gnt identical"},
		{"no diacritics", "Nguyen Van An", "Nguyen", "Van An", "NGUYEN", "VAN<AN", "same fnt/gnt whatever the input form"},
		{"Đ folds to D", "Đặng Thị Ánh Tuyết", "Đặng", "Thị Ánh Tuyết", "DANG", "THI<ANH<TUYET", "notes §1.10: Đ does not decompose, maps to D"},
		{"Đ in NFD", nfd("Đỗ Đức Đạt"), "Đỗ", "Đức Đạt", "DO", "DUC<DAT", "notes §1.10"},
		{"horn vowels", "Trương Thị Ngọc Ước", "Trương", "Thị Ngọc Ước", "TRUONG", "THI<NGOC<UOC", "ơ/ư decompose (notes §1.10)"},
		{"four parts", "Tôn Nữ Thị Ninh", "Tôn", "Nữ Thị Ninh", "TON", "NU<THI<NINH", "family name first"},
		{"one word", "Lan", "Lan", "", "LAN", "", "gnt only when there is a given name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Build(Person{FullName: tt.fullName, DOB: "1990-01-02"}, certifiedDose(t, vaccine.AstraZeneca, 2, 2, "2021-09-01"), testUVCI)
			if err != nil {
				t.Fatalf("Build: %v", err)
			}
			want := Name{FN: tt.fn, GN: tt.gn, FNT: tt.fnt, GNT: tt.gnt}
			if c.Nam != want {
				t.Errorf("name %+v, want %+v (%s)", c.Nam, want, tt.source)
			}
			if !norm.NFC.IsNormalString(c.Nam.FN) || !norm.NFC.IsNormalString(c.Nam.GN) {
				t.Errorf("fn/gn not NFC: %+q %+q", c.Nam.FN, c.Nam.GN)
			}
			if !icaoRE.MatchString(c.Nam.FNT) || !icaoRE.MatchString(c.Nam.GNT) || c.Nam.FNT == "" {
				t.Errorf("fnt %q / gnt %q do not match ^[A-Z<]*$", c.Nam.FNT, c.Nam.GNT)
			}
		})
	}
}

// Every re-issue of one person's certificate must carry the same name (domain-vn.md: the
// transliteration must be deterministic), whatever form the name arrives in.
func TestBuildIsDeterministicAcrossNormalForms(t *testing.T) {
	dose := certifiedDose(t, vaccine.Moderna, 2, 2, "2021-10-01")
	var first []byte
	for _, form := range []norm.Form{norm.NFC, norm.NFD, norm.NFKC, norm.NFKD} {
		c, err := Build(Person{FullName: form.String("Phạm Thị Hồng Nhung"), DOB: "1972"}, dose, testUVCI)
		if err != nil {
			t.Fatal(err)
		}
		doc, _ := json.Marshal(c)
		if first == nil {
			first = doc
		} else if !bytes.Equal(doc, first) {
			t.Errorf("form %v gives %s, NFC gave %s", form, doc, first)
		}
	}
}

func TestBuildEveryVaccine(t *testing.T) {
	for _, v := range vaccine.All() {
		t.Run(string(v.Code), func(t *testing.T) {
			dn, sd := vaccine.Numbering(v.PrimaryCourse, v.PrimaryCourse)
			c, err := Build(Person{FullName: "Lê Thị Hoa", DOB: "1960-12"}, certifiedDose(t, v.Code, dn, sd, "2021-11-20"), testUVCI)
			if err != nil {
				t.Fatal(err)
			}
			want := Vaccination{TG: "840539006", VP: v.Prophylaxis, MP: v.Product, MA: v.Manufacturer,
				DN: dn, SD: sd, DT: "2021-11-20", CO: "VN", IS: "Ministry of Health of Viet Nam", CI: testUVCI}
			if len(c.V) != 1 || c.V[0] != want {
				t.Errorf("v = %+v, want [%+v]", c.V, want)
			}
			if c.Ver != "1.3.0" || c.DOB != "1960-12" {
				t.Errorf("ver %q dob %q", c.Ver, c.DOB)
			}
			doc, err := c.JSON()
			if err != nil {
				t.Fatal(err)
			}
			if v, err := DecodeDocument(doc); err != nil || !KnownValidVaccination(v) {
				t.Errorf("built certificate not confirmed against the schema (%v): %s", err, doc)
			}
			if err := CheckValueSets(doc); err != nil {
				t.Errorf("built certificate fails the value sets: %v", err)
			}
			var back Certificate
			if err := json.Unmarshal(doc, &back); err != nil || !reflect.DeepEqual(&back, c) {
				t.Errorf("JSON round trip: %+v, %v", back, err)
			}
		})
	}
}

func TestJSONKeepsFillers(t *testing.T) {
	c := buildSample(t)
	doc, err := c.JSON()
	if err != nil {
		t.Fatal(err)
	}
	std, _ := json.Marshal(c)
	if !bytes.Contains(doc, []byte(`"gnt":"VAN<AN"`)) || bytes.HasSuffix(doc, []byte("\n")) {
		t.Errorf("JSON() = %s", doc)
	}
	var a, b Certificate
	if json.Unmarshal(doc, &a) != nil || json.Unmarshal(std, &b) != nil || !reflect.DeepEqual(a, b) || !reflect.DeepEqual(&a, c) {
		t.Errorf("JSON() and json.Marshal decode differently: %s vs %s", doc, std)
	}
}

func TestBuildDOB(t *testing.T) {
	dose := certifiedDose(t, vaccine.Janssen, 1, 1, "2021-08-01")
	for _, dob := range []string{"1945", "1945-09", "1945-09-02", "1900-01-01", "2099-12-31", "2000-02-29"} {
		c, err := Build(Person{FullName: "Hồ Văn Nam", DOB: dob}, dose, testUVCI)
		if err != nil {
			t.Errorf("dob %q: %v", dob, err)
			continue
		}
		if c.DOB != dob {
			t.Errorf("dob %q became %q; it must be kept as given", dob, c.DOB)
		}
	}
	for _, dob := range []string{"", "1899", "2100", "1899-12-31", "1990-13", "1990-00", "1990-02-30", "1900-02-29",
		"90-01-01", "1990/01/01", "01-01-1990", "1990-1-1", "1990-01-01T00:00:00Z", " 1990", "+990"} {
		_, err := Build(Person{FullName: "Hồ Văn Nam", DOB: dob}, dose, testUVCI)
		if !errors.Is(err, ErrInvalid) || !strings.HasPrefix(err.Error(), "dob:") {
			t.Errorf("dob %q: error %v, want ErrInvalid naming dob", dob, err)
		}
	}
}

func TestBuildRejects(t *testing.T) {
	good := certifiedDose(t, vaccine.Pfizer, 2, 2, "2021-09-01")
	forged := good
	forged.Vaccine.Product = "Inactivated-SARS-CoV-2-Vero-Cell"
	zero := vaccine.CertifiedDose{DoseNumber: 1, SeriesDoses: 1, VaccinatedOn: "2021-09-01"}
	withDose := func(f func(*vaccine.CertifiedDose)) vaccine.CertifiedDose { d := good; f(&d); return d }
	badCheck := testUVCI[:len(testUVCI)-1] + string("ABCDEFGH"[strings.IndexByte("ABCDEFGH", testUVCI[len(testUVCI)-1])+1])
	if strings.IndexByte("ABCDEFGH", testUVCI[len(testUVCI)-1]) < 0 {
		badCheck = testUVCI[:len(testUVCI)-1] + "A"
	}
	tests := []struct {
		name     string
		person   Person
		dose     vaccine.CertifiedDose
		ci       string
		field    string
		sentinel error
	}{
		{"empty name", Person{FullName: "   ", DOB: "1990"}, good, testUVCI, "nam.fn", ErrInvalid},
		{"name without letters", Person{FullName: "123 456", DOB: "1990"}, good, testUVCI, "nam.fnt", ErrInvalid},
		{"given name without letters", Person{FullName: "Nguyễn 123", DOB: "1990"}, good, testUVCI, "nam.gnt", ErrInvalid},
		{"family name over 80", Person{FullName: strings.Repeat("ễ", 81) + " An", DOB: "1990"}, good, testUVCI, "nam.fn", ErrInvalid},
		{"dn 0", Person{FullName: "Lê An", DOB: "1990"}, withDose(func(d *vaccine.CertifiedDose) { d.DoseNumber = 0 }), testUVCI, "v[0].dn", ErrInvalid},
		{"sd 0", Person{FullName: "Lê An", DOB: "1990"}, withDose(func(d *vaccine.CertifiedDose) { d.SeriesDoses = 0 }), testUVCI, "v[0].sd", ErrInvalid},
		{"dt not a date", Person{FullName: "Lê An", DOB: "1990"}, withDose(func(d *vaccine.CertifiedDose) { d.VaccinatedOn = "2021-09-31" }), testUVCI, "v[0].dt", ErrInvalid},
		{"dt with time", Person{FullName: "Lê An", DOB: "1990"}, withDose(func(d *vaccine.CertifiedDose) { d.VaccinatedOn = "2021-09-01T00:00:00Z" }), testUVCI, "v[0].dt", ErrInvalid},
		{"forged catalogue entry", Person{FullName: "Lê An", DOB: "1990"}, forged, testUVCI, "v[0].mp", ErrInvalid},
		{"no vaccine", Person{FullName: "Lê An", DOB: "1990"}, zero, testUVCI, "v[0].mp", ErrInvalid},
		{"empty UVCI", Person{FullName: "Lê An", DOB: "1990"}, good, "", "v[0].ci", uvci.ErrMalformed},
		{"foreign UVCI", Person{FullName: "Lê An", DOB: "1990"}, good, "URN:UVCI:01:NL:187/37512422923#Z", "v[0].ci", ErrInvalid},
		{"UVCI check char", Person{FullName: "Lê An", DOB: "1990"}, good, badCheck, "v[0].ci", uvci.ErrCheckChar},
	}
	for _, tt := range tests {
		c, err := Build(tt.person, tt.dose, tt.ci)
		if c != nil || !errors.Is(err, tt.sentinel) || !strings.HasPrefix(err.Error(), tt.field+":") {
			t.Errorf("%s: Build = %v, %v; want %v naming %s", tt.name, c, err, tt.sentinel, tt.field)
		}
	}
}

func TestValidateRejects(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Certificate)
		field  string
	}{
		{"nil", nil, "certificate"},
		{"two events", func(c *Certificate) { c.V = append(c.V, c.V[0]) }, "v"},
		{"no event", func(c *Certificate) { c.V = nil }, "v"},
		{"test added", func(c *Certificate) { c.T = []Test{{}} }, "v"},
		{"ver", func(c *Certificate) { c.Ver = "1.3.3" }, "ver"},
		{"fn NFD", func(c *Certificate) { c.Nam.FN = norm.NFD.String(c.Nam.FN) }, "nam.fn"},
		{"gn trailing space", func(c *Certificate) { c.Nam.GN += " " }, "nam.gn"},
		{"fn missing", func(c *Certificate) { c.Nam.FN = "" }, "nam.fn"},
		{"fnt missing", func(c *Certificate) { c.Nam.FNT = "" }, "nam.fnt"},
		{"fnt lower case", func(c *Certificate) { c.Nam.FNT = "Nguyen" }, "nam.fnt"},
		{"gnt without gn", func(c *Certificate) { c.Nam.GN = "" }, "nam.gnt"},
		{"gnt with digit", func(c *Certificate) { c.Nam.GNT = "VAN<AN2" }, "nam.gnt"},
		{"issuer", func(c *Certificate) { c.V[0].IS = "Ban Co Yeu" }, "v[0].is"},
		{"country", func(c *Certificate) { c.V[0].CO = "NL" }, "v[0].is"},
		{"vp not in value set", func(c *Certificate) { c.V[0].VP = "1119349008" }, "v[0].vp"},
	}
	for _, tt := range tests {
		var c *Certificate
		if tt.change != nil {
			c = buildSample(t)
			tt.change(c)
		}
		err := Validate(c)
		if err == nil || !strings.HasPrefix(err.Error(), tt.field+":") {
			t.Errorf("%s: Validate = %v, want an error naming %s", tt.name, err, tt.field)
		}
	}
	if err := Validate(buildSample(t)); err != nil {
		t.Errorf("sample: %v", err)
	}
}

func TestNewName(t *testing.T) {
	n, err := NewName(" Nguyễn ", norm.NFD.String("Văn  An"))
	if err != nil {
		t.Fatal(err)
	}
	if want := (Name{FN: "Nguyễn", GN: "Văn An", FNT: "NGUYEN", GNT: "VAN<AN"}); n != want {
		t.Errorf("NewName = %+v, want %+v", n, want)
	}
	if _, err := NewName("", "An"); !errors.Is(err, ErrInvalid) {
		t.Errorf("no family name: %v", err)
	}
}

func FuzzBuild(f *testing.F) {
	f.Add("Nguyễn Văn An", "1985-03-07")
	f.Add(norm.NFD.String("Đặng Thị Ánh Tuyết"), "1950")
	f.Add("Lan", "1990-02")
	f.Add("d'Arsøns - van Halen", "2009-02-28")
	f.Add("  ", "")
	dose := certifiedDose(f, vaccine.Abdala, 3, 3, "2021-12-01")
	f.Fuzz(func(t *testing.T, fullName, dob string) {
		c, err := Build(Person{FullName: fullName, DOB: dob}, dose, testUVCI)
		if err != nil {
			// ErrSchema would mean Validate failed closed on what our own rules accept.
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		if c.Nam.FNT == "" || !icaoRE.MatchString(c.Nam.FNT) || !icaoRE.MatchString(c.Nam.GNT) {
			t.Fatalf("fnt %q gnt %q", c.Nam.FNT, c.Nam.GNT)
		}
		doc, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		// json.Marshal escapes '<' unlike c.JSON, which Validate checked: another spelling.
		// dccschema's FuzzBuiltCertificatesAreSchemaValid asks the library too.
		if v, err := DecodeDocument(doc); err != nil || !KnownValidVaccination(v) {
			t.Fatalf("built %s not confirmed against the schema: %v", doc, err)
		}
		// Same person in another normal form: same certificate.
		again, err := Build(Person{FullName: norm.NFD.String(fullName), DOB: dob}, dose, testUVCI)
		if err != nil || !reflect.DeepEqual(again, c) {
			t.Fatalf("NFD of %q: %+v, %v; NFC gave %+v", fullName, again, err, c)
		}
	})
}

func BenchmarkBuild(b *testing.B) {
	dose := certifiedDose(b, vaccine.Pfizer, 3, 3, "2022-01-05")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Build(Person{FullName: "Nguyễn Văn An", DOB: "1985-03-07"}, dose, testUVCI); err != nil {
			b.Fatal(err)
		}
	}
}

func ExampleBuild() {
	a, err := vaccine.Assess([]vaccine.Dose{
		{Vaccine: vaccine.AstraZeneca, DoseNumber: 1, VaccinatedOn: "2021-07-01"},
		{Vaccine: vaccine.AstraZeneca, DoseNumber: 2, VaccinatedOn: "2021-09-15"},
		{Vaccine: vaccine.Pfizer, DoseNumber: 3, VaccinatedOn: "2022-02-10"},
	})
	if err != nil || !a.Eligible {
		panic(fmt.Sprint(err, a.Reason))
	}
	id, err := uvci.New(bytes.NewReader(make([]byte, 16))) // crypto/rand.Reader in production
	if err != nil {
		panic(err)
	}
	c, err := Build(Person{FullName: "Nguyễn Văn An", DOB: "1985"}, a.Certified, id)
	if err != nil {
		panic(err)
	}
	v := c.V[0]
	fmt.Println(c.Nam.FNT, c.Nam.GNT, c.DOB)
	fmt.Println(v.MP, v.MA, v.VP, fmt.Sprintf("%d/%d", v.DN, v.SD), v.DT)
	fmt.Println(v.CI)
	// Output:
	// NGUYEN VAN<AN 1985
	// EU/1/20/1528 ORG-100030215 1119349007 3/3 2022-02-10
	// URN:UVCI:01:VN:AAAAAAAAAAAAAAAAAAAAAAAAAA#N
}
