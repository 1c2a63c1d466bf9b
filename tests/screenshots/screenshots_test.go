// Package screenshots makes the README's screenshots (`make screenshots`): a demo server
// in a scratch data directory, its sample upload matched and signed, then headless
// Chromium looks the demo person up on the citizens' page (phone and desktop), the
// passport's PDF is rendered with Poppler, and the ops dashboard is shown with an ops
// key, drilled down to a commune. The PNGs are written to $VAXPASS_SCREENSHOTS (the
// make target: docs/screenshots); without it the test is skipped.
package screenshots

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"

	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/stage/stats"
	"github.com/vaxpass/vaxpass/shared/testkit/browser"
	"github.com/vaxpass/vaxpass/shared/testkit/cli"
	"github.com/vaxpass/vaxpass/shared/testkit/pdftool"
	"github.com/vaxpass/vaxpass/shared/testkit/server"
)

// EnvScreenshots names the directory the screenshots are written to.
const EnvScreenshots = "VAXPASS_SCREENSHOTS"

// patience bounds each wait for the background work (matching, signing).
const patience = 3 * time.Minute

func TestScreenshots(t *testing.T) {
	out := os.Getenv(EnvScreenshots)
	if out == "" {
		t.Skipf("$%s names no directory: nothing to make", EnvScreenshots)
	}
	if !filepath.IsAbs(out) {
		out = filepath.Join(cli.ModuleRoot(t), out)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	browser.Find(t)

	data := server.ScratchDir(t)
	srv := server.Spawn(t, data, "--demo")
	fac := srv.Client(srv.DemoKey(t))
	opsKey := strings.TrimSpace(cli.Must(t, "ops", "key", "--actor", "screenshots", "--data", data).Stdout)
	ops := srv.Client(opsKey)

	// The demo's sample upload, matched.
	demo := filepath.Join(data, "demo")
	var upload struct {
		Records []json.RawMessage `json:"records"`
	}
	readJSON(t, filepath.Join(demo, "doses.json"), &upload)
	var person struct {
		IDNumber string `json:"id_number"`
		FullName string `json:"full_name"`
		DOB      string `json:"dob"`
	}
	readJSON(t, filepath.Join(demo, "lookup.json"), &person)
	fac.Expect(t, http.MethodPost, "/v1/doses", upload, http.StatusOK, nil)
	waitFor(t, "the upload matched", func() (bool, string) {
		var snap stats.Snapshot
		ops.Expect(t, http.MethodGet, "/v1/stats", nil, http.StatusOK, &snap)
		return snap.Total.Doses == len(upload.Records) && snap.Total.ByStatus["PENDING"] == 0, fmt.Sprintf("%+v", snap.Total.ByStatus)
	})
	// Signed: the facility's run, then central signing in the background.
	fac.Sign(t, patience)
	var found struct {
		PDF string `json:"pdf"`
	}
	waitFor(t, "the demo person's passport", func() (bool, string) {
		r := srv.Client("").Call(t, http.MethodPost, "/v1/passports/lookup", person)
		if r.Status != http.StatusOK {
			return false, r.String()
		}
		return json.Unmarshal(r.Body, &found) == nil && found.PDF != "", r.String()
	})

	// The citizens' page: the person types their details as on their card (DD/MM/YYYY).
	dob := person.DOB
	if d, err := time.Parse(time.DateOnly, dob); err == nil {
		dob = d.Format("02/01/2006")
	}
	lookup := func(width, height int64, mobile bool) (ctx context.Context) {
		ctx = browser.New(t, browser.Options{Width: int(width), Height: int(height)})
		browser.Do(t, ctx, "open the page",
			emulate(width, height, mobile),
			chromedp.Navigate(srv.URL+"/"),
			chromedp.WaitVisible(chromedp.ID("id_number")),
			chromedp.SendKeys(chromedp.ID("id_number"), person.IDNumber),
			chromedp.SendKeys(chromedp.ID("full_name"), person.FullName),
			chromedp.SendKeys(chromedp.ID("dob"), dob),
			chromedp.Click(chromedp.ID("submit")),
			chromedp.WaitVisible(chromedp.ID("result")),
		)
		browser.Run(t, ctx, "wait for the QR image", chromedp.Poll[bool](
			`(function(){var q=document.getElementById('qr');return !!q && q.complete && q.naturalWidth > 0;})()`,
			chromedp.WithPollingTimeout(browser.StepTimeout)))
		return ctx
	}
	phone := lookup(390, 844, true)
	browser.Do(t, phone, "show the passport", chromedp.Evaluate[chromedp.Void](`document.getElementById('result').scrollIntoView({block:'start'})`))
	browser.ViewportShot(t, phone, out, "lookup-phone.png")
	desktop := lookup(1280, 900, false)
	browser.Do(t, desktop, "show the passport", chromedp.Evaluate[chromedp.Void](
		`window.scrollTo(0, Math.max(0, document.getElementById('result').getBoundingClientRect().top + window.scrollY - 24))`))
	browser.ViewportShot(t, desktop, out, "lookup-desktop.png")

	// The passport's PDF, first page at 100 dpi.
	r := srv.Client("").Call(t, http.MethodGet, found.PDF, nil)
	if r.Status != http.StatusOK || !bytes.HasPrefix(r.Body, []byte("%PDF")) {
		t.Fatalf("GET %s: %s", found.PDF, r.String())
	}
	pages := pdftool.Pages(t, r.Body, 100)
	var buf bytes.Buffer
	if err := (&png.Encoder{CompressionLevel: png.BestCompression}).Encode(&buf, pages[0]); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(out, "passport-pdf.png"), buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}

	// The ops dashboard: signed in, the province with the most records to follow up
	// opened, and its commune with the most picked.
	var snap stats.Snapshot
	ops.Expect(t, http.MethodGet, "/v1/stats", nil, http.StatusOK, &snap)
	province := ""
	for i, most := 0, -1; i < len(snap.Provinces); i++ {
		if p := snap.Provinces[i]; p.Code != stats.UnknownProvince && attention(p.ByStatus) > most {
			province, most = p.Code, attention(p.ByStatus)
		}
	}
	ops.Expect(t, http.MethodGet, "/v1/stats?province="+province, nil, http.StatusOK, &snap)
	if snap.Communes == nil || len(snap.Communes.Communes) == 0 {
		t.Fatalf("province %s: no communes in %+v", province, snap.Communes)
	}
	commune := snap.Communes.Communes[0]
	for _, c := range snap.Communes.Communes {
		if attention(c.ByStatus) > attention(commune.ByStatus) {
			commune = c
		}
	}
	dash := browser.New(t, browser.Options{Width: 1280, Height: 900})
	browser.Do(t, dash, "sign in to the dashboard",
		emulate(1280, 900, false),
		chromedp.Navigate(srv.URL+"/ops"),
		chromedp.WaitVisible(chromedp.ID("key")),
		chromedp.SendKeys(chromedp.ID("key"), opsKey),
		chromedp.Click(chromedp.ID("signin")),
		chromedp.WaitVisible(chromedp.ID("dashboard")),
		chromedp.Click(chromedp.CSS(`#provinces tbody tr[data-key="`+province+`"]`)),
		chromedp.WaitVisible(chromedp.ID("communes-card")),
		chromedp.Click(chromedp.CSS(`#communes tbody tr[data-key="`+commune.Code+`"]`)),
		chromedp.WaitVisible(chromedp.ID("actions-card")),
		chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`),
		// The pointer off the chart, whose bars darken under it.
		chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, 1, 1),
	)
	shown := browser.Run(t, dash, "count the commune rows", chromedp.Evaluate[int](`document.querySelectorAll('#communes tbody tr.pick').length`))
	if shown != len(snap.Communes.Communes) {
		t.Errorf("the page shows %d communes of %s, the API %d", shown, province, len(snap.Communes.Communes))
	}
	if sel := browser.Run(t, dash, "read the selector", chromedp.Evaluate[string](`document.getElementById('act-selector').value`)); !strings.Contains(sel, `"`+commune.Code+`"`) {
		t.Errorf("the reprocessing selector does not name commune %s: %s", commune.Code, sel)
	}
	browser.Screenshot(t, dash, out, "dashboard.png")
	for _, name := range []string{"lookup-phone.png", "lookup-desktop.png", "passport-pdf.png", "dashboard.png"} {
		if st, err := os.Stat(filepath.Join(out, name)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", name, err)
		} else {
			t.Logf("%s: %d KB", name, st.Size()/1024)
		}
	}
}

// emulate sets the viewport: a phone's (mobile, touch) or a desktop's, at scale 1 so that
// the image is the viewport's size.
func emulate(width, height int64, mobile bool) chromedp.Action[chromedp.Void] {
	if mobile {
		return chromedp.EmulateViewport(width, height, chromedp.EmulateMobile, chromedp.EmulateScale(1))
	}
	return chromedp.EmulateViewport(width, height, chromedp.EmulateScale(1))
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// waitFor polls cond until it holds, failing after patience with its last word.
func waitFor(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %s: %s", what, patience, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// attention counts the records a clerk has to look at.
func attention(by map[match.Status]int) int {
	return by[match.Mismatch] + by[match.NotFound] + by[match.InvalidID] + by[match.NoID]
}
