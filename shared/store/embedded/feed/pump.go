package feed

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// Handler is a DynamoDB-stream-triggered Lambda handler with partial batch responses
// (ReportBatchItemFailures: ItemIdentifier is the failed record's SequenceNumber).
type Handler func(ctx context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error)

// Pump errors, passed to PumpConfig.OnError (Run keeps going after them).
var (
	ErrHandler = errors.New("handler failed the whole batch")
	// ErrBadBatchItemFailure: the handler named a record that was not in the batch, or
	// none; like Lambda, the pump then treats the whole batch as failed.
	ErrBadBatchItemFailure = errors.New("batch item failure names no record of the batch")
	// ErrRecordsFailed: the handler reported some records as failed.
	ErrRecordsFailed = errors.New("records failed")
	// ErrDeadLettered: records ran out of retries and went to the dead-letter area.
	ErrDeadLettered = errors.New("records dead-lettered after their last retry")
)

// Special values of PumpConfig.MaxRetries.
const (
	RetryForever = -1
	NoRetries    = -2
)

// PumpConfig tunes a Pump; zero fields take the defaults shown.
type PumpConfig struct {
	// BatchSize is the most records per handler call; default 100 (Lambda's default).
	BatchSize int
	// MaxRetries is how often a batch starting at the same failed record is retried
	// before the records that failed in the last attempt go to the dead-letter area and
	// the checkpoint moves past the batch (Lambda's MaximumRetryAttempts). Zero means
	// the default, 10; NoRetries gives up after the first failure; RetryForever never
	// gives up (then one poison record blocks the feed, as in Lambda). Failures while
	// the storage refuses writes (vaxpass.ErrUnavailable: full disk, read-only file
	// system) use up no retry: the batch waits for the storage as long as it takes.
	MaxRetries int
	// RetryBaseDelay is the wait before the first retry, doubled for each further one
	// up to RetryMaxDelay; the same backoff paces the retries while the storage is
	// unavailable. Defaults 1s and 1m.
	RetryBaseDelay time.Duration
	RetryMaxDelay  time.Duration
	// PollInterval is how long an idle pump waits before looking again; an append in
	// this process wakes it sooner. Default 1s.
	PollInterval time.Duration
	// HandlerTimeout bounds one handler call, like a Lambda function's timeout; 0: none.
	HandlerTimeout time.Duration
	// OnError hears of failed batches and storage errors, for logging at the edge.
	OnError func(error)
	// Filter, when set, drops the records it does not keep before the handler sees
	// them, as an event source mapping's FilterCriteria does; the checkpoint moves past
	// dropped records.
	Filter *Filter
}

// Filter keeps the records whose NewImage has the string attribute Attr equal to S:
// the FilterCriteria pattern {"dynamodb":{"NewImage":{Attr:{"S":[S]}}}}.
type Filter struct {
	Attr, S string
}

// Pattern renders the filter as an event source mapping's FilterCriteria pattern.
func (f Filter) Pattern() string {
	b, _ := json.Marshal(map[string]any{"dynamodb": map[string]any{"NewImage": map[string]any{f.Attr: map[string]any{"S": []string{f.S}}}}})
	return string(b)
}

// filterScanFactor bounds a filtered read to this many stored records per record kept,
// so that a long run of dropped records still ends a batch (and moves the checkpoint).
const filterScanFactor = 20

// BatchResult says what one batch came to.
type BatchResult struct {
	Received     int    // records handed to the handler
	Succeeded    int    // records the checkpoint moved past that did not fail
	Failed       int    // records that failed (or, for a whole-batch failure, all)
	DeadLettered int    // failed records moved to the dead-letter area
	Attempt      int    // 1 for a first try, 2 for the first retry, ...; 0 when nothing failed
	Checkpoint   uint64 // the consumer's checkpoint afterwards
	// Unavailable: the records failed while the storage refused writes (full disk,
	// read-only file system); the try used up no retry and nothing was dead-lettered.
	Unavailable bool
}

