package web

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"

	"github.com/vaxpass/vaxpass/shared/domain/dcc"
	uvcigen "github.com/vaxpass/vaxpass/shared/domain/uvci"
	"github.com/vaxpass/vaxpass/shared/domain/vaccine"
	"github.com/vaxpass/vaxpass/shared/domain/vnname"
	"github.com/vaxpass/vaxpass/shared/edge/apigw"
	"github.com/vaxpass/vaxpass/shared/edge/httpapi"
	"github.com/vaxpass/vaxpass/shared/edge/passportpage"
	"github.com/vaxpass/vaxpass/shared/hc1/hcert"
	"github.com/vaxpass/vaxpass/shared/hc1/qr"
	"github.com/vaxpass/vaxpass/shared/hc1/qrscan"
	"github.com/vaxpass/vaxpass/shared/stage/lookup"
	"github.com/vaxpass/vaxpass/shared/testkit/browser"
	"github.com/vaxpass/vaxpass/shared/testkit/pdftool"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// The person of the real certificate, as the registry holds them and as they type it.
const (
	realID       = "001084012345"
	realName     = "Nguyễn Thị Lan"
	realDOB      = "1984-04-15"
	realDOBTyped = "15/04/1984"
)

// certStore is the lookup's storage port holding one certificate.
type certStore struct{ cert vaxpass.Certificate }

func (s certStore) ActiveCertificate(_ context.Context, personID string) (vaxpass.Certificate, error) {
	if personID != s.cert.PersonID {
		return vaxpass.Certificate{}, vaxpass.ErrNotFound
	}
	return s.cert, nil
}

func (s certStore) CertificateByUVCI(_ context.Context, u string) (vaxpass.Certificate, error) {
	if u != s.cert.UVCI {
		return vaxpass.Certificate{}, vaxpass.ErrNotFound
	}
	return s.cert, nil
}

// issue signs a certificate the way the signing stage does (dcc.Build, hcert.Sign, the 11
// fields from the same document), with a throwaway key.
func issue(t *testing.T, hc1Override string) vaxpass.Certificate {
	t.Helper()
	v, err := vaccine.Lookup("PFIZER")
	if err != nil {
		t.Fatal(err)
	}
	ci, err := uvcigen.New(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	dose := vaccine.CertifiedDose{Vaccine: v, DoseNumber: 2, SeriesDoses: 2, VaccinatedOn: "2021-09-02"}
	doc, err := dcc.Build(dcc.Person{FullName: realName, DOB: realDOB}, dose, ci)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := hcert.NewSoftwareSigner(key, []byte("kid12345"))
	if err != nil {
		t.Fatal(err)
	}
	// 20:00 UTC on 4 December is 5 December in Viet Nam: the page shows Viet Nam's day.
	iat, exp := time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC), time.Date(2027, 12, 4, 20, 0, 0, 0, time.UTC)
	hc1, err := hcert.Sign(context.Background(), signer, hcert.Claims{Issuer: dcc.Country, IssuedAt: iat, ExpiresAt: exp}, doc)
	if err != nil {
		t.Fatal(err)
	}
	if hc1Override != "" {
		hc1 = hc1Override
	}
	return vaxpass.Certificate{
		UVCI: ci, PersonID: realID, HC1: hc1, Status: vaxpass.CertIssued, IssuedAt: iat, ExpiresAt: exp,
		NameKey: vnname.Key(realName), DOB: realDOB,
		Fields: vaxpass.Fields{
			FullName: realName, DateOfBirth: realDOB, Nationality: "VN", Disease: "COVID-19", DosesReceived: 2,
			DateOfVaccination: dose.VaccinatedOn, DoseNumber: 2, TotalDoses: 2,
			Vaccine: v.ProphylaxisDisplay, VaccineProduct: v.ProductDisplay, Manufacturer: v.ManufacturerDisplay, CertificateID: ci,
		},
	}
}

// answers keeps the lookup answers the server sent, as the browser received them.
type answers struct {
	mu   sync.Mutex
	last []byte
}

type teeWriter struct {
	http.ResponseWriter
	buf bytes.Buffer
}

