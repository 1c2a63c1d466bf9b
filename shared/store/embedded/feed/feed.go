// Package feed is the embedded backend's change feed: a DynamoDB-Streams-like log of
// the changes to a table kept in bbolt. The writer appends a change inside the very
// transaction that writes the record, so a write and its change event commit together
// (nothing is lost, nothing is announced that did not happen); a Pump then hands the
// changes to a DynamoDB-stream Lambda handler in order, with a persisted checkpoint per
// consumer, partial batch failures, a retry limit and a dead-letter area.
//
// Layout: the root bucket RootBucket holds one bucket per feed, which holds
//
//	ev  seq -> event: the log; sequence numbers come from the bucket's own sequence, so
//	    they are dense and increase in commit order (bbolt has one writer at a time)
//	cp  consumer -> checkpoint, failing sequence number, attempts
//	dl  consumer -> (seq -> dead letter)
//	md  "label" -> the stream label (creation time), part of the stream ARN
//
// Events every registered consumer has consumed are trimmed, so the log stays as long
// as the slowest consumer's lag.
package feed

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	bolt "go.etcd.io/bbolt"
)

// RootBucket is the top-level bbolt bucket that holds every feed. Other code sharing
// the file must not write to it.
const RootBucket = "vaxpass.feeds"

// Region and Account appear in the local backend's ARNs.
const (
	Region  = "local"
	Account = "000000000000"
)

// Limits.
const (
	MaxNameLength  = 255     // DynamoDB table name maximum
	MaxImageBytes  = 1 << 20 // JSON of one key set or image; a DynamoDB item is at most 400 KB
	MaxBatchSize   = 10000   // Lambda's stream batch size maximum
	maxConsumerLen = 80
)

// EventName is the kind of change, as in DynamoDB Streams.
type EventName string

// Event names.
const (
	Insert EventName = "INSERT"
	Modify EventName = "MODIFY"
	Remove EventName = "REMOVE"
)

// Sentinel errors, one per failure class; returned errors wrap them with context.
var (
	ErrInvalidName     = errors.New("invalid name")
	ErrInvalidChange   = errors.New("invalid change")
	ErrInvalidArgument = errors.New("invalid argument")
	ErrReadOnlyTx      = errors.New("append needs a writable transaction")
	ErrNotOpen         = errors.New("feed not opened in this file")
	// ErrConcurrentConsumer: another pump moved the same consumer's checkpoint.
	ErrConcurrentConsumer = errors.New("checkpoint moved by another pump of the same consumer")
	ErrCorrupt            = errors.New("corrupt feed data")
)

// Config describes a feed. It is not stored, except the stream label fixed at creation.
type Config struct {
	// Table is the table the feed records changes of, shown in the stream ARN;
	// empty means the feed's name.
	Table string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// ViewType is the stream's view type: events.DynamoDBStreamViewTypeNewAndOldImages
	// (the default when empty) or events.DynamoDBStreamViewTypeNewImage, where a MODIFY
	// carries its NewImage only and a REMOVE its Keys only.
	ViewType events.DynamoDBStreamViewType
}

// Feed is one change feed. It is safe for concurrent use.
type Feed struct {
	db       *bolt.DB
	name     []byte
	table    string
	now      func() time.Time
	arn      string
	viewType events.DynamoDBStreamViewType

	mu   sync.Mutex
	wake chan struct{} // closed (and replaced) when an append commits
}

var (
	bEvents      = []byte("ev")
	bCheckpoints = []byte("cp")
	bDead        = []byte("dl")
	bMeta        = []byte("md")
	kLabel       = []byte("label")
)

