package e2e

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/hc1/qrscan"
	"github.com/vaxpass/vaxpass/shared/testkit/cli"
	"github.com/vaxpass/vaxpass/shared/testkit/server"
	"github.com/vaxpass/vaxpass/shared/tool/synth"
)

// boostedMix raises the rare classes of the default mix, so that a few thousand people
// hold every class (every INVALID_ID reason, every MISMATCH reason, every trivial variant).
const boostedMix = "name_upper=0.02,name_spaces=0.02,id_spaced=0.02,id_dotted=0.02,id_length=0.02," +
	"id_letters=0.02,id_province=0.02,id_gender_century=0.02,id_birth_year=0.02,old_cmnd=0.02," +
	"wrong_gender=0.02,wrong_name_dob=0.02"

// pipelinePeople is the size of the generated registry (and of the dose records).
const pipelinePeople = 3000

// malformedCase is one case of testdata/malformed.json.
type malformedCase struct {
	Name   string                     `json:"name"`
	Set    map[string]json.RawMessage `json:"set"`
	Delete []string                   `json:"delete"`
	Raw    json.RawMessage            `json:"raw"`
	Errors []fieldError               `json:"errors"`
}

// expectation is what the upload answer must say about one record.
type expectation struct {
	what     string
	sourceID string
	status   string
	errors   []fieldError
}

