package cloud

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/vaxpass/vaxpass/shared/edge/emf"
	"github.com/vaxpass/vaxpass/shared/stage/renewal"
	"github.com/vaxpass/vaxpass/shared/stage/signing"
	"github.com/vaxpass/vaxpass/shared/store/awssqs"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// RenewalRequest is the renewal function's direct event: the schedule sends
// {"action":"renew"}; an operator may invoke it with another window, e.g.
// {"action":"renew","window":"60d"}, or ask where a run is
// ({"action":"renewal-status","run_id":"..."}).
type RenewalRequest struct {
	Action string `json:"action"`
	// Window in renewal.ParseWindow's form; empty: the configured window (RENEWAL_WINDOW_DAYS).
	Window string `json:"window,omitempty"`
	// Actor is recorded in the audit trail (default "schedule").
	Actor string `json:"actor,omitempty"`
	// Detach: start the run (or join the unfinished one) and answer at once with its ID;
	// otherwise the invocation answers when the run is finished, or fails with the
	// deadline (invoke it again to go on waiting).
	Detach bool `json:"detach,omitempty"`
	// RunID is the run ActionRenewalStatus reports on.
	RunID string `json:"run_id,omitempty"`
}

// Renewal function actions.
const (
	ActionRenew         = "renew"
	ActionRenewalStatus = "renewal-status"
)

// RenewalMessage is one message of the renewal queue: a slice of a run to work.
type RenewalMessage struct {
	RunID string `json:"run_id"`
	Slice int    `json:"slice"`
}

// Renewal fan-out settings. The queue's event source mapping (template.yaml,
// RenewalFunction) runs at most RenewalConcurrency invocations at once; a run is cut
// into more slices than that, so a slice that is quick leaves its worker for another.
// On the certificates table's partitioned expiry index (awsddb.ExpiryShards: 16 and the
// legacy one) RenewalSlices becomes 2 time ranges x 17 partitions, 34 slices: a page then
// reads 1/16 of a month, not all of it (renewal.Run.Shards).
// Each invocation keeps RenewalInFlight signatures going: one KMS Sign takes ~20 ms, so
// 8 x 16 in flight can use a budget of ~3,000 signs/s; the bulk budget is what bounds
// the rate.
const (
	RenewalConcurrency = 8
	RenewalSlices      = 4 * RenewalConcurrency
	RenewalInFlight    = 16
	// renewalSliceMargin is left before a worker's deadline: it stops at the end of a
	// batch, stores its place and queues the slice again.
	renewalSliceMargin = 30 * time.Second
	// renewalWaitMargin is left before a waiting invocation's deadline: it answers with
	// the deadline error, and the caller invokes again to go on waiting.
	renewalWaitMargin = 5 * time.Second
	// renewalStale: a slice not stored for this long has no live worker (a worker stores
	// after every batch, and a killed invocation's message returns after the queue's
	// visibility timeout, 16 minutes at most): starting or joining a run queues it again.
	renewalStale = 20 * time.Minute
	// renewalPoll is how often a waiting invocation reads the run's state.
	renewalPoll = time.Second
)

