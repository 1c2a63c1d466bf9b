package renewal_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/stage/renewal"
)

func TestParseWindow(t *testing.T) {
	day := 24 * time.Hour
	tests := []struct {
		in   string
		want time.Duration // 0: an error
	}{
		{"30d", 30 * day},
		{"400d", 400 * day},
		{" 1d ", day},
		{"720h", 720 * time.Hour},
		{"90m", 90 * time.Minute},
		{"732d", 732 * day},
		{"733d", 0},
		{"0d", 0},
		{"-1d", 0},
		{"+1d", 0},
		{"d", 0},
		{"1.5d", 0},
		{"30", 0},
		{"-5h", 0},
		{"100000h", 0},
		{"", 0},
		{"99999999999999999999d", 0},
	}
	for _, tc := range tests {
		got, err := renewal.ParseWindow(tc.in)
		if tc.want == 0 {
			if err == nil {
				t.Errorf("ParseWindow(%q) = %v, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseWindow(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, d := range []time.Duration{30 * day, 400 * day, 90 * time.Minute} {
		if back, err := renewal.ParseWindow(renewal.FormatWindow(d)); err != nil || back != d {
			t.Errorf("FormatWindow(%v) does not round-trip: %v %v", d, back, err)
		}
	}
}

func FuzzParseWindow(f *testing.F) {
	for _, s := range []string{"30d", "400d", "720h", "-1d", "1e9d", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := renewal.ParseWindow(s)
		if err == nil && (d <= 0 || d > renewal.MaxWindow) {
			t.Fatalf("ParseWindow(%q) = %v outside (0, MaxWindow]", s, d)
		}
	})
}

// fakeTime is a clock whose sleeps advance it.
type fakeTime struct {
	mu     sync.Mutex
	now    time.Time
	slept  time.Duration
	sleeps int
}

func (f *fakeTime) Now() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.now }

func TestTokenBucketPaces(t *testing.T) {
	ft := &fakeTime{now: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	b, err := renewal.NewTokenBucket(10, 2, ft.Now)
	if err != nil {
		t.Fatal(err)
	}
	renewal.SetSleep(b, func(ctx context.Context, d time.Duration) error {
		ft.mu.Lock()
		ft.now = ft.now.Add(d)
		ft.slept += d
		ft.sleeps++
		ft.mu.Unlock()
		return ctx.Err()
	})
	for range 22 {
		if err := b.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	// 2 from the burst, 20 more at 10/s: two seconds of waiting.
	if ft.slept < 1990*time.Millisecond || ft.slept > 2010*time.Millisecond {
		t.Errorf("slept %v for 22 tokens at 10/s with burst 2, want 2s", ft.slept)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := b.Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Wait on a cancelled context = %v", err)
	}
	for _, bad := range []struct {
		rate  float64
		burst int
	}{{0, 1}, {-1, 1}, {1, 0}} {
		if _, err := renewal.NewTokenBucket(bad.rate, bad.burst, nil); err == nil {
			t.Errorf("NewTokenBucket(%v, %d) accepted", bad.rate, bad.burst)
		}
	}
}
