package awsops_test

import (
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// SwapRun replaces a run's state only from the state it names: of writers racing from
// one state, one wins; a SaveRun in between makes the swap fail; a swap is followed by
// SaveRuns that see it.
func TestSwapRun(t *testing.T) {
	st, _ := open(t)
	ctx := t.Context()
	if err := st.SwapRun(ctx, "rp-none", []byte(`{}`), []byte(`{"a":1}`)); !errors.Is(err, vaxpass.ErrConflict) {
		t.Fatalf("swap of no run: %v, want ErrConflict", err)
	}
	if err := st.SaveRun(ctx, "rp-1", []byte(`{"n":0}`), nil); err != nil {
		t.Fatal(err)
	}
	if err := st.SwapRun(ctx, "rp-1", []byte(`{"n":9}`), []byte(`{"n":1}`)); !errors.Is(err, vaxpass.ErrConflict) {
		t.Fatalf("swap from a state not stored: %v, want ErrConflict", err)
	}
	var wins atomic.Int64
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			err := st.SwapRun(ctx, "rp-1", []byte(`{"n":0}`), []byte(`{"n":1,"w":`+string(rune('0'+i))+`}`))
			switch {
			case err == nil:
				wins.Add(1)
			case !errors.Is(err, vaxpass.ErrConflict):
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d of 4 racing swaps won, want 1", wins.Load())
	}
	doc, err := st.LoadRun(ctx, "rp-1")
	if err != nil || !strings.HasPrefix(string(doc), `{"n":1,"w":`) {
		t.Fatalf("after the race: %s %v", doc, err)
	}
	// A save after the swap (this process's cached version is stale) still lands, with
	// its changes.
	if err := st.SaveRun(ctx, "rp-1", []byte(`{"n":2}`), map[string]string{"f/a": "verified"}); err != nil {
		t.Fatal(err)
	}
	if err := st.SwapRun(ctx, "rp-1", doc, []byte(`{"n":3}`)); !errors.Is(err, vaxpass.ErrConflict) {
		t.Fatalf("swap from a replaced state: %v", err)
	}
	if err := st.SwapRun(ctx, "rp-1", []byte(`{"n":2}`), []byte(`{"n":3}`)); err != nil {
		t.Fatal(err)
	}
	if err := st.SaveRun(ctx, "rp-1", []byte(`{"n":4}`), nil); err != nil {
		t.Fatal(err)
	}
	if doc, err := st.LoadRun(ctx, "rp-1"); err != nil || string(doc) != `{"n":4}` {
		t.Fatalf("final state %s %v", doc, err)
	}
	if ids, outs, err := st.RunChanges(ctx, "rp-1", "", 10); err != nil || len(ids) != 1 || outs[0] != "verified" {
		t.Fatalf("changes %v %v %v", ids, outs, err)
	}
	big := []byte(strings.Repeat("x", 400_000))
	if err := st.SwapRun(ctx, "rp-1", []byte(`{"n":4}`), big); !errors.Is(err, vaxpass.ErrInvalid) {
		t.Fatalf("swap to a state larger than an item: %v", err)
	}
}
