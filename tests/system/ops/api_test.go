package ops

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/stage/audit"
	"github.com/vaxpass/vaxpass/shared/stage/reprocess"
	"github.com/vaxpass/vaxpass/shared/testkit/server"
	"github.com/vaxpass/vaxpass/shared/wire/local"
)

// TestReprocessThroughTheAPI: with the server running, POST /v1/ops/reprocess starts a run
// in the background and answers its ID at once; GET shows it working and then done; the
// audit trail names the ops key's actor; a dry run answers its summary directly.
func TestReprocessThroughTheAPI(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the CLI and a population")
	}
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	w := buildWorld(t, dir, data, 800, 9, nil)

	// The HTTP front and the background reprocessing, as `vaxpass serve` runs them.
	srv := server.Open(t, server.Options{Options: local.Options{DataDir: data, Log: quietLog()}, FrontOnly: true, OpsActor: "ops-test"})
	ops, err := local.AttachOps(srv.Local)
	if err != nil {
		t.Fatal(err)
	}
	srv.Go("reprocessing", local.AttachReprocessing(srv.Local, ops).Run)
	api := srv.Client(srv.OpsKey)
	call := func(method, path string, body any, out any) int {
		t.Helper()
		r := api.Call(t, method, path, body)
		if out != nil {
			if err := json.Unmarshal(r.Body, out); err != nil {
				t.Fatalf("%s %s: %v", method, path, err)
			}
		}
		return r.Status
	}

	// Everything was matched when the world was built: re-match every record.
	sel := map[string]any{"stage": "match", "reason": "api test"}
	var dry reprocess.Summary
	if status := call("POST", "/v1/ops/reprocess", map[string]any{"stage": "match", "dry_run": true}, &dry); status != http.StatusOK || !dry.Done || dry.Counts.Scanned != int64(len(w.records)) || dry.Counts.Changed != 0 {
		t.Fatalf("dry run: %d %+v", status, dry.Counts)
	}
	var run reprocess.Run
	if status := call("POST", "/v1/ops/reprocess", sel, &run); status != http.StatusAccepted || run.ID == "" || run.Actor != "ops-test" {
		t.Fatalf("start: %d %+v", status, run)
	}
	deadline := time.Now().Add(time.Minute)
	for run.State != reprocess.Done || !run.Audited {
		if time.Now().After(deadline) {
			t.Fatalf("run not done after a minute: %+v", run)
		}
		time.Sleep(50 * time.Millisecond)
		if status := call("GET", "/v1/ops/reprocess/"+run.ID, nil, &run); status != http.StatusOK {
			t.Fatalf("get run: %d", status)
		}
	}
	if run.Counts.Scanned != int64(len(w.records)) || run.Counts.Changed != 0 || run.InFlight != nil {
		t.Errorf("finished run: %+v", run)
	}
	var list struct{ Runs []reprocess.Run }
	if status := call("GET", "/v1/ops/reprocess", nil, &list); status != http.StatusOK || len(list.Runs) < 2 {
		t.Errorf("runs: %d %d", status, len(list.Runs))
	}
	found := false
	err = audit.All(context.Background(), ops.Audit, audit.Query{Action: audit.ActionReprocess}, func(e audit.Entry) error {
		if e.RunID == run.ID {
			found = e.Actor == "ops-test" && e.Reason == "api test" && e.Counts["scanned"] == int64(len(w.records))
		}
		return nil
	})
	if err != nil || !found {
		t.Errorf("audit entry of the run: found %v, %v", found, err)
	}
	var dead struct {
		DeadLetters []local.DeadLetter `json:"dead_letters"`
	}
	if status := call("GET", "/v1/ops/dead-letters", nil, &dead); status != http.StatusOK || len(dead.DeadLetters) != 0 {
		t.Errorf("dead letters: %d %v", status, dead)
	}
}
