package contract

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/vaxpass/vaxpass/shared/domain/dose"
	"github.com/vaxpass/vaxpass/shared/hc1/qrscan"
	"github.com/vaxpass/vaxpass/shared/stage/lookup"
)

// TestRoutesMatchDocument: every route the system registers is an operation of the
// document, and every operation of the document is a registered route.
func TestRoutesMatchDocument(t *testing.T) {
	h := newHarness(t)
	var documented []string
	for path, item := range h.doc.Paths.Map() {
		for method := range item.Operations() {
			documented = append(documented, method+" "+path)
		}
	}
	slices.Sort(documented)
	registered := h.sys.Router.Routes()
	for _, r := range registered {
		if !slices.Contains(documented, r) {
			t.Errorf("route %s is registered but not in openapi.yaml", r)
		}
	}
	for _, d := range documented {
		if !slices.Contains(registered, d) {
			t.Errorf("openapi.yaml documents %s, which no route serves", d)
		}
	}
}

// TestContract drives every endpoint with good and bad requests through the HTTP front;
// every answer is validated against openapi.yaml (harness.check).
func TestContract(t *testing.T) {
	h := newHarness(t)

	// ---- upload ----
	var upload struct {
		Records []dose.Record `json:"records"`
	}
	uploadBody := readDemo(t, h, "doses.json", &upload)
	var report struct {
		Accepted, Duplicates, Rejected int
		Results                        []struct {
			SourceID string `json:"source_id"`
			Status   string
		}
	}
	h.do(t, call{name: "upload demo records", method: "POST", path: "/v1/doses", header: h.authJSON(), body: uploadBody, request: reqValid, status: 200}).json(t, &report)
	if report.Accepted != len(upload.Records) || report.Rejected != 0 {
		t.Fatalf("demo upload: accepted %d rejected %d of %d", report.Accepted, report.Rejected, len(upload.Records))
	}
	h.do(t, call{name: "upload again", method: "POST", path: "/v1/doses", header: h.authJSON(), body: uploadBody, request: reqValid, status: 200}).json(t, &report)
	if report.Duplicates != len(upload.Records) || report.Accepted != 0 {
		t.Errorf("re-upload: %d duplicates, %d accepted; want all duplicates", report.Duplicates, report.Accepted)
	}
	mixed := fmt.Sprintf(`{"records":[%s,{"source_id":"bad-1","dose_number":"two"},{"source_id":"bad-2","vaccine":"NOVAVAX"}]}`,
		mustJSON(t, withSourceID(upload.Records[0], "contract-new-1")))
	h.do(t, call{name: "upload a batch with bad records", method: "POST", path: "/v1/doses", header: h.authJSON(), body: []byte(mixed), request: reqInvalid, status: 200}).json(t, &report)
	if report.Accepted != 1 || report.Rejected != 2 {
		t.Errorf("mixed batch: accepted %d rejected %d; want 1 and 2", report.Accepted, report.Rejected)
	}
	tooMany := `{"records":[` + strings.Repeat(`{},`, 1000) + `{}]}`
	for _, c := range []call{
		{name: "upload without key", method: "POST", path: "/v1/doses", header: map[string]string{"Content-Type": "application/json"}, body: uploadBody, request: reqInvalid, status: 401},
		{name: "upload with unknown key", method: "POST", path: "/v1/doses", header: map[string]string{"Authorization": "Bearer vxp_unknown", "Content-Type": "application/json"}, body: uploadBody, status: 401},
		{name: "upload not JSON", method: "POST", path: "/v1/doses", header: h.authJSON(), body: []byte(`{"records":[`), request: reqInvalid, status: 400},
		{name: "upload without records", method: "POST", path: "/v1/doses", header: h.authJSON(), body: []byte(`{}`), request: reqInvalid, status: 400},
		{name: "upload empty records", method: "POST", path: "/v1/doses", header: h.authJSON(), body: []byte(`{"records":[]}`), request: reqInvalid, status: 400},
		{name: "upload unknown key", method: "POST", path: "/v1/doses", header: h.authJSON(), body: []byte(`{"records":[{}],"x":1}`), request: reqInvalid, status: 400},
		{name: "upload key twice", method: "POST", path: "/v1/doses", header: h.authJSON(), body: []byte(`{"records":[{}],"RECORDS":[{}]}`), status: 400},
		{name: "upload too many records", method: "POST", path: "/v1/doses", header: h.authJSON(), body: []byte(tooMany), request: reqInvalid, status: 400},
		{name: "upload over 4 MiB", method: "POST", path: "/v1/doses", header: h.authJSON(), body: []byte(`{"records":["` + strings.Repeat("x", 4<<20) + `"]}`), status: 413},
		{name: "upload invalid UTF-8", method: "POST", path: "/v1/doses", header: h.authJSON(), body: []byte("{\"records\":[{\"full_name\":\"\xff\"}]}"), status: 400},
	} {
		h.do(t, c)
	}

	// ---- before matching: every record PENDING ----
	h.do(t, call{name: "a record before matching", method: "GET", path: "/v1/doses/" + pathEscape(upload.Records[0].SourceID), header: h.auth(), request: reqValid, status: 200})
	h.do(t, call{name: "pending worklist before matching", method: "GET", path: "/v1/worklist?status=PENDING", header: h.auth(), request: reqValid, status: 200})

	// ---- matching, then a record as stored ----
	h.startPumps()
	eventually(t, "the matcher to take every record", func() bool {
		var page struct{ Records []any }
		h.do(t, call{name: "pending worklist", method: "GET", path: "/v1/worklist?status=PENDING", header: h.auth(), request: reqValid, status: 200}).json(t, &page)
		return len(page.Records) == 0
	})
	var q lookup.Query
	lookupBody := readDemo(t, h, "lookup.json", &q)
	var sid string
	for _, r := range upload.Records {
		if r.IDNumber == q.IDNumber {
			sid = r.SourceID
			break
		}
	}
	if sid == "" {
		t.Fatal("lookup.json's person has no record in doses.json")
	}
	var view struct {
		Match struct{ Status string }
	}
	h.do(t, call{name: "get a record", method: "GET", path: "/v1/doses/" + pathEscape(sid), header: h.auth(), request: reqValid, status: 200}).json(t, &view)
	if view.Match.Status != "VERIFIED" {
		t.Fatalf("the lookup person's record matched %s, want VERIFIED", view.Match.Status)
	}
	for _, c := range []call{
		{name: "get a record without key", method: "GET", path: "/v1/doses/" + pathEscape(sid), request: reqInvalid, status: 401},
		{name: "get another facility's record", method: "GET", path: "/v1/doses/" + pathEscape(sid), header: map[string]string{"Authorization": "Bearer " + h.other}, status: 404},
		{name: "get an unknown record", method: "GET", path: "/v1/doses/never-sent", header: h.auth(), request: reqValid, status: 404},
		{name: "get with a too long source_id", method: "GET", path: "/v1/doses/" + strings.Repeat("x", 65), header: h.auth(), request: reqInvalid, status: 400},
		{name: "get with a badly encoded path", method: "GET", path: "/v1/doses/%25zz", header: h.auth(), status: 400},
	} {
		h.do(t, c)
	}

	// ---- worklists ----
	statuses := []string{"PENDING", "VERIFIED", "NO_ID", "INVALID_ID", "NOT_FOUND", "MISMATCH"}
	for _, s := range statuses {
		h.do(t, call{name: "worklist " + s, method: "GET", path: "/v1/worklist?status=" + s, header: h.auth(), request: reqValid, status: 200})
	}
	csv := h.do(t, call{name: "worklist csv", method: "GET", path: "/v1/worklist?status=MISMATCH&format=csv", header: h.auth(), request: reqValid, status: 200})
	if !bytes.HasPrefix(csv.body, []byte("\ufeff")) && !bytes.Contains(csv.body, []byte("source_id")) {
		t.Errorf("csv worklist lacks its header: %s", truncate(csv.body))
	}
	xlsx := h.do(t, call{name: "worklist xlsx", method: "GET", path: "/v1/worklist?status=MISMATCH&format=xlsx", header: h.auth(), request: reqValid, status: 200})
	for _, c := range []call{
		{name: "worklist without key", method: "GET", path: "/v1/worklist?status=MISMATCH", request: reqInvalid, status: 401},
		{name: "worklist without status", method: "GET", path: "/v1/worklist", header: h.auth(), request: reqInvalid, status: 400},
		{name: "worklist unknown status", method: "GET", path: "/v1/worklist?status=LOST", header: h.auth(), request: reqInvalid, status: 400},
		{name: "worklist unknown format", method: "GET", path: "/v1/worklist?status=MISMATCH&format=pdf", header: h.auth(), request: reqInvalid, status: 400},
	} {
		h.do(t, c)
	}

	// ---- imports ----
	xlsxHeader := map[string]string{"Authorization": "Bearer " + h.key, "Content-Type": xlsxType}
	var imported struct {
		Accepted, Duplicates, Rejected int
		Results                        []struct{ Row int }
	}
	h.do(t, call{name: "import a spreadsheet", method: "POST", path: "/v1/imports", header: xlsxHeader, body: importSheet(t, upload.Records[1]), request: reqValid, status: 200}).json(t, &imported)
	if imported.Accepted != 1 || imported.Rejected != 1 || len(imported.Results) != 2 || imported.Results[0].Row != 2 {
		t.Errorf("import: %+v; want row 2 accepted and row 3 rejected", imported)
	}
	h.do(t, call{name: "import a worklist sent back unchanged", method: "POST", path: "/v1/imports", header: xlsxHeader, body: xlsx.body, request: reqValid, status: 200})
	for _, c := range []call{
		{name: "import without key", method: "POST", path: "/v1/imports", header: map[string]string{"Content-Type": xlsxType}, body: xlsx.body, request: reqInvalid, status: 401},
		{name: "import as JSON", method: "POST", path: "/v1/imports", header: h.authJSON(), body: []byte(`{"records":[]}`), request: reqInvalid, status: 415},
		{name: "import not a spreadsheet", method: "POST", path: "/v1/imports", header: xlsxHeader, body: []byte("plain text, not a zip"), request: reqValid, status: 400},
		{name: "import over 4 MiB", method: "POST", path: "/v1/imports", header: xlsxHeader, body: make([]byte, 4<<20+1), status: 413},
	} {
		h.do(t, c)
	}

	// ---- signing and certificates ----
	// More people wait than one page holds: the call signs a page and answers 202 with a
	// run that goes on in the background.
	var run struct {
		RunID  string `json:"run_id"`
		Status string
		Signed int
	}
	h.do(t, call{name: "sign", method: "POST", path: "/v1/signatures", header: h.auth(), request: reqValid, status: 202}).json(t, &run)
	if run.RunID == "" || run.Status != "running" {
		t.Fatalf("POST /v1/signatures answered %+v, want a running run", run)
	}
	runPath := "/v1/signatures/" + pathEscape(run.RunID)
	eventually(t, "the signing run to finish", func() bool {
		h.do(t, call{name: "a signing run", method: "GET", path: runPath, header: h.auth(), request: reqValid, status: 200}).json(t, &run)
		return run.Status == "done"
	})
	if run.Signed < 2 {
		t.Fatalf("the signing run signed %d people, want more than one page", run.Signed)
	}
	for _, c := range []call{
		{name: "a signing run without key", method: "GET", path: runPath, request: reqInvalid, status: 401},
		{name: "another facility's signing run", method: "GET", path: runPath, header: map[string]string{"Authorization": "Bearer " + h.other}, status: 404},
		{name: "an unknown signing run", method: "GET", path: "/v1/signatures/sr-never", header: h.auth(), request: reqValid, status: 404},
		{name: "a signing run with a too long id", method: "GET", path: "/v1/signatures/" + strings.Repeat("x", 65), header: h.auth(), request: reqInvalid, status: 400},
	} {
		h.do(t, c)
	}
	// Signing again finds only people whose course is not complete (more than the call
	// looks at: a run again), and signs none of them.
	h.do(t, call{name: "sign again", method: "POST", path: "/v1/signatures", header: h.auth(), request: reqValid, status: 202}).json(t, &run)
	runPath = "/v1/signatures/" + pathEscape(run.RunID)
	eventually(t, "the second signing run to finish", func() bool {
		h.do(t, call{name: "a signing run", method: "GET", path: runPath, header: h.auth(), request: reqValid, status: 200}).json(t, &run)
		return run.Status == "done"
	})
	if run.Signed != 0 {
		t.Errorf("signing again signed %d people", run.Signed)
	}
	// A facility with nothing to sign is done within the call.
	var signed struct{ Signed, Waiting int }
	h.do(t, call{name: "sign with nothing to sign", method: "POST", path: "/v1/signatures", header: map[string]string{"Authorization": "Bearer " + h.other}, request: reqValid, status: 200}).json(t, &signed)
	if signed.Signed != 0 || signed.Waiting != 0 {
		t.Errorf("a facility without doses signed %+v", signed)
	}
	h.do(t, call{name: "sign without key", method: "POST", path: "/v1/signatures", request: reqInvalid, status: 401})
	eventually(t, "central signing to issue the certificate", func() bool {
		var v struct {
			Certificate *struct{ UVCI string }
		}
		h.do(t, call{name: "get a signed record", method: "GET", path: "/v1/doses/" + pathEscape(sid), header: h.auth(), request: reqValid, status: 200}).json(t, &v)
		return v.Certificate != nil
	})

	// ---- corrections (after the last signing call: a corrected record is signed again
	// only when the facility next signs) ----
	var corrected dose.Record
	for _, r := range upload.Records {
		if r.IDNumber != q.IDNumber {
			corrected = r
			break
		}
	}
	h.checkCorrections(t, corrected)

	// ---- public: lookup, QR, verify, trust list ----
	var found struct {
		UVCI  string `json:"uvci"`
		HC1   string `json:"hc1"`
		QRPNG string `json:"qr_png"`
		PDF   string `json:"pdf"`
	}
	h.do(t, call{name: "lookup", method: "POST", path: "/v1/passports/lookup", header: map[string]string{"Content-Type": "application/json"}, body: lookupBody, request: reqValid, status: 200}).json(t, &found)
	png := h.do(t, call{name: "qr", method: "GET", path: found.QRPNG, request: reqValid, status: 200})
	if got, err := qrscan.DecodeBytes(png.body); err != nil || got != found.HC1 {
		t.Errorf("the QR image decodes to %q (%v), want the lookup's hc1", truncate([]byte(got)), err)
	}
	pdf := h.do(t, call{name: "pdf", method: "GET", path: found.PDF, request: reqValid, status: 200})
	if !bytes.HasPrefix(pdf.body, []byte("%PDF-")) {
		t.Errorf("the passport PDF starts %q", truncate(pdf.body))
	}
	var verdict struct {
		Valid  bool
		Reason string
	}
	h.do(t, call{name: "verify the certificate", method: "POST", path: "/v1/verify", header: map[string]string{"Content-Type": "application/json"}, body: mustJSON(t, map[string]string{"hc1": found.HC1}), request: reqValid, status: 200}).json(t, &verdict)
	if !verdict.Valid {
		t.Errorf("the issued certificate does not verify: %s", verdict.Reason)
	}
	h.do(t, call{name: "verify garbage", method: "POST", path: "/v1/verify", header: map[string]string{"Content-Type": "application/json"}, body: []byte(`{"hc1":"HC1:NOT-A-CERTIFICATE"}`), request: reqValid, status: 200}).json(t, &verdict)
	if verdict.Valid || verdict.Reason == "" {
		t.Errorf("garbage verifies: %+v", verdict)
	}
	h.do(t, call{name: "trust list", method: "GET", path: "/v1/trustlist", request: reqValid, status: 200})

	wrongName := q
	wrongName.FullName = "Someone Else Entirely"
	unknownUVCI := "/v1/passports/" + base64.RawURLEncoding.EncodeToString([]byte("URN:UVCI:01:VN:AAAAAAAAAAAAAAAAAAAAAAAAAA#A")) + "/qr.png"
	jsonHeader := map[string]string{"Content-Type": "application/json"}
	for _, c := range []call{
		{name: "lookup with the wrong name", method: "POST", path: "/v1/passports/lookup", header: jsonHeader, body: mustJSON(t, wrongName), request: reqValid, status: 404},
		{name: "lookup without dob", method: "POST", path: "/v1/passports/lookup", header: jsonHeader, body: []byte(`{"id_number":"001085012345","full_name":"A"}`), request: reqInvalid, status: 400},
		{name: "lookup with a bad dob", method: "POST", path: "/v1/passports/lookup", header: jsonHeader, body: []byte(`{"id_number":"001085012345","full_name":"A","dob":"03/31/1985"}`), request: reqInvalid, status: 400},
		{name: "lookup with an unknown key", method: "POST", path: "/v1/passports/lookup", header: jsonHeader, body: []byte(`{"id_number":"1","full_name":"A","dob":"1985","x":1}`), request: reqInvalid, status: 400},
		{name: "lookup over 4 KiB", method: "POST", path: "/v1/passports/lookup", header: jsonHeader, body: []byte(`{"full_name":"` + strings.Repeat("a", 5000) + `"}`), status: 413},
		{name: "qr of an unknown UVCI", method: "GET", path: unknownUVCI, request: reqValid, status: 404},
		{name: "qr of a path that is not base64url", method: "GET", path: "/v1/passports/QQ==/qr.png", request: reqInvalid, status: 400},
		{name: "pdf of an unknown UVCI", method: "GET", path: strings.TrimSuffix(unknownUVCI, "qr.png") + "passport.pdf", request: reqValid, status: 404},
		{name: "pdf of a path that is not base64url", method: "GET", path: "/v1/passports/QQ==/passport.pdf", request: reqInvalid, status: 400},
		{name: "verify without hc1", method: "POST", path: "/v1/verify", header: jsonHeader, body: []byte(`{}`), request: reqInvalid, status: 400},
		{name: "verify hc1 not a string", method: "POST", path: "/v1/verify", header: jsonHeader, body: []byte(`{"hc1":1}`), request: reqInvalid, status: 400},
		{name: "verify over 16 KiB", method: "POST", path: "/v1/verify", header: jsonHeader, body: []byte(`{"hc1":"` + strings.Repeat("A", 17<<10) + `"}`), status: 413},
	} {
		h.do(t, c)
	}

	// ---- gateway-level answers every operation can give ----
	ops := []struct{ method, path string }{
		{"POST", "/v1/doses"}, {"POST", "/v1/imports"}, {"GET", "/v1/doses/" + pathEscape(sid)},
		{"PATCH", "/v1/doses/" + pathEscape(sid)},
		{"GET", "/v1/worklist?status=MISMATCH"}, {"POST", "/v1/signatures"},
		{"POST", "/v1/passports/lookup"}, {"GET", found.QRPNG}, {"GET", found.PDF}, {"POST", "/v1/verify"}, {"GET", "/v1/trustlist"},
		{"GET", "/v1/revocations"}, {"POST", "/v1/ops/revocations"}, {"GET", "/v1/ops/audit"},
		{"GET", "/v1/registry/records?status=NO_ID&facility_id=demo-site"},
	}
	host := h.srv.Addr
	for _, op := range ops {
		hdr := fmt.Sprintf("Host: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nConnection: close\r\n", host, h.key)
		// A declared length over the gateway's 10 MB: refused before anything is read.
		h.doRaw(t, call{name: "over 10 MB: " + op.method + " " + op.path, method: op.method, path: op.path, header: h.authJSON(), status: 413},
			fmt.Sprintf("%s %s HTTP/1.1\r\n%sContent-Length: %d\r\n\r\n", op.method, op.path, hdr, 11<<20), true)
		// A body cut short: it cannot be read.
		h.doRaw(t, call{name: "body cut short: " + op.method + " " + op.path, method: op.method, path: op.path, header: h.authJSON(), status: 400},
			fmt.Sprintf("%s %s HTTP/1.1\r\n%sContent-Length: 100\r\n\r\n{\"a\"", op.method, op.path, hdr), true)
	}

	// ---- rate limit: the public endpoints share one budget per client ----
	limited := 0
	for range 500 {
		r := h.do(t, call{name: "lookup until limited", method: "POST", path: "/v1/passports/lookup", header: jsonHeader, body: []byte(`{}`), request: reqInvalid, status: 0, anyStatus: []int{400, 429}})
		if r.status == http.StatusTooManyRequests {
			limited++
			break
		}
	}
	if limited == 0 {
		t.Fatal("500 lookups were never rate limited")
	}
	h.do(t, call{name: "qr when limited", method: "GET", path: found.QRPNG, request: reqValid, status: 429})
	h.do(t, call{name: "pdf when limited", method: "GET", path: found.PDF, request: reqValid, status: 429})
	h.do(t, call{name: "verify when limited", method: "POST", path: "/v1/verify", header: jsonHeader, body: []byte(`{"hc1":"HC1:X"}`), request: reqValid, status: 429})
	h.do(t, call{name: "trust list is not limited", method: "GET", path: "/v1/trustlist", request: reqValid, status: 200})
	h.do(t, call{name: "revocation list is not limited", method: "GET", path: "/v1/revocations", request: reqValid, status: 200})
	h.clock.Advance(time.Hour)
	h.do(t, call{name: "lookup after the budget refills", method: "POST", path: "/v1/passports/lookup", header: jsonHeader, body: lookupBody, request: reqValid, status: 200})

	// ---- ops: revocation, the published list, the audit trail ----
	h.checkRevocation(t, found.UVCI, found.HC1, found.QRPNG, lookupBody)
	var view2 struct {
		Certificate *struct{ Status string }
	}
	h.do(t, call{name: "get a record whose certificate is revoked", method: "GET", path: "/v1/doses/" + pathEscape(sid), header: h.auth(), request: reqValid, status: 200}).json(t, &view2)
	if view2.Certificate != nil && view2.Certificate.Status != "revoked" {
		t.Errorf("the dose's certificate after revocation: %+v; want revoked or none", view2.Certificate)
	}
	h.checkAudit(t, corrected.SourceID, found.UVCI, []string{q.FullName, q.IDNumber, found.HC1, corrected.FullName, corrected.IDNumber})

	// ---- ops: the dashboard, reprocessing, dead letters ----
	h.checkReprocess(t)

	// ---- the citizen's report ----
	h.checkReports(t)

	// ---- the pages, served by the same API ----
	for _, c := range []call{
		{name: "the lookup page", method: "GET", path: "/", status: 200},
		{name: "a file of the lookup page", method: "GET", path: "/static/app.css", status: 200},
		{name: "a missing file of the lookup page", method: "GET", path: "/static/nothing.js", status: 404},
		{name: "the ops dashboard", method: "GET", path: "/ops", status: 200},
		{name: "a file of the ops dashboard", method: "GET", path: "/ops/static/ops.js", status: 200},
		{name: "a missing file of the ops dashboard", method: "GET", path: "/ops/static/nothing.js", status: 404},
	} {
		h.do(t, c)
	}

	// ---- roles: clerks, registry officers, keys of the wrong role ----
	h.checkRoles(t, sid)

	// ---- requests no operation takes ----
	for _, c := range []call{
		{name: "unknown path", method: "GET", path: "/v1/nothing-here", status: 404},
		{name: "wrong method", method: "DELETE", path: "/v1/doses", header: h.auth(), status: 405},
		{name: "wrong method on the trust list", method: "PUT", path: "/v1/trustlist", status: 405},
		{name: "badly encoded unknown path", method: "GET", path: "/v1/%25zz", status: 400},
		{name: "wrong method on a record", method: "DELETE", path: "/v1/doses/" + pathEscape(sid), header: h.auth(), status: 405},
		{name: "wrong method on revocations", method: "GET", path: "/v1/ops/revocations", header: h.opsAuth(), status: 405},
		{name: "wrong method on the audit trail", method: "POST", path: "/v1/ops/audit", header: h.opsAuth(), status: 405},
		{name: "wrong method on the revocation list", method: "POST", path: "/v1/revocations", status: 405},
	} {
		h.do(t, c)
	}

	h.checkCoverage(t, map[string][]int{
		// 409 needs two writers racing on one record; no single caller can bring it about.
		"importSpreadsheet": {409},
		"signAll":           {409},
		"correctDose":       {409},
		"revokeCertificate": {409},
	})
}

func withSourceID(r dose.Record, sid string) dose.Record {
	r.SourceID = sid
	return r
}

// importSheet builds an .xlsx import: the header row, rec as row 2 (under a new
// source_id) and a row 3 with an impossible date of birth.
func importSheet(t *testing.T, rec dose.Record) []byte {
	t.Helper()
	f := excelize.NewFile()
	defer f.Close()
	sheet := f.GetSheetName(0)
	rows := [][]any{
		{"source_id", "full_name", "dob", "gender", "id_number", "vaccine", "dose_number", "vaccinated_on"},
		{"import-row-2", rec.FullName, rec.DOB, rec.Gender, rec.IDNumber, rec.Vaccine, rec.DoseNumber, rec.VaccinatedOn},
		{"import-row-3", rec.FullName, "1985-02-30", rec.Gender, rec.IDNumber, rec.Vaccine, rec.DoseNumber, rec.VaccinatedOn},
	}
	for i, row := range rows {
		cell, _ := excelize.CoordinatesToCellName(1, i+1)
		if err := f.SetSheetRow(sheet, cell, &row); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if err := f.Write(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
