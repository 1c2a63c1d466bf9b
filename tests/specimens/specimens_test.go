package specimens

import (
	"bytes"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/veraison/go-cose"

	"github.com/vaxpass/vaxpass/shared/domain/dcc"
	"github.com/vaxpass/vaxpass/shared/domain/dcc/dccschema"
	"github.com/vaxpass/vaxpass/shared/hc1/hcert"
	"github.com/vaxpass/vaxpass/shared/hc1/qr"
	"github.com/vaxpass/vaxpass/shared/hc1/qrscan"
)

const (
	specimenDir    = "testdata/dcc-quality-assurance"
	exceptionsFile = "testdata/exceptions.csv"
)

// Stages of the decoding pipeline, in order; an exception names the one that fails.
const (
	stageQR     = "qr"      // reading the QR code from the image
	stagePrefix = "prefix"  // "HC1:"
	stageBase45 = "base45"  // Base45
	stageZlib   = "inflate" // zlib
	stageCOSE   = "cose"    // COSE_Sign1
	stageClaims = "claims"  // CWT claims
	stageDCC    = "dcc"     // DCC CBOR to JSON
	stageSchema = "schema"  // the official DCC JSON schema
)

var stages = []string{stageQR, stagePrefix, stageBase45, stageZlib, stageCOSE, stageClaims, stageDCC, stageSchema}

// decoded is what the pipeline got from one image.
type decoded struct {
	hc1  string
	msg  *hcert.Sign1
	cwt  *hcert.CWT
	json []byte
}

// decodeSpecimen runs QR -> HC1 -> Base45 -> zlib -> COSE -> CWT -> DCC JSON ->
// schema. The signature is not checked: there is no trust list for these issuers.
func decodeSpecimen(path string) (d decoded, stage string, err error) {
	if d.hc1, err = qrscan.DecodeFile(path); err != nil {
		return d, stageQR, err
	}
	text, err := hcert.Unprefix(d.hc1)
	if err != nil {
		return d, stagePrefix, err
	}
	z, err := hcert.DecodeBase45(text)
	if err != nil {
		return d, stageBase45, err
	}
	raw, err := hcert.Inflate(z)
	if err != nil {
		return d, stageZlib, err
	}
	if d.msg, err = hcert.ParseCOSE(raw); err != nil {
		return d, stageCOSE, err
	}
	if d.cwt, err = hcert.ParseClaims(d.msg.Payload); err != nil {
		return d, stageClaims, err
	}
	if d.json, err = hcert.DCCToJSON(d.cwt.DCC); err != nil {
		return d, stageDCC, err
	}
	if err := dccschema.ValidateJSON(d.json); err != nil {
		return d, stageSchema, err
	}
	return d, "", nil
}

