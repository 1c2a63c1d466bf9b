package httpapi

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/vaxpass/vaxpass/shared/edge/apigw"
	"github.com/vaxpass/vaxpass/shared/stage/lookup"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// Limits of the public API.
const (
	maxLookupBody = 4 << 10
	maxVerifyBody = 16 << 10
	// qrCacheSize bounds the rendered-QR cache (a PNG is ~3 KB).
	qrCacheSize = 4096
)

// Looker is the lookup use case.
type Looker interface {
	Find(ctx context.Context, q lookup.Query) (vaxpass.Certificate, error)
	ByUVCI(ctx context.Context, uvci string) (vaxpass.Certificate, error)
}

// Verifier checks an HC1 string: signature against the trust list, expiry, schema, value
// sets and revocation. Invalid certificates are a verdict, not an error.
type Verifier interface {
	// Verify returns the verdict as the answer carries it (verification.Verdict): the
	// handler only renders it, so this package need not link the verifier's schema library.
	Verify(ctx context.Context, hc1 string) any
}

// Public is the public API: no key, rate limited per client.
type Public struct {
	Lookup    Looker
	Verifier  Verifier
	TrustList func(ctx context.Context) ([]byte, error)
	// RenderQR renders an HC1 string as a PNG.
	RenderQR func(hc1 string) ([]byte, error)
	// RenderPDF renders a certificate's printable passport (passportpage.PDF).
	RenderPDF func(lookup.Page) ([]byte, error)
	Limiter   *apigw.Limiter
	Now       func() time.Time
	Log       *slog.Logger
	// Events, when set, is told the security events of these routes (identity_locked).
	Events interface {
		SecurityEvent(ctx context.Context, kind, route string)
	}

	qrOnce sync.Once
	qr     *pngCache
}

// Routes registers the public API's routes.
func (p *Public) Routes(r *apigw.Router) {
	limited := func(h apigw.Handler) apigw.Handler {
		if p.Limiter == nil {
			return h
		}
		return apigw.RateLimited(p.Limiter, apigw.ClientKey, h)
	}
	r.Handle(routeLookup, limited(p.postLookup))
	r.Handle("GET /v1/passports/{uvci}/qr.png", limited(p.getQR))
	r.Handle("GET /v1/passports/{uvci}/passport.pdf", limited(p.getPDF))
	r.Handle("POST /v1/verify", limited(p.postVerify))
	r.Handle("GET /v1/trustlist", p.getTrustList)
}

const routeLookup = "POST /v1/passports/lookup"

// codeTooManyAttempts: the ID number's allowance of failed lookups is used up.
const codeTooManyAttempts = "too_many_attempts"

// tooManyAttempts is the per-identity limit's 429, with Retry-After in whole seconds.
func tooManyAttempts(retryAfter time.Duration) events.APIGatewayV2HTTPResponse {
	secs := max(1, int((retryAfter+time.Second-1)/time.Second))
	resp := apigw.Error(http.StatusTooManyRequests, codeTooManyAttempts,
		"too many failed lookups for this ID number; retry after "+strconv.Itoa(secs)+" seconds")
	resp.Headers["Retry-After"] = strconv.Itoa(secs)
	return resp
}

// LookupAnswer is the answer of POST /v1/passports/lookup.
type LookupAnswer struct {
	UVCI      string         `json:"uvci"`
	HC1       string         `json:"hc1"`
	QRPNG     string         `json:"qr_png"`
	PDF       string         `json:"pdf"`
	ExpiresAt time.Time      `json:"expires_at"`
	Fields    vaxpass.Fields `json:"fields"`
	// NameICAO, Country and Issuer are read from the HC1 itself (lookup.PageOf): what a
	// border officer compares with the passport or reads on the certificate. They are
	// empty when the HC1 cannot be read back.
	NameICAO ICAOName `json:"name_icao"`
	Country  string   `json:"country"`
	Issuer   string   `json:"issuer"`
}

// ICAOName is the name as a passport's machine-readable zone writes it (ICAO 9303): the
// DCC's fnt (family names) and gnt (given names), "<" between words.
type ICAOName struct {
	FNT string `json:"fnt"`
	GNT string `json:"gnt"`
}

// QRPath is where the QR image of a certificate is served. The UVCI travels base64url
// encoded: its check character may be "/", which API Gateway would decode out of a
// percent-escaped path segment before routing.
func QRPath(uvci string) string {
	return "/v1/passports/" + base64.RawURLEncoding.EncodeToString([]byte(uvci)) + "/qr.png"
}

