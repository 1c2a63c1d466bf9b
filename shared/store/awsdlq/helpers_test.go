package awsdlq_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"

	"github.com/vaxpass/vaxpass/shared/store/awsdlq"
	"github.com/vaxpass/vaxpass/shared/testkit/awstest"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// Lost responses. The emulator, like AWS now and then (aws-sdk-go-v2 #1825, #2737), may
// lose the response of a request it applied (about 1 in 300 here), and the SDK retries
// it: a send is then doubled, a receive hides messages nobody got. The package takes that
// as SQS's at-least-once delivery (ListDead and Redrive by ID answer ErrUnavailable when
// a receive was retried so). The tests count exactly, so they watch the SDK's retries:
// setup that was retried so is done again, and a count a retried send may raise is
// checked as "at least, and only then more".

// testVisibility is the dead letters' visibility timeout in the tests: short, so that
// messages hidden by a lost receive come back soon.
const testVisibility = 5 * time.Second

// sendWatch flags sends the SDK retried after a failure that may have been applied.
type sendWatch struct{ dup atomic.Bool }

func (w *sendWatch) option(o *sqs.Options) {
	if o.Retryer != nil {
		o.Retryer = &flaggingRetryer{Retryer: o.Retryer, flag: &w.dup}
	}
}

type flaggingRetryer struct {
	aws.Retryer
	flag *atomic.Bool
}

func (r *flaggingRetryer) RetryDelay(attempt int, err error) (time.Duration, error) {
	var api smithy.APIError
	if !errors.As(err, &api) || api.ErrorFault() != smithy.FaultClient {
		r.flag.Store(true)
	}
	return r.Retryer.RetryDelay(attempt, err)
}

func (r *flaggingRetryer) GetAttemptToken(ctx context.Context) (func(error) error, error) {
	if v2, ok := r.Retryer.(aws.RetryerV2); ok {
		return v2.GetAttemptToken(ctx)
	}
	return r.Retryer.GetInitialToken(), nil
}

// watchedSQS is the SQS client with its sends watched (it serves awsdlq and awssqs).
type watchedSQS struct {
	*sqs.Client
	sends sendWatch
}

func (w *watchedSQS) SendMessage(ctx context.Context, in *sqs.SendMessageInput, opts ...func(*sqs.Options)) (*sqs.SendMessageOutput, error) {
	return w.Client.SendMessage(ctx, in, append(opts, w.sends.option)...)
}

func (w *watchedSQS) SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, opts ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	return w.Client.SendMessageBatch(ctx, in, append(opts, w.sends.option)...)
}

// doubled reports (and forgets) a send that may have been doubled since the last call.
func (w *watchedSQS) doubled() bool { return w.sends.dup.Swap(false) }

// unusedDoses fails the test if the central queue's dead letters touch the doses.
type unusedDoses struct{ t *testing.T }

func (u unusedDoses) GetDose(context.Context, vaxpass.DoseKey) (vaxpass.Dose, error) {
	u.t.Error("GetDose called by a central dead-letter operation")
	return vaxpass.Dose{}, vaxpass.ErrNotFound
}

func (u unusedDoses) UpdateDose(context.Context, vaxpass.Dose) error {
	u.t.Error("UpdateDose called by a central dead-letter operation")
	return nil
}

// retryLost runs op again, after the visibility timeout, while it answers ErrUnavailable
// (a receive whose response was lost), as ops would.
func retryLost(t *testing.T, what string, op func() error) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		err := op()
		if !errors.Is(err, vaxpass.ErrUnavailable) {
			return
		}
		if attempt == 3 {
			t.Fatalf("%s: %v, %d times", what, err, attempt)
		}
		t.Logf("%s: %v; again after %v", what, err, testVisibility)
		time.Sleep(testVisibility)
	}
}

func list(t *testing.T, dl *awsdlq.DeadLetters, queue, after string, limit int) []vaxpass.DeadLetter {
	t.Helper()
	var ls []vaxpass.DeadLetter
	var err error
	retryLost(t, "ListDead", func() error { ls, err = dl.ListDead(t.Context(), queue, after, limit); return err })
	if err != nil {
		t.Fatalf("ListDead(%s, %q, %d): %v", queue, after, limit, err)
	}
	return ls
}

// redrive is Redrive, tried again when it answers ErrUnavailable (nothing moved then).
func redrive(t *testing.T, dl *awsdlq.DeadLetters, queue string, ids []string) (moved, failed int, err error) {
	t.Helper()
	retryLost(t, "Redrive", func() error { moved, failed, err = dl.Redrive(t.Context(), queue, ids); return err })
	return moved, failed, err
}

func letterIDs(ls []vaxpass.DeadLetter) []string {
	ids := make([]string, len(ls))
	for i, l := range ls {
		ids[i] = l.ID
	}
	return ids
}

func queueARN(t *testing.T, client *sqs.Client, url string) string {
	t.Helper()
	out, err := client.GetQueueAttributes(t.Context(), &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(url), AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn},
	})
	if err != nil {
		t.Fatal(err)
	}
	return out.Attributes[string(sqstypes.QueueAttributeNameQueueArn)]
}

// depth is the number of messages of a queue, visible and hidden.
func depth(t *testing.T, client *sqs.Client, url string) int {
	t.Helper()
	out, err := client.GetQueueAttributes(t.Context(), &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(url), AttributeNames: []sqstypes.QueueAttributeName{
			sqstypes.QueueAttributeNameApproximateNumberOfMessages, sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	var visible, hidden int
	fmt.Sscan(out.Attributes[string(sqstypes.QueueAttributeNameApproximateNumberOfMessages)], &visible)
	fmt.Sscan(out.Attributes[string(sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible)], &hidden)
	return visible + hidden
}

// drain receives and deletes every message of a queue, hidden ones too (it waits for
// them), and returns them.
func drain(t *testing.T, client *sqs.Client, url string) []sqstypes.Message {
	t.Helper()
	var got []sqstypes.Message
	deadline := time.Now().Add(3 * testVisibility)
	for depth(t, client, url) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d messages still in the queue after %v", depth(t, client, url), 3*testVisibility)
		}
		out, err := client.ReceiveMessage(t.Context(), &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(url), MaxNumberOfMessages: 10, WaitTimeSeconds: 1, VisibilityTimeout: int32(testVisibility / time.Second),
			MessageAttributeNames: []string{"All"},
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range out.Messages {
			if _, err := client.DeleteMessage(t.Context(), &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle}); err != nil {
				t.Fatal(err)
			}
			got = append(got, m)
		}
	}
	return got
}

// newQueue is awstest.Queue.
func newQueue(t *testing.T, client *sqs.Client, attrs map[string]string) string {
	t.Helper()
	return awstest.Queue(t, client, attrs)
}
