package renewal

import (
	"context"
	"time"
)

// SetSleep replaces a bucket's sleep (tests drive a fake clock with it).
func SetSleep(b *TokenBucket, sleep func(ctx context.Context, d time.Duration) error) {
	b.sleep = sleep
}
