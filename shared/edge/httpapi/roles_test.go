package httpapi_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/vaxpass/vaxpass/shared/domain/access"
	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/stage/audit"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// Two registry people a name-only record may be: their ID numbers and dates of birth must
// reach the officer and nobody else.
var candidates = []match.Candidate{
	{Person: match.Person{IDNumber: "001185099991", FullName: "Nguyễn Văn An", DOB: "1985-04-01", Gender: "male"}, Score: 0.9},
	{Person: match.Person{IDNumber: "079185099992", FullName: "Nguyễn Văn An", DOB: "1985-11-23", Gender: "male"}, Score: 0.8},
}

// rolesFixture: site-1 and site-2 each hold a NO_ID record with candidates in the clerk's
// commune, site-1 one more in another commune.
func rolesFixture(t *testing.T) *fixture {
	t.Helper()
	fx := newFixture(t)
	ctx := context.Background()
	if err := fx.store.AddFacility(ctx, vaxpass.Facility{ID: "site-2", Name: "Site 2", APIKeyHash: access.Hash("vxp_site-2"), KeyID: "k2", CreatedAt: today}); err != nil {
		t.Fatal(err)
	}
	fx.keys.add("vxp_site-2", access.Facility, "site-2", false)
	for _, u := range []struct{ key, sid, commune string }{
		{fixtureKey, "N-1", fixtureCommune}, {fixtureKey, "N-2", "00002"}, {"vxp_site-2", "N-3", fixtureCommune},
	} {
		rec := `{"source_id":"` + u.sid + `","full_name":"Nguyễn Văn An","dob":"1985","gender":"male","commune_code":"` + u.commune + `","vaccine":"PFIZER","dose_number":1,"vaccinated_on":"2021-08-01"}`
		resp := fx.serve(t, request{method: "POST", path: "/v1/doses", headers: bearer(u.key, "application/json"), body: []byte(`{"records":[` + rec + `]}`)})
		if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Body, `"accepted":1`) {
			t.Fatalf("upload %s: %d %s", u.sid, resp.StatusCode, resp.Body)
		}
		fid := fixtureFacility
		if u.key != fixtureKey {
			fid = "site-2"
		}
		d, err := fx.store.GetDose(ctx, vaxpass.DoseKey{FacilityID: fid, SourceID: u.sid})
		if err != nil {
			t.Fatal(err)
		}
		d.Match = match.Result{Status: match.NoID, Reasons: []string{}, Candidates: candidates}
		if errs, err := fx.store.SaveMatchBatch(ctx, []vaxpass.Dose{d}); err != nil || errs[0] != nil {
			t.Fatalf("save match of %s: %v %v", u.sid, err, errs)
		}
	}
	return fx
}

func bearer(key, contentType string) map[string]string {
	h := map[string]string{"Authorization": "Bearer " + key}
	if contentType != "" {
		h["Content-Type"] = contentType
	}
	return h
}

// leaks names the registry values of the candidates found in body.
func leaks(body string) []string {
	var out []string
	for _, c := range candidates {
		for _, v := range []string{c.IDNumber, c.DOB} {
			if strings.Contains(body, v) {
				out = append(out, v)
			}
		}
	}
	return out
}

