package awsdlq_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	streamtypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/vaxpass/vaxpass/shared/domain/dose"
	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/edge/centralqueue"
	"github.com/vaxpass/vaxpass/shared/store/awsddb"
	"github.com/vaxpass/vaxpass/shared/store/awsdlq"
	"github.com/vaxpass/vaxpass/shared/store/awssqs"
	"github.com/vaxpass/vaxpass/shared/store/doseitem"
	"github.com/vaxpass/vaxpass/shared/testkit/awstest"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// centralEnv is a central queue whose redrive policy moves messages to a dead-letter
// queue after 2 receives, and the dead letters over them.
type centralEnv struct {
	sqs          *watchedSQS
	central, dlq string
	dl           *awsdlq.DeadLetters
	sent         []string // the bodies sent, each once
}

// newCentralEnv sends n facility signatures through the real producer and receives them
// without deleting (central signing failing) until the redrive policy moved them all. A
// setup in which a send may have been doubled is done again on new queues.
func newCentralEnv(t *testing.T, n int) *centralEnv {
	t.Helper()
	cfg := awstest.Config(t)
	for attempt := 1; ; attempt++ {
		e := &centralEnv{sqs: &watchedSQS{Client: sqs.NewFromConfig(cfg)}}
		e.dlq = newQueue(t, e.sqs.Client, nil)
		e.central = newQueue(t, e.sqs.Client, map[string]string{
			"RedrivePolicy": fmt.Sprintf(`{"deadLetterTargetArn":%q,"maxReceiveCount":"2"}`, queueARN(t, e.sqs.Client, e.dlq)),
			// A receive of 0 s is left out by the SDK (zero value): the queue's default it is.
			"VisibilityTimeout": "0",
		})
		failures := newQueue(t, e.sqs.Client, nil)
		var err error
		e.dl, err = awsdlq.New(e.sqs, dynamodbstreams.NewFromConfig(cfg), unusedDoses{t},
			awsdlq.Queues{Central: e.central, CentralDead: e.dlq, MatcherFailure: failures}, awsdlq.Options{Visibility: testVisibility})
		if err != nil {
			t.Fatal(err)
		}
		q, err := awssqs.NewCentralQueue(e.sqs, e.central)
		if err != nil {
			t.Fatal(err)
		}
		for i := range n {
			sig := vaxpass.FacilitySignature{
				PersonID: fmt.Sprintf("0010900%05d", i), FacilityID: fmt.Sprintf("79-HCM-%04d", i%3),
				Payload: []byte{0xa1, byte(i)}, Signature: make([]byte, 64), SignedAt: time.Date(2021, 9, 1, 8, i, 0, 0, time.UTC),
			}
			if err := q.SendSignature(t.Context(), sig); err != nil {
				t.Fatal(err)
			}
			body, _ := centralqueue.Encode(sig)
			e.sent = append(e.sent, string(body))
		}
		if e.sqs.doubled() {
			if attempt == 3 {
				t.Fatal("setup: sends doubled 3 times")
			}
			t.Logf("setup: a send may have been doubled (lost response); again on new queues")
			continue
		}
		deadline := time.Now().Add(30 * time.Second)
		for depth(t, e.sqs.Client, e.dlq) < n {
			if time.Now().After(deadline) {
				t.Fatalf("%d messages dead-lettered after 30 s, want %d", depth(t, e.sqs.Client, e.dlq), n)
			}
			if _, err := e.sqs.ReceiveMessage(t.Context(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(e.central), MaxNumberOfMessages: 10}); err != nil {
				t.Fatal(err)
			}
		}
		if d := depth(t, e.sqs.Client, e.central); d != 0 {
			t.Fatalf("central queue holds %d messages after the moves", d)
		}
		return e
	}
}

