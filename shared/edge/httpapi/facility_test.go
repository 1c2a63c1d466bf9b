package httpapi_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestGetDoseSourceIDLimitInCharacters: a source_id is 1 to 64 characters (contract), so
// every source_id an upload accepts can be read back, also one of non-ASCII characters
// longer than 64 bytes.
func TestGetDoseSourceIDLimitInCharacters(t *testing.T) {
	fx := newFixture(t)
	auth := map[string]string{"Authorization": "Bearer " + fixtureKey, "Content-Type": "application/json"}
	for _, sid := range []string{
		strings.Repeat("x", 64),
		strings.Repeat("ễ", 30), // 30 characters, 90 bytes
		strings.Repeat("ễ", 64),
	} {
		rec := strings.Replace(goodRecord, `"S-1"`, `"`+sid+`"`, 1)
		resp := fx.serve(t, request{method: "POST", path: "/v1/doses", headers: auth, body: []byte(`{"records":[` + rec + `]}`)})
		var rep struct{ Accepted int }
		if resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(resp.Body), &rep) != nil || rep.Accepted != 1 {
			t.Fatalf("upload of a %d-character source_id: %d %s", len([]rune(sid)), resp.StatusCode, resp.Body)
		}
		// The event carries the path percent-decoded, as API Gateway hands it over.
		resp = fx.serve(t, request{method: "GET", path: "/v1/doses/" + sid, headers: auth})
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET /v1/doses/%s (%d characters, %d bytes): %d %s", url.PathEscape(sid[:6])+"…", len([]rune(sid)), len(sid), resp.StatusCode, resp.Body)
		}
	}
}

// TestWorklistReasonsAlwaysAnArray: the contract shows every record's match as
// {"status","reasons":[…]}; a record not matched yet has no reasons, which is [] and never
// null, in the worklist as in GET /v1/doses/{source_id}.
func TestWorklistReasonsAlwaysAnArray(t *testing.T) {
	fx := newFixture(t)
	auth := map[string]string{"Authorization": "Bearer " + fixtureKey, "Content-Type": "application/json"}
	resp := fx.serve(t, request{method: "POST", path: "/v1/doses", headers: auth, body: []byte(`{"records":[` + goodRecord + `]}`)})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("upload: %d %s", resp.StatusCode, resp.Body)
	}
	type view struct {
		Match struct {
			Status  string           `json:"status"`
			Reasons *json.RawMessage `json:"reasons"`
		} `json:"match"`
	}
	check := func(where string, v view) {
		t.Helper()
		if v.Match.Status != "PENDING" {
			t.Fatalf("%s: status %q, want PENDING (nothing matches in this fixture)", where, v.Match.Status)
		}
		if v.Match.Reasons == nil || !strings.HasPrefix(string(*v.Match.Reasons), "[") {
			t.Errorf("%s: match.reasons is not an array", where)
		}
	}
	var one view
	resp = fx.serve(t, request{method: "GET", path: "/v1/doses/S-1", headers: auth})
	if err := json.Unmarshal([]byte(resp.Body), &one); err != nil {
		t.Fatalf("GET /v1/doses/S-1: %d %s", resp.StatusCode, resp.Body)
	}
	check("GET /v1/doses/S-1", one)
	var page struct{ Records []view }
	resp = fx.serve(t, request{method: "GET", path: "/v1/worklist?status=PENDING", headers: auth})
	if err := json.Unmarshal([]byte(resp.Body), &page); err != nil || len(page.Records) != 1 {
		t.Fatalf("worklist: %d %s", resp.StatusCode, resp.Body)
	}
	check("GET /v1/worklist", page.Records[0])
}
