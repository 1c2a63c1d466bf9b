package apigw

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// ErrInvalidRateLimit marks a rate-limit configuration that cannot work.
var ErrInvalidRateLimit = errors.New("invalid rate limit")

// RateLimit configures a [Limiter]: each client key owns a token bucket of Burst tokens that
// refills at Rate tokens per second; a request spends one token.
type RateLimit struct {
	Rate  float64 // tokens per second, > 0 (e.g. 10.0/60 for 10 a minute)
	Burst int     // bucket size, >= 1
	// MaxKeys bounds memory: past it the least recently seen client's bucket is dropped
	// (that client starts again with a full bucket). >= 1.
	MaxKeys int
}

// Limiter is a token-bucket rate limiter per client key with bounded memory. Buckets that
// have refilled completely are forgotten (a full bucket is the same as none), and the least
// recently used bucket goes when MaxKeys is reached. Safe for concurrent use.
//
// The bucket is kept in its GCRA form (one "theoretical arrival time" per key, integer
// arithmetic), which is exactly a token bucket without floating-point drift.
//
// In AWS each Lambda instance holds its own Limiter, so the effective limit there is per
// instance; a global limit belongs to API Gateway throttling or a WAF rate rule.
type Limiter struct {
	interval  time.Duration // time for one token to come back: 1/Rate
	tolerance time.Duration // interval × (Burst-1): how far ahead of now a key may run
	maxKeys   int
	now       func() time.Time

	// Events, when set (before use), is told every refused request: kind
	// "rate_limited" and the request's route key, never the client's address.
	Events interface {
		SecurityEvent(ctx context.Context, kind, route string)
	}

	mu      sync.Mutex
	lru     *list.List // of *bucket; front: most recently used
	buckets map[string]*list.Element
}

type bucket struct {
	key string
	tat time.Time // when the bucket will be full again; at or before now: full
}

// NewLimiter checks cfg and returns a Limiter reading time from now (nil: time.Now).
func NewLimiter(cfg RateLimit, now func() time.Time) (*Limiter, error) {
	switch {
	case !(cfg.Rate > 0) || math.IsInf(cfg.Rate, 0) || cfg.Rate > 1e9:
		return nil, fmt.Errorf("%w: Rate must be a positive number of tokens per second, at most 1e9", ErrInvalidRateLimit)
	case cfg.Burst < 1:
		return nil, fmt.Errorf("%w: Burst must be at least 1", ErrInvalidRateLimit)
	case cfg.MaxKeys < 1:
		return nil, fmt.Errorf("%w: MaxKeys must be at least 1", ErrInvalidRateLimit)
	}
	if now == nil {
		now = time.Now
	}
	interval := time.Duration(math.Round(float64(time.Second) / cfg.Rate))
	return &Limiter{
		interval:  interval,
		tolerance: interval * time.Duration(cfg.Burst-1),
		maxKeys:   cfg.MaxKeys,
		now:       now,
		lru:       list.New(),
		buckets:   map[string]*list.Element{},
	}, nil
}

// Allow spends one token of key's bucket. When the bucket is empty it reports false and how
// long until a token is back.
func (l *Limiter) Allow(key string) (ok bool, retryAfter time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.forgetIdle(now, 2)

	el, found := l.buckets[key]
	if !found {
		if l.lru.Len() >= l.maxKeys {
			l.remove(l.lru.Back())
		}
		el = l.lru.PushFront(&bucket{key: key, tat: now})
		l.buckets[key] = el
	} else {
		l.lru.MoveToFront(el)
	}
	b := el.Value.(*bucket)
	tat := b.tat
	if tat.Before(now) {
		tat = now
	}
	if ahead := tat.Sub(now); ahead > l.tolerance {
		return false, ahead - l.tolerance
	}
	b.tat = tat.Add(l.interval)
	return true, 0
}

// Len is the number of client buckets held.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lru.Len()
}

// forgetIdle drops up to n least recently used buckets that have refilled completely: cheap
// steady cleanup instead of a sweeper goroutine.
func (l *Limiter) forgetIdle(now time.Time, n int) {
	for i := 0; i < n; i++ {
		el := l.lru.Back()
		if el == nil || el.Value.(*bucket).tat.After(now) {
			return
		}
		l.remove(el)
	}
}

func (l *Limiter) remove(el *list.Element) {
	delete(l.buckets, el.Value.(*bucket).key)
	l.lru.Remove(el)
}

// ClientKey identifies the caller for rate limiting: the source IP API Gateway saw (never a
// client-supplied X-Forwarded-For). An IPv6 client is keyed by its /64, the block one
// subscriber gets, so hopping addresses inside it does not reset the limit.
func ClientKey(req events.APIGatewayV2HTTPRequest) string {
	addr, err := netip.ParseAddr(req.RequestContext.HTTP.SourceIP)
	if err != nil {
		return "ip:unknown"
	}
	addr = addr.Unmap()
	if addr.Is4() {
		return "ip:" + addr.String()
	}
	return "ip:" + netip.PrefixFrom(addr.WithZone(""), 64).Masked().String()
}

// RateLimited guards h with l: a request whose key (key(req); nil means ClientKey) has no
// token left gets the contract's 429 with Retry-After, and h is not called.
func RateLimited(l *Limiter, key func(events.APIGatewayV2HTTPRequest) string, h Handler) Handler {
	if key == nil {
		key = ClientKey
	}
	return func(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		if ok, wait := l.Allow(key(req)); !ok {
			if l.Events != nil {
				l.Events.SecurityEvent(ctx, "rate_limited", req.RouteKey)
			}
			return TooManyRequests(wait), nil
		}
		return h(ctx, req)
	}
}
