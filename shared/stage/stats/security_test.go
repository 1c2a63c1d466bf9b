package stats

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/stage/security"
)

type secCounts struct {
	day          string
	today, total map[string]int64
	err          error
}

func (s *secCounts) SecurityCounts(_ context.Context, day string) (map[string]int64, map[string]int64, error) {
	s.day = day
	return s.today, s.total, s.err
}

// The snapshot carries every kind's count today (the Vietnam day) and in all.
func TestSnapshotSecurity(t *testing.T) {
	sc := &secCounts{today: map[string]int64{security.AuthFailed: 2}, total: map[string]int64{security.AuthFailed: 7, security.IdentityLocked: 1}}
	now := time.Date(2022, 3, 1, 18, 0, 0, 0, time.UTC) // 01:00 on the 2nd in Vietnam
	svc := &Service{Counters: newFakeStore(), Now: func() time.Time { return now }, Security: sc}
	snap, err := svc.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if sc.day != "2022-03-02" {
		t.Fatalf("read day %s", sc.day)
	}
	if len(snap.Security) != len(security.Kinds) || snap.Security[security.AuthFailed] != (SecurityCount{Today: 2, Total: 7}) ||
		snap.Security[security.IdentityLocked] != (SecurityCount{Today: 0, Total: 1}) {
		t.Fatalf("security %v", snap.Security)
	}
	b, _ := json.Marshal(snap)
	if !strings.Contains(string(b), `"security":{`) || !strings.Contains(string(b), `"auth_failed":{"today":2,"total":7}`) {
		t.Fatalf("JSON %s", b)
	}
	// Without the port, no security object; a failed read fails the snapshot.
	svc.Security = nil
	if snap, _ := svc.Snapshot(context.Background()); snap.Security != nil {
		t.Fatal("security without a port")
	}
	svc.Security = &secCounts{err: errors.New("down")}
	if _, err := svc.Snapshot(context.Background()); err == nil {
		t.Fatal("no error from a failed read")
	}
}
