// Package queue is the embedded backend's message queue: named, persistent queues in a
// bbolt file that behave like Amazon SQS standard queues (visibility timeout, receive
// count, redrive to a dead-letter area, delay, deduplication ids), so the same
// SQS-triggered Lambda handlers can be driven by one local process (see Pump).
//
// Layout: the root bucket RootBucket holds one bucket per queue, which holds
//
//	m  id -> meta (visible-at, sent-at, first-received-at, receipt token, receive count)
//	b  id -> dedup id + body (written once, never rewritten on receive)
//	v  visible-at|id -> kind: the visibility index, so a receive reads only the messages
//	   that are visible now and never walks over in-flight or delayed ones
//	d  dedup id -> id|expires-at
//	e  expires-at|dedup id: expiry index of d, trimmed a little on every send
//	x  id -> dead letter
//
// Message ids come from the m bucket's sequence (so they sort by send order); receipt
// tokens from the queue bucket's sequence, so every delivery has a handle of its own.
package queue

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// RootBucket is the top-level bbolt bucket that holds every queue. Other code sharing
// the file must not write to it.
const RootBucket = "vaxpass.queues"

// Limits, the same as SQS's where SQS has one, so that nothing works locally that the
// AWS backend would reject.
const (
	MaxBodyBytes         = 256 << 10        // SQS maximum message size
	MaxDelay             = 15 * time.Minute // SQS DelaySeconds maximum
	MaxVisibilityTimeout = 12 * time.Hour   // SQS maximum
	MaxDedupIDLength     = 128              // SQS MessageDeduplicationId maximum
	MaxNameLength        = 80               // SQS queue name maximum
	MaxReceiveBatch      = 10000            // Lambda's SQS batch size maximum
)

// Region and Account appear in the ARNs of the local backend.
const (
	Region  = "local"
	Account = "000000000000"
)

// Sentinel errors, one per failure class; returned errors wrap them with context.
var (
	ErrInvalidName     = errors.New("invalid queue name")
	ErrInvalidMessage  = errors.New("invalid message")
	ErrInvalidArgument = errors.New("invalid argument")
	ErrBadReceipt      = errors.New("malformed receipt handle")
	// ErrStaleReceipt: the handle does not name the message's current delivery (it was
	// received again since, redriven, or deleted).
	ErrStaleReceipt = errors.New("stale receipt handle")
	ErrNotFound     = errors.New("no such message")
	ErrCorrupt      = errors.New("corrupt queue data")
)