// TestCentralOnSQS: facility signatures that central signing keeps failing reach the real
// dead-letter queue by the redrive policy; they are listed in pages without being lost,
// and redriven (some, then all) to the central queue exactly once each.
func TestCentralOnSQS(t *testing.T) {
	e := newCentralEnv(t, 7)
	dl := e.dl

	all := list(t, dl, awsdlq.Central, "", awsdlq.MaxPage)
	if len(all) != 7 {
		t.Fatalf("listed %d dead letters, want 7", len(all))
	}
	if !slices.IsSorted(letterIDs(all)) || len(slices.Compact(slices.Clone(letterIDs(all)))) != 7 {
		t.Fatalf("IDs %v: want 7 distinct, in order", letterIDs(all))
	}
	for _, l := range all {
		if l.Queue != awsdlq.Central || !strings.HasPrefix(l.FacilityID, "79-HCM-000") || l.ReceiveCount < 2 ||
			l.SentAt.IsZero() || l.DeadAt.IsZero() || l.DeadAt.Before(l.SentAt) || l.Reason != "" {
			t.Errorf("letter %+v: want the facility, at least 2 receives, sent and first-failed times", l)
		}
	}
	// Nothing personal leaves the body.
	js, _ := json.Marshal(all)
	for i := range 7 {
		if person := fmt.Sprintf("0010900%05d", i); strings.Contains(string(js), person) {
			t.Fatalf("the listing shows person %s: %s", person, js)
		}
	}
	if strings.Contains(string(js), "signature") || strings.Contains(string(js), "payload") {
		t.Fatalf("the listing shows the body: %s", js)
	}

	// Pages of 3 give the same letters; listing again loses none (every message is
	// visible again at once).
	var paged []string
	for after := ""; ; {
		page := list(t, dl, awsdlq.Central, after, 3)
		paged = append(paged, letterIDs(page)...)
		if len(page) < 3 {
			break
		}
		after = page[len(page)-1].ID
	}
	if !slices.Equal(paged, letterIDs(all)) {
		t.Fatalf("pages %v, want %v", paged, letterIDs(all))
	}
	if again := list(t, dl, awsdlq.Central, "", 10); !slices.Equal(letterIDs(again), letterIDs(all)) {
		t.Fatalf("second listing %v, want %v", letterIDs(again), letterIDs(all))
	}
	if rest := list(t, dl, awsdlq.Central, all[2].ID, 10); !slices.Equal(letterIDs(rest), letterIDs(all[3:])) {
		t.Fatalf("after %s: %v, want %v", all[2].ID, letterIDs(rest), letterIDs(all[3:]))
	}

	// An unknown or malformed ID moves nothing.
	if _, _, err := redrive(t, dl, awsdlq.Central, []string{all[0].ID, "00000000-0000-4000-8000-000000000000"}); !errors.Is(err, vaxpass.ErrNotFound) {
		t.Fatalf("Redrive with an unknown ID: %v, want ErrNotFound", err)
	}
	_, _, err := dl.Redrive(t.Context(), awsdlq.Central, []string{all[0].ID, "not an id"})
	var fe *vaxpass.InvalidFieldError
	if !errors.As(err, &fe) || fe.Field != "ids" || !errors.Is(err, vaxpass.ErrInvalid) {
		t.Fatalf("Redrive with a malformed ID: %v, want ErrInvalid naming ids", err)
	}
	if n := depth(t, e.sqs.Client, e.central); n != 0 {
		t.Fatalf("refused redrives put %d messages on the central queue", n)
	}
	if got := list(t, dl, awsdlq.Central, "", 10); len(got) != 7 {
		t.Fatalf("%d dead letters after refused redrives, want 7", len(got))
	}

	// Two of them, named (one of them twice: once only).
	moved, failed, err := redrive(t, dl, awsdlq.Central, []string{all[1].ID, all[4].ID, all[1].ID})
	if err != nil || moved != 2 || failed != 0 {
		t.Fatalf("Redrive two = %d moved, %d failed, %v", moved, failed, err)
	}
	doubled := e.sqs.doubled()
	left := list(t, dl, awsdlq.Central, "", 10)
	want := slices.DeleteFunc(letterIDs(all), func(id string) bool { return id == all[1].ID || id == all[4].ID })
	if !slices.Equal(letterIDs(left), want) {
		t.Fatalf("left %v, want %v", letterIDs(left), want)
	}
	if rest := list(t, dl, awsdlq.Central, all[1].ID, 10); !slices.Equal(letterIDs(rest), want[1:]) {
		t.Fatalf("after the redriven %s: %v, want %v", all[1].ID, letterIDs(rest), want[1:])
	}
	back := drain(t, e.sqs.Client, e.central)
	if len(back) != 2 && !(doubled && len(back) > 2) {
		t.Fatalf("central queue got %d messages, want 2", len(back))
	}

	// One more, put on the dead-letter queue by hand with a message attribute: kept.
	extra, _ := centralqueue.Encode(vaxpass.FacilitySignature{PersonID: "001090099999", FacilityID: "79-HCM-0009", Payload: []byte{1}, Signature: []byte{2}, SignedAt: time.Now().UTC()})
	if _, err := e.sqs.Client.SendMessage(t.Context(), &sqs.SendMessageInput{
		QueueUrl: aws.String(e.dlq), MessageBody: aws.String(string(extra)),
		MessageAttributes: map[string]sqstypes.MessageAttributeValue{"origin": {DataType: aws.String("String"), StringValue: aws.String("renewal")}},
	}); err != nil {
		t.Fatal(err)
	}
	e.sent = append(e.sent, string(extra))
	extraDoubled := e.sqs.doubled()

	moved, failed, err = redrive(t, dl, awsdlq.Central, nil)
	if err != nil || failed != 0 || (moved != 6 && !(extraDoubled && moved == 7)) {
		t.Fatalf("Redrive all = %d moved, %d failed, %v; want 6", moved, failed, err)
	}
	doubled = doubled || e.sqs.doubled()
	if got := list(t, dl, awsdlq.Central, "", 10); len(got) != 0 {
		t.Fatalf("%d dead letters after redriving all", len(got))
	}
	back = append(back, drain(t, e.sqs.Client, e.central)...)
	var bodies []string
	for _, m := range back {
		bodies = append(bodies, aws.ToString(m.Body))
		if a, ok := m.MessageAttributes["origin"]; ok && (aws.ToString(a.StringValue) != "renewal" || aws.ToString(m.Body) != string(extra)) {
			t.Errorf("attribute %+v on a body of %d bytes: want origin=renewal on the hand-sent message only", a, len(aws.ToString(m.Body)))
		}
		if _, ok := m.MessageAttributes["origin"]; !ok && aws.ToString(m.Body) == string(extra) {
			t.Error("the hand-sent message lost its attribute")
		}
	}
	slices.Sort(bodies)
	slices.Sort(e.sent)
	if doubled || extraDoubled {
		// A send retried after a lost response may have doubled a message (SQS's
		// at-least-once delivery): each body at least once, none other.
		t.Logf("a redrive send was retried after a lost response: %d bodies back for %d sent", len(bodies), len(e.sent))
		bodies = slices.Compact(bodies)
	}
	if !slices.Equal(bodies, e.sent) {
		t.Fatalf("the central queue got back %d bodies, not exactly the %d sent once each", len(bodies), len(e.sent))
	}
	if moved, failed, err := redrive(t, dl, awsdlq.Central, nil); err != nil || moved != 0 || failed != 0 {
		t.Fatalf("Redrive of an empty queue = %d, %d, %v", moved, failed, err)
	}
}