func (w *teeWriter) Write(b []byte) (int, error) {
	w.buf.Write(b)
	return w.ResponseWriter.Write(b)
}

func (a *answers) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/passports/lookup" {
			h.ServeHTTP(w, r)
			return
		}
		tw := &teeWriter{ResponseWriter: w}
		h.ServeHTTP(tw, r)
		a.mu.Lock()
		a.last = tw.buf.Bytes()
		a.mu.Unlock()
	})
}

func (a *answers) lastAnswer(t *testing.T) httpapi.LookupAnswer {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	var ans httpapi.LookupAnswer
	if err := json.Unmarshal(a.last, &ans); err != nil {
		t.Fatalf("lookup answer %q: %v", a.last, err)
	}
	return ans
}

// newRealServer serves the page and the public API's real handlers (httpapi.Public: the
// lookup, the QR image, the PDF by passportpage) over the real lookup use case, as
// `vaxpass serve` routes them, with cert in storage.
func newRealServer(t *testing.T, cert vaxpass.Certificate, log *slog.Logger) (*httptest.Server, *answers) {
	t.Helper()
	pub := &httpapi.Public{
		Lookup:    &lookup.Service{Certs: certStore{cert}},
		RenderQR:  func(hc1 string) ([]byte, error) { return qr.PNG(hc1) },
		RenderPDF: passportpage.PDF,
		Now:       time.Now,
		Log:       log,
	}
	router := apigw.NewRouter()
	pub.Routes(router)
	rec := &answers{}
	mux := http.NewServeMux()
	mux.Handle("/v1/", rec.wrap(&apigw.Bridge{Routes: router, Handler: apigw.Recover(nil, router.Serve)}))
	mux.Handle("/", Handler())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, rec
}

// The lookup answer carries what the page shows beyond the 11 fields, read from the HC1;
// an HC1 that cannot be read back still gives the certificate, without them, and the log
// says so without the person's data.
func TestLookupAnswerCarriesThePage(t *testing.T) {
	post := func(srv *httptest.Server) (int, []byte) {
		body := `{"id_number":"` + realID + `","full_name":"` + realName + `","dob":"` + realDOBTyped + `"}`
		res, err := srv.Client().Post(srv.URL+"/v1/passports/lookup", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		return res.StatusCode, b
	}
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))

	cert := issue(t, "")
	srv, _ := newRealServer(t, cert, log)
	status, body := post(srv)
	var ans httpapi.LookupAnswer
	if status != 200 || json.Unmarshal(body, &ans) != nil {
		t.Fatalf("lookup: %d %s", status, body)
	}
	if ans.NameICAO != (httpapi.ICAOName{FNT: "NGUYEN", GNT: "THI<LAN"}) || ans.Country != "VN" || ans.Issuer != dcc.Issuer {
		t.Errorf("answer name_icao %+v country %q issuer %q", ans.NameICAO, ans.Country, ans.Issuer)
	}
	if ans.HC1 != cert.HC1 || ans.PDF != httpapi.PDFPath(cert.UVCI) {
		t.Errorf("answer hc1/pdf %q %q", ans.HC1, ans.PDF)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatal(err)
	}
	if string(raw["name_icao"]) != `{"fnt":"NGUYEN","gnt":"THI<LAN"}` && string(raw["name_icao"]) != `{"fnt":"NGUYEN","gnt":"THI\u003cLAN"}` {
		t.Errorf("name_icao on the wire: %s", raw["name_icao"])
	}
	if logs.Len() != 0 {
		t.Errorf("a good lookup logged: %s", logs.String())
	}

	broken := issue(t, "HC1:NOT-BASE45")
	srv, _ = newRealServer(t, broken, log)
	status, body = post(srv)
	ans = httpapi.LookupAnswer{}
	if status != 200 || json.Unmarshal(body, &ans) != nil {
		t.Fatalf("lookup of an unreadable HC1: %d %s", status, body)
	}
	if ans.NameICAO != (httpapi.ICAOName{}) || ans.Country != "" || ans.Issuer != "" || ans.Fields.FullName != realName {
		t.Errorf("answer of an unreadable HC1: %+v", ans)
	}
	if !strings.Contains(string(body), `"name_icao":{"fnt":"","gnt":""}`) || !strings.Contains(string(body), `"country":""`) {
		t.Errorf("empty page fields not in the answer: %s", body)
	}
	logged := logs.String()
	if !strings.Contains(logged, "lookup answer without the certificate's page") {
		t.Errorf("unreadable HC1 not logged: %q", logged)
	}
	for _, pd := range []string{broken.UVCI, broken.HC1, realID, "Nguy", realDOB} {
		if strings.Contains(logged, pd) {
			t.Errorf("log holds personal data %q: %s", pd, logged)
		}
	}
}

