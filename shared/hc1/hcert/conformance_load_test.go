package hcert

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// suiteDir is our copy of eu-digital-green-certificates/dgc-testdata (Apache-2.0).
const suiteDir = "testdata/dgc-testdata"

// rawTest is one dgc-testdata file ("RAW Content" in its README). Pointers tell
// absent fields from empty ones.
type rawTest struct {
	JSON       json.RawMessage `json:"JSON"`
	CBOR       *string         `json:"CBOR"`
	COSE       *string         `json:"COSE"`
	Compressed *string         `json:"COMPRESSED"`
	Base45     *string         `json:"BASE45"`
	Prefix     *string         `json:"PREFIX"`
	TwoDCode   *string         `json:"2DCODE"`
	TestCtx    struct {
		Schema          string  `json:"SCHEMA"`
		Certificate     *string `json:"CERTIFICATE"`
		ValidationClock *string `json:"VALIDATIONCLOCK"`
		Description     string  `json:"DESCRIPTION"`
	} `json:"TESTCTX"`
	Expected map[string]any `json:"EXPECTEDRESULTS"`
}

// flag returns an EXPECTED* flag: present, and its value. Non-boolean values
// (the suite has a nested EXPECTEDRESULTS object in three files) are absent.
func (r *rawTest) flag(name string) (want, present bool) {
	v, ok := r.Expected[name].(bool)
	return v, ok
}

type suiteFile struct {
	path    string // relative to suiteDir, slash-separated
	country string // first path element
	set     string // file name without .json
	test    rawTest
}

func loadSuite(t testing.TB) []suiteFile {
	t.Helper()
	var files []suiteFile
	err := filepath.WalkDir(suiteDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel := filepath.ToSlash(strings.TrimPrefix(p, suiteDir+string(filepath.Separator)))
		// Test files sit in <CC>/2DCode/raw/ or <CC>/<ver>/2DCode/raw/ (IE spells it Raw).
		if d.IsDir() || !strings.HasSuffix(rel, ".json") || !strings.Contains(strings.ToLower(rel), "/2dcode/raw/") {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		f := suiteFile{path: rel, country: strings.SplitN(rel, "/", 2)[0], set: strings.TrimSuffix(filepath.Base(rel), ".json")}
		if err := json.Unmarshal(data, &f.test); err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
		files = append(files, f)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(files, func(i, j int) bool { return files[i].path < files[j].path })
	if len(files) < 500 {
		t.Fatalf("found only %d test files under %s", len(files), suiteDir)
	}
	return files
}

// knownIssues mirrors the runner's known_issues fixture: keys
// "test_name:country:test_set" (empty parts match everything), value the reason.
type knownIssues map[string]string

func loadKnownIssues(t *testing.T) knownIssues {
	t.Helper()
	rows := readCSV(t, filepath.Join(suiteDir, "tests", "known_issues.csv"), []string{"test_name", "country", "test_set", "reason"})
	k := knownIssues{}
	for _, r := range rows {
		k[r[0]+":"+r[1]+":"+r[2]] = r[3]
	}
	return k
}

// lookup follows the runner's order: exact, whole country, any test of the
// set, any test of the country.
func (k knownIssues) lookup(test, country, set string) string {
	for _, key := range []string{test + ":" + country + ":" + set, test + ":" + country + ":", ":" + country + ":" + set, ":" + country + ":"} {
		if r, ok := k[key]; ok {
			return r
		}
	}
	return ""
}

// deviation is one of our own documented differences (testdata/deviations.csv).
type deviation struct{ flag, path, reason string }

func loadDeviations(t *testing.T) map[string]string {
	t.Helper()
	rows := readCSV(t, "testdata/deviations.csv", []string{"flag", "path", "reason"})
	m := map[string]string{}
	for _, r := range rows {
		if r[2] == "" {
			t.Fatalf("deviations.csv: %s %s has no reason", r[0], r[1])
		}
		m[r[0]+" "+r[1]] = r[2]
	}
	return m
}

func readCSV(t *testing.T, path string, header []string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.Comment = '#'
	rows, err := r.ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if len(rows) == 0 || strings.Join(rows[0], ",") != strings.Join(header, ",") {
		t.Fatalf("%s: header %v, want %v", path, rows[0], header)
	}
	return rows[1:]
}

// parseClock reads TESTCTX.VALIDATIONCLOCK like dateutil's isoparse: RFC 3339
// with any fraction, offsets with or without a colon, no offset meaning UTC.
func parseClock(s string) (time.Time, error) {
	for _, layout := range []string{
		time.RFC3339Nano,
		"2006-01-02T15:04:05.999999999-0700",
		"2006-01-02T15:04:05.999999999",
	} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("unparseable validation clock %q", s)
}
