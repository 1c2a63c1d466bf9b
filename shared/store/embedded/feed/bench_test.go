package feed

import (
	"context"
	"fmt"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	bolt "go.etcd.io/bbolt"
)

// The benchmarks use a real file in b.TempDir() with bbolt's default fsync on commit
// and report events per second.

func benchChange(i int) Change {
	id := events.NewStringAttribute(fmt.Sprintf("79-001/%08d", i))
	return Change{
		EventName: Insert,
		Keys:      map[string]events.DynamoDBAttributeValue{"pk": id},
		NewImage: map[string]events.DynamoDBAttributeValue{
			"pk": id, "full_name": events.NewStringAttribute("Nguyễn Văn An"), "dob": events.NewStringAttribute("1980-01-02"),
			"vaccine": events.NewStringAttribute("PFIZER"), "dose_number": events.NewNumberAttribute("2"),
			"status": events.NewStringAttribute("PENDING"),
		},
	}
}

// BenchmarkAppend writes a record and its change per event, size events per
// transaction (an import commits a chunk of rows at once).
func BenchmarkAppend(b *testing.B) {
	for _, size := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("perTx=%d", size), func(b *testing.B) {
			db := openDB(b, b.TempDir())
			f := openFeed(b, db, Config{})
			changes := make([]Change, size)
			for i := range changes {
				changes[i] = benchChange(i)
			}
			b.ResetTimer()
			for done := 0; done < b.N; done += size {
				n := min(size, b.N-done)
				err := db.Update(func(tx *bolt.Tx) error {
					rb, err := tx.CreateBucketIfNotExists(recordsBucket)
					if err != nil {
						return err
					}
					for i := range n {
						if err := rb.Put([]byte(fmt.Sprintf("%010d", done+i)), []byte(`{"status":"PENDING"}`)); err != nil {
							return err
						}
						if _, err := f.Append(tx, changes[i]); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkPump measures delivery: read a batch, convert it to a DynamoDBEvent, call
// a no-op handler, commit the checkpoint and trim.
func BenchmarkPump(b *testing.B) {
	for _, size := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			db := openDB(b, b.TempDir())
			f := openFeed(b, db, Config{})
			for done := 0; done < b.N; done += 1000 {
				err := db.Update(func(tx *bolt.Tx) error {
					for i := 0; i < 1000 && done+i < b.N; i++ {
						if _, err := f.Append(tx, benchChange(done+i)); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			p := newPump(b, f, "matcher", func(context.Context, events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
				return events.DynamoDBEventResponse{}, nil
			}, PumpConfig{BatchSize: size})
			b.ResetTimer()
			for got := 0; got < b.N; {
				res, err := p.RunOnce(context.Background())
				if err != nil {
					b.Fatal(err)
				}
				if res.Received == 0 {
					b.Fatalf("feed empty after %d of %d", got, b.N)
				}
				got += res.Received
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