// Acceptance 2 of issue 13: the citizen types their details with the date as DD/MM/YYYY,
// the page shows the certificate in Vietnamese beside English (the ICAO name, country of
// vaccination and issuer included), and the PDF behind the download button, rendered at
// 150 dpi, decodes with a real QR decoder to the HC1 of the lookup and reads the
// certificate ID, the name and the vaccine product. The same page fits a phone.
func TestPassportPageAndPDFInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	cert := issue(t, "")
	srv, rec := newRealServer(t, cert, slog.New(slog.NewTextHandler(io.Discard, nil)))
	dir := browser.ArtifactDir(t, "web")
	ctx := browser.New(t, browser.Options{})
	problems := browser.ConsoleProblems(ctx)

	browser.Do(t, ctx, "open the page",
		chromedp.EmulateViewport(1280, 900),
		chromedp.Navigate(srv.URL+"/"),
		chromedp.WaitVisible(chromedp.ID("id_number")),
	)
	if ph := browser.Run(t, ctx, "dob placeholder", chromedp.Evaluate[string](`document.getElementById('dob').placeholder`)); ph != "DD/MM/YYYY" {
		t.Errorf("date of birth placeholder %q", ph)
	}
	fillForm(t, ctx, "001 084 012345", realName, realDOBTyped)
	browser.Do(t, ctx, "wait for the certificate", chromedp.WaitVisible(chromedp.ID("result")))
	browser.Run(t, ctx, "wait for the QR image", chromedp.Poll[bool](
		`(function(){var q=document.getElementById('qr');return q.complete && q.naturalWidth > 0;})()`,
		chromedp.WithPollingTimeout(browser.StepTimeout)))
	ans := rec.lastAnswer(t)
	if ans.HC1 != cert.HC1 {
		t.Fatal("the lookup answered another certificate")
	}

	text := func(id string) string {
		return strings.TrimSpace(browser.Run(t, ctx, "read #"+id, chromedp.TextContent(chromedp.ID(id))))
	}
	vaccineVI := passportpage.VaccineTypeVI(cert.Fields.Vaccine)
	if vaccineVI == "" {
		t.Fatalf("passportpage has no Vietnamese for %q", cert.Fields.Vaccine)
	}
	for id, want := range map[string]string{
		"field-full_name":           realName,
		"field-name_icao":           "NGUYEN<<THI<LAN",
		"field-date_of_birth":       realDOBTyped,
		"field-nationality":         "VN",
		"field-nationality-vi":      "Việt Nam",
		"field-disease":             "COVID-19",
		"field-doses_received":      "2",
		"field-date_of_vaccination": "02/09/2021",
		"field-dose_number":         "2/2",
		"field-vaccine":             cert.Fields.Vaccine,
		"field-vaccine-vi":          vaccineVI,
		"field-vaccine_product":     "Comirnaty",
		"field-manufacturer":        cert.Fields.Manufacturer,
		"field-country":             "VN",
		"field-country-vi":          "Việt Nam",
		"field-issuer":              dcc.Issuer,
		"field-issuer-vi":           "Bộ Y tế",
		"field-certificate_id":      cert.UVCI,
		"field-expires_at":          "05/12/2027",
	} {
		if got := text(id); got != want {
			t.Errorf("#%s shows %q, want %q", id, got, want)
		}
	}
	// Every row: the Vietnamese label, then the English one.
	labels := browser.Run(t, ctx, "read the labels", chromedp.Evaluate[[]string](
		`Array.prototype.map.call(document.querySelectorAll('#result dt'), function(d){return d.textContent.replace(/\s+/g,' ').trim();})`))
	wantLabels := []string{
		"Họ và tên / Full name", "Họ tên theo chuẩn ICAO (hộ chiếu) / Name, ICAO 9303 (as in the passport)",
		"Ngày sinh / Date of birth", "Quốc tịch / Nationality", "Bệnh được phòng / Disease targeted",
		"Số mũi đã tiêm / Doses received", "Ngày tiêm / Date of vaccination", "Mũi số / Dose number",
		"Loại vắc xin / Vaccine / prophylaxis", "Tên vắc xin / Vaccine product", "Nhà sản xuất / Manufacturer",
		"Nước tiêm chủng / Country of vaccination", "Cơ quan cấp / Certificate issuer",
		"Mã chứng nhận / Certificate identifier", "Có giá trị đến / Valid until",
	}
	if strings.Join(labels, "\n") != strings.Join(wantLabels, "\n") {
		t.Errorf("labels:\n%s\nwant:\n%s", strings.Join(labels, "\n"), strings.Join(wantLabels, "\n"))
	}
	browser.Screenshot(t, ctx, dir, "passport-desktop.png")

	// The download button: a same-origin link to the answer's pdf, marked for download.
	type link struct {
		Href, Download, Text string
		Visible              bool
	}
	dl := browser.Run(t, ctx, "read the download link", chromedp.Evaluate[link](`(function(){
		var a = document.getElementById('download');
		return {Href: a.getAttribute('href'), Download: a.getAttribute('download'),
			Text: a.textContent.replace(/\s+/g,' ').trim(), Visible: !a.hidden && a.getBoundingClientRect().width > 0};
	})()`))
	if dl.Href != ans.PDF || dl.Download == "" || !dl.Visible || dl.Text != "Tải PDF / Download PDF" {
		t.Fatalf("download link %+v; want href %s", dl, ans.PDF)
	}
	downloads := t.TempDir()
	pdf := clickDownload(t, ctx, downloads)

	// The same bytes as the browser fetches them: the link's href on the same server.
	res, err := srv.Client().Get(srv.URL + dl.Href)
	if err != nil {
		t.Fatal(err)
	}
	fetched, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil || res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/pdf" ||
		!strings.HasPrefix(res.Header.Get("Content-Disposition"), "attachment") || !bytes.HasPrefix(fetched, []byte("%PDF-")) {
		t.Fatalf("GET %s: %d %q %q, %d bytes, %v", dl.Href, res.StatusCode, res.Header.Get("Content-Type"), res.Header.Get("Content-Disposition"), len(fetched), err)
	}
	for name, doc := range map[string][]byte{"downloaded": pdf, "fetched": fetched} {
		pages := pdftool.Pages(t, doc, 150)
		if len(pages) != 1 {
			t.Fatalf("%s PDF: %d pages, want 1", name, len(pages))
		}
		got, err := qrscan.Decode(pages[0])
		if err != nil {
			t.Fatalf("%s PDF at 150 dpi: %v", name, err)
		}
		if got != ans.HC1 {
			t.Errorf("%s PDF's QR code is not the lookup's hc1", name)
		}
		txt := pdftool.Text(t, doc)
		for _, want := range []string{cert.UVCI, realName, "Comirnaty", "NGUYEN<<THI<LAN", realDOBTyped} {
			if !strings.Contains(txt, want) {
				t.Errorf("%s PDF text lacks %q:\n%s", name, want, txt)
			}
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "passport.pdf"), pdf, 0o644); err != nil {
		t.Fatal(err)
	}

	// A phone: nothing wider than the screen, the download button within it.
	browser.Do(t, ctx, "phone viewport", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateScale(2)))
	type fit struct {
		Over, DownloadRight, Inner float64
	}
	f := browser.Run(t, ctx, "horizontal overflow", chromedp.Evaluate[fit](`({
		Over: document.documentElement.scrollWidth - window.innerWidth,
		DownloadRight: document.getElementById('download').getBoundingClientRect().right,
		Inner: window.innerWidth})`))
	if f.Over > 0 || f.DownloadRight > f.Inner {
		t.Errorf("phone layout %+v: the page is wider than a 390 px screen", f)
	}
	browser.Do(t, ctx, "scroll to the card", chromedp.Evaluate[chromedp.Void](`document.getElementById('result').scrollIntoView({block:'start'})`))
	browser.ViewportShot(t, ctx, dir, "passport-phone.png")
	browser.Do(t, ctx, "scroll to the download button", chromedp.Evaluate[chromedp.Void](`document.getElementById('download').scrollIntoView({block:'end'})`))
	browser.ViewportShot(t, ctx, dir, "passport-phone-download.png")
	browser.Screenshot(t, ctx, dir, "passport-phone-full.png")

	// Not found, on the phone: the neutral message and the way to report.
	fillForm(t, ctx, "079203000001", realName, realDOBTyped)
	browser.Do(t, ctx, "wait for the message", chromedp.WaitVisible(chromedp.ID("message")), chromedp.WaitVisible(chromedp.ID("report")))
	if msg := text("message"); !strings.Contains(msg, "Không tìm thấy chứng nhận") || !strings.Contains(msg, "No certificate matches") {
		t.Errorf("not-found message %q", msg)
	}
	report := browser.Run(t, ctx, "read the report link", chromedp.Evaluate[link](`(function(){
		var a = document.getElementById('report');
		return {Href: a.getAttribute('href'), Text: a.textContent.replace(/\s+/g,' ').trim(), Visible: a.getBoundingClientRect().width > 0};
	})()`))
	if report.Href != "/report" || report.Text != "Báo cáo thiếu hoặc sai / Report a missing or wrong passport" || !report.Visible {
		t.Errorf("report link %+v", report)
	}
	if !hidden(t, ctx, "result") || !hidden(t, ctx, "download") {
		t.Error("the certificate or its download is still shown after a failed lookup")
	}
	if over := browser.Run(t, ctx, "horizontal overflow", chromedp.Evaluate[float64](`document.documentElement.scrollWidth - window.innerWidth`)); over > 0 {
		t.Errorf("not-found page is %v px wider than a 390 px phone screen", over)
	}
	browser.Do(t, ctx, "scroll to the message", chromedp.Evaluate[chromedp.Void](`document.getElementById('report').scrollIntoView({block:'center'})`))
	browser.ViewportShot(t, ctx, dir, "passport-phone-not-found.png")

	if p := problems(); len(p) > 0 {
		t.Errorf("console errors:\n%s", strings.Join(p, "\n"))
	}
}

