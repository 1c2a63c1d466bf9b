package embedded

import (
	"context"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/vaxpass/vaxpass/shared/stage/stats"
)

// StatCommunes implements stats.CommuneCounters: the commune rows of one province, read
// by a seek to their keys (kind stats.InCommune, then "province/"), which sort together.
func (s *Store) StatCommunes(ctx context.Context, province string) (*stats.Tally, error) {
	err := s.EnsureStats(ctx)
	t := stats.NewTally()
	if err == nil {
		err = s.storeView(ctx, func(tx *bolt.Tx) error {
			prefix := append([]byte{byte(stats.InCommune)}, stats.CommuneScopeID(province, "")...)
			c := tx.Bucket(storeBucketStats).Cursor()
			for k, v := c.Seek(prefix); k != nil && len(k) >= len(prefix) && string(k[:len(prefix)]) == string(prefix); k, v = c.Next() {
				key, n, err := statsDecode(k, v)
				if err != nil {
					return err
				}
				if err := t.Add(key, n, "", ""); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err != nil {
		return nil, fmt.Errorf("embedded: commune counters of province %q: %w", province, err)
	}
	return t, nil
}

var _ stats.CommuneCounters = (*Store)(nil)