// TestFacilityAndClerkSeeNoRegistryValues: a facility's and a clerk's answers count the
// candidates and carry none of their values, in every format.
func TestFacilityAndClerkSeeNoRegistryValues(t *testing.T) {
	fx := rolesFixture(t)
	for _, c := range []struct{ name, key, path string }{
		{"facility dose", fixtureKey, "/v1/doses/N-1"},
		{"facility worklist", fixtureKey, "/v1/worklist?status=NO_ID"},
		{"facility csv", fixtureKey, "/v1/worklist?status=NO_ID&format=csv"},
		{"facility xlsx", fixtureKey, "/v1/worklist?status=NO_ID&format=xlsx"},
		{"clerk worklist", clerkKey, "/v1/worklist?status=NO_ID"},
		{"clerk csv", clerkKey, "/v1/worklist?status=NO_ID&format=csv"},
		{"clerk xlsx", clerkKey, "/v1/worklist?status=NO_ID&format=xlsx"},
	} {
		resp := fx.serve(t, request{method: "GET", path: c.path, headers: bearer(c.key, "")})
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %s", c.name, resp.StatusCode, resp.Body)
		}
		body := resp.Body
		if resp.IsBase64Encoded {
			body = unzipAll(t, resp)
		}
		if l := leaks(body); len(l) > 0 {
			t.Errorf("%s carries registry values %v", c.name, l)
		}
	}
	var one struct {
		Match map[string]any `json:"match"`
	}
	resp := fx.serve(t, request{method: "GET", path: "/v1/doses/N-1", headers: bearer(fixtureKey, "")})
	if json.Unmarshal([]byte(resp.Body), &one) != nil || one.Match["candidates_count"] != float64(2) || one.Match["candidates"] != nil {
		t.Errorf("GET /v1/doses/N-1 match: %s", resp.Body)
	}
	// The clerk sees its commune's records of both facilities, each naming its facility.
	var page struct {
		Records []struct {
			FacilityID string `json:"facility_id"`
			SourceID   string `json:"source_id"`
			Match      struct {
				CandidatesCount int `json:"candidates_count"`
			} `json:"match"`
		} `json:"records"`
	}
	resp = fx.serve(t, request{method: "GET", path: "/v1/worklist?status=NO_ID", headers: bearer(clerkKey, "")})
	if err := json.Unmarshal([]byte(resp.Body), &page); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range page.Records {
		got = append(got, r.FacilityID+"/"+r.SourceID)
		if r.Match.CandidatesCount != 2 {
			t.Errorf("clerk's %s: candidates_count %d", r.SourceID, r.Match.CandidatesCount)
		}
	}
	if want := []string{"site-1/N-1", "site-2/N-3"}; !slices.Equal(got, want) {
		t.Errorf("clerk's worklist %v, want %v", got, want)
	}
	resp = fx.serve(t, request{method: "GET", path: "/v1/worklist?status=NO_ID&format=csv", headers: bearer(clerkKey, "")})
	rows, err := csv.NewReader(strings.NewReader(strings.TrimPrefix(resp.Body, "\ufeff"))).ReadAll()
	if err != nil || len(rows) != 3 {
		t.Fatalf("clerk's csv: %v %q", err, resp.Body)
	}
	last := len(rows[0]) - 1
	cand := slices.IndexFunc(rows[0], func(h string) bool { return strings.HasSuffix(h, "(candidates)") })
	if rows[0][last] != "Mã cơ sở tiêm (facility_id)" || rows[1][last] != "site-1" || rows[2][last] != "site-2" || rows[1][cand] != "2" {
		t.Errorf("clerk's csv: %q", rows)
	}
	// A facility's worklist is its own.
	resp = fx.serve(t, request{method: "GET", path: "/v1/worklist?status=NO_ID", headers: bearer("vxp_site-2", "")})
	if strings.Contains(resp.Body, "N-1") || !strings.Contains(resp.Body, "N-3") {
		t.Errorf("site-2's worklist: %s", resp.Body)
	}
}

// TestOfficerSeesCandidatesAudited: the officer's list holds the candidates in full, and
// each answer leaves an audit entry (actor, filter, counts; no personal data).
func TestOfficerSeesCandidatesAudited(t *testing.T) {
	fx := rolesFixture(t)
	for _, path := range []string{
		"/v1/registry/records?status=NO_ID&commune_code=" + fixtureCommune,
		"/v1/registry/records?status=NO_ID&facility_id=site-1&format=csv",
	} {
		resp := fx.serve(t, request{method: "GET", path: path, headers: bearer(officerKey, "")})
		if resp.StatusCode != http.StatusOK || len(leaks(resp.Body)) != 4 {
			t.Errorf("GET %s: %d, registry values %v: %s", path, resp.StatusCode, leaks(resp.Body), resp.Body)
		}
	}
	entries, _, err := fx.audit.Entries(context.Background(), audit.Query{Action: "registry_disclose", Limit: 10})
	if err != nil || len(entries) != 2 {
		t.Fatalf("audit entries %+v, %v; want 2", entries, err)
	}
	e := entries[0]
	if e.Actor != "officer:officer-olga" || e.Params["commune_code"] != fixtureCommune || e.Params["status"] != "NO_ID" || e.Counts["records"] != 2 ||
		!slices.Equal(e.Doses, []string{"site-1/N-1", "site-2/N-3"}) {
		t.Errorf("first disclosure's entry: %+v", e)
	}
	raw, _ := json.Marshal(entries)
	if l := leaks(string(raw)); len(l) > 0 || strings.Contains(string(raw), "Nguyễn") {
		t.Errorf("audit entries carry personal data: %s", raw)
	}
	for _, c := range []struct {
		path, field string
	}{
		{"/v1/registry/records?status=NO_ID", "commune_code"},
		{"/v1/registry/records?status=NO_ID&commune_code=00001&facility_id=site-1", "facility_id"},
		{"/v1/registry/records?status=VERIFIED&facility_id=site-1", "status"},
		{"/v1/registry/records?status=NO_ID&commune_code=1", "commune_code"},
		{"/v1/registry/records?status=NO_ID&facility_id=site-1&format=xlsx", "format"},
	} {
		resp := fx.serve(t, request{method: "GET", path: c.path, headers: bearer(officerKey, "")})
		if e, err := contractError(resp); resp.StatusCode != 400 || err != nil || e.Field != c.field {
			t.Errorf("GET %s: %d %s, want 400 naming %s", c.path, resp.StatusCode, resp.Body, c.field)
		}
	}
}

