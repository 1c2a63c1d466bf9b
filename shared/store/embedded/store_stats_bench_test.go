package embedded

import (
	"context"
	"fmt"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/vaxpass/vaxpass/shared/domain/dose"
	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/stage/stats"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// BenchmarkStatCounters measures one read of the dashboard's counters of a store with
// 2,000 facilities whose certificates expire over a year (the read's cost grows with the
// number of counters, not of records).
func BenchmarkStatCounters(b *testing.B) {
	db, s := openTestStore(b, b.TempDir())
	defer db.Close()
	ctx := context.Background()
	const facilities, days = 2000, 365
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

// BenchmarkPutNewCounted measures storing doses in batches of 1,000 with their counters.
func BenchmarkPutNewCounted(b *testing.B) {
	db, s := openTestStore(b, b.TempDir())
	defer db.Close()
	ctx := context.Background()
	n := 0
	for b.Loop() {
		batch := make([]vaxpass.Dose, 0, 1000)
		for range 1000 {
			n++
			batch = append(batch, vaxpass.Dose{
				FacilityID: fmt.Sprintf("F%03d", n%63),
				Record: dose.Record{SourceID: fmt.Sprintf("S%09d", n), FullName: "Nguyễn Thị Minh Khai", DOB: "1990-05-17",
					Gender: dose.Female, IDNumber: fmt.Sprintf("0%02d190012345", 1+n%40), Nationality: "VN",
					Vaccine: "PFIZER", DoseNumber: 2, VaccinatedOn: "2021-09-01"},
				Match:      match.Result{Status: match.Pending, Reasons: []string{}},
				ReceivedAt: storeTestNow, UpdatedAt: storeTestNow, Version: 1,
			})
		}
		if _, err := s.PutNew(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/dose")
}
