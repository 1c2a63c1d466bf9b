package web

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"github.com/vaxpass/vaxpass/shared/domain/dcc"
	"github.com/vaxpass/vaxpass/shared/domain/vaccine"
	"github.com/vaxpass/vaxpass/shared/edge/passportpage"
)

// The contract's lookup `fields` keys, each shown in #field-<key>.
var contractFields = []string{"full_name", "date_of_birth", "nationality", "disease", "doses_received",
	"date_of_vaccination", "dose_number", "vaccine", "vaccine_product", "manufacturer", "certificate_id"}

func get(t *testing.T, srv *httptest.Server, target string, header http.Header) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest("GET", srv.URL+target, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, body
}

var assetRef = regexp.MustCompile(`(?:src|href)="(/static/[^"?]+)\?v=([0-9a-f]{16})"`)

func TestHandlerServesPageAndAssets(t *testing.T) {
	srv := httptest.NewServer(Handler())
	defer srv.Close()

	res, page := get(t, srv, "/", nil)
	if res.StatusCode != 200 {
		t.Fatalf("GET / status %d", res.StatusCode)
	}
	for header, want := range map[string]string{
		"Content-Type":            "text/html; charset=utf-8",
		"Cache-Control":           "no-cache",
		"Content-Security-Policy": ContentSecurityPolicy,
		"X-Content-Type-Options":  "nosniff",
		"X-Frame-Options":         "DENY",
		"Referrer-Policy":         "no-referrer",
	} {
		if got := res.Header.Get(header); got != want {
			t.Errorf("GET / %s = %q, want %q", header, got, want)
		}
	}
	etag := res.Header.Get("ETag")
	if res, _ := get(t, srv, "/", http.Header{"If-None-Match": {etag}}); res.StatusCode != http.StatusNotModified {
		t.Errorf("revalidation with ETag %s: status %d, want 304", etag, res.StatusCode)
	}

	refs := assetRef.FindAllStringSubmatch(string(page), -1)
	wantTypes := map[string]string{
		"/static/app.css":    "text/css; charset=utf-8",
		"/static/app.js":     "text/javascript; charset=utf-8",
		"/static/emblem.svg": "image/svg+xml",
		"/static/vi.js":      "text/javascript; charset=utf-8",
	}
	seen := map[string]bool{}
	for _, ref := range refs {
		p, v := ref[1], ref[2]
		seen[p] = true
		res, body := get(t, srv, p+"?v="+v, nil)
		if res.StatusCode != 200 || len(body) == 0 {
			t.Errorf("%s: status %d, %d bytes", p, res.StatusCode, len(body))
			continue
		}
		if ct := res.Header.Get("Content-Type"); ct != wantTypes[p] {
			t.Errorf("%s: content type %q, want %q", p, ct, wantTypes[p])
		}
		if cc := res.Header.Get("Cache-Control"); cc != cacheVersioned {
			t.Errorf("%s?v=current: Cache-Control %q", p, cc)
		}
		if res.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: no nosniff", p)
		}
		// The version is the content's: a stale or missing version is cached briefly only.
		if res, _ := get(t, srv, p+"?v=0000000000000000", nil); res.Header.Get("Cache-Control") != cacheUnversioned {
			t.Errorf("%s with a stale version: Cache-Control %q", p, res.Header.Get("Cache-Control"))
		}
	}
	for p := range wantTypes {
		if !seen[p] {
			t.Errorf("page does not reference %s with its version", p)
		}
	}
}

func TestHandlerRefuses(t *testing.T) {
	srv := httptest.NewServer(Handler())
	defer srv.Close()
	cases := []struct {
		method, target string
		status         int
	}{
		{"GET", "/nope", 404},
		{"GET", "/index.html", 404},
		{"GET", "/static/", 404},
		{"GET", "/static/missing.js", 404},
		{"GET", "/static/../web.go", 404},
		{"POST", "/", 405},
		{"DELETE", "/static/app.js", 405},
		{"HEAD", "/", 200},
	}
	for _, c := range cases {
		req, _ := http.NewRequest(c.method, srv.URL+c.target, nil)
		res, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != c.status {
			t.Errorf("%s %s: status %d, want %d", c.method, c.target, res.StatusCode, c.status)
		}
		if c.status == 405 && res.Header.Get("Allow") != "GET, HEAD" {
			t.Errorf("%s %s: Allow %q", c.method, c.target, res.Header.Get("Allow"))
		}
	}
}

// pageNodes parses the embedded page.
func pageNodes(t *testing.T) *html.Node {
	t.Helper()
	f, err := Files.Open("index.html")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := html.Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

func walk(n *html.Node, fn func(*html.Node)) {
	fn(n)
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		walk(c, fn)
	}
}

func attr(n *html.Node, name string) (string, bool) {
	for _, a := range n.Attr {
		if a.Key == name {
			return a.Val, true
		}
	}
	return "", false
}

// The page must work under its own CSP and never reach another origin.
func TestPageIsSelfContainedAndCSPClean(t *testing.T) {
	walk(pageNodes(t), func(n *html.Node) {
		if n.Type != html.ElementNode {
			return
		}
		switch n.Data {
		case "script":
			if src, ok := attr(n, "src"); !ok || src == "" {
				t.Error("inline <script>: the CSP forbids it")
			}
		case "style":
			t.Error("<style> element: the CSP forbids inline styles")
		}
		for _, a := range n.Attr {
			switch {
			case a.Key == "style":
				t.Errorf("<%s style=…>: the CSP forbids inline styles", n.Data)
			case strings.HasPrefix(a.Key, "on"):
				t.Errorf("<%s %s=…>: inline event handler", n.Data, a.Key)
			case a.Key == "src" || a.Key == "href" || a.Key == "action":
				if !strings.HasPrefix(a.Val, "/") && !strings.HasPrefix(a.Val, "#") || strings.HasPrefix(a.Val, "//") {
					t.Errorf("<%s %s=%q>: not a same-origin reference", n.Data, a.Key, a.Val)
				}
			}
		}
	})
}

