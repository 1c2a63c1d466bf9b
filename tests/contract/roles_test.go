package contract

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/vaxpass/vaxpass/shared/domain/access"
)

// checkRoles drives the routes of clerks and registry officers, and keys of a role an
// operation does not take (403), through the HTTP front. sid is a record of the demo
// facility.
func (h *harness) checkRoles(t *testing.T, sid string) {
	t.Helper()
	ctx := context.Background()
	var rec struct {
		CommuneCode string `json:"commune_code"`
	}
	h.do(t, call{name: "the record whose commune the clerk keeps", method: "GET", path: "/v1/doses/" + pathEscape(sid), header: h.auth(), request: reqValid, status: 200}).json(t, &rec)
	commune := rec.CommuneCode
	if access.CheckSubject(access.Clerk, commune) != nil {
		commune = "00001"
	}
	clerk, _, err := h.sys.Sys.NewKey(ctx, access.Clerk, commune)
	if err != nil {
		t.Fatal(err)
	}
	officer, _, err := h.sys.Sys.NewKey(ctx, access.Officer, "officer-contract")
	if err != nil {
		t.Fatal(err)
	}
	bearer := func(key string) map[string]string {
		return map[string]string{"Authorization": "Bearer " + key, "Content-Type": "application/json"}
	}
	runPath := "/v1/signatures/sr-20220715T080000Z-00000000"
	for _, c := range []call{
		// A key of a role the operation does not take: 403.
		{name: "a record with a clerk key", method: "GET", path: "/v1/doses/" + pathEscape(sid), header: bearer(clerk), request: reqValid, status: 403},
		{name: "worklist with an officer key", method: "GET", path: "/v1/worklist?status=NO_ID", header: bearer(officer), request: reqValid, status: 403},
		{name: "import with an officer key", method: "POST", path: "/v1/imports", header: map[string]string{"Authorization": "Bearer " + officer, "Content-Type": xlsxType}, body: []byte("PK"), status: 403},
		// A clerk sends the commune's worklist back (here not a spreadsheet at all).
		{name: "import with a clerk key", method: "POST", path: "/v1/imports", header: map[string]string{"Authorization": "Bearer " + clerk, "Content-Type": xlsxType}, body: []byte("PK"), status: 400},
		{name: "sign with a clerk key", method: "POST", path: "/v1/signatures", header: bearer(clerk), status: 403},
		{name: "a signing run with an officer key", method: "GET", path: runPath, header: bearer(officer), request: reqValid, status: 403},
		{name: "runs with a clerk key", method: "GET", path: "/v1/ops/reprocess", header: bearer(clerk), request: reqValid, status: 403},
		{name: "registry with a facility key", method: "GET", path: "/v1/registry/records?status=NO_ID&facility_id=demo-site", header: h.auth(), request: reqValid, status: 403},
		{name: "registry with a clerk key", method: "GET", path: "/v1/registry/records?status=NO_ID&facility_id=demo-site", header: bearer(clerk), request: reqValid, status: 403},
		{name: "registry without key", method: "GET", path: "/v1/registry/records?status=NO_ID&facility_id=demo-site", request: reqInvalid, status: 401},
		// The officer's list.
		{name: "registry of a commune", method: "GET", path: "/v1/registry/records?status=NO_ID&commune_code=" + commune, header: bearer(officer), request: reqValid, status: 200},
		{name: "registry of a facility as csv", method: "GET", path: "/v1/registry/records?status=NOT_FOUND&facility_id=demo-site&format=csv", header: bearer(officer), request: reqValid, status: 200},
		{name: "registry without a filter", method: "GET", path: "/v1/registry/records?status=NO_ID", header: bearer(officer), request: reqValid, status: 400},
		{name: "registry with both filters", method: "GET", path: "/v1/registry/records?status=NO_ID&facility_id=demo-site&commune_code=" + commune, header: bearer(officer), request: reqValid, status: 400},
		{name: "registry of verified records", method: "GET", path: "/v1/registry/records?status=VERIFIED&facility_id=demo-site", header: bearer(officer), request: reqInvalid, status: 400},
		{name: "registry of a bad commune", method: "GET", path: "/v1/registry/records?status=NO_ID&commune_code=1", header: bearer(officer), request: reqInvalid, status: 400},
	} {
		h.do(t, c)
	}
	// The clerk's worklist: its commune's records, each naming its facility; candidates
	// only counted.
	var page struct {
		Records []map[string]any `json:"records"`
	}
	for _, st := range []string{"NO_ID", "NOT_FOUND", "VERIFIED"} {
		r := h.do(t, call{name: "clerk's worklist " + st, method: "GET", path: "/v1/worklist?status=" + st, header: bearer(clerk), request: reqValid, status: 200})
		r.json(t, &page)
		for _, v := range page.Records {
			if v["facility_id"] == nil || v["commune_code"] != commune {
				t.Errorf("clerk's worklist %s holds %v", st, v)
			}
			if m, _ := v["match"].(map[string]any); m["candidates"] != nil {
				t.Errorf("clerk's worklist %s shows candidates", st)
			}
		}
	}
	h.do(t, call{name: "clerk's worklist csv", method: "GET", path: "/v1/worklist?status=NO_ID&format=csv", header: bearer(clerk), request: reqValid, status: 200})
	h.do(t, call{name: "clerk's worklist with a bad cursor", method: "GET", path: "/v1/worklist?status=NO_ID&after=x", header: bearer(clerk), request: reqValid, status: 400})
	// Corrections by a clerk (its commune's record) and an officer (any record).
	patch := []byte(`{"lot":"LOT-CLERK"}`)
	path := "/v1/doses/" + pathEscape(sid) + "?facility_id=demo-site"
	status := 404
	if commune == rec.CommuneCode {
		status = 200
	}
	h.do(t, call{name: "clerk corrects", method: "PATCH", path: path, header: bearer(clerk), body: patch, request: reqValid, status: status})
	h.do(t, call{name: "clerk corrects without facility_id", method: "PATCH", path: "/v1/doses/" + pathEscape(sid), header: bearer(clerk), body: patch, request: reqValid, status: 400})
	h.do(t, call{name: "officer corrects", method: "PATCH", path: path, header: bearer(officer), body: []byte(`{"lot":"LOT-OFFICER"}`), request: reqValid, status: 200})
	var officerPage struct {
		Records []json.RawMessage `json:"records"`
	}
	h.do(t, call{name: "registry of the facility", method: "GET", path: "/v1/registry/records?status=NO_ID&facility_id=demo-site", header: bearer(officer), request: reqValid, status: 200}).json(t, &officerPage)
	for _, r := range officerPage.Records {
		if !strings.Contains(string(r), `"facility_id":"demo-site"`) {
			t.Errorf("officer's record without its facility: %s", r)
		}
	}
}