// Open opens the named feed, creating it when it does not exist.
func Open(db *bolt.DB, name string, cfg Config) (*Feed, error) {
	if err := validateName("feed name", name, MaxNameLength); err != nil {
		return nil, err
	}
	table := cfg.Table
	if table == "" {
		table = name
	}
	if err := validateName("table", table, MaxNameLength); err != nil {
		return nil, err
	}
	switch cfg.ViewType {
	case "":
		cfg.ViewType = events.DynamoDBStreamViewTypeNewAndOldImages
	case events.DynamoDBStreamViewTypeNewAndOldImages, events.DynamoDBStreamViewTypeNewImage:
	default:
		return nil, fmt.Errorf("feed %q: open: view type %q: %w", name, cfg.ViewType, ErrInvalidArgument)
	}
	f := &Feed{db: db, name: []byte(name), table: table, now: cfg.Now, viewType: cfg.ViewType, wake: make(chan struct{})}
	if f.now == nil {
		f.now = time.Now
	}
	var label string
	err := db.Update(func(tx *bolt.Tx) error {
		root, err := tx.CreateBucketIfNotExists([]byte(RootBucket))
		if err != nil {
			return err
		}
		fb, err := root.CreateBucketIfNotExists(f.name)
		if err != nil {
			return err
		}
		for _, sub := range [][]byte{bEvents, bCheckpoints, bDead, bMeta} {
			if _, err := fb.CreateBucketIfNotExists(sub); err != nil {
				return err
			}
		}
		md := fb.Bucket(bMeta)
		if v := md.Get(kLabel); v != nil {
			label = string(v)
			return nil
		}
		// DynamoDB's stream label is the stream's creation time.
		label = f.now().UTC().Format("2006-01-02T15:04:05.000")
		return md.Put(kLabel, []byte(label))
	})
	if err != nil {
		return nil, fmt.Errorf("feed %q: open: %w", name, err)
	}
	f.arn = "arn:aws:dynamodb:" + Region + ":" + Account + ":table/" + table + "/stream/" + label
	return f, nil
}

// Name is the feed's name.
func (f *Feed) Name() string { return string(f.name) }

// StreamARN is the ARN events of this feed carry as their EventSourceArn.
func (f *Feed) StreamARN() string { return f.arn }

func validateName(what, name string, maxLen int) error {
	if name == "" || len(name) > maxLen {
		return fmt.Errorf("%w: %s %q: length must be 1..%d", ErrInvalidName, what, name, maxLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("%w: %s %q: character %d must be a letter, digit, '-', '_' or '.'", ErrInvalidName, what, name, i+1)
		}
	}
	return nil
}

// buckets are a feed's sub-buckets inside one transaction.
type buckets struct {
	events, checkpoints, dead *bolt.Bucket
}

// appendFillPercent is the split point of buckets whose keys only grow.
const appendFillPercent = 0.95

func (f *Feed) buckets(tx *bolt.Tx) (buckets, error) {
	root := tx.Bucket([]byte(RootBucket))
	if root == nil {
		return buckets{}, ErrNotOpen
	}
	fb := root.Bucket(f.name)
	if fb == nil {
		return buckets{}, ErrNotOpen
	}
	b := buckets{events: fb.Bucket(bEvents), checkpoints: fb.Bucket(bCheckpoints), dead: fb.Bucket(bDead)}
	if b.events == nil || b.checkpoints == nil || b.dead == nil {
		return buckets{}, fmt.Errorf("%w: sub-bucket missing", ErrCorrupt)
	}
	// Events are appended in key order: pages split full, not half full (bbolt's
	// default suits random inserts), so a commit writes half the pages.
	b.events.FillPercent = appendFillPercent
	return b, nil
}

func (f *Feed) update(ctx context.Context, op string, fn func(tx *bolt.Tx, b buckets) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("feed %q: %s: %w", f.name, op, err)
	}
	err := f.db.Update(func(tx *bolt.Tx) error {
		b, err := f.buckets(tx)
		if err != nil {
			return err
		}
		return fn(tx, b)
	})
	if err != nil {
		return fmt.Errorf("feed %q: %s: %w", f.name, op, err)
	}
	return nil
}

func (f *Feed) view(ctx context.Context, op string, fn func(b buckets) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("feed %q: %s: %w", f.name, op, err)
	}
	err := f.db.View(func(tx *bolt.Tx) error {
		b, err := f.buckets(tx)
		if err != nil {
			return err
		}
		return fn(b)
	})
	if err != nil {
		return fmt.Errorf("feed %q: %s: %w", f.name, op, err)
	}
	return nil
}

func (f *Feed) woken() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.wake
}