// doseEnv is a doses table with its stream, and a matcher failure queue.
type doseEnv struct {
	sqs      *watchedSQS
	streams  *dynamodbstreams.Client
	store    *awsddb.Store
	table    string
	arn      string
	failures string
	dl       *awsdlq.DeadLetters
}

func newDoseEnv(t *testing.T) *doseEnv {
	t.Helper()
	cfg := awstest.Config(t)
	ddb := dynamodb.NewFromConfig(cfg)
	names := awsddb.Tables{Doses: awstest.UniqueName(t, "doses"), Certificates: awstest.UniqueName(t, "certs"), Facilities: awstest.UniqueName(t, "fac")}
	awstest.DeleteTablesAtCleanup(t, ddb, names.Doses, names.Certificates, names.Facilities)
	if err := awsddb.CreateTables(t.Context(), ddb, names); err != nil {
		t.Fatal(err)
	}
	store, err := awsddb.New(ddb, names, awsddb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	out, err := ddb.DescribeTable(t.Context(), &dynamodb.DescribeTableInput{TableName: aws.String(names.Doses)})
	if err != nil {
		t.Fatal(err)
	}
	e := &doseEnv{sqs: &watchedSQS{Client: sqs.NewFromConfig(cfg)}, streams: dynamodbstreams.NewFromConfig(cfg), store: store, table: names.Doses, arn: aws.ToString(out.Table.LatestStreamArn)}
	e.newFailureQueue(t)
	return e
}

// newFailureQueue gives the environment a new, empty failure queue.
func (e *doseEnv) newFailureQueue(t *testing.T) {
	t.Helper()
	e.failures = newQueue(t, e.sqs.Client, nil)
	central := newQueue(t, e.sqs.Client, nil)
	var err error
	e.dl, err = awsdlq.New(e.sqs, e.streams, e.store, awsdlq.Queues{Central: central, CentralDead: central, MatcherFailure: e.failures},
		awsdlq.Options{Visibility: testVisibility, DosesTable: e.table})
	if err != nil {
		t.Fatal(err)
	}
}

// newDose is a synthetic dose waiting for a match (not a real person).
func newDose(facility, source string) vaxpass.Dose {
	now := time.Now().UTC().Truncate(time.Millisecond)
	return vaxpass.Dose{
		FacilityID: facility,
		Record: dose.Record{
			SourceID: source, FullName: "Nguyen Van Thu", DOB: "1990-01-02", Gender: dose.Male, IDNumber: "001090000123",
			Vaccine: "comirnaty", DoseNumber: 1, VaccinatedOn: "2021-09-01",
		},
		Match: match.Result{Status: match.Pending, Reasons: []string{}}, ReceivedAt: now, UpdatedAt: now,
	}
}

func (e *doseEnv) put(t *testing.T, doses ...vaxpass.Dose) {
	t.Helper()
	created, err := e.store.PutNew(t.Context(), doses)
	if err != nil || slices.Contains(created, false) {
		t.Fatalf("PutNew = %v, %v", created, err)
	}
}

// matched saves a dose as matched (VERIFIED): it no longer waits for the matcher.
func (e *doseEnv) matched(t *testing.T, k vaxpass.DoseKey) {
	t.Helper()
	d, err := e.store.GetDose(t.Context(), k)
	if err != nil {
		t.Fatal(err)
	}
	d.Match = match.Result{Status: match.Verified, Reasons: []string{}}
	d.MatchedDetails = vaxpass.DetailsHash(&d.Record)
	if err := e.store.SaveMatch(t.Context(), d); err != nil {
		t.Fatal(err)
	}
}

func (e *doseEnv) version(t *testing.T, k vaxpass.DoseKey) int64 {
	t.Helper()
	d, err := e.store.GetDose(t.Context(), k)
	if err != nil {
		t.Fatal(err)
	}
	return d.Version
}

// records reads the whole stream (one shard on the emulator).
func (e *doseEnv) records(t *testing.T) (shard string, recs []streamtypes.Record) {
	t.Helper()
	desc, err := e.streams.DescribeStream(t.Context(), &dynamodbstreams.DescribeStreamInput{StreamArn: aws.String(e.arn)})
	if err != nil {
		t.Fatal(err)
	}
	if len(desc.StreamDescription.Shards) != 1 {
		t.Fatalf("%d shards, want the emulator's one", len(desc.StreamDescription.Shards))
	}
	shard = aws.ToString(desc.StreamDescription.Shards[0].ShardId)
	it, err := e.streams.GetShardIterator(t.Context(), &dynamodbstreams.GetShardIteratorInput{
		StreamArn: aws.String(e.arn), ShardId: aws.String(shard), ShardIteratorType: streamtypes.ShardIteratorTypeTrimHorizon,
	})
	if err != nil {
		t.Fatal(err)
	}
	for iter := it.ShardIterator; iter != nil; {
		out, err := e.streams.GetRecords(t.Context(), &dynamodbstreams.GetRecordsInput{ShardIterator: iter})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Records) == 0 {
			break
		}
		recs = append(recs, out.Records...)
		iter = out.NextShardIterator
	}
	return shard, recs
}