func (p *Public) postLookup(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	var q lookup.Query
	if err := apigw.DecodeJSON(req, &q, apigw.DecodeOptions{MaxBytes: maxLookupBody, DisallowUnknownFields: true}); err != nil {
		return failure(p.log(), "lookup", err), nil
	}
	if errs := q.Validate(); len(errs) > 0 {
		return apigw.FieldError(http.StatusBadRequest, errs[0].Field, errs[0].Code, errs[0].Field+" "+errs[0].Message), nil
	}
	cert, err := p.Lookup.Find(ctx, q)
	if err != nil {
		var locked *lookup.LockedError
		if errors.As(err, &locked) {
			// The details were not looked at: the answer is the same whether they were right.
			if p.Events != nil {
				p.Events.SecurityEvent(ctx, "identity_locked", routeLookup)
			}
			return tooManyAttempts(locked.RetryAfter), nil
		}
		if errors.Is(err, vaxpass.ErrNotFound) {
			// One answer for "no such person" and "details do not match".
			return apigw.Error(http.StatusNotFound, codeNotFound, "no certificate matches these details"), nil
		}
		return failure(p.log(), "lookup", err), nil
	}
	ans := LookupAnswer{
		UVCI: cert.UVCI, HC1: cert.HC1, QRPNG: QRPath(cert.UVCI), PDF: PDFPath(cert.UVCI), ExpiresAt: cert.ExpiresAt, Fields: cert.Fields,
	}
	if pg, err := lookup.PageOf(cert); err != nil {
		// Our own HC1 should always read back; if it does not, the citizen still gets the
		// certificate and its 11 fields. The UVCI is left out of the log with the rest of
		// the person's data.
		p.log().Error("lookup answer without the certificate's page", "route", routeLookup,
			"err", strings.ReplaceAll(err.Error(), cert.UVCI, "<uvci>"))
	} else {
		ans.NameICAO = ICAOName{FNT: pg.FamilyICAO, GNT: pg.GivenICAO}
		ans.Country, ans.Issuer = pg.Country, pg.Issuer
	}
	return apigw.JSON(http.StatusOK, ans), nil
}

func (p *Public) getQR(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	raw, err := base64.RawURLEncoding.DecodeString(apigw.PathParameter(req, "uvci"))
	if err != nil || len(raw) == 0 || len(raw) > 80 {
		return apigw.FieldError(http.StatusBadRequest, "uvci", "invalid_format", "not a certificate image path"), nil
	}
	cert, err := p.Lookup.ByUVCI(ctx, string(raw))
	if err == nil && cert.Status != vaxpass.CertIssued {
		err = vaxpass.ErrNotFound
	}
	if err != nil {
		return failure(p.log(), "qr", err), nil
	}
	png, err := p.cache().get(cert.HC1, p.RenderQR)
	if err != nil {
		return failure(p.log(), "qr", err), nil
	}
	resp := apigw.PNG(png, 300)
	return resp, nil
}

type verifyRequest struct {
	HC1 string `json:"hc1"`
}

func (p *Public) postVerify(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	var v verifyRequest
	if err := apigw.DecodeJSON(req, &v, apigw.DecodeOptions{MaxBytes: maxVerifyBody, DisallowUnknownFields: true}); err != nil {
		return failure(p.log(), "verify", err), nil
	}
	if strings.TrimSpace(v.HC1) == "" {
		return apigw.FieldError(http.StatusBadRequest, "hc1", "required", "hc1 is required"), nil
	}
	return apigw.JSON(http.StatusOK, p.Verifier.Verify(ctx, v.HC1)), nil
}

func (p *Public) getTrustList(ctx context.Context, _ events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	b, err := p.TrustList(ctx)
	if err != nil {
		return failure(p.log(), "trustlist", err), nil
	}
	resp := apigw.Bytes(http.StatusOK, "application/json; charset=utf-8", b)
	resp.Headers["Cache-Control"] = "public, max-age=300"
	return resp, nil
}

func (p *Public) cache() *pngCache {
	p.qrOnce.Do(func() { p.qr = newPNGCache(qrCacheSize) })
	return p.qr
}

func (p *Public) log() *slog.Logger {
	if p.Log != nil {
		return p.Log
	}
	return slog.Default()
}

// pngCache keeps rendered QR images by the hash of their HC1, so a renewed certificate
// (same UVCI, new HC1) is never served its old image. Eviction is by arrival order; the
// cache only saves rendering work, it is never the source of truth.
type pngCache struct {
	mu    sync.Mutex
	max   int
	items map[[32]byte][]byte
	order [][32]byte
}

func newPNGCache(max int) *pngCache {
	return &pngCache{max: max, items: make(map[[32]byte][]byte, max)}
}

func (c *pngCache) get(hc1 string, render func(string) ([]byte, error)) ([]byte, error) {
	k := sha256.Sum256([]byte(hc1))
	c.mu.Lock()
	png, ok := c.items[k]
	c.mu.Unlock()
	if ok {
		return png, nil
	}
	png, err := render(hc1)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.items[k]; !ok {
		if len(c.order) >= c.max {
			delete(c.items, c.order[0])
			c.order = c.order[1:]
		}
		c.items[k] = png
		c.order = append(c.order, k)
	}
	return png, nil
}
