package embedded

import (
	"fmt"
	"testing"

	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/stage/matching"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// benchDoses returns n new doses numbered from first. As in real uploads, 1,000
// consecutive doses come from one facility (of 100), with increasing source IDs; the
// change feed delivers them in that order.
func benchDoses(first, n int) []vaxpass.Dose {
	out := make([]vaxpass.Dose, n)
	for i := range out {
		k := first + i
		d := testDose(fmt.Sprintf("fac-%03d", k/1000%100), fmt.Sprintf("src-%09d", k))
		d.IDNumber = fmt.Sprintf("079%09d", k)
		out[i] = d
	}
	return out
}

// prefill stores n doses in batches of 1000.
func prefill(b *testing.B, s *Store, n int) {
	b.Helper()
	for i := 0; i < n; i += 1000 {
		if _, err := s.PutNew(b.Context(), benchDoses(i, min(1000, n-i))); err != nil {
			b.Fatal(err)
		}
	}
}

// PutNew of 1,000-record batches into a database file (one transaction and one disk
// sync per batch), into an empty store and one already holding 200,000 doses.
func BenchmarkStorePutNew1000(b *testing.B) {
	for _, held := range []int{0, 200_000} {
		b.Run(fmt.Sprintf("held=%d", held), func(b *testing.B) {
			db, s := openTestStore(b, b.TempDir())
			defer db.Close()
			prefill(b, s, held)
			next := held
			b.ResetTimer()
			for b.Loop() {
				batch := benchDoses(next, 1000)
				next += 1000
				if _, err := s.PutNew(b.Context(), batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(next-held)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// SaveMatch one record per transaction (a disk sync each) against SaveMatchBatch of the
// change-feed pump's 100-record batches.
func BenchmarkStoreSaveMatch(b *testing.B) {
	for _, batch := range []int{1, 100} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			db, s := openTestStore(b, b.TempDir())
			defer db.Close()
			// Enough doses that no dose is matched twice during the run.
			const pool = 200_000
			prefill(b, s, pool)
			doses := benchDoses(0, pool)
			next := 0
			saved := 0
			b.ResetTimer()
			for b.Loop() {
				if next+batch > pool {
					b.StopTimer()
					for i := range doses { // the stored versions moved on by one
						doses[i].Version++
					}
					next = 0
					b.StartTimer()
				}
				chunk := doses[next : next+batch]
				for i := range chunk {
					matching.Apply(&chunk[i], match.Result{Status: match.Verified, Reasons: []string{}}, storeTestNow)
				}
				if batch == 1 {
					if err := s.SaveMatch(b.Context(), chunk[0]); err != nil {
						b.Fatal(err)
					}
				} else {
					errs, err := s.SaveMatchBatch(b.Context(), chunk)
					if err != nil {
						b.Fatal(err)
					}
					for _, e := range errs {
						if e != nil {
							b.Fatal(e)
						}
					}
				}
				next += batch
				saved += batch
			}
			b.ReportMetric(float64(saved)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
