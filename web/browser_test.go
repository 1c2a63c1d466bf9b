package web

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	qrcode "github.com/skip2/go-qrcode"

	"github.com/vaxpass/vaxpass/shared/edge/apigw"
	"github.com/vaxpass/vaxpass/shared/testkit/browser"
)

// The certificate the fake lookup returns for the right details.
const (
	goodID   = "001090012345"
	goodName = "Nguyễn Văn An"
	goodDOB  = "1990-05-17"
	// typedDOB is goodDOB as the citizen types it, as on the ID card.
	typedDOB = "17/05/1990"
	uvci     = "URN:UVCI:01:VN:8GQ2XJ7T4K1P5R9M#K"
	// API Gateway decodes the path before routing, so the QR path carries the UVCI
	// percent-encoded and the UVCI must not contain "/" (see shared/edge/apigw).
	qrPath  = "/v1/passports/URN%3AUVCI%3A01%3AVN%3A8GQ2XJ7T4K1P5R9M%23K/qr.png"
	pdfPath = "/v1/passports/URN%3AUVCI%3A01%3AVN%3A8GQ2XJ7T4K1P5R9M%23K/passport.pdf"
)

var wantFields = map[string]string{
	"full_name":           goodName,
	"date_of_birth":       "17/05/1990",
	"nationality":         "VN",
	"nationality-vi":      "Việt Nam",
	"disease":             "COVID-19",
	"doses_received":      "3",
	"date_of_vaccination": "20/11/2021",
	"dose_number":         "3/3",
	"vaccine":             "SARS-CoV-2 mRNA vaccine",
	"vaccine-vi":          "Vắc xin mRNA phòng SARS-CoV-2",
	"vaccine_product":     "Comirnaty",
	"manufacturer":        "BioNTech Manufacturing GmbH",
	"certificate_id":      uvci,
	"name_icao":           "NGUYEN<<VAN<AN",
	"country":             "VN",
	"country-vi":          "Việt Nam",
	"issuer":              "Ministry of Health of Viet Nam",
	"issuer-vi":           "Bộ Y tế",
	// 17:00 UTC on 30 April is midnight on 1 May in Viet Nam.
	"expires_at": "01/05/2023",
}

// fakeAPI serves the page and a lookup that behaves like the contract: 200 for the right
// details, 404 (with different internal reasons the page must not reveal) otherwise, 400 for
// a malformed ID, 429 for one name. It runs the handlers through apigw, as `vaxpass serve`.
type fakeAPI struct {
	mu      sync.Mutex
	lookups []map[string]string
	qrHits  int
}

func (f *fakeAPI) lookup(_ context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	var body struct {
		IDNumber string `json:"id_number"`
		FullName string `json:"full_name"`
		DOB      string `json:"dob"`
	}
	if err := apigw.DecodeJSON(req, &body, apigw.DecodeOptions{MaxBytes: 4096, DisallowUnknownFields: true}); err != nil {
		return apigw.ErrorResponse(err), nil
	}
	f.mu.Lock()
	f.lookups = append(f.lookups, map[string]string{"id_number": body.IDNumber, "full_name": body.FullName, "dob": body.DOB})
	f.mu.Unlock()

	id := strings.NewReplacer(" ", "", ".", "").Replace(body.IDNumber)
	switch {
	case body.FullName == "Rate Limited":
		return apigw.TooManyRequests(2 * time.Second), nil
	case len(id) != 9 && len(id) != 12 || strings.Trim(id, "0123456789") != "":
		return apigw.FieldError(400, "id_number", "invalid_id", "id_number must be 9 or 12 digits"), nil
	case id != goodID:
		return apigw.Error(404, "not_found", "no such person"), nil
	case body.FullName != goodName || body.DOB != goodDOB && body.DOB != typedDOB:
		return apigw.Error(404, "not_found", "details do not match"), nil
	}
	return apigw.JSON(200, map[string]any{
		"uvci":       uvci,
		"hc1":        "HC1:NCFOXN%TS3DH3ZSUZK+.V0ETD%65NL-AH",
		"qr_png":     qrPath,
		"pdf":        pdfPath,
		"expires_at": "2023-04-30T17:00:00Z",
		"name_icao":  map[string]string{"fnt": "NGUYEN", "gnt": "VAN<AN"},
		"country":    "VN",
		"issuer":     "Ministry of Health of Viet Nam",
		"fields": map[string]any{
			"full_name":           goodName,
			"date_of_birth":       goodDOB,
			"nationality":         "VN",
			"disease":             "COVID-19",
			"doses_received":      3,
			"date_of_vaccination": "2021-11-20",
			"dose_number":         3,
			"total_doses":         3,
			"vaccine":             "SARS-CoV-2 mRNA vaccine",
			"vaccine_product":     "Comirnaty",
			"manufacturer":        "BioNTech Manufacturing GmbH",
			"certificate_id":      uvci,
		},
	}), nil
}

