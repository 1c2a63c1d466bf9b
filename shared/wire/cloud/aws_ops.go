package cloud

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/vaxpass/vaxpass/shared/stage/reprocess"
	"github.com/vaxpass/vaxpass/shared/stage/signing"
	"github.com/vaxpass/vaxpass/shared/store/awssqs"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// Ops actions: the ops function's direct invokes (the CLI, with the function's role) and
// the facility signing schedule's.
const (
	ActionSignAllFacilities = "sign-all-facilities"
	ActionSign              = "sign"             // facility_id: facility signing for one facility
	ActionReprocess         = "reprocess"        // selector: start a run (or a dry run)
	ActionReprocessStatus   = "reprocess-status" // run_id: where a run is
	ActionReprocessRuns     = "reprocess-runs"   // every run
	// ActionReprocessRequeue (run_id) queues an unfinished run's work again -- one message
	// per unfinished part -- for a run whose work messages were lost to the work queue's
	// dead letters, never for one invocations work on (two workers on one part).
	ActionReprocessRequeue = "reprocess-requeue"
)

// OpsRequest is the ops function's direct-invoke event, e.g.
// {"action":"reprocess","selector":{"stage":"match","status":["NOT_FOUND"],"reason":"registry update"}}.
type OpsRequest struct {
	Action     string              `json:"action"`
	FacilityID string              `json:"facility_id,omitempty"`
	Selector   *reprocess.Selector `json:"selector,omitempty"`
	RunID      string              `json:"run_id,omitempty"`
}

// OpsResult is the ops function's answer; only the part of the action run is set.
type OpsResult struct {
	Action  string             `json:"action"`
	Signing *SigningRun        `json:"signing,omitempty"`
	SignRun *signing.Run       `json:"sign_run,omitempty"`
	Run     *reprocess.Run     `json:"run,omitempty"`
	Runs    []reprocess.Run    `json:"runs,omitempty"`
	Summary *reprocess.Summary `json:"summary,omitempty"`
}

// ErrOpsRequest: an ops event with an unknown action or a missing field.
var ErrOpsRequest = errors.New("ops request")

// WorkMessage is a message of the ops function's work queue: continue part Part of
// reprocessing run RunID from its stored cursor. Without Part: a run of one cursor is
// worked; a run cut into parts gets one message per unfinished part (the message
// StartRun sends: it knows the run's ID only).
type WorkMessage struct {
	RunID string `json:"run_id"`
	Part  *int   `json:"part,omitempty"`
}

// sqsRunStarter is wire.RunStarter on AWS: a begun run is a message on the work queue,
// fanned out into one message per part; an invocation works its part until its time is
// nearly up, then sends the part's next message. The queue's event source mapping
// (template.yaml, OpsFunction) bounds how many parts are worked at once. A function
// killed in the middle leaves its message to come back after its visibility timeout: the
// part resumes from its last stored batch.
type sqsRunStarter struct{ work *awssqs.Sender }

func (s sqsRunStarter) StartRun(ctx context.Context, runID string, found bool) error {
	if found {
		// Its message is on the queue (or in flight, or coming back after a killed
		// invocation's visibility timeout): a second one would be a second worker on one
		// run. A message lost to the work queue's dead letters is sent again by ops
		// (vaxpass reprocess --requeue).
		return nil
	}
	return s.send(ctx, WorkMessage{RunID: runID})
}

func (s sqsRunStarter) send(ctx context.Context, m WorkMessage) error {
	body, err := json.Marshal(m)
	if err != nil {
		return err
	}
	_, err = s.work.Send(ctx, body)
	return err
}

// queueParts sends one message per part (one SendMessage each: the function's policy
// grants sqs:SendMessage alone, and a run has at most reprocess.MaxParts).
func (s sqsRunStarter) queueParts(ctx context.Context, runID string, parts []int) error {
	for _, p := range parts {
		if err := s.send(ctx, WorkMessage{RunID: runID, Part: &p}); err != nil {
			return fmt.Errorf("run %s: queue part %d: %w", runID, p, err)
		}
	}
	return nil
}

