package awsdlq

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	streamtypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/vaxpass/vaxpass/shared/store/doseitem"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// failureRecord is the invocation record Lambda sends to a DynamoDB stream event source
// mapping's on-failure destination (testdata/README.md). Only what the dead letters use is
// read; unknown fields are ignored (AWS may add some).
type failureRecord struct {
	RequestContext struct {
		Condition              string `json:"condition"`
		ApproximateInvokeCount int    `json:"approximateInvokeCount"`
	} `json:"requestContext"`
	ResponseContext struct {
		FunctionError string `json:"functionError"`
	} `json:"responseContext"`
	Timestamp string     `json:"timestamp"`
	Batch     *batchInfo `json:"DDBStreamBatchInfo"`
}

// batchInfo locates the failed batch in the stream.
type batchInfo struct {
	ShardID       string `json:"shardId"`
	StartSequence string `json:"startSequenceNumber"`
	EndSequence   string `json:"endSequenceNumber"`
	FirstArrival  string `json:"approximateArrivalOfFirstRecord"`
	LastArrival   string `json:"approximateArrivalOfLastRecord"`
	BatchSize     int    `json:"batchSize"`
	StreamARN     string `json:"streamArn"`
}

// seqRe: DynamoDB stream sequence numbers are decimal numbers of up to 40 digits.
var seqRe = regexp.MustCompile(`^[0-9]{1,40}$`)

// errNotFailureRecord reports a message of the failure queue that is not an invocation
// record of a DynamoDB stream (nothing can name its doses).
var errNotFailureRecord = errors.New("not a DynamoDB stream failure record")

// errPastRetention reports a batch the stream no longer holds.
var errPastRetention = errors.New("the stream no longer holds these changes (DynamoDB Streams keeps records 24 h)")

func decodeFailure(body string) (failureRecord, error) {
	var r failureRecord
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		return r, fmt.Errorf("%w: %w", errNotFailureRecord, err)
	}
	b := r.Batch
	switch {
	case b == nil:
		return r, fmt.Errorf("%w: no DDBStreamBatchInfo", errNotFailureRecord)
	case b.ShardID == "" || b.StreamARN == "":
		return r, fmt.Errorf("%w: no shard or stream", errNotFailureRecord)
	case !seqRe.MatchString(b.StartSequence) || !seqRe.MatchString(b.EndSequence):
		return r, fmt.Errorf("%w: sequence numbers are not numbers", errNotFailureRecord)
	case compareSeq(b.StartSequence, b.EndSequence) > 0:
		return r, fmt.Errorf("%w: the first sequence number is after the last", errNotFailureRecord)
	}
	return r, nil
}

// compareSeq compares two sequence numbers (decimal, no sign) as numbers.
func compareSeq(a, b string) int {
	a, b = strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
	if len(a) != len(b) {
		if len(a) < len(b) {
			return -1
		}
		return 1
	}
	return strings.Compare(a, b)
}

// parseTime reads the record's times (RFC 3339, with or without fractions); zero if not.
func parseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return t.UTC()
}

// tableOf is the table of a stream ARN (arn:...:table/NAME/stream/LABEL).
func tableOf(streamARN string) string {
	_, res, ok := strings.Cut(streamARN, ":table/")
	if !ok {
		return ""
	}
	name, rest, ok := strings.Cut(res, "/stream/")
	if !ok || rest == "" {
		return ""
	}
	return name
}

// Bounds of reading one batch back from the stream: GetRecords answers at most 1,000
// records (1 MB), and the batch's range also holds the changes the matcher's filter left
// out (its own writes, the signing marks).
const (
	maxReadCalls  = 100
	maxEmptyReads = 10
)

