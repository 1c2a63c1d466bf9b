package queue

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// The benchmarks use a real file in b.TempDir() with bbolt's default fsync on commit:
// the cost that batching amortises. They report messages per second.

var benchBody = []byte(`{"person_id":"0123456789abcdef","facility":"79-001","signature":"MEUCIQDx7bN0"}`)

func BenchmarkSend(b *testing.B) {
	q := openQueue(b, openDB(b, b.TempDir()), "bench", Config{})
	ctx := context.Background()
	b.ResetTimer()
	for range b.N {
		if _, err := q.Send(ctx, benchBody, SendOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

func BenchmarkSendBatch(b *testing.B) {
	for _, size := range []int{10, 100, 1000} {
		for _, dedup := range []bool{false, true} {
			b.Run(fmt.Sprintf("batch=%d/dedup=%v", size, dedup), func(b *testing.B) {
				q := openQueue(b, openDB(b, b.TempDir()), "bench", Config{})
				ctx := context.Background()
				batch := make([]Outgoing, size)
				b.ResetTimer()
				for sent := 0; sent < b.N; sent += size {
					n := min(size, b.N-sent)
					for i := range n {
						batch[i] = Outgoing{Body: benchBody}
						if dedup {
							batch[i].DedupID = fmt.Sprintf("person-%d", sent+i)
						}
					}
					if _, err := q.SendBatch(ctx, batch[:n]); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
			})
		}
	}
}

// BenchmarkReceiveDelete measures the consumer side: one receive transaction and one
// delete transaction per batch, over a backlog of b.N messages.
func BenchmarkReceiveDelete(b *testing.B) {
	for _, size := range []int{1, 10, 100, 1000} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			q := openQueue(b, openDB(b, b.TempDir()), "bench", Config{MaxReceiveCount: 5})
			ctx := context.Background()
			fill := make([]Outgoing, 0, 1000)
			for sent := 0; sent < b.N; sent += len(fill) {
				fill = fill[:0]
				for i := 0; i < 1000 && sent+i < b.N; i++ {
					fill = append(fill, Outgoing{Body: benchBody})
				}
				if _, err := q.SendBatch(ctx, fill); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			got := 0
			for got < b.N {
				msgs, err := q.ReceiveBatch(ctx, size, time.Minute)
				if err != nil {
					b.Fatal(err)
				}
				if len(msgs) == 0 {
					b.Fatalf("backlog empty after %d of %d", got, b.N)
				}
				receipts := make([]string, len(msgs))
				for i, m := range msgs {
					receipts[i] = m.ReceiptHandle
				}
				if _, err := q.DeleteBatch(ctx, receipts); err != nil {
					b.Fatal(err)
				}
				got += len(msgs)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

// BenchmarkReceiveWithInFlightBacklog shows that receiving does not walk over messages
// that are in flight: 100,000 hidden messages sit in the index behind the visible ones.
func BenchmarkReceiveWithInFlightBacklog(b *testing.B) {
	clock := newClock()
	q := openQueue(b, openDB(b, b.TempDir()), "bench", Config{Now: clock.Now})
	ctx := context.Background()
	fill := make([]Outgoing, 1000)
	for i := range fill {
		fill[i] = Outgoing{Body: benchBody}
	}
	for range 100 {
		if _, err := q.SendBatch(ctx, fill); err != nil {
			b.Fatal(err)
		}
	}
	for {
		msgs, err := q.ReceiveBatch(ctx, 1000, time.Hour)
		if err != nil {
			b.Fatal(err)
		}
		if len(msgs) == 0 {
			break
		}
	}
	b.ResetTimer()
	for got := 0; got < b.N; {
		b.StopTimer()
		if _, err := q.SendBatch(ctx, fill[:min(100, b.N-got)]); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		msgs, err := q.ReceiveBatch(ctx, 100, time.Hour)
		if err != nil {
			b.Fatal(err)
		}
		got += len(msgs)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkPumpRun measures a running Pump with a no-op handler over a backlog: each
// worker deletes a batch in the transaction that receives the next.
func BenchmarkPumpRun(b *testing.B) {
	for _, cfg := range []PumpConfig{{BatchSize: 10, Concurrency: 1}, {BatchSize: 10, Concurrency: 4}, {BatchSize: 100, Concurrency: 1}} {
		b.Run(fmt.Sprintf("batch=%d/workers=%d", cfg.BatchSize, cfg.Concurrency), func(b *testing.B) {
			q := openQueue(b, openDB(b, b.TempDir()), "bench", Config{})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			fill := make([]Outgoing, 0, 1000)
			for sent := 0; sent < b.N; sent += len(fill) {
				fill = fill[:0]
				for i := 0; i < 1000 && sent+i < b.N; i++ {
					fill = append(fill, Outgoing{Body: benchBody})
				}
				if _, err := q.SendBatch(ctx, fill); err != nil {
					b.Fatal(err)
				}
			}
			var mu sync.Mutex
			handled := 0
			done := make(chan struct{})
			cfg.OnError = func(err error) { b.Error(err) }
			p, err := NewPump(q, func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
				mu.Lock()
				defer mu.Unlock()
				handled += len(ev.Records)
				if handled == b.N {
					close(done)
				}
				return events.SQSEventResponse{}, nil
			}, cfg)
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			runErr := make(chan error, 1)
			go func() { runErr <- p.Run(ctx) }()
			<-done
			cancel()
			if err := <-runErr; err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
