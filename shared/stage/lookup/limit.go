package lookup

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/vaxpass/vaxpass/shared/domain/identity"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// Defaults of the per-identity limit: at most 30 failed lookups of one ID number answered
// in any hour.
const (
	DefaultMaxFailures   = 30
	DefaultFailureWindow = time.Hour
	// BucketWidth is the resolution of the counts: failures are counted in 5-minute
	// buckets, and every bucket that overlaps the last Window counts in full. So the
	// limit holds in ANY Window however the attempts are spread (a fixed hourly window
	// would answer 2 x Max around its edge), at the price of a lock lasting up to one
	// bucket longer than strictly needed. A Window of 1 hour is 13 buckets per ID.
	BucketWidth = 5 * time.Minute
)

// ErrLocked: the identity has had its allowance of failed attempts in the window; the
// attempt was refused without being looked at.
var ErrLocked = errors.New("lookup: too many failed attempts for this identity")

// LockedError is ErrLocked with when to try again.
type LockedError struct {
	RetryAfter time.Duration
}

func (e *LockedError) Error() string {
	return fmt.Sprintf("%v; retry after %s", ErrLocked, e.RetryAfter.Round(time.Second))
}

// Is makes errors.Is(err, ErrLocked) hold.
func (e *LockedError) Is(target error) bool { return target == ErrLocked }

// AttemptStore keeps failed attempts per identity key, counted in buckets (bucket b is
// the BucketWidth starting at b x BucketWidth since the Unix epoch). Keys are opaque
// (a keyed hash of the ID number, never the number itself). Both methods see only the
// buckets from `from` on; buckets before it are of no further use and the store may drop
// them, as it may drop the whole key after expires.
type AttemptStore interface {
	// FailedAttempts returns key's counts by bucket (none: an empty map).
	FailedAttempts(ctx context.Context, key string, from int64) (map[int64]int, error)
	// AddFailedAttempt adds delta (+1, or -1 to take an attempt back) to the count of
	// key's bucket and returns key's counts by bucket as they are right after the change,
	// atomically with it: two concurrent adds never both see the count before the other.
	AddFailedAttempt(ctx context.Context, key string, bucket int64, delta int, from int64, expires time.Time) (map[int64]int, error)
}

// Limiter limits the failed attempts per ID number: an attempt is counted before it is
// made (so concurrent attempts cannot overrun the limit), and taken back when it turns
// out not to have failed. While the limit is reached, an attempt is refused without being
// made, whatever its details: a right date of birth gets the same refusal, so the
// refusal tells nothing, and the ID number's existence is never a factor (every
// well-formed ID number is counted alike).
type Limiter struct {
	Store AttemptStore
	// Secret keys the hash of the ID numbers (HMAC-SHA256); without one, SHA-256 over a
	// fixed domain prefix.
	Secret []byte
	// Max failed attempts answered in any Window (defaults DefaultMaxFailures and
	// DefaultFailureWindow; Window is rounded up to whole buckets).
	Max    int
	Window time.Duration
	Now    func() time.Time
	// Log, when set, reports a taken-back attempt the store could not take back (the
	// identity then counts one failure too many until it ages out).
	Log *slog.Logger
}

// keyDomain separates these hashes from any other hash of an ID number.
const keyDomain = "vaxpass lookup attempts v1\x00"

// Key is the store key of an ID number: the hex of 16 bytes of its keyed hash, over the
// number as identity.Parse normalizes it (so "0010 9001 2345" and "001090012345" are
// one identity). A number that does not parse is hashed as typed, trimmed.
func (l *Limiter) Key(idNumber string) string {
	n := strings.TrimSpace(idNumber)
	if id, err := identity.Parse(n); err == nil {
		n = id.Number
	}
	var sum []byte
	if len(l.Secret) > 0 {
		m := hmac.New(sha256.New, l.Secret)
		m.Write([]byte(keyDomain + n))
		sum = m.Sum(nil)
	} else {
		s := sha256.Sum256([]byte(keyDomain + n))
		sum = s[:]
	}
	return hex.EncodeToString(sum[:16])
}

