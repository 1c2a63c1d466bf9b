package dccschema

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/vaxpass/vaxpass/shared/domain/dcc"
)

// dcc's testdata/schema holds eu-dcc-schema's examples/ and test/ (commit 9fe38ed,
// Apache-2.0, ../testdata/schema/LICENSE); dcc's own tests read them too.
func schemaFiles(t testing.TB, pattern string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "testdata", "schema", pattern))
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

func TestOfficialValidDocuments(t *testing.T) {
	files := append(schemaFiles(t, "test/valid/*.json"), schemaFiles(t, "examples/*/*.json")...)
	if len(files) != 13+27 {
		t.Fatalf("found %d valid files, want 40 (13 tests, 27 examples)", len(files))
	}
	for _, f := range files {
		if err := ValidateJSON(readFile(t, f)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

func TestOfficialInvalidDocuments(t *testing.T) {
	// The path each official invalid test must be blamed on.
	want := map[string]string{
		"empty.json":           "/v",
		"invalid_dob.json":     "/dob",
		"invalid_dob2.json":    "/dob",
		"invalid_vac.json":     "/v/0/dn",
		"missing_dob.json":     "/",
		"missing_fnt_gnt.json": "/nam",
	}
	files := schemaFiles(t, "test/invalid/*.json")
	if len(files) != len(want) {
		t.Fatalf("found %d invalid files, want %d", len(files), len(want))
	}
	for _, f := range files {
		err := ValidateJSON(readFile(t, f))
		var se *dcc.SchemaError
		if !errors.As(err, &se) || !errors.Is(err, dcc.ErrSchema) {
			t.Errorf("%s: error %v, want a *dcc.SchemaError", f, err)
			continue
		}
		path := want[filepath.Base(f)]
		if !slices.ContainsFunc(se.Fields, func(fe dcc.FieldError) bool { return fe.Path == path }) {
			t.Errorf("%s: %v does not name %s", f, err, path)
		}
		if !strings.Contains(err.Error(), path+": ") {
			t.Errorf("%s: message %q does not show the path", f, err)
		}
	}
}

func TestValidateJSONNamesTheField(t *testing.T) {
	base := readFile(t, "../testdata/schema/examples/vaccination/simple.json")
	tests := []struct {
		name, from, to, path string
	}{
		{"fnt lower case", `"fnt": "SMITH<JONES"`, `"fnt": "Smith<Jones"`, "/nam/fnt"},
		{"dn as string", `"dn": 1`, `"dn": "1"`, "/v/0/dn"},
		{"sd float", `"sd": 2`, `"sd": 2.5`, "/v/0/sd"},
		{"null issuer", `"is": "Ministry of Health Welfare and Sport"`, `"is": null`, "/v/0/is"},
		{"long ci", `"ci": "URN:UVCI:01:NL:DADFCC47C7334E45A906DB12FD859FB7#1"`, `"ci": "` + strings.Repeat("X", 81) + `"`, "/v/0/ci"},
		{"long fn", `"fn": "Smith-Jones"`, `"fn": "` + strings.Repeat("Ễ", 81) + `"`, "/nam/fn"},
		{"two groups", `"v": [`, `"r": [{}], "v": [`, "/"},
	}
	for _, tt := range tests {
		doc := strings.Replace(string(base), tt.from, tt.to, 1)
		if doc == string(base) {
			t.Fatalf("%s: %q not found in simple.json", tt.name, tt.from)
		}
		err := ValidateJSON([]byte(doc))
		var se *dcc.SchemaError
		if !errors.As(err, &se) {
			t.Errorf("%s: error %v, want *dcc.SchemaError", tt.name, err)
			continue
		}
		if !slices.ContainsFunc(se.Fields, func(fe dcc.FieldError) bool { return fe.Path == tt.path }) {
			t.Errorf("%s: %v does not name %s", tt.name, err, tt.path)
		}
	}
}

func TestValidateJSONRejectsUnreadableDocuments(t *testing.T) {
	valid := readFile(t, "../testdata/schema/examples/vaccination/simple.json")
	tests := map[string][]byte{
		"empty":          nil,
		"not json":       []byte("HC1:NCFOXN%TS3DH"),
		"trailing data":  append(slices.Clone(valid), []byte(` {}`)...),
		"two documents":  append(slices.Clone(valid), valid...),
		"truncated":      valid[:len(valid)/2],
		"duplicate key":  []byte(`{"ver":"1.3.0","ver":"1.3.0"}`),
		"duplicate deep": bytes.Replace(valid, []byte(`"dn": 1`), []byte(`"dn": 1, "dn": 2`), 1),
		"too deep":       []byte(strings.Repeat("[", 40) + strings.Repeat("]", 40)),
		"too big":        append([]byte(`{"ver":"`), append(bytes.Repeat([]byte("1"), dcc.MaxDocumentSize), `"}`...)...),
	}
	for name, doc := range tests {
		if err := ValidateJSON(doc); !errors.Is(err, dcc.ErrDocument) {
			t.Errorf("%s: ValidateJSON error %v, want dcc.ErrDocument", name, err)
		}
	}
}

// The verifier validates the CBOR payload decoded to Go values; the same rules apply.
func TestValidateValueFromCBOR(t *testing.T) {
	c := buildSample(t)
	raw, err := cbor.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	dm, err := cbor.DecOptions{DefaultMapType: reflectMapStringAny}.DecMode()
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := dm.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	if err := ValidateValue(v); err != nil {
		t.Fatalf("CBOR-decoded certificate: %v", err)
	}
	if err := dcc.CheckValueSetsValue(v); err != nil {
		t.Fatalf("CBOR-decoded certificate value sets: %v", err)
	}
	v.(map[string]any)["v"].([]any)[0].(map[string]any)["dn"] = uint64(0)
	if err := ValidateValue(v); !errors.Is(err, dcc.ErrSchema) || !strings.Contains(err.Error(), "/v/0/dn") {
		t.Fatalf("dn 0 from CBOR: %v", err)
	}
}

func TestValidateConcurrently(t *testing.T) {
	doc, err := buildSample(t).JSON()
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Replace(doc, []byte(`"dn":3`), []byte(`"dn":0`), 1)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 64 {
		wg.Go(func() {
			if i%2 == 0 {
				errs <- ValidateJSON(doc)
			} else if err := ValidateJSON(bad); !errors.Is(err, dcc.ErrSchema) {
				errs <- errors.New("bad document passed")
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

func FuzzValidateJSON(f *testing.F) {
	for _, p := range []string{"test/*/*.json", "examples/*/*.json"} {
		for _, file := range schemaFiles(f, p) {
			f.Add(readFile(f, file))
		}
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		err := ValidateJSON(doc)
		if err != nil && !errors.Is(err, dcc.ErrSchema) && !errors.Is(err, dcc.ErrDocument) {
			t.Fatalf("unclassified error: %v", err)
		}
		vsErr := dcc.CheckValueSets(doc)
		if vsErr != nil && !errors.Is(vsErr, dcc.ErrValueSet) && !errors.Is(vsErr, dcc.ErrDocument) {
			t.Fatalf("unclassified value-set error: %v", vsErr)
		}
		if err != nil {
			return
		}
		// A schema-valid document decodes into dcc.Certificate and, re-encoded, stays valid
		// (what we emit never adds nulls or empty optional fields the schema would reject).
		var c dcc.Certificate
		if json.Unmarshal(doc, &c) != nil {
			return // e.g. a number too large for int: valid JSON, not our types
		}
		again, err := json.Marshal(&c)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(again, []byte("null")) {
			t.Fatalf("re-encoded with null: %s", again)
		}
	})
}

func BenchmarkValidateJSON(b *testing.B) {
	doc, err := buildSample(b).JSON()
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	for b.Loop() {
		if err := ValidateJSON(doc); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkValidateValue(b *testing.B) {
	doc, err := buildSample(b).JSON()
	if err != nil {
		b.Fatal(err)
	}
	v, err := dcc.DecodeDocument(doc)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := ValidateValue(v); err != nil {
			b.Fatal(err)
		}
	}
}

// fastPathCorpus is every official document plus variants of a built certificate that
// stress each rule of the hand-compiled vaccination branch.
func fastPathCorpus(t testing.TB) [][]byte {
	var out [][]byte
	for _, p := range []string{"test/*/*.json", "examples/*/*.json"} {
		for _, f := range schemaFiles(t, p) {
			out = append(out, readFile(t, f))
		}
	}
	doc, err := buildSample(t).JSON()
	if err != nil {
		t.Fatal(err)
	}
	s := string(doc)
	out = append(out, doc)
	for _, r := range [][2]string{
		{`"dn":3`, `"dn":0`}, {`"dn":3`, `"dn":-3`}, {`"dn":3`, `"dn":3.0`}, {`"dn":3`, `"dn":3e0`},
		{`"dn":3`, `"dn":"3"`}, {`"sd":3`, `"sd":null`}, {`"dn":3`, `"dn":99999999999999999999`},
		{`"ver":"1.3.0"`, `"ver":"1.3"`}, {`"ver":"1.3.0"`, `"ver":"1x3y0"`}, {`"ver":"1.3.0"`, `"ver":1`},
		{`"dob":"1985-03-07"`, `"dob":""`}, {`"dob":"1985-03-07"`, `"dob":"1885"`}, {`"dob":"1985-03-07"`, `"dob":"1985-3"`},
		{`"fnt":"NGUYEN"`, `"fnt":""`}, {`"fnt":"NGUYEN"`, `"fnt":"NGUYỄN"`}, {`"fnt":"NGUYEN",`, ``},
		{`"fnt":"NGUYEN"`, `"fnt":"` + strings.Repeat("A", 80) + `"`}, {`"fnt":"NGUYEN"`, `"fnt":"` + strings.Repeat("A", 81) + `"`},
		{`"gnt":"VAN<AN"`, `"gnt":"VAN AN"`}, {`"fn":"Nguyễn"`, `"fn":"` + strings.Repeat("ễ", 80) + `"`},
		{`"fn":"Nguyễn"`, `"fn":"` + strings.Repeat("ễ", 81) + `"`}, {`"fn":"Nguyễn"`, `"fn":7`},
		{`"co":"VN"`, `"co":"vn"`}, {`"co":"VN"`, `"co":"xVNx"`}, {`"co":"VN"`, `"co":""`},
		{`"is":"Ministry of Health of Viet Nam"`, `"is":"` + strings.Repeat("x", 81) + `"`},
		{`"ci":"`, `"ci":"` + strings.Repeat("x", 60)}, {`"tg":"840539006"`, `"tg":840539006`},
		{`"dt":"2022-01-05"`, `"dt":"not a date"`}, {`"v":[`, `"t":[{}],"v":[`}, {`"v":[`, `"x":1,"v":[`},
		{`"vp":"1119349007",`, ``}, {`"ver":"1.3.0",`, ``}, {`"dob":"1985-03-07",`, ``}, {`"nam":{`, `"nam":{"fn":"x"},"x":{`},
	} {
		m := strings.Replace(s, r[0], r[1], 1)
		if m == s {
			t.Fatalf("%q not in %s", r[0], s)
		}
		out = append(out, []byte(m))
	}
	return out
}

// slowButValid marks the valid documents the fast path leaves to the library on purpose:
// integers written as floats, and integers too large for int64.
func slowButValid(doc []byte) bool {
	for _, s := range []string{`"dn":3.0`, `"dn":3e0`, `"dn":99999999999999999999`} {
		if bytes.Contains(doc, []byte(s)) {
			return true
		}
	}
	return false
}

func TestFastPathAgreesWithSchema(t *testing.T) {
	fast := 0
	for _, doc := range fastPathCorpus(t) {
		v, err := dcc.DecodeDocument(doc)
		if err != nil {
			t.Fatalf("%s: %v", doc, err)
		}
		lib := validateWithLibrary(v)
		if dcc.KnownValidVaccination(v) {
			fast++
			if lib != nil {
				t.Errorf("fast path accepts what the schema rejects (%v):\n%s", lib, doc)
			}
		} else if lib == nil && bytes.Contains(doc, []byte(`"v"`)) && !slowButValid(doc) {
			t.Errorf("fast path misses a valid vaccination document (it would be slow):\n%s", doc)
		}
	}
	if fast < 20 {
		t.Errorf("fast path taken for %d documents only", fast)
	}
}

func FuzzFastPathAgreesWithSchema(f *testing.F) {
	for _, doc := range fastPathCorpus(f) {
		f.Add(doc)
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		v, err := dcc.DecodeDocument(doc)
		if err != nil {
			return
		}
		if dcc.KnownValidVaccination(v) {
			if err := validateWithLibrary(v); err != nil {
				t.Fatalf("fast path accepts what the schema rejects (%v):\n%s", err, doc)
			}
		}
	})
}

// A crafted CBOR payload can decode to Go types JSON never produces; they are schema
// violations, never a panic or a pass.
func TestValidateValueForeignTypes(t *testing.T) {
	sample, err := buildSample(t).JSON()
	if err != nil {
		t.Fatal(err)
	}
	withField := func(path []string, val any) any {
		v, err := dcc.DecodeDocument(sample)
		if err != nil {
			t.Fatal(err)
		}
		m := v.(map[string]any)
		for _, p := range path[:len(path)-1] {
			switch x := m[p].(type) {
			case map[string]any:
				m = x
			case []any:
				m = x[0].(map[string]any)
			}
		}
		m[path[len(path)-1]] = val
		return v
	}
	for name, v := range map[string]any{
		"bytes":          []byte("x"),
		"time":           time.Date(2022, 1, 1, 0, 0, 0, 0, time.UTC),
		"any-keyed map":  map[any]any{"ver": "1.3.0"},
		"bytes ver":      withField([]string{"ver"}, []byte("1.3.0")),
		"float32 dn":     withField([]string{"v", "dn"}, float32(0.5)),
		"negative dn":    withField([]string{"v", "dn"}, int64(-1)),
		"bytes fnt":      withField([]string{"nam", "fnt"}, []byte("NGUYEN")),
		"tagged dt":      withField([]string{"v", "dt"}, cbor.Tag{Number: 1004, Content: "2022-01-05"}),
		"struct":         struct{}{},
		"nil":            nil,
		"string at root": "HC1:",
	} {
		if err := ValidateValue(v); !errors.Is(err, dcc.ErrSchema) {
			t.Errorf("%s: ValidateValue = %v, want dcc.ErrSchema", name, err)
		}
		if err := dcc.CheckValueSetsValue(v); err != nil && !errors.Is(err, dcc.ErrValueSet) {
			t.Errorf("%s: dcc.CheckValueSetsValue = %v", name, err)
		}
	}
	if err := ValidateValue(withField([]string{"v", "dn"}, uint8(2))); err != nil {
		t.Errorf("uint8 dn: %v", err)
	}
}

// The fast path (schema_fast.go) hand-compiles this exact schema file: a new schema must
// be re-read against it before this pin is moved.
func TestEmbeddedSchemaIsPinned(t *testing.T) {
	const want = "3f5103800f6223120588650933e3f1b8042f562538841ab8857c878c0c693873"
	if got := fmt.Sprintf("%x", sha256.Sum256(combinedSchema)); got != want {
		t.Fatalf("embedded schema changed (sha256 %s); review schema_fast.go, then update the pin", got)
	}
}

// BenchmarkValidateLibraryOnly is the cost ValidateValue avoids with its fast path.
func BenchmarkValidateLibraryOnly(b *testing.B) {
	doc, err := buildSample(b).JSON()
	if err != nil {
		b.Fatal(err)
	}
	v, err := dcc.DecodeDocument(doc)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := validateWithLibrary(v); err != nil {
			b.Fatal(err)
		}
	}
}
