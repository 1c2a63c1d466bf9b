package security_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/stage/security"
)

type memStore struct {
	mu     sync.Mutex
	writes int
	days   map[string]map[string]int64
	fail   error
}

func (m *memStore) AddSecurityEvents(_ context.Context, day string, counts map[string]int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	m.writes++
	if m.days == nil {
		m.days = map[string]map[string]int64{}
	}
	if m.days[day] == nil {
		m.days[day] = map[string]int64{}
	}
	for k, n := range counts {
		m.days[day][k] += n
	}
	return nil
}

func (m *memStore) SecurityCounts(_ context.Context, day string) (map[string]int64, map[string]int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	total := map[string]int64{}
	for _, d := range m.days {
		for k, n := range d {
			total[k] += n
		}
	}
	today := map[string]int64{}
	for k, n := range m.days[day] {
		today[k] = n
	}
	return today, total, nil
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func lines(buf *bytes.Buffer) []map[string]any {
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err == nil {
			out = append(out, m)
		}
	}
	return out
}

// Events are counted by kind and day; a burst is written once, its tail by the next
// write after WriteEvery (or Flush), and an unknown kind counts as "other".
func TestRecorderCounts(t *testing.T) {
	// 16:59:59 UTC is 23:59:59 in Vietnam: the day the events count on.
	c := &clock{t: time.Date(2022, 3, 1, 16, 59, 59, 0, time.UTC)}
	st := &memStore{}
	r := &security.Recorder{Store: st, Now: c.now, Log: slog.New(slog.DiscardHandler)}
	ctx := context.Background()
	for range 100 {
		r.SecurityEvent(ctx, security.RateLimited, "POST /v1/passports/lookup")
	}
	r.SecurityEvent(ctx, "no such kind", "GET /v1/stats")
	if st.writes != 1 || st.days["2022-03-01"][security.RateLimited] != 1 {
		t.Fatalf("after a burst: %d writes, %v", st.writes, st.days)
	}
	if err := r.FlushDue(ctx); err != nil || st.writes != 1 {
		t.Fatalf("FlushDue before WriteEvery wrote: %d (%v)", st.writes, err)
	}
	c.t = c.t.Add(time.Second) // 00:00:00 the next day in Vietnam
	r.SecurityEvent(ctx, security.AuthFailed, "GET /v1/worklist")
	if st.writes != 2 {
		t.Fatalf("%d writes", st.writes)
	}
	today, total, _ := st.SecurityCounts(ctx, "2022-03-02")
	if total[security.RateLimited] != 100 || total[security.Other] != 1 || today[security.AuthFailed] != 1 {
		t.Fatalf("today %v total %v", today, total)
	}
	// Flush writes what is pending at once.
	r.SecurityEvent(ctx, security.Busy, "POST /v1/imports")
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if today, _, _ := st.SecurityCounts(ctx, "2022-03-02"); today[security.Busy] != 1 {
		t.Fatalf("after Flush: %v", today)
	}
}

// A failed write keeps its counts for the next one.
func TestRecorderWriteFails(t *testing.T) {
	c := &clock{t: time.Date(2022, 3, 1, 3, 0, 0, 0, time.UTC)}
	st := &memStore{fail: errors.New("down")}
	r := &security.Recorder{Store: st, Now: c.now, Log: slog.New(slog.DiscardHandler)}
	ctx := context.Background()
	r.SecurityEvent(ctx, security.Forbidden, "GET /v1/registry/records")
	st.fail = nil
	c.t = c.t.Add(2 * time.Second)
	r.SecurityEvent(ctx, security.Forbidden, "GET /v1/registry/records")
	if got := st.days["2022-03-01"][security.Forbidden]; got != 2 {
		t.Fatalf("counted %d, want 2", got)
	}
}

// Logging is bounded: LogPerMinute lines a minute per kind, then a summary of those left
// out; the lines carry kind and route only.
func TestRecorderLogBounded(t *testing.T) {
	c := &clock{t: time.Date(2022, 3, 1, 3, 0, 10, 0, time.UTC)}
	var buf bytes.Buffer
	r := &security.Recorder{Store: &memStore{}, Now: c.now, LogPerMinute: 5, Log: slog.New(slog.NewJSONHandler(&buf, nil))}
	ctx := context.Background()
	for range 1000 {
		r.SecurityEvent(ctx, security.AuthFailed, "GET /v1/worklist")
	}
	r.SecurityEvent(ctx, security.BodyTooLarge, "POST /v1/verify")
	got := lines(&buf)
	if len(got) != 6 {
		t.Fatalf("%d lines in the first minute, want 5 + 1", len(got))
	}
	for _, l := range got {
		if l["kind"] == nil || l["route"] == nil || len(l) != 5 { // time, level, msg, kind, route
			t.Fatalf("line %v", l)
		}
	}
	buf.Reset()
	c.t = c.t.Add(time.Minute)
	r.SecurityEvent(ctx, security.AuthFailed, "GET /v1/worklist")
	got = lines(&buf)
	if len(got) != 2 || got[0]["kind"] != security.AuthFailed || got[0]["count"] != float64(995) {
		t.Fatalf("next minute: %v", got)
	}
}

// A nil recorder is a no-op (handlers may be built without one).
func TestRecorderNil(t *testing.T) {
	var r *security.Recorder
	r.SecurityEvent(context.Background(), security.Busy, "x")
	if err := r.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// Metric is told every event's kind, the unknown ones as "other".
func TestRecorderMetric(t *testing.T) {
	var kinds []string
	r := &security.Recorder{Log: slog.New(slog.DiscardHandler), Metric: func(k string) { kinds = append(kinds, k) }}
	r.SecurityEvent(context.Background(), security.AuthRevoked, "GET /v1/worklist")
	r.SecurityEvent(context.Background(), "made up", "GET /v1/worklist")
	if strings.Join(kinds, ",") != "auth_revoked,other" {
		t.Fatalf("metric kinds %v", kinds)
	}
}
