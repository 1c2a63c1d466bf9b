// Package web is the citizen lookup page served at "/": one HTML page, a stylesheet and a
// small script, all embedded, with no external resource, no inline script or style, and a
// Content-Security-Policy that allows only this origin. The page posts the typed details to
// /v1/passports/lookup and shows the certificate's fields in Vietnamese beside the English
// the certificate carries, its QR code and a link to its PDF.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/vaxpass/vaxpass/shared/domain/dcc"
	"github.com/vaxpass/vaxpass/shared/domain/vaccine"
	"github.com/vaxpass/vaxpass/shared/edge/passportpage"
)

// Files holds the page: index.html and static/ (app.css, app.js, emblem.svg). The page
// also loads /static/vi.js, made at start-up by ValuesVI.
//
//go:embed index.html report.html static
var Files embed.FS

// ContentSecurityPolicy is sent with the page: scripts, styles, images and fetches from this
// origin only; no frames, plugins, inline code or form posts elsewhere.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// Cache lifetimes. Asset URLs in the page carry their content hash (?v=…), so a versioned
// asset never changes and may be kept a year; the page itself is revalidated every time so
// a deployment is seen at once.
const (
	cacheVersioned   = "public, max-age=31536000, immutable"
	cacheUnversioned = "public, max-age=300"
	cachePage        = "no-cache"
)

var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".svg":  "image/svg+xml",
	".png":  "image/png",
	".ico":  "image/x-icon",
}

type asset struct {
	body        []byte
	contentType string
	version     string // first 16 hex digits of the SHA-256 of body
}

type site struct {
	page asset
	// report is the citizen's report page at /report (report.html).
	report asset
	assets map[string]asset // by URL path, "/static/app.css"
}

var (
	loadOnce sync.Once
	loaded   *site
	loadErr  error
)

// Handler serves the page at "/" and its files under "/static/", GET and HEAD only, with
// content types, ETags, cache headers and security headers. Any other path is a 404.
func Handler() http.Handler {
	loadOnce.Do(func() { loaded, loadErr = load(Files) })
	if loadErr != nil {
		// The files are embedded at build time; failing here is a broken build.
		panic("web: " + loadErr.Error())
	}
	return loaded
}

func version(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// load reads the embedded files and rewrites the page's asset references to carry their
// content hash.
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
		s.assets["/"+p] = asset{body: body, contentType: ct, version: version(body)}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load static files: %w", err)
	}
	vi, err := ValuesVI()
	if err != nil {
		return nil, err
	}
	s.assets[viScript] = asset{body: vi, contentType: contentTypes[".js"], version: version(vi)}
	page, err := fs.ReadFile(files, "index.html")
	if err != nil {
		return nil, fmt.Errorf("read index.html: %w", err)
	}
	for urlPath, a := range s.assets {
		page = bytes.ReplaceAll(page, []byte(`"`+urlPath+`"`), []byte(`"`+urlPath+"?v="+a.version+`"`))
	}
	s.page = asset{body: page, contentType: contentTypes[".html"], version: version(page)}
	rep, err := fs.ReadFile(files, "report.html")
	if err != nil {
		return nil, fmt.Errorf("read report.html: %w", err)
	}
	for urlPath, a := range s.assets {
		rep = bytes.ReplaceAll(rep, []byte(`"`+urlPath+`"`), []byte(`"`+urlPath+"?v="+a.version+`"`))
	}
	s.report = asset{body: rep, contentType: contentTypes[".html"], version: version(rep)}
	return s, nil
}

// viScript is the path of the Vietnamese values script.
const viScript = "/static/vi.js"

// ValuesVI is the script /static/vi.js: it sets window.VAXPASS_VI to the Vietnamese of the
// English values our certificates carry, by kind ("vaccine" types, "country" codes for
// nationality and country of vaccination, "issuer"), for every value the catalogue and
// the DCC builder can put in one. The words come from shared/edge/passportpage, which lays
// out the PDF, so the page and the PDF never say two different things.
func ValuesVI() ([]byte, error) {
	t := map[string]map[string]string{"vaccine": {}, "country": {}, "issuer": {}}
	add := func(kind, en, vi string) {
		if vi != "" {
			t[kind][en] = vi
		}
	}
	for _, v := range vaccine.All() {
		add("vaccine", v.ProphylaxisDisplay, passportpage.VaccineTypeVI(v.ProphylaxisDisplay))
	}
	add("country", dcc.Country, passportpage.CountryVI(dcc.Country))
	add("issuer", dcc.Issuer, passportpage.IssuerVI(dcc.Issuer))
	b, err := json.Marshal(t)
	if err != nil {
		return nil, fmt.Errorf("vi.js: %w", err)
	}
	return []byte("// Vietnamese of the values certificates carry (made by web.ValuesVI from shared/edge/passportpage).\n" +
		"window.VAXPASS_VI = " + string(b) + ";\n"), nil
}

func (s *site) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")

	var a asset
	var cache string
	switch {
	case r.URL.Path == "/" || r.URL.Path == "/report":
		a, cache = s.page, cachePage
		if r.URL.Path == "/report" {
			a = s.report
		}
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		h.Set("X-Frame-Options", "DENY")
		h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()")
	case strings.HasPrefix(r.URL.Path, "/static/"):
		var ok bool
		if a, ok = s.assets[r.URL.Path]; !ok {
			http.NotFound(w, r)
			return
		}
		cache = cacheUnversioned
		if r.URL.Query().Get("v") == a.version {
			cache = cacheVersioned
		}
	default:
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	h.Set("Content-Type", a.contentType)
	h.Set("Cache-Control", cache)
	h.Set("ETag", `"`+a.version+`"`)
	// ServeContent answers If-None-Match with 304 and handles HEAD and ranges.
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}
