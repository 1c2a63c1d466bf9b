package embedded_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/stage/audit"
	"github.com/vaxpass/vaxpass/shared/store/embedded"
)

func openAudit(t *testing.T, now func() time.Time) *embedded.AuditLog {
	t.Helper()
	db, err := embedded.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	log, err := embedded.OpenAuditLog(db, now)
	if err != nil {
		t.Fatal(err)
	}
	return log
}

func TestAuditLogAppendQueryPage(t *testing.T) {
	t0 := time.Date(2025, 5, 1, 0, 0, 0, 0, time.UTC)
	log := openAudit(t, func() time.Time { return t0 })
	ctx := context.Background()
	actions := []string{audit.ActionCorrection, audit.ActionRevocation, audit.ActionRenewal}
	for i := range 30 {
		e := audit.Entry{At: t0.Add(time.Duration(i) * time.Hour), Actor: fmt.Sprintf("ops-%d", i%2), Action: actions[i%3],
			UVCIs: []string{fmt.Sprintf("U%d", i)}}
		if err := log.Append(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	// Two entries at the same instant keep their order (the sequence breaks the tie),
	// and At defaults to the clock.
	for _, id := range []string{"same-1", "same-2"} {
		if err := log.Append(ctx, audit.Entry{Actor: "x", Action: "tie", UVCIs: []string{id}}); err != nil {
			t.Fatal(err)
		}
	}

	collect := func(q audit.Query) []string {
		var ids []string
		if err := audit.All(ctx, log, q, func(e audit.Entry) error {
			ids = append(ids, e.UVCIs[0])
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return ids
	}
	tests := []struct {
		name  string
		q     audit.Query
		first string
		n     int
	}{
		{"all", audit.Query{Limit: 7}, "U0", 32},
		{"range", audit.Query{From: t0.Add(10 * time.Hour), To: t0.Add(20 * time.Hour), Limit: 3}, "U10", 10},
		{"action", audit.Query{Action: audit.ActionRevocation, Limit: 2}, "U1", 10},
		{"actor and action", audit.Query{Action: audit.ActionCorrection, Actor: "ops-1", Limit: 100}, "U3", 5},
		{"tie", audit.Query{Action: "tie", Limit: 1}, "same-1", 2},
		{"none", audit.Query{Action: "nothing", Limit: 5}, "", 0},
	}
	for _, tc := range tests {
		ids := collect(tc.q)
		if len(ids) != tc.n || (tc.n > 0 && ids[0] != tc.first) {
			t.Errorf("%s: %d entries starting %v, want %d starting %s", tc.name, len(ids), ids, tc.n, tc.first)
		}
		seen := map[string]bool{}
		for _, id := range ids {
			if seen[id] {
				t.Errorf("%s: %s twice (paging repeats)", tc.name, id)
			}
			seen[id] = true
		}
	}
	// A page that exactly ends the matches says there is no next page.
	page, next, err := log.Entries(ctx, audit.Query{Action: "tie", Limit: 2})
	if err != nil || len(page) != 2 || next != "" {
		t.Errorf("exact page: %d entries, next %q, %v", len(page), next, err)
	}
	if page[0].ID >= page[1].ID || page[0].ID == "" {
		t.Errorf("IDs %q %q not increasing", page[0].ID, page[1].ID)
	}
}

func TestAuditLogRefusesInvalid(t *testing.T) {
	log := openAudit(t, time.Now)
	ctx := context.Background()
	if err := log.Append(ctx, audit.Entry{Actor: "", Action: "x"}); !errors.Is(err, audit.ErrInvalid) {
		t.Errorf("Append without actor = %v", err)
	}
	if _, _, err := log.Entries(ctx, audit.Query{Limit: 0}); !errors.Is(err, audit.ErrInvalid) {
		t.Errorf("Entries limit 0 = %v", err)
	}
	if _, _, err := log.Entries(ctx, audit.Query{Limit: 1, After: "zz"}); !errors.Is(err, audit.ErrInvalid) {
		t.Errorf("Entries with a bad cursor = %v", err)
	}
	page, _, err := log.Entries(ctx, audit.Query{Limit: 10})
	if err != nil || len(page) != 0 {
		t.Errorf("refused entries were stored: %v %v", page, err)
	}
}
