package queue

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/events"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// Handler is an SQS-triggered Lambda handler with partial batch responses
// (ReportBatchItemFailures).
type Handler func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error)

// Pump errors, passed to PumpConfig.OnError (Run keeps going after them).
var (
	ErrHandler = errors.New("handler failed the whole batch")
	// ErrBadBatchItemFailure: the handler named a message that was not in the batch, or
	// none; like Lambda, the pump then treats the whole batch as failed.
	ErrBadBatchItemFailure = errors.New("batch item failure names no message of the batch")
)

// PumpConfig tunes a Pump; zero fields take the defaults shown.
type PumpConfig struct {
	BatchSize         int           // messages per handler call; default 10, at most MaxReceiveBatch
	VisibilityTimeout time.Duration // how long a batch is hidden while handled; default 30s
	Concurrency       int           // batches handled at once; default 1
	// PollInterval is how long an idle worker waits before looking again; a send by
	// this process wakes it sooner. Default 1s.
	PollInterval time.Duration
	// HandlerTimeout bounds one handler call, like a Lambda function's timeout; 0: none.
	HandlerTimeout time.Duration
	// RetryBaseDelay is how long the messages of a batch whose handling the storage
	// refused (vaxpass.ErrUnavailable: full disk, read-only file system) stay hidden, and
	// the worker waits, before they are tried again; doubled for each such batch in a
	// row up to RetryMaxDelay, for as long as the storage refuses. Defaults 1s and 1m.
	RetryBaseDelay time.Duration
	RetryMaxDelay  time.Duration
	// OnError hears of failed batches and storage errors, for logging at the edge. It
	// may be called from several goroutines. Nil: ignored.
	OnError func(error)
}

// BatchResult says what one batch came to.
type BatchResult struct {
	Received int // messages handed to the handler
	Deleted  int // succeeded and deleted
	Failed   int // left to reappear after the visibility timeout (or, if Unavailable, the delay)
	// Unavailable of the Failed failed while the storage refused writes: they were
	// released (Queue.Release) after a backoff, their receive not counted towards the
	// redrive policy.
	Unavailable int
}

// Pump drives a Handler from a Queue the way Lambda's SQS event source mapping does:
// successful messages are deleted, failed ones (BatchItemFailures, or the whole batch
// when the handler returns an error or panics) reappear after the visibility timeout
// and, when they keep failing, reach the dead-letter area through the redrive policy.
// A failure while the storage refuses writes is not counted: the store tells the pump
// (see storageWatch), which releases the batch's failed messages uncounted and waits,
// with backoff, for as long as the storage refuses; a full disk dead-letters nothing.
type Pump struct {
	q   *Queue
	h   Handler
	cfg PumpConfig
	// refusals counts the batches in a row the storage refused, for the backoff.
	refusals atomic.Int64
}

// NewPump checks cfg and fills in its defaults.
func NewPump(q *Queue, h Handler, cfg PumpConfig) (*Pump, error) {
	if h == nil {
		return nil, fmt.Errorf("queue %q: pump: handler: %w: nil", q.name, ErrInvalidArgument)
	}
	if cfg.BatchSize == 0 {
		cfg.BatchSize = 10
	}
	if cfg.VisibilityTimeout == 0 {
		cfg.VisibilityTimeout = 30 * time.Second
	}
	if cfg.Concurrency == 0 {
		cfg.Concurrency = 1
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.RetryBaseDelay == 0 {
		cfg.RetryBaseDelay = time.Second
	}
	if cfg.RetryMaxDelay == 0 {
		cfg.RetryMaxDelay = time.Minute
	}
	switch {
	case cfg.BatchSize < 1 || cfg.BatchSize > MaxReceiveBatch:
		return nil, fmt.Errorf("queue %q: pump: BatchSize %d: %w: must be 1..%d", q.name, cfg.BatchSize, ErrInvalidArgument, MaxReceiveBatch)
	case cfg.VisibilityTimeout < 0 || cfg.VisibilityTimeout > MaxVisibilityTimeout:
		return nil, fmt.Errorf("queue %q: pump: VisibilityTimeout %v: %w: must be 0..%v", q.name, cfg.VisibilityTimeout, ErrInvalidArgument, MaxVisibilityTimeout)
	case cfg.Concurrency < 1:
		return nil, fmt.Errorf("queue %q: pump: Concurrency %d: %w: must be positive", q.name, cfg.Concurrency, ErrInvalidArgument)
	case cfg.PollInterval < 0:
		return nil, fmt.Errorf("queue %q: pump: PollInterval %v: %w: must not be negative", q.name, cfg.PollInterval, ErrInvalidArgument)
	case cfg.HandlerTimeout < 0:
		return nil, fmt.Errorf("queue %q: pump: HandlerTimeout %v: %w: must not be negative", q.name, cfg.HandlerTimeout, ErrInvalidArgument)
	case cfg.RetryBaseDelay < 0:
		return nil, fmt.Errorf("queue %q: pump: RetryBaseDelay %v: %w: must not be negative", q.name, cfg.RetryBaseDelay, ErrInvalidArgument)
	case cfg.RetryMaxDelay < cfg.RetryBaseDelay || cfg.RetryMaxDelay > MaxVisibilityTimeout:
		return nil, fmt.Errorf("queue %q: pump: RetryMaxDelay %v: %w: must be RetryBaseDelay..%v", q.name, cfg.RetryMaxDelay, ErrInvalidArgument, MaxVisibilityTimeout)
	}
	return &Pump{q: q, h: h, cfg: cfg}, nil
}

// Run handles batches with cfg.Concurrency workers until ctx is cancelled; a batch
// being handled then still has its successes deleted. It returns nil after a
// cancellation, or the error that makes going on pointless (the database was closed).
func (p *Pump) Run(ctx context.Context) error {
	var (
		wg       sync.WaitGroup
		once     sync.Once
		fatalErr error
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range p.cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.work(ctx); err != nil {
				once.Do(func() { fatalErr = err; cancel() })
			}
		}()
	}
	wg.Wait()
	return fatalErr
}