// malformedRecords builds the malformed records of testdata/malformed.json from a valid
// record, each with its expected result.
func malformedRecords(t *testing.T, valid json.RawMessage) ([]json.RawMessage, []expectation) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "malformed.json"))
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Cases []malformedCase `json:"cases"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&struct {
		About string           `json:"about"`
		Cases *[]malformedCase `json:"cases"`
	}{Cases: &file.Cases}); err != nil {
		t.Fatalf("testdata/malformed.json: %v", err)
	}
	future := time.Now().UTC().AddDate(0, 0, 2).Format(time.DateOnly)
	var recs []json.RawMessage
	var want []expectation
	for i, c := range file.Cases {
		if len(c.Errors) == 0 {
			t.Fatalf("malformed case %q expects no error", c.Name)
		}
		raw := c.Raw
		if raw == nil {
			var m map[string]json.RawMessage
			if err := json.Unmarshal(valid, &m); err != nil {
				t.Fatal(err)
			}
			m["source_id"] = json.RawMessage(fmt.Sprintf("%q", fmt.Sprintf("E2E-BAD-%02d", i+1)))
			for k, v := range c.Set {
				m[k] = json.RawMessage(strings.ReplaceAll(string(v), "${FUTURE_DATE}", future))
			}
			for _, k := range c.Delete {
				delete(m, k)
			}
			if raw, err = json.Marshal(m); err != nil {
				t.Fatal(err)
			}
		}
		// The answer names the record by its source_id when it is a string.
		var obj struct {
			SourceID any `json:"source_id"`
		}
		sid := ""
		if json.Unmarshal(raw, &obj) == nil {
			if s, ok := obj.SourceID.(string); ok {
				sid = strings.TrimSpace(s)
			}
		}
		recs = append(recs, raw)
		want = append(want, expectation{what: "malformed: " + c.Name, sourceID: sid, status: "rejected", errors: c.Errors})
	}
	return recs, want
}

// checkReport compares an upload answer with the expectations, result by result.
func checkReport(t *testing.T, rep uploadReport, want []expectation) {
	t.Helper()
	for i, w := range want {
		got := rep.Results[i]
		if got.SourceID != w.sourceID || got.Status != w.status {
			t.Errorf("result %d (%s): source_id %q status %q, want %q %q (errors %+v)", i, w.what, got.SourceID, got.Status, w.sourceID, w.status, got.Errors)
			continue
		}
		if len(got.Errors) != len(w.errors) {
			t.Errorf("result %d (%s): errors %+v, want %+v", i, w.what, got.Errors, w.errors)
			continue
		}
		for j := range w.errors {
			if got.Errors[j].Field != w.errors[j].Field || got.Errors[j].Code != w.errors[j].Code || got.Errors[j].Message == "" {
				t.Errorf("result %d (%s): errors %+v, want %+v with messages", i, w.what, got.Errors, w.errors)
				break
			}
		}
	}
}

func TestPipeline(t *testing.T) {
	t.Parallel()
	start := time.Now()
	gen := generate(t, pipelinePeople, 0, 4, boostedMix)
	classes := map[synth.Class]int{}
	for _, tr := range gen.truth {
		classes[tr.Class]++
	}
	for _, c := range synth.Classes {
		if classes[c] == 0 {
			t.Fatalf("the generated records hold no record of class %s; raise its share in boostedMix", c)
		}
	}

	data := server.ScratchDir(t)
	cli.Must(t, "registry", "load", gen.file(synth.RegistryFile), "--data", data)
	keyA := strings.TrimSpace(cli.Must(t, "facility", "add", "--id", "e2e-site-a", "--name", "Trạm y tế E2E A", "--data", data).Stdout)
	keyB := strings.TrimSpace(cli.Must(t, "facility", "add", "--id", "e2e-site-b", "--name", "Trạm y tế E2E B", "--data", data).Stdout)
	if !strings.HasPrefix(keyA, "vxp_") || keyA == keyB || strings.Contains(keyA, "\n") {
		t.Fatalf("facility add printed %q and %q, want two distinct API keys", keyA, keyB)
	}
	srv := server.Spawn(t, data)
	a, b := newClient(t, srv, keyA), newClient(t, srv, keyB)
	public := newClient(t, srv, "")

	// --- Upload: the generated records in batches. The first one holds every class (the
	// records of the first person of each class come first), every kind of malformed
	// record interleaved, and two duplicates of its own records.
	const chunk = 800
	order := uploadOrder(gen)
	bad, badWant := malformedRecords(t, gen.raw[0])
	first := order[:min(chunk, len(order))]
	var batch1 []json.RawMessage
	var want1 []expectation
	inFirst := map[synth.Class]bool{}
	for n, i := range first {
		batch1 = append(batch1, gen.raw[i])
		want1 = append(want1, expectation{what: "generated, class " + string(gen.truth[i].Class), sourceID: gen.records[i].SourceID, status: "accepted"})
		inFirst[gen.truth[i].Class] = true
		if n%20 == 19 && len(bad) > 0 {
			batch1, want1 = append(batch1, bad[0]), append(want1, badWant[0])
			bad, badWant = bad[1:], badWant[1:]
		}
	}
	if len(inFirst) != len(synth.Classes) {
		t.Fatalf("the first batch holds %d of the %d classes", len(inFirst), len(synth.Classes))
	}
	batch1, want1 = append(batch1, bad...), append(want1, badWant...)
	// The same record twice in one batch, and the same source_id with other content: both
	// are duplicates of the first occurrence, which is what is stored.
	dupExact, dupChanged := gen.records[first[10]], gen.records[first[20]]
	batch1 = append(batch1, gen.raw[first[10]])
	want1 = append(want1, expectation{what: "exact duplicate in the batch", sourceID: dupExact.SourceID, status: "duplicate"})
	changed := dupChanged
	changed.Lot, changed.VaccinatedOn = "E2E-OTHER-LOT", "2021-12-31"
	changedRaw, _ := json.Marshal(changed)
	batch1 = append(batch1, changedRaw)
	want1 = append(want1, expectation{what: "changed duplicate in the batch", sourceID: dupChanged.SourceID, status: "duplicate"})
	if len(batch1) > 1000 {
		t.Fatalf("first batch has %d records, over the API's 1,000", len(batch1))
	}

	rep := a.upload(batch1)
	checkReport(t, rep, want1)
	if rep.Accepted != len(first) || rep.Duplicates != 2 {
		t.Errorf("first batch: %d accepted, %d duplicates; want %d and 2", rep.Accepted, rep.Duplicates, len(first))
	}
	for from := chunk; from < len(order); from += chunk {
		var batch []json.RawMessage
		for _, i := range order[from:min(from+chunk, len(order))] {
			batch = append(batch, gen.raw[i])
		}
		if rep := a.upload(batch); rep.Accepted != len(batch) {
			t.Fatalf("batch from %d: %d of %d accepted: %+v", from, rep.Accepted, len(batch), firstNotAccepted(rep))
		}
	}
	// The first batch again, as a facility retrying after a lost answer: nothing new.
	resend := a.upload(batch1)
	var wantResend []expectation
	for _, w := range want1 {
		if w.status == "accepted" {
			w.status = "duplicate"
		}
		wantResend = append(wantResend, w)
	}
	checkReport(t, resend, wantResend)
	if resend.Accepted != 0 {
		t.Errorf("re-sent batch: %d accepted, want 0", resend.Accepted)
	}

	t.Run("request errors", func(t *testing.T) {
		checkRequestErrors(t, srv, a, b, gen.records[0].SourceID)
	})

	// --- Matching: every record against the truth.
	all := waitMatched(t, a, len(gen.records), 3*time.Minute)
	t.Logf("%d records uploaded and matched in %s", len(all), time.Since(start).Round(time.Millisecond))
	everything := func(string) bool { return true }
	checkMatches(t, gen, all, everything)
	if got := all[dupChanged.SourceID]; got.Lot != dupChanged.Lot || got.VaccinatedOn != dupChanged.VaccinatedOn {
		t.Errorf("the changed duplicate overwrote the stored record: lot %q date %q", got.Lot, got.VaccinatedOn)
	}
	seenClass := map[synth.Class]bool{}
	for i, tr := range gen.truth {
		if seenClass[tr.Class] {
			continue
		}
		seenClass[tr.Class] = true
		one := a.dose(tr.SourceID)
		w := all[tr.SourceID]
		if one.Record != w.Record || one.Match.Status != w.Match.Status || !slices.Equal(nonNil(one.Match.Reasons), nonNil(w.Match.Reasons)) || !mapsEqual(one.Match.Corrected, w.Match.Corrected) {
			t.Errorf("GET /v1/doses/%s (class %s, line %d) = %+v, the worklist says %+v", tr.SourceID, tr.Class, i+1, one, w)
		}
	}

	// --- Signing: the facility signs its verified, fully vaccinated people.
	people := gen.people(t, everything)
	var eligible []*person
	verified := 0
	for _, p := range people {
		if p.Verified {
			verified++
		}
		if p.Eligible {
			eligible = append(eligible, p)
		}
	}
	slices.SortFunc(eligible, func(x, y *person) int { return strings.Compare(x.ID, y.ID) })
	if len(eligible) == 0 || len(eligible) == verified {
		t.Fatalf("%d eligible of %d verified people: the data cannot show who is and is not signed", len(eligible), verified)
	}
	var signed struct {
		Signed  int `json:"signed"`
		Waiting int `json:"waiting"`
	}
	a.call("POST", "/v1/signatures", nil, http.StatusOK, &signed)
	if signed.Signed != len(eligible) || signed.Waiting != verified-len(eligible) {
		t.Errorf("POST /v1/signatures = %+v, want signed %d, waiting %d", signed, len(eligible), verified-len(eligible))
	}
	uvcis := waitCertificates(t, a, eligible, 3*time.Minute)
	t.Logf("%d certificates issued, %s since start", len(uvcis), time.Since(start).Round(time.Millisecond))

	// Every record of an eligible person shows the person's certificate; no other does.
	distinct := map[string]bool{}
	for i, r := range gen.records {
		p := people[gen.truth[i].RegistryID]
		v := a.dose(r.SourceID)
		switch {
		case p.Eligible && (v.Certificate == nil || v.Certificate.UVCI != uvcis[p.ID] || v.Certificate.Status != "issued"):
			t.Errorf("record %s of an eligible person shows certificate %+v, want the person's, issued", r.SourceID, v.Certificate)
		case p.Eligible && !v.Certificate.ExpiresAt.After(v.Certificate.IssuedAt):
			t.Errorf("record %s: certificate expires %s, issued %s", r.SourceID, v.Certificate.ExpiresAt, v.Certificate.IssuedAt)
		case !p.Eligible && v.Certificate != nil:
			t.Errorf("record %s (class %s, eligible %v) shows a certificate", r.SourceID, p.Class, p.Eligible)
		}
		if v.Certificate != nil {
			distinct[v.Certificate.UVCI] = true
		}
	}
	if len(distinct) != len(eligible) {
		t.Errorf("%d distinct UVCIs shown for %d eligible people", len(distinct), len(eligible))
	}
	// Signing again finds nothing new; the other facility has nothing to sign.
	a.call("POST", "/v1/signatures", nil, http.StatusOK, &signed)
	if signed.Signed != 0 || signed.Waiting != verified-len(eligible) {
		t.Errorf("second POST /v1/signatures = %+v, want signed 0, waiting %d", signed, verified-len(eligible))
	}
	b.call("POST", "/v1/signatures", nil, http.StatusOK, &signed)
	if signed.Signed != 0 {
		t.Errorf("POST /v1/signatures of a facility without records signed %d", signed.Signed)
	}

	// --- Lookup, QR and verification.
	trustFile := filepath.Join(t.TempDir(), "trustlist.json")
	checkTrustList(t, public, trustFile)
	t.Run("lookup", func(t *testing.T) {
		checkLookups(t, public, gen, eligible, uvcis, trustFile, data)
	})

	// --- What the server stored: exactly one certificate per eligible person.
	srv.Stop()
	st := openStored(t, data)
	defer st.close(t)
	checkOneCertificateEach(t, st.certificates(t), people, uvcis)
	if c := st.queues(t); c.Visible+c.InFlight+c.Delayed+c.Dead != 0 {
		t.Errorf("queues after the run: %+v; want empty", c)
	}
	t.Logf("pipeline done in %s", time.Since(start).Round(time.Millisecond))
}

// uploadOrder is the order in which the generated records are uploaded: the records of
// the first person of each class, then the others as generated.
func uploadOrder(gen *generated) []int {
	leader := map[synth.Class]string{}
	for _, tr := range gen.truth {
		if _, ok := leader[tr.Class]; !ok {
			leader[tr.Class] = tr.RegistryID
		}
	}
	var front, rest []int
	for i, tr := range gen.truth {
		if leader[tr.Class] == tr.RegistryID {
			front = append(front, i)
		} else {
			rest = append(rest, i)
		}
	}
	return append(front, rest...)
}

func firstNotAccepted(rep uploadReport) uploadResult {
	for _, r := range rep.Results {
		if r.Status != "accepted" {
			return r
		}
	}
	return uploadResult{}
}

// checkRequestErrors covers what is wrong with a whole request rather than a record.
func checkRequestErrors(t *testing.T, srv *server.Process, a, b *client, storedSourceID string) {
	valid, _ := json.Marshal(map[string]any{"records": []any{map[string]any{"source_id": "x"}}})
	tooMany := make([]json.RawMessage, 1001)
	for i := range tooMany {
		tooMany[i] = json.RawMessage(`{}`)
	}
	tooManyBody, _ := json.Marshal(map[string]any{"records": tooMany})
	tests := []struct {
		name       string
		c          *client
		method     string
		path, body string
		status     int
		code       string
	}{
		{"no API key", newClient(t, srv, ""), "POST", "/v1/doses", string(valid), 401, "unauthorized"},
		{"unknown API key", newClient(t, srv, "vxp_"+strings.Repeat("A", 43)), "POST", "/v1/doses", string(valid), 401, "unauthorized"},
		{"no API key for signing", newClient(t, srv, ""), "POST", "/v1/signatures", "", 401, "unauthorized"},
		{"body is not JSON", a, "POST", "/v1/doses", "records: none", 400, ""},
		{"unknown top-level field", a, "POST", "/v1/doses", `{"records":[],"facility":"x"}`, 400, ""},
		{"no records", a, "POST", "/v1/doses", `{"records":[]}`, 400, "required"},
		{"records missing", a, "POST", "/v1/doses", `{}`, 400, "required"},
		{"over 1,000 records", a, "POST", "/v1/doses", string(tooManyBody), 400, "out_of_range"},
		{"unknown source_id", a, "GET", "/v1/doses/E2E-NO-SUCH-RECORD", "", 404, "not_found"},
		{"another facility's record", b, "GET", "/v1/doses/" + storedSourceID, "", 404, "not_found"},
		{"worklist without status", a, "GET", "/v1/worklist", "", 400, "required"},
		{"worklist of an unknown status", a, "GET", "/v1/worklist?status=DONE", "", 400, "invalid_value"},
		{"lookup without a name", newClient(t, srv, ""), "POST", "/v1/passports/lookup", `{"id_number":"001090012345","dob":"1990"}`, 400, "required"},
	}
	for _, tt := range tests {
		var body []byte
		if tt.body != "" {
			body = []byte(tt.body)
		}
		status, got, h := tt.c.do(tt.method, tt.path, body, "application/json")
		var e errorBody
		err := json.Unmarshal(got, &e)
		switch {
		case status != tt.status:
			t.Errorf("%s: status %d, want %d: %.300s", tt.name, status, tt.status, got)
		case err != nil || e.Error.Code == "" || e.Error.Message == "":
			t.Errorf("%s: body %.300s is not {\"error\":{\"code\",\"message\"}}", tt.name, got)
		case tt.code != "" && e.Error.Code != tt.code:
			t.Errorf("%s: error code %q, want %q (%s)", tt.name, e.Error.Code, tt.code, got)
		case !strings.HasPrefix(h.Get("Content-Type"), "application/json"):
			t.Errorf("%s: Content-Type %q", tt.name, h.Get("Content-Type"))
		case strings.Contains(string(got), ".go:") || strings.Contains(string(got), "goroutine") || strings.Contains(string(got), "bolt"):
			t.Errorf("%s: the error leaks internals: %s", tt.name, got)
		}
	}
}

// checkTrustList fetches GET /v1/trustlist, checks its shape and writes it to file.
func checkTrustList(t *testing.T, c *client, file string) {
	t.Helper()
	var list []struct {
		KID             string `json:"kid"`
		Country         string `json:"country"`
		CertificateType string `json:"certificateType"`
		RawData         string `json:"rawData"`
	}
	body := c.call("GET", "/v1/trustlist", nil, http.StatusOK, &list)
	if len(list) == 0 {
		t.Fatal("the trust list is empty")
	}
	for _, e := range list {
		kid, err := base64.StdEncoding.DecodeString(e.KID)
		if err != nil || len(kid) != 8 || e.Country != "VN" || e.CertificateType != "DSC" {
			t.Errorf("trust list entry kid %q country %q type %q", e.KID, e.Country, e.CertificateType)
		}
		der, err := base64.StdEncoding.DecodeString(e.RawData)
		if err == nil {
			_, err = x509.ParseCertificate(der)
		}
		if err != nil {
			t.Errorf("trust list entry %s: rawData is not a base64 DER certificate: %v", e.KID, err)
		}
	}
	if err := os.WriteFile(file, body, 0o644); err != nil {
		t.Fatal(err)
	}
}

// verdict is the part of a verification verdict (CLI or API) the tests read.
type verdict struct {
	Valid  bool   `json:"valid"`
	Reason string `json:"reason"`
	DCC    struct {
		DOB string `json:"dob"`
		Nam struct {
			FN string `json:"fn"`
			GN string `json:"gn"`
		} `json:"nam"`
		V []struct {
			CI string `json:"ci"`
			DN int    `json:"dn"`
			SD int    `json:"sd"`
			DT string `json:"dt"`
		} `json:"v"`
	} `json:"dcc"`
}

// verifyCLI runs `vaxpass verify` and decodes its verdict.
func verifyCLI(t *testing.T, args ...string) (verdict, int) {
	t.Helper()
	r := cli.Run(t, append([]string{"verify"}, args...)...)
	var v verdict
	if err := json.Unmarshal([]byte(r.Stdout), &v); err != nil {
		t.Fatalf("vaxpass verify: exit %d, stdout %.300q, stderr %.300q: %v", r.Code, r.Stdout, r.Stderr, err)
	}
	return v, r.Code
}

// pickEligible returns the first eligible person (by ID) of a class.
func pickEligible(t *testing.T, eligible []*person, class synth.Class) *person {
	t.Helper()
	for _, p := range eligible {
		if p.Class == class {
			return p
		}
	}
	t.Fatalf("no eligible person of class %s in the generated data", class)
	return nil
}

func checkLookups(t *testing.T, c *client, gen *generated, eligible []*person, uvcis map[string]string, trustFile, data string) {
	lookup := func(id, name, dob string) (int, []byte, http.Header) {
		body, _ := json.Marshal(map[string]string{"id_number": id, "full_name": name, "dob": dob})
		return c.do("POST", "/v1/passports/lookup", body, "application/json")
	}
	for _, class := range []synth.Class{synth.Clean, synth.DOBYearOnly, synth.NameASCII, synth.IDDotted} {
		p := pickEligible(t, eligible, class)
		reg := gen.registry[p.ID]
		t.Run(string(class), func(t *testing.T) {
			status, body, _ := lookup(reg.ID, reg.FullName, reg.DOB)
			if status != http.StatusOK {
				t.Fatalf("lookup with the registry's details: status %d: %.300s", status, body)
			}
			var ans lookupAnswer
			if err := json.Unmarshal(body, &ans); err != nil {
				t.Fatal(err)
			}
			a := p.Assessment
			want := lookupFields{
				FullName: reg.FullName, DateOfBirth: reg.DOB, Nationality: "VN", Disease: "COVID-19",
				DosesReceived: a.DosesReceived, DateOfVaccination: a.Certified.VaccinatedOn,
				DoseNumber: a.Certified.DoseNumber, TotalDoses: a.Certified.SeriesDoses,
				Vaccine: a.Certified.Vaccine.ProphylaxisDisplay, VaccineProduct: a.Certified.Vaccine.ProductDisplay,
				Manufacturer: a.Certified.Vaccine.ManufacturerDisplay, CertificateID: uvcis[p.ID],
			}
			if ans.UVCI != uvcis[p.ID] || ans.Fields != want {
				t.Errorf("lookup answered uvci %q fields\n%+v\nwant uvci %q fields\n%+v", ans.UVCI, ans.Fields, uvcis[p.ID], want)
			}
			if !strings.HasPrefix(ans.HC1, "HC1:") || !ans.ExpiresAt.After(time.Now()) {
				t.Errorf("lookup answered hc1 %.8q…, expires_at %s", ans.HC1, ans.ExpiresAt)
			}

			// The HC1 verifies against the published trust list, with the CLI and the API.
			v, code := verifyCLI(t, "--trust", trustFile, ans.HC1)
			if code != 0 || !v.Valid {
				t.Fatalf("vaxpass verify --trust trustlist.json: exit %d, verdict %+v", code, v)
			}
			if len(v.DCC.V) != 1 || v.DCC.V[0].CI != ans.UVCI || v.DCC.DOB != reg.DOB || v.DCC.V[0].DN != want.DoseNumber ||
				v.DCC.V[0].SD != want.TotalDoses || v.DCC.V[0].DT != want.DateOfVaccination || v.DCC.Nam.FN+" "+v.DCC.Nam.GN != reg.FullName {
				t.Errorf("the verified DCC says %+v; want the lookup's certificate %+v", v.DCC, want)
			}
			if v, code := verifyCLI(t, "--data", data, ans.HC1); code != 0 || !v.Valid {
				t.Errorf("vaxpass verify with the data directory's trust list: exit %d, %+v", code, v)
			}
			var api verdict
			c.call("POST", "/v1/verify", map[string]string{"hc1": ans.HC1}, http.StatusOK, &api)
			if !api.Valid {
				t.Errorf("POST /v1/verify: %+v", api)
			}

			// The QR image decodes, with a real decoder, to exactly that HC1.
			status, png, h := c.do("GET", ans.QRPNG, nil, "")
			if status != http.StatusOK || h.Get("Content-Type") != "image/png" {
				t.Fatalf("GET %s: status %d, Content-Type %q", ans.QRPNG, status, h.Get("Content-Type"))
			}
			text, err := qrscan.DecodeBytes(png)
			if err != nil || text != ans.HC1 {
				t.Fatalf("the QR image decodes to %.12q… (%v), want the lookup's HC1", text, err)
			}
			pngFile := filepath.Join(t.TempDir(), "qr.png")
			if err := os.WriteFile(pngFile, png, 0o644); err != nil {
				t.Fatal(err)
			}
			if v, code := verifyCLI(t, "--trust", trustFile, "--qr", pngFile); code != 0 || !v.Valid || v.DCC.V[0].CI != ans.UVCI {
				t.Errorf("vaxpass verify --qr: exit %d, %+v", code, v)
			}

			// Details typed as the facility typed them find the same certificate: the
			// name compares without diacritics, the ID without dots or spaces.
			typed := gen.records[gen.index[p.Sources[0]]]
			switch class {
			case synth.NameASCII:
				if status, body, _ := lookup(reg.ID, typed.FullName, reg.DOB); status != http.StatusOK || !bytes.Contains(body, []byte(ans.UVCI)) {
					t.Errorf("lookup with the name typed without diacritics: %d %.200s", status, body)
				}
			case synth.IDDotted:
				if status, body, _ := lookup(typed.IDNumber, reg.FullName, reg.DOB); status != http.StatusOK || !bytes.Contains(body, []byte(ans.UVCI)) {
					t.Errorf("lookup with the ID typed with dots: %d %.200s", status, body)
				}
			}

			if class != synth.Clean {
				return
			}
			// Wrong name, wrong date of birth and an unknown ID get one and the same 404.
			unknownID := reg.ID
			for n := 0; gen.registry[unknownID].ID != "" || unknownID == reg.ID; n++ {
				unknownID = fmt.Sprintf("%s%06d", reg.ID[:6], (n*7919+12345)%1000000)
			}
			dob, err := time.Parse(time.DateOnly, reg.DOB)
			if err != nil {
				t.Fatal(err)
			}
			otherName := "Trần Thị Khác Tên"
			if strings.EqualFold(otherName, reg.FullName) {
				otherName = "Phạm Văn Khác Tên"
			}
			var first []byte
			for _, q := range []struct{ what, id, name, dob string }{
				{"unknown ID", unknownID, reg.FullName, reg.DOB},
				{"wrong name", reg.ID, otherName, reg.DOB},
				{"wrong date of birth", reg.ID, reg.FullName, dob.AddDate(0, 0, 1).Format(time.DateOnly)},
				{"year of birth only", reg.ID, reg.FullName, reg.DOB[:4]},
			} {
				status, body, _ := lookup(q.id, q.name, q.dob)
				if status != http.StatusNotFound {
					t.Errorf("lookup with %s: status %d, want 404: %.200s", q.what, status, body)
					continue
				}
				if first == nil {
					first = body
				} else if !bytes.Equal(body, first) {
					t.Errorf("lookup with %s answers %s; an unknown ID answers %s", q.what, body, first)
				}
			}

			// A tampered HC1 is not valid.
			tampered := []byte(ans.HC1)
			i := len(tampered) / 2
			if tampered[i] == 'A' {
				tampered[i] = 'B'
			} else {
				tampered[i] = 'A'
			}
			if v, code := verifyCLI(t, "--trust", trustFile, string(tampered)); code != 1 || v.Valid {
				t.Errorf("vaxpass verify of a tampered HC1: exit %d, %+v", code, v)
			}
			c.call("POST", "/v1/verify", map[string]string{"hc1": string(tampered)}, http.StatusOK, &api)
			if api.Valid {
				t.Error("POST /v1/verify accepted a tampered HC1")
			}
		})
	}
}