// clickDownload clicks the download button with the browser saving downloads in dir, and
// returns the file it saved.
func clickDownload(t *testing.T, ctx context.Context, dir string) []byte {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, browser.StepTimeout)
	defer cancel()
	progress := chromedp.Events(sctx, cdpbrowser.DownloadProgress)
	browser.Do(t, ctx, "click the download button",
		func(ctx context.Context, _ *chromedp.Target) (chromedp.Void, error) {
			_, err := chromedp.Call(ctx, cdpbrowser.SetDownloadBehavior, cdpbrowser.SetDownloadBehaviorParams{
				Behavior: cdpbrowser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: dir, EventsEnabled: new(true),
			})
			return chromedp.Void{}, err
		},
		chromedp.Click(chromedp.ID("download")),
	)
	for ev, err := range progress {
		if err != nil {
			t.Fatalf("waiting for the download: %v", err)
		}
		switch ev.State {
		case cdpbrowser.DownloadProgressStateCompleted:
			b, err := os.ReadFile(filepath.Join(dir, ev.GUID))
			if err != nil {
				t.Fatal(err)
			}
			return b
		case cdpbrowser.DownloadProgressStateCanceled:
			t.Fatal("the browser cancelled the download")
		}
	}
	t.Fatal("no download finished")
	return nil
}
