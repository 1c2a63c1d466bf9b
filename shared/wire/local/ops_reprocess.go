package local

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/vaxpass/vaxpass/shared/edge/centralqueue"
	"github.com/vaxpass/vaxpass/shared/edge/httpapi"
	"github.com/vaxpass/vaxpass/shared/stage/audit"
	"github.com/vaxpass/vaxpass/shared/stage/reprocess"
	"github.com/vaxpass/vaxpass/shared/stage/stats"
	"github.com/vaxpass/vaxpass/shared/store/embedded/feed"
	"github.com/vaxpass/vaxpass/shared/store/embedded/queue"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

const (
	// drainVisibility is the visibility timeout of DrainCentralQueue: a failing message
	// comes back after a second (and reaches the dead letters after MaxReceiveCount).
	drainVisibility = time.Second
)

// NewReprocessor returns the reprocessing use case of the local system auditing to aud
// (nil: nothing audited, for tests).
func (l *Local) NewReprocessor(aud audit.Appender) *reprocess.Service {
	svc := *l.Reprocessing.Service
	svc.Audit = aud
	return &svc
}

// DrainCentralQueue hands every message of the central signing queue to central signing,
// as the server's pump does, and returns when the queue holds none (failing messages end
// in the dead letters after MaxReceiveCount attempts a second apart). The CLI runs it after
// facility signing: the database is locked while it works, so no server can.
func (l *Local) DrainCentralQueue(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	p, err := queue.NewPump(l.Queue, l.Worker.Handle, queue.PumpConfig{
		BatchSize: 10, VisibilityTimeout: drainVisibility, PollInterval: 20 * time.Millisecond,
		// One at a time, in send order: a person signed at two facilities gets the
		// certificates an uninterrupted run gives, whatever interruptions came before.
		Concurrency: 1,
		OnError:     func(err error) { l.opt.Log.Warn("central signing drain", "err", err) },
	})
	if err != nil {
		return err
	}
	empty := func() (bool, error) {
		c, err := l.Queue.Counts(ctx)
		if err != nil {
			return false, fmt.Errorf("central queue counts: %w", err)
		}
		return c.Visible+c.InFlight+c.Delayed == 0, nil
	}
	if ok, err := empty(); ok || err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			if err == nil {
				err = ctx.Err()
			}
			return err
		case <-tick.C:
		}
		ok, err := empty()
		if ok || err != nil {
			cancel()
			if perr := <-done; err == nil {
				err = perr
			}
			return err
		}
	}
}

// Queues of `vaxpass dlq` and the dead-letter API.
const (
	// DeadCentral: facility signatures central signing gave up on (the SQS DLQ on AWS).
	DeadCentral = "central"
	// DeadMatcher: dose changes the matcher gave up on (the stream's on-failure
	// destination on AWS).
	DeadMatcher = "matcher"
)

// DeadLetter is one dead letter as ops see it (httpapi.DeadLetter).
type DeadLetter = httpapi.DeadLetter

// ListDead lists up to limit dead letters of a queue (DeadCentral or DeadMatcher) after
// the ID after ("" first).
func (l *Local) ListDead(ctx context.Context, queueName, after string, limit int) ([]DeadLetter, error) {
	out, err := l.listDead(ctx, queueName, after, limit)
	return out, deadLetterError(err)
}

func (l *Local) listDead(ctx context.Context, queueName, after string, limit int) ([]DeadLetter, error) {
	switch queueName {
	case DeadCentral:
		msgs, err := l.Queue.ListDead(ctx, after, limit)
		if errors.Is(err, queue.ErrInvalidArgument) && after != "" {
			return nil, &vaxpass.InvalidFieldError{Field: "after", Err: err}
		}
		if err != nil {
			return nil, err
		}
		out := make([]DeadLetter, len(msgs))
		for i, m := range msgs {
			out[i] = DeadLetter{Queue: DeadCentral, ID: m.ID, ReceiveCount: m.ReceiveCount, SentAt: m.SentAt, DeadAt: m.DeadAt}
			if sig, err := centralqueue.Decode(string(m.Body)); err == nil {
				out[i].FacilityID = sig.FacilityID
			}
		}
		return out, nil
	case DeadMatcher:
		var seq uint64
		if after != "" {
			var err error
			if seq, err = feed.ParseSequenceNumber(after); err != nil {
				return nil, &vaxpass.InvalidFieldError{Field: "after", Err: err}
			}
		}
		limit = min(limit, feed.MaxBatchSize)
		letters, err := l.Store.DoseFeed().ListDead(ctx, MatcherConsumer, seq, limit)
		if errors.Is(err, feed.ErrInvalidArgument) && strings.Contains(err.Error(), "not registered") {
			return nil, nil // the matcher never ran on this data: no dead letters
		}
		if err != nil {
			return nil, err
		}
		out := make([]DeadLetter, len(letters))
		for i, d := range letters {
			out[i] = DeadLetter{Queue: DeadMatcher, ID: d.Record.Change.SequenceNumber, DeadAt: d.FailedAt, Reason: d.Reason}
			if k := d.Record.Change.Keys; k != nil {
				out[i].FacilityID = k["facility_id"].String()
				out[i].SourceID = k["source_id"].String()
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("%w: queue %q: want %s or %s", vaxpass.ErrInvalid, queueName, DeadCentral, DeadMatcher)
}

// Redrive moves dead letters back: for the central queue the named ones (all when ids is
// empty) return to the queue (central signing takes them, the CLI with DrainCentralQueue);
// for the matcher the dead changes are handed to the matcher again now, and those that
// succeed leave the dead letters (a stream cannot take a record back). It answers how
// many were moved or handled, and for the matcher how many failed again.
func (l *Local) Redrive(ctx context.Context, queueName string, ids []string) (moved, failed int, err error) {
	moved, failed, err = l.redrive(ctx, queueName, ids)
	return moved, failed, deadLetterError(err)
}

// deadLetterError maps the queue's and the feed's errors to the shared classes.
func deadLetterError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, queue.ErrNotFound):
		return fmt.Errorf("%w: %w", vaxpass.ErrNotFound, err)
	case errors.Is(err, queue.ErrInvalidArgument), errors.Is(err, feed.ErrInvalidArgument):
		return fmt.Errorf("%w: %w", vaxpass.ErrInvalid, err)
	}
	return err
}

