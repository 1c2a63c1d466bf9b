package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/edge/apigw"
	"github.com/vaxpass/vaxpass/shared/edge/httpapi"
	"github.com/vaxpass/vaxpass/shared/stage/reprocess"
	"github.com/vaxpass/vaxpass/shared/stage/stats"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

type fakeStats struct {
	snap stats.Snapshot
	err  error
}

func (f fakeStats) Snapshot(context.Context) (stats.Snapshot, error) { return f.snap, f.err }

// fakeRuns records what the API asks of reprocessing.
type fakeRuns struct {
	started []reprocess.Selector
	dry     []reprocess.Selector
	runs    map[string]reprocess.Run
}

func (f *fakeRuns) Start(_ context.Context, sel reprocess.Selector) (reprocess.Run, error) {
	f.started = append(f.started, sel)
	run := reprocess.Run{ID: "rp-20220701T120000Z-0a1b2c3d", Stage: sel.Stage, Filter: sel.Filter, Actor: sel.Actor, State: reprocess.Running,
		InFlight: &reprocess.Batch{Units: []reprocess.Unit{{ID: "F1/S1", Subject: "001090012345"}}}}
	return run, nil
}

func (f *fakeRuns) DryRun(_ context.Context, sel reprocess.Selector) (reprocess.Summary, error) {
	f.dry = append(f.dry, sel)
	return reprocess.Summary{Stage: sel.Stage, DryRun: true, Done: true, Counts: reprocess.Counts{Scanned: 3, Changed: 1},
		Changed: []reprocess.Change{{ID: "F1/S1", Outcome: "verified"}}}, nil
}

func (f *fakeRuns) GetRun(_ context.Context, id string) (reprocess.Run, error) {
	r, ok := f.runs[id]
	if !ok {
		return r, fmt.Errorf("run %s: %w", id, vaxpass.ErrNotFound)
	}
	return r, nil
}

func (f *fakeRuns) ListRuns(context.Context) ([]reprocess.Run, error) {
	var out []reprocess.Run
	for _, r := range f.runs {
		out = append(out, r)
	}
	return out, nil
}

type fakeDead struct {
	letters []httpapi.DeadLetter
	redrive []string
}

func (f *fakeDead) ListDead(_ context.Context, queue, after string, limit int) ([]httpapi.DeadLetter, error) {
	if queue != "central" && queue != "matcher" {
		return nil, fmt.Errorf("%w: queue %q", vaxpass.ErrInvalid, queue)
	}
	if after == "bad" {
		return nil, &vaxpass.InvalidFieldError{Field: "after", Err: errors.New("not a message id")}
	}
	var out []httpapi.DeadLetter
	for _, d := range f.letters {
		if d.Queue == queue && d.ID > after && len(out) < limit {
			out = append(out, d)
		}
	}
	return out, nil
}

func (f *fakeDead) Redrive(_ context.Context, queue string, ids []string) (int, int, error) {
	if queue != "central" {
		return 0, 0, fmt.Errorf("%w: queue %q", vaxpass.ErrInvalid, queue)
	}
	f.redrive = append(f.redrive, ids...)
	return len(ids), 0, nil
}

func opsRouter(t *testing.T, st fakeStats, runs *fakeRuns, dead *fakeDead) *apigw.Router {
	t.Helper()
	auth := &httpapi.OpsAuth{Auth: &httpapi.Auth{Keys: opsKeyStore()}}
	r := apigw.NewRouter()
	(&httpapi.OpsStats{Auth: auth, Stats: st}).Routes(r)
	(&httpapi.OpsReprocess{Auth: auth, Runs: runs, DeadLetters: dead}).Routes(r)
	return r
}

func serveOps(t *testing.T, r *apigw.Router, method, path, key, body string) (int, map[string]any) {
	t.Helper()
	rq := request{method: method, path: path, body: []byte(body), headers: map[string]string{}}
	if key != "" {
		rq.headers["Authorization"] = "Bearer " + key
	}
	resp, err := r.Serve(context.Background(), rq.event())
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if resp.Body != "" {
		if err := json.Unmarshal([]byte(resp.Body), &doc); err != nil {
			t.Fatalf("%s %s: body %q: %v", method, path, resp.Body, err)
		}
	}
	return resp.StatusCode, doc
}

