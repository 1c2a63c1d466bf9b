package embedded

import (
	"context"
	"testing"

	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/testkit/storetest"
)

func TestStatCommunes(t *testing.T) {
	db, s := openTestStore(t, t.TempDir())
	defer db.Close()
	storetest.CheckCommuneStats(t, s, "c-")

	// A database counted before the commune rows existed (its ready key is not today's)
	// counts them from the records.
	forgetStats(t, db)
	tl, err := s.StatCommunes(context.Background(), "001")
	if err != nil {
		t.Fatal(err)
	}
	if !statsReady(t, db) {
		t.Error("the recount was not recorded")
	}
	want := map[string]map[match.Status]int64{"001/9910001": {match.Verified: 1}, "001/9910002": {match.Pending: 2}}
	for id, w := range want {
		r := tl.Communes[id]
		if r == nil || len(r.Doses) != len(w) {
			t.Errorf("recounted %s: %+v, want %v", id, r, w)
			continue
		}
		for st, n := range w {
			if r.Doses[st] != n {
				t.Errorf("recounted %s %s: %d, want %d", id, st, r.Doses[st], n)
			}
		}
	}
	if len(tl.Communes) != len(want) {
		t.Errorf("recounted communes of 001: %d rows, want %d", len(tl.Communes), len(want))
	}
	storetest.CheckCommuneStats(t, s, "d-")
}