// TestRolesOfTheRoutes: who may call what; a refusal is a 401 or 403 and an event.
func TestRolesOfTheRoutes(t *testing.T) {
	fx := rolesFixture(t)
	fx.keys.add("vxp_revoked", access.Facility, fixtureFacility, true)
	patch := `{"lot":"LOT-9"}`
	for _, c := range []struct {
		name, key, method, path, body string
		status                        int
		event                         string
	}{
		{"clerk may not upload", clerkKey, "POST", "/v1/doses", `{"records":[{}]}`, 403, "forbidden"},
		{"officer may not read the worklist", officerKey, "GET", "/v1/worklist?status=NO_ID", "", 403, "forbidden"},
		{"ops may not read a dose", opsKey, "GET", "/v1/doses/N-1", "", 403, "forbidden"},
		{"facility may not read the registry", fixtureKey, "GET", "/v1/registry/records?status=NO_ID&facility_id=site-1", "", 403, "forbidden"},
		{"clerk may not read the registry", clerkKey, "GET", "/v1/registry/records?status=NO_ID&facility_id=site-1", "", 403, "forbidden"},
		{"revoked facility key", "vxp_revoked", "GET", "/v1/doses/N-1", "", 401, "auth_revoked"},
		{"unknown key", "vxp_nobody", "GET", "/v1/worklist?status=NO_ID", "", 401, "auth_failed"},
		{"no key", "", "PATCH", "/v1/doses/N-1", patch, 401, "auth_failed"},
		// Corrections: a facility its own, a clerk its commune's, an officer any.
		{"facility corrects its record", fixtureKey, "PATCH", "/v1/doses/N-1", patch, 200, ""},
		{"facility names another facility", fixtureKey, "PATCH", "/v1/doses/N-3?facility_id=site-2", patch, 404, ""},
		{"clerk corrects its commune's record", clerkKey, "PATCH", "/v1/doses/N-3?facility_id=site-2", patch, 200, ""},
		{"clerk outside its commune", clerkKey, "PATCH", "/v1/doses/N-2?facility_id=site-1", patch, 404, ""},
		{"clerk without facility_id", clerkKey, "PATCH", "/v1/doses/N-3", patch, 400, ""},
		{"officer corrects any record", officerKey, "PATCH", "/v1/doses/N-2?facility_id=site-1", patch, 200, ""},
		{"ops may not correct", opsKey, "PATCH", "/v1/doses/N-2?facility_id=site-1", patch, 403, "forbidden"},
	} {
		fx.events.kinds = nil
		h := bearer(c.key, "application/json")
		if c.key == "" {
			h = map[string]string{"Content-Type": "application/json"}
		}
		resp := fx.serve(t, request{method: c.method, path: c.path, headers: h, body: []byte(c.body)})
		if resp.StatusCode != c.status {
			t.Errorf("%s: %d %s, want %d", c.name, resp.StatusCode, resp.Body, c.status)
			continue
		}
		if e, err := contractError(resp); c.status >= 400 && (err != nil || (c.status == 403) != (e.Code == "forbidden")) {
			t.Errorf("%s: error body %s (%v)", c.name, resp.Body, err)
		}
		var want []string
		if c.event != "" {
			route, _, _ := fx.router.Route(c.method, strings.Split(c.path, "?")[0])
			want = []string{c.event + " " + route}
		}
		if !slices.Equal(fx.events.kinds, want) {
			t.Errorf("%s: events %v, want %v", c.name, fx.events.kinds, want)
		}
	}
	entries, _, err := fx.audit.Entries(context.Background(), audit.Query{Action: audit.ActionCorrection, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	var actors []string
	for _, e := range entries {
		actors = append(actors, e.Actor)
	}
	if want := []string{"facility:site-1", "clerk:" + fixtureCommune, "officer:officer-olga"}; !slices.Equal(actors, want) {
		t.Errorf("corrections audited as %v, want %v", actors, want)
	}
}

// unzipAll is the text of every part of an .xlsx answer (strings are stored as written).
func unzipAll(t *testing.T, resp events.APIGatewayV2HTTPResponse) string {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	z, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	var all strings.Builder
	for _, f := range z.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		part, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		all.Write(part)
	}
	if !strings.Contains(all.String(), "candidates") {
		t.Fatal("the .xlsx holds no worklist header")
	}
	return all.String()
}
