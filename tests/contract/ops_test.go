package contract

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/vaxpass/vaxpass/shared/domain/dose"
	"github.com/vaxpass/vaxpass/shared/wire/local"
)

// correctionAnswer is the answer of PATCH /v1/doses/{source_id}.
type correctionAnswer struct {
	SourceID string   `json:"source_id"`
	Status   string   `json:"status"`
	Changed  []string `json:"changed"`
}

// checkCorrections drives PATCH /v1/doses/{source_id} on rec, a stored record of the demo
// facility that is not the lookup person's (correcting it must leave the lookup's
// certificate alone).
func (h *harness) checkCorrections(t *testing.T, rec dose.Record) {
	t.Helper()
	path := "/v1/doses/" + pathEscape(rec.SourceID)
	lot := "LOT-CONTRACT-" + rec.SourceID
	var ans correctionAnswer
	h.do(t, call{name: "correct a record", method: "PATCH", path: path, header: h.authJSON(), body: mustJSON(t, map[string]string{"lot": lot}), request: reqValid, status: 200}).json(t, &ans)
	if ans.SourceID != rec.SourceID || ans.Status != "corrected" || !slices.Equal(ans.Changed, []string{"lot"}) {
		t.Errorf("correction: %+v; want %s corrected, changed [lot]", ans, rec.SourceID)
	}
	h.do(t, call{name: "correct a record again", method: "PATCH", path: path, header: h.authJSON(), body: mustJSON(t, map[string]string{"lot": lot}), request: reqValid, status: 200}).json(t, &ans)
	if ans.Status != "unchanged" || len(ans.Changed) != 0 {
		t.Errorf("the same correction again: %+v; want unchanged", ans)
	}
	body := mustJSON(t, map[string]string{"source_id": rec.SourceID, "phone": "0900 000 " + rec.SourceID[len(rec.SourceID)-1:], "lot": lot})
	h.do(t, call{name: "correct with source_id and an unchanged field", method: "PATCH", path: path, header: h.authJSON(), body: body, request: reqValid, status: 200}).json(t, &ans)
	if ans.Status != "corrected" || !slices.Equal(ans.Changed, []string{"phone"}) {
		t.Errorf("correction of phone: %+v; want changed [phone]", ans)
	}
	var stored struct {
		Lot   string `json:"lot"`
		Phone string `json:"phone"`
	}
	h.do(t, call{name: "get a corrected record", method: "GET", path: path, header: h.auth(), request: reqValid, status: 200}).json(t, &stored)
	if stored.Lot != lot || !strings.HasPrefix(stored.Phone, "0900 000") {
		t.Errorf("stored after correction: lot %q phone %q", stored.Lot, stored.Phone)
	}

	opsHeader := map[string]string{"Authorization": "Bearer " + h.ops, "Content-Type": "application/json"}
	otherHeader := map[string]string{"Authorization": "Bearer " + h.other, "Content-Type": "application/json"}
	for _, c := range []struct {
		call
		field string // the error's field, when the answer is a 400
	}{
		{call: call{name: "correct without key", method: "PATCH", path: path, header: map[string]string{"Content-Type": "application/json"}, body: []byte(`{"lot":"x"}`), request: reqInvalid, status: 401}},
		{call: call{name: "correct with an ops key", method: "PATCH", path: path, header: opsHeader, body: []byte(`{"lot":"x"}`), status: 403}},
		{call: call{name: "correct another facility's record", method: "PATCH", path: path, header: otherHeader, body: []byte(`{"lot":"x"}`), request: reqValid, status: 404}},
		{call: call{name: "correct an unknown record", method: "PATCH", path: "/v1/doses/never-sent", header: h.authJSON(), body: []byte(`{"lot":"x"}`), request: reqValid, status: 404}},
		{call: call{name: "correct nothing", method: "PATCH", path: path, header: h.authJSON(), body: []byte(`{}`), request: reqInvalid, status: 400}, field: "body"},
		{call: call{name: "correct an unknown field", method: "PATCH", path: path, header: h.authJSON(), body: []byte(`{"fullname":"x"}`), request: reqInvalid, status: 400}, field: "fullname"},
		{call: call{name: "correct with a key twice", method: "PATCH", path: path, header: h.authJSON(), body: []byte(`{"lot":"x","LOT":"y"}`), status: 400}},
		{call: call{name: "correct with malformed JSON", method: "PATCH", path: path, header: h.authJSON(), body: []byte(`{"lot":`), request: reqInvalid, status: 400}},
		{call: call{name: "correct dose_number with a string", method: "PATCH", path: path, header: h.authJSON(), body: []byte(`{"dose_number":"two"}`), request: reqInvalid, status: 400}, field: "dose_number"},
		{call: call{name: "correct the source_id", method: "PATCH", path: path, header: h.authJSON(), body: []byte(`{"source_id":"another-one"}`), request: reqAny, status: 400}, field: "source_id"},
		{call: call{name: "correct with a bad dob", method: "PATCH", path: path, header: h.authJSON(), body: []byte(`{"dob":"1990/02/31"}`), request: reqInvalid, status: 400}, field: "dob"},
		{call: call{name: "correct with an empty name", method: "PATCH", path: path, header: h.authJSON(), body: []byte(`{"full_name":""}`), request: reqInvalid, status: 400}, field: "full_name"},
		{call: call{name: "correct with an unknown vaccine", method: "PATCH", path: path, header: h.authJSON(), body: []byte(`{"vaccine":"NOVAVAX"}`), request: reqInvalid, status: 400}, field: "vaccine"},
		{call: call{name: "correct with a future vaccination", method: "PATCH", path: path, header: h.authJSON(), body: []byte(`{"vaccinated_on":"2029-01-01"}`), request: reqAny, status: 400}, field: "vaccinated_on"},
		{call: call{name: "correct with a too long source_id", method: "PATCH", path: "/v1/doses/" + strings.Repeat("x", 65), header: h.authJSON(), body: []byte(`{"lot":"x"}`), request: reqInvalid, status: 400}, field: "source_id"},
		{call: call{name: "correct with a badly encoded path", method: "PATCH", path: "/v1/doses/%25zz", header: h.authJSON(), body: []byte(`{"lot":"x"}`), status: 400}},
		{call: call{name: "correct over 16 KiB", method: "PATCH", path: path, header: h.authJSON(), body: []byte(`{"lot":"` + strings.Repeat("x", 17<<10) + `"}`), status: 413}},
	} {
		r := h.do(t, c.call)
		if c.field != "" && r.status == http.StatusBadRequest {
			if e := r.errorBody(t); e.Field != c.field {
				t.Errorf("%s: error names field %q (%s), want %q", c.name, e.Field, e.Code, c.field)
			}
		}
	}
	// An ops key opens no facility endpoint.
	h.do(t, call{name: "upload with an ops key", method: "POST", path: "/v1/doses", header: opsHeader, body: []byte(`{"records":[{}]}`), status: 403})
}

