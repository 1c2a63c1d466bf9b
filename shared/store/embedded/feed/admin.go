package feed

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-lambda-go/events"
	bolt "go.etcd.io/bbolt"
)

// trimSlack is how many consumed events a checkpoint commit trims beyond twice the
// batch size, so a backlog of consumed events (say, after a consumer was retired)
// shrinks while the pump runs.
const trimSlack = 1000

// trim deletes at most limit events that every registered consumer has consumed and
// answers how many.
func trim(b buckets, limit int) (int, error) {
	upTo, ok, err := minCheckpoint(b)
	if err != nil || !ok {
		return 0, err
	}
	c := b.events.Cursor()
	var doomed [][]byte
	for k, _ := c.First(); k != nil && len(doomed) < limit; k, _ = c.Next() {
		seq, err := keySeq(k)
		if err != nil {
			return 0, err
		}
		if seq > upTo {
			break
		}
		doomed = append(doomed, k)
	}
	for _, k := range doomed {
		if err := b.events.Delete(k); err != nil {
			return 0, err
		}
	}
	return len(doomed), nil
}

// minCheckpoint is the slowest consumer's checkpoint; ok is false without consumers
// (then nothing has been consumed and nothing may be trimmed).
func minCheckpoint(b buckets) (upTo uint64, ok bool, err error) {
	err = b.checkpoints.ForEach(func(k, v []byte) error {
		s, err := decodeCursor(v)
		if err != nil {
			return err
		}
		if !ok || s.checkpoint < upTo {
			upTo, ok = s.checkpoint, true
		}
		return nil
	})
	return upTo, ok, err
}

// Trim deletes every event all registered consumers have consumed (pumps also do this
// as they go) and answers how many it deleted.
func (f *Feed) Trim(ctx context.Context) (int, error) {
	total := 0
	for {
		n := 0
		err := f.update(ctx, "trim", func(tx *bolt.Tx, b buckets) error {
			var err error
			n, err = trim(b, MaxBatchSize)
			return err
		})
		total += n
		if err != nil || n < MaxBatchSize {
			return total, err
		}
	}
}

// ConsumerStats is one consumer's position.
type ConsumerStats struct {
	Checkpoint uint64 // last sequence number consumed
	Lag        uint64 // events appended after the checkpoint
	FailingSeq uint64 // first failed record of the batch being retried; 0: none
	Attempts   int    // failed attempts of that batch so far
	Dead       int    // dead letters waiting
}

// Stats is a feed's state at one instant.
type Stats struct {
	LastSeq   uint64 // the last sequence number appended; 0 before any append
	Retained  int    // events not trimmed yet
	Consumers map[string]ConsumerStats
}

// Stats reports the feed's size and every consumer's position.
func (f *Feed) Stats(ctx context.Context) (Stats, error) {
	var st Stats
	err := f.view(ctx, "stats", func(b buckets) error {
		// Sequence numbers are dense (a rolled-back append leaves no gap), so a lag is a
		// subtraction.
		st = Stats{LastSeq: b.events.Sequence(), Retained: b.events.Stats().KeyN, Consumers: map[string]ConsumerStats{}}
		return b.checkpoints.ForEach(func(k, v []byte) error {
			s, err := decodeCursor(v)
			if err != nil {
				return err
			}
			cs := ConsumerStats{Checkpoint: s.checkpoint, Lag: st.LastSeq - s.checkpoint, FailingSeq: s.failingSeq, Attempts: int(s.attempts)}
			if db := b.dead.Bucket(k); db != nil {
				cs.Dead = db.Stats().KeyN
			}
			st.Consumers[string(k)] = cs
			return nil
		})
	})
	return st, err
}

// RemoveConsumer retires a consumer: its checkpoint and its dead letters are deleted,
// and it no longer holds back trimming.
func (f *Feed) RemoveConsumer(ctx context.Context, consumer string) error {
	return f.update(ctx, "remove consumer", func(tx *bolt.Tx, b buckets) error {
		if b.checkpoints.Get([]byte(consumer)) == nil {
			return fmt.Errorf("%w: consumer %q is not registered", ErrInvalidArgument, consumer)
		}
		if b.dead.Bucket([]byte(consumer)) != nil {
			if err := b.dead.DeleteBucket([]byte(consumer)); err != nil {
				return err
			}
		}
		return b.checkpoints.Delete([]byte(consumer))
	})
}

// DeadLetter is a record a consumer gave up on after its last retry.
type DeadLetter struct {
	Record   events.DynamoDBEventRecord
	FailedAt time.Time
	Reason   string // the handler's error, or ReasonItemFailure
}

