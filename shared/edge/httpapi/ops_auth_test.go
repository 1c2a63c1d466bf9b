package httpapi_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"sync"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/vaxpass/vaxpass/shared/domain/access"
	"github.com/vaxpass/vaxpass/shared/edge/apigw"
	"github.com/vaxpass/vaxpass/shared/edge/httpapi"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// memKeys is an access key store in memory; fail makes it fail.
type memKeys struct {
	keys map[string]access.Key // by hex SHA-256
	fail bool
}

func newMemKeys() *memKeys { return &memKeys{keys: map[string]access.Key{}} }

// add stores apiKey with role and subject; revoked keys have RevokedAt set.
func (m *memKeys) add(apiKey string, role access.Role, subject string, revoked bool) *memKeys {
	h := access.Hash(apiKey)
	k := access.Key{ID: access.IDOf(h), Role: role, Subject: subject, Hash: h, CreatedAt: today}
	if revoked {
		k.RevokedAt = today
	}
	m.keys[hex.EncodeToString(h)] = k
	return m
}

func (m *memKeys) KeyByHash(_ context.Context, hash []byte) (access.Key, error) {
	if m.fail {
		return access.Key{}, errors.New("disk on fire")
	}
	k, ok := m.keys[hex.EncodeToString(hash)]
	if !ok {
		return k, vaxpass.ErrNotFound
	}
	return k, nil
}

// events records security events.
type eventLog struct {
	mu    sync.Mutex
	kinds []string
}

func (e *eventLog) SecurityEvent(_ context.Context, kind, route string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.kinds = append(e.kinds, kind+" "+route)
}

// opsKeyStore holds one ops key (vxo_good, actor ops-anna), a revoked one and a facility's.
func opsKeyStore() *memKeys {
	return newMemKeys().add("vxo_good", access.Ops, "ops-anna", false).
		add("vxo_revoked", access.Ops, "ops-bob", true).
		add("vxp_facilitykey", access.Facility, fixtureFacility, false)
}

func TestOpsAuthWrap(t *testing.T) {
	ev := &eventLog{}
	var seen string
	h := (&httpapi.OpsAuth{Auth: &httpapi.Auth{Keys: opsKeyStore(), Events: ev}}).Wrap(func(ctx context.Context, _ events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		seen = httpapi.OpsActor(ctx)
		return apigw.JSON(http.StatusOK, map[string]string{"ok": "yes"}), nil
	})
	tests := []struct {
		name    string
		headers map[string]string
		status  int
		event   string
	}{
		{"no header", nil, 401, "auth_failed"},
		{"empty bearer", map[string]string{"authorization": "Bearer "}, 401, "auth_failed"},
		{"wrong scheme", map[string]string{"authorization": "Basic vxo_good"}, 401, "auth_failed"},
		{"wrong key", map[string]string{"authorization": "Bearer vxo_bad"}, 401, "auth_failed"},
		{"revoked key", map[string]string{"authorization": "Bearer vxo_revoked"}, 401, "auth_revoked"},
		{"facility key", map[string]string{"authorization": "Bearer vxp_facilitykey"}, 403, "forbidden"},
		{"good key", map[string]string{"authorization": "Bearer vxo_good"}, 200, ""},
		{"header name in another case", map[string]string{"Authorization": "bearer  vxo_good "}, 200, ""},
	}
	for _, tc := range tests {
		seen = ""
		ev.kinds = nil
		resp, err := h(context.Background(), events.APIGatewayV2HTTPRequest{RouteKey: "GET /v1/stats", Headers: tc.headers})
		if err != nil || resp.StatusCode != tc.status {
			t.Errorf("%s: %d %v, want %d", tc.name, resp.StatusCode, err, tc.status)
			continue
		}
		var wantEvents []string
		if tc.event != "" {
			wantEvents = []string{tc.event + " GET /v1/stats"}
		}
		if !slices.Equal(ev.kinds, wantEvents) {
			t.Errorf("%s: events %v, want %v", tc.name, ev.kinds, wantEvents)
		}
		switch tc.status {
		case 401, 403:
			var body apigw.ErrorBody
			code := map[int]string{401: "unauthorized", 403: "forbidden"}[tc.status]
			if json.Unmarshal([]byte(resp.Body), &body) != nil || body.Error.Code != code || (tc.status == 401) != (resp.Headers["WWW-Authenticate"] != "") {
				t.Errorf("%s: %d body %s headers %v", tc.name, tc.status, resp.Body, resp.Headers)
			}
			if seen != "" {
				t.Errorf("%s: the handler ran without a valid key", tc.name)
			}
		default:
			if seen != "ops-anna" {
				t.Errorf("%s: actor %q in the handler", tc.name, seen)
			}
		}
	}
	failing := (&httpapi.OpsAuth{Auth: &httpapi.Auth{Keys: &memKeys{fail: true}}}).Wrap(func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
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
