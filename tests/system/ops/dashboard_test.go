package ops

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/vaxpass/vaxpass/shared/domain/identity"
	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/stage/stats"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
	"github.com/vaxpass/vaxpass/shared/wire/local"
)

// TestDashboardShowsTheStoreCounts is issue 6, acceptance line 4: the dashboard, driven
// in headless Chromium, shows the numbers of GET /v1/stats, and those are the counts
// computed here directly from the store. The population is issued certificates over a
// year (facility by facility, half a day apart), so some have expired, some expire within
// the window and the chart has a year of days; a few are revoked.
func TestDashboardShowsTheStoreCounts(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a population and drives a browser")
	}
	chromium := findChromium(t)
	bin := buildCLI(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	statsNow := time.Now().UTC().Truncate(time.Second)
	var clock atomic.Int64
	clock.Store(statsNow.Add(-390 * 24 * time.Hour).UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()).UTC() }

	buildWorld(t, bin, dir, data, envInt(t, "VAXPASS_DASHBOARD_PEOPLE", 3000), 5, now)
	ctx := context.Background()
	sys, err := local.OpenLocal(local.Options{DataDir: data, Log: quietLog(), Now: now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sys.Close() })
	ops, err := local.AttachOps(sys)
	if err != nil {
		t.Fatal(err)
	}
	facs, err := sys.Store.ListFacilities(ctx)
	if err != nil {
		t.Fatal(err)
	}
	step := 360 * 24 * time.Hour / time.Duration(len(facs))
	for _, f := range facs {
		clock.Add(int64(step))
		if _, err := sys.FacilitySigning.SignAll(ctx, f.ID); err != nil {
			t.Fatal(err)
		}
		if err := sys.DrainCentralQueue(ctx); err != nil {
			t.Fatal(err)
		}
	}
	certs, _, err := sys.Store.ListCertificates(ctx, "", 5)
	if err != nil || len(certs) < 5 {
		t.Fatalf("certificates: %d, %v", len(certs), err)
	}
	for _, c := range certs[:3] {
		if _, err := ops.Revoke(ctx, "cli:test", c.UVCI, "test: lost card"); err != nil {
			t.Fatal(err)
		}
	}

	rp := local.AttachReprocessing(sys, ops)
	rp.Stats.Now = func() time.Time { return statsNow }
	key, err := ops.OpsKeys.Create("ministry-official")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(rp.Handler(sys.HTTPHandler()))
	t.Cleanup(srv.Close)

	want := countStore(t, sys, statsNow)
	api := getStats(t, srv.URL, key)

	t.Run("GET /v1/stats equals the store's counts", func(t *testing.T) {
		compareSnapshot(t, want, api)
		if api.Total.Certificates.Expiring == 0 || api.Total.Certificates.Expired == 0 || api.Total.Certificates.Revoked < 3 {
			t.Errorf("the population should have expiring, expired and revoked (3 by ops, more superseded) certificates: %+v", api.Total.Certificates)
		}
		for _, status := range []match.Status{match.Verified, match.Mismatch, match.NotFound, match.NoID, match.InvalidID} {
			if api.Total.ByStatus[status] == 0 {
				t.Errorf("no %s record: the comparison proves nothing about it", status)
			}
		}
	})

	t.Run("GET /v1/stats needs the ops key", func(t *testing.T) {
		for name, header := range map[string]string{"none": "", "wrong": "Bearer nope", "facility-style": "Bearer vxp_abc"} {
			req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/stats", nil)
			if header != "" {
				req.Header.Set("Authorization", header)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusUnauthorized {
				t.Errorf("%s key: status %d, want 401", name, res.StatusCode)
			}
		}
	})

	t.Run("the page in Chromium shows the same numbers", func(t *testing.T) {
		bctx := newBrowser(t, chromium)
		shots := artifactDir(t)
		do(t, bctx, "open /ops", chromedp.EmulateViewport(1366, 900), chromedp.Navigate(srv.URL+"/ops"), chromedp.WaitVisible(chromedp.ID("key")))
		viewportShot(t, bctx, shots, "ops-login.png")

		do(t, bctx, "sign in with a wrong key", chromedp.SendKeys(chromedp.ID("key"), "not-a-key"), chromedp.Click(chromedp.ID("signin")),
			chromedp.WaitVisible(chromedp.ID("login-error")))

		do(t, bctx, "sign in", chromedp.SendKeys(chromedp.ID("key"), key), chromedp.Click(chromedp.ID("signin")),
			chromedp.WaitVisible(chromedp.ID("dashboard")))
		screenshot(t, bctx, shots, "ops-dashboard-full.jpg")
		viewportShot(t, bctx, shots, "ops-dashboard-top.png")
		do(t, bctx, "scroll to the tables", chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, document.getElementById('prov-title').getBoundingClientRect().top + window.scrollY - 8)`))
		viewportShot(t, bctx, shots, "ops-dashboard-tables.png")
		do(t, bctx, "scroll to the facilities", chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, document.getElementById('fac-title').getBoundingClientRect().top + window.scrollY - 8)`))
		viewportShot(t, bctx, shots, "ops-dashboard-facilities.png")

		var page shownNumbers
		js := run(t, bctx, "read the page", chromedp.Evaluate[string](readPageJS))
		if err := json.Unmarshal([]byte(js), &page); err != nil {
			t.Fatal(err)
		}
		// The page must show the snapshot the API serves (the cache is young: the same).
		compareShown(t, api, page)
		if stored := run(t, bctx, "read sessionStorage", chromedp.Evaluate[string](`sessionStorage.getItem('vaxpass.opsKey') || ''`)); stored != key {
			t.Errorf("the key is not kept in sessionStorage")
		}
		if cookies := run(t, bctx, "read cookies", chromedp.Evaluate[string](`document.cookie`)); cookies != "" {
			t.Errorf("the page set cookies: %q", cookies)
		}

		do(t, bctx, "filter the facilities", chromedp.SendKeys(chromedp.ID("fac-filter"), api.Facilities[0].ID))
		visible := run(t, bctx, "count visible facility rows", chromedp.Evaluate[int](
			`Array.from(document.querySelectorAll('#facilities tbody tr')).filter(function(r){return !r.hidden;}).length`))
		if visible < 1 || visible >= len(api.Facilities) {
			t.Errorf("filtering by %s leaves %d of %d rows", api.Facilities[0].ID, visible, len(api.Facilities))
		}

		do(t, bctx, "sort the provinces by NOT_FOUND", chromedp.Click(chromedp.CSS(`#provinces th[data-col="status:NOT_FOUND"]`)))
		top := run(t, bctx, "read the first province", chromedp.Evaluate[string](`document.querySelector('#provinces tbody tr').getAttribute('data-key')`))
		most := slices.MaxFunc(api.Provinces, func(a, b stats.Province) int {
			if c := a.ByStatus[match.NotFound] - b.ByStatus[match.NotFound]; c != 0 {
				return c
			}
			return strings.Compare(b.Code, a.Code) // ties: the smaller code first
		})
		if top != most.Code {
			t.Errorf("sorted by NOT_FOUND, the first province is %s, want %s (%d)", top, most.Code, most.ByStatus[match.NotFound])
		}

		do(t, bctx, "sign out", chromedp.Click(chromedp.ID("signout")), chromedp.WaitVisible(chromedp.ID("key")))
		if stored := run(t, bctx, "read sessionStorage", chromedp.Evaluate[string](`sessionStorage.getItem('vaxpass.opsKey') || ''`)); stored != "" {
			t.Errorf("the key stays in sessionStorage after signing out")
		}
	})
}