// HandleOps runs one direct-invoke action.
func (a *Stack) HandleOps(ctx context.Context, req OpsRequest) (OpsResult, error) {
	res := OpsResult{Action: req.Action}
	a.cfg.Log.Info("ops request", "action", req.Action, "facility", req.FacilityID, "run_id", req.RunID)
	switch req.Action {
	case ActionSignAllFacilities:
		run, err := a.SignAllFacilities(ctx)
		res.Signing = &run
		return res, err
	case ActionSign:
		if req.FacilityID == "" {
			return res, fmt.Errorf("%w: sign needs facility_id", ErrOpsRequest)
		}
		runs, err := a.Sys.SigningRuns()
		if err != nil {
			return res, err
		}
		// Signed in this invocation while its time lasts; the rest is queued.
		inCall := 10 * time.Second
		if dl, ok := ctx.Deadline(); ok {
			inCall = max(0, time.Until(dl)-signingMargin)
		}
		run, err := runs.Start(ctx, req.FacilityID, signing.Interactive, inCall)
		res.SignRun = &run
		return res, err
	case ActionReprocess:
		if req.Selector == nil {
			return res, fmt.Errorf("%w: reprocess needs selector", ErrOpsRequest)
		}
		if err := req.Selector.Normalize(); err != nil {
			return res, fmt.Errorf("%w: %w", ErrOpsRequest, err)
		}
		runs, err := a.Sys.ReprocessRuns()
		if err != nil {
			return res, err
		}
		if req.Selector.DryRun {
			sum, err := runs.DryRun(ctx, *req.Selector)
			res.Summary = &sum
			return res, err
		}
		run, err := runs.Start(ctx, *req.Selector)
		res.Run = &run
		return res, err
	case ActionReprocessStatus:
		if req.RunID == "" {
			return res, fmt.Errorf("%w: reprocess-status needs run_id", ErrOpsRequest)
		}
		svc, err := a.Sys.Reprocessor()
		if err != nil {
			return res, err
		}
		run, err := svc.GetRun(ctx, req.RunID)
		res.Run = &run
		return res, err
	case ActionReprocessRequeue:
		if req.RunID == "" {
			return res, fmt.Errorf("%w: reprocess-requeue needs run_id", ErrOpsRequest)
		}
		svc, err := a.Sys.Reprocessor()
		if err != nil {
			return res, err
		}
		run, err := svc.GetRun(ctx, req.RunID)
		if err != nil {
			return res, err
		}
		if run.State != reprocess.Running {
			return res, fmt.Errorf("%w: run %s is %s", ErrOpsRequest, run.ID, run.State)
		}
		if a.workQueue == nil {
			return res, fmt.Errorf("%w: %s is not set", ErrConfig, EnvWorkQueueURL)
		}
		res.Run = &run
		if run.Parts == 0 {
			return res, a.runStarter().StartRun(ctx, run.ID, false)
		}
		parts, err := svc.UnfinishedParts(ctx, run)
		if err != nil {
			return res, err
		}
		return res, a.runStarter().queueParts(ctx, run.ID, parts)
	case ActionReprocessRuns:
		svc, err := a.Sys.Reprocessor()
		if err != nil {
			return res, err
		}
		res.Runs, err = svc.ListRuns(ctx)
		return res, err
	default:
		return res, fmt.Errorf("%w: unknown action %q", ErrOpsRequest, req.Action)
	}
}

// HandleWork is the ops function's work queue: each message continues a part of a
// reprocessing run for this invocation's time, then queues the rest. A failure is that
// message's (partial batch response): it comes back and the part resumes from its stored
// cursor.
func (a *Stack) HandleWork(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	ctx = signing.WithPriority(ctx, signing.Bulk) // reprocessing is bulk work in the KMS budget
	// An empty list, not null: ministack's event source mapping reads null as a failed
	// invocation and leaves every message of the batch to come back (AWS takes both).
	resp := events.SQSEventResponse{BatchItemFailures: []events.SQSBatchItemFailure{}}
	svc, err := a.Sys.Reprocessor()
	if err != nil {
		return resp, err
	}
	for _, m := range ev.Records {
		if err := a.work(ctx, svc, m.Body); err != nil {
			a.cfg.Log.Error("reprocessing work failed", "message_id", m.MessageId, "err", err)
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: m.MessageId})
		}
	}
	return resp, nil
}

