package queue

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	bolt "go.etcd.io/bbolt"
)

// SendOptions are a message's optional send parameters.
type SendOptions struct {
	// DedupID makes the send idempotent: a second send with the same id within the
	// queue's DedupWindow enqueues nothing and answers the first message's id.
	// 1..128 printable ASCII characters; empty means no deduplication.
	DedupID string
	// Delay keeps the message invisible for this long after sending (0..MaxDelay).
	Delay time.Duration
}

// Outgoing is one message of SendBatch.
type Outgoing struct {
	Body []byte
	SendOptions
}

// SendResult is the outcome of one send.
type SendResult struct {
	ID string
	// Duplicate: the dedup id was seen before; ID is the first message's id and nothing
	// was enqueued.
	Duplicate bool
}

// Message is one delivery of a received message.
type Message struct {
	ID              string
	Body            []byte
	ReceiptHandle   string // names this delivery only; see Delete
	ReceiveCount    int    // including this delivery
	SentAt          time.Time
	FirstReceivedAt time.Time
	DedupID         string
}

var errNothingVisible = errors.New("nothing visible")

// dedupTrimPerSend bounds the expired dedup ids a send removes, so sends stay cheap
// while expired ids still disappear faster than they are added.
const dedupTrimPerSend = 64

// Send enqueues one message in its own transaction (one fsync). For many messages use
// SendBatch.
func (q *Queue) Send(ctx context.Context, body []byte, opts SendOptions) (SendResult, error) {
	res, err := q.SendBatch(ctx, []Outgoing{{Body: body, SendOptions: opts}})
	if err != nil {
		return SendResult{}, err
	}
	return res[0], nil
}