func (f *fakeAPI) qr(_ context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	if req.PathParameters["uvci"] != uvci {
		return apigw.NotFound(), nil
	}
	png, err := qrcode.Encode("HC1:NCFOXN%TS3DH3ZSUZK+.V0ETD%65NL-AH", qrcode.Medium, 296)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	f.mu.Lock()
	f.qrHits++
	f.mu.Unlock()
	return apigw.PNG(png, 0), nil
}

func (f *fakeAPI) lastLookup() map[string]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.lookups) == 0 {
		return nil
	}
	return f.lookups[len(f.lookups)-1]
}

func (f *fakeAPI) lookupCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.lookups)
}

func newFakeServer(t *testing.T) (*httptest.Server, *fakeAPI) {
	fake := &fakeAPI{}
	router := apigw.NewRouter()
	router.Handle("POST /v1/passports/lookup", fake.lookup)
	router.Handle("GET /v1/passports/{uvci}/qr.png", fake.qr)
	mux := http.NewServeMux()
	mux.Handle("/v1/", &apigw.Bridge{Routes: router, Handler: apigw.Recover(nil, router.Serve)})
	mux.Handle("/", Handler())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, fake
}

func fillForm(t *testing.T, ctx context.Context, id, name, dob string) {
	t.Helper()
	browser.Do(t, ctx, "fill the form",
		// Not chromedp.Clear: it resets the value attribute, which a typed-in field ignores.
		chromedp.Evaluate[chromedp.Void](`['id_number','full_name','dob'].forEach(function(id){document.getElementById(id).value='';})`),
		chromedp.SendKeys(chromedp.ID("id_number"), id),
		chromedp.SendKeys(chromedp.ID("full_name"), name),
		chromedp.SendKeys(chromedp.ID("dob"), dob),
		chromedp.Click(chromedp.ID("submit")),
	)
}

func hidden(t *testing.T, ctx context.Context, id string) bool {
	t.Helper()
	return browser.Run(t, ctx, "read #"+id+".hidden", chromedp.Evaluate[bool](fmt.Sprintf(`document.getElementById(%q).hidden`, id)))
}

func TestLookupPageInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	srv, fake := newFakeServer(t)
	dir := browser.ArtifactDir(t, "web")
	ctx := browser.New(t, browser.Options{})
	problems := browser.ConsoleProblems(ctx)

	browser.Do(t, ctx, "open the page",
		chromedp.EmulateViewport(1280, 900),
		chromedp.Navigate(srv.URL+"/"),
		chromedp.WaitVisible(chromedp.ID("id_number")),
	)
	if !hidden(t, ctx, "result") || !hidden(t, ctx, "message") {
		t.Fatal("result or message visible before any lookup")
	}
	browser.Screenshot(t, ctx, dir, "lookup-form.png")

	t.Run("right details show the certificate and its QR code", func(t *testing.T) {
		fillForm(t, ctx, "001 090 012345", goodName, typedDOB)
		browser.Do(t, ctx, "wait for the certificate", chromedp.WaitVisible(chromedp.ID("result")))
		browser.Run(t, ctx, "wait for the QR image", chromedp.Poll[bool](
			`(function(){var q=document.getElementById('qr');return q.complete && q.naturalWidth > 0;})()`,
			chromedp.WithPollingTimeout(30*time.Second)))

		sent := fake.lastLookup()
		if sent["id_number"] != "001 090 012345" || sent["full_name"] != goodName || sent["dob"] != typedDOB {
			t.Errorf("page posted %v", sent)
		}
		for key, want := range wantFields {
			got := browser.Run(t, ctx, "read #field-"+key, chromedp.TextContent(chromedp.ID("field-"+key)))
			if strings.TrimSpace(got) != want {
				t.Errorf("#field-%s shows %q, want %q", key, got, want)
			}
		}
		if src := browser.Run(t, ctx, "qr src", chromedp.Evaluate[string](`document.getElementById('qr').getAttribute('src')`)); src != qrPath {
			t.Errorf("QR src %q", src)
		}
		if href := browser.Run(t, ctx, "pdf href", chromedp.Evaluate[string](`document.getElementById('download').getAttribute('href')`)); href != pdfPath {
			t.Errorf("download href %q", href)
		}
		if !hidden(t, ctx, "report-wrap") {
			t.Error("the report link is shown next to a certificate")
		}
		if fake.qrHits == 0 {
			t.Error("QR image never requested")
		}
		if hidden(t, ctx, "qr") {
			t.Error("QR image hidden")
		}
		browser.Screenshot(t, ctx, dir, "lookup-result.png")

		// Printing shows only the card, with the QR code at a scannable size. The viewport
		// is an A4 page's printable width (180 mm) for the screenshot; mm are absolute.
		browser.Do(t, ctx, "A4 viewport", chromedp.EmulateViewport(680, 900))
		if _, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Media: "print"}); err != nil {
			t.Fatal(err)
		}
		type printLayout struct {
			QRWidth, QRHeight float64
			FormShown         bool
			HeaderShown       bool
			ActionsShown      bool
			CardShown         bool
		}
		layout := browser.Run(t, ctx, "measure print layout", chromedp.Evaluate[printLayout](`(function(){
			var shown = function(id){ var e = document.getElementById(id); return !!e && getComputedStyle(e).display !== 'none'; };
			var r = document.getElementById('qr').getBoundingClientRect();
			return {
				QRWidth: r.width, QRHeight: r.height,
				FormShown: shown('lookup-panel'),
				HeaderShown: getComputedStyle(document.querySelector('.masthead')).display !== 'none',
				ActionsShown: getComputedStyle(document.querySelector('.cert-actions')).display !== 'none',
				CardShown: shown('result')
			};
		})()`))
		// CSS pixels are 1/96 inch.
		diagonal := math.Hypot(layout.QRWidth, layout.QRHeight) * 25.4 / 96
		if diagonal < 35 || diagonal > 60 {
			t.Errorf("printed QR diagonal %.1f mm, want 35–60 mm", diagonal)
		}
		if layout.FormShown || layout.HeaderShown || layout.ActionsShown || !layout.CardShown {
			t.Errorf("print layout %+v: only the certificate card may print", layout)
		}
		browser.Screenshot(t, ctx, dir, "lookup-print.png")
		if _, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{}); err != nil {
			t.Fatal(err)
		}
		// The real print output, as a PDF artefact.
		pdf := browser.Run(t, ctx, "print to PDF", func(ctx context.Context, tgt *chromedp.Target) ([]byte, error) {
			res, err := cdp.Call(ctx, tgt, page.PrintToPDF, page.PrintToPDFParams{PrintBackground: new(true), PreferCSSPageSize: new(true)})
			return res.Data, err
		})
		if len(pdf) < 1000 || string(pdf[:5]) != "%PDF-" {
			t.Errorf("print to PDF gave %d bytes", len(pdf))
		}
		if err := os.WriteFile(filepath.Join(dir, "lookup-print.pdf"), pdf, 0o644); err != nil {
			t.Fatal(err)
		}

		// A phone: one column, nothing wider than the screen.
		browser.Do(t, ctx, "phone viewport", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateScale(2)))
		if over := browser.Run(t, ctx, "horizontal overflow", chromedp.Evaluate[float64](`document.documentElement.scrollWidth - window.innerWidth`)); over > 0 {
			t.Errorf("page is %v px wider than a 390 px phone screen", over)
		}
		browser.Do(t, ctx, "scroll to top", chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`))
		browser.ViewportShot(t, ctx, dir, "lookup-mobile-form.png")
		browser.Do(t, ctx, "scroll to the card", chromedp.Evaluate[chromedp.Void](`document.getElementById('result').scrollIntoView({block:'start'})`))
		browser.ViewportShot(t, ctx, dir, "lookup-mobile-result.png")
		browser.Do(t, ctx, "desktop viewport", chromedp.EmulateViewport(1280, 900))
	})

	t.Run("wrong details and unknown ID give the same neutral message", func(t *testing.T) {
		var texts []string
		for _, c := range []struct{ id, name, dob string }{
			{goodID, goodName, "1991"},           // the registry has the person: details do not match
			{"079203000001", goodName, typedDOB}, // no such person
		} {
			before := fake.lookupCount()
			fillForm(t, ctx, c.id, c.name, c.dob)
			browser.Do(t, ctx, "wait for the message", chromedp.WaitVisible(chromedp.ID("message")))
			if fake.lookupCount() != before+1 {
				t.Fatal("no lookup sent")
			}
			texts = append(texts, browser.Run(t, ctx, "read the message", chromedp.TextContent(chromedp.ID("message"))))
			if !hidden(t, ctx, "result") {
				t.Error("the previous certificate is still shown next to a failed lookup")
			}
			if got := browser.Run(t, ctx, "old name cleared", chromedp.TextContent(chromedp.ID("field-full_name"))); got != "" {
				t.Errorf("previous name still in the page: %q", got)
			}
			if got := browser.Run(t, ctx, "old ICAO name cleared", chromedp.TextContent(chromedp.ID("field-name_icao"))); got != "" {
				t.Errorf("previous ICAO name still in the page: %q", got)
			}
			if hidden(t, ctx, "report-wrap") {
				t.Error("no way to report a missing passport after a failed lookup")
			}
		}
		if texts[0] != texts[1] {
			t.Errorf("the page tells the two failures apart:\n%q\n%q", texts[0], texts[1])
		}
		if !strings.Contains(texts[0], "No certificate matches the details entered") || !strings.Contains(texts[0], "Không tìm thấy chứng nhận") {
			t.Errorf("neutral message %q", texts[0])
		}
		for _, leak := range []string{"not_found", "no such person", "do not match"} {
			if strings.Contains(texts[0], leak) {
				t.Errorf("message shows the server's reason %q", leak)
			}
		}
		browser.Screenshot(t, ctx, dir, "lookup-not-found.png")
	})

	t.Run("field error from the API is shown at the field", func(t *testing.T) {
		fillForm(t, ctx, "12AB", goodName, goodDOB)
		browser.Do(t, ctx, "wait for the field error", chromedp.WaitVisible(chromedp.ID("id_number-error")))
		text := browser.Run(t, ctx, "read the field error", chromedp.TextContent(chromedp.ID("id_number-error")))
		if !strings.Contains(text, "id_number must be 9 or 12 digits") {
			t.Errorf("field error %q", text)
		}
		invalid := browser.Run(t, ctx, "aria-invalid", chromedp.Evaluate[string](`document.getElementById('id_number').getAttribute('aria-invalid')`))
		if invalid != "true" {
			t.Errorf("aria-invalid %q", invalid)
		}
	})

	t.Run("malformed date of birth is caught before sending", func(t *testing.T) {
		before := fake.lookupCount()
		// A two-digit year is never guessed (shared/domain/dose NormalizeDate).
		fillForm(t, ctx, goodID, goodName, "17/05/90")
		browser.Do(t, ctx, "wait for the dob error", chromedp.WaitVisible(chromedp.ID("dob-error")))
		if fake.lookupCount() != before {
			t.Error("a malformed date of birth was sent")
		}
		browser.Screenshot(t, ctx, dir, "lookup-invalid-dob.png")
	})

	t.Run("too many attempts asks to wait", func(t *testing.T) {
		fillForm(t, ctx, goodID, "Rate Limited", goodDOB)
		browser.Do(t, ctx, "wait for the message", chromedp.WaitVisible(chromedp.ID("message")))
		text := browser.Run(t, ctx, "read the message", chromedp.TextContent(chromedp.ID("message")))
		if !strings.Contains(text, "wait 2 seconds") || !strings.Contains(text, "đợi 2 giây") {
			t.Errorf("rate-limit message %q", text)
		}
		if disabled := browser.Run(t, ctx, "submit disabled", chromedp.Evaluate[bool](`document.getElementById('submit').disabled`)); !disabled {
			t.Error("submit still enabled while the client must wait")
		}
	})

	if p := problems(); len(p) > 0 {
		t.Errorf("console errors (CSP violations, script errors):\n%s", strings.Join(p, "\n"))
	}
}