// revocationList is GET /v1/revocations.
type revocationList struct {
	Partitions []struct {
		HashType string   `json:"hash_type"`
		Hashes   []string `json:"hashes"`
	} `json:"partitions"`
}

func (l revocationList) lists(hashType, hash string) bool {
	for _, p := range l.Partitions {
		if p.HashType == hashType && slices.Contains(p.Hashes, hash) {
			return true
		}
	}
	return false
}

// revocationHash is the list's hash of s: the first 16 bytes of SHA-256, hex.
func revocationHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:16])
}

// checkRevocation revokes the lookup person's certificate (uvci, hc1, qrPath, its dose
// sid) through POST /v1/ops/revocations and checks what follows: the published list, the
// verifier, lookup, the QR image and the dose's certificate status.
func (h *harness) checkRevocation(t *testing.T, uvci, hc1, qrPath string, lookupBody []byte) {
	t.Helper()
	jsonHeader := map[string]string{"Content-Type": "application/json"}
	before := h.do(t, call{name: "revocation list before", method: "GET", path: "/v1/revocations", request: reqValid, status: 200})
	etag := before.header.Get("ETag")
	var list revocationList
	before.json(t, &list)
	if list.lists("UCI", revocationHash(uvci)) {
		t.Fatal("the certificate is listed before it is revoked")
	}
	r := h.do(t, call{name: "revocation list not modified", method: "GET", path: "/v1/revocations", header: map[string]string{"If-None-Match": etag}, request: reqValid, status: 304})
	if len(r.body) != 0 || r.header.Get("ETag") != etag {
		t.Errorf("304: body %q, ETag %q; want no body and ETag %s", truncate(r.body), r.header.Get("ETag"), etag)
	}
	h.do(t, call{name: "revocation list, any version held", method: "GET", path: "/v1/revocations", header: map[string]string{"If-None-Match": "*"}, request: reqValid, status: 304})
	h.do(t, call{name: "revocation list, another version held", method: "GET", path: "/v1/revocations", header: map[string]string{"If-None-Match": `"0123"`}, request: reqValid, status: 200})

	var res struct {
		UVCI      string `json:"uvci"`
		Outcome   string `json:"outcome"`
		Reason    string `json:"reason"`
		RevokedAt string `json:"revoked_at"`
	}
	revoke := mustJSON(t, map[string]string{"uvci": uvci, "reason": "issued in error"})
	h.do(t, call{name: "revoke", method: "POST", path: "/v1/ops/revocations", header: h.opsAuth(), body: revoke, request: reqValid, status: 200}).json(t, &res)
	if res.UVCI != uvci || res.Outcome != "revoked" || res.Reason != "issued in error" {
		t.Errorf("revoke: %+v", res)
	}
	first := res
	// Lower case and surrounding space name the same certificate.
	again := mustJSON(t, map[string]string{"uvci": " " + strings.ToLower(uvci) + " ", "reason": "another reason"})
	h.do(t, call{name: "revoke again", method: "POST", path: "/v1/ops/revocations", header: h.opsAuth(), body: again, request: reqValid, status: 200}).json(t, &res)
	if res.UVCI != uvci || res.Outcome != "already_revoked" || res.Reason != first.Reason || res.RevokedAt != first.RevokedAt {
		t.Errorf("revoke again: %+v; want already_revoked with the first revocation's reason and time %+v", res, first)
	}

	after := h.do(t, call{name: "revocation list after", method: "GET", path: "/v1/revocations", header: map[string]string{"If-None-Match": etag}, request: reqValid, status: 200})
	after.json(t, &list)
	if !list.lists("UCI", revocationHash(uvci)) || !list.lists("COUNTRYCODEUCI", revocationHash("VN"+uvci)) {
		t.Errorf("the revoked certificate's hashes are not on the list: %s", truncate(after.body))
	}
	if strings.Contains(string(after.body), uvci[len("URN:UVCI:01:VN:"):len("URN:UVCI:01:VN:")+26]) {
		t.Error("the published list holds the UVCI itself")
	}
	if after.header.Get("ETag") == etag {
		t.Error("the list changed but its ETag did not")
	}

	var verdict struct {
		Valid bool
		Step  string
	}
	h.do(t, call{name: "verify a revoked certificate", method: "POST", path: "/v1/verify", header: jsonHeader, body: mustJSON(t, map[string]string{"hc1": hc1}), request: reqValid, status: 200}).json(t, &verdict)
	if verdict.Valid || verdict.Step != "revoked" {
		t.Errorf("a revoked certificate verifies as %+v; want invalid at step revoked", verdict)
	}
	h.do(t, call{name: "lookup a revoked certificate", method: "POST", path: "/v1/passports/lookup", header: jsonHeader, body: lookupBody, request: reqValid, status: 404})
	h.do(t, call{name: "qr of a revoked certificate", method: "GET", path: qrPath, request: reqValid, status: 404})

	wrongCheck := uvci[:len(uvci)-1] + string(otherCheckChar(uvci[len(uvci)-1]))
	facHeader := map[string]string{"Authorization": "Bearer " + h.key, "Content-Type": "application/json"}
	for _, c := range []struct {
		call
		field string
	}{
		{call: call{name: "revoke without key", method: "POST", path: "/v1/ops/revocations", header: jsonHeader, body: revoke, request: reqInvalid, status: 401}},
		{call: call{name: "revoke with a facility key", method: "POST", path: "/v1/ops/revocations", header: facHeader, body: revoke, status: 403}},
		{call: call{name: "revoke with an unknown key", method: "POST", path: "/v1/ops/revocations", header: map[string]string{"Authorization": "Bearer vxo_unknown", "Content-Type": "application/json"}, body: revoke, status: 401}},
		{call: call{name: "revoke an unknown certificate", method: "POST", path: "/v1/ops/revocations", header: h.opsAuth(), body: []byte(`{"uvci":"URN:UVCI:01:VN:AAAAAAAAAAAAAAAAAAAAAAAAAA","reason":"test"}`), request: reqValid, status: 404}},
		{call: call{name: "revoke without uvci", method: "POST", path: "/v1/ops/revocations", header: h.opsAuth(), body: []byte(`{"reason":"test"}`), request: reqInvalid, status: 400}, field: "uvci"},
		{call: call{name: "revoke what is not a UVCI", method: "POST", path: "/v1/ops/revocations", header: h.opsAuth(), body: []byte(`{"uvci":"not-a-uvci","reason":"test"}`), request: reqInvalid, status: 400}, field: "uvci"},
		{call: call{name: "revoke a UVCI with a wrong check character", method: "POST", path: "/v1/ops/revocations", header: h.opsAuth(), body: mustJSON(t, map[string]string{"uvci": wrongCheck, "reason": "test"}), request: reqAny, status: 400}, field: "uvci"},
		{call: call{name: "revoke without reason", method: "POST", path: "/v1/ops/revocations", header: h.opsAuth(), body: mustJSON(t, map[string]string{"uvci": uvci}), request: reqInvalid, status: 400}, field: "reason"},
		{call: call{name: "revoke with a blank reason", method: "POST", path: "/v1/ops/revocations", header: h.opsAuth(), body: mustJSON(t, map[string]string{"uvci": uvci, "reason": "   "}), request: reqInvalid, status: 400}, field: "reason"},
		{call: call{name: "revoke with a too long reason", method: "POST", path: "/v1/ops/revocations", header: h.opsAuth(), body: mustJSON(t, map[string]string{"uvci": uvci, "reason": strings.Repeat("ồ", 201)}), request: reqInvalid, status: 400}, field: "reason"},
		{call: call{name: "revoke with a control character in the reason", method: "POST", path: "/v1/ops/revocations", header: h.opsAuth(), body: mustJSON(t, map[string]string{"uvci": uvci, "reason": "a\u0007b"}), request: reqInvalid, status: 400}, field: "reason"},
		{call: call{name: "revoke with an unknown field", method: "POST", path: "/v1/ops/revocations", header: h.opsAuth(), body: []byte(`{"uvci":"x","reason":"y","by":"me"}`), request: reqInvalid, status: 400}, field: "by"},
		{call: call{name: "revoke with malformed JSON", method: "POST", path: "/v1/ops/revocations", header: h.opsAuth(), body: []byte(`{"uvci":`), request: reqInvalid, status: 400}},
		{call: call{name: "revoke over 4 KiB", method: "POST", path: "/v1/ops/revocations", header: h.opsAuth(), body: []byte(`{"uvci":"x","reason":"` + strings.Repeat("x", 5000) + `"}`), status: 413}},
	} {
		r := h.do(t, c.call)
		if c.field != "" && r.status == http.StatusBadRequest {
			if e := r.errorBody(t); e.Field != c.field {
				t.Errorf("%s: error names field %q (%s), want %q", c.name, e.Field, e.Code, c.field)
			}
		}
		if r.status == http.StatusUnauthorized && r.header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: 401 without WWW-Authenticate", c.name)
		}
	}
}

