package apigw

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
)

func TestRecover(t *testing.T) {
	const name, id = "Nguyễn Văn An", "001090012345"
	cases := []struct {
		name       string
		h          Handler
		logHas     []string
		wantStatus int
	}{
		{
			name: "panic with personal data",
			h: func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
				panic(fmt.Sprintf("cannot sign for %s (%s)", name, id))
			},
			logHas:     []string{"handler panicked", `"panic_type":"string"`, "POST /v1/passports/lookup", "req-1", "recover_test.go"},
			wantStatus: 500,
		},
		{
			name: "panic with an error value",
			h: func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
				panic(fmt.Errorf("person %s: %w", id, errors.New("bad")))
			},
			logHas:     []string{`"panic_type":"*fmt.wrapError"`},
			wantStatus: 500,
		},
		{
			name: "runtime error",
			h: func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
				var m map[string]int
				m[id] = 1
				return JSON(200, m), nil
			},
			logHas:     []string{`"runtime_error":"assignment to entry in nil map"`},
			wantStatus: 500,
		},
		{
			name: "returned error",
			h: func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
				return events.APIGatewayV2HTTPResponse{}, errors.New("store certificate: conditional check failed")
			},
			logHas:     []string{"handler failed", "conditional check failed"},
			wantStatus: 500,
		},
		{
			name: "success passes through",
			h: func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
				return JSON(200, map[string]string{"full_name": name}), nil
			},
			wantStatus: 200,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var logs bytes.Buffer
			h := Recover(slog.New(slog.NewJSONHandler(&logs, nil)), c.h)
			req := events.APIGatewayV2HTTPRequest{RouteKey: "POST /v1/passports/lookup"}
			req.RequestContext.RequestID = "req-1"
			resp, err := h(context.Background(), req)
			if err != nil {
				t.Fatalf("Recover returned an error: %v", err)
			}
			if resp.StatusCode != c.wantStatus {
				t.Fatalf("status %d", resp.StatusCode)
			}
			if c.wantStatus == 200 {
				if logs.Len() != 0 {
					t.Errorf("logged on success: %s", logs.String())
				}
				return
			}
			var body ErrorBody
			if err := json.Unmarshal([]byte(resp.Body), &body); err != nil || body.Error.Code != CodeInternal {
				t.Errorf("body %s", resp.Body)
			}
			for _, leak := range []string{id, "Nguy", "cannot sign", "conditional"} {
				if strings.Contains(resp.Body, leak) {
					t.Errorf("response leaks %q: %s", leak, resp.Body)
				}
			}
			for _, leak := range []string{id, "Nguy"} {
				if strings.Contains(logs.String(), leak) {
					t.Errorf("log holds personal data %q: %s", leak, logs.String())
				}
			}
			for _, want := range c.logHas {
				if !strings.Contains(logs.String(), want) {
					t.Errorf("log lacks %q: %s", want, logs.String())
				}
			}
		})
	}
}

func TestRecoverNilLogger(t *testing.T) {
	h := Recover(nil, func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		panic("boom")
	})
	resp, err := h(context.Background(), events.APIGatewayV2HTTPRequest{})
	if err != nil || resp.StatusCode != 500 {
		t.Errorf("%d %v", resp.StatusCode, err)
	}
}
