package queue

import (
	"bytes"
	"context"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// DeadMessage is a message that exhausted its receives (Config.MaxReceiveCount).
type DeadMessage struct {
	ID              string
	Body            []byte
	ReceiveCount    int
	SentAt          time.Time
	FirstReceivedAt time.Time
	DeadAt          time.Time
	DedupID         string
}

// Counts are a queue's message counts at one instant, like SQS's approximate counts.
type Counts struct {
	Visible  int // can be received now
	InFlight int // received, not deleted, visibility timeout not over
	Delayed  int // sent with a delay (or redriven) that has not passed yet
	Dead     int // in the dead-letter area
}

// redriveChunk bounds one transaction of RedriveAll.
const redriveChunk = 1000

// Counts walks the visibility index (keys only), so it costs time in proportion to the
// number of live messages: an operations call, not one for every request.
func (q *Queue) Counts(ctx context.Context) (Counts, error) {
	var c Counts
	err := q.view(ctx, "counts", func(b buckets) error {
		c = Counts{}
		nowKey := visKey(q.now().UnixNano(), ^uint64(0))
		cur := b.vis.Cursor()
		for k, v := cur.First(); k != nil; k, v = cur.Next() {
			switch {
			case bytes.Compare(k, nowKey) <= 0:
				c.Visible++
			case len(v) == 1 && v[0] == kindInFlight:
				c.InFlight++
			default:
				c.Delayed++
			}
		}
		c.Dead = b.dead.Stats().KeyN
		return nil
	})
	return c, err
}

// ListDead lists up to limit dead letters with ids after afterID ("" for the first
// page), oldest first.
func (q *Queue) ListDead(ctx context.Context, afterID string, limit int) ([]DeadMessage, error) {
	if limit < 1 {
		return nil, fmt.Errorf("queue %q: list dead: limit %d: %w: must be positive", q.name, limit, ErrInvalidArgument)
	}
	var start []byte
	if afterID != "" {
		id, err := parseID(afterID)
		if err != nil {
			return nil, fmt.Errorf("queue %q: list dead: after: %w", q.name, err)
		}
		if id == ^uint64(0) {
			return nil, nil
		}
		start = idKey(id + 1)
	}
	var out []DeadMessage
	err := q.view(ctx, "list dead", func(b buckets) error {
		out = out[:0]
		c := b.dead.Cursor()
		k, v := c.First()
		if start != nil {
			k, v = c.Seek(start)
		}
		for ; k != nil && len(out) < limit; k, v = c.Next() {
			d, err := decodeDead(v)
			if err != nil {
				return err
			}
			out = append(out, DeadMessage{
				ID: formatID(be64(k)), Body: d.body, ReceiveCount: int(d.receiveCount),
				SentAt: unixTime(d.sentAt), FirstReceivedAt: unixTime(d.firstReceivedAt),
				DeadAt: unixTime(d.deadAt), DedupID: d.dedupID,
			})
		}
		return nil
	})
	return out, err
}

// Redrive moves the named dead letters back into the queue, visible at once, with
// their receive count reset (the SQS "start message move task" for this queue). Ids
// that are not dead letters give ErrNotFound and nothing moves.
func (q *Queue) Redrive(ctx context.Context, ids []string) (int, error) {
	keys := make([][]byte, len(ids))
	for i, s := range ids {
		id, err := parseID(s)
		if err != nil {
			return 0, fmt.Errorf("queue %q: redrive: id %d: %w", q.name, i, err)
		}
		keys[i] = idKey(id)
	}
	n := 0
	err := q.update(ctx, "redrive", func(tx *bolt.Tx, b buckets) error {
		n = 0
		for i, k := range keys {
			if b.dead.Get(k) == nil {
				return fmt.Errorf("id %d %s: %w", i, ids[i], ErrNotFound)
			}
			moved, err := q.revive(b, k)
			if err != nil {
				return err
			}
			if moved {
				n++
			}
		}
		q.notifyOnCommit(tx)
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// RedriveAll moves every dead letter back into the queue, in transactions of at most
// 1000 messages, and answers how many moved.
func (q *Queue) RedriveAll(ctx context.Context) (int, error) {
	total := 0
	for {
		n := 0
		err := q.update(ctx, "redrive all", func(tx *bolt.Tx, b buckets) error {
			n = 0
			var keys [][]byte
			c := b.dead.Cursor()
			for k, _ := c.First(); k != nil && len(keys) < redriveChunk; k, _ = c.Next() {
				keys = append(keys, append([]byte(nil), k...))
			}
			for _, k := range keys {
				if _, err := q.revive(b, k); err != nil {
					return err
				}
				n++
			}
			q.notifyOnCommit(tx)
			return nil
		})
		total += n
		if err != nil {
			return total, err
		}
		if n < redriveChunk {
			return total, nil
		}
	}
}

// revive moves the dead letter at k back into the live buckets.
func (q *Queue) revive(b buckets, k []byte) (bool, error) {
	v := b.dead.Get(k)
	if v == nil {
		return false, nil // named twice in one call
	}
	d, err := decodeDead(v)
	if err != nil {
		return false, err
	}
	now := q.now().UnixNano()
	// Token 0 matches no receipt handle: handles from before death are stale.
	m := meta{visibleAt: now, sentAt: d.sentAt, firstReceivedAt: d.firstReceivedAt}
	if err := b.meta.Put(k, m.encode()); err != nil {
		return false, err
	}
	if err := b.body.Put(k, encodeBody(d.dedupID, d.body)); err != nil {
		return false, err
	}
	if err := b.vis.Put(visKey(now, be64(k)), []byte{kindPending}); err != nil {
		return false, err
	}
	return true, b.dead.Delete(k)
}

// DeleteDead removes the named dead letters for good; ids that are not dead letters are
// skipped. It answers how many were removed.
func (q *Queue) DeleteDead(ctx context.Context, ids []string) (int, error) {
	keys := make([][]byte, len(ids))
	for i, s := range ids {
		id, err := parseID(s)
		if err != nil {
			return 0, fmt.Errorf("queue %q: delete dead: id %d: %w", q.name, i, err)
		}
		keys[i] = idKey(id)
	}
	n := 0
	err := q.update(ctx, "delete dead", func(tx *bolt.Tx, b buckets) error {
		n = 0
		for _, k := range keys {
			if b.dead.Get(k) != nil {
				if err := b.dead.Delete(k); err != nil {
					return err
				}
				n++
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}
