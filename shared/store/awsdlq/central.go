package awsdlq

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/vaxpass/vaxpass/shared/edge/centralqueue"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// maxBatchBytes is the most payload (bodies and attributes) of one SendMessageBatch: SQS's
// classic 256 KiB, which every account and region accepts.
const maxBatchBytes = 256 * 1024

// listCentral lists the central dead-letter queue.
func (d *DeadLetters) listCentral(ctx context.Context, after string, limit int) ([]vaxpass.DeadLetter, error) {
	page, err := d.listPage(ctx, d.queues.CentralDead, after, limit)
	if err != nil {
		return nil, fmt.Errorf("awsdlq: list %s: %w", Central, err)
	}
	out := make([]vaxpass.DeadLetter, len(page))
	for i, m := range page {
		out[i] = centralLetter(m)
	}
	return out, nil
}

// centralLetter describes a central signing message without its body. SQS counts every
// receive, ours too: ReceiveCount leaves out this listing's, not earlier ones'. SQS keeps no
// time of the move to the dead-letter queue: DeadAt is the first receive (the first failed
// attempt), so the letter died at or after it.
func centralLetter(m *message) vaxpass.DeadLetter {
	l := vaxpass.DeadLetter{
		Queue:  Central,
		ID:     m.id,
		SentAt: msTime(m.attrs, types.MessageSystemAttributeNameSentTimestamp),
		DeadAt: msTime(m.attrs, types.MessageSystemAttributeNameApproximateFirstReceiveTimestamp),
	}
	if n, err := strconv.Atoi(m.attrs[string(types.MessageSystemAttributeNameApproximateReceiveCount)]); err == nil && n > 1 {
		l.ReceiveCount = n - 1
	}
	if l.DeadAt.IsZero() {
		l.DeadAt = l.SentAt
	}
	// Only the facility is read out of the signature: the rest names the person.
	if sig, err := centralqueue.Decode(m.body); err == nil {
		l.FacilityID = sig.FacilityID
	} else {
		l.Reason = "the body is not a central signing message (central signing can never take it)"
	}
	return l
}

// centralHandler sends dead letters back to the central queue.
func (d *DeadLetters) centralHandler() handler {
	return handler{queue: Central, handle: d.sendCentral}
}

// sendCentral sends the batch to the central queue, in as many requests as its size
// needs; errs[i] is SQS's refusal of batch[i]. A failed request is fatal: it may have been
// applied, so nothing of the batch is deleted.
func (d *DeadLetters) sendCentral(ctx context.Context, batch []*message) ([]error, error) {
	errs := make([]error, len(batch))
	for start := 0; start < len(batch); {
		end, size := start, 0
		for end < len(batch) && (end == start || size+payloadSize(batch[end]) <= maxBatchBytes) {
			size += payloadSize(batch[end])
			end++
		}
		entries := make([]types.SendMessageBatchRequestEntry, 0, end-start)
		for i := start; i < end; i++ {
			entries = append(entries, types.SendMessageBatchRequestEntry{
				Id:                aws.String(strconv.Itoa(i)),
				MessageBody:       aws.String(batch[i].body),
				MessageAttributes: sendable(batch[i].msgAttrs),
			})
		}
		out, err := d.sqs.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(d.queues.Central), Entries: entries})
		if err != nil {
			return nil, fmt.Errorf("send to %s: %w", queueName(d.queues.Central), err)
		}
		sent := make(map[int]bool, len(out.Successful))
		for _, s := range out.Successful {
			if i, err := strconv.Atoi(aws.ToString(s.Id)); err == nil {
				sent[i] = true
			}
		}
		for _, f := range out.Failed {
			if i, err := strconv.Atoi(aws.ToString(f.Id)); err == nil && i >= start && i < end {
				errs[i] = fmt.Errorf("%s refused it: %s: %s", queueName(d.queues.Central), aws.ToString(f.Code), aws.ToString(f.Message))
			}
		}
		for i := start; i < end; i++ {
			if !sent[i] && errs[i] == nil {
				// Neither sent nor refused in the reply: keep it (a duplicate at worst).
				errs[i] = errors.New("not in the reply of the send")
			}
		}
		start = end
	}
	return errs, nil
}

// sendable copies the message attributes SendMessage takes (the list values are reserved).
func sendable(attrs map[string]types.MessageAttributeValue) map[string]types.MessageAttributeValue {
	if len(attrs) == 0 {
		return nil
	}
	out := make(map[string]types.MessageAttributeValue, len(attrs))
	for k, v := range attrs {
		out[k] = types.MessageAttributeValue{DataType: v.DataType, StringValue: v.StringValue, BinaryValue: v.BinaryValue}
	}
	return out
}

// payloadSize is what SQS counts of a message: body, and attribute names, types, values.
func payloadSize(m *message) int {
	n := len(m.body)
	for k, v := range m.msgAttrs {
		n += len(k) + len(aws.ToString(v.DataType)) + len(aws.ToString(v.StringValue)) + len(v.BinaryValue)
	}
	return n
}
