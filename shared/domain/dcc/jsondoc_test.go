package dcc

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/fxamacker/cbor/v2"
)

// testdata/schema holds eu-dcc-schema's examples/ and test/ (commit 9fe38ed, Apache-2.0,
// testdata/schema/LICENSE).
func schemaFiles(t testing.TB, pattern string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "schema", pattern))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no files match %s", pattern)
	}
	return files
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCheckValueSetsRejectsUnreadableDocuments(t *testing.T) {
	valid := readFile(t, "testdata/schema/examples/vaccination/simple.json")
	tests := map[string][]byte{
		"empty":          nil,
		"not json":       []byte("HC1:NCFOXN%TS3DH"),
		"trailing data":  append(slices.Clone(valid), []byte(` {}`)...),
		"two documents":  append(slices.Clone(valid), valid...),
		"truncated":      valid[:len(valid)/2],
		"duplicate key":  []byte(`{"ver":"1.3.0","ver":"1.3.0"}`),
		"duplicate deep": bytes.Replace(valid, []byte(`"dn": 1`), []byte(`"dn": 1, "dn": 2`), 1),
		"too deep":       []byte(strings.Repeat("[", 40) + strings.Repeat("]", 40)),
		"too big":        append([]byte(`{"ver":"`), append(bytes.Repeat([]byte("1"), MaxDocumentSize), `"}`...)...),
	}
	for name, doc := range tests {
		if _, err := DecodeDocument(doc); !errors.Is(err, ErrDocument) {
			t.Errorf("%s: DecodeDocument error %v, want ErrDocument", name, err)
		}
		if err := CheckValueSets(doc); !errors.Is(err, ErrDocument) {
			t.Errorf("%s: CheckValueSets error %v, want ErrDocument", name, err)
		}
	}
}

// fxamacker/cbor reads the json tags: same keys as JSON, optional fields omitted, no nulls.
func TestCBORUsesJSONNames(t *testing.T) {
	c := buildSample(t)
	c.Nam.GN, c.Nam.GNT = "", ""
	raw, err := cbor.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	dm, err := cbor.DecOptions{DefaultMapType: reflectMapStringAny}.DecMode()
	if err != nil {
		t.Fatal(err)
	}
	var fromCBOR map[string]any
	if err := dm.Unmarshal(raw, &fromCBOR); err != nil {
		t.Fatal(err)
	}
	js, _ := json.Marshal(c)
	var fromJSON map[string]any
	if err := json.Unmarshal(js, &fromJSON); err != nil {
		t.Fatal(err)
	}
	keys := func(m map[string]any) []string {
		var out []string
		for k, v := range m {
			out = append(out, k)
			if sub, ok := v.(map[string]any); ok {
				for kk := range sub {
					out = append(out, k+"."+kk)
				}
			}
		}
		slices.Sort(out)
		return out
	}
	if got, want := keys(fromCBOR), keys(fromJSON); !slices.Equal(got, want) {
		t.Errorf("CBOR keys %v, JSON keys %v", got, want)
	}
	if want := []string{"dob", "nam", "nam.fn", "nam.fnt", "v", "ver"}; !slices.Equal(keys(fromJSON), want) {
		t.Errorf("keys %v, want %v (no empty optional fields)", keys(fromJSON), want)
	}
	if bytes.Contains(js, []byte("null")) || bytes.Contains(raw, []byte{0xf6}) {
		t.Errorf("null emitted: %s", js)
	}
}

