package stats

import (
	"context"
	"fmt"
	"time"

	"github.com/vaxpass/vaxpass/shared/stage/security"
)

// SecurityCounters are the security events' counts (security.Recorder's store).
type SecurityCounters interface {
	// SecurityCounts returns the counts by kind of day ("2006-01-02", Vietnam time) and
	// in all.
	SecurityCounts(ctx context.Context, day string) (today, total map[string]int64, err error)
}

// SecurityCount is one kind's count of security events: today (Vietnam day) and since
// the counts began.
type SecurityCount struct {
	Today int64 `json:"today"`
	Total int64 `json:"total"`
}

// securityOf reads the counts of every kind (zeros included, so the dashboard lists
// them all).
func securityOf(ctx context.Context, c SecurityCounters, now time.Time) (map[string]SecurityCount, error) {
	today, total, err := c.SecurityCounts(ctx, security.DayOf(now))
	if err != nil {
		return nil, fmt.Errorf("stats: read security events: %w", err)
	}
	out := make(map[string]SecurityCount, len(security.Kinds))
	for _, k := range security.Kinds {
		out[k] = SecurityCount{Today: today[k], Total: total[k]}
	}
	return out, nil
}