// Guard makes attempt for idNumber under the limit. attempt's vaxpass.ErrNotFound is a
// failure and stays counted; success and any other error (the system's, not the
// caller's) are taken back. While locked, attempt is not called and the error is a
// *LockedError.
func (l *Limiter) Guard(ctx context.Context, idNumber string, attempt func(ctx context.Context) error) error {
	key := l.Key(idNumber)
	now := l.now()
	cur, from := l.span(now)
	counts, err := l.Store.FailedAttempts(ctx, key, from)
	if err != nil {
		return fmt.Errorf("lookup: read failed attempts: %w", err)
	}
	// A cheap read first: a locked identity (what an attacker keeps hitting) costs no write.
	if sum(counts, from) >= l.max() {
		return &LockedError{RetryAfter: l.retryAfter(counts, now)}
	}
	expires := bucketStart(cur + 1).Add(l.window())
	counts, err = l.Store.AddFailedAttempt(ctx, key, cur, 1, from, expires)
	if err != nil {
		return fmt.Errorf("lookup: count attempt: %w", err)
	}
	if sum(counts, from) > l.max() {
		// Concurrent attempts took the last ones: this one is refused, and not counted.
		l.takeBack(ctx, key, cur, from, expires)
		counts[cur]--
		return &LockedError{RetryAfter: l.retryAfter(counts, now)}
	}
	err = attempt(ctx)
	if !errors.Is(err, vaxpass.ErrNotFound) {
		l.takeBack(ctx, key, cur, from, expires)
	}
	return err
}

func (l *Limiter) takeBack(ctx context.Context, key string, bucket, from int64, expires time.Time) {
	// Taken back even when the request's context is done: the count must not stay.
	ctx = context.WithoutCancel(ctx)
	if _, err := l.Store.AddFailedAttempt(ctx, key, bucket, -1, from, expires); err != nil && l.Log != nil {
		l.Log.Warn("lookup limit: attempt not taken back", "err", err)
	}
}

// span is the current bucket and the first bucket that overlaps the window ending now.
func (l *Limiter) span(now time.Time) (cur, from int64) {
	cur = BucketOf(now)
	return cur, BucketOf(now.Add(-l.window()))
}

// retryAfter is how long until enough of the counted failures have left the window for
// one more attempt to be made.
func (l *Limiter) retryAfter(counts map[int64]int, now time.Time) time.Duration {
	cur, _ := l.span(now)
	n := int64(l.window() / BucketWidth)
	for next := cur + 1; next <= cur+n+1; next++ {
		if sum(counts, next-n) < l.max() {
			return bucketStart(next).Sub(now)
		}
	}
	return bucketStart(cur + n + 1).Sub(now)
}

func (l *Limiter) max() int {
	if l.Max > 0 {
		return l.Max
	}
	return DefaultMaxFailures
}

// window is Window rounded up to whole buckets.
func (l *Limiter) window() time.Duration {
	w := l.Window
	if w <= 0 {
		w = DefaultFailureWindow
	}
	return (w + BucketWidth - 1) / BucketWidth * BucketWidth
}

func (l *Limiter) now() time.Time {
	if l.Now != nil {
		return l.Now()
	}
	return time.Now()
}

// BucketOf is the bucket of an instant.
func BucketOf(t time.Time) int64 {
	return floorDiv(t.UnixNano(), int64(BucketWidth))
}

func bucketStart(b int64) time.Time { return time.Unix(0, b*int64(BucketWidth)) }

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func sum(counts map[int64]int, from int64) int {
	n := 0
	for b, c := range counts {
		if b >= from && c > 0 {
			n += c
		}
	}
	return n
}

// Limited is the lookup use case under the per-identity limit: Find's failures count
// against the ID number, and while it is locked Find returns a *LockedError without
// looking.
type Limited struct {
	*Service
	Limit *Limiter
}

// Find is Service.Find under the limit. Queries that cannot name an identity (missing
// fields, an ID number that is not one) are refused as Service.Find refuses them and not
// counted: that an ID number is malformed is no secret.
func (s Limited) Find(ctx context.Context, q Query) (vaxpass.Certificate, error) {
	if len(q.Validate()) > 0 {
		return vaxpass.Certificate{}, vaxpass.ErrNotFound
	}
	id, err := identity.Parse(q.IDNumber)
	if err != nil {
		return vaxpass.Certificate{}, vaxpass.ErrNotFound
	}
	var cert vaxpass.Certificate
	err = s.Limit.Guard(ctx, id.Number, func(ctx context.Context) error {
		var err error
		cert, err = s.Service.Find(ctx, q)
		return err
	})
	return cert, err
}
