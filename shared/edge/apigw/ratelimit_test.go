package apigw

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2022, 4, 1, 8, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func mustLimiter(t testing.TB, cfg RateLimit, clock *fakeClock) *Limiter {
	t.Helper()
	l, err := NewLimiter(cfg, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestLimiterTokenBucket(t *testing.T) {
	clock := newFakeClock()
	// 5 a minute, bursts of 3.
	l := mustLimiter(t, RateLimit{Rate: 5.0 / 60, Burst: 3, MaxKeys: 100}, clock)

	for i := 0; i < 3; i++ {
		if ok, _ := l.Allow("a"); !ok {
			t.Fatalf("request %d of the burst refused", i+1)
		}
	}
	ok, wait := l.Allow("a")
	if ok || wait != 12*time.Second {
		t.Fatalf("4th: ok=%v wait=%v, want refused for 12s", ok, wait)
	}
	if ok, _ := l.Allow("b"); !ok {
		t.Fatal("another client shares a's bucket")
	}
	clock.Advance(6 * time.Second)
	if ok, wait := l.Allow("a"); ok || wait != 6*time.Second {
		t.Fatalf("after 6s: ok=%v wait=%v, want refused for 6s more", ok, wait)
	}
	clock.Advance(6 * time.Second)
	if ok, _ := l.Allow("a"); !ok {
		t.Fatal("token not back after 12s")
	}
	if ok, _ := l.Allow("a"); ok {
		t.Fatal("two tokens from one refill")
	}
	// Long idle refills to Burst, never beyond.
	clock.Advance(time.Hour)
	for i := 0; i < 3; i++ {
		if ok, _ := l.Allow("a"); !ok {
			t.Fatalf("after idle, request %d refused", i+1)
		}
	}
	if ok, _ := l.Allow("a"); ok {
		t.Fatal("bucket grew past Burst")
	}
}

func TestLimiterClockStepsBack(t *testing.T) {
	clock := newFakeClock()
	l := mustLimiter(t, RateLimit{Rate: 1, Burst: 1, MaxKeys: 10}, clock)
	l.Allow("a")
	clock.Advance(-time.Hour)
	if ok, _ := l.Allow("a"); ok {
		t.Fatal("a clock stepping back refilled the bucket")
	}
	clock.Advance(time.Hour + time.Second)
	if ok, _ := l.Allow("a"); !ok {
		t.Fatal("no refill once the clock caught up")
	}
}

func TestLimiterBoundedMemory(t *testing.T) {
	clock := newFakeClock()
	l := mustLimiter(t, RateLimit{Rate: 1.0 / 60, Burst: 2, MaxKeys: 3}, clock)
	for _, k := range []string{"a", "b", "c"} {
		l.Allow(k)
		l.Allow(k) // each bucket now empty
	}
	l.Allow("a") // a is now the most recently used
	l.Allow("d") // evicts b, the least recently used
	if n := l.Len(); n != 3 {
		t.Fatalf("Len %d, want 3", n)
	}
	if ok, _ := l.Allow("a"); ok {
		t.Error("a was evicted although recently used")
	}
	if ok, _ := l.Allow("b"); !ok {
		t.Error("b kept its empty bucket although evicted")
	}

	// Idle buckets are forgotten once full again: nothing is lost by dropping them.
	clock.Advance(3 * time.Minute)
	for i := 0; i < 3; i++ {
		l.Allow("z")
	}
	if n := l.Len(); n > 2 {
		t.Errorf("Len %d after every other bucket refilled; idle buckets not forgotten", n)
	}
}

func TestLimiterConcurrent(t *testing.T) {
	clock := newFakeClock()
	l := mustLimiter(t, RateLimit{Rate: 1, Burst: 50, MaxKeys: 1000}, clock)
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				if ok, _ := l.Allow("shared"); ok {
					allowed.Add(1)
				}
				l.Allow(fmt.Sprintf("own-%d-%d", g, i))
			}
		}()
	}
	wg.Wait()
	if n := allowed.Load(); n != 50 {
		t.Errorf("%d requests allowed on a frozen clock, want exactly the burst of 50", n)
	}
}

