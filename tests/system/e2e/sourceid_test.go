package e2e

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/vaxpass/vaxpass/shared/testkit/server"
)

// TestSourceIDRoundTrip: whatever source_id an upload accepts can be read back with
// GET /v1/doses/{source_id} (the path variable percent-encoded, as any client sends it);
// a source_id that cannot travel in that path must be rejected at upload, naming the field.
// API Gateway (and the local bridge, which copies it) decodes the path before routing, a
// "%" twice, and cuts it at a decoded "?", so "/", "?" and "%" can never reach the handler.
func TestSourceIDRoundTrip(t *testing.T) {
	t.Parallel()
	data := server.ScratchDir(t)
	srv := server.Spawn(t, data, "--demo")
	key := srv.DemoKey(t)
	c := newClient(t, srv, key)

	for i, sid := range []string{
		"F001-0001",      // plain
		"F001 0002",      // a space
		"F001#0003",      // "#"
		"F001+0004",      // "+"
		"Nguyễn-0005",    // non-ASCII
		"F001/2021/0006", // "/": IDs like HN/2021/000123 are common
		"F001?x=0007",    // "?"
		"F001%0008",      // "%"
		"F001%2F0009",    // "%" that decodes to "/"
	} {
		t.Run(sid, func(t *testing.T) {
			rec := map[string]any{
				"source_id": sid, "full_name": "Lê Văn Thử", "dob": "1990", "gender": "male", "id_number": "",
				"vaccine": "PFIZER", "dose_number": 1, "vaccinated_on": "2021-10-0" + fmt.Sprint(1+i%9),
			}
			raw, _ := json.Marshal(rec)
			rep := c.upload([]json.RawMessage{raw})
			res := rep.Results[0]
			switch res.Status {
			case "accepted":
				status, body, _ := c.do("GET", "/v1/doses/"+url.PathEscape(sid), nil, "")
				var v doseView
				if status != http.StatusOK || json.Unmarshal(body, &v) != nil || v.SourceID != sid {
					t.Errorf("upload accepted source_id %q, but GET /v1/doses/%s answers %d %.200s", sid, url.PathEscape(sid), status, body)
				}
			case "rejected":
				if len(res.Errors) != 1 || res.Errors[0].Field != "source_id" || res.Errors[0].Code != "invalid_format" {
					t.Errorf("source_id %q rejected with %+v, want one source_id invalid_format error", sid, res.Errors)
				}
			default:
				t.Errorf("source_id %q: status %q", sid, res.Status)
			}
		})
	}

	// A path that decodes to a control character is the caller's mistake, answered without
	// the server's internal error text: a facility's dose path, and the public QR image
	// path (its UVCI travels base64url-encoded).
	public := newClient(t, srv, "")
	for _, req := range []struct {
		c    *client
		path string
	}{
		{c, "/v1/doses/F001%2500"},
		{c, "/v1/doses/%2501x"},
		{c, "/v1/doses/a%250Ab"},
		{public, "/v1/passports/" + base64.RawURLEncoding.EncodeToString([]byte("URN:UVCI:\x00")) + "/qr.png"},
		{public, "/v1/passports/AA/qr.png"},
	} {
		path := req.path
		status, body, _ := req.c.do("GET", path, nil, "")
		var e errorBody
		if status < 400 || status >= 500 || json.Unmarshal(body, &e) != nil || e.Error.Code == "" {
			t.Errorf("GET %s: %d %.200s; want a 4xx JSON error", path, status, body)
		}
		for _, internal := range []string{"embedded", "invalid input", "NUL"} {
			if strings.Contains(e.Error.Message, internal) {
				t.Errorf("GET %s: the error message leaks internal text: %q", path, e.Error.Message)
				break
			}
		}
	}
}
