// Package awssqs is the SQS adapter: the central signing queue (signing.CentralQueue)
// and a small message sender for the jobs that feed queues (renewal, ops redrives).
//
// The queues are standard queues, not FIFO: MessageDeduplicationId and MessageGroupId
// only exist for FIFO queues, whose throughput (300 messages/s per group without batching,
// 3,000 with high-throughput mode and groups) and exactly-once window (5 minutes) would
// not make the consumer simpler. A standard queue delivers at least once and in any
// order, and the consumer is idempotent instead: central signing stores a facility
// signature only if it is the newest for its (person, facility) and issues a certificate
// only if its content differs from the active one (signing.CentralService.Process), so a
// duplicate or a late message changes nothing.
package awssqs

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/vaxpass/vaxpass/shared/edge/centralqueue"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// API is the part of the SQS client the adapter uses (*sqs.Client implements it).
type API interface {
	SendMessage(ctx context.Context, in *sqs.SendMessageInput, opts ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)
	SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, opts ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error)
}

// MaxBodyBytes is the largest message body sent: SQS's classic limit of 256 KiB (a facility
// signature message is about 2 KB).
const MaxBodyBytes = 256 * 1024

// MaxBatch is the most messages in one SendMessageBatch.
const MaxBatch = 10

// ErrConfig reports a sender configured without a client or queue URL.
var ErrConfig = errors.New("awssqs: configuration")

// Sender sends message bodies to one queue.
type Sender struct {
	client   API
	queueURL string
}

// NewSender returns a sender to the queue at queueURL.
func NewSender(client API, queueURL string) (*Sender, error) {
	if client == nil || queueURL == "" {
		return nil, fmt.Errorf("%w: a client and a queue URL are required", ErrConfig)
	}
	return &Sender{client: client, queueURL: queueURL}, nil
}

func checkBody(body []byte) error {
	switch {
	case len(body) == 0:
		return fmt.Errorf("%w: empty message body", vaxpass.ErrInvalid)
	case len(body) > MaxBodyBytes:
		return fmt.Errorf("%w: message body of %d bytes, more than %d", vaxpass.ErrInvalid, len(body), MaxBodyBytes)
	}
	return nil
}

// Send sends one message and returns its message ID.
func (s *Sender) Send(ctx context.Context, body []byte) (string, error) {
	if err := checkBody(body); err != nil {
		return "", fmt.Errorf("awssqs: send: %w", err)
	}
	out, err := s.client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(s.queueURL), MessageBody: aws.String(string(body))})
	if err != nil {
		return "", fmt.Errorf("awssqs: send: %w", err)
	}
	return aws.ToString(out.MessageId), nil
}

// SendBatch sends bodies in batches of MaxBatch. failed lists the indexes of the bodies
// SQS refused (send them again: a standard queue's consumer is idempotent); err is a
// failure of a whole request, after which the bodies not yet sent are listed in failed
// too, so the caller always knows what is still to send.
func (s *Sender) SendBatch(ctx context.Context, bodies [][]byte) (failed []int, err error) {
	for i, b := range bodies {
		if err := checkBody(b); err != nil {
			return nil, fmt.Errorf("awssqs: send batch: message %d: %w", i, err)
		}
	}
	for start := 0; start < len(bodies); start += MaxBatch {
		end := min(start+MaxBatch, len(bodies))
		entries := make([]types.SendMessageBatchRequestEntry, 0, end-start)
		for i := start; i < end; i++ {
			entries = append(entries, types.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), MessageBody: aws.String(string(bodies[i]))})
		}
		out, err := s.client.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(s.queueURL), Entries: entries})
		if err != nil {
			for i := start; i < len(bodies); i++ {
				failed = append(failed, i)
			}
			return failed, fmt.Errorf("awssqs: send batch: %w", err)
		}
		for _, f := range out.Failed {
			i, err := strconv.Atoi(aws.ToString(f.Id))
			if err != nil || i < start || i >= end {
				return failed, fmt.Errorf("awssqs: send batch: unknown entry id %q in the reply", aws.ToString(f.Id))
			}
			failed = append(failed, i)
		}
	}
	return failed, nil
}

// CentralQueue implements signing.CentralQueue: it sends a facility signature to the
// central signing queue in the worker's message encoding (centralqueue.Encode).
type CentralQueue struct {
	sender *Sender
}

// NewCentralQueue returns the central signing queue at queueURL.
func NewCentralQueue(client API, queueURL string) (*CentralQueue, error) {
	s, err := NewSender(client, queueURL)
	if err != nil {
		return nil, err
	}
	return &CentralQueue{sender: s}, nil
}

// SendSignature implements signing.CentralQueue.
func (q *CentralQueue) SendSignature(ctx context.Context, sig vaxpass.FacilitySignature) error {
	body, err := centralqueue.Encode(sig)
	if err != nil {
		return fmt.Errorf("awssqs: encode facility signature: %w", err)
	}
	if _, err := q.sender.Send(ctx, body); err != nil {
		return fmt.Errorf("send facility signature of facility %s: %w", sig.FacilityID, err)
	}
	return nil
}

// sendWorkers is how many SendMessageBatch calls SendSignatures has in flight: a page of
// 500 signatures is 50 calls, ~10-30 ms each.
const sendWorkers = 8

// SendSignatures implements signing.BatchQueue: a page's signatures in batches of 10,
// several batches at once. Entries SQS refused are sent again (up to 3 rounds); what
// still fails is an error, and the caller leaves the page unmarked so it is sent again.
func (q *CentralQueue) SendSignatures(ctx context.Context, sigs []vaxpass.FacilitySignature) error {
	bodies := make([][]byte, len(sigs))
	for i, sig := range sigs {
		b, err := centralqueue.Encode(sig)
		if err != nil {
			return fmt.Errorf("awssqs: encode facility signature: %w", err)
		}
		bodies[i] = b
	}
	todo := make([]int, len(bodies))
	for i := range todo {
		todo[i] = i
	}
	for round := 0; len(todo) > 0; round++ {
		if round == 3 {
			return fmt.Errorf("awssqs: send facility signatures: %d of %d refused after %d rounds", len(todo), len(sigs), round)
		}
		var (
			mu      sync.Mutex
			refused []int
			errs    []error
			wg      sync.WaitGroup
		)
		chunks := make(chan []int)
		for range min(sendWorkers, (len(todo)+MaxBatch-1)/MaxBatch) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for chunk := range chunks {
					batch := make([][]byte, len(chunk))
					for j, i := range chunk {
						batch[j] = bodies[i]
					}
					failed, err := q.sender.SendBatch(ctx, batch)
					mu.Lock()
					if err != nil {
						errs = append(errs, err)
					}
					for _, j := range failed {
						refused = append(refused, chunk[j])
					}
					mu.Unlock()
				}
			}()
		}
		for start := 0; start < len(todo); start += MaxBatch {
			chunks <- todo[start:min(start+MaxBatch, len(todo))]
		}
		close(chunks)
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return fmt.Errorf("send facility signatures: %w", err)
		}
		todo = refused
	}
	return nil
}
