package awsdlq

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// message is one received message, with the receipt handle of its latest receive (SQS
// acts on the latest handle only).
type message struct {
	id, handle, body string
	attrs            map[string]string
	msgAttrs         map[string]types.MessageAttributeValue
}

// maxBatch is SQS's most entries in one batch request.
const maxBatch = 10

// waitSeconds is the long poll of every receive: a short poll samples only some of SQS's
// servers and may answer none while messages wait, a long poll asks them all, so an empty
// answer means an empty queue (for the visible messages).
const waitSeconds = 1

// staleReceives ends a scan after this many receives in a row brought back only messages
// already seen: the scan outlived the visibility timeout and goes round the queue again.
const staleReceives = 3

// releaseTimeout bounds making a call's messages visible again; it runs even when the
// call's context is done (otherwise they would stay hidden for the visibility timeout).
const releaseTimeout = 30 * time.Second

// receive receives up to maxBatch messages, hiding them for Options.Visibility.
func (d *DeadLetters) receive(ctx context.Context, url string, opts ...func(*sqs.Options)) ([]*message, error) {
	out, err := d.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl:                    aws.String(url),
		MaxNumberOfMessages:         maxBatch,
		VisibilityTimeout:           int32(d.opt.Visibility / time.Second),
		WaitTimeSeconds:             waitSeconds,
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
		MessageAttributeNames:       []string{"All"},
	}, opts...)
	if err != nil {
		return nil, fmt.Errorf("receive from %s: %w", queueName(url), err)
	}
	msgs := make([]*message, 0, len(out.Messages))
	for _, m := range out.Messages {
		msgs = append(msgs, &message{
			id: aws.ToString(m.MessageId), handle: aws.ToString(m.ReceiptHandle), body: aws.ToString(m.Body),
			attrs: m.Attributes, msgAttrs: m.MessageAttributes,
		})
	}
	return msgs, nil
}

// scan receives the queue's messages until a (long-polled) receive finds none, or enough
// says so, or Options.MaxScan messages were seen (complete false). lost reports a receive
// the SDK retried after a failure that may have been applied: it may have hidden messages
// the scan never saw. Every message scan returns is hidden: the caller releases or deletes
// them, also after an error.
func (d *DeadLetters) scan(ctx context.Context, url string, enough func(map[string]*message) bool) (msgs map[string]*message, complete, lost bool, err error) {
	msgs = map[string]*message{}
	var watch retryWatch
	defer func() { lost = watch.Ambiguous() }()
	stale := 0
	for {
		if len(msgs) >= d.opt.MaxScan {
			return msgs, false, false, nil
		}
		batch, err := d.receive(ctx, url, watch.option)
		if err != nil {
			return msgs, false, false, err
		}
		if len(batch) == 0 {
			return msgs, true, false, nil
		}
		fresh := 0
		for _, m := range batch {
			if _, ok := msgs[m.id]; !ok {
				fresh++
			}
			msgs[m.id] = m // the latest handle
		}
		if fresh > 0 {
			stale = 0
		} else if stale++; stale >= staleReceives {
			return msgs, true, false, nil
		}
		if enough != nil && enough(msgs) {
			return msgs, true, false, nil
		}
	}
}

// errLostReceive reports a scan that may have missed messages (see retry.go).
var errLostReceive = errors.New("a receive's response was lost, and the messages it hid stay hidden until their visibility timeout ends")

// lostError is what a scan that may have missed messages answers: vaxpass.ErrUnavailable,
// as it is worth trying again once the visibility timeout ended.
func (d *DeadLetters) lostError() error {
	return fmt.Errorf("%w: %w: try again in %v", vaxpass.ErrUnavailable, errLostReceive, d.opt.Visibility)
}

