package cloud

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/vaxpass/vaxpass/shared/stage/signing"
	"github.com/vaxpass/vaxpass/shared/store/awssqs"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// Facility signing on AWS is a fan-out: every facility's signing is a run (signing.Runs)
// whose pages are worked by the facility signing function from its own queue
// (SIGNING_QUEUE_URL), one message a run, as many runs at once as the queue's event
// source mapping allows. An invocation works a run until signingMargin before its
// deadline, stores the cursor after every page and queues the run again: no invocation
// needs to finish a facility, let alone the country, within Lambda's 15 minutes, and a
// killed invocation's message comes back after the queue's visibility timeout.

// signingMargin is kept free before an invocation's deadline: the run in hand stops
// after its page, saves and is queued again.
const signingMargin = 30 * time.Second

// SigningMessage is a message of the signing queue: continue run RunID.
type SigningMessage struct {
	RunID string `json:"run_id"`
}

// sqsSigningQueue is signing.RunQueue on AWS.
type sqsSigningQueue struct{ q *awssqs.Sender }

func (s sqsSigningQueue) ContinueSigningRun(ctx context.Context, runID string) error {
	body, err := json.Marshal(SigningMessage{RunID: runID})
	if err != nil {
		return err
	}
	_, err = s.q.Send(ctx, body)
	return err
}

// HandleFacilitySigning is the facility signing function's other events (its API route
// is served through APIOr): a batch of its signing queue, or the daily
// {"action":"sign-all-facilities"} (an EventBridge schedule).
func (a *Stack) HandleFacilitySigning(ctx context.Context, ev json.RawMessage) (any, error) {
	var probe struct {
		Action     string `json:"action"`
		DetailType string `json:"detail-type"`
		Records    []struct {
			EventSource string `json:"eventSource"`
		} `json:"Records"`
	}
	if err := json.Unmarshal(ev, &probe); err != nil {
		return nil, fmt.Errorf("facility signing: event is not a JSON object: %w", err)
	}
	switch {
	case len(probe.Records) > 0 && probe.Records[0].EventSource == "aws:sqs":
		var sqsEv events.SQSEvent
		if err := json.Unmarshal(ev, &sqsEv); err != nil {
			return nil, fmt.Errorf("facility signing: SQS event: %w", err)
		}
		return a.HandleSigningQueue(ctx, sqsEv)
	case probe.Action == ActionSignAllFacilities || probe.DetailType == "Scheduled Event":
		return a.SignAllFacilities(ctx)
	default:
		return nil, fmt.Errorf("facility signing: unknown event (want an API Gateway request, an SQS batch or {\"action\":%q})", ActionSignAllFacilities)
	}
}

// HandleSigningQueue works the runs of a batch of the signing queue, one after the other
// within the invocation's time. A failure is that message's (partial batch response): it
// comes back after the visibility timeout and the run resumes from its stored cursor.
func (a *Stack) HandleSigningQueue(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	resp := events.SQSEventResponse{BatchItemFailures: []events.SQSBatchItemFailure{}}
	runs, err := a.Sys.SigningRuns()
	if err != nil {
		return resp, err
	}
	var deadline time.Time
	if dl, ok := ctx.Deadline(); ok {
		deadline = dl.Add(-signingMargin)
	}
	for _, m := range ev.Records {
		var msg SigningMessage
		if err := decodeStrict(m.Body, &msg); err != nil || msg.RunID == "" {
			// A malformed message can never succeed: logged and dropped, not retried forever.
			a.cfg.Log.Error("facility signing: malformed message dropped", "message_id", m.MessageId, "err", err)
			continue
		}
		run, err := runs.Continue(ctx, msg.RunID, deadline)
		switch {
		case errors.Is(err, signing.ErrRunOver), errors.Is(err, vaxpass.ErrNotFound):
			a.cfg.Log.Info("facility signing: nothing to do", "run_id", msg.RunID, "err", err)
		case errors.Is(err, vaxpass.ErrConflict):
			// A repeated message: the worker that saved first goes on with the run.
			a.cfg.Log.Info("facility signing: run worked elsewhere", "run_id", msg.RunID)
		case err != nil:
			a.cfg.Log.Error("facility signing run failed", "run_id", msg.RunID, "err", err)
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: m.MessageId})
		default:
			a.cfg.Log.Info("facility signing run", "run_id", run.ID, "facility", run.FacilityID, "status", run.Status,
				"signed", run.Signed, "waiting", run.Waiting, "pages", run.Pages)
		}
	}
	return resp, nil
}

// SigningRun is what starting signing for several facilities did.
type SigningRun struct {
	Facilities int `json:"facilities"`
	// Runs are the runs started, one per facility (GET /v1/signatures/{run_id} of each
	// facility, or the signing queue's progress).
	Runs   []string `json:"runs,omitempty"`
	Failed []string `json:"failed,omitempty"` // facility IDs
}

// SignAllFacilities starts a bulk signing run for every facility and returns: the runs
// are worked from the signing queue. One facility's failure to start does not stop the
// others (it is reported, and the error makes the scheduler retry; a second run of a
// facility only finds what the first has not signed yet).
func (a *Stack) SignAllFacilities(ctx context.Context) (SigningRun, error) {
	var out SigningRun
	runs, err := a.Sys.SigningRuns()
	if err != nil {
		return out, err
	}
	facs, err := a.Store.ListFacilities(ctx)
	if err != nil {
		return out, fmt.Errorf("list facilities: %w", err)
	}
	out.Facilities = len(facs)
	var mu sync.Mutex
	var errs []error
	next := make(chan string)
	var wg sync.WaitGroup
	for range min(8, len(facs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range next {
				run, err := runs.Start(ctx, id, signing.Bulk, 0)
				mu.Lock()
				if err != nil {
					out.Failed = append(out.Failed, id)
					errs = append(errs, fmt.Errorf("facility %s: %w", id, err))
				} else {
					out.Runs = append(out.Runs, run.ID)
				}
				mu.Unlock()
			}
		}()
	}
	for _, f := range facs {
		next <- f.ID
	}
	close(next)
	wg.Wait()
	a.cfg.Log.Info("facility signing runs started", "facilities", out.Facilities, "runs", len(out.Runs), "failed", len(out.Failed))
	return out, errors.Join(errs...)
}
