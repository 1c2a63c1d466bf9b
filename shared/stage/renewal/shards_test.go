package renewal_test

import (
	"cmp"
	"context"
	"hash/fnv"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/stage/renewal"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// shardedCerts lists the embedded store's expiry index as n partitions by a hash of the
// UVCI (as awsddb's by_expiry), and counts the listings of each kind.
type shardedCerts struct {
	renewal.Certs
	n int

	mu             sync.Mutex
	whole, sharded int
	shardsRead     map[int]bool
}

func (c *shardedCerts) ExpiryShards() int { return c.n }

func shardOf(uvci string, n int) int {
	h := fnv.New32a()
	h.Write([]byte(uvci))
	return int(h.Sum32() % uint32(n))
}

func (c *shardedCerts) CertificatesExpiringBetween(ctx context.Context, from, to time.Time, cursor string, limit int) ([]vaxpass.Certificate, string, error) {
	c.mu.Lock()
	c.whole++
	c.mu.Unlock()
	return c.Certs.CertificatesExpiringBetween(ctx, from, to, cursor, limit)
}

// CertificatesExpiringInShard pages by (expiry, UVCI) after the cursor's.
func (c *shardedCerts) CertificatesExpiringInShard(ctx context.Context, shard int, from, to time.Time, cursor string, limit int) ([]vaxpass.Certificate, string, error) {
	c.mu.Lock()
	c.sharded++
	c.shardsRead[shard] = true
	c.mu.Unlock()
	var all []vaxpass.Certificate
	for next := ""; ; {
		page, n, err := c.Certs.CertificatesExpiringBetween(ctx, from, to, next, 1000)
		if err != nil {
			return nil, "", err
		}
		for _, x := range page {
			if shardOf(x.UVCI, c.n) == shard && (cursor == "" || key(x) > cursor) {
				all = append(all, x)
			}
		}
		if next = n; n == "" {
			break
		}
	}
	slices.SortFunc(all, func(a, b vaxpass.Certificate) int { return cmp.Compare(key(a), key(b)) })
	if len(all) > limit {
		return all[:limit], key(all[limit-1]), nil
	}
	return all, "", nil
}

func key(c vaxpass.Certificate) string {
	return c.ExpiresAt.UTC().Format("2006-01-02T15:04:05.000000000Z") + "#" + c.UVCI
}

func TestRenewRunIsCutByExpiryShards(t *testing.T) {
	f := newFixture(t, 23)
	certs := &shardedCerts{Certs: f.store, n: 5, shardsRead: map[int]bool{}}
	svc := f.service(nil, certs)
	svc.Slices, svc.BatchSize = 10, 2 // 2 ranges of 5 partitions
	sum, err := svc.Run(context.Background(), "ops", 400*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Slices != 10 || sum.SlicesDone != 10 {
		t.Errorf("slices %d, done %d, want 10", sum.Slices, sum.SlicesDone)
	}
	if sum.Counts.Renewed != 23 || sum.Counts.Total() != 23 {
		t.Fatalf("counts %+v", sum.Counts)
	}
	f.checkRenewedOnce(t)
	f.checkAuditedOnce(t)
	// The whole index is read only to cut the run (its first expiry); every page is one
	// partition's, and every partition was read.
	if certs.whole != 1 || certs.sharded == 0 || len(certs.shardsRead) != 5 {
		t.Errorf("listings: %d whole, %d by partition over %d partitions", certs.whole, certs.sharded, len(certs.shardsRead))
	}
}

func TestRunShardsAndBounds(t *testing.T) {
	c1, c2 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	cutoff := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	run := renewal.Run{Cuts: []time.Time{c1, c2}, Cutoff: cutoff, Shards: 4}
	if run.SliceCount() != 12 {
		t.Fatalf("SliceCount %d, want 12", run.SliceCount())
	}
	for i, want := range []struct {
		shard    int
		from, to time.Time
	}{{0, time.Time{}, c1}, {3, time.Time{}, c1}, {0, c1, c2}, {2, c2, cutoff}, {3, c2, cutoff}} {
		idx := []int{0, 3, 4, 10, 11}[i]
		sh, ok := run.Shard(idx)
		from, to := run.Bounds(idx)
		if !ok || sh != want.shard || !from.Equal(want.from) || !to.Equal(want.to) {
			t.Errorf("slice %d: shard %d %v, range %v..%v, want %d %v..%v", idx, sh, ok, from, to, want.shard, want.from, want.to)
		}
	}
	// A run stored before partitions: one slice per range, read whole.
	old := renewal.Run{Cuts: []time.Time{c1}, Cutoff: cutoff}
	if _, ok := old.Shard(1); ok || old.SliceCount() != 2 {
		t.Errorf("run without shards: %d slices", old.SliceCount())
	}
	if from, to := old.Bounds(1); !from.Equal(c1) || !to.Equal(cutoff) {
		t.Errorf("run without shards: slice 1 %v..%v", from, to)
	}
}
