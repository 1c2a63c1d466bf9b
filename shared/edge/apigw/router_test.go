package apigw

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
)

func TestParseRouteKey(t *testing.T) {
	cases := []struct {
		key     string
		wantErr string // substring; "" means valid
	}{
		{"$default", ""},
		{"POST /v1/doses", ""},
		{"GET /v1/doses/{source_id}", ""},
		{"GET /v1/passports/{uvci}/qr.png", ""},
		{"ANY /{proxy+}", ""},
		{"GET /", ""},
		{"GET /v1/", ""}, // a trailing slash is its own route on API Gateway
		{"get /v1/doses", "unknown method"},
		{"FETCH /v1/doses", "unknown method"},
		{"GET v1/doses", "must start with /"},
		{"GET", "want \"METHOD /path\""},
		{"/v1/doses", "want \"METHOD /path\""},
		{"GET /v1/{proxy+}/more", "must be the last segment"},
		{"GET /v1/{}", "bad path variable"},
		{"GET /v1/{a}/{a}", "used twice"},
		{"GET /v1/x{a}", "mixes text and a variable"},
		{"GET /v1//doses", "empty path segment"},
	}
	for _, c := range cases {
		t.Run(c.key, func(t *testing.T) {
			k, err := ParseRouteKey(c.key)
			if c.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if k.String() != c.key {
					t.Errorf("String() = %q", k.String())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.wantErr) || !errors.Is(err, ErrInvalidRouteKey) {
				t.Errorf("error %v, want one containing %q", err, c.wantErr)
			}
		})
	}
}

// tag returns a handler answering with its own name, to see which route won.
func tag(name string) Handler {
	return func(_ context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		return JSON(200, map[string]any{"route": name, "key": req.RouteKey, "params": req.PathParameters}), nil
	}
}

func serve(t *testing.T, r *Router, req events.APIGatewayV2HTTPRequest) (int, map[string]any, events.APIGatewayV2HTTPResponse) {
	t.Helper()
	resp, err := r.Serve(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	if err := jsonUnmarshal(resp.Body, &body); err != nil {
		t.Fatalf("body %q: %v", resp.Body, err)
	}
	return resp.StatusCode, body, resp
}

func defaultEvent(method, path string) events.APIGatewayV2HTTPRequest {
	var req events.APIGatewayV2HTTPRequest
	req.RouteKey = DefaultRouteKey
	req.RawPath = path
	req.RequestContext.HTTP.Method = method
	return req
}

func TestRouterMostSpecificRouteWins(t *testing.T) {
	r := NewRouter()
	r.Handle("GET /v1/passports/{uvci}/qr.png", tag("qr"))
	r.Handle("GET /v1/passports/{uvci}/{file}", tag("file"))
	r.Handle("GET /v1/passports/lookup/{file}", tag("literal"))
	r.Handle("ANY /v1/{proxy+}", tag("greedy"))
	r.Handle("POST /v1/{proxy+}", tag("greedy-post"))
	r.Handle("GET /v1/doses", tag("doses"))

	cases := []struct {
		method, path, route string
		params              map[string]any
	}{
		{"GET", "/v1/passports/URN:UVCI:01:VN:X#Y/qr.png", "qr", map[string]any{"uvci": "URN:UVCI:01:VN:X#Y"}},
		{"GET", "/v1/passports/U1/other.txt", "file", map[string]any{"uvci": "U1", "file": "other.txt"}},
		{"GET", "/v1/passports/lookup/qr.png", "literal", map[string]any{"file": "qr.png"}},
		{"GET", "/v1/doses", "doses", nil},
		{"DELETE", "/v1/doses", "greedy", map[string]any{"proxy": "doses"}},
		{"POST", "/v1/a/b/c", "greedy-post", map[string]any{"proxy": "a/b/c"}},
		{"PUT", "/v1/a/b/c", "greedy", map[string]any{"proxy": "a/b/c"}},
	}
	for _, c := range cases {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			status, body, _ := serve(t, r, defaultEvent(c.method, c.path))
			if status != 200 || body["route"] != c.route {
				t.Fatalf("status %d, route %v; want %s", status, body["route"], c.route)
			}
			var params map[string]any
			if p, ok := body["params"].(map[string]any); ok {
				params = p
			}
			if !reflect.DeepEqual(params, c.params) {
				t.Errorf("params %v, want %v", params, c.params)
			}
			if key, _, ok := r.Route(c.method, c.path); !ok || key != body["key"] {
				t.Errorf("Route() = %q, Serve set %q", key, body["key"])
			}
		})
	}
}

