package awsddb

import (
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/vaxpass/vaxpass/shared/store/awsretry"
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

// retryWatch records whether one call was retried after an ambiguous failure
// (shared/store/awsretry).
type retryWatch struct{ awsretry.Watch }

// option installs the watch on one call's retryer.
func (w *retryWatch) option(o *dynamodb.Options) { o.Retryer = w.Wrap(o.Retryer) }

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
