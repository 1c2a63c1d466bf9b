// Package awsretry tells an adapter whether the AWS SDK retried one of its calls after a
// failure that may have been applied. A request whose response is lost can still have
// taken effect, and the SDK then retries it (a closed connection, a 5xx; aws-sdk-go-v2
// #1825, #2737): a retried conditional write then fails its condition against its own first
// attempt (awsddb), a retried receive hides messages nobody got (awsdlq). The adapter
// installs a Watch on the call and, when it reports Ambiguous, checks what really happened.
package awsretry

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/smithy-go"
)

// Watch records whether the calls whose retryer it wraps were retried after a failure
// that may have been applied. The zero value is ready; it is safe for concurrent use.
type Watch struct{ ambiguous atomic.Bool }

// Ambiguous reports such a retry.
func (w *Watch) Ambiguous() bool { return w.ambiguous.Load() }

// Wrap returns the client's retryer reporting to w (nil stays nil: no retries).
func (w *Watch) Wrap(r aws.Retryer) aws.Retryer {
	if r == nil {
		return nil
	}
	return &watchedRetryer{Retryer: r, watch: w}
}

type watchedRetryer struct {
	aws.Retryer
	watch *Watch
}

// RetryDelay is asked only when the SDK is about to retry err.
func (r *watchedRetryer) RetryDelay(attempt int, err error) (time.Duration, error) {
	if !DefinitelyRejected(err) {
		r.watch.ambiguous.Store(true)
	}
	return r.Retryer.RetryDelay(attempt, err)
}

// GetAttemptToken keeps the RetryerV2 behaviour of the wrapped retryer.
func (r *watchedRetryer) GetAttemptToken(ctx context.Context) (func(error) error, error) {
	if v2, ok := r.Retryer.(aws.RetryerV2); ok {
		return v2.GetAttemptToken(ctx)
	}
	return r.Retryer.GetInitialToken(), nil
}

// DefinitelyRejected reports an error response by which the service refused the request
// before applying it (a client fault: throttling, validation). Server faults and lost or
// unreadable responses are ambiguous.
func DefinitelyRejected(err error) bool {
	var api smithy.APIError
	return errors.As(err, &api) && api.ErrorFault() == smithy.FaultClient
}
