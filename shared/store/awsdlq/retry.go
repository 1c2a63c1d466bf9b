package awsdlq

import (
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/vaxpass/vaxpass/shared/store/awsretry"
)

// A request whose response is lost can still have been applied, and the SDK then retries
// it (a closed connection, a 5xx; aws-sdk-go-v2 #1825, #2737). For a receive that means
// messages hidden for the visibility timeout that nobody got: a scan that saw such a
// retry cannot claim it saw the whole queue. (A send retried that way is a duplicate,
// which the consumers take; a delete or a visibility change repeated changes nothing.)

// retryWatch records whether one call was retried after an ambiguous failure
// (shared/store/awsretry).
type retryWatch struct{ awsretry.Watch }

// option installs the watch on one call's retryer.
func (w *retryWatch) option(o *sqs.Options) { o.Retryer = w.Wrap(o.Retryer) }
