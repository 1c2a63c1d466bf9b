package renewal

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Budget paces signing: Wait returns when one more signature may be made (or ctx ends).
// Bulk renewal draws on the account's KMS signing quota, which interactive issuance
// shares, so it runs below a set rate.
type Budget interface {
	Wait(ctx context.Context) error
}

// TokenBucket is a Budget of Rate signatures per second with bursts of up to Burst.
type TokenBucket struct {
	rate  float64
	burst float64
	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) error

	mu     sync.Mutex
	tokens float64
	last   time.Time
}

// NewTokenBucket returns a full bucket; rate must be positive, burst at least 1. now nil
// means time.Now.
func NewTokenBucket(rate float64, burst int, now func() time.Time) (*TokenBucket, error) {
	if !(rate > 0) || burst < 1 {
		return nil, fmt.Errorf("token bucket: rate %v must be > 0 and burst %d >= 1", rate, burst)
	}
	if now == nil {
		now = time.Now
	}
	return &TokenBucket{rate: rate, burst: float64(burst), now: now, sleep: sleepCtx, tokens: float64(burst), last: now()}, nil
}

// Wait implements Budget.
func (b *TokenBucket) Wait(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for {
		b.mu.Lock()
		now := b.now()
		if el := now.Sub(b.last).Seconds(); el > 0 {
			b.tokens = min(b.burst, b.tokens+el*b.rate)
			b.last = now
		}
		if b.tokens >= 1 {
			b.tokens--
			b.mu.Unlock()
			return nil
		}
		need := time.Duration((1 - b.tokens) / b.rate * float64(time.Second))
		b.mu.Unlock()
		if err := b.sleep(ctx, max(need, time.Millisecond)); err != nil {
			return err
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