// batchDoses reads the failed batch back from the stream and returns the doses its
// changes name: the records from the first to the last sequence number that the matcher's
// filter lets through (INSERT or MODIFY whose new image waits for a match), each dose once.
func (d *DeadLetters) batchDoses(ctx context.Context, r failureRecord) ([]vaxpass.DoseKey, error) {
	b := r.Batch
	if d.opt.DosesTable != "" && tableOf(b.StreamARN) != d.opt.DosesTable {
		return nil, fmt.Errorf("the batch is of the stream of table %q, not of the doses table", tableOf(b.StreamARN))
	}
	it, err := d.streams.GetShardIterator(ctx, &dynamodbstreams.GetShardIteratorInput{
		StreamArn: aws.String(b.StreamARN), ShardId: aws.String(b.ShardID),
		ShardIteratorType: streamtypes.ShardIteratorTypeAtSequenceNumber, SequenceNumber: aws.String(b.StartSequence),
	})
	if err != nil {
		return nil, streamError("get shard iterator", err)
	}
	var keys []vaxpass.DoseKey
	seen := map[vaxpass.DoseKey]bool{}
	iter, empty := it.ShardIterator, 0
	for calls := 0; iter != nil; calls++ {
		if calls == maxReadCalls {
			return nil, fmt.Errorf("the batch spans more than %d stream reads", maxReadCalls)
		}
		out, err := d.streams.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: iter})
		if err != nil {
			return nil, streamError("get records", err)
		}
		for _, rec := range out.Records {
			if rec.Dynamodb == nil {
				continue
			}
			seq := aws.ToString(rec.Dynamodb.SequenceNumber)
			if compareSeq(seq, b.StartSequence) < 0 {
				continue
			}
			if compareSeq(seq, b.EndSequence) > 0 {
				return keys, nil
			}
			if k, ok := waitingDose(rec); ok && !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
			if compareSeq(seq, b.EndSequence) == 0 {
				return keys, nil
			}
		}
		if len(out.Records) == 0 {
			if empty++; empty == maxEmptyReads {
				return nil, fmt.Errorf("the stream shows nothing past sequence number %s after %d reads", b.StartSequence, calls+1)
			}
		}
		iter = out.NextShardIterator
	}
	return nil, fmt.Errorf("%w: shard %s ended before sequence number %s", errPastRetention, b.ShardID, b.EndSequence)
}

// streamError marks the errors by which the stream says the records are gone: a trimmed
// position, or a shard or stream that no longer exists (shards live 24 h too).
func streamError(op string, err error) error {
	var trimmed *streamtypes.TrimmedDataAccessException
	var gone *streamtypes.ResourceNotFoundException
	if errors.As(err, &trimmed) || errors.As(err, &gone) {
		return fmt.Errorf("%w: %s: %w", errPastRetention, op, err)
	}
	return fmt.Errorf("read the stream: %s: %w", op, err)
}

// waitingDose is the dose of a stream record the matcher's filter passes (FilterCriteria
// in template.yaml: the new image carries needs_match).
func waitingDose(rec streamtypes.Record) (vaxpass.DoseKey, bool) {
	if rec.EventName != streamtypes.OperationTypeInsert && rec.EventName != streamtypes.OperationTypeModify {
		return vaxpass.DoseKey{}, false
	}
	flag, ok := rec.Dynamodb.NewImage[doseitem.AttrNeedsMatch].(*streamtypes.AttributeValueMemberS)
	if !ok || flag.Value != doseitem.NeedsMatchValue {
		return vaxpass.DoseKey{}, false
	}
	f, ok1 := rec.Dynamodb.Keys[doseitem.AttrFacility].(*streamtypes.AttributeValueMemberS)
	s, ok2 := rec.Dynamodb.Keys[doseitem.AttrSourceID].(*streamtypes.AttributeValueMemberS)
	if !ok1 || !ok2 || f.Value == "" || s.Value == "" {
		return vaxpass.DoseKey{}, false
	}
	return vaxpass.DoseKey{FacilityID: f.Value, SourceID: s.Value}, true
}

// listMatcher lists the failure queue, reading each letter's doses from the stream.
func (d *DeadLetters) listMatcher(ctx context.Context, after string, limit int) ([]vaxpass.DeadLetter, error) {
	page, err := d.listPage(ctx, d.queues.MatcherFailure, after, limit)
	if err != nil {
		return nil, fmt.Errorf("awsdlq: list %s: %w", Matcher, err)
	}
	out := make([]vaxpass.DeadLetter, len(page))
	sem := make(chan struct{}, d.opt.StreamReaders)
	var wg sync.WaitGroup
	for i, m := range page {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			out[i] = d.matcherLetter(ctx, m)
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("awsdlq: list %s: %w", Matcher, err)
	}
	return out, nil
}

// maxNamed bounds the doses a letter's Reason names.
const maxNamed = 20

// ict is the zone reprocessing counts days in (reprocess.VietnamTime: UTC+7).
var ict = time.FixedZone("ICT", 7*3600)

