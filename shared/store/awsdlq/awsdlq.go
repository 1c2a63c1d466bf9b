// Package awsdlq lists and redrives the dead letters of the AWS backend (the ops API's dead letters),
// as the embedded backend does for its own queue and change feed:
//
//   - "central": the SQS dead-letter queue of the central signing queue
//     (CentralDeadLetterQueue), where the redrive policy moves a facility signature after
//     maxReceiveCount failed receives;
//   - "matcher": the SQS on-failure destination of the matcher's DynamoDB stream event
//     source mapping (MatcherFailureQueue). Lambda sends there, after its retries, an
//     invocation record that locates the failed batch in the stream (DDBStreamBatchInfo:
//     stream ARN, shard, first and last sequence numbers, approximate times), never the
//     records themselves (testdata/README.md gives the shape and its sources).
//
// # Listing without losing messages
//
// SQS has no peek: the only way to see a message is to receive it, which hides it for a
// visibility timeout. ListDead receives the whole queue (Options.Visibility keeps every
// received message hidden while the scan goes on, so the scan ends when a long-polled
// receive finds nothing), never deletes, and makes every message it received visible again
// before returning. A crash in between only hides them until the visibility timeout ends.
//
// IDs are SQS message IDs, which stay the same for as long as a message sits in the queue,
// and a page is the messages whose ID sorts after "after", in byte order, up to limit. So
// the cursor (the last ID of a page, as the API and the CLI use it) keeps its place when
// letters before or after it are redriven or arrive between pages, and need not be in the
// queue any more; a letter arriving meanwhile with a smaller ID shows in the next listing.
// A time order would not work: SQS gives no time at which a message was dead-lettered, and
// a cursor that is only an ID cannot carry a time. Each page scans the whole queue again:
// fine for a dead-letter queue (ops' business, normally empty); past Options.MaxScan
// messages ListDead refuses rather than list a part in a wrong order.
//
// A receive whose response is lost (and which the SDK retries) may have hidden messages
// nobody got; a scan that saw such a retry answers vaxpass.ErrUnavailable (try again after
// the visibility timeout) rather than a listing with holes, and so does a redrive by ID
// that then misses some of its IDs (retry.go).
//
// Nothing of a facility signature's body is returned or logged: a central letter names
// its facility (read from the body with worker.Decode); the person's ID, name and date of
// birth stay in the message. SQS records no time of the move to the dead-letter queue: a
// central letter's DeadAt is its first receive (the first failed attempt), and its
// ReceiveCount SQS's count less this listing's receive (earlier listings count too).
//
// # Redriving
//
// Central: each named message (all when ids is empty) is sent again to the central queue,
// body and message attributes unchanged (the queues are standard queues, so there is no
// group or deduplication ID to keep: see awssqs), and deleted from the dead-letter queue
// only after the send succeeded. A crash, or a delete that fails, between the two leaves
// the message in both queues: redriven twice, never lost; central signing is idempotent.
// (A send whose response is lost and that the SDK retries may double it too.)
// The redriven message is a new message (new ID, receive count 0): if central signing
// fails it again, it comes back to the dead-letter queue under that new ID.
//
// Matcher: the stream cannot deliver a record twice, so the redrive makes the matcher see
// the doses again: for each change of the failed batch (read back from the stream) the
// dose is read and, if it still waits for a match (vaxpass.Dose.NeedsMatch), written back
// unchanged but for its version (Doses.UpdateDose, conditional on the version read). That
// write is a MODIFY whose new image carries needs_match (doseitem.AttrNeedsMatch), so the
// matcher's filtered subscription delivers it. A dose matched meanwhile, or changed
// meanwhile (a conflict: that change has its own stream record), needs nothing. Then the
// failure message is deleted. The matcher works asynchronously: a dose that fails again
// comes back as a new failure message.
//
// DynamoDB Streams keeps records 24 hours. A failure message whose batch has left the
// stream cannot name its doses: Redrive leaves it in the queue and counts it failed, and
// ListDead's Reason says so and how to recover: re-run the match stage over the doses of
// that time (vaxpass reprocess --stage match ..., or POST /v1/ops/reprocess), which leaves
// doses already matched unchanged. The message expires with the queue's retention.
//
// # IAM
//
// central dead-letter queue: sqs:ReceiveMessage, sqs:ChangeMessageVisibility,
// sqs:DeleteMessage; central queue: sqs:SendMessage; matcher failure queue:
// sqs:ReceiveMessage, sqs:ChangeMessageVisibility, sqs:DeleteMessage; the doses table's
// stream: dynamodb:GetShardIterator, dynamodb:GetRecords; the doses table: dynamodb:GetItem,
// dynamodb:PutItem (Doses as *awsddb.Store: a re-flag changes no dashboard counter, so it
// is never one of its transactions). The batch calls need no actions of their own, and
// the queues' SQS-managed encryption needs no KMS permission.
package awsdlq

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// Queue names of the dead letters (vaxpass.DeadCentral, vaxpass.DeadMatcher).
const (
	Central = "central"
	Matcher = "matcher"
)