// release makes messages visible again at once. A failure only delays them: SQS shows
// them again when their visibility timeout ends.
func (d *DeadLetters) release(ctx context.Context, url string, msgs []*message) {
	if len(msgs) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	defer cancel()
	for chunk := range slices.Chunk(msgs, maxBatch) {
		entries := make([]types.ChangeMessageVisibilityBatchRequestEntry, len(chunk))
		for i, m := range chunk {
			entries[i] = types.ChangeMessageVisibilityBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(m.handle), VisibilityTimeout: 0}
		}
		out, err := d.sqs.ChangeMessageVisibilityBatch(ctx, &sqs.ChangeMessageVisibilityBatchInput{QueueUrl: aws.String(url), Entries: entries})
		if err != nil {
			d.opt.Log.Warn("dead letters stay hidden until their visibility timeout ends", "queue", queueName(url), "messages", len(chunk), "err", err)
			continue
		}
		if len(out.Failed) > 0 {
			d.opt.Log.Warn("dead letters stay hidden until their visibility timeout ends", "queue", queueName(url), "messages", len(out.Failed), "code", aws.ToString(out.Failed[0].Code))
		}
	}
}

// remove deletes handled messages from their queue; it answers the IDs SQS did not delete
// (they stay, and a later redrive hands them back again: a duplicate, never a loss).
func (d *DeadLetters) remove(ctx context.Context, url string, msgs []*message) (kept []string, err error) {
	for start := 0; start < len(msgs); start += maxBatch {
		chunk := msgs[start:min(start+maxBatch, len(msgs))]
		entries := make([]types.DeleteMessageBatchRequestEntry, len(chunk))
		for i, m := range chunk {
			entries[i] = types.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(m.handle)}
		}
		out, err := d.sqs.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(url), Entries: entries})
		if err != nil {
			for _, m := range msgs[start:] {
				kept = append(kept, m.id)
			}
			return kept, fmt.Errorf("delete from %s: %w", queueName(url), err)
		}
		for _, f := range out.Failed {
			if i, err := strconv.Atoi(aws.ToString(f.Id)); err == nil && i >= 0 && i < len(chunk) {
				kept = append(kept, chunk[i].id)
			}
		}
	}
	return kept, nil
}

// handler hands a batch of dead letters back to their consumer: errs[i] is why batch[i]
// stays a dead letter (nil: handed back, delete it); fatal stops the redrive (the batch
// stays).
type handler struct {
	queue  string
	handle func(ctx context.Context, batch []*message) (errs []error, fatal error)
}

// redriveAll hands back every message of the queue as it receives them. Messages that
// fail stay hidden until the end of the call, so the loop ends when none is visible.
func (d *DeadLetters) redriveAll(ctx context.Context, url string, h handler) (moved, failed int, err error) {
	held := map[string]*message{}
	done := map[string]bool{}
	defer func() { d.release(ctx, url, valuesOf(held)) }()
	stale := 0
	for len(done) < d.opt.MaxScan {
		batch, err := d.receive(ctx, url)
		if err != nil {
			return moved, failed, fmt.Errorf("awsdlq: redrive %s: %w", h.queue, err)
		}
		if len(batch) == 0 {
			break
		}
		var todo []*message
		for _, m := range batch {
			if done[m.id] {
				// Back again: it failed (its visibility ran out meanwhile) or its delete
				// failed. Keep it hidden until the end, handled once per call.
				held[m.id] = m
				continue
			}
			done[m.id] = true
			todo = append(todo, m)
		}
		if len(todo) == 0 {
			if stale++; stale >= staleReceives {
				break
			}
			continue
		}
		stale = 0
		m, f, err := d.handBack(ctx, url, h, todo, held)
		moved, failed = moved+m, failed+f
		if err != nil {
			return moved, failed, err
		}
	}
	return moved, failed, nil
}