// Pump hands a feed's events to one consumer's Handler in order, the way Lambda's
// DynamoDB event source mapping does with ReportBatchItemFailures and
// MaximumRetryAttempts: the checkpoint advances to just before the first failed record
// and the batch is retried from there; after MaxRetries the records that failed go to
// the consumer's dead-letter area and the pump moves on. A failure while the storage
// refuses writes is no attempt: the store tells the pump (see storageWatch), which then
// retries with backoff until the storage takes writes again, so a full disk
// dead-letters nothing. Checkpoint and retry count are persisted: a restarted pump
// resumes (at-least-once; handlers must be idempotent).
type Pump struct {
	f        *Feed
	consumer string
	h        Handler
	cfg      PumpConfig
}

// NewPump registers consumer (its checkpoint starts before the oldest retained event,
// like TRIM_HORIZON) unless it exists, and checks cfg. Events are trimmed only once
// every registered consumer has consumed them: RemoveConsumer retires one.
func NewPump(f *Feed, consumer string, h Handler, cfg PumpConfig) (*Pump, error) {
	if err := validateName("consumer", consumer, maxConsumerLen); err != nil {
		return nil, fmt.Errorf("feed %q: pump: %w", f.name, err)
	}
	if h == nil {
		return nil, fmt.Errorf("feed %q: pump: handler: %w: nil", f.name, ErrInvalidArgument)
	}
	if cfg.BatchSize == 0 {
		cfg.BatchSize = 100
	}
	switch cfg.MaxRetries {
	case 0:
		cfg.MaxRetries = 10
	case NoRetries:
		cfg.MaxRetries = 0
	}
	if cfg.RetryBaseDelay == 0 {
		cfg.RetryBaseDelay = time.Second
	}
	if cfg.RetryMaxDelay == 0 {
		cfg.RetryMaxDelay = time.Minute
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = time.Second
	}
	switch {
	case cfg.BatchSize < 1 || cfg.BatchSize > MaxBatchSize:
		return nil, fmt.Errorf("feed %q: pump: BatchSize %d: %w: must be 1..%d", f.name, cfg.BatchSize, ErrInvalidArgument, MaxBatchSize)
	case cfg.MaxRetries < RetryForever:
		return nil, fmt.Errorf("feed %q: pump: MaxRetries %d: %w: must be positive, NoRetries or RetryForever", f.name, cfg.MaxRetries, ErrInvalidArgument)
	case cfg.RetryBaseDelay < 0:
		return nil, fmt.Errorf("feed %q: pump: RetryBaseDelay %v: %w: must not be negative", f.name, cfg.RetryBaseDelay, ErrInvalidArgument)
	case cfg.RetryMaxDelay < cfg.RetryBaseDelay:
		return nil, fmt.Errorf("feed %q: pump: RetryMaxDelay %v: %w: must be at least RetryBaseDelay", f.name, cfg.RetryMaxDelay, ErrInvalidArgument)
	case cfg.PollInterval < 0:
		return nil, fmt.Errorf("feed %q: pump: PollInterval %v: %w: must not be negative", f.name, cfg.PollInterval, ErrInvalidArgument)
	case cfg.HandlerTimeout < 0:
		return nil, fmt.Errorf("feed %q: pump: HandlerTimeout %v: %w: must not be negative", f.name, cfg.HandlerTimeout, ErrInvalidArgument)
	}
	err := f.update(context.Background(), "register consumer", func(tx *bolt.Tx, b buckets) error {
		if b.checkpoints.Get([]byte(consumer)) != nil {
			return nil
		}
		if _, err := b.dead.CreateBucketIfNotExists([]byte(consumer)); err != nil {
			return err
		}
		return b.checkpoints.Put([]byte(consumer), cursorState{}.encode())
	})
	if err != nil {
		return nil, err
	}
	return &Pump{f: f, consumer: consumer, h: h, cfg: cfg}, nil
}

// cursorState is a consumer's persisted position.
type cursorState struct {
	checkpoint uint64 // the last sequence number consumed
	failingSeq uint64 // the first failed record of the batch being retried; 0: none
	attempts   uint32 // how often the batch starting at failingSeq failed
}