// HandleRenewal is the renewal function: a batch of its queue (one slice of a run each:
// HandleRenewalSlices), the schedule (starts a run, or queues again the stale slices of
// the unfinished one, and returns), or a direct invoke (RenewalRequest).
func (a *Stack) HandleRenewal(ctx context.Context, ev json.RawMessage) (any, error) {
	ctx = signing.WithPriority(ctx, signing.Bulk) // renewal is bulk work in the KMS budget
	var probe struct {
		DetailType string `json:"detail-type"`
		Records    []struct {
			EventSource string `json:"eventSource"`
		} `json:"Records"`
	}
	_ = json.Unmarshal(ev, &probe)
	var req RenewalRequest
	switch {
	case len(probe.Records) > 0 && probe.Records[0].EventSource == "aws:sqs":
		var sqsEv events.SQSEvent
		if err := json.Unmarshal(ev, &sqsEv); err != nil {
			return nil, fmt.Errorf("renewal: SQS event: %w", err)
		}
		return a.HandleRenewalSlices(ctx, sqsEv)
	case probe.DetailType == "Scheduled Event":
		req = RenewalRequest{Action: ActionRenew, Detach: true}
	default:
		if err := decodeStrict(string(ev), &req); err != nil {
			return renewal.Summary{}, fmt.Errorf("%w: renewal event: %w", ErrOpsRequest, err)
		}
	}
	switch {
	case req.Action == ActionRenewalStatus && req.RunID == "":
		return renewal.Summary{}, fmt.Errorf("%w: %s needs run_id", ErrOpsRequest, ActionRenewalStatus)
	case req.Action != ActionRenew && req.Action != ActionRenewalStatus:
		return renewal.Summary{}, fmt.Errorf("%w: renewal event action %q, want %q or %q", ErrOpsRequest, req.Action, ActionRenew, ActionRenewalStatus)
	}
	window := a.cfg.RenewalWindow
	if req.Window != "" {
		w, err := renewal.ParseWindow(req.Window)
		if err != nil {
			return renewal.Summary{}, fmt.Errorf("%w: %w", ErrOpsRequest, err)
		}
		window = w
	}
	svc, err := a.Renewal(ctx)
	if err != nil {
		return renewal.Summary{}, err
	}
	if req.Action == ActionRenewalStatus {
		return svc.Status(ctx, req.RunID)
	}
	if window <= 0 {
		window = renewal.DefaultWindow
	}
	actor := req.Actor
	if actor == "" {
		actor = "schedule"
	}
	sum, err := a.renew(ctx, svc, actor, window, req.Detach)
	a.cfg.Log.Info("renewal run", "run", sum.RunID, "window", sum.Window, "resumed", sum.Resumed, "slices", sum.Slices,
		"slices_done", sum.SlicesDone, "renewed", sum.Counts.Renewed, "failed", sum.Counts.Failed, "conflicts", sum.Counts.Conflicts, "err", err)
	return sum, err
}

// renew starts a run (or joins the unfinished one) and queues its slices; detached it
// answers at once, otherwise when the run is finished. A joined run of another window is
// waited for first, and then the run asked for starts (Summary.Previous), as the
// embedded backend's renewal.Service.Run does.
func (a *Stack) renew(ctx context.Context, svc *renewal.Service, actor string, window time.Duration, detach bool) (renewal.Summary, error) {
	if dl, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, dl.Add(-renewalWaitMargin))
		defer cancel()
	}
	var prev *renewal.Summary
	for {
		run, resumed, err := a.LaunchRenewal(ctx, svc, actor, window)
		if err != nil {
			return renewal.Summary{Previous: prev}, err
		}
		sum, err := svc.Status(ctx, run.ID)
		sum.Resumed, sum.Previous = resumed, prev
		if err != nil || detach {
			return sum, err
		}
		for sum.FinishedAt.IsZero() {
			if err := sleepCtx(ctx, renewalPoll); err != nil {
				return sum, fmt.Errorf("renewal run %s: %d of %d slices done: %w", run.ID, sum.SlicesDone, sum.Slices, err)
			}
			next, err := svc.Status(ctx, run.ID)
			if err != nil {
				return sum, err
			}
			next.Resumed, next.Previous = resumed, prev
			sum = next
		}
		if !resumed || run.Window == window || prev != nil {
			return sum, nil
		}
		prev = &sum
	}
}

// LaunchRenewal starts a run of window cut into RenewalSlices and queues one message per
// slice; when a run is unfinished it joins that one instead (resumed), queueing again
// only its slices that no worker stored for a while (a lost message, one gone to the
// dead-letter queue). Queueing a slice twice is harmless: its saves are conditional, and
// the second worker lets it go.
func (a *Stack) LaunchRenewal(ctx context.Context, svc *renewal.Service, actor string, window time.Duration) (run renewal.Run, resumed bool, err error) {
	run, resumed, err = svc.Resume(ctx)
	if err != nil {
		return run, false, err
	}
	var slices []int
	if resumed {
		slices, err = svc.UnfinishedSlices(ctx, run, svc.Now().Add(-renewalStale))
	} else {
		if run, err = svc.Start(ctx, actor, window); err != nil {
			return run, false, err
		}
		for i := range run.SliceCount() {
			slices = append(slices, i)
		}
	}
	if err != nil {
		return run, resumed, err
	}
	return run, resumed, a.queueSlices(ctx, run.ID, slices)
}

