package embedded

import (
	"context"
	"errors"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/vaxpass/vaxpass/shared/stage/stats"
	"github.com/vaxpass/vaxpass/shared/testkit/storetest"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// forgetStats makes db look like a database written before the counters existed.
func forgetStats(t *testing.T, db *DB) {
	t.Helper()
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{storeBucketStats, storeBucketStatsPeople} {
			if err := tx.DeleteBucket(name); err != nil {
				return err
			}
		}
		return tx.Bucket(storeBucketMeta).Delete(statsReadyKey)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func statsReady(t *testing.T, db *DB) bool {
	t.Helper()
	var ready bool
	if err := db.bolt.View(func(tx *bolt.Tx) error {
		ready = tx.Bucket(storeBucketMeta).Get(statsReadyKey) != nil
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return ready
}

// A database without counters gets them counted once from its records: by the first
// write, by the first read or by EnsureStats, whichever comes first; they survive a
// restart.
func TestStatsBackfill(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, s := openTestStore(t, dir)
	facs := storetest.StatsWorkload(t, s)
	before := storetest.CheckStats(t, s, facs)

	t.Run("by the first write", func(t *testing.T) {
		forgetStats(t, db)
		d := testDose("sf1", "after-upgrade")
		if _, err := s.PutNew(ctx, []vaxpass.Dose{d}); err != nil {
			t.Fatal(err)
		}
		if !statsReady(t, db) {
			t.Fatal("the write did not count the records")
		}
		after := storetest.CheckStats(t, s, facs)
		if p := after.Provinces["079"]; p.Doses["PENDING"] != before.Provinces["079"].Doses["PENDING"]+1 {
			t.Errorf("the new dose counts %d, want %d+1", p.Doses["PENDING"], before.Provinces["079"].Doses["PENDING"])
		}
	})
	t.Run("by the first read", func(t *testing.T) {
		forgetStats(t, db)
		storetest.CheckStats(t, s, facs)
		if !statsReady(t, db) {
			t.Fatal("the read did not record the count")
		}
	})
	t.Run("by EnsureStats", func(t *testing.T) {
		forgetStats(t, db)
		if err := s.EnsureStats(ctx); err != nil {
			t.Fatal(err)
		}
		if !statsReady(t, db) {
			t.Fatal("EnsureStats did not record the count")
		}
		storetest.CheckStats(t, s, facs)
	})
	t.Run("after a restart", func(t *testing.T) {
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		db, s = openTestStore(t, dir)
		t.Cleanup(func() { db.Close() })
		if !statsReady(t, db) {
			t.Fatal("the count is not recorded")
		}
		storetest.CheckStats(t, s, facs)
	})
}

// A transaction that fails after counting leaves the counters as they were.
func TestStatsRollBackWithTheWrite(t *testing.T) {
	ctx := context.Background()
	db, s := openTestStore(t, t.TempDir())
	defer db.Close()
	cert := func(person, uvci string) vaxpass.Certificate {
		return vaxpass.Certificate{UVCI: uvci, PersonID: person, Status: vaxpass.CertIssued, IssuedAt: storeTestNow, ExpiresAt: storeTestNow.AddDate(1, 0, 0), Version: 1}
	}
	a, b := cert("001090000001", "URN:UVCI:01:VN:A"), cert("079090000002", "URN:UVCI:01:VN:B")
	for _, c := range []vaxpass.Certificate{a, b} {
		if err := s.ReplaceCertificate(ctx, c, nil); err != nil {
			t.Fatal(err)
		}
	}
	// Superseding a revokes it (counted) and then fails on the taken UVCI.
	next := cert(a.PersonID, b.UVCI)
	if err := s.ReplaceCertificate(ctx, next, &a); !errors.Is(err, vaxpass.ErrConflict) {
		t.Fatalf("replacing with a taken UVCI: %v", err)
	}
	got := storetest.CheckStats(t, s, nil)
	if p := got.Provinces["001"]; p.Revoked != 0 || p.ExpiryMonths[stats.MonthOf(stats.DayOf(a.ExpiresAt))] != 1 {
		t.Errorf("province 001 after a failed replacement: %+v", p)
	}
}
