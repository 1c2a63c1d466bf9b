// Package dosestream is the Lambda handler of the doses table's change stream: every new or
// changed dose record is matched against the registry. It reports partial batch failures
// (ReportBatchItemFailures) so one failing record never holds back or replays the others.
package dosestream

import (
	"context"
	"errors"
	"log/slog"

	"github.com/aws/aws-lambda-go/events"

	"github.com/vaxpass/vaxpass/shared/stage/matching"
	"github.com/vaxpass/vaxpass/shared/store/doseitem"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// DoseMatcher is the matching use case: it matches a batch of images in stream order;
// errs[i] is the transient failure of doses[i], if any.
type DoseMatcher interface {
	MatchDoses(ctx context.Context, doses []vaxpass.Dose) (outcomes []matching.Outcome, errs []error)
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
	var doses []vaxpass.Dose
	var recs []*events.DynamoDBEventRecord
	for i := range ev.Records {
		rec := &ev.Records[i]
		if rec.EventName != string(events.DynamoDBOperationTypeInsert) && rec.EventName != string(events.DynamoDBOperationTypeModify) {
			continue
		}
		d, err := doseitem.FromImage(rec.Change.NewImage)
		if err != nil {
			h.logger().Error("stream record is not a dose item; skipped", "event_id", rec.EventID, "sequence", rec.Change.SequenceNumber, "err", err)
			continue
		}
		doses = append(doses, d)
		recs = append(recs, rec)
	}
	if len(doses) == 0 {
		return resp, nil
	}
	_, errs := h.Matcher.MatchDoses(ctx, doses)
	for i, err := range errs {
		if err == nil {
			continue
		}
		if errors.Is(err, context.Canceled) {
			return resp, err
		}
		// The stream resumes from the first failed record: the ones after it come again,
		// and matching them again is a no-op for those already saved.
		h.logger().Warn("match failed; will retry", "event_id", recs[i].EventID, "sequence", recs[i].Change.SequenceNumber, "facility", doses[i].FacilityID, "err", err)
		resp.BatchItemFailures = append(resp.BatchItemFailures, events.DynamoDBBatchItemFailure{ItemIdentifier: recs[i].Change.SequenceNumber})
		return resp, nil
	}
	return resp, nil
}

func (h *Handler) logger() *slog.Logger {
	if h.Log != nil {
		return h.Log
	}
	return slog.Default()
}