func (l *Local) redrive(ctx context.Context, queueName string, ids []string) (moved, failed int, err error) {
	switch queueName {
	case DeadCentral:
		if len(ids) == 0 {
			moved, err = l.Queue.RedriveAll(ctx)
			return moved, 0, err
		}
		moved, err = l.Queue.Redrive(ctx, ids)
		if errors.Is(err, queue.ErrInvalidArgument) {
			return 0, 0, &vaxpass.InvalidFieldError{Field: "ids", Err: err}
		}
		return moved, 0, err
	case DeadMatcher:
		if len(ids) > 0 {
			return 0, 0, &vaxpass.InvalidFieldError{Field: "ids", Err: errors.New("the matcher's dead letters are replayed all together, in stream order")}
		}
		res, err := l.Store.DoseFeed().Replay(ctx, MatcherConsumer, l.Stream.Handle, 100)
		if errors.Is(err, feed.ErrInvalidArgument) && strings.Contains(err.Error(), "not registered") {
			return 0, 0, nil
		}
		return res.Handled, res.Failed, err
	}
	return 0, 0, fmt.Errorf("%w: queue %q: want %s or %s", vaxpass.ErrInvalid, queueName, DeadCentral, DeadMatcher)
}

// Reprocessing is the ops console's reprocessing and dashboard on the embedded backend:
// runs started from the API work in the background of the server (wire.RunStarter); the
// dashboard's numbers come from counters kept as data is written.
type Reprocessing struct {
	l       *Local
	Service *reprocess.Service
	Stats   *stats.Service
	Auth    *httpapi.OpsAuth

	mu      sync.Mutex
	baseCtx context.Context // the server's lifetime, set by Run
	running map[string]bool
	wg      sync.WaitGroup
}

// AttachReprocessing returns the reprocessing and dashboard of a Local (OpenLocal builds
// them, with their routes).
func AttachReprocessing(l *Local, _ *Ops) *Reprocessing { return l.Reprocessing }

// Run lets API-started runs work until ctx ends; it waits for them to stop (each records
// where it stopped and resumes on its next start).
func (r *Reprocessing) Run(ctx context.Context) error {
	r.mu.Lock()
	r.baseCtx = ctx
	r.mu.Unlock()
	defer r.wg.Wait()
	<-ctx.Done()
	return nil
}

// StartRun implements wire.RunStarter: the begun run works in the background of the
// server until it is done or the server stops (it then resumes on its next start). A run
// found unfinished is started too unless this server already works on it: no worker
// outlives the server.
func (r *Reprocessing) StartRun(_ context.Context, runID string, _ bool) error {
	r.mu.Lock()
	base := r.baseCtx
	if base == nil || base.Err() != nil {
		r.mu.Unlock()
		return errors.New("reprocessing: the server is not running")
	}
	if r.running[runID] {
		r.mu.Unlock()
		return fmt.Errorf("%w: run %s is already working", vaxpass.ErrConflict, runID)
	}
	r.running[runID] = true
	r.wg.Add(1)
	r.mu.Unlock()
	go func() {
		defer r.wg.Done()
		defer func() {
			r.mu.Lock()
			delete(r.running, runID)
			r.mu.Unlock()
		}()
		sum, err := r.Service.Run(base, reprocess.Selector{RunID: runID}, reprocess.Options{})
		if err != nil && !errors.Is(err, context.Canceled) {
			r.l.opt.Log.Error("reprocessing run failed", "run_id", runID, "err", err)
			return
		}
		r.l.opt.Log.Info("reprocessing run", "run_id", runID, "done", sum.Done, "changed", sum.Counts.Changed, "failed", sum.Counts.Failed)
	}()
	return nil
}

// localDeadLetters adapts the Local's dead letters to the API.
type localDeadLetters struct{ l *Local }

func (d localDeadLetters) ListDead(ctx context.Context, queueName, after string, limit int) ([]httpapi.DeadLetter, error) {
	return d.l.ListDead(ctx, queueName, after, limit)
}

func (d localDeadLetters) Redrive(ctx context.Context, queueName string, ids []string) (int, int, error) {
	return d.l.Redrive(ctx, queueName, ids)
}