func TestOpsEndpointsNeedTheOpsKey(t *testing.T) {
	r := opsRouter(t, fakeStats{}, &fakeRuns{}, &fakeDead{})
	for _, rt := range []struct{ method, path, body string }{
		{"GET", "/v1/stats", ""},
		{"POST", "/v1/ops/reprocess", `{"stage":"match"}`},
		{"GET", "/v1/ops/reprocess", ""},
		{"GET", "/v1/ops/reprocess/rp-20220701T120000Z-0a1b2c3d", ""},
		{"GET", "/v1/ops/dead-letters", ""},
		{"POST", "/v1/ops/dead-letters/redrive", `{"queue":"central"}`},
	} {
		for key, want := range map[string]int{"": 401, "vxo_bad": 401, "vxo_revoked": 401, "vxp_facilitykey": 403} {
			if status, _ := serveOps(t, r, rt.method, rt.path, key, rt.body); status != want {
				t.Errorf("%s %s with key %q: %d, want %d", rt.method, rt.path, key, status, want)
			}
		}
	}
}

func TestGetStats(t *testing.T) {
	snap := stats.Snapshot{GeneratedAt: time.Date(2022, 7, 1, 0, 0, 0, 0, time.UTC), ExpiringWithinDays: 30,
		Total: stats.Counts{Doses: 3, ByStatus: map[match.Status]int{match.Verified: 2, match.NotFound: 1}, Certificates: stats.Certificates{Valid: 1}}}
	r := opsRouter(t, fakeStats{snap: snap}, &fakeRuns{}, &fakeDead{})
	status, doc := serveOps(t, r, "GET", "/v1/stats", "vxo_good", "")
	if status != http.StatusOK {
		t.Fatalf("status %d", status)
	}
	total := doc["total"].(map[string]any)
	if total["doses"].(float64) != 3 || total["by_status"].(map[string]any)["VERIFIED"].(float64) != 2 {
		t.Errorf("total %v", total)
	}
	r = opsRouter(t, fakeStats{err: errors.New("disk gone: /var/lib/secret")}, &fakeRuns{}, &fakeDead{})
	status, doc = serveOps(t, r, "GET", "/v1/stats", "vxo_good", "")
	if status != http.StatusInternalServerError || strings.Contains(fmt.Sprint(doc), "secret") {
		t.Errorf("a failing snapshot: %d %v", status, doc)
	}
}

func TestPostReprocess(t *testing.T) {
	runs := &fakeRuns{}
	r := opsRouter(t, fakeStats{}, runs, &fakeDead{})
	status, doc := serveOps(t, r, "POST", "/v1/ops/reprocess", "vxo_good",
		`{"stage":"match","status":["not_found"],"actor":"someone-else","reason":"registry update"}`)
	if status != http.StatusAccepted || doc["id"] != "rp-20220701T120000Z-0a1b2c3d" {
		t.Fatalf("start: %d %v", status, doc)
	}
	if _, leaks := doc["in_flight"]; leaks {
		t.Errorf("the answer shows the in-flight batch (registry IDs): %v", doc)
	}
	if len(runs.started) != 1 || runs.started[0].Actor != "ops-anna" || runs.started[0].Statuses[0] != match.NotFound {
		t.Errorf("started %+v: want the authenticated actor and a normalised selector", runs.started)
	}

	status, doc = serveOps(t, r, "POST", "/v1/ops/reprocess", "vxo_good", `{"stage":"central-sign","dry_run":true}`)
	if status != http.StatusOK || doc["dry_run"] != true || len(runs.dry) != 1 || len(runs.started) != 1 {
		t.Errorf("dry run: %d %v", status, doc)
	}

	for _, bad := range []struct{ body, field string }{
		{`{"stage":"sign"}`, "stage"},
		{`{"stage":"match","status":["DONE"]}`, "status[0]"},
		{`{"stage":"match","from":"yesterday"}`, "from"},
		{`{"stage":"match","bogus":1}`, "bogus"},
		{`not json`, ""},
	} {
		status, doc := serveOps(t, r, "POST", "/v1/ops/reprocess", "vxo_good", bad.body)
		msg := fmt.Sprint(doc["error"])
		if status != http.StatusBadRequest || !strings.Contains(msg, bad.field) {
			t.Errorf("%s: %d %s, want 400 naming %q", bad.body, status, msg, bad.field)
		}
	}
}