func TestRouterNotFoundAndMethodNotAllowed(t *testing.T) {
	r := NewRouter()
	r.Handle("POST /v1/doses", tag("post"))
	r.Handle("GET /v1/doses/{source_id}", tag("get"))
	r.Handle("PUT /v1/doses/{source_id}", tag("put"))

	status, body, resp := serve(t, r, defaultEvent("PATCH", "/v1/doses/A1"))
	if status != 405 || resp.Headers["Allow"] != "GET, PUT" {
		t.Errorf("status %d Allow %q", status, resp.Headers["Allow"])
	}
	if e := body["error"].(map[string]any); e["code"] != CodeMethodNotAllowed {
		t.Errorf("error %v", e)
	}
	status, body, _ = serve(t, r, defaultEvent("GET", "/v1/unknown"))
	if status != 404 || body["error"].(map[string]any)["code"] != CodeNotFound {
		t.Errorf("status %d body %v", status, body)
	}

	r.Handle("$default", tag("fallback"))
	status, body, _ = serve(t, r, defaultEvent("GET", "/v1/unknown"))
	if status != 200 || body["route"] != "fallback" {
		t.Errorf("with $default: status %d body %v", status, body)
	}
}

// Inside AWS with one route per key, API Gateway has chosen already: the Router dispatches on
// RouteKey alone, and refills PathParameters from RawPath when the template fits.
func TestRouterDispatchesOnRouteKey(t *testing.T) {
	r := NewRouter()
	r.Handle("GET /v1/doses/{source_id}", tag("get"))
	r.Handle("ANY /{proxy+}", tag("any"))

	req := defaultEvent("GET", "/v1/doses/A 1")
	req.RouteKey = "GET /v1/doses/{source_id}"
	req.PathParameters = map[string]string{"source_id": "stale"}
	_, body, _ := serve(t, r, req)
	if body["route"] != "get" || body["params"].(map[string]any)["source_id"] != "A 1" {
		t.Errorf("body %v", body)
	}

	// A custom domain's API mapping prefix: RawPath does not fit, AWS's parameters stand.
	req.RawPath = "/api/v1/doses/A1"
	req.PathParameters = map[string]string{"source_id": "A1"}
	_, body, _ = serve(t, r, req)
	if body["route"] != "get" || body["params"].(map[string]any)["source_id"] != "A1" {
		t.Errorf("body %v", body)
	}

	// The AWS sample (IAM authorizer) arrives on $default and is matched by path.
	ev := loadEvent(t, "aws-lambda-go/apigw-v2-request-iam.json")
	_, body, _ = serve(t, r, ev)
	if body["route"] != "any" || body["key"] != "ANY /{proxy+}" || body["params"].(map[string]any)["proxy"] != "my/path" {
		t.Errorf("sample event: body %v", body)
	}
}

func TestRouterRejectsBadRegistrations(t *testing.T) {
	cases := []struct {
		name  string
		setup func(r *Router)
	}{
		{"duplicate", func(r *Router) { r.Handle("GET /a", tag("1")); r.Handle("GET /a", tag("2")) }},
		{"ambiguous", func(r *Router) { r.Handle("GET /a/{x}", tag("1")); r.Handle("GET /a/{y}", tag("2")) }},
		{"malformed", func(r *Router) { r.Handle("GET a", tag("1")) }},
		{"nil handler", func(r *Router) { r.Handle("GET /a", nil) }},
		{"two defaults", func(r *Router) { r.Handle("$default", tag("1")); r.Handle("$default", tag("2")) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			c.setup(NewRouter())
		})
	}
}

func TestRouterRoutes(t *testing.T) {
	r := NewRouter()
	for _, k := range []string{"POST /v1/doses", "GET /v1/doses/{source_id}", "$default", "GET /v1/passports/{uvci}/qr.png"} {
		r.Handle(k, tag(k))
	}
	want := []string{"$default", "GET /v1/doses/{source_id}", "GET /v1/passports/{uvci}/qr.png", "POST /v1/doses"}
	if got := r.Routes(); !reflect.DeepEqual(got, want) {
		t.Errorf("Routes() = %v", got)
	}
}

func FuzzRouterRoute(f *testing.F) {
	for _, p := range []string{"/", "/v1/doses", "/v1/doses/A 1", "/v1/passports/x/qr.png", "//", "/v1/doses/", "", "v1", "/v1/a/b/c/d"} {
		f.Add("GET", p)
	}
	r := NewRouter()
	r.Handle("GET /v1/doses/{source_id}", tag("get"))
	r.Handle("GET /v1/passports/{uvci}/qr.png", tag("qr"))
	r.Handle("ANY /v1/files/{rest+}", tag("files"))
	r.Handle("POST /v1/doses", tag("post"))
	f.Fuzz(func(t *testing.T, method, path string) {
		key, params, ok := r.Route(method, path)
		if !ok {
			return
		}
		k, err := ParseRouteKey(key)
		if err != nil {
			t.Fatalf("Route returned unparsable key %q", key)
		}
		if k.Method != "ANY" && k.Method != method {
			t.Fatalf("%s %q routed to %s", method, path, key)
		}
		for name, v := range params {
			if v == "" {
				t.Fatalf("empty parameter %s", name)
			}
			if name != "rest" && strings.Contains(v, "/") {
				t.Fatalf("parameter %s=%q spans segments", name, v)
			}
		}
	})
}
