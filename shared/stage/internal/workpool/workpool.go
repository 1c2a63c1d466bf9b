// Package workpool works a list of items with a bounded number of goroutines, the first
// failure stopping the rest: the shape of a run's slices, parts and batches worked in one
// process (renewal, reprocessing).
package workpool

import (
	"context"
	"sync"
)

// Each calls fn for every item, at most workers at once (at least one). The first error fn
// returns is Each's: the context the other calls got is cancelled then and no item is
// started after it. Without a failure Each returns ctx's error, if any (items not
// started because ctx ended).
func Each[T any](ctx context.Context, workers int, items []T, fn func(ctx context.Context, item T) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan T)
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	for range min(max(workers, 1), len(items)) {
		wg.Go(func() {
			for item := range next {
				if err := fn(ctx, item); err != nil {
					once.Do(func() { first = err; cancel() })
				}
			}
		})
	}
feed:
	for _, item := range items {
		select {
		case next <- item:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if first != nil {
		return first
	}
	return ctx.Err()
}