func (f *Feed) notify() {
	f.mu.Lock()
	close(f.wake)
	f.wake = make(chan struct{})
	f.mu.Unlock()
}

func seqKey(seq uint64) []byte {
	k := make([]byte, 8)
	binary.BigEndian.PutUint64(k, seq)
	return k
}

func keySeq(k []byte) (uint64, error) {
	if len(k) != 8 {
		return 0, fmt.Errorf("%w: sequence key of %d bytes", ErrCorrupt, len(k))
	}
	return binary.BigEndian.Uint64(k), nil
}

// storedEvent is an event as kept in the log: the key set and images in DynamoDB
// JSON, as given. Encoded as
//
//	version(1) | event name(1) | at, unix ns(8) | 3 x (length(4) | JSON)
//
// rather than as one JSON document, so reading it back does not scan the images twice.
type storedEvent struct {
	Name     EventName
	At       int64
	Keys     json.RawMessage
	NewImage json.RawMessage
	OldImage json.RawMessage
}

const storedVersion = 1

var eventNameCodes = map[EventName]byte{Insert: 1, Modify: 2, Remove: 3}

func (s storedEvent) encode() []byte {
	b := make([]byte, 10, 10+12+len(s.Keys)+len(s.NewImage)+len(s.OldImage))
	b[0] = storedVersion
	b[1] = eventNameCodes[s.Name]
	binary.BigEndian.PutUint64(b[2:], uint64(s.At))
	for _, part := range []json.RawMessage{s.Keys, s.NewImage, s.OldImage} {
		b = binary.BigEndian.AppendUint32(b, uint32(len(part)))
		b = append(b, part...)
	}
	return b
}

// decodeStored copies out of v (bbolt memory is only valid inside the transaction).
func decodeStored(v []byte) (storedEvent, error) {
	var s storedEvent
	if len(v) < 10 || v[0] != storedVersion {
		return s, fmt.Errorf("%w: event of %d bytes or unknown version", ErrCorrupt, len(v))
	}
	for name, code := range eventNameCodes {
		if v[1] == code {
			s.Name = name
		}
	}
	if s.Name == "" {
		return s, fmt.Errorf("%w: event name code %d", ErrCorrupt, v[1])
	}
	s.At = int64(binary.BigEndian.Uint64(v[2:]))
	rest := v[10:]
	for _, dst := range []*json.RawMessage{&s.Keys, &s.NewImage, &s.OldImage} {
		if len(rest) < 4 {
			return s, fmt.Errorf("%w: event truncated", ErrCorrupt)
		}
		n := binary.BigEndian.Uint32(rest)
		rest = rest[4:]
		if uint64(n) > uint64(len(rest)) {
			return s, fmt.Errorf("%w: event part of %d bytes truncated", ErrCorrupt, n)
		}
		if n > 0 {
			*dst = append(json.RawMessage(nil), rest[:n]...)
		}
		rest = rest[n:]
	}
	if len(rest) != 0 {
		return s, fmt.Errorf("%w: %d bytes after the event", ErrCorrupt, len(rest))
	}
	return s, nil
}

// deadEntry is a dead letter: when and why it was parked, then the stored event.
//
//	failed at, unix ns(8) | reason length(4) | reason | stored event
func encodeDead(failedAt int64, reason string, event []byte) []byte {
	b := make([]byte, 12, 12+len(reason)+len(event))
	binary.BigEndian.PutUint64(b, uint64(failedAt))
	binary.BigEndian.PutUint32(b[8:], uint32(len(reason)))
	b = append(b, reason...)
	return append(b, event...)
}

func decodeDead(v []byte) (failedAt int64, reason string, ev storedEvent, err error) {
	if len(v) < 12 {
		return 0, "", ev, fmt.Errorf("%w: dead letter of %d bytes", ErrCorrupt, len(v))
	}
	n := binary.BigEndian.Uint32(v[8:])
	if uint64(n) > uint64(len(v)-12) {
		return 0, "", ev, fmt.Errorf("%w: dead letter reason truncated", ErrCorrupt)
	}
	ev, err = decodeStored(v[12+n:])
	return int64(binary.BigEndian.Uint64(v)), string(v[12 : 12+n]), ev, err
}