// otherCheckChar returns a UVCI check character that is not c.
func otherCheckChar(c byte) byte {
	if c == 'A' {
		return 'B'
	}
	return 'A'
}

// auditEntry is an entry of GET /v1/ops/audit.
type auditEntry struct {
	ID         string            `json:"id"`
	Actor      string            `json:"actor"`
	Action     string            `json:"action"`
	Reason     string            `json:"reason"`
	Doses      []string          `json:"doses"`
	UVCIs      []string          `json:"uvcis"`
	Facilities []string          `json:"facilities"`
	Params     map[string]string `json:"params"`
}

type auditPage struct {
	Entries []auditEntry `json:"entries"`
	Next    string       `json:"next"`
}

// checkAudit reads the audit trail after checkCorrections (on correctedSID) and
// checkRevocation (of uvci); personal lists what must never appear in it.
func (h *harness) checkAudit(t *testing.T, correctedSID, uvci string, personal []string) {
	t.Helper()
	var page auditPage
	all := h.do(t, call{name: "audit trail", method: "GET", path: "/v1/ops/audit", header: h.opsAuth(), request: reqValid, status: 200})
	all.json(t, &page)
	for _, p := range personal {
		if p != "" && strings.Contains(string(all.body), p) {
			t.Errorf("the audit trail holds personal data (%q)", p)
		}
	}
	var corrections, revocations int
	for _, e := range page.Entries {
		switch e.Action {
		case "correction":
			if e.Actor == "facility:"+local.DemoFacility && slices.Contains(e.Doses, local.DemoFacility+"/"+correctedSID) {
				corrections++
			}
		case "revocation":
			if e.Actor == opsActor && e.Reason == "issued in error" && slices.Contains(e.UVCIs, uvci) {
				revocations++
			}
		}
	}
	// Two corrections changed something; the third changed nothing and is not audited.
	if corrections != 2 || revocations != 1 {
		t.Errorf("audit trail: %d corrections of %s and %d revocations of the certificate by %s; want 2 and 1\n%s",
			corrections, correctedSID, revocations, opsActor, truncate(all.body))
	}

	page = auditPage{}
	h.do(t, call{name: "audit of one action and actor", method: "GET", path: "/v1/ops/audit?action=revocation&actor=" + opsActor + "&from=2022-07-15&to=2022-07-16T00:00:00Z", header: h.opsAuth(), request: reqValid, status: 200}).json(t, &page)
	if len(page.Entries) != 1 || page.Entries[0].Action != "revocation" || page.Entries[0].Actor != opsActor {
		t.Errorf("filtered audit: %+v; want the one revocation", page.Entries)
	}
	page = auditPage{}
	h.do(t, call{name: "audit page of one", method: "GET", path: "/v1/ops/audit?limit=1", header: h.opsAuth(), request: reqValid, status: 200}).json(t, &page)
	if len(page.Entries) != 1 || page.Next == "" {
		t.Fatalf("audit limit=1: %+v; want one entry and a next cursor", page)
	}
	firstID, next := page.Entries[0].ID, page.Next
	page = auditPage{}
	h.do(t, call{name: "audit next page", method: "GET", path: "/v1/ops/audit?limit=1&after=" + next, header: h.opsAuth(), request: reqValid, status: 200}).json(t, &page)
	if len(page.Entries) != 1 || page.Entries[0].ID <= firstID {
		t.Errorf("audit page after %s: %+v", firstID, page.Entries)
	}
	page = auditPage{}
	h.do(t, call{name: "audit of the future", method: "GET", path: "/v1/ops/audit?from=2030-01-01", header: h.opsAuth(), request: reqValid, status: 200}).json(t, &page)
	if len(page.Entries) != 0 || page.Next != "" {
		t.Errorf("audit from 2030: %+v; want nothing", page)
	}

	csv := h.do(t, call{name: "audit csv", method: "GET", path: "/v1/ops/audit?format=csv&limit=1", header: h.opsAuth(), request: reqValid, status: 200})
	if !strings.HasPrefix(csv.header.Get("Content-Type"), "text/csv") || csv.header.Get("X-Next-After") == "" ||
		strings.Count(string(csv.body), "\n") != 2 {
		t.Errorf("audit csv: %s, X-Next-After %q:\n%s", csv.header.Get("Content-Type"), csv.header.Get("X-Next-After"), truncate(csv.body))
	}
	h.do(t, call{name: "audit csv of nothing", method: "GET", path: "/v1/ops/audit?format=csv&from=2030-01-01", header: h.opsAuth(), request: reqValid, status: 200})

	facHeader := map[string]string{"Authorization": "Bearer " + h.key}
	for _, c := range []struct {
		call
		field string
	}{
		{call: call{name: "audit without key", method: "GET", path: "/v1/ops/audit", request: reqInvalid, status: 401}},
		{call: call{name: "audit with a facility key", method: "GET", path: "/v1/ops/audit", header: facHeader, status: 403}},
		{call: call{name: "audit from a bad date", method: "GET", path: "/v1/ops/audit?from=01/02/2025", header: h.opsAuth(), request: reqInvalid, status: 400}, field: "from"},
		{call: call{name: "audit to a bad date", method: "GET", path: "/v1/ops/audit?to=tomorrow", header: h.opsAuth(), request: reqInvalid, status: 400}, field: "to"},
		{call: call{name: "audit to before from", method: "GET", path: "/v1/ops/audit?from=2022-07-16&to=2022-07-15", header: h.opsAuth(), request: reqAny, status: 400}, field: "query"},
		{call: call{name: "audit limit 0", method: "GET", path: "/v1/ops/audit?limit=0", header: h.opsAuth(), request: reqInvalid, status: 400}, field: "limit"},
		{call: call{name: "audit limit over 10000", method: "GET", path: "/v1/ops/audit?limit=10001", header: h.opsAuth(), request: reqInvalid, status: 400}, field: "limit"},
		{call: call{name: "audit limit not a number", method: "GET", path: "/v1/ops/audit?limit=ten", header: h.opsAuth(), request: reqInvalid, status: 400}, field: "limit"},
		{call: call{name: "audit in xml", method: "GET", path: "/v1/ops/audit?format=xml", header: h.opsAuth(), request: reqInvalid, status: 400}, field: "format"},
		{call: call{name: "audit of a bad action", method: "GET", path: "/v1/ops/audit?action=Not-An-Action", header: h.opsAuth(), request: reqInvalid, status: 400}, field: "query"},
		{call: call{name: "audit after a bad cursor", method: "GET", path: "/v1/ops/audit?after=zz", header: h.opsAuth(), request: reqInvalid, status: 400}, field: "query"},
	} {
		r := h.do(t, c.call)
		if c.field != "" && r.status == http.StatusBadRequest {
			if e := r.errorBody(t); e.Field != c.field {
				t.Errorf("%s: error names field %q (%s), want %q", c.name, e.Field, e.Code, c.field)
			}
		}
	}
}

