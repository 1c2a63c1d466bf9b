package cloud

import (
	"context"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/vaxpass/vaxpass/shared/edge/emf"
	"github.com/vaxpass/vaxpass/shared/stage/signing"
)

// Central signing reads two queues: CENTRAL_QUEUE_URL takes interactive work (a
// facility's call) and CENTRAL_BULK_QUEUE_URL bulk work (the daily run, a backlog,
// reprocessing). Each has its own event source mapping, so a backlog of millions on the
// bulk queue never stands in front of a facility's new certificates; the KMS budget
// (BulkBudget, InteractiveBudget) keeps bulk below the share interactive work is owed.

// CentralHandler is the central signing function's handler: the system's worker, with
// the batch's priority taken from the queue it came from, and its outcomes counted.
func (a *Stack) CentralHandler() (func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error), error) {
	w, err := a.Sys.Worker()
	if err != nil {
		return nil, err
	}
	w.Observe = func(o signing.IssueOutcome) {
		if o == signing.Issued || o == signing.Reissued {
			if m := a.metrics(); m != nil {
				m.Count(emf.CertificatesIssued, 1)
			}
		}
	}
	bulk := queueName(a.cfg.CentralBulkQueueURL)
	return func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		// One batch comes from one event source mapping, so from one queue.
		if bulk != "" && len(ev.Records) > 0 && queueName(ev.Records[0].EventSourceARN) == bulk {
			ctx = signing.WithPriority(ctx, signing.Bulk)
		}
		return w.Handle(ctx, ev)
	}, nil
}

// queueName is the last part of a queue's URL or ARN (".../123456789012/name",
// "arn:aws:sqs:region:123456789012:name").
func queueName(urlOrARN string) string {
	if i := strings.LastIndexAny(urlOrARN, "/:"); i >= 0 {
		return urlOrARN[i+1:]
	}
	return urlOrARN
}

// priorityBudget is the KMS budget of a signer used for both kinds of work: each call
// waits on the budget of its context's priority (signing.WithPriority).
type priorityBudget struct{ a *Stack }

func (b priorityBudget) Wait(ctx context.Context) error {
	if signing.PriorityOf(ctx) == signing.Bulk {
		return b.a.BulkBudget().Wait(ctx)
	}
	return b.a.InteractiveBudget().Wait(ctx)
}