// SQS is the part of the SQS client the dead letters use (*sqs.Client implements it).
type SQS interface {
	ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, opts ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, opts ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error)
	DeleteMessageBatch(ctx context.Context, in *sqs.DeleteMessageBatchInput, opts ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error)
	ChangeMessageVisibilityBatch(ctx context.Context, in *sqs.ChangeMessageVisibilityBatchInput, opts ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error)
}

// Streams is the part of the DynamoDB Streams client the matcher's letters use
// (*dynamodbstreams.Client implements it).
type Streams interface {
	GetShardIterator(ctx context.Context, in *dynamodbstreams.GetShardIteratorInput, opts ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetShardIteratorOutput, error)
	GetRecords(ctx context.Context, in *dynamodbstreams.GetRecordsInput, opts ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetRecordsOutput, error)
}

// Doses reads and rewrites doses for the matcher's redrive (*awsddb.Store implements it):
// GetDose returns vaxpass.ErrNotFound for no dose; UpdateDose stores d with Version+1 if
// the stored dose still has d.Version (vaxpass.ErrConflict otherwise).
type Doses interface {
	GetDose(ctx context.Context, key vaxpass.DoseKey) (vaxpass.Dose, error)
	UpdateDose(ctx context.Context, d vaxpass.Dose) error
}

// Queues are the URLs of the queues (template.yaml outputs CentralQueue,
// CentralDeadLetterQueueUrl, MatcherFailureQueueUrl).
type Queues struct {
	Central        string
	CentralDead    string
	MatcherFailure string
}

// Options tune the dead letters; zero values take the defaults.
type Options struct {
	// Visibility hides each message received by a scan while the scan and the redrive of
	// its batch go on (default 60 s); every message is made visible again when the call
	// ends, or by SQS after this time if the process dies.
	Visibility time.Duration
	// MaxScan bounds the messages one call receives (default 2,000). A listing costs about
	// MaxScan/10 receives and as many visibility changes, which must fit API Gateway's 29 s;
	// the ops Lambda (15 min) may take more (SQS allows 120,000 in flight per standard
	// queue). ListDead refuses a larger queue; Redrive of all stops there and answers what
	// it moved (call it again).
	MaxScan int
	// StreamReaders bounds the stream reads a matcher listing runs at once (default 4).
	StreamReaders int
	// DosesTable, when set, is the only table whose stream a matcher letter may name.
	DosesTable string
	// Log receives, per message, why a redrive failed (IDs and reasons, never bodies);
	// default slog.Default().
	Log *slog.Logger
}

// Defaults of Options.
const (
	DefaultVisibility    = 60 * time.Second
	DefaultMaxScan       = 2_000
	DefaultStreamReaders = 4
)

// ErrConfig reports a missing client or queue URL.
var ErrConfig = errors.New("awsdlq: configuration")

// ErrTooMany reports a dead-letter queue larger than Options.MaxScan: it cannot be listed
// in order, nor searched for IDs (redrive all, or look at it in the SQS console).
var ErrTooMany = errors.New("awsdlq: too many dead letters to list")

// DeadLetters implements the ops API's dead letters (wire.DeadLetters) over SQS, DynamoDB Streams and the doses table.
// It is safe for concurrent use, but concurrent calls on one queue see each other's
// messages hidden (a listing during a redrive lists fewer; a redrive by ID during a
// listing may answer not found): ops run one at a time.
type DeadLetters struct {
	sqs     SQS
	streams Streams
	doses   Doses
	queues  Queues
	opt     Options
}