// TestCorrectionOfAMultiByteSourceID: a source_id is up to 64 characters (runes), so a
// record whose source_id holds multi-byte characters can be uploaded and read back, and
// must be correctable too.
func TestCorrectionOfAMultiByteSourceID(t *testing.T) {
	h := newHarness(t)
	var upload struct {
		Records []dose.Record `json:"records"`
	}
	readDemo(t, h, "doses.json", &upload)
	sid := strings.Repeat("Đ", 40) // 40 characters, 80 bytes
	body := mustJSON(t, map[string]any{"records": []dose.Record{withSourceID(upload.Records[0], sid)}})
	var report struct{ Accepted int }
	h.do(t, call{name: "upload a multi-byte source_id", method: "POST", path: "/v1/doses", header: h.authJSON(), body: body, request: reqValid, status: 200}).json(t, &report)
	if report.Accepted != 1 {
		t.Fatalf("upload: %d accepted, want 1", report.Accepted)
	}
	path := "/v1/doses/" + pathEscape(sid)
	h.do(t, call{name: "get it", method: "GET", path: path, header: h.auth(), request: reqValid, status: 200})
	var ans correctionAnswer
	h.do(t, call{name: "correct it", method: "PATCH", path: path, header: h.authJSON(), body: []byte(`{"lot":"L-2"}`), request: reqValid, status: 200}).json(t, &ans)
	if ans.Status != "corrected" {
		t.Errorf("correction of a multi-byte source_id: %+v", ans)
	}
}
