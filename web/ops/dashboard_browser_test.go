package ops

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/stage/stats"
	"github.com/vaxpass/vaxpass/shared/testkit/browser"
)

const testOpsKey = "vxo_test-ops-key"

// fakeOps answers the dashboard's API calls as the server does (shapes of openapi.yaml),
// recording what the page asked.
type fakeOps struct {
	mu       sync.Mutex
	requests []string // "METHOD path?query"
	bodies   []string // of POSTs
}

func counts(by map[match.Status]int) stats.Counts {
	c := stats.Counts{ByStatus: map[match.Status]int{}}
	for _, st := range stats.Statuses {
		c.ByStatus[st] = by[st]
		c.Doses += by[st]
	}
	return c
}

func doseCounts(by map[match.Status]int) stats.DoseCounts {
	c := counts(by)
	return stats.DoseCounts{Doses: c.Doses, ByStatus: c.ByStatus}
}

func (f *fakeOps) snapshot(province string) stats.Snapshot {
	at := time.Date(2026, 12, 5, 3, 4, 5, 0, time.UTC)
	hcm := counts(map[match.Status]int{match.Verified: 5, match.Mismatch: 2, match.NotFound: 1})
	hn := counts(map[match.Status]int{match.Verified: 3})
	snap := stats.Snapshot{
		GeneratedAt: at, AsOf: at, ExpiringWithinDays: 30, TimeZone: "Asia/Ho_Chi_Minh (UTC+7)",
		Statuses: stats.Statuses, Total: counts(map[match.Status]int{match.Verified: 8, match.Mismatch: 2, match.NotFound: 1}),
		Provinces: []stats.Province{
			{Code: "001", Name: "Hà Nội", Counts: hn},
			{Code: "079", Name: "Hồ Chí Minh", Counts: hcm},
			{Code: stats.UnknownProvince, Counts: counts(nil)},
		},
		Facilities: []stats.Facility{{ID: "site-1", Name: "Trạm Y tế 1", Counts: hcm}, {ID: "site-2", Name: "Trạm Y tế 2", Counts: hn}},
		Issuance:   []stats.Day{{Date: "2026-12-04", Issued: 8}},
	}
	if province != "" {
		pc := &stats.ProvinceCommunes{Province: province, Communes: []stats.Commune{}, WithoutCommune: doseCounts(nil)}
		if province == "079" {
			pc.Name = "Hồ Chí Minh"
			pc.Communes = []stats.Commune{
				{Code: "0790001", DoseCounts: doseCounts(map[match.Status]int{match.Verified: 3, match.Mismatch: 2})},
				{Code: "0790002", DoseCounts: doseCounts(map[match.Status]int{match.Verified: 2})},
			}
			pc.WithoutCommune = doseCounts(map[match.Status]int{match.NotFound: 1})
		}
		snap.Communes = pc
	}
	return snap
}

func (f *fakeOps) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if Owns(r.URL.Path) {
		Handler().ServeHTTP(w, r)
		return
	}
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.requests = append(f.requests, r.Method+" "+r.URL.RequestURI())
	if r.Method == http.MethodPost {
		f.bodies = append(f.bodies, string(body))
	}
	f.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer "+testOpsKey {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	var out any
	switch r.Method + " " + r.URL.Path {
	case "GET /v1/stats":
		out = f.snapshot(r.URL.Query().Get("province"))
	case "GET /v1/ops/dead-letters":
		letters := []map[string]string{}
		if r.URL.Query().Get("queue") == "central" {
			letters = append(letters, map[string]string{"id": "a"}, map[string]string{"id": "b"})
		}
		out = map[string]any{"dead_letters": letters, "next": ""}
	case "POST /v1/ops/reprocess":
		out = map[string]any{"stage": "match", "dry_run": true, "done": true, "resumed": false,
			"counts": map[string]int{"scanned": 3, "selected": 2, "changed": 1, "unchanged": 1, "failed": 0}}
	default:
		w.WriteHeader(http.StatusNotFound)
		return
	}
	json.NewEncoder(w).Encode(out)
}

