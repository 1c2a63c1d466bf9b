package routes_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/vaxpass/vaxpass/shared/edge/apigw"
	"github.com/vaxpass/vaxpass/shared/wire/local"
	"github.com/vaxpass/vaxpass/shared/wire/routes"
)

// publicRoutes take no key: the only /v1 routes the guard lets through without an
// Authorization header.
var publicRoutes = map[string]bool{
	"POST /v1/passports/lookup": true, "GET /v1/passports/{uvci}/qr.png": true, "GET /v1/passports/{uvci}/passport.pdf": true, "POST /v1/verify": true,
	"GET /v1/trustlist": true, "GET /v1/revocations": true,
	"POST /v1/reports": true, "GET /v1/reports/{reference}": true,
}

// TestLimitsCoverServedRoutes: the limits table names only routes the server serves (a
// typo would leave a route on the default), and every keyed /v1 route is marked keyed, so
// that a request without a key is refused before its body is read.
func TestLimitsCoverServedRoutes(t *testing.T) {
	l, err := local.OpenLocal(local.Options{DataDir: t.TempDir(), FacilitySignEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	served := map[string]bool{}
	for _, k := range l.Router.Routes() {
		served[k] = true
	}
	lim := routes.Limits()
	for k := range lim.Routes {
		if !served[k] {
			t.Errorf("the limits name %s, which the server does not serve", k)
		}
	}
	g := l.Router.Guard()
	if g == nil {
		t.Fatal("the server's router has no guard")
	}
	for k := range served {
		_, path, _ := strings.Cut(k, " ")
		if !strings.HasPrefix(path, "/v1/") {
			continue
		}
		if keyed := g.Limit(k).Keyed; keyed == publicRoutes[k] {
			t.Errorf("%s: keyed %v in the limits", k, keyed)
		}
	}
}

// TestLambdaRouterChecksBodyFirst: on AWS the same table is checked on the event, before
// the handler decodes anything.
func TestLambdaRouterChecksBodyFirst(t *testing.T) {
	called := 0
	r, err := routes.Router(func(r *apigw.Router) error {
		r.Handle("POST /v1/verify", func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
			called++
			return apigw.JSON(200, map[string]bool{"valid": false}), nil
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for n, want := range map[int]int{16 << 10: 200, 16<<10 + 1: 413, 9_900_000: 413} {
		resp, err := r.Serve(context.Background(), events.APIGatewayV2HTTPRequest{RouteKey: "POST /v1/verify", RawPath: "/v1/verify", Body: strings.Repeat("A", n)})
		if err != nil || resp.StatusCode != want {
			t.Errorf("%d bytes: %d %s (%v), want %d", n, resp.StatusCode, resp.Body, err, want)
		}
		if want == 413 && !strings.Contains(resp.Body, `"body_too_large"`) {
			t.Errorf("%d bytes: %s", n, resp.Body)
		}
	}
	if called != 1 {
		t.Errorf("handler called %d times, want once (for the body within the limit)", called)
	}
}
