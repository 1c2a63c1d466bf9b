package awsops_test

import (
	"context"
	"testing"
)

func TestSecurityEvents(t *testing.T) {
	st, _ := open(t)
	ctx := context.Background()
	if err := st.AddSecurityEvents(ctx, "2022-03-01", map[string]int64{"auth_failed": 2, "rate_limited": 5}); err != nil {
		t.Fatal(err)
	}
	if err := st.AddSecurityEvents(ctx, "2022-03-02", map[string]int64{"auth_failed": 1}); err != nil {
		t.Fatal(err)
	}
	today, total, err := st.SecurityCounts(ctx, "2022-03-02")
	if err != nil {
		t.Fatal(err)
	}
	if len(today) != 1 || today["auth_failed"] != 1 || total["auth_failed"] != 3 || total["rate_limited"] != 5 {
		t.Fatalf("today %v, total %v", today, total)
	}
	if today, _, err := st.SecurityCounts(ctx, "2022-03-03"); err != nil || len(today) != 0 {
		t.Fatalf("a day without events: %v %v", today, err)
	}
}