func (f *fakeOps) asked() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.requests...)
}

// TestDrillDown drives the dashboard in headless Chromium: a province opens its communes
// (read with ?province=), a commune or a site opens the follow-up card with its worklists,
// the dead letters and a reprocessing selector, and Refresh reads the numbers again.
func TestDrillDown(t *testing.T) {
	if testing.Short() {
		t.Skip("drives a browser")
	}
	fake := &fakeOps{}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	ctx := browser.New(t, browser.Options{})
	problems := browser.ConsoleProblems(ctx)
	text := func(sel string) string {
		return browser.Run(t, ctx, "read "+sel, chromedp.Evaluate[string](`(document.querySelector(`+jsString(sel)+`)||{}).textContent||''`))
	}

	browser.Do(t, ctx, "sign in",
		chromedp.Navigate(srv.URL+"/ops"), chromedp.WaitVisible(chromedp.ID("key")),
		chromedp.SendKeys(chromedp.ID("key"), testOpsKey), chromedp.Click(chromedp.ID("signin")),
		chromedp.WaitVisible(chromedp.ID("dashboard")))
	if got := text("#asof"); !strings.Contains(got, "10:04") || !strings.Contains(got, "05/12/2026") {
		t.Errorf("as of %q, want the answer's as_of in Viet Nam time (10:04 05/12/2026)", got)
	}

	browser.Do(t, ctx, "open province 079",
		chromedp.Click(chromedp.CSS(`#provinces tbody tr[data-key="079"]`)), chromedp.WaitVisible(chromedp.ID("communes-card")))
	if reqs := fake.asked(); reqs[len(reqs)-1] != "GET /v1/stats?province=079" {
		t.Errorf("opening a province asked %v", reqs)
	}
	rows := browser.Run(t, ctx, "read the communes", chromedp.Evaluate[[]string](
		`Array.from(document.querySelectorAll('#communes tbody tr')).map(function(r){return r.getAttribute('data-key')+':'+r.className+':'+r.querySelector('td[data-col="doses"]').getAttribute('data-n');})`))
	if want := []string{"0790001:pick:5", "0790002:pick:2", ":unknown muted:1"}; strings.Join(rows, ",") != strings.Join(want, ",") {
		t.Errorf("commune rows %v, want %v", rows, want)
	}
	if got := text("#com-province"); !strings.Contains(got, "079") || !strings.Contains(got, "Hồ Chí Minh") {
		t.Errorf("drill-down title %q", got)
	}
	if cls := browser.Run(t, ctx, "read the province row", chromedp.Evaluate[string](`document.querySelector('#provinces tbody tr[data-key="079"]').className`)); !strings.Contains(cls, "selected") {
		t.Errorf("the opened province is not marked: %q", cls)
	}

	browser.Do(t, ctx, "pick commune 0790001",
		chromedp.Click(chromedp.CSS(`#communes tbody tr[data-key="0790001"]`)), chromedp.WaitVisible(chromedp.ID("actions-card")))
	links := browser.Run(t, ctx, "read the worklists", chromedp.Evaluate[[]string](
		`Array.from(document.querySelectorAll('#act-worklists tbody tr')).map(function(r){return r.getAttribute('data-key')+' '+r.querySelector('td[data-col="worklist"]').textContent+' '+r.querySelector('td[data-col="registry"]').textContent;})`))
	want := []string{
		"MISMATCH /v1/worklist?status=MISMATCH&format=xlsx /v1/registry/records?status=MISMATCH&commune_code=0790001",
		"VERIFIED /v1/worklist?status=VERIFIED&format=xlsx ",
	}
	if strings.Join(links, "|") != strings.Join(want, "|") {
		t.Errorf("worklists %q, want %q", links, want)
	}
	if note := text("#act-worklist-note"); !strings.Contains(note, "clerk key of commune 0790001") {
		t.Errorf("the worklist note does not say which key opens them: %q", note)
	}
	var sel map[string]any
	raw := browser.Run(t, ctx, "read the selector", chromedp.Evaluate[string](`document.getElementById('act-selector').value`))
	if err := json.Unmarshal([]byte(raw), &sel); err != nil {
		t.Fatalf("selector %q: %v", raw, err)
	}
	if js(sel["commune"]) != `["0790001"]` || js(sel["status"]) != `["MISMATCH"]` || sel["stage"] != "match" || sel["facility"] != nil {
		t.Errorf("prefilled selector %s", raw)
	}

	browser.Do(t, ctx, "show the dead letters", chromedp.Click(chromedp.ID("act-dead")), chromedp.WaitVisible(chromedp.ID("act-dead-result")))
	if got := text("#act-dead-result"); !strings.Contains(got, "central: 2") || !strings.Contains(got, "matcher: 0") {
		t.Errorf("dead letters %q", got)
	}
	browser.Do(t, ctx, "dry-run the selector", chromedp.Click(chromedp.ID("act-dry")), chromedp.WaitVisible(chromedp.ID("act-run-result")))
	if got := text("#act-run-result"); !strings.Contains(got, `"changed": 1`) {
		t.Errorf("dry run result %q", got)
	}
	fake.mu.Lock()
	posted := fake.bodies[len(fake.bodies)-1]
	fake.mu.Unlock()
	var body map[string]any
	if err := json.Unmarshal([]byte(posted), &body); err != nil || body["dry_run"] != true || js(body["commune"]) != `["0790001"]` {
		t.Errorf("posted %s (%v)", posted, err)
	}

	n := len(fake.asked())
	browser.Do(t, ctx, "refresh", chromedp.Click(chromedp.ID("refresh")))
	browser.Run(t, ctx, "wait for the refresh", chromedp.Poll[bool](`!document.getElementById('refresh').disabled`, chromedp.WithPollingTimeout(browser.StepTimeout)))
	if reqs := fake.asked(); len(reqs) <= n || reqs[n] != "GET /v1/stats?province=079" {
		t.Errorf("refresh asked %v", reqs[n:])
	}
	if cls := browser.Run(t, ctx, "read the picked row", chromedp.Evaluate[string](`document.querySelector('#communes tbody tr[data-key="0790001"]').className`)); !strings.Contains(cls, "selected") {
		t.Errorf("the picked commune is not marked after a refresh: %q", cls)
	}

	browser.Do(t, ctx, "pick a site", chromedp.Click(chromedp.CSS(`#facilities tbody tr[data-key="site-2"]`)))
	raw = browser.Run(t, ctx, "read the selector", chromedp.Evaluate[string](`document.getElementById('act-selector').value`))
	sel = nil
	if err := json.Unmarshal([]byte(raw), &sel); err != nil || js(sel["facility"]) != `["site-2"]` || sel["commune"] != nil {
		t.Errorf("site selector %s (%v)", raw, err)
	}
	if note := text("#act-worklist-note"); !strings.Contains(note, "site site-2") {
		t.Errorf("the site's worklist note %q", note)
	}

	browser.Do(t, ctx, "close the communes", chromedp.Click(chromedp.ID("com-close")))
	browser.Do(t, ctx, "refresh", chromedp.Click(chromedp.ID("refresh")))
	browser.Run(t, ctx, "wait for the refresh", chromedp.Poll[bool](`!document.getElementById('refresh').disabled`, chromedp.WithPollingTimeout(browser.StepTimeout)))
	if reqs := fake.asked(); reqs[len(reqs)-1] != "GET /v1/stats" {
		t.Errorf("after closing the communes, refresh asked %s", reqs[len(reqs)-1])
	}
	if p := problems(); len(p) > 0 {
		t.Errorf("console errors:\n%s", strings.Join(p, "\n"))
	}
}

func js(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func jsString(s string) string { return js(s) }