// flagged lists the source IDs of the records the matcher's filter passes, in order.
func flagged(recs []streamtypes.Record) []string {
	var out []string
	for _, r := range recs {
		if f, ok := r.Dynamodb.NewImage[doseitem.AttrNeedsMatch].(*streamtypes.AttributeValueMemberS); ok && f.Value == doseitem.NeedsMatchValue {
			out = append(out, r.Dynamodb.Keys[doseitem.AttrSourceID].(*streamtypes.AttributeValueMemberS).Value)
		}
	}
	return out
}

// failureBody is the AWS-shaped failure record of testdata with the batch's place set.
func failureBody(t *testing.T, streamARN, shard, start, end string, size int, at time.Time) string {
	t.Helper()
	b, err := os.ReadFile("testdata/aws-ddb-stream-failure.json")
	if err != nil {
		t.Fatal(err)
	}
	var rec map[string]any
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatal(err)
	}
	info := rec["DDBStreamBatchInfo"].(map[string]any)
	info["streamArn"], info["shardId"], info["startSequenceNumber"], info["endSequenceNumber"] = streamARN, shard, start, end
	info["batchSize"] = size
	info["approximateArrivalOfFirstRecord"] = at.Format(time.RFC3339)
	info["approximateArrivalOfLastRecord"] = at.Format(time.RFC3339)
	rec["timestamp"] = at.Add(time.Minute).Format(time.RFC3339Nano)
	out, _ := json.Marshal(rec)
	return string(out)
}

