package embedded

import (
	"context"
	"fmt"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/vaxpass/vaxpass/shared/stage/stats"
)

// BenchmarkStatCounters measures one read of the dashboard's counters of a store with
// 500 facilities whose certificates expire over a year (the read's cost grows with the
// number of counters, not of records).
func BenchmarkStatCounters(b *testing.B) {
	db, s := openTestStore(b, b.TempDir())
	defer db.Close()
	ctx := context.Background()
	const facilities, days = 500, 365
	err := s.storeUpdate(ctx, func(tx *bolt.Tx) error {
		if err := statsEnsure(tx); err != nil {
			return err
		}
		delta := stats.Delta{}
		for f := range facilities {
			for d := range days {
				k := stats.Key{Scope: stats.Scope{Kind: stats.AtFacility, ID: fmt.Sprintf("F%05d", f)},
					Metric: stats.Metric{Kind: stats.ExpiresOn, Arg: stats.DayOf(storeTestNow.Add(time.Duration(d) * 24 * time.Hour))}}
				delta.Add(k, 3)
			}
			for _, st := range stats.Statuses {
				delta.Add(stats.Key{Scope: stats.Scope{Kind: stats.AtFacility, ID: fmt.Sprintf("F%05d", f)}, Metric: stats.Metric{Kind: stats.DoseStatus, Arg: string(st)}}, 7)
			}
		}
		return statsApply(tx, delta)
	})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := s.StatCounters(ctx, "2021-09-01", "2021-10-31"); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/(facilities*(days+6)), "ns/counter")
}
