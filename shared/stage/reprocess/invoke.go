package reprocess

import (
	"context"
	"time"
)

// InvokeMargin is how long before its deadline an invocation stops taking new batches, so
// that it returns its summary (and the run its state) before Lambda ends it.
const InvokeMargin = 30 * time.Second

// HandleInvoke is the ops Lambda's entry point (direct invoke with a JSON Selector, e.g.
// {"stage":"match","status":["NOT_FOUND"],"reason":"registry update 2022-07"}). It runs
// or resumes the run until it is finished or the invocation's time is nearly up; then the
// summary says done=false and the caller invokes again with {"run_id": summary.run_id}
// (or the same selector: an unfinished run of the same stage and filter is resumed).
func (s *Service) HandleInvoke(ctx context.Context, sel Selector) (Summary, error) {
	if sel.Actor == "" {
		sel.Actor = "lambda:ops"
	}
	return s.Run(ctx, sel, Options{StopBefore: InvokeMargin})
}
