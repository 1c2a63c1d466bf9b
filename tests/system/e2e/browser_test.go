package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/vaxpass/vaxpass/shared/domain/dose"
	"github.com/vaxpass/vaxpass/shared/domain/vaccine"
	"github.com/vaxpass/vaxpass/shared/hc1/qr"
)

// The browser helpers follow web/browser_test.go (H7), which drives the same page against
// a fake backend.

// findChromium returns a Chromium or Chrome binary, or skips the test.
func findChromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("VAXPASS_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no chromium binary found (install Debian's chromium, or set VAXPASS_CHROMIUM); the browser test needs one")
	return ""
}

// artifactDir is $VAXPASS_ARTIFACTS/e2e, or artifacts/e2e in the repository (gitignored).
func artifactDir(t *testing.T) string {
	t.Helper()
	base := os.Getenv("VAXPASS_ARTIFACTS")
	if base == "" {
		base = filepath.Join(repoRoot, "artifacts")
	}
	dir := filepath.Join(base, "e2e")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func newBrowser(t *testing.T, chromium string) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("lang", "vi-VN"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	// A bound on a hung browser, not a speed check.
	ctx, cancelTimeout := context.WithTimeout(context.Background(), 3*time.Minute)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	browserCtx, cancelBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(func() { cancelBrowser(); cancelAlloc(); cancelTimeout() })
	if err := chromedp.Do(browserCtx); err != nil {
		t.Fatalf("start %s: %v", chromium, err)
	}
	return browserCtx
}

// consoleProblems collects console errors and exceptions of the page, apart from the
// browser logging each non-2xx API answer (which the test provokes on purpose).
func consoleProblems(ctx context.Context) func() []string {
	var mu sync.Mutex
	var problems []string
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Source == "network" || (m.Type != chromedp.ConsoleError && m.Type != chromedp.ConsoleException) {
				continue
			}
			mu.Lock()
			problems = append(problems, fmt.Sprintf("%s %s: %s", m.Type, m.Source, m.Text))
			mu.Unlock()
		}
	}()
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), problems...)
	}
}

// stepTimeout bounds one browser step so a page that never shows what a step waits for
// fails quickly; it is not a speed check.
const stepTimeout = 30 * time.Second

func browserDo(t *testing.T, ctx context.Context, step string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", step, err)
	}
}

func browserRun[T any](t *testing.T, ctx context.Context, step string, action chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, action)
	if err != nil {
		t.Fatalf("%s: %v", step, err)
	}
	return v
}

func screenshot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	png := browserRun(t, ctx, "screenshot "+name, chromedp.FullScreenshot(100))
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", p)
}

func fillForm(t *testing.T, ctx context.Context, id, name, dob string) {
	t.Helper()
	browserDo(t, ctx, "fill the form",
		chromedp.Evaluate[chromedp.Void](`['id_number','full_name','dob'].forEach(function(id){document.getElementById(id).value='';})`),
		chromedp.SendKeys(chromedp.ID("id_number"), id),
		chromedp.SendKeys(chromedp.ID("full_name"), name),
		chromedp.SendKeys(chromedp.ID("dob"), dob),
		chromedp.Click(chromedp.ID("submit")),
	)
}

func elementHidden(t *testing.T, ctx context.Context, id string) bool {
	t.Helper()
	return browserRun(t, ctx, "read #"+id+".hidden", chromedp.Evaluate[bool](fmt.Sprintf(`document.getElementById(%q).hidden`, id)))
}

// vietnam is Viet Nam's time zone (UTC+7, no daylight saving), where the page shows dates.
var vietnam = time.FixedZone("ICT", 7*3600)