func (a *Stack) work(ctx context.Context, svc *reprocess.Service, body string) error {
	var w WorkMessage
	if err := decodeStrict(body, &w); err != nil || w.RunID == "" {
		// A malformed message can never succeed: logged and dropped, not retried forever.
		a.cfg.Log.Error("reprocessing work: malformed message dropped", "err", err)
		return nil
	}
	if w.Part != nil {
		return a.workPart(ctx, svc, w.RunID, *w.Part)
	}
	run, err := svc.GetRun(ctx, w.RunID)
	switch {
	case errors.Is(err, vaxpass.ErrNotFound), errors.Is(err, vaxpass.ErrInvalid):
		a.cfg.Log.Info("reprocessing work: nothing to do", "run_id", w.RunID, "err", err)
		return nil
	case err != nil:
		return fmt.Errorf("run %s: %w", w.RunID, err)
	case run.Parts > 0 && run.State == reprocess.Running:
		parts, err := svc.UnfinishedParts(ctx, run)
		if err != nil {
			return fmt.Errorf("run %s: %w", w.RunID, err)
		}
		a.cfg.Log.Info("reprocessing run fanned out", "run_id", w.RunID, "parts", len(parts))
		return a.runStarter().queueParts(ctx, w.RunID, parts)
	}
	// A run of one cursor (or one to audit): worked here.
	sum, err := svc.Run(ctx, reprocess.Selector{RunID: w.RunID, Actor: "lambda:ops"}, reprocess.Options{StopBefore: reprocess.InvokeMargin})
	switch {
	case errors.Is(err, reprocess.ErrRunFinished), errors.Is(err, vaxpass.ErrNotFound):
		a.cfg.Log.Info("reprocessing work: nothing to do", "run_id", w.RunID, "err", err)
		return nil
	case err != nil:
		return fmt.Errorf("run %s: %w", w.RunID, err)
	}
	a.cfg.Log.Info("reprocessing work", "run_id", w.RunID, "done", sum.Done, "changed", sum.Counts.Changed, "failed", sum.Counts.Failed)
	if !sum.Done {
		return a.runStarter().StartRun(ctx, w.RunID, false)
	}
	return nil
}

// workPart works one part of a run for this invocation's time and queues the part again
// when it is not done.
func (a *Stack) workPart(ctx context.Context, svc *reprocess.Service, runID string, part int) error {
	sum, err := svc.WorkPart(ctx, runID, part, reprocess.Options{StopBefore: reprocess.InvokeMargin})
	switch {
	case errors.Is(err, reprocess.ErrRunFinished), errors.Is(err, vaxpass.ErrNotFound):
		a.cfg.Log.Info("reprocessing part: nothing to do", "run_id", runID, "part", part, "err", err)
		return nil
	case errors.Is(err, vaxpass.ErrInvalid):
		a.cfg.Log.Error("reprocessing part: message dropped", "run_id", runID, "part", part, "err", err)
		return nil
	case err != nil:
		return fmt.Errorf("run %s part %d: %w", runID, part, err)
	}
	a.cfg.Log.Info("reprocessing part", "run_id", runID, "part", part, "done", sum.Done, "run_done", sum.RunDone,
		"changed", sum.Counts.Changed, "failed", sum.Counts.Failed)
	if !sum.Done {
		return a.runStarter().queueParts(ctx, runID, []int{part})
	}
	return nil
}

func (a *Stack) runStarter() sqsRunStarter { return sqsRunStarter{work: a.workQueue} }

// decodeStrict decodes an event or message: an unknown field is a typo or a message of
// another kind, not something to ignore.
func decodeStrict(body string, v any) error {
	dec := json.NewDecoder(strings.NewReader(body))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// decodeOps reads an ops event strictly (an unknown field is a typo, not something to ignore).
func decodeOps(ev json.RawMessage) (OpsRequest, error) {
	var req OpsRequest
	if err := decodeStrict(string(ev), &req); err != nil {
		return req, fmt.Errorf("%w: %w", ErrOpsRequest, err)
	}
	return req, nil
}

// HandleOpsEvent is the ops function's non-API entry point (its API routes are served
// through APIOr): a batch of its work queue, or a direct invoke (OpsRequest).
func (a *Stack) HandleOpsEvent(ctx context.Context, ev json.RawMessage) (any, error) {
	var probe struct {
		Records []struct {
			EventSource string `json:"eventSource"`
		} `json:"Records"`
	}
	if err := json.Unmarshal(ev, &probe); err != nil {
		return nil, fmt.Errorf("%w: event is not a JSON object: %w", ErrOpsRequest, err)
	}
	if len(probe.Records) > 0 && probe.Records[0].EventSource == "aws:sqs" {
		var sqsEv events.SQSEvent
		if err := json.Unmarshal(ev, &sqsEv); err != nil {
			return nil, fmt.Errorf("ops: SQS event: %w", err)
		}
		return a.HandleWork(ctx, sqsEv)
	}
	req, err := decodeOps(ev)
	if err != nil {
		return OpsResult{}, err
	}
	return a.HandleOps(ctx, req)
}
