package local

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/vaxpass/vaxpass/shared/stage/signing"
	"github.com/vaxpass/vaxpass/shared/store/embedded"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// signingWorker is signing.RunQueue on the embedded backend: a run handed to it works in
// a goroutine of the server until done (there is no invocation limit to stop it); runs
// left unfinished by a stopped server resume when it starts again. Outside a running
// server (the CLI) the run is worked in the caller.
type signingWorker struct {
	l     *Local
	store *embedded.SigningRuns
	runs  *signing.Runs

	mu      sync.Mutex
	base    context.Context
	running map[string]bool
	wg      sync.WaitGroup
}

// ContinueSigningRun implements signing.RunQueue.
func (w *signingWorker) ContinueSigningRun(ctx context.Context, runID string) error {
	w.mu.Lock()
	base := w.base
	if base == nil || base.Err() != nil {
		w.mu.Unlock()
		return w.work(ctx, runID)
	}
	if w.running[runID] {
		w.mu.Unlock()
		return nil
	}
	w.running[runID] = true
	w.wg.Add(1)
	w.mu.Unlock()
	go func() {
		defer w.wg.Done()
		defer func() {
			w.mu.Lock()
			delete(w.running, runID)
			w.mu.Unlock()
		}()
		if err := w.work(base, runID); err != nil && !errors.Is(err, context.Canceled) {
			w.l.opt.Log.Error("facility signing run failed", "run_id", runID, "err", err)
		}
	}()
	return nil
}

func (w *signingWorker) work(ctx context.Context, runID string) error {
	run, err := w.runs.Continue(ctx, runID, time.Time{})
	switch {
	case errors.Is(err, signing.ErrRunOver), errors.Is(err, vaxpass.ErrConflict):
		return nil
	case err != nil:
		return err
	}
	w.l.opt.Log.Info("facility signing run", "run_id", run.ID, "facility", run.FacilityID, "status", run.Status, "signed", run.Signed, "waiting", run.Waiting)
	return nil
}

// Run works runs handed over while ctx lasts, starting with those a stopped server left
// unfinished, and waits for them to stop (each resumes from its stored cursor).
func (w *signingWorker) Run(ctx context.Context) error {
	w.mu.Lock()
	w.base = ctx
	w.mu.Unlock()
	defer w.wg.Wait()
	left, err := w.store.UnfinishedSigningRuns(ctx)
	if err != nil {
		return err
	}
	for _, r := range left {
		if err := w.ContinueSigningRun(ctx, r.ID); err != nil {
			return err
		}
	}
	<-ctx.Done()
	return nil
}
