package httpapi_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/vaxpass/vaxpass/shared/stage/ingest"
)

// TestMalformedRequests pins, per endpoint, the status, error code and field of each way a
// request can be wrong.
func TestMalformedRequests(t *testing.T) {
	fx := newFixture(t)
	authJSON := map[string]string{"Authorization": "Bearer " + fixtureKey, "Content-Type": "application/json"}
	auth := map[string]string{"Authorization": "Bearer " + fixtureKey}
	jsonOnly := map[string]string{"Content-Type": "application/json"}
	xlsx := map[string]string{"Authorization": "Bearer " + fixtureKey, "Content-Type": xlsxType}
	tooMany := `{"records":[` + strings.Repeat(`{},`, ingest.MaxBatch) + `{}]}`

	tests := []struct {
		name   string
		rq     request
		status int
		code   string
		field  string // "" when the answer must name none
	}{
		// POST /v1/doses
		{"doses: no key", request{method: "POST", path: "/v1/doses", headers: jsonOnly, body: []byte(`{"records":[]}`)}, 401, "unauthorized", ""},
		{"doses: unknown key", request{method: "POST", path: "/v1/doses", headers: map[string]string{"Authorization": "Bearer vxp_nope"}, body: []byte(`{}`)}, 401, "unauthorized", ""},
		{"doses: empty bearer", request{method: "POST", path: "/v1/doses", headers: map[string]string{"Authorization": "Bearer  "}, body: []byte(`{}`)}, 401, "unauthorized", ""},
		{"doses: basic auth", request{method: "POST", path: "/v1/doses", headers: map[string]string{"Authorization": "Basic " + fixtureKey}, body: []byte(`{}`)}, 401, "unauthorized", ""},
		{"doses: empty body", request{method: "POST", path: "/v1/doses", headers: authJSON}, 400, "invalid_json", ""},
		{"doses: not JSON", request{method: "POST", path: "/v1/doses", headers: authJSON, body: []byte(`records=1`)}, 400, "invalid_json", ""},
		{"doses: truncated", request{method: "POST", path: "/v1/doses", headers: authJSON, body: []byte(`{"records":[`)}, 400, "invalid_json", ""},
		{"doses: trailing data", request{method: "POST", path: "/v1/doses", headers: authJSON, body: []byte(`{"records":[]} {}`)}, 400, "invalid_json", ""},
		{"doses: invalid UTF-8", request{method: "POST", path: "/v1/doses", headers: authJSON, body: []byte("{\"records\":[{\"full_name\":\"\xff\"}]}")}, 400, "invalid_json", ""},
		{"doses: records missing", request{method: "POST", path: "/v1/doses", headers: authJSON, body: []byte(`{}`)}, 400, "required", "records"},
		{"doses: records null", request{method: "POST", path: "/v1/doses", headers: authJSON, body: []byte(`{"records":null}`)}, 400, "required", "records"},
		{"doses: records empty", request{method: "POST", path: "/v1/doses", headers: authJSON, body: []byte(`{"records":[]}`)}, 400, "required", "records"},
		{"doses: records an object", request{method: "POST", path: "/v1/doses", headers: authJSON, body: []byte(`{"records":{}}`)}, 400, "invalid_json", "records"},
		{"doses: body an array", request{method: "POST", path: "/v1/doses", headers: authJSON, body: []byte(`[]`)}, 400, "invalid_json", ""},
		{"doses: unknown top-level key", request{method: "POST", path: "/v1/doses", headers: authJSON, body: []byte(`{"records":[{}],"batch":1}`)}, 400, "invalid_json", "batch"},
		{"doses: key twice", request{method: "POST", path: "/v1/doses", headers: authJSON, body: []byte(`{"records":[],"Records":[{}]}`)}, 400, "invalid_json", "Records"},
		{"doses: key twice inside a record", request{method: "POST", path: "/v1/doses", headers: authJSON, body: []byte(`{"records":[{"dob":"1985","DOB":"1986"}]}`)}, 400, "invalid_json", "records[0].DOB"},
		{"doses: too many records", request{method: "POST", path: "/v1/doses", headers: authJSON, body: []byte(tooMany)}, 400, "out_of_range", "records"},
		{"doses: flagged base64 that is not", request{method: "POST", path: "/v1/doses", headers: auth, body: []byte(`{"records":[]}`), base64: true}, 400, "invalid_json", ""},
		{"doses: over 4 MiB", request{method: "POST", path: "/v1/doses", headers: authJSON, body: []byte(`{"records":["` + strings.Repeat("x", 4<<20) + `"]}`)}, 413, "payload_too_large", ""},

		// POST /v1/imports
		{"imports: no key", request{method: "POST", path: "/v1/imports", headers: map[string]string{"Content-Type": xlsxType}, body: []byte("PK"), base64: true}, 401, "unauthorized", ""},
		{"imports: JSON content type", request{method: "POST", path: "/v1/imports", headers: authJSON, body: []byte(`{"records":[]}`)}, 415, "unsupported_media_type", "content-type"},
		{"imports: no content type", request{method: "POST", path: "/v1/imports", headers: auth, body: []byte(base64.StdEncoding.EncodeToString([]byte("PK"))), base64: true}, 415, "unsupported_media_type", "content-type"},
		{"imports: not a zip", request{method: "POST", path: "/v1/imports", headers: xlsx, body: []byte(base64.StdEncoding.EncodeToString([]byte("hello, not a spreadsheet"))), base64: true}, 400, "invalid_file", "body"},
		{"imports: empty body", request{method: "POST", path: "/v1/imports", headers: xlsx}, 400, "invalid_file", "body"},
		{"imports: flagged base64 that is not", request{method: "POST", path: "/v1/imports", headers: xlsx, body: []byte("%%%"), base64: true}, 400, "invalid_body", ""},
		{"imports: over 4 MiB", request{method: "POST", path: "/v1/imports", headers: xlsx, body: []byte(base64.StdEncoding.EncodeToString(make([]byte, 4<<20+3))), base64: true}, 413, "payload_too_large", ""},

		// GET /v1/doses/{source_id}
		{"dose: no key", request{method: "GET", path: "/v1/doses/S-1"}, 401, "unauthorized", ""},
		{"dose: source_id too long", request{method: "GET", path: "/v1/doses/" + strings.Repeat("x", 65), headers: auth}, 400, "invalid_format", "source_id"},
		{"dose: unknown", request{method: "GET", path: "/v1/doses/never-sent", headers: auth}, 404, "not_found", ""},

		// GET /v1/worklist
		{"worklist: no key", request{method: "GET", path: "/v1/worklist?status=MISMATCH"}, 401, "unauthorized", ""},
		{"worklist: no status", request{method: "GET", path: "/v1/worklist", headers: auth}, 400, "required", "status"},
		{"worklist: unknown status", request{method: "GET", path: "/v1/worklist?status=BROKEN", headers: auth}, 400, "invalid_value", "status"},
		{"worklist: unknown format", request{method: "GET", path: "/v1/worklist?status=MISMATCH&format=pdf", headers: auth}, 400, "invalid_value", "format"},

		// POST /v1/signatures
		{"signatures: no key", request{method: "POST", path: "/v1/signatures"}, 401, "unauthorized", ""},
		{"signatures: unknown key", request{method: "POST", path: "/v1/signatures", headers: map[string]string{"Authorization": "Bearer x"}}, 401, "unauthorized", ""},

		// POST /v1/passports/lookup
		{"lookup: empty body", request{method: "POST", path: "/v1/passports/lookup", headers: jsonOnly}, 400, "invalid_json", ""},
		{"lookup: id_number missing", request{method: "POST", path: "/v1/passports/lookup", headers: jsonOnly, body: []byte(`{"full_name":"A","dob":"1985"}`)}, 400, "required", "id_number"},
		{"lookup: full_name blank", request{method: "POST", path: "/v1/passports/lookup", headers: jsonOnly, body: []byte(`{"id_number":"001085012345","full_name":"  ","dob":"1985"}`)}, 400, "required", "full_name"},
		{"lookup: dob missing", request{method: "POST", path: "/v1/passports/lookup", headers: jsonOnly, body: []byte(`{"id_number":"001085012345","full_name":"A"}`)}, 400, "required", "dob"},
		{"lookup: dob month first", request{method: "POST", path: "/v1/passports/lookup", headers: jsonOnly, body: []byte(`{"id_number":"001085012345","full_name":"A","dob":"03/31/1985"}`)}, 400, "invalid_format", "dob"},
		{"lookup: dob a number", request{method: "POST", path: "/v1/passports/lookup", headers: jsonOnly, body: []byte(`{"id_number":"001085012345","full_name":"A","dob":1985}`)}, 400, "invalid_json", "dob"},
		{"lookup: unknown key", request{method: "POST", path: "/v1/passports/lookup", headers: jsonOnly, body: []byte(`{"id_number":"1","full_name":"A","dob":"1985","phone":"1"}`)}, 400, "invalid_json", "phone"},
		{"lookup: over 4 KiB", request{method: "POST", path: "/v1/passports/lookup", headers: jsonOnly, body: []byte(`{"full_name":"` + strings.Repeat("a", 4<<10) + `"}`)}, 413, "payload_too_large", ""},
		{"lookup: nobody", request{method: "POST", path: "/v1/passports/lookup", headers: jsonOnly, body: []byte(`{"id_number":"001085012345","full_name":"A","dob":"1985"}`)}, 404, "not_found", ""},

		// GET /v1/passports/{uvci}/qr.png
		{"qr: not base64url", request{method: "GET", path: "/v1/passports/***/qr.png"}, 400, "invalid_format", "uvci"},
		{"qr: padded base64", request{method: "GET", path: "/v1/passports/QQ==/qr.png"}, 400, "invalid_format", "uvci"},
		{"qr: over 80 bytes", request{method: "GET", path: "/v1/passports/" + base64.RawURLEncoding.EncodeToString(make([]byte, 81)) + "/qr.png"}, 400, "invalid_format", "uvci"},
		{"qr: unknown UVCI", request{method: "GET", path: "/v1/passports/" + base64.RawURLEncoding.EncodeToString([]byte("URN:UVCI:01:VN:AAAAAAAAAAAAAAAAAAAAAAAAAA#A")) + "/qr.png"}, 404, "not_found", ""},

		// POST /v1/verify
		{"verify: empty body", request{method: "POST", path: "/v1/verify", headers: jsonOnly}, 400, "invalid_json", ""},
		{"verify: hc1 missing", request{method: "POST", path: "/v1/verify", headers: jsonOnly, body: []byte(`{}`)}, 400, "required", "hc1"},
		{"verify: hc1 blank", request{method: "POST", path: "/v1/verify", headers: jsonOnly, body: []byte(`{"hc1":" \n"}`)}, 400, "required", "hc1"},
		{"verify: hc1 a number", request{method: "POST", path: "/v1/verify", headers: jsonOnly, body: []byte(`{"hc1":5}`)}, 400, "invalid_json", "hc1"},
		{"verify: unknown key", request{method: "POST", path: "/v1/verify", headers: jsonOnly, body: []byte(`{"hc1":"HC1:x","qr":"y"}`)}, 400, "invalid_json", "qr"},
		{"verify: over 16 KiB", request{method: "POST", path: "/v1/verify", headers: jsonOnly, body: []byte(`{"hc1":"HC1:` + strings.Repeat("A", 16<<10) + `"}`)}, 413, "payload_too_large", ""},

		// Routing
		{"unknown path", request{method: "GET", path: "/v1/nothing-here"}, 404, "not_found", ""},
		{"wrong method", request{method: "DELETE", path: "/v1/doses"}, 405, "method_not_allowed", ""},
		{"wrong method on trust list", request{method: "POST", path: "/v1/trustlist", headers: jsonOnly, body: []byte(`{}`)}, 405, "method_not_allowed", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := fx.serve(t, tc.rq)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %.300s", resp.StatusCode, tc.status, resp.Body)
			}
			e, err := contractError(resp)
			if err != nil {
				t.Fatal(err)
			}
			if e.Code != tc.code || e.Field != tc.field {
				t.Errorf("code %q field %q, want code %q field %q (message %q)", e.Code, e.Field, tc.code, tc.field, e.Message)
			}
			if tc.status == http.StatusMethodNotAllowed && resp.Headers["Allow"] == "" {
				t.Errorf("405 without an Allow header")
			}
		})
	}
}

