package httpapi_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// goodRecord is a valid dose record (its ID is not in any registry: it matches NOT_FOUND).
const goodRecord = `{"source_id":"S-1","full_name":"Nguyễn Văn An","dob":"1985-03-12","gender":"male","id_number":"001085012345","vaccine":"PFIZER","dose_number":1,"vaccinated_on":"2021-08-01"}`

// authModes are the Authorization headers the fuzz target picks from.
var authModes = []string{"", "Bearer " + fixtureKey, "Bearer vxp_unknown", "Bearer ", "Basic " + fixtureKey, "bearer " + fixtureKey}

// Body encodings of the fuzz target: as text, base64-encoded and flagged (a binary body
// through API Gateway), or flagged base64 without being it.
const (
	bodyText = iota
	bodyBase64
	bodyFlaggedRaw
	bodyModes
)

// FuzzAPI sends arbitrary requests through the real router: whatever the method, path,
// headers and body, the answer is never a 5xx (and never a panic), and every 4xx is the
// contract's JSON error with a code and a message.
func FuzzAPI(f *testing.F) {
	type seed struct {
		method, path, contentType string
		auth                      uint8
		body                      string
		mode                      uint8
	}
	seeds := []seed{
		{"POST", "/v1/doses", "application/json", 1, `{"records":[` + goodRecord + `]}`, bodyText},
		{"POST", "/v1/doses", "application/json", 1, `{"records":[` + goodRecord + `,` + goodRecord + `]}`, bodyText},
		{"POST", "/v1/doses", "application/json", 1, `{"records":[{"source_id":"S-2","dose_number":"1"},{"source_id":7},[],null,"x",{"SOURCE_ID":"a","source_id":"b"}]}`, bodyText},
		{"POST", "/v1/doses", "application/json", 1, `{"records":[{"source_id":"S-3","full_name":"\u0000","dob":"1985-02-30","gender":"nam","nationality":"vnm","vaccine":"NOVAVAX","dose_number":0,"vaccinated_on":"2030-01-01","extra":1}]}`, bodyText},
		{"POST", "/v1/doses", "text/plain", 1, `{"records":[` + goodRecord + `]}`, bodyBase64},
		{"POST", "/v1/doses", "", 1, "{\"records\":[{\"source_id\":\"\xff\xfe\"}]}", bodyBase64},
		{"POST", "/v1/doses", "application/json", 1, `{"records":[]} trailing`, bodyText},
		{"POST", "/v1/doses", "application/json", 1, `{"records":1e999}`, bodyText},
		{"POST", "/v1/doses", "application/json", 1, `[[[[[[[[[[[[[[[[[[[[`, bodyText},
		{"POST", "/v1/doses", "application/json", 1, `!!!not base64`, bodyFlaggedRaw},
		{"POST", "/v1/doses", "application/json", 0, `{"records":[` + goodRecord + `]}`, bodyText},
		{"POST", "/v1/doses", "application/json", 2, `{}`, bodyText},
		{"POST", "/v1/doses", "application/json", 5, `{}`, bodyText},
		{"POST", "/v1/imports", xlsxType, 1, "PK\x03\x04 not really a zip", bodyBase64},
		{"POST", "/v1/imports", "application/json", 1, `{}`, bodyText},
		{"POST", "/v1/imports", xlsxType + "; charset=binary", 1, "", bodyBase64},
		{"GET", "/v1/doses/S-1", "", 1, "", bodyText},
		{"GET", "/v1/doses/" + strings.Repeat("x", 65), "", 1, "", bodyText},
		{"GET", "/v1/doses/a b\x00c", "", 1, "", bodyText},
		{"GET", "/v1/worklist?status=not_found&format=csv", "", 1, "", bodyText},
		{"GET", "/v1/worklist?status=PENDING&format=xlsx&after=S", "", 1, "", bodyText},
		{"GET", "/v1/worklist?status=PENDING&format=pdf", "", 1, "", bodyText},
		{"GET", "/v1/worklist?status=%ff&status=x", "", 1, "", bodyText},
		{"POST", "/v1/signatures", "", 1, "", bodyText},
		{"POST", "/v1/passports/lookup", "application/json", 0, `{"id_number":"001085012345","full_name":"Nguyen Van An","dob":"1985-03-12"}`, bodyText},
		{"POST", "/v1/passports/lookup", "application/json", 0, `{"id_number":"","full_name":"x","dob":"85"}`, bodyText},
		{"POST", "/v1/passports/lookup", "application/json", 0, `{"id_number":"x","full_name":"x","dob":"1985","more":true}`, bodyText},
		{"GET", "/v1/passports/VVJOOlVWQ0k6MDE6Vk46QUJDIzE/qr.png", "", 0, "", bodyText},
		{"GET", "/v1/passports/***/qr.png", "", 0, "", bodyText},
		{"GET", "/v1/passports/" + strings.Repeat("QUFB", 40) + "/qr.png", "", 0, "", bodyText},
		{"POST", "/v1/verify", "application/json", 0, `{"hc1":"HC1:6BFOXN%TS3DH0YOJ58S S-W5HDC *M0II5XHC9B5G2+$N IOP-IA%NFQGRJPC%OQHIZC4.OI1RM8ZA.A5:S9MKN4NN3F85QNCY0O%0VZ001HOC9JU0D0HT0HB2PL/IB*09B9LW4T*8+DCMH0LDK2%K:XFE70*LP$V25$0Q:J:4MO1P0%0L0HD+9E/HY+4J6TH48S%4K.GJ2PT3QY:GQ3TE2I+-CPHN6D7LLK*Y3VYR:MT*W7HD5T8HHUI.CWNLO"}`, bodyText},
		{"POST", "/v1/verify", "application/json", 0, `{"hc1":"   "}`, bodyText},
		{"POST", "/v1/verify", "application/json", 0, `{"hc1":5}`, bodyText},
		{"GET", "/v1/trustlist", "", 0, "", bodyText},
		{"DELETE", "/v1/doses", "", 1, "", bodyText},
		{"get", "/v1/trustlist", "", 0, "", bodyText},
		{"PATCH", "/v1/doses/S-1", "application/json", 1, `{"dob":"1985"}`, bodyText},
		{"GET", "/v1//doses", "", 1, "", bodyText},
		{"GET", "", "", 0, "", bodyText},
		{"GET", "v1/trustlist", "", 0, "", bodyText},
	}
	for _, s := range seeds {
		f.Add(s.method, s.path, s.contentType, s.auth, []byte(s.body), s.mode)
	}
	fx := newFixture(f)
	f.Fuzz(func(t *testing.T, method, path, contentType string, auth uint8, body []byte, mode uint8) {
		rq := request{method: method, path: path, headers: map[string]string{}}
		if a := authModes[int(auth)%len(authModes)]; a != "" {
			rq.headers["authorization"] = a
		}
		if contentType != "" {
			rq.headers["content-type"] = contentType
		}
		switch mode % bodyModes {
		case bodyText:
			rq.body = body
		case bodyBase64:
			rq.body, rq.base64 = []byte(base64.StdEncoding.EncodeToString(body)), true
		case bodyFlaggedRaw:
			rq.body, rq.base64 = body, true
		}
		resp := fx.serve(t, rq)
		switch {
		case resp.StatusCode >= 500:
			t.Fatalf("%s %q: %d %s", method, path, resp.StatusCode, resp.Body)
		case resp.StatusCode < 200 || resp.StatusCode >= 300 && resp.StatusCode < 400:
			t.Fatalf("%s %q: unexpected status %d", method, path, resp.StatusCode)
		case resp.StatusCode >= 400:
			if _, err := contractError(resp); err != nil {
				t.Fatalf("%s %q: %d: %v: %s", method, path, resp.StatusCode, err, resp.Body)
			}
		case strings.HasPrefix(resp.Headers["Content-Type"], "application/json"):
			if !json.Valid([]byte(resp.Body)) {
				t.Fatalf("%s %q: 200 JSON answer is not JSON: %.200s", method, path, resp.Body)
			}
		default:
			if !resp.IsBase64Encoded && resp.Headers["Content-Type"] != "text/csv; charset=utf-8" {
				t.Fatalf("%s %q: binary answer %q is not base64-encoded", method, path, resp.Headers["Content-Type"])
			}
		}
		if resp.StatusCode == http.StatusMethodNotAllowed && resp.Headers["Allow"] == "" {
			t.Fatalf("%s %q: 405 without Allow", method, path)
		}
	})
}
