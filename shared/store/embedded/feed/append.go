package feed

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"
	bolt "go.etcd.io/bbolt"
)

// Change is one change of a record, with the images as DynamoDB attribute values.
// Like a NEW_AND_OLD_IMAGES stream: INSERT has a NewImage only, MODIFY both, REMOVE an
// OldImage only; Keys is always set.
type Change struct {
	EventName EventName
	Keys      map[string]events.DynamoDBAttributeValue
	NewImage  map[string]events.DynamoDBAttributeValue
	OldImage  map[string]events.DynamoDBAttributeValue
}

// RawChange is a Change whose key set and images are already DynamoDB JSON objects
// ({"source_id":{"S":"a1"}}); empty (or null) means absent.
type RawChange struct {
	EventName EventName
	Keys      json.RawMessage
	NewImage  json.RawMessage
	OldImage  json.RawMessage
}

// Append records c in tx, the writable transaction that writes the record itself, and
// answers its sequence number. Pumps learn of it when tx commits; if tx rolls back,
// the event never existed.
func (f *Feed) Append(tx *bolt.Tx, c Change) (uint64, error) {
	raw := RawChange{EventName: c.EventName}
	var err error
	if raw.Keys, err = marshalImage("Keys", c.Keys); err != nil {
		return 0, fmt.Errorf("feed %q: append: %w", f.name, err)
	}
	if raw.NewImage, err = marshalImage("NewImage", c.NewImage); err != nil {
		return 0, fmt.Errorf("feed %q: append: %w", f.name, err)
	}
	if raw.OldImage, err = marshalImage("OldImage", c.OldImage); err != nil {
		return 0, fmt.Errorf("feed %q: append: %w", f.name, err)
	}
	return f.append(tx, raw, false)
}

// AppendRaw is Append for images already in DynamoDB JSON. They are checked (they must
// decode as attribute maps) so that a bad image fails the writer, not the consumers.
func (f *Feed) AppendRaw(tx *bolt.Tx, c RawChange) (uint64, error) {
	return f.append(tx, c, true)
}

func (f *Feed) append(tx *bolt.Tx, c RawChange, check bool) (uint64, error) {
	if tx == nil || !tx.Writable() {
		return 0, fmt.Errorf("feed %q: append: %w", f.name, ErrReadOnlyTx)
	}
	ev := storedEvent{Name: c.EventName}
	var err error
	if ev.Keys, err = normaliseImage("Keys", c.Keys, check); err == nil {
		if ev.NewImage, err = normaliseImage("NewImage", c.NewImage, check); err == nil {
			ev.OldImage, err = normaliseImage("OldImage", c.OldImage, check)
		}
	}
	if err == nil {
		err = checkShape(ev, f.viewType)
	}
	if err != nil {
		return 0, fmt.Errorf("feed %q: append: %w", f.name, err)
	}
	b, err := f.buckets(tx)
	if err != nil {
		return 0, fmt.Errorf("feed %q: append: %w", f.name, err)
	}
	seq, err := b.events.NextSequence()
	if err != nil {
		return 0, fmt.Errorf("feed %q: append: %w", f.name, err)
	}
	ev.At = f.now().UnixNano()
	if err := b.events.Put(seqKey(seq), ev.encode()); err != nil {
		return 0, fmt.Errorf("feed %q: append: %w", f.name, err)
	}
	tx.OnCommit(f.notify)
	return seq, nil
}

// marshalImage encodes an attribute map; a zero DynamoDBAttributeValue makes the
// library panic, which becomes an error naming the field.
func marshalImage(field string, m map[string]events.DynamoDBAttributeValue) (raw json.RawMessage, err error) {
	if m == nil {
		return nil, nil
	}
	defer func() {
		if r := recover(); r != nil {
			raw, err = nil, fmt.Errorf("%w: %s: attribute value without a type", ErrInvalidChange, field)
		}
	}()
	raw, err = json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrInvalidChange, field, err)
	}
	return raw, nil
}