// countStore counts, straight from the store's listing calls, what the dashboard shows.
func countStore(t *testing.T, sys *local.Local, now time.Time) stats.Snapshot {
	t.Helper()
	ctx := context.Background()
	zero := func() stats.Counts {
		c := stats.Counts{ByStatus: map[match.Status]int{}}
		for _, s := range stats.Statuses {
			c.ByStatus[s] = 0
		}
		return c
	}
	provinces := map[string]*stats.Counts{}
	facilities := map[string]*stats.Counts{}
	get := func(m map[string]*stats.Counts, k string) *stats.Counts {
		if m[k] == nil {
			c := zero()
			m[k] = &c
		}
		return m[k]
	}
	province := func(id string) string {
		p, err := identity.Parse(id)
		if err != nil || p.Kind != identity.Personal12 {
			return stats.UnknownProvince
		}
		return p.Number[:3]
	}
	total := zero()
	facs, err := sys.Store.ListFacilities(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range facs {
		get(facilities, f.ID)
		for _, st := range []match.Status{match.Pending, match.Verified, match.NoID, match.InvalidID, match.NotFound, match.Mismatch} {
			after := ""
			for {
				page, err := sys.Store.ListByStatus(ctx, f.ID, st, after, 1000)
				if err != nil {
					t.Fatal(err)
				}
				for _, d := range page {
					for _, c := range []*stats.Counts{&total, get(provinces, province(d.IDNumber)), get(facilities, f.ID)} {
						c.Doses++
						c.ByStatus[d.Match.Status]++
					}
				}
				if len(page) < 1000 {
					break
				}
				after = page[len(page)-1].SourceID
			}
		}
	}
	days := map[string]int{}
	cursor := ""
	for {
		page, next, err := sys.Store.ListCertificates(ctx, cursor, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range page {
			rows := []*stats.Counts{&total, get(provinces, province(c.PersonID))}
			sigs, err := sys.Store.FacilitySignatures(ctx, c.PersonID)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range sigs {
				rows = append(rows, get(facilities, s.FacilityID))
			}
			for _, r := range rows {
				switch status := c.StatusAt(now); {
				case status == vaxpass.CertRevoked:
					r.Certificates.Revoked++
				case status == vaxpass.CertExpired:
					r.Certificates.Expired++
				default:
					r.Certificates.Valid++
					if !c.ExpiresAt.After(now.Add(30 * 24 * time.Hour)) {
						r.Certificates.Expiring++
					}
				}
			}
			days[c.IssuedAt.In(time.FixedZone("", 7*3600)).Format(time.DateOnly)]++
		}
		if next == "" {
			break
		}
		cursor = next
	}
	snap := stats.Snapshot{Total: total}
	for code, c := range provinces {
		snap.Provinces = append(snap.Provinces, stats.Province{Code: code, Counts: *c})
	}
	for id, c := range facilities {
		snap.Facilities = append(snap.Facilities, stats.Facility{ID: id, Counts: *c})
	}
	for d, n := range days {
		snap.Issuance = append(snap.Issuance, stats.Day{Date: d, Issued: n})
	}
	sort.Slice(snap.Issuance, func(i, j int) bool { return snap.Issuance[i].Date < snap.Issuance[j].Date })
	return snap
}

func getStats(t *testing.T, base, key string) stats.Snapshot {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/v1/stats", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/stats: %d", res.StatusCode)
	}
	var s stats.Snapshot
	if err := json.NewDecoder(res.Body).Decode(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

func sameCounts(a, b stats.Counts) bool {
	return a.Doses == b.Doses && maps.Equal(a.ByStatus, b.ByStatus) && a.Certificates == b.Certificates
}

// compareSnapshot compares the API's numbers with the store's. Provinces and facilities
// without anything are rows of zeros in the API and absent from the store's count.
func compareSnapshot(t *testing.T, want, got stats.Snapshot) {
	t.Helper()
	if !sameCounts(want.Total, got.Total) {
		t.Errorf("total: store %+v, API %+v", want.Total, got.Total)
	}
	wantP := map[string]stats.Counts{}
	for _, p := range want.Provinces {
		wantP[p.Code] = p.Counts
	}
	if len(got.Provinces) != identity.ProvinceCount()+1 {
		t.Errorf("%d province rows, want %d and unknown", len(got.Provinces), identity.ProvinceCount())
	}
	for _, p := range got.Provinces {
		w, ok := wantP[p.Code]
		if !ok && (p.Doses > 0 || p.Certificates != (stats.Certificates{})) {
			t.Errorf("province %s: API %+v, store nothing", p.Code, p.Counts)
		}
		if ok && !sameCounts(w, p.Counts) {
			t.Errorf("province %s: store %+v, API %+v", p.Code, w, p.Counts)
		}
		delete(wantP, p.Code)
	}
	if len(wantP) > 0 {
		t.Errorf("provinces missing from the API: %v", slices.Collect(maps.Keys(wantP)))
	}
	wantF := map[string]stats.Counts{}
	for _, f := range want.Facilities {
		wantF[f.ID] = f.Counts
	}
	if len(got.Facilities) != len(wantF) {
		t.Errorf("%d facility rows, store has %d facilities", len(got.Facilities), len(wantF))
	}
	for _, f := range got.Facilities {
		if w := wantF[f.ID]; !sameCounts(w, f.Counts) {
			t.Errorf("facility %s: store %+v, API %+v", f.ID, w, f.Counts)
		}
	}
	if !slices.Equal(want.Issuance, got.Issuance) {
		t.Errorf("issuance: store %d days (%v...), API %d days (%v...)", len(want.Issuance), want.Issuance[:min(3, len(want.Issuance))], len(got.Issuance), got.Issuance[:min(3, len(got.Issuance))])
	}
	if len(got.Issuance) < 30 {
		t.Errorf("issuance over %d days only: the chart proves little", len(got.Issuance))
	}
}

// shownNumbers is what the page shows, read from its elements' data-n attributes.
type shownNumbers struct {
	KPI        map[string]int            `json:"kpi"`
	Provinces  map[string]map[string]int `json:"provinces"`
	Facilities map[string]map[string]int `json:"facilities"`
	Bars       map[string]int            `json:"bars"`
	ChartTotal int                       `json:"chart_total"`
}

const readPageJS = `(function(){
  function table(id){
    var out = {};
    document.querySelectorAll('#'+id+' tbody tr, #'+id+' tfoot tr').forEach(function(tr){
      var row = {};
      tr.querySelectorAll('td[data-n]').forEach(function(td){ row[td.getAttribute('data-col')] = +td.getAttribute('data-n'); });
      out[tr.getAttribute('data-key')] = row;
    });
    return out;
  }
  var kpi = {};
  document.querySelectorAll('.kpi-value').forEach(function(e){ kpi[e.id] = +e.getAttribute('data-n'); });
  var bars = {};
  document.querySelectorAll('#chart rect.bar').forEach(function(b){ bars[b.getAttribute('data-date')] = +b.getAttribute('data-n'); });
  var svg = document.querySelector('#chart svg');
  return JSON.stringify({kpi: kpi, provinces: table('provinces'), facilities: table('facilities'), bars: bars,
    chart_total: +(svg && svg.getAttribute('data-total') || 0)});
})()`

// rowOf renders a row of counts as the page's columns.
func rowOf(c stats.Counts) map[string]int {
	r := map[string]int{"doses": c.Doses, "cert:valid": c.Certificates.Valid, "cert:expiring": c.Certificates.Expiring,
		"cert:expired": c.Certificates.Expired, "cert:revoked": c.Certificates.Revoked}
	for s, n := range c.ByStatus {
		r["status:"+string(s)] = n
	}
	return r
}

func compareShown(t *testing.T, api stats.Snapshot, page shownNumbers) {
	t.Helper()
	c := api.Total
	attention := c.ByStatus[match.Mismatch] + c.ByStatus[match.NotFound] + c.ByStatus[match.InvalidID] + c.ByStatus[match.NoID]
	wantKPI := map[string]int{
		"kpi-doses": c.Doses, "kpi-verified": c.ByStatus[match.Verified], "kpi-attention": attention,
		"kpi-valid": c.Certificates.Valid, "kpi-expiring": c.Certificates.Expiring, "kpi-revoked": c.Certificates.Revoked,
	}
	if !maps.Equal(wantKPI, page.KPI) {
		t.Errorf("KPIs: API %v, page %v", wantKPI, page.KPI)
	}
	if got := page.Provinces["total"]; !maps.Equal(got, rowOf(c)) {
		t.Errorf("whole-country row: API %v, page %v", rowOf(c), got)
	}
	if len(page.Provinces) != len(api.Provinces)+1 {
		t.Errorf("page shows %d province rows, API has %d", len(page.Provinces)-1, len(api.Provinces))
	}
	for _, p := range api.Provinces {
		if got := page.Provinces[p.Code]; !maps.Equal(got, rowOf(p.Counts)) {
			t.Errorf("province %s: API %v, page %v", p.Code, rowOf(p.Counts), got)
		}
	}
	if len(page.Facilities) != len(api.Facilities) {
		t.Errorf("page shows %d facility rows, API has %d", len(page.Facilities), len(api.Facilities))
	}
	for _, f := range api.Facilities {
		if got := page.Facilities[f.ID]; !maps.Equal(got, rowOf(f.Counts)) {
			t.Errorf("facility %s: API %v, page %v", f.ID, rowOf(f.Counts), got)
		}
	}
	wantBars, sum := map[string]int{}, 0
	for _, d := range api.Issuance {
		wantBars[d.Date] = d.Issued
		sum += d.Issued
	}
	if !maps.Equal(wantBars, page.Bars) || page.ChartTotal != sum {
		t.Errorf("chart: API %d days (%d certificates), page %d bars (%d)", len(wantBars), sum, len(page.Bars), page.ChartTotal)
	}
}

// ---- the browser ----

func findChromium(t *testing.T) string {
	if p := os.Getenv("VAXPASS_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no chromium binary found (install Debian's chromium, or set VAXPASS_CHROMIUM)")
	return ""
}

func artifactDir(t *testing.T) string {
	dir := os.Getenv("VAXPASS_ARTIFACTS")
	if dir == "" {
		return t.TempDir()
	}
	dir = filepath.Join(dir, "ops")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func newBrowser(t *testing.T, chromium string) context.Context {
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
		chromedp.WindowSize(1366, 900),
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

// stepTimeout bounds one browser step so that a page that never shows what a step waits
// for fails quickly; it is not a speed check.
const stepTimeout = 30 * time.Second

func do(t *testing.T, ctx context.Context, step string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", step, err)
	}
}

func run[T any](t *testing.T, ctx context.Context, step string, action chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, action)
	if err != nil {
		t.Fatalf("%s: %v", step, err)
	}
	return v
}

// viewportShot saves what the screen shows now.
func viewportShot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	png := run(t, ctx, "screenshot "+name, chromedp.CaptureScreenshot())
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", p)
}

func screenshot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	png := run(t, ctx, "screenshot "+name, chromedp.FullScreenshot(90))
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", p)
}
