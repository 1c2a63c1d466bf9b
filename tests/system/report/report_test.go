// Package report is acceptance 4 of issue 13: a citizen's report made on the page reaches
// the right commune's worklist, is corrected there, and the person's passport is then
// found by the same lookup.
package report

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/vaxpass/vaxpass/shared/domain/access"
	"github.com/vaxpass/vaxpass/shared/domain/dose"
	"github.com/vaxpass/vaxpass/shared/stage/lookup"
	"github.com/vaxpass/vaxpass/shared/testkit/browser"
	"github.com/vaxpass/vaxpass/shared/testkit/server"
	"github.com/vaxpass/vaxpass/shared/wire/local"
)

// patience bounds each wait on the pipeline (matching, signing, issuing); not a speed check.
const patience = 2 * time.Minute

// TestReportReachesTheCommuneAndResolves: the demo's fully vaccinated person is uploaded
// with a wrong ID number, so their lookup finds nothing. They report on /report with their
// right details; the clerk of their commune sees the report and the record, corrects the
// record's ID number (PATCH), the record is matched VERIFIED, the facility signs, the
// certificate is issued, the lookup page finds the passport with the same details, and
// the report's status is resolved, on the page and through the API.
func TestReportReachesTheCommuneAndResolves(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	browser.Find(t) // skips (or fails in CI) before the system is set up
	ctx := context.Background()
	srv := server.Open(t, server.Options{
		Options: local.Options{FacilitySignEvery: -1, PollInterval: 20 * time.Millisecond},
		Demo:    true, NoSync: true,
	})
	fac := srv.Client(srv.FacilityKey)
	public := srv.Client("")

	var q lookup.Query
	readJSON(t, filepath.Join(srv.Demo.Dir, "lookup.json"), &q)
	var demo struct {
		Records []dose.Record `json:"records"`
	}
	readJSON(t, filepath.Join(srv.Demo.Dir, "doses.json"), &demo)

	// The person's doses, sent with a wrong ID number (another serial: the same province,
	// century and birth year, so the number itself is well formed).
	rightID := q.IDNumber
	wrongID := rightID[:len(rightID)-4] + flip(rightID[len(rightID)-4:])
	var mine []dose.Record
	commune := ""
	for _, r := range demo.Records {
		if r.IDNumber != rightID {
			continue
		}
		if commune == "" {
			commune = r.CommuneCode
		}
		r.IDNumber = wrongID
		r.CommuneCode = commune
		mine = append(mine, r)
	}
	if len(mine) == 0 {
		t.Fatal("lookup.json's person has no record in doses.json")
	}
	if access.CheckSubject(access.Clerk, commune) != nil {
		// The demo's records may lack a commune: the person's commune is then this one.
		commune = "00101"
		for i := range mine {
			mine[i].CommuneCode = commune
		}
	}
	gender, dob := mine[0].Gender, q.DOB
	if len(dob) != len("2006-01-02") {
		t.Fatalf("the demo person's date of birth %q is not a full date", dob)
	}
	typedDOB := dob[8:10] + "/" + dob[5:7] + "/" + dob[0:4]
	var up struct{ Accepted int }
	fac.Expect(t, "POST", "/v1/doses", map[string]any{"records": mine}, http.StatusOK, &up)
	if up.Accepted != len(mine) {
		t.Fatalf("upload: %d of %d accepted", up.Accepted, len(mine))
	}
	wrongStatus := ""
	waitFor(t, "the wrong-ID records to be matched", func() bool {
		for _, r := range mine {
			if wrongStatus = status(t, fac, r.SourceID); wrongStatus == "PENDING" {
				return false
			}
		}
		return true
	})
	if wrongStatus != "NOT_FOUND" && wrongStatus != "MISMATCH" {
		t.Fatalf("a record with a wrong ID number matched %s", wrongStatus)
	}
	public.Expect(t, "POST", "/v1/passports/lookup", q, http.StatusNotFound, nil)

	// The citizen reports on the page, typing as on their ID card.
	dir := browser.ArtifactDir(t, "report")
	bctx := browser.New(t, browser.Options{})
	problems := browser.ConsoleProblems(bctx)
	vi := map[string]string{dose.Male: "Nam", dose.Female: "Nữ"}[gender]
	browser.Do(t, bctx, "open the report page",
		chromedp.EmulateViewport(1280, 900),
		chromedp.Navigate(srv.URL+"/report"),
		chromedp.WaitVisible(chromedp.ID("id_number")),
		chromedp.SendKeys(chromedp.ID("id_number"), rightID),
		chromedp.SendKeys(chromedp.ID("full_name"), q.FullName),
		chromedp.SendKeys(chromedp.ID("dob"), typedDOB),
		chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.getElementById('gender').value=%q`, vi)),
		chromedp.SendKeys(chromedp.ID("facility_id"), local.DemoFacility),
		chromedp.SendKeys(chromedp.ID("commune_code"), commune),
		chromedp.SendKeys(chromedp.ID("phone"), "0912 345 678"),
		chromedp.SendKeys(chromedp.ID("note"), "Tra cứu không thấy hộ chiếu"),
	)
	browser.Screenshot(t, bctx, dir, "report-form.png")
	browser.Do(t, bctx, "send the report",
		chromedp.Click(chromedp.ID("submit")),
		chromedp.WaitVisible(chromedp.ID("receipt")),
	)
	ref := strings.TrimSpace(browser.Run(t, bctx, "read the reference", chromedp.TextContent(chromedp.ID("reference"))))
	if got := pageStatus(t, bctx); got != "received" {
		t.Fatalf("the page shows status %q after sending, want received", got)
	}
	browser.Screenshot(t, bctx, dir, "report-received.png")

	// The clerk of the commune sees the report, and the record it is about.
	clerkKey, _, err := srv.Local.Sys.NewKey(ctx, access.Clerk, commune)
	if err != nil {
		t.Fatal(err)
	}
	clerk := srv.Client(clerkKey)
	var reports struct {
		Reports []struct {
			Reference  string `json:"reference"`
			Status     string `json:"status"`
			FacilityID string `json:"facility_id"`
			IDNumber   string `json:"id_number"`
			FullName   string `json:"full_name"`
			DOB        string `json:"dob"`
			Phone      string `json:"phone"`
		} `json:"reports"`
	}
	clerk.Expect(t, "GET", "/v1/reports", nil, http.StatusOK, &reports)
	i := slices.IndexFunc(reports.Reports, func(r struct {
		Reference  string `json:"reference"`
		Status     string `json:"status"`
		FacilityID string `json:"facility_id"`
		IDNumber   string `json:"id_number"`
		FullName   string `json:"full_name"`
		DOB        string `json:"dob"`
		Phone      string `json:"phone"`
	}) bool {
		return r.Reference == ref
	})
	if i < 0 {
		t.Fatalf("the clerk's reports %+v lack %s", reports.Reports, ref)
	}
	rep := reports.Reports[i]
	if rep.IDNumber != rightID || rep.FullName != q.FullName || rep.DOB != dob || rep.FacilityID != local.DemoFacility || rep.Status != "received" || rep.Phone == "" {
		t.Fatalf("the clerk sees the report as %+v", rep)
	}
	var worklist struct {
		Records []struct {
			FacilityID string `json:"facility_id"`
			SourceID   string `json:"source_id"`
			FullName   string `json:"full_name"`
			IDNumber   string `json:"id_number"`
		} `json:"records"`
	}
	// The report is on the commune's worklist too, as a row of its own.
	clerk.Expect(t, "GET", "/v1/worklist?status=REPORTED", nil, http.StatusOK, &worklist)
	if len(worklist.Records) != 1 || worklist.Records[0].SourceID != "report:"+ref || worklist.Records[0].IDNumber != rightID ||
		worklist.Records[0].FacilityID != local.DemoFacility {
		t.Fatalf("the commune's REPORTED worklist: %+v", worklist.Records)
	}
	worklist.Records = nil
	clerk.Expect(t, "GET", "/v1/worklist?status="+wrongStatus, nil, http.StatusOK, &worklist)
	var toFix []string
	for _, r := range worklist.Records {
		// The clerk finds the record the report is about: same facility and name.
		if r.FacilityID == rep.FacilityID && r.FullName == rep.FullName && r.IDNumber == wrongID {
			toFix = append(toFix, r.SourceID)
		}
	}
	if len(toFix) != len(mine) {
		t.Fatalf("the clerk's %s worklist has %d of the person's %d records: %+v", wrongStatus, len(toFix), len(mine), worklist.Records)
	}

	// The clerk corrects the records with the reported ID number.
	for _, sid := range toFix {
		clerk.Expect(t, "PATCH", "/v1/doses/"+url.PathEscape(sid)+"?facility_id="+url.QueryEscape(rep.FacilityID),
			map[string]string{"id_number": rep.IDNumber}, http.StatusOK, nil)
	}
	waitFor(t, "the corrected records to be VERIFIED", func() bool {
		for _, sid := range toFix {
			if s := status(t, fac, sid); s != "VERIFIED" {
				if s != "PENDING" {
					t.Fatalf("corrected record %s matched %s", sid, s)
				}
				return false
			}
		}
		return true
	})
	// The report alone made nothing: no certificate before the facility signs.
	public.Expect(t, "POST", "/v1/passports/lookup", q, http.StatusNotFound, nil)
	if s := reportStatus(t, public, ref); s != "received" {
		t.Fatalf("report status %q before the certificate, want received", s)
	}
	fac.Sign(t, patience)
	waitFor(t, "the certificate", func() bool {
		return public.Call(t, "POST", "/v1/passports/lookup", q).Status == http.StatusOK
	})
	var found struct {
		UVCI string `json:"uvci"`
	}
	public.Expect(t, "POST", "/v1/passports/lookup", q, http.StatusOK, &found)

	// The same lookup, on the page, finds the passport.
	browser.Do(t, bctx, "look up on the page",
		chromedp.Navigate(srv.URL+"/"),
		chromedp.WaitVisible(chromedp.ID("id_number")),
		chromedp.SendKeys(chromedp.ID("id_number"), rightID),
		chromedp.SendKeys(chromedp.ID("full_name"), q.FullName),
		chromedp.SendKeys(chromedp.ID("dob"), typedDOB),
		chromedp.Click(chromedp.ID("submit")),
		chromedp.WaitVisible(chromedp.ID("result")),
	)
	if got := strings.TrimSpace(browser.Run(t, bctx, "read the certificate ID", chromedp.TextContent(chromedp.ID("field-certificate_id")))); got != found.UVCI {
		t.Fatalf("the page shows certificate %q, want %q", got, found.UVCI)
	}
	browser.Screenshot(t, bctx, dir, "lookup-found.png")

	// The report is resolved: on the page (by its reference) and through the API.
	browser.Do(t, bctx, "check the report on the page",
		chromedp.Navigate(srv.URL+"/report"),
		chromedp.WaitVisible(chromedp.ID("ref")),
		chromedp.SendKeys(chromedp.ID("ref"), ref),
		chromedp.Click(chromedp.ID("check-ref")),
		chromedp.WaitVisible(chromedp.ID("receipt")),
	)
	if got := pageStatus(t, bctx); got != "resolved" {
		t.Fatalf("the page shows status %q, want resolved", got)
	}
	browser.Screenshot(t, bctx, dir, "report-resolved.png")
	if s := reportStatus(t, public, ref); s != "resolved" {
		t.Fatalf("GET /v1/reports/%s: status %q, want resolved", ref, s)
	}
	if p := problems(); len(p) > 0 {
		t.Errorf("console problems: %v", p)
	}
}

// flip changes every digit of s (0->1 ... 9->0): another serial of the same length.
func flip(s string) string {
	b := []byte(s)
	for i, c := range b {
		b[i] = '0' + (c-'0'+1)%10
	}
	return string(b)
}

func status(t *testing.T, c *server.Client, sid string) string {
	t.Helper()
	var v struct {
		Match struct {
			Status string `json:"status"`
		} `json:"match"`
	}
	c.Expect(t, "GET", "/v1/doses/"+url.PathEscape(sid), nil, http.StatusOK, &v)
	return v.Match.Status
}

func reportStatus(t *testing.T, c *server.Client, ref string) string {
	t.Helper()
	var a struct {
		Reference string `json:"reference"`
		Status    string `json:"status"`
	}
	c.Expect(t, "GET", "/v1/reports/"+ref, nil, http.StatusOK, &a)
	if a.Reference != ref {
		t.Fatalf("GET /v1/reports/%s answers reference %q", ref, a.Reference)
	}
	return a.Status
}

func pageStatus(t *testing.T, ctx context.Context) string {
	t.Helper()
	return browser.Run(t, ctx, "read the status", chromedp.Evaluate[string](`document.getElementById('status').getAttribute('data-status')`))
}

func waitFor(t *testing.T, what string, done func() bool) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for !done() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %s", what, patience)
		}
		time.Sleep(50 * time.Millisecond)
	}
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
