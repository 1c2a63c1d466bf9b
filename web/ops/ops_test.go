package ops

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
)

func get(t *testing.T, method, target string, header map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	Handler().ServeHTTP(rec, req)
	return rec
}

func TestPage(t *testing.T) {
	for _, p := range []string{"/ops", "/ops/"} {
		rec := get(t, http.MethodGet, p, nil)
		if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") {
			t.Fatalf("GET %s: %d %s", p, rec.Code, rec.Header().Get("Content-Type"))
		}
		h := rec.Header()
		if h.Get("Content-Security-Policy") != ContentSecurityPolicy || h.Get("X-Frame-Options") != "DENY" ||
			h.Get("Referrer-Policy") != "no-referrer" || h.Get("Cache-Control") != cachePage {
			t.Errorf("GET %s: headers %v", p, h)
		}
	}
	body := get(t, http.MethodGet, "/ops", nil).Body.String()
	// No inline code: the CSP forbids it, so inline code would be dead.
	if regexp.MustCompile(`<script(?:\s[^>]*)?>\s*[^<\s]`).MatchString(body) || strings.Contains(body, " style=") ||
		regexp.MustCompile(`\son[a-z]+=`).MatchString(body) || strings.Contains(body, "<style") {
		t.Errorf("the page holds inline script, style or event handlers")
	}
	if strings.Contains(body, "http://") || strings.Contains(body, "https://") {
		t.Errorf("the page refers to another origin")
	}
	// Every asset reference carries its content hash, and is served for a year under it.
	refs := regexp.MustCompile(`"(/ops/static/[a-z.]+)\?v=([0-9a-f]{16})"`).FindAllStringSubmatch(body, -1)
	if len(refs) < 3 {
		t.Fatalf("versioned asset references: %v", refs)
	}
	for _, r := range refs {
		rec := get(t, http.MethodGet, r[1]+"?v="+r[2], nil)
		if rec.Code != http.StatusOK || rec.Header().Get("Cache-Control") != cacheVersioned || rec.Header().Get("ETag") != `"`+r[2]+`"` {
			t.Errorf("%s: %d %v", r[1], rec.Code, rec.Header())
		}
		if rec := get(t, http.MethodGet, r[1], map[string]string{"If-None-Match": `"` + r[2] + `"`}); rec.Code != http.StatusNotModified {
			t.Errorf("%s revalidated: %d", r[1], rec.Code)
		}
		if rec := get(t, http.MethodGet, r[1]+"?v=0000000000000000", nil); rec.Header().Get("Cache-Control") != cacheUnversioned {
			t.Errorf("%s with a stale version is cached for long", r[1])
		}
	}
}

func TestOnlyItsPaths(t *testing.T) {
	for p, want := range map[string]bool{
		"/ops": true, "/ops/": true, "/ops/static/ops.js": true,
		"/": false, "/opsx": false, "/ops/other": false, "/v1/stats": false, "/static/app.js": false,
	} {
		if Owns(p) != want {
			t.Errorf("Owns(%q) = %v", p, !want)
		}
	}
	for _, p := range []string{"/ops/static/nope.js", "/ops/static/../index.html", "/ops/other"} {
		if rec := get(t, http.MethodGet, p, nil); rec.Code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, rec.Code)
		}
	}
	rec := get(t, http.MethodPost, "/ops", nil)
	if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("POST /ops: %d %v", rec.Code, rec.Header())
	}
	if rec := get(t, http.MethodHead, "/ops", nil); rec.Code != http.StatusOK || rec.Body.Len() != 0 {
		t.Errorf("HEAD /ops: %d, %d bytes", rec.Code, rec.Body.Len())
	}
}

func TestLambda(t *testing.T) {
	res := Lambda(events.APIGatewayV2HTTPRequest{RawPath: "/ops"})
	if res.StatusCode != http.StatusOK || res.Headers["Content-Security-Policy"] != ContentSecurityPolicy || !strings.Contains(res.Body, `id="dashboard"`) {
		t.Fatalf("GET /ops: %d %v", res.StatusCode, res.Headers)
	}
	again := Lambda(events.APIGatewayV2HTTPRequest{RawPath: "/ops", Headers: map[string]string{"if-none-match": res.Headers["ETag"]}})
	if again.StatusCode != http.StatusNotModified || again.Body != "" {
		t.Errorf("revalidation: %d", again.StatusCode)
	}
	if res := Lambda(events.APIGatewayV2HTTPRequest{RawPath: "/ops/static/ops.css"}); res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Headers["Content-Type"], "text/css") {
		t.Errorf("stylesheet: %d %v", res.StatusCode, res.Headers)
	}
	if res := Lambda(events.APIGatewayV2HTTPRequest{RawPath: "/ops/static/x"}); res.StatusCode != http.StatusNotFound {
		t.Errorf("unknown file: %d", res.StatusCode)
	}
}