// specimenImages lists every image under the specimen directory (by content type
// rather than name would be stricter, but every file there except LICENSE and
// NOTICE is an image; TestSpecimenDirectoryHoldsOnlyImages checks that).
func specimenImages(t *testing.T) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(specimenDir, func(path string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		switch strings.ToLower(filepath.Ext(path)) {
		case ".png", ".jpeg", ".jpg":
			rel, err := filepath.Rel(specimenDir, path)
			files = append(files, filepath.ToSlash(rel))
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	return files
}

func TestSpecimenDirectoryHoldsOnlyImages(t *testing.T) {
	err := filepath.WalkDir(specimenDir, func(path string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		name := e.Name()
		if name == "LICENSE" || name == "NOTICE" {
			return nil
		}
		head := make([]byte, 8)
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		if _, err := f.Read(head); err != nil {
			return err
		}
		isPNG := bytes.HasPrefix(head, []byte("\x89PNG\r\n\x1a\n"))
		isJPEG := bytes.HasPrefix(head, []byte{0xFF, 0xD8, 0xFF})
		ext := strings.ToLower(filepath.Ext(name))
		if !(isPNG || isJPEG) || (ext != ".png" && ext != ".jpeg" && ext != ".jpg") {
			t.Errorf("%s: not a PNG or JPEG image file (the test would skip it)", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"LICENSE", "NOTICE"} {
		if _, err := os.Stat(filepath.Join(specimenDir, f)); err != nil {
			t.Errorf("the specimens' %s must travel with them: %v", f, err)
		}
	}
}

type exception struct {
	stage, reason string
}

func readExceptions(t *testing.T) map[string]exception {
	t.Helper()
	f, err := os.Open(exceptionsFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.Comment = '#'
	rows, err := r.ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", exceptionsFile, err)
	}
	if len(rows) == 0 || strings.Join(rows[0], ",") != "path,stage,reason" {
		t.Fatalf("%s: header must be path,stage,reason", exceptionsFile)
	}
	out := map[string]exception{}
	for i, row := range rows[1:] {
		line := i + 2
		if len(row) != 3 || row[0] == "" || strings.TrimSpace(row[2]) == "" {
			t.Fatalf("%s row %d: want path,stage,reason with a reason", exceptionsFile, line)
		}
		if !contains(stages, row[1]) {
			t.Fatalf("%s row %d: stage %q is not one of %v", exceptionsFile, line, row[1], stages)
		}
		if _, dup := out[row[0]]; dup {
			t.Fatalf("%s row %d: %s listed twice", exceptionsFile, line, row[0])
		}
		out[row[0]] = exception{stage: row[1], reason: row[2]}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestSpecimensDecode is the acceptance check: every specimen image decodes to a
// schema-valid DCC unless exceptions.csv lists it, at the stage where it fails.
// A listed specimen that now passes, or fails elsewhere, fails the test too, so the
// list stays true.
func TestSpecimensDecode(t *testing.T) {
	images := specimenImages(t)
	if len(images) < 400 {
		t.Fatalf("only %d specimen images; is testdata complete?", len(images))
	}
	exceptions := readExceptions(t)
	for path := range exceptions {
		if !contains(images, path) {
			t.Errorf("exceptions.csv lists %s, which is not a specimen image", path)
		}
	}
	passed, excepted := 0, 0
	byStage := map[string]int{}
	algs := map[string]int{}
	valueSetFailures := 0
	for _, path := range images {
		d, stage, err := decodeSpecimen(filepath.Join(specimenDir, path))
		ex, listed := exceptions[path]
		switch {
		case err == nil && listed:
			t.Errorf("%s: listed as failing at %s (%s) but decodes to a schema-valid DCC; remove it from exceptions.csv",
				path, ex.stage, ex.reason)
		case err == nil:
			passed++
			algs[d.msg.Algorithm.String()]++
			if dcc.CheckValueSets(d.json) != nil {
				valueSetFailures++
			}
		case !listed:
			t.Errorf("%s: fails at stage %s: %v", path, stage, err)
		case ex.stage != stage:
			t.Errorf("%s: listed as failing at %s but fails at %s: %v", path, ex.stage, stage, err)
		default:
			excepted++
			byStage[stage]++
			t.Logf("excepted %s (%s): %v", path, stage, err)
		}
	}
	t.Logf("%d specimen images: %d decode to a schema-valid DCC, %d listed exceptions %v", len(images), passed, excepted, byStage)
	t.Logf("algorithms of the valid ones: %v; %d of them use a code outside the current value sets (not an acceptance criterion)", algs, valueSetFailures)
}

// TestVietnamSpecimen pins Vietnam's own QA specimen (notes §4.2): a JPEG named .png,
// PS256, its kid, schema 1.3.0 and the AstraZeneca product code.
func TestVietnamSpecimen(t *testing.T) {
	path := filepath.Join(specimenDir, "VN/1.3.0/VAC_VN.png")
	head, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(head, []byte{0xFF, 0xD8, 0xFF}) {
		t.Errorf("expected a JPEG despite the .png name")
	}
	d, stage, err := decodeSpecimen(path)
	if err != nil {
		t.Fatalf("fails at %s: %v", stage, err)
	}
	if d.msg.Algorithm != cose.AlgorithmPS256 || int(d.msg.Algorithm) != -37 {
		t.Errorf("alg %v, want PS256 (-37)", d.msg.Algorithm)
	}
	if got := base64.StdEncoding.EncodeToString(d.msg.KID); got != "8w2kZxb3iC0=" || !d.msg.KIDProtected {
		t.Errorf("kid %s (protected %v), want 8w2kZxb3iC0= in the protected header", got, d.msg.KIDProtected)
	}
	if d.cwt.Issuer != "VN" {
		t.Errorf("iss %q, want VN", d.cwt.Issuer)
	}
	var doc struct {
		Ver string `json:"ver"`
		V   []struct {
			MP string `json:"mp"`
			CO string `json:"co"`
			CI string `json:"ci"`
		} `json:"v"`
	}
	if err := json.Unmarshal(d.json, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Ver != "1.3.0" || len(doc.V) != 1 || doc.V[0].MP != "EU/1/21/1529" || doc.V[0].CO != "VN" {
		t.Errorf("ver %q v %+v; want 1.3.0 and one vaccination with mp EU/1/21/1529 in VN", doc.Ver, doc.V)
	}
	if len(doc.V) == 1 && !strings.HasPrefix(doc.V[0].CI, "URN:UVCI:01:VN:") {
		t.Errorf("ci does not have Vietnam's UVCI prefix")
	}
	if len(d.hc1) != 825 {
		t.Errorf("HC1 is %d characters, notes §4.2 measured 825", len(d.hc1))
	}
}

// The stage constants must name the hcert failure classes they stand for; this
// keeps the exceptions file meaningful if the pipeline changes.
func TestStagesMatchPipelineErrors(t *testing.T) {
	for _, c := range []struct {
		hc1   string
		stage string
		want  error
	}{
		{"HC2:ABC", stagePrefix, hcert.ErrPrefix},
		{"HC1:A", stageBase45, hcert.ErrBase45},
		{"HC1:" + "0" + "00", stageZlib, hcert.ErrInflate},
	} {
		path := filepath.Join(t.TempDir(), "x.png")
		png, err := qr.PNG(c.hc1)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, png, 0o600); err != nil {
			t.Fatal(err)
		}
		_, stage, err := decodeSpecimen(path)
		if stage != c.stage || !errors.Is(err, c.want) {
			t.Errorf("%q: stage %q err %v, want %q wrapping %v", c.hc1, stage, err, c.stage, c.want)
		}
	}
}
