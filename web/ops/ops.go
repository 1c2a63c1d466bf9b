// Package ops is the ops dashboard served at /ops: one HTML page, a stylesheet, a script
// and the emblem, all embedded, with no external resource and no inline code, under a
// Content-Security-Policy that allows only this origin.
//
// The page holds no data. A browser cannot send an Authorization header when it loads a
// page, so the page asks for the ops key, keeps it in sessionStorage (this tab only,
// gone when the tab closes, never sent as a cookie, so no cross-site request can carry
// it) and fetches GET /v1/stats with "Authorization: Bearer <key>". A wrong key gets the
// API's 401 and the form again. The chart is SVG drawn by the script from the JSON. A
// province opens its communes (GET /v1/stats?province=); a commune or a site opens its
// follow-up: its worklists' API paths and the key that opens them, the dead letters
// (GET /v1/ops/dead-letters) and a prefilled selector for POST /v1/ops/reprocess.
package ops

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// Files holds the page: index.html and static/ (ops.css, ops.js, emblem.svg).
//
//go:embed index.html static
var Files embed.FS

// Prefix is where the page lives.
const Prefix = "/ops"

// ContentSecurityPolicy is sent with the page: this origin only, no inline code, no
// frames, no form posts elsewhere.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

const (
	cacheVersioned   = "public, max-age=31536000, immutable"
	cacheUnversioned = "no-cache"
	cachePage        = "no-cache"
)

var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".svg":  "image/svg+xml",
}

type asset struct {
	body        []byte
	contentType string
	version     string
}

type site struct {
	page   asset
	assets map[string]asset // by URL path, "/ops/static/ops.css"
}

var (
	loadOnce sync.Once
	loaded   *site
	loadErr  error
)

// Owns reports whether a request path belongs to the dashboard.
func Owns(p string) bool {
	return p == Prefix || p == Prefix+"/" || strings.HasPrefix(p, Prefix+"/static/")
}

// Handler serves the page at /ops (and /ops/) and its files under /ops/static/, GET and
// HEAD only.
func Handler() http.Handler {
	loadOnce.Do(func() { loaded, loadErr = load(Files) })
	if loadErr != nil {
		// The files are embedded at build time; failing here is a broken build.
		panic("web/ops: " + loadErr.Error())
	}
	return loaded
}

func version(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

func load(files fs.FS) (*site, error) {
	s := &site{assets: map[string]asset{}}
	err := fs.WalkDir(files, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := fs.ReadFile(files, p)
		if err != nil {
			return fmt.Errorf("read %s: %w", p, err)
		}
		ct, ok := contentTypes[path.Ext(p)]
		if !ok {
			return fmt.Errorf("static file %s: no content type for its extension", p)
		}
		s.assets[Prefix+"/"+p] = asset{body: body, contentType: ct, version: version(body)}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load static files: %w", err)
	}
	page, err := fs.ReadFile(files, "index.html")
	if err != nil {
		return nil, fmt.Errorf("read index.html: %w", err)
	}
	for urlPath, a := range s.assets {
		page = bytes.ReplaceAll(page, []byte(`"`+urlPath+`"`), []byte(`"`+urlPath+"?v="+a.version+`"`))
	}
	s.page = asset{body: page, contentType: contentTypes[".html"], version: version(page)}
	return s, nil
}

func (s *site) lookup(p, v string) (a asset, cache string, isPage, ok bool) {
	switch {
	case p == Prefix || p == Prefix+"/":
		return s.page, cachePage, true, true
	case strings.HasPrefix(p, Prefix+"/static/"):
		a, ok = s.assets[p]
		cache = cacheUnversioned
		if ok && v == a.version {
			cache = cacheVersioned
		}
		return a, cache, false, ok
	}
	return asset{}, "", false, false
}

func securityHeaders(h func(k, v string), isPage bool) {
	h("X-Content-Type-Options", "nosniff")
	h("Referrer-Policy", "no-referrer")
	if isPage {
		h("Content-Security-Policy", ContentSecurityPolicy)
		h("X-Frame-Options", "DENY")
		h("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()")
	}
}

func (s *site) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a, cache, isPage, ok := s.lookup(r.URL.Path, r.URL.Query().Get("v"))
	securityHeaders(w.Header().Set, isPage)
	if !ok {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("Content-Type", a.contentType)
	w.Header().Set("Cache-Control", cache)
	w.Header().Set("ETag", `"`+a.version+`"`)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}

// Lambda answers the page's routes as an API Gateway (HTTP API) handler, for a deployment
// that serves the dashboard from a function: routes "GET /ops" and "GET /ops/{proxy+}".
func Lambda(req events.APIGatewayV2HTTPRequest) events.APIGatewayV2HTTPResponse {
	loadOnce.Do(func() { loaded, loadErr = load(Files) })
	headers := map[string]string{}
	set := func(k, v string) { headers[k] = v }
	p := req.RawPath
	if p == "" {
		p = "/ops"
	}
	a, cache, isPage, ok := asset{}, "", false, false
	if loadErr == nil {
		a, cache, isPage, ok = loaded.lookup(p, req.QueryStringParameters["v"])
	}
	securityHeaders(set, isPage)
	if !ok {
		set("Content-Type", "text/plain; charset=utf-8")
		return events.APIGatewayV2HTTPResponse{StatusCode: http.StatusNotFound, Headers: headers, Body: "not found"}
	}
	set("Content-Type", a.contentType)
	set("Cache-Control", cache)
	set("ETag", `"`+a.version+`"`)
	if req.Headers["if-none-match"] == `"`+a.version+`"` {
		return events.APIGatewayV2HTTPResponse{StatusCode: http.StatusNotModified, Headers: headers}
	}
	return events.APIGatewayV2HTTPResponse{StatusCode: http.StatusOK, Headers: headers, Body: string(a.body)}
}