func (s cursorState) encode() []byte {
	b := make([]byte, 20)
	binary.BigEndian.PutUint64(b, s.checkpoint)
	binary.BigEndian.PutUint64(b[8:], s.failingSeq)
	binary.BigEndian.PutUint32(b[16:], s.attempts)
	return b
}

func decodeCursor(b []byte) (cursorState, error) {
	if len(b) != 20 {
		return cursorState{}, fmt.Errorf("%w: checkpoint of %d bytes", ErrCorrupt, len(b))
	}
	return cursorState{binary.BigEndian.Uint64(b), binary.BigEndian.Uint64(b[8:]), binary.BigEndian.Uint32(b[16:])}, nil
}

func (f *Feed) cursor(b buckets, consumer string) (cursorState, error) {
	v := b.checkpoints.Get([]byte(consumer))
	if v == nil {
		return cursorState{}, fmt.Errorf("%w: consumer %q is not registered", ErrInvalidArgument, consumer)
	}
	return decodeCursor(v)
}

// Run handles batches until ctx is cancelled, waiting between retries of a failing
// batch. It returns nil after a cancellation, or the error that makes going on
// pointless (the database was closed).
func (p *Pump) Run(ctx context.Context) error {
	refusals := 0 // tries in a row the storage refused, for the backoff while it lasts
	for ctx.Err() == nil {
		wake := p.f.woken() // before reading, so an append during the batch is not missed
		res, err := p.RunOnce(ctx)
		if res.Unavailable || unavailable(err) {
			refusals++
		} else {
			refusals = 0
		}
		var wait time.Duration
		switch {
		case errors.Is(err, berrors.ErrDatabaseNotOpen):
			return err
		case err != nil:
			if ctx.Err() == nil {
				p.report(err)
			}
			if refusals > 0 { // a full disk is not cured by appends: no wake-up
				p.sleep(ctx, p.backoff(refusals), nil)
				continue
			}
			wait = p.cfg.PollInterval
		case res.Unavailable:
			p.sleep(ctx, p.backoff(refusals), nil)
			continue
		case res.Failed > res.DeadLettered:
			p.sleep(ctx, p.backoff(res.Attempt), nil) // retry: appends do not cut it short
			continue
		case res.Received == p.cfg.BatchSize:
			continue // probably more waiting
		case res.Received > 0 && res.Failed == res.DeadLettered:
			continue // moved on: look again at once, appends may have come meanwhile
		default:
			wait = p.cfg.PollInterval
		}
		p.sleep(ctx, wait, wake)
	}
	return nil
}

func (p *Pump) sleep(ctx context.Context, d time.Duration, wake <-chan struct{}) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-wake:
	case <-t.C:
	}
}

// backoff is the wait before retry number attempt (attempt 1 = the first try failed).
func (p *Pump) backoff(attempt int) time.Duration {
	d := p.cfg.RetryBaseDelay
	for i := 1; i < attempt && d < p.cfg.RetryMaxDelay; i++ {
		d *= 2
	}
	return min(d, p.cfg.RetryMaxDelay)
}

func (p *Pump) report(err error) {
	if p.cfg.OnError != nil {
		p.cfg.OnError(err)
	}
}

