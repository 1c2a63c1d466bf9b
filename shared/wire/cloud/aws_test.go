package cloud

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/vaxpass/vaxpass/shared/edge/apigw"
	"github.com/vaxpass/vaxpass/shared/edge/httpapi"
	"github.com/vaxpass/vaxpass/shared/wire"
	"github.com/vaxpass/vaxpass/shared/wire/routes"
	"github.com/vaxpass/vaxpass/shared/wire/routes/facility"
	"github.com/vaxpass/vaxpass/shared/wire/routes/public"
	"github.com/vaxpass/vaxpass/web"
)

// The template and the code must agree on routes, functions and environment; these tests
// read template.yaml (a few line patterns: the file is ours and regular) and the routers.

func readTemplate(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// offlineAWS assembles the system without touching the network (no call is made).
func offlineAWS(t *testing.T) *Stack {
	t.Helper()
	cfg, err := ConfigFromEnv(func(k string) string {
		if k == EnvRenewalWindowDays || k == EnvKMSSignsPerSecond {
			return "7"
		}
		return "x-" + k
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg.SDK = &aws.Config{Region: "us-east-1"}
	cfg.Log = slog.New(slog.DiscardHandler)
	// The ops function's dead letters come from deadletters.Option (which imports this
	// package); these tests only build routers, so a port that is never called does.
	a, err := Open(context.Background(), cfg, func(_ *Stack, p *wire.Ports) error {
		p.DeadLetters = unusedDeadLetters{}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestRoutesAgree: template.yaml's routes, the routers of the functions they go to and
// openapi.yaml's operations are the same set. A route added to one and not the others
// fails here (the embedded server's router is compared with openapi.yaml in
// tests/contract).
func TestRoutesAgree(t *testing.T) {
	tpl := readTemplate(t)
	integrationFunc := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^  (\w+Integration):\n(?:    .*\n)*?      IntegrationUri: !GetAtt (\w+)\.Arn`).FindAllStringSubmatch(tpl, -1) {
		integrationFunc[m[1]] = m[2]
	}
	byFunc := map[string][]string{} // function -> route keys
	var all []string
	for _, m := range regexp.MustCompile(`RouteKey: '([^']+)', Target: !Sub 'integrations/\$\{(\w+)\}'`).FindAllStringSubmatch(tpl, -1) {
		fn, ok := integrationFunc[m[2]]
		if !ok {
			t.Fatalf("route %s targets unknown integration %s", m[1], m[2])
		}
		byFunc[fn] = append(byFunc[fn], m[1])
		all = append(all, m[1])
	}
	a := offlineAWS(t)
	router := func(r *apigw.Router, err error) []string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return r.Routes()
	}
	facility := router(routes.Router(facility.Group(a.Sys)))
	for _, c := range []struct {
		function string
		router   []string
	}{
		{"FacilityApiFunction", slices.DeleteFunc(slices.Clone(facility), func(r string) bool {
			return strings.HasPrefix(r, "POST /v1/signatures") || strings.HasPrefix(r, "GET /v1/signatures/")
		})},
		{"FacilitySigningFunction", []string{"POST /v1/signatures", "GET /v1/signatures/{run_id}"}},
		{"PublicApiFunction", router(routes.Router(public.Group(a.Sys), public.LookupPages))},
		{"OpsApiFunction", router(routes.Router(routes.Ops(a.Sys, unusedRuns{}), routes.OpsPages))},
	} {
		got := slices.Sorted(slices.Values(byFunc[c.function]))
		want := slices.Sorted(slices.Values(c.router))
		if !slices.Equal(got, want) {
			t.Errorf("%s: template routes %v, its router's %v", c.function, got, want)
		}
		delete(byFunc, c.function)
	}
	if len(byFunc) != 0 {
		t.Errorf("routes go to functions without a router: %v", byFunc)
	}
	if !slices.Contains(facility, "POST /v1/signatures") {
		t.Error("the facility router (which facility signing serves) has no POST /v1/signatures")
	}

	doc, err := openapi3.NewLoader().LoadFromFile(filepath.Join("..", "..", "..", "openapi.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var documented []string
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			documented = append(documented, method+" "+path)
		}
	}
	slices.Sort(documented)
	slices.Sort(all)
	if !slices.Equal(all, documented) {
		for _, r := range all {
			if !slices.Contains(documented, r) {
				t.Errorf("template.yaml routes %s, which openapi.yaml does not document", r)
			}
		}
		for _, d := range documented {
			if !slices.Contains(all, d) {
				t.Errorf("openapi.yaml documents %s, which template.yaml does not route", d)
			}
		}
	}
}

func TestTemplateFunctionsHaveMains(t *testing.T) {
	tpl := readTemplate(t)
	var uris []string
	for _, m := range regexp.MustCompile(`(?m)^      CodeUri: (functions/[\w-]+)$`).FindAllStringSubmatch(tpl, -1) {
		uris = append(uris, m[1])
		if _, err := os.Stat(filepath.Join("..", "..", "..", m[1], "main.go")); err != nil {
			t.Errorf("%s: %v", m[1], err)
		}
	}
	dirs, err := filepath.Glob(filepath.Join("..", "..", "..", "functions", "*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		if !slices.Contains(uris, "functions/"+filepath.Base(d)) {
			t.Errorf("%s is not deployed by template.yaml", d)
		}
	}
	if len(uris) < 7 {
		t.Errorf("template deploys %d functions, want at least 7: %v", len(uris), uris)
	}
}

// TestTemplateEnvironmentIsTheConfig: the Globals environment is exactly what
// ConfigFromEnv reads, and without any one required variable it refuses to start.
func TestTemplateEnvironmentIsTheConfig(t *testing.T) {
	tpl := readTemplate(t)
	block := tpl[strings.Index(tpl, "    Environment:\n      Variables:\n"):strings.Index(tpl, "\nResources:")]
	var names []string
	for _, m := range regexp.MustCompile(`(?m)^        ([A-Z_]+): `).FindAllStringSubmatch(block, -1) {
		names = append(names, m[1])
	}
	env := map[string]string{}
	for _, n := range names {
		env[n] = "1"
	}
	if _, err := ConfigFromEnv(func(k string) string { return env[k] }); err != nil {
		t.Fatalf("the template's environment %v does not configure the functions: %v", names, err)
	}
	optional := []string{EnvCentralDLQURL, EnvRenewalWindowDays, EnvKMSSignsPerSecond, EnvWorkQueueURL, EnvMatcherFailureURL,
		EnvCentralBulkQueueURL, EnvSigningQueueURL, EnvRenewalQueueURL}
	for _, n := range names {
		if slices.Contains(optional, n) {
			continue
		}
		without := func(k string) string {
			if k == n {
				return ""
			}
			return env[k]
		}
		if _, err := ConfigFromEnv(without); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), n) {
			t.Errorf("without %s: %v, want an error naming it", n, err)
		}
	}
	for _, n := range []string{EnvDosesTable, EnvCertificatesTable, EnvFacilitiesTable, EnvRegistryTable, EnvOpsTable, EnvCentralQueueURL, EnvCentralDLQURL, EnvDSCKeyID, EnvTrustBucket, EnvFacilityKeyTag, EnvRenewalWindowDays, EnvKMSSignsPerSecond, EnvWorkQueueURL, EnvMatcherFailureURL} {
		if !slices.Contains(names, n) {
			t.Errorf("the template does not set %s", n)
		}
	}
}