// SendBatch enqueues messages in one transaction, in order. Nothing is sent when any
// message is invalid. Deduplication also applies between messages of the batch.
func (q *Queue) SendBatch(ctx context.Context, msgs []Outgoing) ([]SendResult, error) {
	for i, m := range msgs {
		if err := validateOutgoing(m); err != nil {
			return nil, fmt.Errorf("queue %q: send: message %d: %w", q.name, i, err)
		}
	}
	if len(msgs) == 0 {
		return nil, nil
	}
	results := make([]SendResult, len(msgs))
	err := q.update(ctx, "send", func(tx *bolt.Tx, b buckets) error {
		now := q.now().UnixNano()
		if err := trimDedup(b, now, dedupTrimPerSend); err != nil {
			return err
		}
		for i, m := range msgs {
			if m.DedupID != "" {
				if v := b.dedup.Get([]byte(m.DedupID)); v != nil {
					id, exp, err := decodeDedupValue(v)
					if err != nil {
						return err
					}
					if exp == 0 || exp > now {
						results[i] = SendResult{ID: formatID(id), Duplicate: true}
						continue
					}
				}
			}
			id, err := b.meta.NextSequence()
			if err != nil {
				return err
			}
			visibleAt := now + int64(m.Delay)
			if err := b.meta.Put(idKey(id), meta{visibleAt: visibleAt, sentAt: now}.encode()); err != nil {
				return err
			}
			if err := b.body.Put(idKey(id), encodeBody(m.DedupID, m.Body)); err != nil {
				return err
			}
			if err := b.vis.Put(visKey(visibleAt, id), []byte{kindPending}); err != nil {
				return err
			}
			if m.DedupID != "" {
				var exp int64
				if q.cfg.DedupWindow > 0 {
					exp = now + int64(q.cfg.DedupWindow)
					if err := b.dedupExp.Put(dedupExpKey(exp, m.DedupID), nil); err != nil {
						return err
					}
				}
				if err := b.dedup.Put([]byte(m.DedupID), dedupValue(id, exp)); err != nil {
					return err
				}
			}
			results[i] = SendResult{ID: formatID(id)}
		}
		q.notifyOnCommit(tx)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return results, nil
}

func validateOutgoing(m Outgoing) error {
	if len(m.Body) == 0 {
		return fmt.Errorf("%w: body: empty", ErrInvalidMessage)
	}
	if len(m.Body) > MaxBodyBytes {
		return fmt.Errorf("%w: body: %d bytes exceeds %d", ErrInvalidMessage, len(m.Body), MaxBodyBytes)
	}
	// SQS bodies are text and Lambda hands them over as a string.
	if !utf8.Valid(m.Body) {
		return fmt.Errorf("%w: body: not valid UTF-8", ErrInvalidMessage)
	}
	if len(m.DedupID) > MaxDedupIDLength {
		return fmt.Errorf("%w: dedup id: %d characters exceeds %d", ErrInvalidMessage, len(m.DedupID), MaxDedupIDLength)
	}
	for i := 0; i < len(m.DedupID); i++ {
		if c := m.DedupID[i]; c < '!' || c > '~' {
			return fmt.Errorf("%w: dedup id: character %d is not printable ASCII", ErrInvalidMessage, i+1)
		}
	}
	if m.Delay < 0 || m.Delay > MaxDelay {
		return fmt.Errorf("%w: delay: %v outside 0..%v", ErrInvalidMessage, m.Delay, MaxDelay)
	}
	return nil
}

// trimDedup forgets at most limit dedup ids whose window has passed.
func trimDedup(b buckets, now int64, limit int) error {
	c := b.dedupExp.Cursor()
	var expired [][]byte
	for k, _ := c.First(); k != nil && len(expired) < limit; k, _ = c.Next() {
		if len(k) < 8 {
			return fmt.Errorf("%w: dedup expiry key of %d bytes", ErrCorrupt, len(k))
		}
		if int64(be64(k)^1<<63) > now {
			break
		}
		expired = append(expired, k)
	}
	for _, k := range expired {
		exp := int64(be64(k) ^ 1<<63)
		dedupID := k[8:]
		// The id may have been reused after expiring, with a later expiry: keep that.
		if v := b.dedup.Get(dedupID); v != nil {
			_, cur, err := decodeDedupValue(v)
			if err != nil {
				return err
			}
			if cur == exp {
				if err := b.dedup.Delete(dedupID); err != nil {
					return err
				}
			}
		}
		if err := b.dedupExp.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

func be64(b []byte) uint64 {
	return uint64(b[0])<<56 | uint64(b[1])<<48 | uint64(b[2])<<40 | uint64(b[3])<<32 |
		uint64(b[4])<<24 | uint64(b[5])<<16 | uint64(b[6])<<8 | uint64(b[7])
}

// ReceiveBatch receives up to max visible messages, oldest visible first, in one
// transaction, and hides them for visibilityTimeout: a message not deleted by then
// (its receiver failed, crashed or is slow) is received again. A message already
// received MaxReceiveCount times moves to the dead-letter area instead. An empty
// result means nothing is visible now.
func (q *Queue) ReceiveBatch(ctx context.Context, max int, visibilityTimeout time.Duration) ([]Message, error) {
	_, msgs, err := q.DeleteAndReceive(ctx, nil, max, visibilityTimeout)
	return msgs, err
}

// DeleteAndReceive deletes the messages of receipts (as DeleteBatch) and receives the
// next batch (as ReceiveBatch) in one transaction: a consumer's steady state then costs
// one commit per batch instead of two.
func (q *Queue) DeleteAndReceive(ctx context.Context, receipts []string, max int, visibilityTimeout time.Duration) (deleteErrs []error, msgs []Message, err error) {
	if max < 1 || max > MaxReceiveBatch {
		return nil, nil, fmt.Errorf("queue %q: receive: max %d: %w: must be 1..%d", q.name, max, ErrInvalidArgument, MaxReceiveBatch)
	}
	if visibilityTimeout < 0 || visibilityTimeout > MaxVisibilityTimeout {
		return nil, nil, fmt.Errorf("queue %q: receive: visibility timeout %v: %w: must be 0..%v", q.name, visibilityTimeout, ErrInvalidArgument, MaxVisibilityTimeout)
	}
	deleteErrs = make([]error, len(receipts))
	err = q.update(ctx, "receive", func(tx *bolt.Tx, b buckets) error {
		deleted, err := q.deleteIn(b, receipts, deleteErrs)
		if err != nil {
			return err
		}
		var received bool
		msgs, received, err = q.receiveIn(b, max, visibilityTimeout)
		if err != nil {
			return err
		}
		if deleted == 0 && !received {
			return errNothingVisible // roll back: an idle poll costs no fsync
		}
		return nil
	})
	if errors.Is(err, errNothingVisible) {
		return deleteErrs, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	return deleteErrs, msgs, nil
}

// receiveIn is the receiving half of DeleteAndReceive; changed reports whether it
// wrote anything (a delivery or a move to the dead letters).
func (q *Queue) receiveIn(b buckets, max int, visibilityTimeout time.Duration) (out []Message, changed bool, err error) {
	now := q.now().UnixNano()
	nowKey := visKey(now, ^uint64(0)) // every key <= nowKey is visible
	// With a zero timeout a received message is visible again at once: never hand out
	// the same message twice in one batch.
	seen := make(map[uint64]bool)
	for len(out) < max {
		// Collect first, then mutate: bbolt cursors are not stable across writes.
		var cands [][]byte
		c := b.vis.Cursor()
		for k, _ := c.First(); k != nil && bytes.Compare(k, nowKey) <= 0 && len(cands) < max-len(out); k, _ = c.Next() {
			if _, id, err := splitVisKey(k); err != nil {
				return nil, false, err
			} else if !seen[id] {
				cands = append(cands, append([]byte(nil), k...))
			}
		}
		if len(cands) == 0 {
			break
		}
		for _, k := range cands {
			_, id, _ := splitVisKey(k)
			seen[id] = true
			m, delivered, err := q.deliver(b, k, id, now, visibilityTimeout)
			if err != nil {
				return nil, false, err
			}
			changed = true
			if delivered {
				out = append(out, m)
			}
		}
	}
	return out, changed, nil
}

// deliver hands out the message at visibility key k, or moves it to the dead-letter
// area when its receive count is used up.
func (q *Queue) deliver(b buckets, k []byte, id uint64, now int64, timeout time.Duration) (Message, bool, error) {
	ik := idKey(id)
	mv := b.meta.Get(ik)
	if mv == nil {
		return Message{}, false, fmt.Errorf("%w: message %s indexed but missing", ErrCorrupt, formatID(id))
	}
	m, err := decodeMeta(mv)
	if err != nil {
		return Message{}, false, err
	}
	dedupID, body, err := decodeBody(b.body.Get(ik))
	if err != nil {
		return Message{}, false, err
	}
	if err := b.vis.Delete(k); err != nil {
		return Message{}, false, err
	}
	if q.cfg.MaxReceiveCount > 0 && int(m.receiveCount) >= q.cfg.MaxReceiveCount {
		d := deadRecord{sentAt: m.sentAt, firstReceivedAt: m.firstReceivedAt, deadAt: now,
			receiveCount: m.receiveCount, dedupID: dedupID, body: body}
		if err := b.dead.Put(ik, d.encode()); err != nil {
			return Message{}, false, err
		}
		if err := b.meta.Delete(ik); err != nil {
			return Message{}, false, err
		}
		return Message{}, false, b.body.Delete(ik)
	}
	token, err := b.queue.NextSequence()
	if err != nil {
		return Message{}, false, err
	}
	m.receiveCount++
	m.token = token
	if m.firstReceivedAt == 0 {
		m.firstReceivedAt = now
	}
	m.visibleAt = now + int64(timeout)
	if err := b.meta.Put(ik, m.encode()); err != nil {
		return Message{}, false, err
	}
	if err := b.vis.Put(visKey(m.visibleAt, id), []byte{kindInFlight}); err != nil {
		return Message{}, false, err
	}
	return Message{
		ID:              formatID(id),
		Body:            body,
		ReceiptHandle:   q.formatReceipt(id, token),
		ReceiveCount:    int(m.receiveCount),
		SentAt:          unixTime(m.sentAt),
		FirstReceivedAt: unixTime(m.firstReceivedAt),
		DedupID:         dedupID,
	}, true, nil
}

// Delete removes a received message. Like SQS, the handle of the message's latest
// delivery deletes it even after its visibility timeout ran out; a handle of an earlier
// delivery (the message was received again since) gives ErrStaleReceipt and deletes
// nothing, as does a handle of a message already deleted.
func (q *Queue) Delete(ctx context.Context, receipt string) error {
	errs, err := q.DeleteBatch(ctx, []string{receipt})
	if err != nil {
		return err
	}
	return errs[0]
}

// DeleteBatch deletes messages in one transaction. errs[i] is nil when receipts[i]
// deleted its message, else why not (ErrBadReceipt, ErrStaleReceipt); err reports a
// failure of the whole batch.
func (q *Queue) DeleteBatch(ctx context.Context, receipts []string) (errs []error, err error) {
	errs = make([]error, len(receipts))
	if len(receipts) == 0 {
		return errs, nil
	}
	err = q.update(ctx, "delete", func(tx *bolt.Tx, b buckets) error {
		_, err := q.deleteIn(b, receipts, errs)
		return err
	})
	if err != nil {
		return nil, err
	}
	return errs, nil
}

// deleteIn deletes the messages of receipts, setting errs[i] for each handle that
// deletes nothing, and answers how many it deleted.
func (q *Queue) deleteIn(b buckets, receipts []string, errs []error) (int, error) {
	n := 0
	for i, r := range receipts {
		errs[i] = nil
		ik, m, err := q.current(b, r)
		if err != nil {
			errs[i] = fmt.Errorf("queue %q: delete: %w", q.name, err)
			continue
		}
		if err := b.vis.Delete(visKey(m.visibleAt, be64(ik))); err != nil {
			return 0, err
		}
		if err := b.meta.Delete(ik); err != nil {
			return 0, err
		}
		if err := b.body.Delete(ik); err != nil {
			return 0, err
		}
		n++
	}
	return n, nil
}

// current resolves a receipt handle to its message, if the handle names the latest
// delivery.
func (q *Queue) current(b buckets, receipt string) ([]byte, meta, error) {
	id, token, err := q.parseReceipt(receipt)
	if err != nil {
		return nil, meta{}, err
	}
	ik := idKey(id)
	mv := b.meta.Get(ik)
	if mv == nil {
		return nil, meta{}, fmt.Errorf("%w: message %s is gone", ErrStaleReceipt, formatID(id))
	}
	m, err := decodeMeta(mv)
	if err != nil {
		return nil, meta{}, err
	}
	if m.token != token {
		return nil, meta{}, fmt.Errorf("%w: message %s was received again since", ErrStaleReceipt, formatID(id))
	}
	return ik, m, nil
}

// ChangeVisibility makes a received message visible again after timeout from now
// (0: at once), e.g. to retry sooner or to keep a slow job hidden longer.
func (q *Queue) ChangeVisibility(ctx context.Context, receipt string, timeout time.Duration) error {
	if timeout < 0 || timeout > MaxVisibilityTimeout {
		return fmt.Errorf("queue %q: change visibility: timeout %v: %w: must be 0..%v", q.name, timeout, ErrInvalidArgument, MaxVisibilityTimeout)
	}
	return q.update(ctx, "change visibility", func(tx *bolt.Tx, b buckets) error {
		ik, m, err := q.current(b, receipt)
		if err != nil {
			return err // nothing written: the transaction rolls back
		}
		id := be64(ik)
		if err := b.vis.Delete(visKey(m.visibleAt, id)); err != nil {
			return err
		}
		m.visibleAt = q.now().UnixNano() + int64(timeout)
		if err := b.meta.Put(ik, m.encode()); err != nil {
			return err
		}
		if err := b.vis.Put(visKey(m.visibleAt, id), []byte{kindInFlight}); err != nil {
			return err
		}
		if timeout == 0 {
			q.notifyOnCommit(tx)
		}
		return nil
	})
}

// Release hands back received messages whose handling the storage refused (full disk,
// read-only file system): each is visible again after delay (0..MaxVisibilityTimeout),
// and its latest receive no longer counts towards MaxReceiveCount, so a message nothing
// is wrong with is never dead-lettered because the disk was full. errs[i] is nil when
// receipts[i] released its message, else why not (ErrBadReceipt, ErrStaleReceipt).
func (q *Queue) Release(ctx context.Context, receipts []string, delay time.Duration) (errs []error, err error) {
	_, errs, err = q.settle(ctx, nil, receipts, delay)
	return errs, err
}

// settle deletes the messages of deletes (as DeleteBatch) and releases those of
// releases (as Release) in one transaction: a pump's record of a batch whose failures
// the storage caused.
func (q *Queue) settle(ctx context.Context, deletes, releases []string, delay time.Duration) (deleteErrs, releaseErrs []error, err error) {
	if delay < 0 || delay > MaxVisibilityTimeout {
		return nil, nil, fmt.Errorf("queue %q: release: delay %v: %w: must be 0..%v", q.name, delay, ErrInvalidArgument, MaxVisibilityTimeout)
	}
	deleteErrs, releaseErrs = make([]error, len(deletes)), make([]error, len(releases))
	if len(deletes)+len(releases) == 0 {
		return deleteErrs, releaseErrs, nil
	}
	op := "release"
	if len(releases) == 0 {
		op = "delete"
	}
	err = q.update(ctx, op, func(tx *bolt.Tx, b buckets) error {
		if _, err := q.deleteIn(b, deletes, deleteErrs); err != nil {
			return err
		}
		visibleAt := q.now().UnixNano() + int64(delay)
		done := make(map[uint64]bool, len(releases)) // a receipt given twice gives back one receive
		for i, r := range releases {
			releaseErrs[i] = nil
			ik, m, err := q.current(b, r)
			if err != nil {
				releaseErrs[i] = fmt.Errorf("queue %q: release: %w", q.name, err)
				continue
			}
			id := be64(ik)
			if done[id] {
				continue
			}
			done[id] = true
			if err := b.vis.Delete(visKey(m.visibleAt, id)); err != nil {
				return err
			}
			if m.receiveCount > 0 {
				m.receiveCount--
			}
			m.visibleAt = visibleAt
			if err := b.meta.Put(ik, m.encode()); err != nil {
				return err
			}
			if err := b.vis.Put(visKey(visibleAt, id), []byte{kindInFlight}); err != nil {
				return err
			}
		}
		if delay == 0 {
			q.notifyOnCommit(tx)
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return deleteErrs, releaseErrs, nil
}