func (a *Stack) renewalQueue() (*awssqs.Sender, error) {
	if a.cfg.RenewalQueueURL == "" {
		return nil, fmt.Errorf("%w: %s is not set: renewal runs need their queue", ErrConfig, EnvRenewalQueueURL)
	}
	return awssqs.NewSender(a.sqs, a.cfg.RenewalQueueURL)
}

// queueSlices sends one message per slice. One SendMessage each, not SendMessageBatch:
// a run has at most renewal.MaxSlices, and the function's policy grants sqs:SendMessage
// alone.
func (a *Stack) queueSlices(ctx context.Context, runID string, slices []int) error {
	if len(slices) == 0 {
		return nil
	}
	q, err := a.renewalQueue()
	if err != nil {
		return err
	}
	for _, sl := range slices {
		body, err := json.Marshal(RenewalMessage{RunID: runID, Slice: sl})
		if err != nil {
			return err
		}
		if _, err := q.Send(ctx, body); err != nil {
			return fmt.Errorf("renewal run %s: queue slice %d: %w", runID, sl, err)
		}
	}
	return nil
}

// HandleRenewalSlices is the renewal queue's consumer: each message works one slice of a
// run until ~30 s before the invocation's deadline, then queues the slice again if it is
// not done. A failure is that message's (partial batch response): it comes back after the
// queue's visibility timeout and the slice resumes from its stored place.
func (a *Stack) HandleRenewalSlices(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	ctx = signing.WithPriority(ctx, signing.Bulk)
	// An empty list, not null: ministack's event source mapping reads null as a failed
	// invocation and leaves every message of the batch to come back (AWS takes both).
	resp := events.SQSEventResponse{BatchItemFailures: []events.SQSBatchItemFailure{}}
	svc, err := a.Renewal(ctx)
	if err != nil {
		return resp, err
	}
	for _, m := range ev.Records {
		if err := a.workSlice(ctx, svc, m.Body); err != nil {
			a.cfg.Log.Error("renewal slice failed", "message_id", m.MessageId, "err", err)
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: m.MessageId})
		}
	}
	return resp, nil
}

func (a *Stack) workSlice(ctx context.Context, svc *renewal.Service, body string) error {
	var m RenewalMessage
	if err := decodeStrict(body, &m); err != nil || m.RunID == "" {
		// A malformed message can never succeed: logged and dropped, not retried forever.
		a.cfg.Log.Error("renewal slice: malformed message dropped", "err", err)
		return nil
	}
	var stopAt time.Time
	if dl, ok := ctx.Deadline(); ok {
		stopAt = dl.Add(-renewalSliceMargin)
	}
	done, err := svc.WorkSlice(ctx, m.RunID, m.Slice, stopAt)
	switch {
	case errors.Is(err, renewal.ErrSliceTaken):
		a.cfg.Log.Info("renewal slice taken by another worker", "run", m.RunID, "slice", m.Slice)
		return nil
	case errors.Is(err, vaxpass.ErrInvalid):
		a.cfg.Log.Error("renewal slice: message dropped", "run", m.RunID, "slice", m.Slice, "err", err)
		return nil
	case err != nil:
		return fmt.Errorf("run %s slice %d: %w", m.RunID, m.Slice, err)
	case !done:
		a.cfg.Log.Info("renewal slice continues in another invocation", "run", m.RunID, "slice", m.Slice)
		return a.queueSlices(ctx, m.RunID, []int{m.Slice})
	}
	return nil
}

// Renewal returns the renewal use case over the certificates table, the ops table, and the
// DSC key, paced by the stack's bulk KMS budget (BulkBudget) so renewal leaves
// interactive issuance its headroom; its runs are cut into RenewalSlices.
func (a *Stack) Renewal(ctx context.Context) (*renewal.Service, error) {
	// The DSC signer draws on the stack's budget itself (bulk: the handlers mark their
	// context so); a second budget here would take two tokens a renewal.
	svc, err := a.Sys.Renewal(nil, nil)
	if err != nil {
		return nil, err
	}
	svc.Slices, svc.Workers, svc.InFlight = RenewalSlices, RenewalConcurrency, RenewalInFlight
	if m := a.metrics(); m != nil {
		svc.OnBatch = func(c renewal.Counts) { m.Count(emf.CertificatesRenewed, c.Renewed) }
	}
	return svc, nil
}

// BulkShare is the part of the KMS budget bulk work (backlog, renewal, reprocessing) may
// use: the rest is kept for interactive issuance.
const BulkShare = 0.9

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