func TestAWSConfigFromEnvValues(t *testing.T) {
	base := func(k string) string { return "x" }
	for _, c := range []struct {
		key, value string
		ok         bool
	}{
		{EnvRenewalWindowDays, "30", true},
		{EnvRenewalWindowDays, "0", false},
		{EnvRenewalWindowDays, "30d", false},
		{EnvKMSSignsPerSecond, "50", true},
		{EnvKMSSignsPerSecond, "-1", false},
		{EnvKMSSignsPerSecond, "NaN", false},
	} {
		_, err := ConfigFromEnv(func(k string) string {
			if k == c.key {
				return c.value
			}
			if k == EnvRenewalWindowDays || k == EnvKMSSignsPerSecond {
				return ""
			}
			return base(k)
		})
		if (err == nil) != c.ok {
			t.Errorf("%s=%q: err %v, want ok %v", c.key, c.value, err, c.ok)
		}
		if err != nil && !strings.Contains(err.Error(), c.key) {
			t.Errorf("%s=%q: error %q does not name the variable", c.key, c.value, err)
		}
	}
}

func apiEvent(method, path string, headers map[string]string) events.APIGatewayV2HTTPRequest {
	var ev events.APIGatewayV2HTTPRequest
	ev.RouteKey = "$default"
	ev.RawPath = path
	ev.Headers = headers
	ev.RequestContext.HTTP.Method = method
	ev.RequestContext.HTTP.Path = path
	return ev
}