// normaliseImage checks an image's size and, when asked, that it decodes as an
// attribute map; it answers nil for an absent image and compact JSON otherwise.
func normaliseImage(field string, raw json.RawMessage, check bool) (json.RawMessage, error) {
	if len(raw) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return nil, nil
	}
	if len(raw) > MaxImageBytes {
		return nil, fmt.Errorf("%w: %s: %d bytes of JSON exceeds %d", ErrInvalidChange, field, len(raw), MaxImageBytes)
	}
	if !check { // from json.Marshal: valid and compact already
		if string(raw) == "{}" {
			return nil, nil
		}
		return raw, nil
	}
	var m map[string]events.DynamoDBAttributeValue
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("%w: %s: not a DynamoDB attribute map: %v", ErrInvalidChange, field, err)
	}
	if m == nil {
		return nil, nil
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrInvalidChange, field, err)
	}
	if buf.String() == "{}" {
		return nil, nil
	}
	return buf.Bytes(), nil
}

// checkShape enforces which images each kind of change carries.
func checkShape(ev storedEvent, view events.DynamoDBStreamViewType) error {
	if ev.Keys == nil {
		return fmt.Errorf("%w: Keys: required", ErrInvalidChange)
	}
	hasNew, hasOld := ev.NewImage != nil, ev.OldImage != nil
	if view == events.DynamoDBStreamViewTypeNewImage {
		if hasOld {
			return fmt.Errorf("%w: OldImage: must be empty in a NEW_IMAGE stream", ErrInvalidChange)
		}
		if hasNew == (ev.Name == Remove) {
			return fmt.Errorf("%w: NewImage: required for INSERT and MODIFY, empty for REMOVE", ErrInvalidChange)
		}
		if ev.Name != Insert && ev.Name != Modify && ev.Name != Remove {
			return fmt.Errorf("%w: EventName: %q is not INSERT, MODIFY or REMOVE", ErrInvalidChange, ev.Name)
		}
		return nil
	}
	switch ev.Name {
	case Insert:
		if !hasNew {
			return fmt.Errorf("%w: NewImage: required for INSERT", ErrInvalidChange)
		}
		if hasOld {
			return fmt.Errorf("%w: OldImage: must be empty for INSERT", ErrInvalidChange)
		}
	case Modify:
		if !hasNew {
			return fmt.Errorf("%w: NewImage: required for MODIFY", ErrInvalidChange)
		}
		if !hasOld {
			return fmt.Errorf("%w: OldImage: required for MODIFY", ErrInvalidChange)
		}
	case Remove:
		if hasNew {
			return fmt.Errorf("%w: NewImage: must be empty for REMOVE", ErrInvalidChange)
		}
		if !hasOld {
			return fmt.Errorf("%w: OldImage: required for REMOVE", ErrInvalidChange)
		}
	default:
		return fmt.Errorf("%w: EventName: %q is not INSERT, MODIFY or REMOVE", ErrInvalidChange, ev.Name)
	}
	return nil
}

// SequenceNumber renders seq as the event's SequenceNumber: zero-padded decimal, so
// that string order is stream order (DynamoDB's are decimal strings of 21+ digits).
func SequenceNumber(seq uint64) string { return fmt.Sprintf("%021d", seq) }

// ParseSequenceNumber reads a SequenceNumber (a BatchItemFailures ItemIdentifier).
func ParseSequenceNumber(s string) (uint64, error) {
	if s == "" || len(s) > 40 {
		return 0, fmt.Errorf("%w: sequence number %q: must be 1..40 digits", ErrInvalidArgument, s)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("%w: sequence number %q: character %d is not a digit", ErrInvalidArgument, s, i+1)
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: sequence number %q: out of range", ErrInvalidArgument, s)
	}
	return n, nil
}

