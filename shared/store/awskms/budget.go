package awskms

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Budget paces KMS calls: Wait returns when the caller may make one call (or ctx is
// done). Signers given the same Budget share its rate: give bulk jobs (renewal, ops
// re-signing) one sized below the account's KMS quota, so interactive issuance keeps the
// headroom.
type Budget interface {
	Wait(ctx context.Context) error
}

// TokenBucket is a Budget of rate calls per second with bursts of up to burst calls. Wait
// reserves a token and sleeps until it is due; a canceled wait gives its token back. It is
// safe for concurrent use.
type TokenBucket struct {
	rate  float64
	burst float64
	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) error

	mu     sync.Mutex
	tokens float64
	last   time.Time
}

// ErrBudget reports a token bucket configured with a rate or burst below 1 (per second).
var ErrBudget = errors.New("awskms: rate budget")

// NewTokenBucket returns a full bucket of burst tokens refilled at perSecond.
func NewTokenBucket(perSecond float64, burst int) (*TokenBucket, error) {
	if !(perSecond > 0) || burst < 1 {
		return nil, fmt.Errorf("%w: rate %v/s and burst %d must be positive", ErrBudget, perSecond, burst)
	}
	return &TokenBucket{rate: perSecond, burst: float64(burst), tokens: float64(burst), now: time.Now, sleep: sleepCtx}, nil
}

// Wait implements Budget.
func (b *TokenBucket) Wait(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	now := b.now()
	if !b.last.IsZero() {
		if elapsed := now.Sub(b.last).Seconds(); elapsed > 0 {
			b.tokens = min(b.burst, b.tokens+elapsed*b.rate)
		}
	}
	b.last = now
	b.tokens-- // reserved: later callers queue behind it
	wait := time.Duration(-b.tokens / b.rate * float64(time.Second))
	b.mu.Unlock()
	if wait <= 0 {
		return nil
	}
	if err := b.sleep(ctx, wait); err != nil {
		b.mu.Lock()
		b.tokens++ // not used: give it back
		b.mu.Unlock()
		return err
	}
	return nil
}

// sleepCtx sleeps for d or until ctx is done.
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
