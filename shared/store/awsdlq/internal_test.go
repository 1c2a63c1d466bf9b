package awsdlq

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

func TestDecodeFailureRecords(t *testing.T) {
	for _, tc := range []struct {
		file, condition, shard, start, end, table string
		invokes, size                             int
		timestamp                                 time.Time
	}{
		{"aws-ddb-stream-failure.json", "RetryAttemptsExhausted", "shardId-00000001630483200000-8f3a2b1c",
			"402130000000001234567890", "402130000000001234567999", "vaxpass-DosesTable-EXAMPLE", 11, 3,
			time.Date(2021, 9, 1, 8, 15, 42, 118e6, time.UTC)},
		{"ministack-ddb-stream-failure.json", "MaxRecordAgeExceeded", "shardId-00000000000000000000-00000000",
			"000000017964198693390000000007", "000000017964198693390000000007", "vp-doses-hroughEventSourceMapping-2ea807be80", 1, 1,
			time.Date(2026, 12, 4, 21, 31, 10, 0, time.UTC)},
	} {
		b, err := os.ReadFile("testdata/" + tc.file)
		if err != nil {
			t.Fatal(err)
		}
		r, err := decodeFailure(string(b))
		if err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		bi := r.Batch
		if r.RequestContext.Condition != tc.condition || r.RequestContext.ApproximateInvokeCount != tc.invokes ||
			r.ResponseContext.FunctionError != "Unhandled" || !parseTime(r.Timestamp).Equal(tc.timestamp) ||
			bi.ShardID != tc.shard || bi.StartSequence != tc.start || bi.EndSequence != tc.end || bi.BatchSize != tc.size ||
			parseTime(bi.FirstArrival).IsZero() || parseTime(bi.LastArrival).IsZero() || tableOf(bi.StreamARN) != tc.table {
			t.Errorf("%s: decoded %+v %+v (table %q)", tc.file, r, *bi, tableOf(bi.StreamARN))
		}
	}
}

func TestDecodeFailureRejects(t *testing.T) {
	for name, body := range map[string]string{
		"not json":         `{`,
		"sqs event":        `{"Records":[]}`,
		"no shard":         `{"DDBStreamBatchInfo":{"startSequenceNumber":"1","endSequenceNumber":"2","streamArn":"arn:aws:dynamodb:r:1:table/t/stream/x"}}`,
		"no stream":        `{"DDBStreamBatchInfo":{"shardId":"s","startSequenceNumber":"1","endSequenceNumber":"2"}}`,
		"not numbers":      `{"DDBStreamBatchInfo":{"shardId":"s","startSequenceNumber":"1a","endSequenceNumber":"2","streamArn":"a"}}`,
		"end before start": `{"DDBStreamBatchInfo":{"shardId":"s","startSequenceNumber":"10","endSequenceNumber":"9","streamArn":"a"}}`,
	} {
		if _, err := decodeFailure(body); !errors.Is(err, errNotFailureRecord) {
			t.Errorf("%s: %v, want errNotFailureRecord", name, err)
		}
	}
	// A null functionError (Powertools' parser tests) is accepted.
	r, err := decodeFailure(`{"responseContext":{"functionError":null},"DDBStreamBatchInfo":{"shardId":"s","startSequenceNumber":"9","endSequenceNumber":"10","streamArn":"a"}}`)
	if err != nil || r.ResponseContext.FunctionError != "" {
		t.Errorf("null functionError: %+v, %v", r, err)
	}
}

func TestCompareSeq(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"9", "10", -1}, {"10", "9", 1}, {"0009", "9", 0}, {"000000017964198693390000000007", "17964198693390000000008", -1},
		{"402130000000001234567999", "402130000000001234567890", 1}, {"0", "", 0},
	} {
		if got := compareSeq(tc.a, tc.b); got != tc.want {
			t.Errorf("compareSeq(%s, %s) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestTableOf(t *testing.T) {
	for arn, want := range map[string]string{
		"arn:aws:dynamodb:us-east-1:1:table/doses/stream/2021-01-01T00:00:00.000": "doses",
		"arn:aws:dynamodb:us-east-1:1:table/doses":                                "",
		"arn:aws:sqs:us-east-1:1:q":                                               "",
	} {
		if got := tableOf(arn); got != want {
			t.Errorf("tableOf(%s) = %q, want %q", arn, got, want)
		}
	}
}

func TestRecoveryHintDays(t *testing.T) {
	// 17:01 UTC is 00:01 the next day in Viet Nam, where reprocessing counts days.
	h := recoveryHint(&batchInfo{FirstArrival: "2021-09-01T16:59:00Z", LastArrival: "2021-09-01T17:01:00Z"})
	if want := "--date received_at --from 2021-09-01 --to 2021-09-02"; !strings.Contains(h, want) {
		t.Errorf("hint %q, want %q", h, want)
	}
}
