package httpapi_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/xuri/excelize/v2"

	"github.com/vaxpass/vaxpass/shared/edge/httpapi"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

type importAnswer struct {
	Accepted, Duplicates, Rejected int
	Results                        []struct {
		Row      int    `json:"row"`
		SourceID string `json:"source_id"`
		Status   string `json:"status"`
		Errors   []struct {
			Field, Code, Message string
		} `json:"errors"`
		Warnings []struct {
			Field, Code, Message string
		} `json:"warnings"`
	}
}

// TestClerkSendsBackTheWorklist: a clerk's worklist sent back corrects the commune's
// records of each facility from their stored values; a row of another commune is not
// found, a changed read-only cell is a warning, and with Accept-Language: vi the messages
// are Vietnamese (codes and fields unchanged).
func TestClerkSendsBackTheWorklist(t *testing.T) {
	fx := rolesFixture(t)
	ctx := context.Background()
	resp := fx.serve(t, request{method: "GET", path: "/v1/worklist?status=NO_ID&format=xlsx", headers: bearer(clerkKey, "")})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("worklist: %d %s", resp.StatusCode, resp.Body)
	}
	raw, err := base64.StdEncoding.DecodeString(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	f, err := excelize.OpenReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	sheet := f.GetSheetName(0)
	// Rows: 2 site-1/N-1, 3 site-2/N-3. Columns: B full_name, H commune_code, P
	// corrected_full_name, Q corrected_dob, U facility_id.
	for cell, v := range map[string]any{
		"H2": 1, "B2": "Tên Khác", // commune 00001 came back as 1 (restored); the name changed (a warning)
		"P3": "Nguyễn Văn Ân", "Q3": "12/03/1985", // N-3 of site-2 corrected
		"A4": "N-2", "U4": "site-1", "P4": "Ai Đó", // another commune's record
	} {
		if err := f.SetCellValue(sheet, cell, v); err != nil {
			t.Fatal(err)
		}
	}
	var body bytes.Buffer
	if _, err := f.WriteTo(&body); err != nil {
		t.Fatal(err)
	}
	f.Close()
	before := map[string]vaxpass.Dose{}
	for _, k := range []vaxpass.DoseKey{{FacilityID: fixtureFacility, SourceID: "N-1"}, {FacilityID: fixtureFacility, SourceID: "N-2"}} {
		if before[k.SourceID], err = fx.store.GetDose(ctx, k); err != nil {
			t.Fatal(err)
		}
	}

	headers := bearer(clerkKey, xlsxType)
	headers["Accept-Language"] = "vi-VN,vi;q=0.9,en;q=0.5"
	resp = fx.serve(t, request{method: "POST", path: "/v1/imports", headers: headers, body: []byte(base64.StdEncoding.EncodeToString(body.Bytes())), base64: true})
	var ans importAnswer
	if resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(resp.Body), &ans) != nil {
		t.Fatalf("import: %d %s", resp.StatusCode, resp.Body)
	}
	if ans.Accepted != 1 || ans.Duplicates != 1 || ans.Rejected != 1 || len(ans.Results) != 3 {
		t.Fatalf("import: %s", resp.Body)
	}
	r1, r3, r2 := ans.Results[0], ans.Results[1], ans.Results[2]
	if r1.SourceID != "N-1" || r1.Status != "duplicate" || len(r1.Warnings) != 1 || r1.Warnings[0].Field != "full_name" ||
		r1.Warnings[0].Code != "read_only_changed" || !strings.HasPrefix(r1.Warnings[0].Message, "Họ và tên (full_name): là cột chỉ đọc") {
		t.Errorf("N-1: %+v", r1)
	}
	if r3.SourceID != "N-3" || r3.Status != "accepted" || len(r3.Warnings) != 0 {
		t.Errorf("N-3: %+v", r3)
	}
	if r2.SourceID != "N-2" || r2.Status != "rejected" || len(r2.Errors) != 1 || r2.Errors[0].Code != "not_found" ||
		r2.Errors[0].Field != "source_id" || !strings.HasPrefix(r2.Errors[0].Message, "Mã hồ sơ (source_id): không có hồ sơ") {
		t.Errorf("N-2: %+v", r2)
	}
	n3, err := fx.store.GetDose(ctx, vaxpass.DoseKey{FacilityID: "site-2", SourceID: "N-3"})
	if err != nil || n3.Record.FullName != "Nguyễn Văn Ân" || n3.Record.DOB != "1985-03-12" || n3.Record.CommuneCode != fixtureCommune {
		t.Errorf("N-3 stored %+v, %v", n3.Record, err)
	}
	for sid, b := range before {
		a, err := fx.store.GetDose(ctx, vaxpass.DoseKey{FacilityID: fixtureFacility, SourceID: sid})
		if err != nil || a.Record != b.Record {
			t.Errorf("%s changed: %+v -> %+v (%v)", sid, b.Record, a.Record, err)
		}
	}

	// The same file in English, by a facility key: site-1's rows only; N-3 is site-2's.
	resp = fx.serve(t, request{method: "POST", path: "/v1/imports", headers: bearer(fixtureKey, xlsxType), body: []byte(base64.StdEncoding.EncodeToString(body.Bytes())), base64: true})
	if err := json.Unmarshal([]byte(resp.Body), &ans); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("facility import: %d %s", resp.StatusCode, resp.Body)
	}
	if r := ans.Results[1]; r.SourceID != "N-3" || r.Status != "rejected" || r.Errors[0].Code != "not_found" ||
		r.Errors[0].Message != "no stored record of this worklist has this source_id" {
		t.Errorf("facility import of site-2's row: %+v", r)
	}
	if r := ans.Results[2]; r.SourceID != "N-2" || r.Status != "accepted" {
		t.Errorf("facility import of its own N-2 (another commune, same facility): %+v", r)
	}
}