// redriveIDs hands back the named messages, all of them or none: it finds them first.
func (d *DeadLetters) redriveIDs(ctx context.Context, url string, ids []string, h handler) (moved, failed int, err error) {
	found, complete, lost, err := d.scan(ctx, url, func(m map[string]*message) bool {
		for _, id := range ids {
			if m[id] == nil {
				return false
			}
		}
		return true
	})
	// Whatever was received and not deleted becomes visible again.
	defer func() { d.release(ctx, url, valuesOf(found)) }()
	if err != nil {
		return 0, 0, fmt.Errorf("awsdlq: redrive %s: %w", h.queue, err)
	}
	var missing []string
	todo := make([]*message, 0, len(ids))
	for _, id := range ids {
		if m := found[id]; m != nil {
			todo = append(todo, m)
		} else {
			missing = append(missing, id)
		}
	}
	switch {
	case len(missing) > 0 && lost:
		return 0, 0, fmt.Errorf("awsdlq: redrive %s: %w", h.queue, d.lostError())
	case len(missing) > 0 && !complete:
		return 0, 0, fmt.Errorf("awsdlq: redrive %s: %w: %d of the IDs are not among the first %d messages received; redrive all",
			h.queue, ErrTooMany, len(missing), d.opt.MaxScan)
	}
	if len(missing) > 0 {
		return 0, 0, fmt.Errorf("awsdlq: redrive %s: %w: %d of the IDs are not dead letters (or another listing or redrive holds them): %s",
			h.queue, vaxpass.ErrNotFound, len(missing), strings.Join(missing, ", "))
	}
	held := map[string]*message{}
	for chunk := range slices.Chunk(todo, maxBatch) {
		m, f, err := d.handBack(ctx, url, h, chunk, held)
		moved, failed = moved+m, failed+f
		for _, msg := range chunk {
			if held[msg.id] == nil {
				delete(found, msg.id) // deleted (or deliberately left hidden if its delete failed)
			}
		}
		if err != nil {
			return moved, failed, err
		}
	}
	return moved, failed, nil
}

// handBack runs the handler on a batch, deletes what it handed back and puts the rest in
// held.
func (d *DeadLetters) handBack(ctx context.Context, url string, h handler, batch []*message, held map[string]*message) (moved, failed int, err error) {
	errs, fatal := h.handle(ctx, batch)
	if fatal != nil {
		for _, m := range batch {
			held[m.id] = m
		}
		return 0, 0, fmt.Errorf("awsdlq: redrive %s: %w", h.queue, fatal)
	}
	var ok []*message
	for i, m := range batch {
		if errs[i] != nil {
			held[m.id] = m
			failed++
			d.opt.Log.Warn("dead letter not redriven; it stays", "queue", h.queue, "message_id", m.id, "err", errs[i])
			continue
		}
		ok = append(ok, m)
	}
	kept, err := d.remove(ctx, url, ok)
	if len(kept) > 0 {
		// Handed back already: counted as moved. Still in the queue, it would be handed
		// back again by a later redrive (idempotent consumers).
		d.opt.Log.Warn("dead letters redriven but not deleted from their queue; a later redrive repeats them", "queue", h.queue, "message_ids", kept, "err", err)
	}
	if err := ctx.Err(); err != nil {
		return len(ok), failed, fmt.Errorf("awsdlq: redrive %s: %w", h.queue, err)
	}
	return len(ok), failed, nil
}

// listPage scans a queue and returns the page after after, in ID order; every message is
// visible again when it returns.
func (d *DeadLetters) listPage(ctx context.Context, url, after string, limit int) ([]*message, error) {
	msgs, complete, lost, err := d.scan(ctx, url, nil)
	d.release(ctx, url, valuesOf(msgs))
	if err != nil {
		return nil, err
	}
	if lost {
		return nil, d.lostError()
	}
	if !complete {
		return nil, fmt.Errorf("%w: %s holds more than %d messages", ErrTooMany, queueName(url), d.opt.MaxScan)
	}
	ids := make([]string, 0, len(msgs))
	for id := range msgs {
		if id > after {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	ids = ids[:min(len(ids), limit)]
	page := make([]*message, len(ids))
	for i, id := range ids {
		page[i] = msgs[id]
	}
	return page, nil
}

func valuesOf(m map[string]*message) []*message {
	out := make([]*message, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// queueName is the last part of a queue URL (for errors and logs).
func queueName(url string) string {
	return url[strings.LastIndexByte(url, '/')+1:]
}

// msTime reads an SQS epoch-milliseconds attribute (zero when absent or 0).
func msTime(attrs map[string]string, name types.MessageSystemAttributeName) time.Time {
	ms, err := strconv.ParseInt(attrs[string(name)], 10, 64)
	if err != nil || ms <= 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}
