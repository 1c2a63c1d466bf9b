package contract

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/domain/access"
	"github.com/vaxpass/vaxpass/shared/wire/local"
)

// checkReports drives the citizen's report: POST /v1/reports, GET /v1/reports/{reference},
// a facility's and a clerk's GET /v1/reports, the page; then the per-ID and the per-client
// limits (the clock then moves an hour on, so that the budgets are whole again).
func (h *harness) checkReports(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	jsonHeader := map[string]string{"Content-Type": "application/json"}
	good := map[string]string{
		"id_number": "001188099001", "full_name": "Lê Thị Báo Cáo", "dob": "02/09/1991", "gender": "Nữ",
		"facility_id": local.DemoFacility, "commune_code": "00777", "phone": "0912 345 678", "note": "mũi 2 không thấy",
	}
	body := func(edit func(map[string]string)) []byte {
		m := map[string]string{}
		for k, v := range good {
			m[k] = v
		}
		if edit != nil {
			edit(m)
		}
		b, _ := json.Marshal(m)
		return b
	}
	var ans struct{ Reference, Status string }
	h.do(t, call{name: "report", method: "POST", path: "/v1/reports", header: jsonHeader, body: body(nil), request: reqValid, status: 202}).json(t, &ans)
	if len(ans.Reference) != 26 || ans.Status != "received" {
		t.Fatalf("report answer %+v", ans)
	}
	h.do(t, call{name: "a report's status", method: "GET", path: "/v1/reports/" + ans.Reference, request: reqValid, status: 200})
	for _, c := range []call{
		{name: "report not JSON", method: "POST", path: "/v1/reports", header: jsonHeader, body: []byte(`{"id_number":`), request: reqInvalid, status: 400},
		{name: "report unknown key", method: "POST", path: "/v1/reports", header: jsonHeader, body: []byte(`{"x":1}`), request: reqInvalid, status: 400},
		{name: "report without an ID number", method: "POST", path: "/v1/reports", header: jsonHeader, body: body(func(m map[string]string) { m["id_number"] = "" }), request: reqInvalid, status: 400},
		{name: "report with a malformed date", method: "POST", path: "/v1/reports", header: jsonHeader, body: body(func(m map[string]string) { m["dob"] = "31/02/1991" }), request: reqValid, status: 400},
		{name: "report of an unregistered facility", method: "POST", path: "/v1/reports", header: jsonHeader, body: body(func(m map[string]string) { m["facility_id"] = "no-such-site" }), request: reqValid, status: 400},
		{name: "report over 4 KiB", method: "POST", path: "/v1/reports", header: jsonHeader, body: body(func(m map[string]string) { m["note"] = strings.Repeat("x", 5000) }), request: reqInvalid, status: 413},
		{name: "an unknown report", method: "GET", path: "/v1/reports/AAAAAAAAAAAAAAAAAAAAAAAAAA", request: reqValid, status: 404},
		{name: "a malformed reference", method: "GET", path: "/v1/reports/nope", request: reqValid, status: 404},
		{name: "the report page", method: "GET", path: "/report", status: 200},
		{name: "a file of the report page", method: "GET", path: "/static/report.js", status: 200},
	} {
		h.do(t, c)
	}

	clerk, _, err := h.sys.Sys.NewKey(ctx, access.Clerk, "00777")
	if err != nil {
		t.Fatal(err)
	}
	otherClerk, _, err := h.sys.Sys.NewKey(ctx, access.Clerk, "00778")
	if err != nil {
		t.Fatal(err)
	}
	officer, _, err := h.sys.Sys.NewKey(ctx, access.Officer, "officer-reports")
	if err != nil {
		t.Fatal(err)
	}
	bearer := func(key string) map[string]string { return map[string]string{"Authorization": "Bearer " + key} }
	var page struct {
		Reports []struct {
			Reference  string `json:"reference"`
			FacilityID string `json:"facility_id"`
			IDNumber   string `json:"id_number"`
		} `json:"reports"`
	}
	for _, who := range []struct {
		name string
		hdr  map[string]string
		want int
	}{{"the facility's reports", h.auth(), 1}, {"the clerk's reports", bearer(clerk), 1}, {"another commune's clerk", bearer(otherClerk), 0}, {"another facility's reports", bearer(h.other), 0}} {
		h.do(t, call{name: who.name, method: "GET", path: "/v1/reports", header: who.hdr, request: reqValid, status: 200}).json(t, &page)
		if len(page.Reports) != who.want || who.want == 1 && (page.Reports[0].Reference != ans.Reference || page.Reports[0].IDNumber != good["id_number"] || page.Reports[0].FacilityID != local.DemoFacility) {
			t.Errorf("%s: %+v", who.name, page.Reports)
		}
	}
	for _, c := range []call{
		{name: "reports with a bad limit", method: "GET", path: "/v1/reports?limit=0", header: h.auth(), request: reqInvalid, status: 400},
		{name: "reports without a key", method: "GET", path: "/v1/reports", request: reqInvalid, status: 401},
		{name: "reports with an officer key", method: "GET", path: "/v1/reports", header: bearer(officer), request: reqValid, status: 403},
	} {
		h.do(t, c)
	}

	// Per ID number: the sixth report within the hour is refused, whatever it says.
	for i := range 4 {
		h.do(t, call{name: "another report of the ID number", method: "POST", path: "/v1/reports", header: jsonHeader, body: body(func(m map[string]string) { m["note"] = strings.Repeat("!", i+1) }), request: reqValid, status: 202})
	}
	r := h.do(t, call{name: "report over the per-ID limit", method: "POST", path: "/v1/reports", header: jsonHeader, body: body(nil), request: reqValid, status: 429})
	if !strings.Contains(string(r.body), "too_many_reports") || r.header.Get("Retry-After") == "" {
		t.Errorf("per-ID refusal: %s %v", r.body, r.header)
	}
	// Per client: the public budget is shared with the lookup.
	limited := false
	for range 500 {
		r := h.do(t, call{name: "report status until limited", method: "GET", path: "/v1/reports/" + ans.Reference, request: reqValid, status: 0, anyStatus: []int{200, 429}})
		if limited = r.status == http.StatusTooManyRequests; limited {
			break
		}
	}
	if !limited {
		t.Fatal("500 report reads were never rate limited")
	}
	h.do(t, call{name: "report when limited", method: "POST", path: "/v1/reports", header: jsonHeader, body: body(func(m map[string]string) { m["id_number"] = "001188099002" }), request: reqValid, status: 429})
	h.clock.Advance(time.Hour + 10*time.Minute)
}
