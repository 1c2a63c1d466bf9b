package deployed

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestDeployedReports: a citizen's report on the deployed stack (the public function)
// is stored in the ops table, its status read back, and listed to the clerk of its
// commune (the facility function); a facility that is not registered is a 400.
func TestDeployedReports(t *testing.T) {
	s := openStack(t)
	run := s.operator(t, "reports-test")
	tag := randomTag()
	facility, commune := "reports-"+tag, digits(tag)
	run("facility", "add", "--id", facility, "--name", "Report test site")
	clerk := strings.TrimSpace(run("key", "add", "--role", "clerk", "--subject", commune))

	body := func(fac string) []byte {
		b, _ := json.Marshal(map[string]string{
			"id_number": "001190" + commune + "1", "full_name": "Phạm Văn Báo", "dob": "03/04/1990", "gender": "Nam",
			"facility_id": fac, "commune_code": commune, "phone": "0987 654 321", "note": "deployed",
		})
		return b
	}
	r := s.call(http.MethodPost, "/v1/reports", "", "application/json", body(facility))
	var ans struct{ Reference, Status string }
	if r.status != http.StatusAccepted || json.Unmarshal(r.body, &ans) != nil || len(ans.Reference) != 26 || ans.Status != "received" {
		t.Fatalf("POST /v1/reports: %d %s", r.status, r.body)
	}
	if r := s.call(http.MethodPost, "/v1/reports", "", "application/json", body("no-such-"+tag)); r.status != http.StatusBadRequest || !strings.Contains(string(r.body), "facility_id") {
		t.Fatalf("a report of an unregistered facility: %d %s", r.status, r.body)
	}
	r = s.call(http.MethodGet, "/v1/reports/"+ans.Reference, "", "", nil)
	if r.status != http.StatusOK || !strings.Contains(string(r.body), `"received"`) {
		t.Fatalf("GET /v1/reports/%s: %d %s", ans.Reference, r.status, r.body)
	}
	r = s.call(http.MethodGet, "/v1/reports", clerk, "", nil)
	var page struct {
		Reports []struct {
			Reference  string `json:"reference"`
			FacilityID string `json:"facility_id"`
		} `json:"reports"`
	}
	if r.status != http.StatusOK || json.Unmarshal(r.body, &page) != nil || len(page.Reports) != 1 ||
		page.Reports[0].Reference != ans.Reference || page.Reports[0].FacilityID != facility {
		t.Fatalf("the clerk's GET /v1/reports: %d %s", r.status, r.body)
	}
}
