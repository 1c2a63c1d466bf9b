// Package security records security events -- authentication failures, limits hit,
// lockouts -- without personal data: each is logged (at most LogPerMinute lines a minute
// per kind, then one summary line with the number left out, so an attack cannot flood
// the logs) and counted per kind and day in a store, which the ops dashboard reads.
//
// Handlers emit through an interface they declare themselves:
//
//	SecurityEvent(ctx context.Context, kind, route string)
//
// with kind one of the Kind constants and route the route key ("POST /v1/doses"); never
// a key, an ID number, a name or an address.
package security

import (
	"context"
	"log/slog"
	"maps"
	"sync"
	"time"
)

// The kinds of security events.
const (
	// AuthFailed: a missing or unknown API key.
	AuthFailed = "auth_failed"
	// AuthRevoked: a revoked API key was used.
	AuthRevoked = "auth_revoked"
	// Forbidden: a valid key of the wrong role, or outside its subject.
	Forbidden = "forbidden"
	// BodyTooLarge: a request body over its route's limit.
	BodyTooLarge = "body_too_large"
	// RateLimited: a client over the per-client rate limit.
	RateLimited = "rate_limited"
	// Busy: a route's concurrency bound was reached.
	Busy = "busy"
	// IdentityLocked: a lookup refused by the per-identity limit on failed attempts.
	IdentityLocked = "identity_locked"
	// ImportRefused: a spreadsheet over a cap.
	ImportRefused = "import_refused"
	// Other counts an event of a kind not listed here (a programming error: the counts'
	// kinds stay bounded whatever the callers pass).
	Other = "other"
)

// Kinds lists every kind, in the order the dashboard shows them.
var Kinds = []string{AuthFailed, AuthRevoked, Forbidden, BodyTooLarge, RateLimited, Busy, IdentityLocked, ImportRefused, Other}

// Store counts events.
type Store interface {
	// AddSecurityEvents adds counts (by kind) to day's counts ("2006-01-02", Vietnam
	// time) and to the totals.
	AddSecurityEvents(ctx context.Context, day string, counts map[string]int64) error
}

// Defaults of the Recorder.
const (
	DefaultLogPerMinute = 20
	DefaultWriteEvery   = time.Second
	maxRoute            = 80
)

// Recorder logs and counts security events; safe for concurrent use. Writes to the
// store are batched: an event after a quiet WriteEvery is written at once (so a lone
// event shows on the dashboard when it happens); events closer together are summed and
// written with the next event after WriteEvery, or by Flush. Under attack a process
// thus writes at most once per WriteEvery, whatever the number of events.
type Recorder struct {
	Store Store
	Log   *slog.Logger
	Now   func() time.Time
	// Metric, when set, is told every event's kind (the AWS backend counts it as an
	// EMF metric).
	Metric func(kind string)
	// LogPerMinute lines a minute per kind are logged (default DefaultLogPerMinute);
	// WriteEvery spaces the store writes (default DefaultWriteEvery).
	LogPerMinute int
	WriteEvery   time.Duration

	mu        sync.Mutex
	pending   map[string]int64
	lastWrite time.Time
	writing   bool
	minute    int64
	logged    map[string]int
	dropped   map[string]int
}

// SecurityEvent records one event of kind on route.
func (r *Recorder) SecurityEvent(ctx context.Context, kind, route string) {
	if r == nil {
		return
	}
	kind = known(kind)
	if len(route) > maxRoute {
		route = route[:maxRoute]
	}
	now := r.now()
	r.mu.Lock()
	logIt, summary := r.logSlot(kind, now)
	if r.pending == nil {
		r.pending = map[string]int64{}
	}
	r.pending[kind]++
	var batch map[string]int64
	if !r.writing && now.Sub(r.lastWrite) >= r.writeEvery() {
		batch, r.pending, r.writing, r.lastWrite = r.pending, nil, true, now
	}
	r.mu.Unlock()

	log := r.log()
	for k, n := range summary {
		log.Warn("security events not logged", "kind", k, "count", n, "period", "1m")
	}
	if logIt {
		log.Warn("security event", "kind", kind, "route", route)
	}
	if r.Metric != nil {
		r.Metric(kind)
	}
	if batch != nil {
		r.write(ctx, now, batch)
	}
}

