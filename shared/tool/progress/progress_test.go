package progress

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is a hand-driven clock; its ticker channel is fed by the test.
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	ticks chan time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2022, 4, 1, 8, 0, 0, 0, time.UTC), ticks: make(chan time.Time)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTicker(time.Duration) (<-chan time.Time, func()) { return c.ticks, func() {} }

func (c *fakeClock) advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return c.now
}

// syncBuffer is written by the reporter's goroutine and read by the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestTerminalLine(t *testing.T) {
	clock := newFakeClock()
	var out syncBuffer
	r := New(&out, Options{Label: "people", Total: 1_000_000, Terminal: true, Clock: clock})
	r.Add(250_000)
	r.tick(clock.advance(2 * time.Second))
	want := "\rpeople [######..................]  25% 250,000/1,000,000 125,000/s ETA 0:06"
	if got := out.String(); got != want {
		t.Fatalf("line:\n got %q\nwant %q", got, want)
	}
	r.Add(750_000)
	r.Done()
	got := out.String()[len(want):]
	wantDone := "\rpeople: done 1,000,000 in 2.0s (500,000/s)"
	if !strings.HasPrefix(got, wantDone) || !strings.HasSuffix(got, "\n") {
		t.Fatalf("summary %q, want prefix %q and a newline", got, wantDone)
	}
	// The summary is shorter than the bar line: it must blank the rest of it.
	if line := strings.TrimSuffix(got, "\n"); len(line) < len(want) {
		t.Fatalf("summary %q does not cover the previous line (%d < %d)", line, len(line), len(want))
	}
}

func TestPlainThrottled(t *testing.T) {
	tests := []struct {
		name  string
		total int64
		steps []struct {
			add   int64
			after time.Duration
		}
		wantLines int
	}{
		{
			name:  "time throttle without a total",
			total: 0,
			steps: []struct {
				add   int64
				after time.Duration
			}{{10, time.Second}, {10, time.Second}, {10, 3 * time.Second}, {10, time.Second}, {10, 5 * time.Second}},
			wantLines: 2, // at 5s and at 11s
		},
		{
			name:  "percent steps print before the time is due",
			total: 100,
			steps: []struct {
				add   int64
				after time.Duration
			}{{5, 100 * time.Millisecond}, {5, 100 * time.Millisecond}, {3, 100 * time.Millisecond}, {10, 100 * time.Millisecond}},
			wantLines: 2, // at 10% and at 23%
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newFakeClock()
			var out syncBuffer
			r := New(&out, Options{Label: "records", Total: tt.total, Clock: clock})
			for _, s := range tt.steps {
				r.Add(s.add)
				r.tick(clock.advance(s.after))
			}
			got := out.String()
			if n := strings.Count(got, "\n"); n != tt.wantLines {
				t.Fatalf("%d lines, want %d:\n%s", n, tt.wantLines, got)
			}
			if strings.Contains(got, "\r") || strings.Contains(got, "[") {
				t.Fatalf("plain output has terminal drawing: %q", got)
			}
			r.Done()
			if n := strings.Count(out.String(), "\n"); n != tt.wantLines+1 {
				t.Fatalf("Done printed %d lines, want 1", n-tt.wantLines)
			}
		})
	}
}

func TestTickerDrivesDrawing(t *testing.T) {
	clock := newFakeClock()
	var out syncBuffer
	r := New(&out, Options{Label: "x", Total: 10, Terminal: true, Clock: clock})
	r.Add(5)
	clock.ticks <- clock.advance(time.Second) // received by the reporter's goroutine
	r.Done()                                  // waits for the goroutine: the draw is complete
	if got := out.String(); !strings.Contains(got, " 50% 5/10") {
		t.Fatalf("no redraw from the ticker: %q", got)
	}
}

func TestDoneTwiceAndAddConcurrently(t *testing.T) {
	clock := newFakeClock()
	var out syncBuffer
	r := New(&out, Options{Label: "n", Clock: clock})
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 1000 {
				r.Add(1)
			}
		}()
	}
	wg.Wait()
	clock.advance(time.Second)
	r.Done()
	r.Done()
	if got := out.String(); got != "n: done 8,000 in 1.0s (8,000/s)\n" {
		t.Fatalf("summary %q", got)
	}
}

func TestFormatting(t *testing.T) {
	grouped := []struct {
		n    int64
		want string
	}{{0, "0"}, {999, "999"}, {1000, "1,000"}, {1234567, "1,234,567"}, {-12345, "-12,345"}}
	for _, tt := range grouped {
		if got := string(appendGrouped(nil, tt.n)); got != tt.want {
			t.Errorf("appendGrouped(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
	clocks := []struct {
		d    time.Duration
		want string
	}{{0, "0:00"}, {65 * time.Second, "1:05"}, {3*time.Hour + 7*time.Second, "3:00:07"}}
	for _, tt := range clocks {
		if got := string(appendClock(nil, tt.d)); got != tt.want {
			t.Errorf("appendClock(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

func BenchmarkAdd(b *testing.B) {
	r := New(&syncBuffer{}, Options{Label: "b", Total: int64(b.N)})
	defer r.Done()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r.Add(1)
		}
	})
}
