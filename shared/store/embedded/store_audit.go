package embedded

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/vaxpass/vaxpass/shared/stage/audit"
)

// auditBucket: time key of At (8 bytes, storeTimeKey) | sequence (8 bytes) -> JSON of
// audit.Entry. The key is the entry's ID (hex), so IDs sort by time and a cursor is an ID.
var auditBucket = []byte("audit")

// AuditLog is the embedded audit trail (audit.Appender and audit.Reader), in the same
// bbolt file as the store: other writers (revocations, renewal runs) append their entry in
// the same transaction as the change it records.
type AuditLog struct {
	db  *DB
	now func() time.Time
}

// OpenAuditLog opens the audit trail in db, creating its bucket on first use. now stamps
// entries appended without At (nil: time.Now).
func OpenAuditLog(db *DB, now func() time.Time) (*AuditLog, error) {
	if now == nil {
		now = time.Now
	}
	if err := db.bolt.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(auditBucket)
		return err
	}); err != nil {
		return nil, fmt.Errorf("embedded: open audit log: %w", classify(err))
	}
	return &AuditLog{db: db, now: now}, nil
}

// Append implements audit.Appender: it validates e, assigns its ID (and At when zero) and
// stores it.
func (a *AuditLog) Append(ctx context.Context, e audit.Entry) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if e.At.IsZero() {
		e.At = a.now()
	}
	if err := a.db.bolt.Update(func(tx *bolt.Tx) error { return auditAppendTx(tx, &e) }); err != nil {
		return fmt.Errorf("embedded: append audit entry: %w", err)
	}
	return nil
}

// auditAppendTx appends e inside tx, setting e.ID.
func auditAppendTx(tx *bolt.Tx, e *audit.Entry) error {
	e.At = e.At.UTC()
	if err := e.Validate(); err != nil {
		return err
	}
	b := tx.Bucket(auditBucket)
	if b == nil {
		return fmt.Errorf("%w: audit bucket missing (OpenAuditLog not called)", storeErrCorrupt)
	}
	seq, err := b.NextSequence()
	if err != nil {
		return err
	}
	key := binary.BigEndian.AppendUint64(storeTimeKey(e.At), seq)
	e.ID = hex.EncodeToString(key)
	v, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode audit entry: %w", err)
	}
	return b.Put(key, v)
}

// Entries implements audit.Reader.
func (a *AuditLog) Entries(ctx context.Context, q audit.Query) ([]audit.Entry, string, error) {
	if err := q.Validate(); err != nil {
		return nil, "", fmt.Errorf("embedded: audit entries: %w", err)
	}
	var after []byte
	if q.After != "" {
		var err error
		if after, err = hex.DecodeString(q.After); err != nil || len(after) != 16 {
			return nil, "", fmt.Errorf("embedded: audit entries: %w: after is not a cursor", audit.ErrInvalid)
		}
	}
	var start []byte
	if !q.From.IsZero() {
		start = storeTimeKey(q.From)
	}
	if after != nil && bytes.Compare(after, start) >= 0 {
		start = after
	}
	var end []byte
	if !q.To.IsZero() {
		end = storeTimeKey(q.To)
	}
	var out []audit.Entry
	next := ""
	err := a.db.bolt.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(auditBucket)
		if b == nil {
			return nil
		}
		c := b.Cursor()
		k, v := c.First()
		if start != nil {
			k, v = c.Seek(start)
			if after != nil && bytes.Equal(k, after) {
				k, v = c.Next()
			}
		}
		for n := 0; k != nil; k, v = c.Next() {
			if end != nil && bytes.Compare(k[:8], end) >= 0 {
				return nil
			}
			if n++; n%4096 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			var e audit.Entry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("%w: audit entry %x: %w", storeErrCorrupt, k, err)
			}
			if !q.Matches(&e) {
				continue
			}
			if len(out) == q.Limit {
				// One more match exists: the page has a successor.
				next = out[len(out)-1].ID
				return nil
			}
			out = append(out, e)
		}
		return nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("embedded: audit entries: %w", err)
	}
	return out, next, nil
}