func TestWantsVietnamese(t *testing.T) {
	for h, want := range map[string]bool{
		"": false, "vi": true, "vi-VN": true, "VI-vn,en;q=0.8": true, "en-US,en;q=0.9,vi;q=0.8": false,
		"en;q=0.5, vi;q=0.9": true, "vi;q=0": false, "fr": false, "vie": false,
	} {
		req := events.APIGatewayV2HTTPRequest{Headers: map[string]string{"accept-language": h}}
		if got := httpapi.WantsVietnamese(req); got != want {
			t.Errorf("Accept-Language %q: %v, want %v", h, got, want)
		}
	}
}

func TestErrorBodyInVietnamese(t *testing.T) {
	fx := rolesFixture(t)
	headers := bearer(fixtureKey, "application/json")
	headers["Accept-Language"] = "vi"
	resp := fx.serve(t, request{method: "POST", path: "/v1/doses", headers: headers, body: []byte(`{"records":[]}`)})
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(resp.Body, `"code":"required"`) || !strings.Contains(resp.Body, "ít nhất một hồ sơ") {
		t.Errorf("empty upload in vi: %d %s", resp.StatusCode, resp.Body)
	}
	rec := `{"source_id":"V-1","full_name":"Lê Thị Hoa","dob":"31/02/1990","gender":"khác","vaccine":"PFIZER","dose_number":1,"vaccinated_on":"2021-08-01"}`
	resp = fx.serve(t, request{method: "POST", path: "/v1/doses", headers: headers, body: []byte(`{"records":[` + rec + `]}`)})
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Body, `"field":"gender","code":"invalid_value","message":"Giới tính (gender): phải là Nam hoặc Nữ"`) ||
		!strings.Contains(resp.Body, `Ngày sinh (dob): phải có dạng NN/TT/NNNN`) {
		t.Errorf("row errors in vi: %s", resp.Body)
	}
}
