package awsdlq

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/smithy-go"
)

// A request whose response is lost can still have been applied, and the SDK then retries
// it (a closed connection, a 5xx; aws-sdk-go-v2 #1825, #2737). For a receive that means
// messages hidden for the visibility timeout that nobody got: a scan that saw such a
// retry cannot claim it saw the whole queue. (A send retried that way is a duplicate,
// which the consumers take; a delete or a visibility change repeated changes nothing.)

// retryWatch records whether the calls it is installed on were retried after a failure
// that may have been applied.
type retryWatch struct{ ambiguous atomic.Bool }

// option installs the watch on one call's retryer.
func (w *retryWatch) option(o *sqs.Options) {
	if o.Retryer != nil {
		o.Retryer = &watchedRetryer{Retryer: o.Retryer, watch: w}
	}
}

// watchedRetryer is the client's retryer, reporting ambiguous retries to a watch.
type watchedRetryer struct {
	aws.Retryer
	watch *retryWatch
}

// RetryDelay is asked only when the SDK is about to retry err.
func (r *watchedRetryer) RetryDelay(attempt int, err error) (time.Duration, error) {
	if !definitelyRejected(err) {
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

// definitelyRejected reports an error response by which SQS refused the request before
// applying it (a client fault: throttling, validation). Server faults and lost or
// unreadable responses are ambiguous.
func definitelyRejected(err error) bool {
	var api smithy.APIError
	return errors.As(err, &api) && api.ErrorFault() == smithy.FaultClient
}