// work is one worker: it deletes the previous batch's successes in the transaction
// that receives the next batch. After a batch the storage refused it releases the
// failures (with the successes deleted) and waits before receiving again.
func (p *Pump) work(ctx context.Context) (err error) {
	var (
		pending []string // receipts of handled messages not deleted yet
		refused []string // receipts of failures the storage caused, not released yet
		delay   time.Duration
	)
	defer func() {
		if err != nil || len(pending)+len(refused) == 0 {
			return
		}
		// Finished work is recorded even when the pump is being stopped.
		if _, err := p.settle(context.WithoutCancel(ctx), pending, refused, delay); err != nil {
			p.report(err)
		}
	}()
	for ctx.Err() == nil {
		if len(refused) > 0 {
			// Until the release is recorded, nothing more is received: with the storage
			// refusing writes it would most likely fail too.
			settled, err := p.settle(ctx, pending, refused, delay)
			switch {
			case errors.Is(err, berrors.ErrDatabaseNotOpen):
				return err
			case settled:
				pending, refused = nil, nil
			case ctx.Err() == nil:
				p.report(err) // tried again after the wait
				delay = p.backoff(p.refusals.Add(1))
			}
			p.sleep(ctx, delay, nil)
			continue
		}
		wake := p.q.woken() // before receiving, so a send during the receive is not missed
		errs, msgs, err := p.q.DeleteAndReceive(ctx, pending, p.cfg.BatchSize, p.cfg.VisibilityTimeout)
		switch {
		case errors.Is(err, berrors.ErrDatabaseNotOpen):
			return err
		case err != nil:
			if ctx.Err() == nil {
				p.report(err) // pending stays: its deletes are tried again
			}
			if unavailable(err) { // a full disk is not cured by sends: no wake-up
				p.sleep(ctx, p.backoff(p.refusals.Add(1)), nil)
				continue
			}
		default:
			p.reportDeleteErrors(errs)
			pending = nil
			if len(msgs) > 0 {
				o := p.handle(ctx, msgs)
				pending, refused, delay = o.succeeded, o.refused, o.delay
				continue // delete (or release) and look for more at once
			}
		}
		p.sleep(ctx, p.cfg.PollInterval, wake)
	}
	return nil
}

