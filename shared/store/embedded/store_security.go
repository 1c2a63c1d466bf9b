package embedded

import (
	"context"
	"encoding/binary"
	"fmt"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// securityBucket counts security events: key day ("2006-01-02") + "|" + kind, and
// "total|" + kind -> uint64 big-endian. Kinds are a short fixed list (security.Kinds), so
// the bucket grows by at most that many keys a day.
var securityBucket = []byte("security_events")

const securityTotal = "total"

// SecurityEvents counts security events (security.Store) and reads them back
// (stats.SecurityCounters), in the same bbolt file as the store.
type SecurityEvents struct {
	db *DB
}

// OpenSecurityEvents opens the counts in db, creating their bucket on first use.
func OpenSecurityEvents(db *DB) (*SecurityEvents, error) {
	if err := db.bolt.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(securityBucket)
		return err
	}); err != nil {
		return nil, fmt.Errorf("embedded: open security events: %w", classify(err))
	}
	return &SecurityEvents{db: db}, nil
}

// AddSecurityEvents implements security.Store.
func (s *SecurityEvents) AddSecurityEvents(ctx context.Context, day string, counts map[string]int64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.db.bolt.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(securityBucket)
		for kind, n := range counts {
			for _, k := range []string{day + "|" + kind, securityTotal + "|" + kind} {
				var v uint64
				if old := b.Get([]byte(k)); len(old) == 8 {
					v = binary.BigEndian.Uint64(old)
				}
				if err := b.Put([]byte(k), binary.BigEndian.AppendUint64(nil, v+uint64(n))); err != nil {
					return err
				}
			}
		}
		return nil
	}); err != nil {
		return fmt.Errorf("embedded: count security events: %w", err)
	}
	return nil
}

// SecurityCounts implements stats.SecurityCounters: the counts by kind of day and in all.
func (s *SecurityEvents) SecurityCounts(ctx context.Context, day string) (today, total map[string]int64, err error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	today, total = map[string]int64{}, map[string]int64{}
	err = s.db.bolt.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(securityBucket).Cursor()
		for _, p := range []struct {
			prefix string
			into   map[string]int64
		}{{day + "|", today}, {securityTotal + "|", total}} {
			for k, v := c.Seek([]byte(p.prefix)); k != nil && strings.HasPrefix(string(k), p.prefix); k, v = c.Next() {
				if len(v) == 8 {
					p.into[strings.TrimPrefix(string(k), p.prefix)] = int64(binary.BigEndian.Uint64(v))
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("embedded: read security events: %w", err)
	}
	return today, total, nil
}
