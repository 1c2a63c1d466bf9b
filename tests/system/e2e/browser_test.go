package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/vaxpass/vaxpass/shared/domain/dose"
	"github.com/vaxpass/vaxpass/shared/domain/vaccine"
	"github.com/vaxpass/vaxpass/shared/edge/passportpage"
	"github.com/vaxpass/vaxpass/shared/hc1/qrscan"
	"github.com/vaxpass/vaxpass/shared/testkit/browser"
	"github.com/vaxpass/vaxpass/shared/testkit/server"
)

// The page helpers follow web/browser_test.go, which drives the same page against a fake
// backend.

func fillForm(t *testing.T, ctx context.Context, id, name, dob string) {
	t.Helper()
	browser.Do(t, ctx, "fill the form",
		chromedp.Evaluate[chromedp.Void](`['id_number','full_name','dob'].forEach(function(id){document.getElementById(id).value='';})`),
		chromedp.SendKeys(chromedp.ID("id_number"), id),
		chromedp.SendKeys(chromedp.ID("full_name"), name),
		chromedp.SendKeys(chromedp.ID("dob"), dob),
		chromedp.Click(chromedp.ID("submit")),
	)
}

func elementHidden(t *testing.T, ctx context.Context, id string) bool {
	t.Helper()
	return browser.Run(t, ctx, "read #"+id+".hidden", chromedp.Evaluate[bool](fmt.Sprintf(`document.getElementById(%q).hidden`, id)))
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
	browser.Find(t) // skips (or fails in CI) before the server is set up
	data := server.ScratchDir(t)
	srv := server.Spawn(t, data, "--demo")
	key := srv.DemoKey(t)
	fac := newClient(t, srv, key)

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
		"date_of_birth":       passportpage.DateVI(query.DOB),
		"nationality":         "VN",
		"disease":             "COVID-19",
		"doses_received":      fmt.Sprint(a.DosesReceived),
		"date_of_vaccination": passportpage.DateVI(a.Certified.VaccinatedOn),
		"dose_number":         fmt.Sprintf("%d/%d", a.Certified.DoseNumber, a.Certified.SeriesDoses),
		"vaccine":             a.Certified.Vaccine.ProphylaxisDisplay,
		"vaccine_product":     a.Certified.Vaccine.ProductDisplay,
		"manufacturer":        a.Certified.Vaccine.ManufacturerDisplay,
		"certificate_id":      cert.UVCI,
		"expires_at":          cert.ExpiresAt.In(vietnam).Format("02/01/2006"),
	}

	dir := browser.ArtifactDir(t, "e2e")
	ctx := browser.New(t, browser.Options{})
	problems := browser.ConsoleProblems(ctx)
	browser.Do(t, ctx, "open the page",
		chromedp.EmulateViewport(1280, 900),
		chromedp.Navigate(srv.URL+"/"),
		chromedp.WaitVisible(chromedp.ID("id_number")),
	)

	t.Run("right details show the certificate and its QR code", func(t *testing.T) {
		fillForm(t, ctx, query.IDNumber, query.FullName, query.DOB)
		browser.Do(t, ctx, "wait for the certificate", chromedp.WaitVisible(chromedp.ID("result")))
		browser.Run(t, ctx, "wait for the QR image", chromedp.Poll[bool](
			`(function(){var q=document.getElementById('qr');return q.complete && q.naturalWidth > 0;})()`,
			chromedp.WithPollingTimeout(browser.StepTimeout)))
		for field, w := range want {
			got := browser.Run(t, ctx, "read #field-"+field, chromedp.TextContent(chromedp.ID("field-"+field)))
			if strings.TrimSpace(got) != w {
				t.Errorf("#field-%s shows %q, want %q", field, got, w)
			}
		}
		if elementHidden(t, ctx, "qr") || !elementHidden(t, ctx, "message") {
			t.Error("QR image hidden, or a message shown next to the certificate")
		}
		// The image the page shows holds a valid certificate of that person.
		src := browser.Run(t, ctx, "qr src", chromedp.Evaluate[string](`document.getElementById('qr').getAttribute('src')`))
		public := newClient(t, srv, "")
		status, png, _ := public.do("GET", src, nil, "")
		if status != http.StatusOK {
			t.Fatalf("GET %s (the page's QR image): status %d", src, status)
		}
		hc1, err := qrscan.DecodeBytes(png)
		if err != nil {
			t.Fatalf("the page's QR image does not decode: %v", err)
		}
		var v verdict
		public.call("POST", "/v1/verify", map[string]string{"hc1": hc1}, http.StatusOK, &v)
		if !v.Valid || len(v.DCC.V) != 1 || v.DCC.V[0].CI != cert.UVCI || v.DCC.DOB != query.DOB {
			t.Errorf("the page's QR code verifies as %+v; want valid, certificate %s", v, cert.UVCI)
		}
		browser.Screenshot(t, ctx, dir, "lookup-real-certificate.png")
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
			browser.Do(t, ctx, "wait for the message", chromedp.WaitVisible(chromedp.ID("message")))
			texts = append(texts, browser.Run(t, ctx, "read the message", chromedp.TextContent(chromedp.ID("message"))))
			if !elementHidden(t, ctx, "result") {
				t.Error("the certificate is still shown next to a failed lookup")
			}
		}
		if texts[0] != texts[1] || !strings.Contains(texts[0], "No certificate matches the details entered") {
			t.Errorf("neutral messages %q and %q", texts[0], texts[1])
		}
		browser.Screenshot(t, ctx, dir, "lookup-real-not-found.png")
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