// TestPageThroughAPIGateway serves the lookup page and its files through the public router,
// as API Gateway delivers them to the public function.
func TestPageThroughAPIGateway(t *testing.T) {
	a := offlineAWS(t)
	ctx := context.Background()
	page, err := publicRouter(t, a).Serve(ctx, apiEvent("GET", "/", nil))
	if err != nil {
		t.Fatal(err)
	}
	if page.StatusCode != http.StatusOK || page.Headers["Content-Type"] != "text/html; charset=utf-8" || page.IsBase64Encoded ||
		page.Headers["Content-Security-Policy"] != web.ContentSecurityPolicy || !strings.Contains(page.Body, "/static/app.js?v=") {
		t.Fatalf("GET /: %d %v base64 %v", page.StatusCode, page.Headers, page.IsBase64Encoded)
	}
	svg, err := publicRouter(t, a).Serve(ctx, apiEvent("GET", "/static/emblem.svg", nil))
	if err != nil {
		t.Fatal(err)
	}
	want, err := web.Files.ReadFile("static/emblem.svg")
	if err != nil {
		t.Fatal(err)
	}
	got, err := base64.StdEncoding.DecodeString(svg.Body)
	if svg.StatusCode != http.StatusOK || !svg.IsBase64Encoded || err != nil || string(got) != string(want) {
		t.Fatalf("GET /static/emblem.svg: %d base64 %v, body matches %v", svg.StatusCode, svg.IsBase64Encoded, string(got) == string(want))
	}
	css, _ := publicRouter(t, a).Serve(ctx, apiEvent("GET", "/static/app.css", nil))
	etag := css.Headers["Etag"]
	if css.StatusCode != http.StatusOK || etag == "" || css.IsBase64Encoded {
		t.Fatalf("GET /static/app.css: %d etag %q", css.StatusCode, etag)
	}
	again, _ := publicRouter(t, a).Serve(ctx, apiEvent("GET", "/static/app.css", map[string]string{"if-none-match": etag}))
	if again.StatusCode != http.StatusNotModified || again.Body != "" {
		t.Errorf("conditional GET: %d %q, want 304 and no body", again.StatusCode, again.Body)
	}
	missing, _ := publicRouter(t, a).Serve(ctx, apiEvent("GET", "/static/nope.js", nil))
	if missing.StatusCode != http.StatusNotFound {
		t.Errorf("GET /static/nope.js: %d, want 404", missing.StatusCode)
	}
}