func TestNewLimiterValidates(t *testing.T) {
	cases := []struct {
		cfg   RateLimit
		field string
	}{
		{RateLimit{Rate: 0, Burst: 1, MaxKeys: 1}, "Rate"},
		{RateLimit{Rate: -1, Burst: 1, MaxKeys: 1}, "Rate"},
		{RateLimit{Rate: 1, Burst: 0, MaxKeys: 1}, "Burst"},
		{RateLimit{Rate: 1, Burst: 1, MaxKeys: 0}, "MaxKeys"},
	}
	for _, c := range cases {
		_, err := NewLimiter(c.cfg, nil)
		if !errors.Is(err, ErrInvalidRateLimit) || !strings.Contains(err.Error(), c.field) {
			t.Errorf("%+v: %v", c.cfg, err)
		}
	}
}

func TestClientKey(t *testing.T) {
	cases := []struct{ ip, want string }{
		{"203.0.113.7", "ip:203.0.113.7"},
		{"::ffff:203.0.113.7", "ip:203.0.113.7"},
		{"2001:db8:1:2:aaaa::1", "ip:2001:db8:1:2::/64"},
		{"2001:db8:1:2:bbbb::9", "ip:2001:db8:1:2::/64"},
		{"2001:db8:1:3::1", "ip:2001:db8:1:3::/64"},
		{"fe80::1%eth0", "ip:fe80::/64"},
		{"", "ip:unknown"},
		{"IP", "ip:unknown"}, // the AWS docs' placeholder
	}
	for _, c := range cases {
		var req events.APIGatewayV2HTTPRequest
		req.RequestContext.HTTP.SourceIP = c.ip
		if got := ClientKey(req); got != c.want {
			t.Errorf("ClientKey(%q) = %q, want %q", c.ip, got, c.want)
		}
	}
}

func TestRateLimited(t *testing.T) {
	clock := newFakeClock()
	l := mustLimiter(t, RateLimit{Rate: 0.4, Burst: 1, MaxKeys: 10}, clock)
	calls := 0
	h := RateLimited(l, nil, func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		calls++
		return JSON(200, map[string]bool{"ok": true}), nil
	})
	var req events.APIGatewayV2HTTPRequest
	req.RequestContext.HTTP.SourceIP = "198.51.100.1"
	req.Headers = map[string]string{"x-forwarded-for": "10.0.0.1"}

	if resp, _ := h(context.Background(), req); resp.StatusCode != 200 {
		t.Fatalf("first: %d", resp.StatusCode)
	}
	req.Headers["x-forwarded-for"] = "10.0.0.2" // a forged header changes nothing
	resp, err := h(context.Background(), req)
	if err != nil || resp.StatusCode != 429 {
		t.Fatalf("second: %d %v", resp.StatusCode, err)
	}
	if resp.Headers["Retry-After"] != "3" { // 1 token at 0.4/s = 2.5 s, rounded up
		t.Errorf("Retry-After %q", resp.Headers["Retry-After"])
	}
	if !strings.Contains(resp.Body, `"code":"rate_limited"`) {
		t.Errorf("body %s", resp.Body)
	}
	if calls != 1 {
		t.Errorf("handler called %d times", calls)
	}
	clock.Advance(2500 * time.Millisecond)
	if resp, _ := h(context.Background(), req); resp.StatusCode != 200 {
		t.Errorf("after Retry-After: %d", resp.StatusCode)
	}
}

func BenchmarkLimiterAllow(b *testing.B) {
	l, _ := NewLimiter(RateLimit{Rate: 1, Burst: 10, MaxKeys: 100_000}, nil)
	keys := make([]string, 50_000)
	for i := range keys {
		keys[i] = fmt.Sprintf("ip:198.51.%d.%d", i/256, i%256)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		l.Allow(keys[i%len(keys)])
	}
}