// RunOnce hands the next batch after the checkpoint to the handler and records the
// outcome. Handler failures are not errors of RunOnce (they are reported to OnError
// and show in the BatchResult); storage errors and ErrConcurrentConsumer are.
func (p *Pump) RunOnce(ctx context.Context) (BatchResult, error) {
	var (
		state   cursorState
		recs    []events.DynamoDBEventRecord
		scanned uint64
	)
	err := p.f.view(ctx, "read batch", func(b buckets) error {
		var err error
		if state, err = p.f.cursor(b, p.consumer); err != nil {
			return err
		}
		recs, scanned, err = p.f.readFiltered(b, state.checkpoint, p.cfg.BatchSize, p.cfg.Filter)
		return err
	})
	if err != nil {
		return BatchResult{Checkpoint: state.checkpoint}, err
	}
	if len(recs) == 0 {
		if scanned <= state.checkpoint {
			return BatchResult{Checkpoint: state.checkpoint}, nil
		}
		// Only dropped records: move past them.
		next := cursorState{checkpoint: scanned}
		err := p.f.update(context.WithoutCancel(ctx), "checkpoint", func(tx *bolt.Tx, b buckets) error {
			return p.saveCursor(b, state, next)
		})
		if err != nil {
			return BatchResult{Checkpoint: state.checkpoint}, err
		}
		return BatchResult{Checkpoint: next.checkpoint}, nil
	}
	seqs := make([]uint64, len(recs))
	for i, r := range recs {
		seqs[i], _ = ParseSequenceNumber(r.Change.SequenceNumber)
	}

	hctx, watch := watchStorage(ctx)
	failed, herr := p.invoke(hctx, events.DynamoDBEvent{Records: recs}, seqs)
	// Per batch, not per record: the response does not say which record's write was
	// refused, and while the storage refuses writes every record is likely to fail.
	refused := len(failed) > 0 && (watch.refused.Load() || unavailable(herr))
	next, dead, attempt := advance(state, seqs, failed, ctx.Err() != nil || refused, p.cfg.MaxRetries)
	if len(failed) == 0 && scanned > next.checkpoint {
		next.checkpoint = scanned // dropped records after the last kept one
	}
	res := BatchResult{Received: len(recs), Failed: len(failed), DeadLettered: len(dead), Attempt: attempt, Checkpoint: next.checkpoint, Unavailable: refused}
	for _, s := range seqs {
		if s <= next.checkpoint && !failed[s] {
			res.Succeeded++
		}
	}
	if refused {
		herr = fmt.Errorf("%w (%w: retried, no retry used up)", herr, vaxpass.ErrUnavailable)
	}
	if next == state && len(dead) == 0 {
		// Nothing to record (the same first record failed again): no write, which a
		// full disk might refuse.
		if herr != nil {
			p.report(herr)
		}
		return res, nil
	}
	// Recorded even when the pump is being stopped: finished work is not redone.
	err = p.f.update(context.WithoutCancel(ctx), "checkpoint", func(tx *bolt.Tx, b buckets) error {
		if len(dead) > 0 {
			cur, err := p.f.cursor(b, p.consumer)
			if err != nil {
				return err
			}
			if cur != state {
				return fmt.Errorf("consumer %q: %w", p.consumer, ErrConcurrentConsumer)
			}
			if err := p.deadLetter(b, dead, herr); err != nil {
				return err
			}
		}
		return p.saveCursor(b, state, next)
	})
	if err != nil {
		return res, err
	}
	if herr != nil {
		p.report(herr)
	}
	if len(dead) > 0 {
		p.report(fmt.Errorf("feed %q: consumer %q: %w: %d records", p.f.name, p.consumer, ErrDeadLettered, len(dead)))
	}
	return res, nil
}

// saveCursor moves the consumer from state (as read) to next, trimming consumed events.
func (p *Pump) saveCursor(b buckets, state, next cursorState) error {
	cur, err := p.f.cursor(b, p.consumer)
	if err != nil {
		return err
	}
	if cur != state {
		return fmt.Errorf("consumer %q: %w", p.consumer, ErrConcurrentConsumer)
	}
	if err := b.checkpoints.Put([]byte(p.consumer), next.encode()); err != nil {
		return err
	}
	if next.checkpoint != state.checkpoint {
		_, err := trim(b, 2*p.cfg.BatchSize+trimSlack)
		return err
	}
	return nil
}