// New returns the dead letters of the queues.
func New(sqsClient SQS, streams Streams, doses Doses, queues Queues, opt Options) (*DeadLetters, error) {
	if sqsClient == nil || streams == nil || doses == nil {
		return nil, fmt.Errorf("%w: an SQS client, a DynamoDB Streams client and the doses store are required", ErrConfig)
	}
	if queues.Central == "" || queues.CentralDead == "" || queues.MatcherFailure == "" {
		return nil, fmt.Errorf("%w: every queue URL is required (central %q, central dead letters %q, matcher failures %q)",
			ErrConfig, queues.Central, queues.CentralDead, queues.MatcherFailure)
	}
	if opt.Visibility <= 0 {
		opt.Visibility = DefaultVisibility
	}
	if opt.Visibility < time.Second || opt.Visibility > 12*time.Hour {
		return nil, fmt.Errorf("%w: visibility %v: SQS takes 1 s to 12 h", ErrConfig, opt.Visibility)
	}
	if opt.MaxScan <= 0 {
		opt.MaxScan = DefaultMaxScan
	}
	if opt.StreamReaders <= 0 {
		opt.StreamReaders = DefaultStreamReaders
	}
	if opt.Log == nil {
		opt.Log = slog.Default()
	}
	return &DeadLetters{sqs: sqsClient, streams: streams, doses: doses, queues: queues, opt: opt}, nil
}

// idRe is what an SQS message ID can be (a UUID on AWS and ministack; a little wider,
// and still safe to echo in errors and logs).
var idRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)

func checkQueue(queue string) error {
	if queue != Central && queue != Matcher {
		return &vaxpass.InvalidFieldError{Field: "queue", Err: fmt.Errorf("queue %q: want %s or %s", queue, Central, Matcher)}
	}
	return nil
}

// ListDead implements the ops API's dead letters (wire.DeadLetters): up to limit (1..MaxPage) letters of the
// queue whose IDs sort after after ("" for the first page), in ID order.
func (d *DeadLetters) ListDead(ctx context.Context, queue, after string, limit int) ([]vaxpass.DeadLetter, error) {
	if err := checkQueue(queue); err != nil {
		return nil, err
	}
	if after != "" && !idRe.MatchString(after) {
		return nil, &vaxpass.InvalidFieldError{Field: "after", Err: errors.New("not a message ID")}
	}
	if limit < 1 || limit > MaxPage {
		return nil, &vaxpass.InvalidFieldError{Field: "limit", Err: fmt.Errorf("limit %d: must be 1..%d", limit, MaxPage)}
	}
	if queue == Central {
		return d.listCentral(ctx, after, limit)
	}
	return d.listMatcher(ctx, after, limit)
}

// Redrive implements the ops API's dead letters (wire.DeadLetters): it moves the named letters (all when ids is empty)
// back to their consumer (see the package doc). An ID that is not in the queue is
// vaxpass.ErrNotFound and nothing moves (vaxpass.ErrUnavailable if a lost receive may
// have hidden it: try again after the visibility timeout). moved counts the letters handed back and removed
// from the queue; failed those left in it (a send SQS refused, a matcher batch past the
// stream's retention or whose doses could not be rewritten: Options.Log says which).
func (d *DeadLetters) Redrive(ctx context.Context, queue string, ids []string) (moved, failed int, err error) {
	if err := checkQueue(queue); err != nil {
		return 0, 0, err
	}
	seen := make(map[string]bool, len(ids))
	var want []string
	for i, id := range ids {
		if !idRe.MatchString(id) {
			return 0, 0, &vaxpass.InvalidFieldError{Field: "ids", Err: fmt.Errorf("ids[%d]: not a message ID", i)}
		}
		if !seen[id] {
			seen[id] = true
			want = append(want, id)
		}
	}
	h := d.centralHandler()
	url := d.queues.CentralDead
	if queue == Matcher {
		h, url = d.matcherHandler(), d.queues.MatcherFailure
	}
	if len(want) == 0 {
		return d.redriveAll(ctx, url, h)
	}
	return d.redriveIDs(ctx, url, want, h)
}

// MaxPage is the largest page of ListDead (the ops API's page, api.DeadLetterPage).
const MaxPage = 1000
