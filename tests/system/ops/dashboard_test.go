package ops

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
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
	"github.com/vaxpass/vaxpass/shared/testkit/browser"
	"github.com/vaxpass/vaxpass/shared/testkit/server"
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
	browser.Find(t) // skips (or fails in CI) before the population is built
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	statsNow := time.Now().UTC().Truncate(time.Second)
	var clock atomic.Int64
	clock.Store(statsNow.Add(-390 * 24 * time.Hour).UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()).UTC() }

	buildWorld(t, dir, data, envInt(t, "VAXPASS_DASHBOARD_PEOPLE", 3000), 5, now)
	ctx := context.Background()
	// The HTTP front alone: nothing but the test works on the data.
	srv := server.Open(t, server.Options{Options: local.Options{DataDir: data, Log: quietLog(), Now: now}, FrontOnly: true, OpsActor: "ministry-official"})
	sys, key := srv.Local, srv.OpsKey
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

	want := countStore(t, sys, statsNow)
	var api stats.Snapshot
	srv.Client(key).Expect(t, http.MethodGet, "/v1/stats", nil, http.StatusOK, &api)

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
		for name, bearer := range map[string]string{"none": "", "wrong": "nope", "facility-style": "vxp_abc"} {
			if r := srv.Client(bearer).Call(t, http.MethodGet, "/v1/stats", nil); r.Status != http.StatusUnauthorized {
				t.Errorf("%s key: status %d, want 401", name, r.Status)
			}
		}
	})

	t.Run("the page in Chromium shows the same numbers", func(t *testing.T) {
		bctx := browser.New(t, browser.Options{Width: 1366, Height: 900})
		shots := browser.ArtifactDir(t, "ops")
		browser.Do(t, bctx, "open /ops", chromedp.EmulateViewport(1366, 900), chromedp.Navigate(srv.URL+"/ops"), chromedp.WaitVisible(chromedp.ID("key")))
		browser.ViewportShot(t, bctx, shots, "ops-login.png")

		browser.Do(t, bctx, "sign in with a wrong key", chromedp.SendKeys(chromedp.ID("key"), "not-a-key"), chromedp.Click(chromedp.ID("signin")),
			chromedp.WaitVisible(chromedp.ID("login-error")))

		browser.Do(t, bctx, "sign in", chromedp.SendKeys(chromedp.ID("key"), key), chromedp.Click(chromedp.ID("signin")),
			chromedp.WaitVisible(chromedp.ID("dashboard")))
		browser.Screenshot(t, bctx, shots, "ops-dashboard-full.jpg")
		browser.ViewportShot(t, bctx, shots, "ops-dashboard-top.png")
		browser.Do(t, bctx, "scroll to the tables", chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, document.getElementById('prov-title').getBoundingClientRect().top + window.scrollY - 8)`))
		browser.ViewportShot(t, bctx, shots, "ops-dashboard-tables.png")
		browser.Do(t, bctx, "scroll to the facilities", chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, document.getElementById('fac-title').getBoundingClientRect().top + window.scrollY - 8)`))
		browser.ViewportShot(t, bctx, shots, "ops-dashboard-facilities.png")

		var page shownNumbers
		js := browser.Run(t, bctx, "read the page", chromedp.Evaluate[string](readPageJS))
		if err := json.Unmarshal([]byte(js), &page); err != nil {
			t.Fatal(err)
		}
		// The page must show the snapshot the API serves (the cache is young: the same).
		compareShown(t, api, page)
		if stored := browser.Run(t, bctx, "read sessionStorage", chromedp.Evaluate[string](`sessionStorage.getItem('vaxpass.opsKey') || ''`)); stored != key {
			t.Errorf("the key is not kept in sessionStorage")
		}
		if cookies := browser.Run(t, bctx, "read cookies", chromedp.Evaluate[string](`document.cookie`)); cookies != "" {
			t.Errorf("the page set cookies: %q", cookies)
		}

		browser.Do(t, bctx, "filter the facilities", chromedp.SendKeys(chromedp.ID("fac-filter"), api.Facilities[0].ID))
		visible := browser.Run(t, bctx, "count visible facility rows", chromedp.Evaluate[int](
			`Array.from(document.querySelectorAll('#facilities tbody tr')).filter(function(r){return !r.hidden;}).length`))
		if visible < 1 || visible >= len(api.Facilities) {
			t.Errorf("filtering by %s leaves %d of %d rows", api.Facilities[0].ID, visible, len(api.Facilities))
		}

		browser.Do(t, bctx, "sort the provinces by NOT_FOUND", chromedp.Click(chromedp.CSS(`#provinces th[data-col="status:NOT_FOUND"]`)))
		top := browser.Run(t, bctx, "read the first province", chromedp.Evaluate[string](`document.querySelector('#provinces tbody tr').getAttribute('data-key')`))
		most := slices.MaxFunc(api.Provinces, func(a, b stats.Province) int {
			if c := a.ByStatus[match.NotFound] - b.ByStatus[match.NotFound]; c != 0 {
				return c
			}
			return strings.Compare(b.Code, a.Code) // ties: the smaller code first
		})
		if top != most.Code {
			t.Errorf("sorted by NOT_FOUND, the first province is %s, want %s (%d)", top, most.Code, most.ByStatus[match.NotFound])
		}

		browser.Do(t, bctx, "sign out", chromedp.Click(chromedp.ID("signout")), chromedp.WaitVisible(chromedp.ID("key")))
		if stored := browser.Run(t, bctx, "read sessionStorage", chromedp.Evaluate[string](`sessionStorage.getItem('vaxpass.opsKey') || ''`)); stored != "" {
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
			// By expiry day in Viet Nam, as stats.Service.Snapshot documents: expired from
			// the day after the expiry day, expiring up to the day of now + 30 days.
			expiry := stats.DayOf(c.ExpiresAt)
			for _, r := range rows {
				switch {
				case c.StatusAt(now) == vaxpass.CertRevoked:
					r.Certificates.Revoked++
				case expiry < stats.DayOf(now):
					r.Certificates.Expired++
				default:
					r.Certificates.Valid++
					if expiry <= stats.DayOf(now.Add(30*24*time.Hour)) {
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