func publicRouter(t *testing.T, a *Stack) *apigw.Router {
	t.Helper()
	r, err := routes.Router(public.Group(a.Sys), public.LookupPages)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestFacilitySigningDispatch(t *testing.T) {
	a := offlineAWS(t)
	ctx := context.Background()
	// An API Gateway event goes to the facility router (an unknown path: 404, no store call).
	r, err := routes.Router(facility.Group(a.Sys))
	if err != nil {
		t.Fatal(err)
	}
	handle := APIOr(r.Serve, a.HandleFacilitySigning)
	ev, _ := json.Marshal(apiEvent("GET", "/v1/nope", nil))
	out, err := handle(ctx, ev)
	if err != nil {
		t.Fatal(err)
	}
	if resp, ok := out.(events.APIGatewayV2HTTPResponse); !ok || resp.StatusCode != http.StatusNotFound {
		t.Errorf("API event answered %#v, want the router's 404", out)
	}
	for _, bad := range []string{`{"action":"sign-everything"}`, `{}`, `[1]`, `nope`} {
		if _, err := handle(ctx, json.RawMessage(bad)); err == nil {
			t.Errorf("event %s: no error", bad)
		}
	}
}

func TestOpsRequestsAreChecked(t *testing.T) {
	a := offlineAWS(t)
	ctx := context.Background()
	for _, ev := range []string{
		`{"action":"explode"}`,
		`{"action":"rematch","facility_id":"f1"}`,
		`{"action":"sign"}`,
		`{"action":"reprocess"}`,
		`{"action":"reprocess","selector":{"stage":"nothing"}}`,
		`{"action":"reprocess","selector":{"stage":"match","status":["HAPPY"]}}`,
		`{"action":"reprocess-status"}`,
		`{"action":"redrive","maximum":3}`,
		`not json`,
	} {
		if _, err := a.HandleOpsEvent(ctx, json.RawMessage(ev)); !errors.Is(err, ErrOpsRequest) {
			t.Errorf("ops event %s: %v, want ErrOpsRequest", ev, err)
		}
	}
	for _, ev := range []string{`{"action":"renew","window":"3y"}`, `{"action":"renew","extra":1}`, `{"action":"sign-all-facilities"}`} {
		if _, err := a.HandleRenewal(ctx, json.RawMessage(ev)); !errors.Is(err, ErrOpsRequest) {
			t.Errorf("renewal event %s: %v, want ErrOpsRequest", ev, err)
		}
	}
}

func TestAWSConfigFromOutputs(t *testing.T) {
	out := map[string]string{
		"DosesTable": "d", "CertificatesTable": "c", "FacilitiesTable": "f", "RegistryTable": "r", "OpsTable": "o",
		"CentralQueueUrl": "q", "CentralDeadLetterQueueUrl": "dlq", "DscKeyArn": "k", "TrustBucket": "b", "StackName": "s",
	}
	c, err := ConfigFromOutputs(out)
	if err != nil || c.Tables.Doses != "d" || c.CentralDLQURL != "dlq" || c.FacilityKeyTag != "s" || c.OpsTable != "o" {
		t.Fatalf("%+v, %v", c, err)
	}
	delete(out, "TrustBucket")
	if _, err := ConfigFromOutputs(out); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "TrustBucket") {
		t.Errorf("without TrustBucket: %v", err)
	}
	// Every output it reads is one the template declares.
	tpl := readTemplate(t)
	for _, k := range []string{"DosesTable", "CertificatesTable", "FacilitiesTable", "RegistryTable", "OpsTable", "CentralQueueUrl", "CentralDeadLetterQueueUrl", "DscKeyArn", "TrustBucket", "StackName", "ApiId", "ApiUrl", "OpsFunction", "RenewalFunction", "FacilitySigningFunction", "CentralSigningFunction", "WorkQueueUrl", "MatcherFailureQueueUrl"} {
		if !regexp.MustCompile(`(?m)^  ` + k + `:\n`).MatchString(tpl[strings.Index(tpl, "\nOutputs:"):]) {
			t.Errorf("template has no output %s", k)
		}
	}
}

type unusedDeadLetters struct{ wire.DeadLetters }

type unusedRuns struct{ httpapi.ReprocessRuns }

// TestQueueHandlersAnswerAnEmptyFailureList: a batch without failures answers
// "batchItemFailures":[] -- an emulator's event source mapping takes null for a failed
// invocation and sends the whole batch again.
func TestQueueHandlersAnswerAnEmptyFailureList(t *testing.T) {
	a := offlineAWS(t)
	ctx := context.Background()
	// A malformed message is dropped (it could never succeed): a batch without failures.
	ev := events.SQSEvent{Records: []events.SQSMessage{{MessageId: "m1", Body: `{"nope":1}`, EventSource: "aws:sqs"}}}
	for name, handle := range map[string]func(context.Context, events.SQSEvent) (events.SQSEventResponse, error){
		"work": a.HandleWork, "renewal": a.HandleRenewalSlices, "signing": a.HandleSigningQueue,
	} {
		resp, err := handle(ctx, ev)
		b, _ := json.Marshal(resp)
		if err != nil || string(b) != `{"batchItemFailures":[]}` {
			t.Errorf("%s queue: %s, %v; want an empty failure list", name, b, err)
		}
	}
}