func TestCheckValueSets(t *testing.T) {
	doc, err := buildSample(t).JSON()
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckValueSets(doc); err != nil {
		t.Fatalf("built certificate: %v", err)
	}
	tests := []struct {
		name, from, to, field string
	}{
		{"vp", `"vp":"1119349007"`, `"vp":"1119349008"`, "v[0].vp"},
		{"mp Vero Cell typo", `"mp":"EU/1/20/1528"`, `"mp":"Vero-Cell"`, "v[0].mp"},
		{"ma", `"ma":"ORG-100030215"`, `"ma":"ORG-1"`, "v[0].ma"},
		{"tg", `"tg":"840539006"`, `"tg":"840539007"`, "v[0].tg"},
		{"co", `"co":"VN"`, `"co":"VNM"`, "v[0].co"},
		{"co not a string", `"co":"VN"`, `"co":1`, "v[0].co"},
	}
	for _, tt := range tests {
		bad := strings.Replace(string(doc), tt.from, tt.to, 1)
		if bad == string(doc) {
			t.Fatalf("%s: %q not in %s", tt.name, tt.from, doc)
		}
		err := CheckValueSets([]byte(bad))
		if !errors.Is(err, ErrValueSet) || !strings.HasPrefix(err.Error(), tt.field+":") {
			t.Errorf("%s: error %v, want ErrValueSet naming %s", tt.name, err, tt.field)
		}
	}
	// A deprecated code still on 2021 certificates (Viet Nam's specimen: J07BX03) passes.
	legacy := strings.Replace(string(doc), `"vp":"1119349007"`, `"vp":"J07BX03"`, 1)
	if err := CheckValueSets([]byte(legacy)); err != nil {
		t.Errorf("J07BX03: %v", err)
	}
	// Tests and recoveries: official examples pass; a wrong test type or result fails.
	for _, f := range []string{"examples/test/simple-naat.json", "examples/recovery/simple.json", "test/valid/V-min-data.json"} {
		if err := CheckValueSets(readFile(t, filepath.Join("testdata", "schema", f))); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	naat := string(readFile(t, "testdata/schema/examples/test/simple-naat.json"))
	for _, tt := range []struct{ from, to, field string }{
		{`"LP6464-4"`, `"LP6464-5"`, "t[0].tt"},
		{`"260415000"`, `"260415001"`, "t[0].tr"},
	} {
		err := CheckValueSets([]byte(strings.Replace(naat, tt.from, tt.to, 1)))
		if !errors.Is(err, ErrValueSet) || !strings.HasPrefix(err.Error(), tt.field+":") {
			t.Errorf("%s: %v", tt.field, err)
		}
	}
	// Several errors are all reported.
	two := strings.Replace(strings.Replace(string(doc), `"co":"VN"`, `"co":"XX"`, 1), `"tg":"840539006"`, `"tg":"1"`, 1)
	if err := CheckValueSets([]byte(two)); err == nil || !strings.Contains(err.Error(), "v[0].co") || !strings.Contains(err.Error(), "v[0].tg") {
		t.Errorf("two bad fields: %v", err)
	}
}

func TestDisplay(t *testing.T) {
	tests := []struct {
		vs         ValueSet
		code, want string
		ok         bool
	}{
		{VaccineMedicinalProduct, "EU/1/20/1528", "Comirnaty", true},
		{VaccineMAHManufacturer, "CIGB", "Center for Genetic Engineering and Biotechnology", true},
		{DiseaseAgentTargeted, "840539006", "COVID-19", true},
		{VaccineProphylaxis, "J07BX03", "covid-19 vaccines (deprecated)", true},
		{CountryCodes, "VN", "Viet Nam", true},
		{VaccineMedicinalProduct, "Vero-Cell", "", false},
		{ValueSet("no-such-set.json"), "VN", "", false},
	}
	for _, tt := range tests {
		got, ok := Display(tt.vs, tt.code)
		if got != tt.want || ok != tt.ok {
			t.Errorf("Display(%s, %s) = %q, %v; want %q, %v", tt.vs, tt.code, got, ok, tt.want, tt.ok)
		}
	}
}

func BenchmarkCheckValueSets(b *testing.B) {
	doc, err := buildSample(b).JSON()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := CheckValueSets(doc); err != nil {
			b.Fatal(err)
		}
	}
}

func TestDecodeDocument(t *testing.T) {
	ok := map[string]any{
		`{}`:                          map[string]any{},
		` [ ] `:                       []any{},
		`{"a":[1,-0.5e+3,true,null]}`: map[string]any{"a": []any{json.Number("1"), json.Number("-0.5e+3"), true, nil}},
		`"\u0056\u0069\u1ec7t \"N\""`: "Việt \"N\"",
		`"Nguyễn"`:                    "Nguyễn",
		`0`:                           json.Number("0"),
	}
	for in, want := range ok {
		got, err := DecodeDocument([]byte(in))
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("DecodeDocument(%s) = %#v, %v; want %#v", in, got, err, want)
		}
	}
	for _, in := range []string{``, ` `, `{`, `{"a"}`, `{"a":1,}`, `[1,]`, `[1 2]`, `{"a":1 "b":2}`, `{a:1}`,
		`01`, `1.`, `.5`, `1e`, `-`, `+1`, `tru`, `nul`, `"abc`, "\"a\tb\"", `"\x"`, `"\u12"`,
		"\"\xff\"", `{"a":1,"a":2}`, `{"a":{"b":1,"b":1}}`, `{} {}`, `[]]`} {
		if v, err := DecodeDocument([]byte(in)); !errors.Is(err, ErrDocument) {
			t.Errorf("DecodeDocument(%q) = %#v, %v; want ErrDocument", in, v, err)
		}
	}
}

// The hand parser gives encoding/json's answer, or a stricter refusal.
func FuzzDecodeDocument(f *testing.F) {
	for _, p := range []string{"test/*/*.json", "examples/*/*.json"} {
		for _, file := range schemaFiles(f, p) {
			f.Add(readFile(f, file))
		}
	}
	f.Add([]byte(`{"a":"\ud800\u00e9\\\/","b":[1e5,-0,0.25E-2]}`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		got, err := DecodeDocument(doc)
		dec := json.NewDecoder(bytes.NewReader(doc))
		dec.UseNumber()
		var want any
		stdErr := dec.Decode(&want)
		if stdErr == nil {
			if _, e := dec.Token(); e == nil {
				stdErr = errors.New("trailing data")
			}
		}
		if err != nil {
			if !errors.Is(err, ErrDocument) {
				t.Fatalf("unclassified error %v", err)
			}
			return // stricter than encoding/json is allowed (duplicates, UTF-8, depth)
		}
		if stdErr != nil {
			t.Fatalf("accepted %q which encoding/json rejects: %v", doc, stdErr)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: got %#v, encoding/json %#v", doc, got, want)
		}
	})
}
