package httpapi_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"net/http"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/vaxpass/vaxpass/shared/edge/apigw"
	"github.com/vaxpass/vaxpass/shared/edge/httpapi"
)

// opsKeys accepts one key; fail makes the store fail.
type opsKeys struct {
	hash [32]byte
	fail bool
}

func (k opsKeys) OpsKeyValid(_ context.Context, hash []byte) (string, bool, error) {
	if k.fail {
		return "", false, errors.New("disk on fire")
	}
	return "ops-anna", string(hash) == string(k.hash[:]), nil
}

func TestOpsAuthWrap(t *testing.T) {
	keys := opsKeys{hash: sha256.Sum256([]byte("vxo_good"))}
	var seen string
	h := (&httpapi.OpsAuth{Keys: keys}).Wrap(func(ctx context.Context, _ events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		seen = httpapi.OpsActor(ctx)
		return apigw.JSON(http.StatusOK, map[string]string{"ok": "yes"}), nil
	})
	tests := []struct {
		name    string
		headers map[string]string
		status  int
	}{
		{"no header", nil, 401},
		{"empty bearer", map[string]string{"authorization": "Bearer "}, 401},
		{"wrong scheme", map[string]string{"authorization": "Basic vxo_good"}, 401},
		{"wrong key", map[string]string{"authorization": "Bearer vxo_bad"}, 401},
		{"good key", map[string]string{"authorization": "Bearer vxo_good"}, 200},
		{"header name in another case", map[string]string{"Authorization": "bearer  vxo_good "}, 200},
	}
	for _, tc := range tests {
		seen = ""
		resp, err := h(context.Background(), events.APIGatewayV2HTTPRequest{Headers: tc.headers})
		if err != nil || resp.StatusCode != tc.status {
			t.Errorf("%s: %d %v, want %d", tc.name, resp.StatusCode, err, tc.status)
			continue
		}
		if tc.status == 401 {
			var body apigw.ErrorBody
			if json.Unmarshal([]byte(resp.Body), &body) != nil || body.Error.Code != "unauthorized" || resp.Headers["WWW-Authenticate"] == "" {
				t.Errorf("%s: 401 body %s headers %v", tc.name, resp.Body, resp.Headers)
			}
			if seen != "" {
				t.Errorf("%s: the handler ran without a valid key", tc.name)
			}
		} else if seen != "ops-anna" {
			t.Errorf("%s: actor %q in the handler", tc.name, seen)
		}
	}
	failing := (&httpapi.OpsAuth{Keys: opsKeys{fail: true}}).Wrap(func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		t.Error("handler ran although the key store failed")
		return events.APIGatewayV2HTTPResponse{}, nil
	})
	resp, _ := failing(context.Background(), events.APIGatewayV2HTTPRequest{Headers: map[string]string{"authorization": "Bearer x"}})
	if resp.StatusCode != 500 {
		t.Errorf("key store failure: %d", resp.StatusCode)
	}
}

func TestParseAuditQuery(t *testing.T) {
	q, format, bad := httpapi.ParseAuditQuery(map[string]string{"from": "2025-01-01", "to": "2025-02-01T00:00:00+07:00", "action": "renewal", "limit": "50", "format": "CSV"})
	if bad != nil || format != "csv" || q.Limit != 50 || q.Action != "renewal" || q.From.Format("2006-01-02") != "2025-01-01" || q.To.Hour() != 17 {
		t.Fatalf("ParseAuditQuery = %+v %q %v", q, format, bad)
	}
	for field, params := range map[string]map[string]string{
		"from":   {"from": "01/02/2025"},
		"to":     {"to": "tomorrow"},
		"limit":  {"limit": "0"},
		"format": {"format": "xml"},
		"query":  {"from": "2025-02-01", "to": "2025-01-01"},
	} {
		_, _, bad := httpapi.ParseAuditQuery(params)
		var body apigw.ErrorBody
		if bad == nil || bad.StatusCode != 400 || json.Unmarshal([]byte(bad.Body), &body) != nil || body.Error.Field != field {
			t.Errorf("%v: %+v, want a 400 naming %s", params, bad, field)
		}
	}
}
