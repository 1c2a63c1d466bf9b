package routes_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/domain/access"
	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/edge/apigw"
	"github.com/vaxpass/vaxpass/shared/testkit/server"
	"github.com/vaxpass/vaxpass/shared/tool/registry"
	"github.com/vaxpass/vaxpass/shared/tool/synth"
	"github.com/vaxpass/vaxpass/shared/wire/local"
)

// public marks a route that takes no key.
const public access.Role = ""

// policy is who may call each route the embedded server serves. Every served route must
// be here and every entry served: a route added without deciding its roles fails
// TestEveryRouteByRole.
var policy = map[string][]access.Role{
	"POST /v1/doses":                    {access.Facility},
	"POST /v1/imports":                  {access.Facility, access.Clerk},
	"GET /v1/doses/{source_id}":         {access.Facility},
	"PATCH /v1/doses/{source_id}":       {access.Facility, access.Clerk, access.Officer},
	"GET /v1/worklist":                  {access.Facility, access.Clerk},
	"GET /v1/reports":                   {access.Facility, access.Clerk},
	"POST /v1/signatures":               {access.Facility},
	"GET /v1/signatures/{run_id}":       {access.Facility},
	"GET /v1/registry/records":          {access.Officer},
	"POST /v1/ops/revocations":          {access.Ops},
	"GET /v1/ops/audit":                 {access.Ops},
	"GET /v1/stats":                     {access.Ops},
	"POST /v1/ops/reprocess":            {access.Ops},
	"GET /v1/ops/reprocess":             {access.Ops},
	"GET /v1/ops/reprocess/{run_id}":    {access.Ops},
	"GET /v1/ops/dead-letters":          {access.Ops},
	"POST /v1/ops/dead-letters/redrive": {access.Ops},
	// Public: the citizen's and the verifier's routes, and the pages (the ops page holds
	// no data: it asks for an ops key and calls the ops routes with it).
	"POST /v1/passports/lookup":             {public},
	"GET /v1/passports/{uvci}/qr.png":       {public},
	"GET /v1/passports/{uvci}/passport.pdf": {public},
	"POST /v1/verify":                       {public},
	"GET /v1/trustlist":                     {public},
	"POST /v1/reports":                      {public},
	"GET /v1/reports/{reference}":           {public},
	"GET /report":                           {public},
	"GET /v1/revocations":                   {public},
	"GET /":                                 {public},
	"GET /static/{file}":                    {public},
	"GET /ops":                              {public},
	"GET /ops/static/{file}":                {public},
}

// tableCommune is the commune of the clerk's key.
const tableCommune = "00001"

// accessSystem is the embedded system with the demo registry and facility, and a key of
// every role, valid and revoked.
type accessSystem struct {
	srv     *server.System
	keys    map[access.Role]string // valid keys
	revoked map[access.Role]string // revoked keys
}

func openAccessSystem(t *testing.T) *accessSystem {
	t.Helper()
	srv := server.Open(t, server.Options{
		Options: local.Options{
			Now:               func() time.Time { return time.Date(2022, 7, 15, 8, 0, 0, 0, time.UTC) },
			LookupRate:        apigw.RateLimit{Rate: 1e6, Burst: 1e6, MaxKeys: 1000},
			FacilitySignEvery: -1,
			PollInterval:      5 * time.Millisecond,
		},
		Demo: true, OpsActor: "ops-table", NoSync: true, FrontOnly: true,
	})
	a := &accessSystem{srv: srv, keys: map[access.Role]string{access.Facility: srv.FacilityKey, access.Ops: srv.OpsKey}, revoked: map[access.Role]string{}}
	ctx := context.Background()
	sys := srv.Local.Sys
	subjects := map[access.Role]string{access.Facility: local.DemoFacility, access.Clerk: tableCommune, access.Officer: "officer-table", access.Ops: "ops-table"}
	for _, role := range access.Roles {
		if a.keys[role] == "" {
			key, _, err := sys.NewKey(ctx, role, subjects[role])
			if err != nil {
				t.Fatalf("%s key: %v", role, err)
			}
			a.keys[role] = key
		}
		key, k, err := sys.NewKey(ctx, role, subjects[role])
		if err != nil {
			t.Fatalf("%s key: %v", role, err)
		}
		if _, err := sys.RevokeKey(ctx, k.ID); err != nil {
			t.Fatalf("revoke %s key: %v", role, err)
		}
		a.revoked[role] = key
	}
	return a
}