func TestGetRuns(t *testing.T) {
	run := reprocess.Run{ID: "rp-20220701T120000Z-0a1b2c3d", Stage: reprocess.StageMatch, State: reprocess.Done,
		InFlight: &reprocess.Batch{Units: []reprocess.Unit{{ID: "F1/S1", Subject: "001090012345"}}}}
	r := opsRouter(t, fakeStats{}, &fakeRuns{runs: map[string]reprocess.Run{run.ID: run}}, &fakeDead{})
	status, doc := serveOps(t, r, "GET", "/v1/ops/reprocess/"+run.ID, "vxo_good", "")
	if status != http.StatusOK || doc["state"] != "done" {
		t.Errorf("get: %d %v", status, doc)
	}
	if _, leaks := doc["in_flight"]; leaks {
		t.Errorf("in-flight batch shown")
	}
	if status, _ := serveOps(t, r, "GET", "/v1/ops/reprocess/rp-20990101T000000Z-00000000", "vxo_good", ""); status != http.StatusNotFound {
		t.Errorf("unknown run: %d", status)
	}
	status, doc = serveOps(t, r, "GET", "/v1/ops/reprocess", "vxo_good", "")
	if list, ok := doc["runs"].([]any); status != http.StatusOK || !ok || len(list) != 1 || strings.Contains(fmt.Sprint(list), "001090012345") {
		t.Errorf("list: %d %v", status, doc)
	}
}

func TestDeadLetters(t *testing.T) {
	dead := &fakeDead{letters: []httpapi.DeadLetter{
		{Queue: "central", ID: "00000000000000000001", FacilityID: "F1", ReceiveCount: 5},
		{Queue: "central", ID: "00000000000000000002", FacilityID: "F2", ReceiveCount: 5},
		{Queue: "matcher", ID: "000000000000000000009", FacilityID: "F1", SourceID: "S9"},
	}}
	r := opsRouter(t, fakeStats{}, &fakeRuns{}, dead)
	status, doc := serveOps(t, r, "GET", "/v1/ops/dead-letters?limit=1", "vxo_good", "")
	if list := doc["dead_letters"].([]any); status != http.StatusOK || len(list) != 1 || doc["next"] != "00000000000000000001" {
		t.Errorf("page 1: %d %v", status, doc)
	}
	status, doc = serveOps(t, r, "GET", "/v1/ops/dead-letters?after=00000000000000000001", "vxo_good", "")
	if list := doc["dead_letters"].([]any); status != http.StatusOK || len(list) != 1 || doc["next"] != "" {
		t.Errorf("page 2: %d %v", status, doc)
	}
	status, doc = serveOps(t, r, "GET", "/v1/ops/dead-letters?queue=matcher", "vxo_good", "")
	if list := doc["dead_letters"].([]any); status != http.StatusOK || len(list) != 1 {
		t.Errorf("matcher: %d %v", status, doc)
	}
	status, doc = serveOps(t, r, "GET", "/v1/ops/dead-letters?after=bad", "vxo_good", "")
	if e, _ := doc["error"].(map[string]any); status != http.StatusBadRequest || e["field"] != "after" {
		t.Errorf("malformed after: %d %v; want a 400 naming after", status, doc)
	}
	for _, q := range []string{"?limit=0", "?limit=x", "?queue=other"} {
		if status, _ := serveOps(t, r, "GET", "/v1/ops/dead-letters"+q, "vxo_good", ""); status != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", q, status)
		}
	}
	status, doc = serveOps(t, r, "POST", "/v1/ops/dead-letters/redrive", "vxo_good", `{"queue":"central","ids":["00000000000000000001"]}`)
	if status != http.StatusOK || doc["moved"].(float64) != 1 || len(dead.redrive) != 1 {
		t.Errorf("redrive: %d %v", status, doc)
	}
	if status, _ := serveOps(t, r, "POST", "/v1/ops/dead-letters/redrive", "vxo_good", `{"ids":[]}`); status != http.StatusBadRequest {
		t.Errorf("redrive without a queue: %d", status)
	}
}
