package embedded

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/vaxpass/vaxpass/shared/stage/audit"
	"github.com/vaxpass/vaxpass/shared/stage/revocation"
)

var (
	// revocationBucket: UCI hash (16 bytes) -> JSON of revocation.Entry.
	revocationBucket = []byte("revocations")
	// revocationMetaBucket: "count" -> number of entries (8 bytes, see storeCounter).
	revocationMetaBucket = []byte("revocations_meta")
)

const revocationCountKey = "count"

// RevocationList is the embedded revocation list (revocation.Store). Adding an entry and
// its audit entry is one transaction.
type RevocationList struct {
	db *DB
}

// OpenRevocationList opens the list in db, creating its buckets (and the audit trail's:
// entries are audited) on first use.
func OpenRevocationList(db *DB) (*RevocationList, error) {
	if err := db.bolt.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{revocationBucket, revocationMetaBucket, auditBucket} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("embedded: open revocation list: %w", classify(err))
	}
	return &RevocationList{db: db}, nil
}

// AddRevocation implements revocation.Store.
func (r *RevocationList) AddRevocation(ctx context.Context, e revocation.Entry, note *audit.Entry) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if e.UCI == (revocation.Hash{}) {
		return false, fmt.Errorf("embedded: add revocation: empty UCI hash")
	}
	v, err := json.Marshal(e)
	if err != nil {
		return false, fmt.Errorf("embedded: add revocation: %w", err)
	}
	added := false
	err = r.db.bolt.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(revocationBucket)
		if b.Get(e.UCI[:]) != nil {
			return nil
		}
		if note != nil {
			n := *note
			if err := auditAppendTx(tx, &n); err != nil {
				return err
			}
		}
		if err := b.Put(bytes.Clone(e.UCI[:]), v); err != nil {
			return err
		}
		added = true
		meta := tx.Bucket(revocationMetaBucket)
		return meta.Put([]byte(revocationCountKey), revocationCountBytes(storeReadCounter(meta, revocationCountKey)+1))
	})
	if err != nil {
		return false, fmt.Errorf("embedded: add revocation: %w", err)
	}
	return added, nil
}

// RevocationByUCI implements revocation.Store.
func (r *RevocationList) RevocationByUCI(ctx context.Context, h revocation.Hash) (revocation.Entry, bool, error) {
	var e revocation.Entry
	found := false
	err := r.view(ctx, func(tx *bolt.Tx) error {
		v := tx.Bucket(revocationBucket).Get(h[:])
		if v == nil {
			return nil
		}
		found = true
		return revocationDecode(v, &e)
	})
	if err != nil {
		return e, false, fmt.Errorf("embedded: revocation by UCI: %w", err)
	}
	return e, found, nil
}

// Revocations implements revocation.Store.
func (r *RevocationList) Revocations(ctx context.Context, after *revocation.Hash, limit int) ([]revocation.Entry, error) {
	if err := storeCheckLimit(limit); err != nil {
		return nil, fmt.Errorf("embedded: revocations: %w", err)
	}
	var out []revocation.Entry
	err := r.view(ctx, func(tx *bolt.Tx) error {
		c := tx.Bucket(revocationBucket).Cursor()
		k, v := c.First()
		if after != nil {
			if k, v = c.Seek(after[:]); bytes.Equal(k, after[:]) {
				k, v = c.Next()
			}
		}
		for ; k != nil && len(out) < limit; k, v = c.Next() {
			var e revocation.Entry
			if err := revocationDecode(v, &e); err != nil {
				return err
			}
			out = append(out, e)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("embedded: revocations: %w", err)
	}
	return out, nil
}

// RevocationCount implements revocation.Store.
func (r *RevocationList) RevocationCount(ctx context.Context) (int, error) {
	n := 0
	err := r.view(ctx, func(tx *bolt.Tx) error {
		n = int(storeReadCounter(tx.Bucket(revocationMetaBucket), revocationCountKey))
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("embedded: revocation count: %w", err)
	}
	return n, nil
}

func (r *RevocationList) view(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return r.db.bolt.View(fn)
}

func revocationDecode(v []byte, e *revocation.Entry) error {
	if err := json.Unmarshal(v, e); err != nil {
		return fmt.Errorf("%w: revocation entry: %w", storeErrCorrupt, err)
	}
	return nil
}

func revocationCountBytes(n int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(n)) }

// RevocationsAmong implements revocation.StoreAmong: which of hs are listed, in one read
// transaction.
func (r *RevocationList) RevocationsAmong(ctx context.Context, hs []revocation.Hash) (map[revocation.Hash]bool, error) {
	out := map[revocation.Hash]bool{}
	err := r.view(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(revocationBucket)
		for _, h := range hs {
			if b.Get(h[:]) != nil {
				out[h] = true
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("embedded: revocations among: %w", err)
	}
	return out, nil
}