// Stable hooks for browser tests, and an accessible form.
func TestPageStructure(t *testing.T) {
	ids := map[string]*html.Node{}
	labelFor := map[string]bool{}
	walk(pageNodes(t), func(n *html.Node) {
		if n.Type != html.ElementNode {
			return
		}
		if id, ok := attr(n, "id"); ok {
			if ids[id] != nil {
				t.Errorf("id %q used twice", id)
			}
			ids[id] = n
			if tid, ok := attr(n, "data-testid"); ok && tid != id {
				t.Errorf("#%s has data-testid %q", id, tid)
			}
		}
		if n.Data == "label" {
			if f, ok := attr(n, "for"); ok {
				labelFor[f] = true
			}
		}
	})
	want := []string{"lookup", "id_number", "full_name", "dob", "submit", "message", "result", "qr", "field-expires_at", "print", "reset",
		"download", "report-wrap", "report", "field-name_icao", "field-country", "field-issuer",
		"field-nationality-vi", "field-vaccine-vi", "field-country-vi", "field-issuer-vi"}
	for _, f := range contractFields {
		want = append(want, "field-"+f)
	}
	for _, id := range want {
		if ids[id] == nil {
			t.Errorf("no element #%s", id)
		}
	}
	for _, input := range []string{"id_number", "full_name", "dob"} {
		if !labelFor[input] {
			t.Errorf("input #%s has no <label for>", input)
		}
		if n := ids[input]; n != nil {
			described, _ := attr(n, "aria-describedby")
			if !strings.Contains(described, input+"-error") {
				t.Errorf("#%s: aria-describedby %q does not name its error element", input, described)
			}
		}
	}
	if n := ids["message"]; n != nil {
		if v, _ := attr(n, "aria-live"); v == "" {
			t.Error("#message is not an aria-live region")
		}
	}
	if n := ids["result"]; n != nil {
		if _, hidden := attr(n, "hidden"); !hidden {
			t.Error("#result must start hidden")
		}
	}
	if n := ids["qr"]; n != nil {
		if alt, _ := attr(n, "alt"); alt == "" {
			t.Error("#qr has no alt text")
		}
	}
	if n := ids["download"]; n != nil {
		if _, ok := attr(n, "download"); !ok || n.Data != "a" {
			t.Error("#download is not a link with the download attribute")
		}
	}
	if n := ids["report"]; n != nil {
		if href, _ := attr(n, "href"); href != "/report" {
			t.Errorf("#report links to %q, want /report", href)
		}
	}
	if n := ids["dob"]; n != nil {
		if ph, _ := attr(n, "placeholder"); ph != "DD/MM/YYYY" {
			t.Errorf("#dob placeholder %q", ph)
		}
	}
}

// The script must read the contract's keys and write values as text only.
func TestScriptUsesContract(t *testing.T) {
	js, err := Files.ReadFile("static/app.js")
	if err != nil {
		t.Fatal(err)
	}
	src := string(js)
	for _, f := range append(contractFields, "id_number", "full_name", "dob", "qr_png", "pdf", "expires_at", "total_doses",
		"name_icao", "fnt", "gnt", "country", "issuer", "VAXPASS_VI", "/v1/passports/lookup", "Retry-After") {
		if !strings.Contains(src, "'"+f+"'") && !strings.Contains(src, "."+f) {
			t.Errorf("app.js never uses %q", f)
		}
	}
	for _, banned := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "localStorage", "sessionStorage", "http://", "https://"} {
		if strings.Contains(src, banned) {
			t.Errorf("app.js uses %s", banned)
		}
	}
}

// The page's Vietnamese values are the PDF's: every vaccine type the catalogue can put in
// a certificate, the country and the issuer, as shared/edge/passportpage translates them.
func TestValuesVIArePassportPages(t *testing.T) {
	b, err := ValuesVI()
	if err != nil {
		t.Fatal(err)
	}
	src := string(b)
	const prefix = "window.VAXPASS_VI = "
	i := strings.Index(src, prefix)
	if i < 0 || !strings.HasSuffix(src, ";\n") {
		t.Fatalf("vi.js: %q", src)
	}
	var table map[string]map[string]string
	if err := json.Unmarshal([]byte(strings.TrimSuffix(src[i+len(prefix):], ";\n")), &table); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, v := range vaccine.All() {
		want := passportpage.VaccineTypeVI(v.ProphylaxisDisplay)
		if want == "" {
			t.Errorf("passportpage has no Vietnamese for %q (vaccine %s)", v.ProphylaxisDisplay, v.Code)
		}
		if got := table["vaccine"][v.ProphylaxisDisplay]; got != want {
			t.Errorf("vi.js vaccine %q = %q, want %q", v.ProphylaxisDisplay, got, want)
		}
		n++
	}
	if table["country"][dcc.Country] != "Việt Nam" || table["issuer"][dcc.Issuer] != passportpage.IssuerVI(dcc.Issuer) || table["issuer"][dcc.Issuer] == "" {
		t.Errorf("vi.js country/issuer: %v %v", table["country"], table["issuer"])
	}
	if n == 0 {
		t.Fatal("empty catalogue")
	}
}
