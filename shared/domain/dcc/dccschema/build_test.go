package dccschema

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/vaxpass/vaxpass/shared/domain/dcc"
	"github.com/vaxpass/vaxpass/shared/domain/uvci"
	"github.com/vaxpass/vaxpass/shared/domain/vaccine"
	"golang.org/x/text/unicode/norm"
)

// dcc.Validate signs off our own certificates with dcc.KnownValidVaccination alone and
// refuses what it does not confirm. These tests hold the issuer to both halves: what
// dcc.Build makes is confirmed by the fast path (or issuance would fail closed) and is
// valid by the library (or the fast path would be wrong). The inputs are those of dcc's
// build tests, fuzz seeds and example, plus the schema's length limits.

var reflectMapStringAny = reflect.TypeOf(map[string]any(nil))

// testUVCI is dcc's build tests' fixed UVCI; buildSample's JSON must match theirs byte for
// byte, fastPathCorpus edits it by string replacement.
var testUVCI = mustUVCI(bytes.NewReader([]byte("vaxpass-test-key")))

func mustUVCI(r *bytes.Reader) string {
	u, err := uvci.New(r)
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
func buildSample(t testing.TB) *dcc.Certificate {
	t.Helper()
	c, err := dcc.Build(dcc.Person{FullName: "Nguyễn Văn An", DOB: "1985-03-07"}, certifiedDose(t, vaccine.Pfizer, 3, 3, "2022-01-05"), testUVCI)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// checkBuilt fails unless the certificate, in both of its JSON encodings, is confirmed by
// the fast path and accepted by the library.
func checkBuilt(t testing.TB, c *dcc.Certificate) {
	t.Helper()
	own, err := c.JSON()
	if err != nil {
		t.Fatal(err)
	}
	std, err := json.Marshal(c) // escapes '<' as \u003c: a second spelling of the same value
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range [][]byte{own, std} {
		v, err := dcc.DecodeDocument(doc)
		if err != nil {
			t.Fatalf("%s: %v", doc, err)
		}
		if !dcc.KnownValidVaccination(v) {
			t.Errorf("fast path does not confirm our own certificate:\n%s", doc)
		}
		if err := validateWithLibrary(v); err != nil {
			t.Errorf("library rejects our own certificate (%v):\n%s", err, doc)
		}
	}
}

type buildCase struct {
	person dcc.Person
	dose   vaccine.CertifiedDose
	ci     string
}

func builtCases(t testing.TB) []buildCase {
	var out []buildCase
	add := func(fullName, dob string, dose vaccine.CertifiedDose) {
		out = append(out, buildCase{dcc.Person{FullName: fullName, DOB: dob}, dose, testUVCI})
	}
	// TestBuildNames.
	az := certifiedDose(t, vaccine.AstraZeneca, 2, 2, "2021-09-01")
	for _, n := range []string{"Nguyễn Văn An", norm.NFD.String("Nguyễn Văn An"), "  Nguyễn   Văn\tAn ", "NGUYỄN VĂN AN",
		"Nguyen Van An", "Đặng Thị Ánh Tuyết", norm.NFD.String("Đỗ Đức Đạt"), "Trương Thị Ngọc Ước", "Tôn Nữ Thị Ninh", "Lan"} {
		add(n, "1990-01-02", az)
	}
	// TestBuildIsDeterministicAcrossNormalForms.
	for _, form := range []norm.Form{norm.NFC, norm.NFD, norm.NFKC, norm.NFKD} {
		add(form.String("Phạm Thị Hồng Nhung"), "1972", certifiedDose(t, vaccine.Moderna, 2, 2, "2021-10-01"))
	}
	// TestBuildEveryVaccine.
	for _, v := range vaccine.All() {
		dn, sd := vaccine.Numbering(v.PrimaryCourse, v.PrimaryCourse)
		add("Lê Thị Hoa", "1960-12", certifiedDose(t, v.Code, dn, sd, "2021-11-20"))
	}
	// TestBuildDOB.
	for _, dob := range []string{"1945", "1945-09", "1945-09-02", "1900-01-01", "2099-12-31", "2000-02-29"} {
		add("Hồ Văn Nam", dob, certifiedDose(t, vaccine.Janssen, 1, 1, "2021-08-01"))
	}
	// buildSample, and FuzzBuild's seeds that build.
	add("Nguyễn Văn An", "1985-03-07", certifiedDose(t, vaccine.Pfizer, 3, 3, "2022-01-05"))
	abdala := certifiedDose(t, vaccine.Abdala, 3, 3, "2021-12-01")
	add("Nguyễn Văn An", "1985-03-07", abdala)
	add(norm.NFD.String("Đặng Thị Ánh Tuyết"), "1950", abdala)
	add("Lan", "1990-02", abdala)
	// The schema's limits: 80 code points of fn/gn, 80 characters of fnt/gnt.
	add(strings.Repeat("ễ", 80)+" "+strings.Repeat("Ư", 80), "2000", abdala)
	add("A "+strings.Repeat("b ", 39)+"cd", "2000", abdala)
	// ExampleBuild: an all-zero UVCI.
	out = append(out, buildCase{dcc.Person{FullName: "Nguyễn Văn An", DOB: "1985"},
		certifiedDose(t, vaccine.Pfizer, 3, 3, "2022-02-10"), mustUVCI(bytes.NewReader(make([]byte, 16)))})
	return out
}

func TestBuiltCertificatesAreSchemaValid(t *testing.T) {
	for _, tc := range builtCases(t) {
		c, err := dcc.Build(tc.person, tc.dose, tc.ci)
		if err != nil {
			t.Errorf("Build(%+q, %s, %s): %v", tc.person.FullName, tc.person.DOB, tc.dose.Vaccine.Code, err)
			continue
		}
		checkBuilt(t, c)
	}
}

// FuzzBuiltCertificatesAreSchemaValid is dcc's FuzzBuild with the library as the judge.
func FuzzBuiltCertificatesAreSchemaValid(f *testing.F) {
	f.Add("Nguyễn Văn An", "1985-03-07")
	f.Add(norm.NFD.String("Đặng Thị Ánh Tuyết"), "1950")
	f.Add("Lan", "1990-02")
	f.Add("d'Arsøns - van Halen", "2009-02-28")
	f.Add("  ", "")
	f.Add(strings.Repeat("ễ", 80)+" "+strings.Repeat("Ư", 80), "2000")
	dose := certifiedDose(f, vaccine.Abdala, 3, 3, "2021-12-01")
	f.Fuzz(func(t *testing.T, fullName, dob string) {
		c, err := dcc.Build(dcc.Person{FullName: fullName, DOB: dob}, dose, testUVCI)
		if errors.Is(err, dcc.ErrSchema) {
			t.Fatalf("issuance failed closed on a certificate our rules accept (%+q, %q): %v", fullName, dob, err)
		}
		if err != nil {
			return
		}
		checkBuilt(t, c)
	})
}