// settle deletes the receipts of deletes and releases those of refused after delay in
// one transaction, reporting receipts that named no current delivery; settled is
// false when the transaction failed (err).
func (p *Pump) settle(ctx context.Context, deletes, refused []string, delay time.Duration) (settled bool, err error) {
	derrs, rerrs, err := p.q.settle(ctx, deletes, refused, delay)
	if err != nil {
		return false, err
	}
	p.reportDeleteErrors(derrs)
	p.reportDeleteErrors(rerrs)
	return true, nil
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

// backoff is the wait after the storage refused n batches (or writes) in a row.
func (p *Pump) backoff(n int64) time.Duration {
	d := p.cfg.RetryBaseDelay
	for i := int64(1); i < n && d < p.cfg.RetryMaxDelay; i++ {
		d *= 2
	}
	return min(d, p.cfg.RetryMaxDelay)
}

func (p *Pump) report(err error) {
	if p.cfg.OnError != nil {
		p.cfg.OnError(err)
	}
}

// reportDeleteErrors reports receipts that deleted (or released) nothing: the handler
// outlived the visibility timeout and the message was received again, so it is handled
// twice (at-least-once).
func (p *Pump) reportDeleteErrors(errs []error) {
	for _, e := range errs {
		if e != nil {
			p.report(e)
		}
	}
}

// RunOnce receives one batch, hands it to the handler and deletes what succeeded. A
// failed batch is not an error of RunOnce (it is reported to OnError and counted in
// BatchResult.Failed); storage errors are.
func (p *Pump) RunOnce(ctx context.Context) (BatchResult, error) {
	msgs, err := p.q.ReceiveBatch(ctx, p.cfg.BatchSize, p.cfg.VisibilityTimeout)
	if err != nil || len(msgs) == 0 {
		return BatchResult{}, err
	}
	o := p.handle(ctx, msgs)
	res := BatchResult{Received: len(msgs), Failed: o.failed, Unavailable: len(o.refused)}
	if len(o.succeeded)+len(o.refused) == 0 {
		return res, nil
	}
	// Finished work is recorded even when the pump is being stopped.
	errs, rerrs, err := p.q.settle(context.WithoutCancel(ctx), o.succeeded, o.refused, o.delay)
	if err != nil {
		return res, err
	}
	p.reportDeleteErrors(rerrs)
	p.reportDeleteErrors(errs)
	for _, e := range errs {
		if e == nil {
			res.Deleted++
		}
	}
	return res, nil
}

// outcome is what the handler made of a batch.
type outcome struct {
	succeeded []string // receipts to delete
	failed    int      // messages that failed, refused included
	// refused are the receipts of the failures while the storage refused writes: to
	// release after delay, uncounted.
	refused []string
	delay   time.Duration
}

// handle runs the handler on msgs and sorts them by outcome.
func (p *Pump) handle(ctx context.Context, msgs []Message) outcome {
	hctx, watch := watchStorage(ctx)
	failedIDs, herr := p.invoke(hctx, p.q.Event(msgs))
	// Per batch, not per message: the response does not say which message's write was
	// refused, and while the storage refuses writes every message is likely to fail.
	refused := len(failedIDs) > 0 && (watch.refused.Load() || unavailable(herr))
	var o outcome
	if refused {
		o.delay = p.backoff(p.refusals.Add(1))
		herr = fmt.Errorf("%w (%w: released uncounted, visible again in %v)", herr, vaxpass.ErrUnavailable, o.delay)
	} else {
		p.refusals.Store(0)
	}
	if herr != nil {
		p.report(herr)
	}
	for _, m := range msgs {
		switch {
		case !failedIDs[m.ID]:
			o.succeeded = append(o.succeeded, m.ReceiptHandle)
		case refused:
			o.failed++
			o.refused = append(o.refused, m.ReceiptHandle)
		default:
			o.failed++
		}
	}
	return o
}

// invoke calls the handler and answers the ids of failed messages; nil means none.
func (p *Pump) invoke(ctx context.Context, ev events.SQSEvent) (failed map[string]bool, err error) {
	all := func() map[string]bool {
		m := make(map[string]bool, len(ev.Records))
		for _, r := range ev.Records {
			m[r.MessageId] = true
		}
		return m
	}
	if p.cfg.HandlerTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.cfg.HandlerTimeout)
		defer cancel()
	}
	resp, herr := p.call(ctx, ev)
	if herr != nil {
		return all(), fmt.Errorf("queue %q: %w: %w", p.q.name, ErrHandler, herr)
	}
	if len(resp.BatchItemFailures) == 0 {
		return nil, nil
	}
	failed = make(map[string]bool, len(resp.BatchItemFailures))
	inBatch := all()
	for _, f := range resp.BatchItemFailures {
		if !inBatch[f.ItemIdentifier] {
			return inBatch, fmt.Errorf("queue %q: %w: %q", p.q.name, ErrBadBatchItemFailure, f.ItemIdentifier)
		}
		failed[f.ItemIdentifier] = true
	}
	return failed, fmt.Errorf("queue %q: %d of %d messages failed", p.q.name, len(failed), len(ev.Records))
}

// call runs the handler, turning a panic into an error as the Lambda runtime does.
func (p *Pump) call(ctx context.Context, ev events.SQSEvent) (resp events.SQSEventResponse, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return p.h(ctx, ev)
}

// Event converts received messages into the event Lambda would deliver for them.
func (q *Queue) Event(msgs []Message) events.SQSEvent {
	ev := events.SQSEvent{Records: make([]events.SQSMessage, len(msgs))}
	arn := q.ARN()
	for i, m := range msgs {
		sum := md5.Sum(m.Body)
		attrs := map[string]string{
			"ApproximateReceiveCount":          strconv.Itoa(m.ReceiveCount),
			"SentTimestamp":                    strconv.FormatInt(m.SentAt.UnixMilli(), 10),
			"ApproximateFirstReceiveTimestamp": strconv.FormatInt(m.FirstReceivedAt.UnixMilli(), 10),
			"SenderId":                         Account,
		}
		if m.DedupID != "" {
			attrs["MessageDeduplicationId"] = m.DedupID
		}
		ev.Records[i] = events.SQSMessage{
			MessageId:      m.ID,
			ReceiptHandle:  m.ReceiptHandle,
			Body:           string(m.Body),
			Md5OfBody:      hex.EncodeToString(sum[:]),
			Attributes:     attrs,
			EventSourceARN: arn,
			EventSource:    "aws:sqs",
			AWSRegion:      Region,
		}
	}
	return ev
}
