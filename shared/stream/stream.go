// Package stream is the Lambda handler of the doses table's change stream: every new or
// changed dose record is matched against the registry. It reports partial batch failures
// (ReportBatchItemFailures) so one failing record never holds back or replays the others.
package stream

import (
	"context"
	"errors"
	"log/slog"

	"github.com/aws/aws-lambda-go/events"

	"github.com/vaxpass/vaxpass/shared/doseitem"
	"github.com/vaxpass/vaxpass/shared/matching"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// DoseMatcher is the matching use case.
type DoseMatcher interface {
	MatchDose(ctx context.Context, d vaxpass.Dose) (matching.Outcome, error)
}

// Handler handles DynamoDB stream batches of the doses table.
type Handler struct {
	Matcher DoseMatcher
	Log     *slog.Logger
}

// Handle matches each INSERT/MODIFY record's new image. A record whose image cannot be
// read is logged and skipped (retrying cannot fix it); a transient failure is reported as
// a batch item failure, and because a stream is ordered, the records after it are retried
// with it (Lambda resumes from the first failed sequence number).
func (h *Handler) Handle(ctx context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
	// A non-nil slice marshals as [], never null: some Lambda emulators (ministack) reject null.
	resp := events.DynamoDBEventResponse{BatchItemFailures: []events.DynamoDBBatchItemFailure{}}
	for _, rec := range ev.Records {
		if rec.EventName != string(events.DynamoDBOperationTypeInsert) && rec.EventName != string(events.DynamoDBOperationTypeModify) {
			continue
		}
		d, err := doseitem.FromImage(rec.Change.NewImage)
		if err != nil {
			h.logger().Error("stream record is not a dose item; skipped", "event_id", rec.EventID, "sequence", rec.Change.SequenceNumber, "err", err)
			continue
		}
		if _, err := h.Matcher.MatchDose(ctx, d); err != nil {
			if errors.Is(err, context.Canceled) {
				return resp, err
			}
			h.logger().Warn("match failed; will retry", "event_id", rec.EventID, "sequence", rec.Change.SequenceNumber, "facility", d.FacilityID, "err", err)
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.DynamoDBBatchItemFailure{ItemIdentifier: rec.Change.SequenceNumber})
			return resp, nil
		}
	}
	return resp, nil
}

func (h *Handler) logger() *slog.Logger {
	if h.Log != nil {
		return h.Log
	}
	return slog.Default()
}