// Config is a queue's behaviour. It is not stored: every process opening the queue
// passes the same wiring.
type Config struct {
	// MaxReceiveCount is the redrive policy: a message received this many times without
	// being deleted moves to the dead-letter area when it would be received once more.
	// Zero keeps messages forever.
	MaxReceiveCount int
	// DedupWindow is how long a deduplication id is remembered. Zero remembers it
	// forever: the same id never enqueues twice.
	DedupWindow time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Queue is one named queue. It is safe for concurrent use, also by several Queue
// values and processes' successive runs over the same file (bbolt serialises writers).
type Queue struct {
	db   *bolt.DB
	name string
	cfg  Config
	now  func() time.Time
	tag  [4]byte // names the queue inside receipt handles

	mu   sync.Mutex
	wake chan struct{} // closed (and replaced) when messages may have become visible
}

// Open opens the named queue, creating it when it does not exist.
func Open(db *bolt.DB, name string, cfg Config) (*Queue, error) {
	if err := validateName(name); err != nil {
		return nil, err
	}
	if cfg.MaxReceiveCount < 0 {
		return nil, fmt.Errorf("queue %q: MaxReceiveCount %d: %w: must not be negative", name, cfg.MaxReceiveCount, ErrInvalidArgument)
	}
	if cfg.DedupWindow < 0 {
		return nil, fmt.Errorf("queue %q: DedupWindow %v: %w: must not be negative", name, cfg.DedupWindow, ErrInvalidArgument)
	}
	q := &Queue{db: db, name: name, cfg: cfg, now: cfg.Now, tag: nameTag(name), wake: make(chan struct{})}
	if q.now == nil {
		q.now = time.Now
	}
	err := db.Update(func(tx *bolt.Tx) error {
		root, err := tx.CreateBucketIfNotExists([]byte(RootBucket))
		if err != nil {
			return err
		}
		qb, err := root.CreateBucketIfNotExists([]byte(name))
		if err != nil {
			return err
		}
		for _, sub := range [][]byte{bMeta, bBody, bVis, bDedup, bDedupExp, bDead} {
			if _, err := qb.CreateBucketIfNotExists(sub); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("queue %q: open: %w", name, err)
	}
	return q, nil
}

// Names lists the queues stored in db, in byte order.
func Names(db *bolt.DB) ([]string, error) {
	var names []string
	err := db.View(func(tx *bolt.Tx) error {
		root := tx.Bucket([]byte(RootBucket))
		if root == nil {
			return nil
		}
		return root.ForEachBucket(func(k []byte) error {
			names = append(names, string(k))
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list queues: %w", err)
	}
	return names, nil
}

// Name is the queue's name.
func (q *Queue) Name() string { return q.name }

// ARN is the queue's ARN as the local backend shows it in events.
func (q *Queue) ARN() string { return "arn:aws:sqs:" + Region + ":" + Account + ":" + q.name }

func validateName(name string) error {
	if name == "" || len(name) > MaxNameLength {
		return fmt.Errorf("%w: %q: length must be 1..%d", ErrInvalidName, name, MaxNameLength)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("%w: %q: character %d must be a letter, digit, '-' or '_'", ErrInvalidName, name, i+1)
		}
	}
	return nil
}

// buckets are a queue's sub-buckets inside one transaction.
type buckets struct {
	queue, meta, body, vis, dedup, dedupExp, dead *bolt.Bucket
}

func (q *Queue) buckets(tx *bolt.Tx) (buckets, error) {
	root := tx.Bucket([]byte(RootBucket))
	if root == nil {
		return buckets{}, fmt.Errorf("%w: root bucket missing", ErrCorrupt)
	}
	qb := root.Bucket([]byte(q.name))
	if qb == nil {
		return buckets{}, fmt.Errorf("%w: queue bucket missing", ErrCorrupt)
	}
	b := buckets{queue: qb, meta: qb.Bucket(bMeta), body: qb.Bucket(bBody), vis: qb.Bucket(bVis),
		dedup: qb.Bucket(bDedup), dedupExp: qb.Bucket(bDedupExp), dead: qb.Bucket(bDead)}
	if b.meta == nil || b.body == nil || b.vis == nil || b.dedup == nil || b.dedupExp == nil || b.dead == nil {
		return buckets{}, fmt.Errorf("%w: sub-bucket missing", ErrCorrupt)
	}
	// Keys that only grow (message ids, visibility times, expiries): pages split full,
	// not half full (bbolt's default suits random inserts), so a commit writes fewer pages.
	for _, bk := range []*bolt.Bucket{b.meta, b.body, b.vis, b.dedupExp} {
		bk.FillPercent = 0.95
	}
	return b, nil
}

// update runs fn in a write transaction on the queue's buckets; errors gain the
// operation's name.
func (q *Queue) update(ctx context.Context, op string, fn func(tx *bolt.Tx, b buckets) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("queue %q: %s: %w", q.name, op, err)
	}
	err := q.db.Update(func(tx *bolt.Tx) error {
		b, err := q.buckets(tx)
		if err != nil {
			return err
		}
		return fn(tx, b)
	})
	if err != nil {
		return fmt.Errorf("queue %q: %s: %w", q.name, op, err)
	}
	return nil
}

func (q *Queue) view(ctx context.Context, op string, fn func(b buckets) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("queue %q: %s: %w", q.name, op, err)
	}
	err := q.db.View(func(tx *bolt.Tx) error {
		b, err := q.buckets(tx)
		if err != nil {
			return err
		}
		return fn(b)
	})
	if err != nil {
		return fmt.Errorf("queue %q: %s: %w", q.name, op, err)
	}
	return nil
}

// notifyOnCommit wakes waiting pumps once tx commits.
func (q *Queue) notifyOnCommit(tx *bolt.Tx) {
	tx.OnCommit(func() {
		q.mu.Lock()
		close(q.wake)
		q.wake = make(chan struct{})
		q.mu.Unlock()
	})
}

// woken returns a channel closed the next time messages may have become visible.
func (q *Queue) woken() <-chan struct{} {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.wake
}