// concrete is a request of route key rk: path variables filled in, a small JSON body.
func concrete(rk string) (method, path string, body []byte) {
	method, path, _ = strings.Cut(rk, " ")
	path = strings.NewReplacer("{source_id}", "table-1", "{run_id}", "run-1", "{uvci}", "VVJOOlVWQ0k6MDE6Vk46WA", "{file}", "app.js").Replace(path)
	if method == "POST" || method == "PATCH" {
		body = []byte(`{}`)
	}
	return method, path, body
}

// TestEveryRouteByRole calls every route the embedded server serves with a key of every
// role, no key and a revoked key: an allowed caller is never answered 401 or 403; a
// refused one always is (401 without a usable key, 403 for a valid key of another role).
func TestEveryRouteByRole(t *testing.T) {
	a := openAccessSystem(t)
	served := a.srv.Local.Router.Routes()
	for rk := range policy {
		if !slices.Contains(served, rk) {
			t.Errorf("the policy names %s, which the server does not serve", rk)
		}
	}
	client := a.srv.Client("")
	checked := 0
	for _, rk := range served {
		allowed, ok := policy[rk]
		if !ok {
			t.Errorf("route %s is served but has no roles in this test's policy: decide who may call it", rk)
			continue
		}
		isPublic := slices.Contains(allowed, public)
		method, path, body := concrete(rk)
		call := func(who, key string) int {
			t.Helper()
			r := client.WithKey(key).Do(t, method, path, body, "application/json")
			if r.Status == http.StatusUnauthorized || r.Status == http.StatusForbidden {
				var e apigw.ErrorBody
				if err := json.Unmarshal(r.Body, &e); err != nil || e.Error.Code != map[int]string{401: "unauthorized", 403: "forbidden"}[r.Status] {
					t.Errorf("%s as %s: %d with body %.200s", rk, who, r.Status, r.Body)
				}
			}
			checked++
			return r.Status
		}
		for _, role := range access.Roles {
			status := call(string(role), a.keys[role])
			switch {
			case isPublic || slices.Contains(allowed, role):
				if status == http.StatusUnauthorized || status == http.StatusForbidden {
					t.Errorf("%s with a %s key: %d, want it allowed", rk, role, status)
				}
			case status != http.StatusForbidden:
				t.Errorf("%s with a %s key: %d, want 403", rk, role, status)
			}
			// A revoked key of any role opens nothing, not even a route of its role.
			status = call("revoked "+string(role), a.revoked[role])
			if isPublic {
				if status == http.StatusUnauthorized || status == http.StatusForbidden {
					t.Errorf("public %s with a revoked %s key: %d", rk, role, status)
				}
			} else if status != http.StatusUnauthorized {
				t.Errorf("%s with a revoked %s key: %d, want 401", rk, role, status)
			}
		}
		status := call("no key", "")
		if isPublic && (status == http.StatusUnauthorized || status == http.StatusForbidden) {
			t.Errorf("public %s without a key: %d", rk, status)
		} else if !isPublic && status != http.StatusUnauthorized {
			t.Errorf("%s without a key: %d, want 401", rk, status)
		}
		if status := call("unknown key", "vxp_not-a-key"); !isPublic && status != http.StatusUnauthorized {
			t.Errorf("%s with an unknown key: %d, want 401", rk, status)
		}
	}
	t.Logf("%d routes x %d callers: %d calls", len(served), 2*len(access.Roles)+2, checked)
}