func (f *Feed) deadBucket(b buckets, consumer string) (*bolt.Bucket, error) {
	db := b.dead.Bucket([]byte(consumer))
	if db == nil {
		return nil, fmt.Errorf("%w: consumer %q is not registered", ErrInvalidArgument, consumer)
	}
	return db, nil
}

// ListDead lists up to limit of consumer's dead letters with sequence numbers after
// after (0 for the first page), in stream order.
func (f *Feed) ListDead(ctx context.Context, consumer string, after uint64, limit int) ([]DeadLetter, error) {
	if limit < 1 || limit > MaxBatchSize {
		return nil, fmt.Errorf("feed %q: list dead: limit %d: %w: must be 1..%d", f.name, limit, ErrInvalidArgument, MaxBatchSize)
	}
	var out []DeadLetter
	err := f.view(ctx, "list dead", func(b buckets) error {
		db, err := f.deadBucket(b, consumer)
		if err != nil {
			return err
		}
		out, err = f.listDead(db, after, limit)
		return err
	})
	return out, err
}

func (f *Feed) listDead(db *bolt.Bucket, after uint64, limit int) ([]DeadLetter, error) {
	if after == ^uint64(0) {
		return nil, nil
	}
	var out []DeadLetter
	c := db.Cursor()
	for k, v := c.Seek(seqKey(after + 1)); k != nil && len(out) < limit; k, v = c.Next() {
		seq, err := keySeq(k)
		if err != nil {
			return nil, err
		}
		failedAt, reason, ev, err := decodeDead(v)
		if err != nil {
			return nil, fmt.Errorf("dead letter %d: %w", seq, err)
		}
		r, err := f.record(seq, ev)
		if err != nil {
			return nil, err
		}
		out = append(out, DeadLetter{Record: r, FailedAt: time.Unix(0, failedAt), Reason: reason})
	}
	return out, nil
}

// DeleteDead removes dead letters of consumer for good; sequence numbers that are not
// dead letters are skipped. It answers how many were removed.
func (f *Feed) DeleteDead(ctx context.Context, consumer string, seqs []uint64) (int, error) {
	n := 0
	err := f.update(ctx, "delete dead", func(tx *bolt.Tx, b buckets) error {
		n = 0
		db, err := f.deadBucket(b, consumer)
		if err != nil {
			return err
		}
		for _, s := range seqs {
			if db.Get(seqKey(s)) != nil {
				if err := db.Delete(seqKey(s)); err != nil {
					return err
				}
				n++
			}
		}
		return nil
	})
	return n, err
}

// ReplayResult says what a Replay came to.
type ReplayResult struct {
	Handled int // succeeded and removed from the dead letters
	Failed  int // failed again and kept
}

// Replay hands consumer's dead letters, in stream order and batches of batchSize, to
// h (normally the consumer's own handler, once the cause is fixed) and removes those
// that succeed. Only this consumer sees them again; the images are those of the
// original change, so handlers must tolerate stale images (re-read the record).
func (f *Feed) Replay(ctx context.Context, consumer string, h Handler, batchSize int) (ReplayResult, error) {
	var res ReplayResult
	if batchSize < 1 || batchSize > MaxBatchSize {
		return res, fmt.Errorf("feed %q: replay: batch size %d: %w: must be 1..%d", f.name, batchSize, ErrInvalidArgument, MaxBatchSize)
	}
	p := &Pump{f: f, consumer: consumer, h: h}
	var after uint64
	for {
		var batch []DeadLetter
		err := f.view(ctx, "replay", func(b buckets) error {
			db, err := f.deadBucket(b, consumer)
			if err != nil {
				return err
			}
			batch, err = f.listDead(db, after, batchSize)
			return err
		})
		if err != nil || len(batch) == 0 {
			return res, err
		}
		ev := events.DynamoDBEvent{Records: make([]events.DynamoDBEventRecord, len(batch))}
		seqs := make([]uint64, len(batch))
		for i, d := range batch {
			ev.Records[i] = d.Record
			seqs[i], _ = ParseSequenceNumber(d.Record.Change.SequenceNumber)
		}
		after = seqs[len(seqs)-1]
		failed, _ := p.invoke(ctx, ev, seqs)
		var done []uint64
		for _, s := range seqs {
			if failed[s] {
				res.Failed++
			} else {
				done = append(done, s)
			}
		}
		n, err := f.DeleteDead(context.WithoutCancel(ctx), consumer, done)
		res.Handled += n
		if err != nil {
			return res, err
		}
	}
}