// advance decides a consumer's next state after a batch: without failures the
// checkpoint moves past the batch; otherwise to just before the first failed record,
// counting an attempt of the batch starting there, until maxRetries (-1: no limit) are
// used up: then the failed records are dead-lettered and the checkpoint moves past the
// batch. uncounted failures use up no attempt: those of a pump being stopped (most
// likely the cancellation's) and those while the storage refused writes. attempt is
// the number of the failed try (0 when none failed).
func advance(state cursorState, seqs []uint64, failed map[uint64]bool, uncounted bool, maxRetries int) (next cursorState, dead []uint64, attempt int) {
	last := seqs[len(seqs)-1]
	if len(failed) == 0 {
		return cursorState{checkpoint: last}, nil, 0
	}
	first := 0 // index of the first failed record
	for first < len(seqs) && !failed[seqs[first]] {
		first++
	}
	if first == len(seqs) { // invoke names only records of the batch; be safe anyway
		return cursorState{checkpoint: last}, nil, 0
	}
	before := state.checkpoint
	if first > 0 {
		before = seqs[first-1]
	}
	if uncounted {
		return cursorState{checkpoint: before, failingSeq: state.failingSeq, attempts: state.attempts}, nil, int(state.attempts) + 1
	}
	attempts := uint32(1)
	if state.failingSeq == seqs[first] {
		attempts = state.attempts + 1
	}
	if maxRetries >= 0 && int(attempts) > maxRetries {
		for _, s := range seqs {
			if failed[s] {
				dead = append(dead, s)
			}
		}
		return cursorState{checkpoint: last}, dead, int(attempts)
	}
	return cursorState{checkpoint: before, failingSeq: seqs[first], attempts: attempts}, nil, int(attempts)
}

// invoke calls the handler and answers the sequence numbers of failed records; nil
// means none failed.
func (p *Pump) invoke(ctx context.Context, ev events.DynamoDBEvent, seqs []uint64) (map[uint64]bool, error) {
	all := func() map[uint64]bool {
		m := make(map[uint64]bool, len(seqs))
		for _, s := range seqs {
			m[s] = true
		}
		return m
	}
	if p.cfg.HandlerTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.cfg.HandlerTimeout)
		defer cancel()
	}
	resp, err := p.call(ctx, ev)
	if err != nil {
		return all(), fmt.Errorf("feed %q: consumer %q: %w: %w", p.f.name, p.consumer, ErrHandler, err)
	}
	if len(resp.BatchItemFailures) == 0 {
		return nil, nil
	}
	inBatch := all()
	failed := make(map[uint64]bool, len(resp.BatchItemFailures))
	for _, bf := range resp.BatchItemFailures {
		s, err := ParseSequenceNumber(bf.ItemIdentifier)
		if err != nil || !inBatch[s] {
			return inBatch, fmt.Errorf("feed %q: consumer %q: %w: %q", p.f.name, p.consumer, ErrBadBatchItemFailure, bf.ItemIdentifier)
		}
		failed[s] = true
	}
	return failed, fmt.Errorf("feed %q: consumer %q: %w: %d of %d", p.f.name, p.consumer, ErrRecordsFailed, len(failed), len(seqs))
}

// call runs the handler, turning a panic into an error as the Lambda runtime does.
func (p *Pump) call(ctx context.Context, ev events.DynamoDBEvent) (resp events.DynamoDBEventResponse, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return p.h(ctx, ev)
}

// maxReasonBytes bounds the handler error text kept with a dead letter.
const maxReasonBytes = 1024

// ReasonItemFailure is a dead letter's Reason when the handler named the record in
// BatchItemFailures (rather than failing the whole batch with an error).
const ReasonItemFailure = "reported in BatchItemFailures"

func (p *Pump) deadLetter(b buckets, seqs []uint64, reason error) error {
	db := b.dead.Bucket([]byte(p.consumer))
	if db == nil {
		return fmt.Errorf("%w: dead-letter bucket of %q missing", ErrCorrupt, p.consumer)
	}
	why := ReasonItemFailure
	if reason != nil && !errors.Is(reason, ErrRecordsFailed) {
		why = reason.Error()
		if len(why) > maxReasonBytes {
			why = strings.ToValidUTF8(why[:maxReasonBytes], "")
		}
	}
	now := p.f.now().UnixNano()
	for _, s := range seqs {
		v := b.events.Get(seqKey(s))
		if v == nil {
			return fmt.Errorf("%w: event %d vanished", ErrCorrupt, s)
		}
		if err := db.Put(seqKey(s), encodeDead(now, why, v)); err != nil {
			return err
		}
	}
	return nil
}