// matcherLetter describes a failure record: when the changes were written (SentAt) and
// when Lambda gave up (DeadAt), how often it invoked the matcher, and the doses, named
// when the stream still holds the batch (FacilityID when they share one, SourceID when
// there is one dose; Reason names them all, up to maxNamed).
func (d *DeadLetters) matcherLetter(ctx context.Context, m *message) vaxpass.DeadLetter {
	l := vaxpass.DeadLetter{Queue: Matcher, ID: m.id, DeadAt: msTime(m.attrs, types.MessageSystemAttributeNameSentTimestamp)}
	r, err := decodeFailure(m.body)
	if err != nil {
		l.Reason = err.Error() + ": it cannot be redriven"
		return l
	}
	b := r.Batch
	l.ReceiveCount = r.RequestContext.ApproximateInvokeCount
	l.SentAt = parseTime(b.FirstArrival)
	if t := parseTime(r.Timestamp); !t.IsZero() {
		l.DeadAt = t
	}
	what := fmt.Sprintf("%s after %d invocations (%s): %d changes, sequence numbers %s to %s",
		orDash(r.RequestContext.Condition), r.RequestContext.ApproximateInvokeCount, orDash(r.ResponseContext.FunctionError),
		b.BatchSize, b.StartSequence, b.EndSequence)
	keys, err := d.batchDoses(ctx, r)
	switch {
	case errors.Is(err, errPastRetention):
		l.Reason = what + ": " + recoveryHint(b)
		return l
	case err != nil:
		l.Reason = what + ": " + err.Error()
		return l
	}
	named := make([]string, 0, min(len(keys), maxNamed))
	for _, k := range keys[:min(len(keys), maxNamed)] {
		named = append(named, k.FacilityID+"/"+k.SourceID)
	}
	if len(keys) > 0 {
		l.FacilityID = keys[0].FacilityID
		for _, k := range keys[1:] {
			if k.FacilityID != l.FacilityID {
				l.FacilityID = "" // several facilities: Reason names them
				break
			}
		}
	}
	if len(keys) == 1 {
		l.SourceID = keys[0].SourceID
	}
	l.Reason = fmt.Sprintf("%s; %d doses: %s", what, len(keys), strings.Join(named, ", "))
	if len(keys) > maxNamed {
		l.Reason += fmt.Sprintf(" and %d more", len(keys)-maxNamed)
	}
	return l
}

// recoveryHint says how ops recover a batch past the stream's retention.
func recoveryHint(b *batchInfo) string {
	from, to := parseTime(b.FirstArrival), parseTime(b.LastArrival)
	window := ""
	if !from.IsZero() && !to.IsZero() {
		window = fmt.Sprintf(" --date received_at --from %s --to %s", from.In(ict).Format(time.DateOnly), to.In(ict).Format(time.DateOnly))
	}
	return errPastRetention.Error() + ", so a redrive cannot name the doses: re-run the match stage for the doses written then, " +
		"e.g. vaxpass reprocess --stage match" + window + " (for corrections of older doses, select by --facility); " +
		"matching again leaves doses already matched unchanged. The message expires with the queue's retention"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// matcherHandler re-flags the doses of failure records as waiting for a match. Each dose
// is re-flagged once per redrive, however many letters name it.
func (d *DeadLetters) matcherHandler() handler {
	done := map[vaxpass.DoseKey]bool{} // the handler runs one batch at a time
	return handler{queue: Matcher, handle: func(ctx context.Context, batch []*message) ([]error, error) {
		errs := make([]error, len(batch))
		for i, m := range batch {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			r, err := decodeFailure(m.body)
			if err != nil {
				errs[i] = err
				continue
			}
			keys, err := d.batchDoses(ctx, r)
			if err != nil {
				errs[i] = err
				continue
			}
			for _, k := range keys {
				if done[k] {
					continue
				}
				if err := d.reflag(ctx, k); err != nil {
					errs[i] = fmt.Errorf("dose %s/%s: %w", k.FacilityID, k.SourceID, err)
					break
				}
				done[k] = true
			}
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
		}
		return errs, nil
	}}
}

// reflag writes a dose that still waits for a match back with its next version, so the
// stream carries a MODIFY whose new image has needs_match and the matcher's filtered
// subscription delivers it. A dose gone, matched or changed meanwhile needs nothing (a
// change has its own stream record).
func (d *DeadLetters) reflag(ctx context.Context, k vaxpass.DoseKey) error {
	dose, err := d.doses.GetDose(ctx, k)
	if errors.Is(err, vaxpass.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if !dose.NeedsMatch() {
		return nil
	}
	if err := d.doses.UpdateDose(ctx, dose); err != nil && !errors.Is(err, vaxpass.ErrConflict) {
		return err
	}
	return nil
}
