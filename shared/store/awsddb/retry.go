package awsddb

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
)

// A conditional write whose response is lost can still have been applied: the SDK then
// retries it (a closed connection or a 5xx is retryable; aws-sdk-go-v2 #1825, #2737), and
// the retry fails its condition against the first attempt's own result. Transactions are
// safe (the SDK sends the same ClientRequestToken again, and DynamoDB answers a repeat
// with the first outcome); single-item conditional PutItems are not. For those the store
// watches its own call: ambiguous is set when the SDK retried after a failure that may
// have been applied, and only then is a failed condition checked against the item the
// write put (ownWrite). A clean failed condition on the first attempt stays what it is,
// even for an identical item: a re-sent dose is a duplicate.

// retryWatch records whether one call was retried after an ambiguous failure.
type retryWatch struct{ ambiguous atomic.Bool }

// option installs the watch on one call's retryer.
func (w *retryWatch) option(o *dynamodb.Options) {
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

// definitelyRejected reports an error response by which DynamoDB refused the request
// before applying it: a client-fault error (throttling, validation). Server faults,
// lost or unreadable responses are ambiguous.
func definitelyRejected(err error) bool {
	var api smithy.APIError
	return errors.As(err, &api) && api.ErrorFault() == smithy.FaultClient
}

// ownWrite reports whether the item stored (returned with a failed condition) is exactly
// the item the write put.
func ownWrite(stored, written map[string]types.AttributeValue) bool {
	if len(stored) != len(written) {
		return false
	}
	for k, w := range written {
		switch w := w.(type) {
		case *types.AttributeValueMemberS:
			if s, ok := stored[k].(*types.AttributeValueMemberS); !ok || s.Value != w.Value {
				return false
			}
		case *types.AttributeValueMemberN:
			if s, ok := stored[k].(*types.AttributeValueMemberN); !ok || s.Value != w.Value {
				return false
			}
		default:
			return false
		}
	}
	return true
}