// TestLookupPage drives the citizen lookup page in headless Chromium against a real
// server (`vaxpass serve --demo`): the demo's sample upload is sent, matched and signed,
// and the person of the demo's sample lookup is looked up by typing their details.
func TestLookupPage(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	chromium := findChromium(t)
	data := dataRoot(t)
	srv := startServer(t, data, "--demo")
	var key string
	waitFor(t, "the demo's API key on stdout", 10*time.Second, func() (bool, string) {
		key = strings.TrimSpace(srv.stdout.String())
		return strings.HasPrefix(key, "vxp_"), fmt.Sprintf("stdout %q", key)
	})
	fac := srv.client(key)

	// The demo's sample upload and lookup.
	demo := filepath.Join(data, "demo")
	var upload struct {
		Records []json.RawMessage `json:"records"`
	}
	readJSONFile(t, filepath.Join(demo, "doses.json"), &upload)
	var query struct {
		IDNumber string `json:"id_number"`
		FullName string `json:"full_name"`
		DOB      string `json:"dob"`
	}
	readJSONFile(t, filepath.Join(demo, "lookup.json"), &query)
	if rep := fac.upload(upload.Records); rep.Accepted != len(upload.Records) {
		t.Fatalf("demo upload: %d of %d accepted", rep.Accepted, len(upload.Records))
	}
	waitMatched(t, fac, len(upload.Records), 2*time.Minute)

	// What the certificate must say, from the person's doses in the upload.
	var mine []string
	var doses []vaccine.Dose
	for _, raw := range upload.Records {
		var r dose.Record
		if err := json.Unmarshal(raw, &r); err != nil {
			t.Fatal(err)
		}
		if r.IDNumber == query.IDNumber {
			mine = append(mine, r.SourceID)
			doses = append(doses, vaccine.Dose{Vaccine: vaccine.Code(r.Vaccine), DoseNumber: r.DoseNumber, VaccinatedOn: r.VaccinatedOn})
		}
	}
	a, err := vaccine.Assess(doses)
	if err != nil || !a.Eligible {
		t.Fatalf("the demo's lookup person is not eligible by their doses in doses.json: %+v, %v", a, err)
	}
	fac.call("POST", "/v1/signatures", nil, http.StatusOK, nil)
	var cert certView
	waitFor(t, "the demo person's certificate", 2*time.Minute, func() (bool, string) {
		v := fac.dose(mine[0])
		if v.Certificate == nil {
			return false, "no certificate yet"
		}
		cert = *v.Certificate
		return true, ""
	})
	want := map[string]string{
		"full_name":           query.FullName,
		"date_of_birth":       query.DOB,
		"nationality":         "VN",
		"disease":             "COVID-19",
		"doses_received":      fmt.Sprint(a.DosesReceived),
		"date_of_vaccination": a.Certified.VaccinatedOn,
		"dose_number":         fmt.Sprintf("%d/%d", a.Certified.DoseNumber, a.Certified.SeriesDoses),
		"vaccine":             a.Certified.Vaccine.ProphylaxisDisplay,
		"vaccine_product":     a.Certified.Vaccine.ProductDisplay,
		"manufacturer":        a.Certified.Vaccine.ManufacturerDisplay,
		"certificate_id":      cert.UVCI,
		"expires_at":          cert.ExpiresAt.In(vietnam).Format(time.DateOnly),
	}

	dir := artifactDir(t)
	ctx := newBrowser(t, chromium)
	problems := consoleProblems(ctx)
	browserDo(t, ctx, "open the page",
		chromedp.EmulateViewport(1280, 900),
		chromedp.Navigate(srv.base+"/"),
		chromedp.WaitVisible(chromedp.ID("id_number")),
	)

	t.Run("right details show the certificate and its QR code", func(t *testing.T) {
		fillForm(t, ctx, query.IDNumber, query.FullName, query.DOB)
		browserDo(t, ctx, "wait for the certificate", chromedp.WaitVisible(chromedp.ID("result")))
		browserRun(t, ctx, "wait for the QR image", chromedp.Poll[bool](
			`(function(){var q=document.getElementById('qr');return q.complete && q.naturalWidth > 0;})()`,
			chromedp.WithPollingTimeout(stepTimeout)))
		for field, w := range want {
			got := browserRun(t, ctx, "read #field-"+field, chromedp.TextContent(chromedp.ID("field-"+field)))
			if strings.TrimSpace(got) != w {
				t.Errorf("#field-%s shows %q, want %q", field, got, w)
			}
		}
		if elementHidden(t, ctx, "qr") || !elementHidden(t, ctx, "message") {
			t.Error("QR image hidden, or a message shown next to the certificate")
		}
		// The image the page shows holds a valid certificate of that person.
		src := browserRun(t, ctx, "qr src", chromedp.Evaluate[string](`document.getElementById('qr').getAttribute('src')`))
		public := srv.client("")
		status, png, _ := public.do("GET", src, nil, "")
		if status != http.StatusOK {
			t.Fatalf("GET %s (the page's QR image): status %d", src, status)
		}
		hc1, err := qr.DecodeBytes(png)
		if err != nil {
			t.Fatalf("the page's QR image does not decode: %v", err)
		}
		var v verdict
		public.call("POST", "/v1/verify", map[string]string{"hc1": hc1}, http.StatusOK, &v)
		if !v.Valid || len(v.DCC.V) != 1 || v.DCC.V[0].CI != cert.UVCI || v.DCC.DOB != query.DOB {
			t.Errorf("the page's QR code verifies as %+v; want valid, certificate %s", v, cert.UVCI)
		}
		screenshot(t, ctx, dir, "lookup-real-certificate.png")
	})

	t.Run("wrong details show the neutral message", func(t *testing.T) {
		registry := string(readFile(t, filepath.Join(demo, "registry.csv")))
		unknownID := query.IDNumber
		for n := 0; strings.Contains(registry, "\n"+unknownID+","); n++ {
			unknownID = fmt.Sprintf("%s%06d", query.IDNumber[:6], (n*7919+4242)%1000000)
		}
		var texts []string
		for _, c := range []struct{ id, name, dob string }{
			{query.IDNumber, "Trần Thị Khác Tên", query.DOB}, // the person exists: details do not match
			{unknownID, query.FullName, query.DOB},           // no such person in the registry
		} {
			fillForm(t, ctx, c.id, c.name, c.dob)
			browserDo(t, ctx, "wait for the message", chromedp.WaitVisible(chromedp.ID("message")))
			texts = append(texts, browserRun(t, ctx, "read the message", chromedp.TextContent(chromedp.ID("message"))))
			if !elementHidden(t, ctx, "result") {
				t.Error("the certificate is still shown next to a failed lookup")
			}
		}
		if texts[0] != texts[1] || !strings.Contains(texts[0], "No certificate matches the details entered") {
			t.Errorf("neutral messages %q and %q", texts[0], texts[1])
		}
		screenshot(t, ctx, dir, "lookup-real-not-found.png")
	})

	if p := problems(); len(p) > 0 {
		t.Errorf("console errors:\n%s", strings.Join(p, "\n"))
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func readJSONFile(t *testing.T, path string, v any) {
	t.Helper()
	b := readFile(t, path)
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
