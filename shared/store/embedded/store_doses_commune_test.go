package embedded

import (
	"bytes"
	"fmt"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/stage/matching"
	"github.com/vaxpass/vaxpass/shared/store/doseitem"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// checkCommuneIndex compares the commune index with the keys recomputed from the doses,
// and checks the backfill is marked done.
func checkCommuneIndex(t *testing.T, db *DB) (entries int) {
	t.Helper()
	var got, want [][]byte
	err := db.bolt.View(func(tx *bolt.Tx) error {
		if tx.Bucket(storeBucketMeta).Get(communeReadyKey) == nil {
			t.Error("commune index not marked ready")
		}
		if tx.Bucket(storeBucketMeta).Get(communeCursorKey) != nil {
			t.Error("commune backfill cursor left behind")
		}
		if err := tx.Bucket(storeBucketDoseCommune).ForEach(func(k, _ []byte) error {
			got = append(got, bytes.Clone(k))
			return nil
		}); err != nil {
			return err
		}
		return tx.Bucket(storeBucketDoses).ForEach(func(_, v []byte) error {
			var d vaxpass.Dose
			if err := doseitem.FromDoc(string(v), &d); err != nil {
				return err
			}
			if k := storeCommuneKey(d.FacilityID, d.SourceID, d.CommuneCode, d.Match.Status); k != nil {
				want = append(want, k)
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(want, bytes.Compare)
	if !slices.EqualFunc(got, want, bytes.Equal) {
		t.Errorf("commune index holds %q, want %q", got, want)
	}
	return len(got)
}

// communeTestDoses stores n doses over two facilities, every third without a commune
// code, a few matched.
func communeTestDoses(t *testing.T, s *Store, n int) {
	t.Helper()
	ctx := t.Context()
	var ds []vaxpass.Dose
	for i := range n {
		d := testDose([]string{"f1", "f2"}[i%2], string(rune('a'+i%26))+string(rune('a'+i/26)))
		if i%3 != 0 {
			d.CommuneCode = []string{"00001", "00002"}[i%2]
		}
		ds = append(ds, d)
	}
	if _, err := s.PutNew(ctx, ds); err != nil {
		t.Fatal(err)
	}
	for _, d := range ds[:n/2] {
		matching.Apply(&d, match.Result{Status: match.Mismatch, Reasons: []string{match.ReasonDOB}}, storeTestNow)
		if err := s.SaveMatch(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
}

// Every kind of dose write keeps the commune index equal to its recomputation.
func TestCommuneIndexFollowsWrites(t *testing.T) {
	ctx := t.Context()
	db, s := openTestStore(t, t.TempDir())
	defer db.Close()
	communeTestDoses(t, s, 30)
	d, err := s.GetDose(ctx, vaxpass.DoseKey{FacilityID: "f2", SourceID: "ba"})
	if err != nil {
		t.Fatal(err)
	}
	d.CommuneCode = "00003" // a correction
	if err := s.UpdateDose(ctx, d); err != nil {
		t.Fatal(err)
	}
	v, err := s.GetDose(ctx, vaxpass.DoseKey{FacilityID: "f1", SourceID: "ca"})
	if err != nil {
		t.Fatal(err)
	}
	matching.Apply(&v, match.Result{Status: match.Verified, Reasons: []string{}}, storeTestNow)
	v.PersonID = "079185001234"
	errs, err := s.SaveMatchBatch(ctx, []vaxpass.Dose{v})
	if err != nil || errs[0] != nil {
		t.Fatal(err, errs)
	}
	v.Version++
	if err := s.MarkSigned(ctx, []vaxpass.Dose{v}, storeTestNow.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if n := checkCommuneIndex(t, db); n != 20 {
		t.Errorf("%d commune index entries, want 20", n)
	}
	got, err := s.ListByCommune(ctx, "00003", match.Mismatch, vaxpass.DoseKey{}, 10)
	if err != nil || len(got) != 1 || got[0].Key() != d.Key() {
		t.Errorf("ListByCommune 00003 = %v, %v", got, err)
	}
}

// A database written before the commune index existed gets it built when the store
// opens, in chunks; a backfill cut short resumes after the last chunk it committed.
func TestCommuneIndexBackfill(t *testing.T) {
	defer func(n int) { communeBackfillChunk = n }(communeBackfillChunk)
	communeBackfillChunk = 4
	dir := t.TempDir()
	db, s := openTestStore(t, dir)
	communeTestDoses(t, s, 30)
	want := checkCommuneIndex(t, db)

	// As an older version left it: no index, no marker.
	forget := func(keep func(k []byte) bool, cursor []byte) {
		t.Helper()
		err := db.bolt.Update(func(tx *bolt.Tx) error {
			b := tx.Bucket(storeBucketDoseCommune)
			var drop [][]byte
			if err := b.ForEach(func(k, _ []byte) error {
				if !keep(k) {
					drop = append(drop, bytes.Clone(k))
				}
				return nil
			}); err != nil {
				return err
			}
			for _, k := range drop {
				if err := b.Delete(k); err != nil {
					return err
				}
			}
			meta := tx.Bucket(storeBucketMeta)
			if cursor != nil {
				if err := meta.Put(communeCursorKey, cursor); err != nil {
					return err
				}
			}
			return meta.Delete(communeReadyKey)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	reopen := func() {
		t.Helper()
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		db, s = openTestStore(t, dir)
	}
	forget(func([]byte) bool { return false }, nil)
	reopen()
	if n := checkCommuneIndex(t, db); n != want {
		t.Errorf("after the backfill %d entries, want %d", n, want)
	}

	// Cut short after the doses of f1: its entries are there, the cursor points at its
	// last dose.
	var lastF1 []byte
	if err := db.bolt.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(storeBucketDoses).Cursor()
		k, _ := c.Seek(storeKey("f2", ""))
		k, _ = c.Prev()
		lastF1 = bytes.Clone(k)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	forget(func(k []byte) bool { return bytes.Contains(k, []byte("\x00f1\x00")) }, lastF1)
	reopen()
	if n := checkCommuneIndex(t, db); n != want {
		t.Errorf("after the resumed backfill %d entries, want %d", n, want)
	}
	got, err := s.ListByCommune(t.Context(), "00002", match.Pending, vaxpass.DoseKey{}, 100)
	if err != nil || len(got) == 0 {
		t.Fatalf("ListByCommune after the backfill = %d doses, %v", len(got), err)
	}
	db.Close()
}

func TestListByCommuneInvalid(t *testing.T) {
	db, s := openTestStore(t, t.TempDir())
	defer db.Close()
	d := testDose("f1", "a")
	d.CommuneCode = "0\x001"
	if _, err := s.PutNew(t.Context(), []vaxpass.Dose{d}); err == nil {
		t.Error("a commune code with a NUL byte was stored")
	}
}

// BenchmarkCommuneBackfill: building the commune index of a database of 100,000 doses
// written before it existed (each op one whole backfill).
func BenchmarkCommuneBackfill(b *testing.B) {
	const n = 100000
	db, s := openTestStore(b, b.TempDir())
	defer db.Close()
	for start := 0; start < n; start += 5000 {
		var ds []vaxpass.Dose
		for i := start; i < start+5000; i++ {
			d := testDose(fmt.Sprintf("f%03d", i%300), fmt.Sprintf("s%07d", i))
			d.CommuneCode = fmt.Sprintf("%05d", i%500)
			ds = append(ds, d)
		}
		if _, err := s.PutNew(b.Context(), ds); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		if err := db.bolt.Update(func(tx *bolt.Tx) error {
			if err := tx.DeleteBucket(storeBucketDoseCommune); err != nil {
				return err
			}
			if _, err := tx.CreateBucket(storeBucketDoseCommune); err != nil {
				return err
			}
			return tx.Bucket(storeBucketMeta).Delete(communeReadyKey)
		}); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := storeCommuneBackfill(db.bolt); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/dose")
}
