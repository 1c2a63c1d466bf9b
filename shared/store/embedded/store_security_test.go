package embedded_test

import (
	"context"
	"testing"

	"github.com/vaxpass/vaxpass/shared/store/embedded"
)

func TestSecurityEvents(t *testing.T) {
	dir := t.TempDir()
	db, err := embedded.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	s, err := embedded.OpenSecurityEvents(db)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.AddSecurityEvents(ctx, "2022-03-01", map[string]int64{"auth_failed": 2, "rate_limited": 5}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddSecurityEvents(ctx, "2022-03-02", map[string]int64{"auth_failed": 1}); err != nil {
		t.Fatal(err)
	}
	// The counts outlive the process.
	db.Close()
	if db, err = embedded.Open(dir); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if s, err = embedded.OpenSecurityEvents(db); err != nil {
		t.Fatal(err)
	}
	today, total, err := s.SecurityCounts(ctx, "2022-03-02")
	if err != nil {
		t.Fatal(err)
	}
	if len(today) != 1 || today["auth_failed"] != 1 || len(total) != 2 || total["auth_failed"] != 3 || total["rate_limited"] != 5 {
		t.Fatalf("today %v, total %v", today, total)
	}
	if today, _, err := s.SecurityCounts(ctx, "2022-03-03"); err != nil || len(today) != 0 {
		t.Fatalf("a day without events: %v %v", today, err)
	}
}