// Flush writes the counts not written yet.
func (r *Recorder) Flush(ctx context.Context) error { return r.flush(ctx, false) }

// FlushDue writes the counts not written yet if WriteEvery has passed since the last
// write: a function calls it after each invocation, so the tail of a burst is written
// without a write per invocation.
func (r *Recorder) FlushDue(ctx context.Context) error { return r.flush(ctx, true) }

func (r *Recorder) flush(ctx context.Context, onlyDue bool) error {
	if r == nil {
		return nil
	}
	now := r.now()
	r.mu.Lock()
	if r.writing || len(r.pending) == 0 || (onlyDue && now.Sub(r.lastWrite) < r.writeEvery()) {
		r.mu.Unlock()
		return nil
	}
	batch := r.pending
	r.pending, r.writing, r.lastWrite = nil, true, now
	r.mu.Unlock()
	return r.write(ctx, now, batch)
}

// write stores batch; on failure the counts go back to pending for the next write.
func (r *Recorder) write(ctx context.Context, now time.Time, batch map[string]int64) error {
	var err error
	if r.Store != nil {
		// The event's request may be ending; its counts must still be written.
		err = r.Store.AddSecurityEvents(context.WithoutCancel(ctx), DayOf(now), batch)
	}
	r.mu.Lock()
	r.writing = false
	if err != nil {
		if r.pending == nil {
			r.pending = map[string]int64{}
		}
		for k, n := range batch {
			r.pending[k] += n
		}
	}
	r.mu.Unlock()
	if err != nil {
		r.log().Error("security events not counted", "err", err)
	}
	return err
}

// logSlot says whether an event of kind may be logged in now's minute, and the numbers
// left out per kind in the minute before when a new minute begins. Caller holds mu.
func (r *Recorder) logSlot(kind string, now time.Time) (bool, map[string]int) {
	var summary map[string]int
	if m := now.Unix() / 60; m != r.minute {
		if len(r.dropped) > 0 {
			summary = maps.Clone(r.dropped)
		}
		r.minute, r.logged, r.dropped = m, map[string]int{}, map[string]int{}
	}
	if r.logged[kind] < r.logPerMinute() {
		r.logged[kind]++
		return true, summary
	}
	r.dropped[kind]++
	return false, summary
}

func known(kind string) string {
	for _, k := range Kinds {
		if k == kind {
			return k
		}
	}
	return Other
}

func (r *Recorder) logPerMinute() int {
	if r.LogPerMinute > 0 {
		return r.LogPerMinute
	}
	return DefaultLogPerMinute
}

func (r *Recorder) writeEvery() time.Duration {
	if r.WriteEvery > 0 {
		return r.WriteEvery
	}
	return DefaultWriteEvery
}

func (r *Recorder) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Recorder) log() *slog.Logger {
	if r.Log != nil {
		return r.Log
	}
	return slog.Default()
}

// VietnamTime is the zone the days are counted in (as the dashboard's other numbers).
var VietnamTime = time.FixedZone("ICT", 7*3600)

// DayOf is the day ("2006-01-02", Vietnam time) an instant is counted on.
func DayOf(t time.Time) string { return t.In(VietnamTime).Format(time.DateOnly) }

// CountReader reads the counts a Store keeps.
type CountReader interface {
	SecurityCounts(ctx context.Context, day string) (today, total map[string]int64, err error)
}

// Flushed reads the counts after writing the recorder's pending ones, so this process's
// own recent events are in what it shows.
type Flushed struct {
	Recorder *Recorder
	Reader   CountReader
}

// SecurityCounts implements stats.SecurityCounters. A failed flush is logged by the
// recorder and its counts kept for the next write; the read goes on.
func (f Flushed) SecurityCounts(ctx context.Context, day string) (today, total map[string]int64, err error) {
	_ = f.Recorder.Flush(ctx)
	return f.Reader.SecurityCounts(ctx, day)
}