// record converts a stored event into the record Lambda would deliver.
func (f *Feed) record(seq uint64, ev storedEvent) (events.DynamoDBEventRecord, error) {
	var c events.DynamoDBStreamRecord
	for _, img := range []struct {
		raw json.RawMessage
		dst *map[string]events.DynamoDBAttributeValue
	}{{ev.Keys, &c.Keys}, {ev.NewImage, &c.NewImage}, {ev.OldImage, &c.OldImage}} {
		if img.raw == nil {
			continue
		}
		if err := json.Unmarshal(img.raw, img.dst); err != nil {
			return events.DynamoDBEventRecord{}, fmt.Errorf("%w: event %d: %v", ErrCorrupt, seq, err)
		}
	}
	c.ApproximateCreationDateTime = events.SecondsEpochTime{Time: time.Unix(0, ev.At)}
	c.SequenceNumber = SequenceNumber(seq)
	c.SizeBytes = int64(len(ev.Keys) + len(ev.NewImage) + len(ev.OldImage))
	c.StreamViewType = string(f.viewType)
	id := sha256.Sum256([]byte(f.arn + "/" + c.SequenceNumber))
	return events.DynamoDBEventRecord{
		AWSRegion:      Region,
		Change:         c,
		EventID:        hex.EncodeToString(id[:16]),
		EventName:      string(ev.Name),
		EventSource:    "aws:dynamodb",
		EventVersion:   "1.1",
		EventSourceArn: f.arn,
	}, nil
}

// Read answers up to limit retained events with sequence numbers after after, in
// order, as Lambda would deliver them (like GetRecords from AFTER_SEQUENCE_NUMBER).
func (f *Feed) Read(ctx context.Context, after uint64, limit int) ([]events.DynamoDBEventRecord, error) {
	if limit < 1 || limit > MaxBatchSize {
		return nil, fmt.Errorf("feed %q: read: limit %d: %w: must be 1..%d", f.name, limit, ErrInvalidArgument, MaxBatchSize)
	}
	var out []events.DynamoDBEventRecord
	err := f.view(ctx, "read", func(b buckets) error {
		var err error
		out, err = f.readAfter(b, after, limit)
		return err
	})
	return out, err
}

// readFiltered is readAfter keeping only the records filter keeps (all when nil). scanned
// is the last sequence number looked at: the records up to it that are not in out were
// dropped.
func (f *Feed) readFiltered(b buckets, after uint64, limit int, filter *Filter) (out []events.DynamoDBEventRecord, scanned uint64, err error) {
	if filter == nil {
		out, err = f.readAfter(b, after, limit)
		if len(out) > 0 {
			scanned, _ = ParseSequenceNumber(out[len(out)-1].Change.SequenceNumber)
		}
		return out, scanned, err
	}
	if after == ^uint64(0) {
		return nil, after, nil
	}
	// The attribute name as a JSON object key: inside a string value (the dose's doc)
	// its quotes are escaped, so a stored image without this substring cannot hold the
	// attribute, and the images with it are checked exactly after decoding.
	key := []byte(strconv.Quote(filter.Attr))
	c := b.events.Cursor()
	scanned = after
	budget := limit * filterScanFactor
	for k, v := c.Seek(seqKey(after + 1)); k != nil && len(out) < limit && budget > 0; k, v = c.Next() {
		budget--
		seq, err := keySeq(k)
		if err != nil {
			return nil, 0, err
		}
		scanned = seq
		ev, err := decodeStored(v)
		if err != nil {
			return nil, 0, err
		}
		if !bytes.Contains(ev.NewImage, key) {
			continue
		}
		r, err := f.record(seq, ev)
		if err != nil {
			return nil, 0, err
		}
		if a, ok := r.Change.NewImage[filter.Attr]; ok && a.DataType() == events.DataTypeString && a.String() == filter.S {
			out = append(out, r)
		}
	}
	return out, scanned, nil
}

func (f *Feed) readAfter(b buckets, after uint64, limit int) ([]events.DynamoDBEventRecord, error) {
	if after == ^uint64(0) {
		return nil, nil
	}
	var out []events.DynamoDBEventRecord
	c := b.events.Cursor()
	for k, v := c.Seek(seqKey(after + 1)); k != nil && len(out) < limit; k, v = c.Next() {
		seq, err := keySeq(k)
		if err != nil {
			return nil, err
		}
		ev, err := decodeStored(v)
		if err != nil {
			return nil, err
		}
		r, err := f.record(seq, ev)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}