// TestFacilityGetsNoRegistryValues is the attack: a facility uploads 1,000 name-only
// records (name and birth year of registry people, no ID number) and reads every answer
// it can get about them -- each record, the worklists as JSON, CSV and .xlsx -- and no
// registry ID number or date of birth is in any of them; the clerk of their commune
// neither. The registry officer's list of the same records shows the candidates.
func TestFacilityGetsNoRegistryValues(t *testing.T) {
	a := openAccessSystem(t)
	people := readRegistry(t, filepath.Join(a.srv.Demo.Dir, synth.RegistryFile))
	const n = 1000
	if len(people) < n {
		t.Fatalf("the demo registry holds %d people, want at least %d", len(people), n)
	}
	type rec struct {
		SourceID     string `json:"source_id"`
		FullName     string `json:"full_name"`
		DOB          string `json:"dob"`
		Gender       string `json:"gender"`
		CommuneCode  string `json:"commune_code"`
		Vaccine      string `json:"vaccine"`
		DoseNumber   int    `json:"dose_number"`
		VaccinatedOn string `json:"vaccinated_on"`
	}
	records := make([]rec, n)
	for i, p := range people[:n] {
		records[i] = rec{SourceID: fmt.Sprintf("atk-%04d", i), FullName: p.FullName, DOB: p.DOB[:4], Gender: p.Gender,
			CommuneCode: tableCommune, Vaccine: "PFIZER", DoseNumber: 1, VaccinatedOn: "2021-08-01"}
	}
	fac := a.srv.Client(a.keys[access.Facility])
	body, _ := json.Marshal(map[string]any{"records": records})
	var rep struct{ Accepted int }
	fac.Expect(t, "POST", "/v1/doses", json.RawMessage(body), http.StatusOK, &rep)
	if rep.Accepted != n {
		t.Fatalf("accepted %d of %d", rep.Accepted, n)
	}
	a.srv.Go("matcher", a.srv.Local.RunMatcher)
	waitMatched(t, fac)

	// Everything the facility (and the clerk) can read about the records.
	var answers [][]byte
	for _, r := range records {
		answers = append(answers, fac.Do(t, "GET", "/v1/doses/"+r.SourceID, nil, "").Body)
	}
	withCandidates := 0
	for _, c := range []*server.Client{fac, a.srv.Client(a.keys[access.Clerk])} {
		for _, st := range []match.Status{match.Pending, match.Verified, match.NoID, match.InvalidID, match.NotFound, match.Mismatch} {
			for _, format := range []string{"json", "csv", "xlsx"} {
				r := c.Do(t, "GET", "/v1/worklist?status="+string(st)+"&format="+format, nil, "")
				if r.Status != http.StatusOK {
					t.Fatalf("worklist %s %s: %d %.300s", st, format, r.Status, r.Body)
				}
				if format == "xlsx" {
					r.Body = xlsxText(t, r.Body)
				}
				if st == match.NoID && format == "json" {
					withCandidates += bytes.Count(r.Body, []byte(`"candidates_count":`))
				}
				answers = append(answers, r.Body)
			}
		}
	}
	if withCandidates == 0 {
		t.Fatal("no record has candidates: the attack tests nothing (the names are the registry's)")
	}
	all := bytes.Join(answers, []byte("\n"))
	leaked := 0
	for _, p := range people {
		for _, v := range []string{p.IDNumber, p.DOB} {
			if bytes.Contains(all, []byte(v)) {
				if leaked < 5 {
					t.Errorf("a facility's or clerk's answer holds a registry value (%s of a registry person)", map[bool]string{true: "ID number", false: "date of birth"}[v == p.IDNumber])
				}
				leaked++
			}
		}
	}
	t.Logf("%d answers, %d bytes; %d of the records' worklist entries count candidates; %d registry values found", len(answers), len(all), withCandidates, leaked)

	// The officer sees who the candidates are.
	officer := a.srv.Client(a.keys[access.Officer])
	var page struct {
		Records []struct {
			SourceID string       `json:"source_id"`
			Match    match.Result `json:"match"`
		} `json:"records"`
	}
	officer.Expect(t, "GET", "/v1/registry/records?status=NO_ID&facility_id="+local.DemoFacility, nil, http.StatusOK, &page)
	shown := 0
	byID := map[string]match.Person{}
	for _, p := range people {
		byID[p.IDNumber] = p
	}
	for _, r := range page.Records {
		for _, c := range r.Match.Candidates {
			if p, ok := byID[c.IDNumber]; !ok || p.DOB != c.DOB {
				t.Errorf("officer's candidate of %s is no registry person", r.SourceID)
			}
			shown++
		}
	}
	if shown == 0 {
		t.Errorf("the officer's list of %d records shows no candidate", len(page.Records))
	}
}

func readRegistry(t *testing.T, path string) []match.Person {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rd, err := registry.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var out []match.Person
	for {
		p, err := rd.Read()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
}

// waitMatched waits until the facility has no PENDING record.
func waitMatched(t *testing.T, c *server.Client) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var page struct{ Records []json.RawMessage }
		c.Expect(t, "GET", "/v1/worklist?status=PENDING", nil, http.StatusOK, &page)
		if len(page.Records) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d records still PENDING", len(page.Records))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// xlsxText is the text of every part of an .xlsx file.
func xlsxText(t *testing.T, b []byte) []byte {
	t.Helper()
	z, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	var all bytes.Buffer
	for _, f := range z.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		_, err = io.Copy(&all, rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	return all.Bytes()
}
