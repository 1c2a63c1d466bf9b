package contract

import (
	"net/http"
	"strings"
	"testing"
)

// statsCounts is one row of GET /v1/stats.
type statsCounts struct {
	Doses        int            `json:"doses"`
	ByStatus     map[string]int `json:"by_status"`
	Certificates struct {
		Valid, Expiring, Expired, Revoked int
	} `json:"certificates"`
}

type statsSnapshot struct {
	Statuses  []string    `json:"statuses"`
	Total     statsCounts `json:"total"`
	Provinces []struct {
		Code string `json:"code"`
		statsCounts
	} `json:"provinces"`
	Issuance []struct {
		Date   string `json:"date"`
		Issued int    `json:"issued"`
	} `json:"issuance"`
}

// reprocessRun is a run of /v1/ops/reprocess.
type reprocessRun struct {
	ID      string `json:"id"`
	Stage   string `json:"stage"`
	Actor   string `json:"actor"`
	State   string `json:"state"`
	Audited bool   `json:"audited"`
}

// startReprocessing runs the server's background reprocessing (as `vaxpass serve` does)
// until the test ends: without it a run cannot be started from the API.
func (h *harness) startReprocessing() {
	h.srv.Go("reprocessing", h.sys.Reprocessing.Run)
}

// checkReprocess drives the dashboard, reprocessing and dead-letter endpoints after the
// pipeline has matched and signed the demo records and one certificate was revoked.
func (h *harness) checkReprocess(t *testing.T) {
	t.Helper()
	h.startReprocessing()
	jsonHeader := map[string]string{"Content-Type": "application/json"}
	facHeader := map[string]string{"Authorization": "Bearer " + h.key, "Content-Type": "application/json"}

	// ---- the dashboard ----
	var snap statsSnapshot
	h.do(t, call{name: "stats", method: "GET", path: "/v1/stats", header: h.opsAuth(), request: reqValid, status: 200}).json(t, &snap)
	if snap.Total.Doses == 0 || len(snap.Provinces) == 0 || len(snap.Issuance) == 0 {
		t.Errorf("stats after the pipeline ran: %d doses, %d provinces, %d issuance days; want some of each", snap.Total.Doses, len(snap.Provinces), len(snap.Issuance))
	}
	byStatus, provinceDoses := 0, 0
	for _, s := range snap.Statuses {
		byStatus += snap.Total.ByStatus[s]
	}
	for _, p := range snap.Provinces {
		provinceDoses += p.Doses
	}
	if byStatus != snap.Total.Doses || provinceDoses != snap.Total.Doses {
		t.Errorf("stats: total %d doses, by status %d, over provinces %d; want equal", snap.Total.Doses, byStatus, provinceDoses)
	}
	if snap.Total.Certificates.Revoked < 1 {
		t.Errorf("stats: %d revoked certificates after a revocation", snap.Total.Certificates.Revoked)
	}
	for _, c := range []call{
		{name: "stats without key", method: "GET", path: "/v1/stats", request: reqInvalid, status: 401},
		{name: "stats with a facility key", method: "GET", path: "/v1/stats", header: facHeader, status: 403},
	} {
		h.do(t, c)
	}

	// ---- a dry run answers at once and stores nothing ----
	var sum struct {
		Stage  string `json:"stage"`
		DryRun bool   `json:"dry_run"`
		Done   bool   `json:"done"`
		Counts struct{ Scanned, Selected int64 }
	}
	dry := []byte(`{"stage":"match","status":["VERIFIED","MISMATCH"],"dry_run":true,"reason":"contract dry run"}`)
	h.do(t, call{name: "reprocess dry run", method: "POST", path: "/v1/ops/reprocess", header: h.opsAuth(), body: dry, request: reqValid, status: 200}).json(t, &sum)
	if sum.Stage != "match" || !sum.DryRun || !sum.Done || sum.Counts.Selected == 0 || sum.Counts.Selected > sum.Counts.Scanned {
		t.Errorf("dry run: %+v; want a finished match dry run selecting some of the records scanned", sum)
	}
	var runs struct {
		Runs []reprocessRun `json:"runs"`
	}
	h.do(t, call{name: "reprocess runs after a dry run", method: "GET", path: "/v1/ops/reprocess", header: h.opsAuth(), request: reqValid, status: 200}).json(t, &runs)
	if len(runs.Runs) != 0 {
		t.Errorf("a dry run left runs behind: %+v", runs.Runs)
	}

	// ---- a run, working in the background ----
	var run reprocessRun
	start := []byte(`{"stage":"match","status":["NOT_FOUND","MISMATCH"],"reason":"contract run","actor":"someone-else"}`)
	h.do(t, call{name: "reprocess", method: "POST", path: "/v1/ops/reprocess", header: h.opsAuth(), body: start, request: reqValid, status: 202}).json(t, &run)
	if run.Stage != "match" || run.Actor != opsActor || !strings.HasPrefix(run.ID, "rp-") {
		t.Errorf("started run: %+v; want a match run of actor %s (the key's, not the body's)", run, opsActor)
	}
	runPath := "/v1/ops/reprocess/" + run.ID
	eventually(t, "the reprocessing run to finish", func() bool {
		h.do(t, call{name: "reprocess run", method: "GET", path: runPath, header: h.opsAuth(), request: reqValid, status: 200}).json(t, &run)
		return run.State == "done" && run.Audited
	})
	h.do(t, call{name: "reprocess runs", method: "GET", path: "/v1/ops/reprocess", header: h.opsAuth(), request: reqValid, status: 200}).json(t, &runs)
	if len(runs.Runs) != 1 || runs.Runs[0].ID != run.ID {
		t.Errorf("runs: %+v; want the one run %s", runs.Runs, run.ID)
	}
	h.do(t, call{name: "reprocess a finished run", method: "POST", path: "/v1/ops/reprocess", header: h.opsAuth(), body: mustJSON(t, map[string]string{"run_id": run.ID}), request: reqValid, status: 409})

	unknownRun := "rp-20220715T080000Z-0a1b2c3d"
	for _, c := range []struct {
		call
		field string
	}{
		{call: call{name: "reprocess without key", method: "POST", path: "/v1/ops/reprocess", header: jsonHeader, body: dry, request: reqInvalid, status: 401}},
		{call: call{name: "reprocess with a facility key", method: "POST", path: "/v1/ops/reprocess", header: facHeader, body: dry, status: 403}},
		{call: call{name: "reprocess an unknown stage", method: "POST", path: "/v1/ops/reprocess", header: h.opsAuth(), body: []byte(`{"stage":"sign","dry_run":true}`), request: reqInvalid, status: 400}, field: "stage"},
		{call: call{name: "reprocess without stage", method: "POST", path: "/v1/ops/reprocess", header: h.opsAuth(), body: []byte(`{"dry_run":true}`), status: 400}, field: "stage"},
		{call: call{name: "reprocess an unknown status", method: "POST", path: "/v1/ops/reprocess", header: h.opsAuth(), body: []byte(`{"stage":"match","status":["VERIFIED","LOST"],"dry_run":true}`), status: 400}, field: "status[1]"},
		{call: call{name: "reprocess with a bad date", method: "POST", path: "/v1/ops/reprocess", header: h.opsAuth(), body: []byte(`{"stage":"match","from":"15/07/2022","dry_run":true}`), status: 400}, field: "from"},
		{call: call{name: "reprocess a bad run_id", method: "POST", path: "/v1/ops/reprocess", header: h.opsAuth(), body: []byte(`{"run_id":"run-1"}`), request: reqInvalid, status: 400}, field: "run_id"},
		{call: call{name: "reprocess an unknown field", method: "POST", path: "/v1/ops/reprocess", header: h.opsAuth(), body: []byte(`{"stage":"match","dry_run":true,"stages":["match"]}`), request: reqInvalid, status: 400}, field: "stages"},
		{call: call{name: "reprocess with malformed JSON", method: "POST", path: "/v1/ops/reprocess", header: h.opsAuth(), body: []byte(`{"stage":`), request: reqInvalid, status: 400}},
		{call: call{name: "reprocess an unknown run", method: "POST", path: "/v1/ops/reprocess", header: h.opsAuth(), body: mustJSON(t, map[string]string{"run_id": unknownRun}), request: reqValid, status: 404}},
		{call: call{name: "reprocess over 64 KiB", method: "POST", path: "/v1/ops/reprocess", header: h.opsAuth(), body: []byte(`{"stage":"match","reason":"` + strings.Repeat("x", 65<<10) + `"}`), status: 413}},
		{call: call{name: "runs without key", method: "GET", path: "/v1/ops/reprocess", request: reqInvalid, status: 401}},
		{call: call{name: "runs with a facility key", method: "GET", path: "/v1/ops/reprocess", header: facHeader, status: 403}},
		{call: call{name: "run without key", method: "GET", path: runPath, request: reqInvalid, status: 401}},
		{call: call{name: "run with a facility key", method: "GET", path: runPath, header: facHeader, status: 403}},
		{call: call{name: "an unknown run", method: "GET", path: "/v1/ops/reprocess/" + unknownRun, header: h.opsAuth(), request: reqValid, status: 404}},
		{call: call{name: "a run of a bad ID", method: "GET", path: "/v1/ops/reprocess/run-1", header: h.opsAuth(), request: reqInvalid, status: 400}},
	} {
		r := h.do(t, c.call)
		if c.field != "" && r.status == http.StatusBadRequest {
			if e := r.errorBody(t); e.Field != c.field {
				t.Errorf("%s: error names field %q (%s), want %q", c.name, e.Field, e.Code, c.field)
			}
		}
		if r.status == http.StatusUnauthorized && r.header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: 401 without WWW-Authenticate", c.name)
		}
	}

	// ---- dead letters: a healthy pipeline left none ----
	var page struct {
		DeadLetters []map[string]any `json:"dead_letters"`
		Next        string           `json:"next"`
	}
	for _, path := range []string{"/v1/ops/dead-letters", "/v1/ops/dead-letters?queue=central&limit=10", "/v1/ops/dead-letters?queue=matcher"} {
		h.do(t, call{name: "dead letters " + path, method: "GET", path: path, header: h.opsAuth(), request: reqValid, status: 200}).json(t, &page)
		if len(page.DeadLetters) != 0 || page.Next != "" {
			t.Errorf("%s: %+v; want no dead letters", path, page)
		}
	}
	var moved struct{ Moved, Failed int }
	for _, q := range []string{"central", "matcher"} {
		h.do(t, call{name: "redrive " + q, method: "POST", path: "/v1/ops/dead-letters/redrive", header: h.opsAuth(), body: mustJSON(t, map[string]string{"queue": q}), request: reqValid, status: 200}).json(t, &moved)
		if moved.Moved != 0 || moved.Failed != 0 {
			t.Errorf("redrive %s with no dead letters: %+v", q, moved)
		}
	}
	for _, c := range []struct {
		call
		field string
	}{
		{call: call{name: "dead letters without key", method: "GET", path: "/v1/ops/dead-letters", request: reqInvalid, status: 401}},
		{call: call{name: "dead letters with a facility key", method: "GET", path: "/v1/ops/dead-letters", header: facHeader, status: 403}},
		{call: call{name: "dead letters of an unknown queue", method: "GET", path: "/v1/ops/dead-letters?queue=lookup", header: h.opsAuth(), request: reqInvalid, status: 400}, field: "queue"},
		{call: call{name: "dead letters limit 0", method: "GET", path: "/v1/ops/dead-letters?limit=0", header: h.opsAuth(), request: reqInvalid, status: 400}, field: "limit"},
		{call: call{name: "dead letters limit over 1000", method: "GET", path: "/v1/ops/dead-letters?limit=1001", header: h.opsAuth(), request: reqInvalid, status: 400}, field: "limit"},
		{call: call{name: "dead letters limit not a number", method: "GET", path: "/v1/ops/dead-letters?limit=ten", header: h.opsAuth(), request: reqInvalid, status: 400}, field: "limit"},
		{call: call{name: "matcher dead letters after a bad cursor", method: "GET", path: "/v1/ops/dead-letters?queue=matcher&after=zz", header: h.opsAuth(), request: reqValid, status: 400}},
		{call: call{name: "redrive without key", method: "POST", path: "/v1/ops/dead-letters/redrive", header: jsonHeader, body: []byte(`{"queue":"central"}`), request: reqInvalid, status: 401}},
		{call: call{name: "redrive with a facility key", method: "POST", path: "/v1/ops/dead-letters/redrive", header: facHeader, body: []byte(`{"queue":"central"}`), status: 403}},
		{call: call{name: "redrive without queue", method: "POST", path: "/v1/ops/dead-letters/redrive", header: h.opsAuth(), body: []byte(`{}`), request: reqInvalid, status: 400}, field: "queue"},
		{call: call{name: "redrive an unknown queue", method: "POST", path: "/v1/ops/dead-letters/redrive", header: h.opsAuth(), body: []byte(`{"queue":"lookup"}`), request: reqInvalid, status: 400}, field: "queue"},
		{call: call{name: "redrive named matcher letters", method: "POST", path: "/v1/ops/dead-letters/redrive", header: h.opsAuth(), body: []byte(`{"queue":"matcher","ids":["1"]}`), request: reqValid, status: 400}},
		{call: call{name: "redrive an unknown field", method: "POST", path: "/v1/ops/dead-letters/redrive", header: h.opsAuth(), body: []byte(`{"queue":"central","all":true}`), request: reqInvalid, status: 400}, field: "all"},
		{call: call{name: "redrive malformed JSON", method: "POST", path: "/v1/ops/dead-letters/redrive", header: h.opsAuth(), body: []byte(`{"queue":`), request: reqInvalid, status: 400}},
		{call: call{name: "redrive a malformed message ID", method: "POST", path: "/v1/ops/dead-letters/redrive", header: h.opsAuth(), body: []byte(`{"queue":"central","ids":["no-such-message"]}`), request: reqValid, status: 400}},
		{call: call{name: "redrive an unknown dead letter", method: "POST", path: "/v1/ops/dead-letters/redrive", header: h.opsAuth(), body: []byte(`{"queue":"central","ids":["00000000deadbeef"]}`), request: reqValid, status: 404}},
		{call: call{name: "redrive over 64 KiB", method: "POST", path: "/v1/ops/dead-letters/redrive", header: h.opsAuth(), body: []byte(`{"queue":"central","ids":["` + strings.Repeat("x", 65<<10) + `"]}`), status: 413}},
		{call: call{name: "wrong method on a run", method: "DELETE", path: runPath, header: h.opsAuth(), status: 405}},
	} {
		r := h.do(t, c.call)
		if c.field != "" && r.status == http.StatusBadRequest {
			if e := r.errorBody(t); e.Field != c.field {
				t.Errorf("%s: error names field %q (%s), want %q", c.name, e.Field, e.Code, c.field)
			}
		}
		if r.status == http.StatusUnauthorized && r.header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: 401 without WWW-Authenticate", c.name)
		}
	}
}
