package workpool

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
)

func TestEachWorksEveryItemWithinTheBound(t *testing.T) {
	items := make([]int, 100)
	for i := range items {
		items[i] = i
	}
	var mu sync.Mutex
	seen := map[int]int{}
	var running, most, together atomic.Int32
	gate, started := make(chan struct{}), make(chan struct{}, 3)
	err := Each(t.Context(), 4, items, func(_ context.Context, i int) error {
		n := running.Add(1)
		defer running.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		switch {
		case i < 3: // the first three wait for the fourth: four run at once
			started <- struct{}{}
			<-gate
		case i == 3:
			for range 3 {
				<-started
			}
			together.Store(running.Load())
			close(gate)
		}
		mu.Lock()
		seen[i]++
		mu.Unlock()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != 100 || together.Load() != 4 || most.Load() != 4 {
		t.Fatalf("%d items worked, %d at once at the gate, at most %d; want 100, 4 and 4", len(seen), together.Load(), most.Load())
	}
	for i, n := range seen {
		if n != 1 {
			t.Fatalf("item %d worked %d times", i, n)
		}
	}
}

func TestEachStopsAtTheFirstFailure(t *testing.T) {
	boom := errors.New("boom")
	var started atomic.Int32
	items := make([]int, 1000)
	for i := range items {
		items[i] = i
	}
	err := Each(t.Context(), 2, items, func(ctx context.Context, i int) error {
		started.Add(1)
		if i == 5 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err %v, want the failure", err)
	}
	if n := started.Load(); n >= 1000 {
		t.Errorf("all %d items started after a failure", n)
	}
}

func TestEachReportsTheContextsEnd(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := Each(ctx, 2, []int{1, 2, 3}, func(context.Context, int) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
	if err := Each(t.Context(), 2, []int(nil), func(context.Context, int) error { return errors.New("called") }); err != nil {
		t.Fatalf("no items: %v", err)
	}
}