func (e *doseEnv) send(t *testing.T, body string) string {
	t.Helper()
	out, err := e.sqs.SendMessage(t.Context(), &sqs.SendMessageInput{QueueUrl: aws.String(e.failures), MessageBody: aws.String(body)})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.MessageId)
}

func byID(ls []vaxpass.DeadLetter) map[string]vaxpass.DeadLetter {
	m := map[string]vaxpass.DeadLetter{}
	for _, l := range ls {
		m[l.ID] = l
	}
	return m
}

// TestMatcherOnSQSAndStream: AWS-shaped failure records of batches of a real doses
// table's stream are listed with their doses, and redriven by re-flagging the doses that
// still wait for a match, so the stream carries them to the matcher again; batches the
// stream no longer holds, and messages that are not failure records, stay.
func TestMatcherOnSQSAndStream(t *testing.T) {
	e := newDoseEnv(t)
	d1, d2, d3 := newDose("79-HCM-0001", "src-1"), newDose("79-HCM-0001", "src-2"), newDose("79-HCM-0002", "src-3")
	e.put(t, d1)
	e.put(t, d2)
	e.put(t, d3)
	shard, recs := e.records(t)
	if len(recs) != 3 {
		t.Fatalf("%d stream records, want 3 inserts", len(recs))
	}
	seq := func(i int) string { return aws.ToString(recs[i].Dynamodb.SequenceNumber) }
	at := time.Now().UTC().Truncate(time.Second)
	var m1, m2, gone, junk string
	for attempt := 1; ; attempt++ {
		m1 = e.send(t, failureBody(t, e.arn, shard, seq(0), seq(0), 1, at))
		m2 = e.send(t, failureBody(t, e.arn, shard, seq(1), seq(2), 2, at))
		gone = e.send(t, failureBody(t, e.arn, shard, "1", "2", 2, at.Add(-30*time.Hour))) // trimmed from the stream
		junk = e.send(t, `{"Records":[]}`)
		if !e.sqs.doubled() {
			break
		}
		if attempt == 3 {
			t.Fatal("setup: sends doubled 3 times")
		}
		t.Log("setup: a send may have been doubled (lost response); again on a new queue")
		e.newFailureQueue(t)
	}

	letters := list(t, e.dl, awsdlq.Matcher, "", 10)
	if !slices.IsSorted(letterIDs(letters)) || len(letters) != 4 {
		t.Fatalf("listed %v, want the 4 messages in ID order", letterIDs(letters))
	}
	got := byID(letters)
	if l := got[m1]; l.FacilityID != "79-HCM-0001" || l.SourceID != "src-1" || l.ReceiveCount != 11 || !l.SentAt.Equal(at) || !l.DeadAt.Equal(at.Add(time.Minute)) ||
		!strings.Contains(l.Reason, "RetryAttemptsExhausted") {
		t.Errorf("one-dose letter %+v", l)
	}
	if l := got[m2]; l.FacilityID != "" || l.SourceID != "" || !strings.Contains(l.Reason, "2 doses: 79-HCM-0001/src-2, 79-HCM-0002/src-3") {
		t.Errorf("two-facility letter %+v: want the doses in Reason only", l)
	}
	if l := got[gone]; l.FacilityID != "" || !strings.Contains(l.Reason, "24 h") || !strings.Contains(l.Reason, "vaxpass reprocess --stage match --date received_at --from") {
		t.Errorf("past-retention letter %+v: want the way to recover", l)
	}
	if l := got[junk]; !strings.Contains(l.Reason, "not a DynamoDB stream failure record") || l.DeadAt.IsZero() {
		t.Errorf("junk letter %+v", l)
	}
	if js, _ := json.Marshal(letters); strings.Contains(string(js), d1.IDNumber) || strings.Contains(string(js), d1.FullName) {
		t.Fatalf("the listing shows personal data: %s", js)
	}
	if rest := list(t, e.dl, awsdlq.Matcher, letters[1].ID, 10); !slices.Equal(letterIDs(rest), letterIDs(letters[2:])) {
		t.Fatalf("after %s: %v, want %v", letters[1].ID, letterIDs(rest), letterIDs(letters[2:]))
	}

	// The first, by ID: d1 is written again, flagged, at its next version.
	moved, failed, err := redrive(t, e.dl, awsdlq.Matcher, []string{m1})
	if err != nil || moved != 1 || failed != 0 {
		t.Fatalf("Redrive(m1) = %d, %d, %v", moved, failed, err)
	}
	if v := e.version(t, d1.Key()); v != 2 {
		t.Errorf("d1 at version %d after its redrive, want 2", v)
	}
	_, recs = e.records(t)
	if f := flagged(recs); !slices.Equal(f, []string{"src-1", "src-2", "src-3", "src-1"}) {
		t.Fatalf("records the matcher gets: %v, want d1 again", f)
	}

	// d3 got matched meanwhile: the rest redrives d2 only; the gone and junk ones stay.
	e.matched(t, d3.Key())
	moved, failed, err = redrive(t, e.dl, awsdlq.Matcher, nil)
	if err != nil || moved != 1 || failed != 2 {
		t.Fatalf("Redrive all = %d moved, %d failed, %v; want 1 and 2", moved, failed, err)
	}
	if v2, v3 := e.version(t, d2.Key()), e.version(t, d3.Key()); v2 != 2 || v3 != 2 {
		t.Errorf("versions d2 %d (want 2: re-flagged), d3 %d (want 2: matched, untouched)", v2, v3)
	}
	_, recs = e.records(t)
	if f := flagged(recs); !slices.Equal(f, []string{"src-1", "src-2", "src-3", "src-1", "src-2"}) {
		t.Fatalf("records the matcher gets: %v, want d2 again and not d3", f)
	}
	if left := list(t, e.dl, awsdlq.Matcher, "", 10); !slices.Equal(letterIDs(left), sortedIDs(gone, junk)) {
		t.Fatalf("left %v, want the gone and junk messages", letterIDs(left))
	}
	// Named, they fail the same way and stay.
	if moved, failed, err := redrive(t, e.dl, awsdlq.Matcher, []string{gone, junk}); err != nil || moved != 0 || failed != 2 {
		t.Fatalf("Redrive(gone, junk) = %d, %d, %v", moved, failed, err)
	}
	if n := len(list(t, e.dl, awsdlq.Matcher, "", 10)); n != 2 {
		t.Fatalf("%d letters left, want 2", n)
	}
}

func sortedIDs(ids ...string) []string {
	slices.Sort(ids)
	return ids
}