// TestMalformedRecords pins how one bad record of a batch is reported: rejected on its
// own in the 200 answer, naming the field, while the good record beside it is accepted.
func TestMalformedRecords(t *testing.T) {
	fx := newFixture(t)
	tests := []struct {
		name   string
		record string
		field  string
		code   string
	}{
		{"not an object", `"S-x"`, "record", "invalid_type"},
		{"array", `[1]`, "record", "invalid_type"},
		{"null", `null`, "source_id", "required"},
		{"dose_number a string", `{"source_id":"B-1","dose_number":"1"}`, "dose_number", "invalid_type"},
		{"dose_number a fraction", `{"source_id":"B-2","dose_number":1.5}`, "dose_number", "invalid_type"},
		{"full_name a number", `{"source_id":"B-3","full_name":5}`, "full_name", "invalid_type"},
		{"unknown field", `{"source_id":"B-4","vaccine_name":"PFIZER"}`, "vaccine_name", "unknown_field"},
		{"source_id missing", strings.Replace(goodRecord, `"source_id":"S-1",`, ``, 1), "source_id", "required"},
		{"source_id too long", strings.Replace(goodRecord, `"S-1"`, `"`+strings.Repeat("s", 65)+`"`, 1), "source_id", "too_long"},
		{"full_name with a control character", strings.Replace(goodRecord, `"Nguyễn Văn An"`, `"Nguyễn\u0007An"`, 1), "full_name", "invalid_format"},
		{"dob impossible", strings.Replace(goodRecord, `"1985-03-12"`, `"1985-02-30"`, 1), "dob", "invalid_format"},
		{"dob in the future", strings.Replace(goodRecord, `"1985-03-12"`, `"2023"`, 1), "dob", "out_of_range"},
		{"gender unknown", strings.Replace(goodRecord, `"male"`, `"man"`, 1), "gender", "invalid_value"},
		{"nationality alpha-3", strings.Replace(goodRecord, `"gender":"male"`, `"gender":"male","nationality":"VNM"`, 1), "nationality", "too_long"},
		{"vaccine unknown", strings.Replace(goodRecord, `"PFIZER"`, `"NOVAVAX"`, 1), "vaccine", "invalid_value"},
		{"dose_number zero", strings.Replace(goodRecord, `"dose_number":1`, `"dose_number":0`, 1), "dose_number", "out_of_range"},
		{"vaccinated before the programme", strings.Replace(goodRecord, `"2021-08-01"`, `"2020-11-30"`, 1), "vaccinated_on", "out_of_range"},
		{"vaccinated in the future", strings.Replace(goodRecord, `"2021-08-01"`, `"2022-07-16"`, 1), "vaccinated_on", "out_of_range"},
		{"vaccinated_on a partial date", strings.Replace(goodRecord, `"2021-08-01"`, `"2021-08"`, 1), "vaccinated_on", "invalid_format"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			good := strings.Replace(goodRecord, `"S-1"`, `"G-`+string(rune('a'+i))+`"`, 1)
			body := `{"records":[` + tc.record + `,` + good + `]}`
			resp := fx.serve(t, request{method: "POST", path: "/v1/doses", body: []byte(body),
				headers: map[string]string{"Authorization": "Bearer " + fixtureKey, "Content-Type": "application/json"}})
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, resp.Body)
			}
			var rep ingest.Report
			if err := json.Unmarshal([]byte(resp.Body), &rep); err != nil {
				t.Fatal(err)
			}
			if rep.Accepted != 1 || rep.Rejected != 1 || len(rep.Results) != 2 {
				t.Fatalf("want one accepted and one rejected, got %s", resp.Body)
			}
			bad, ok := rep.Results[0], rep.Results[1]
			if bad.Status != "rejected" || ok.Status != "accepted" {
				t.Fatalf("statuses %q, %q; want rejected, accepted", bad.Status, ok.Status)
			}
			found := false
			for _, e := range bad.Errors {
				if e.Message == "" {
					t.Errorf("error on %s has no message", e.Field)
				}
				found = found || e.Field == tc.field && e.Code == tc.code
			}
			if !found {
				t.Errorf("errors %+v lack field %q code %q", bad.Errors, tc.field, tc.code)
			}
		})
	}
}
