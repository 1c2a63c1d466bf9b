// Package centralqueue is the Lambda handler of the central signing queue: each message is a
// facility signature; central signing verifies it and issues the person's certificate.
// It reports partial batch failures so only the failed messages come back.
package centralqueue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/aws/aws-lambda-go/events"

	"github.com/vaxpass/vaxpass/shared/stage/signing"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// Issuer is the central signing use case.
type Issuer interface {
	Process(ctx context.Context, sig vaxpass.FacilitySignature) (signing.IssueOutcome, *vaxpass.Certificate, error)
}

// Handler handles SQS batches of the central signing queue.
type Handler struct {
	Issuer Issuer
	Log    *slog.Logger
	// Concurrency is how many people's messages of a batch are processed at once
	// (default 1). More hides a remote signer's latency and lets the embedded store
	// commit several messages' writes together.
	Concurrency int
	// Observe, when set, is told each message's outcome (the functions count them).
	Observe func(signing.IssueOutcome)
}

// Message is the body of a central signing message.
type Message struct {
	Signature vaxpass.FacilitySignature `json:"signature"`
}

// Encode renders a message body.
func Encode(sig vaxpass.FacilitySignature) ([]byte, error) {
	return json.Marshal(Message{Signature: sig})
}

// Decode parses a message body strictly.
func Decode(body string) (vaxpass.FacilitySignature, error) {
	var m Message
	dec := json.NewDecoder(strings.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return m.Signature, fmt.Errorf("decode central signing message: %w", err)
	}
	if m.Signature.PersonID == "" || m.Signature.FacilityID == "" {
		return m.Signature, errors.New("decode central signing message: no person or facility")
	}
	return m.Signature, nil
}

// Handle processes each message; a failure (transient, or a signature that does not
// verify) is reported for that message alone. Messages that keep failing reach the
// dead-letter queue through the queue's redrive policy, where ops can inspect them.
func (h *Handler) Handle(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	// A non-nil slice marshals as [], never null: some Lambda emulators (ministack) reject null.
	resp := events.SQSEventResponse{BatchItemFailures: []events.SQSBatchItemFailure{}}
	errs := make([]error, len(ev.Records))
	// One person's messages are processed one after another, in batch order, and
	// different people's at once: the outcome is the one of processing the batch in
	// order (a person's first signature may issue a certificate that the second then
	// replaces), however many run at once.
	var groups [][]int
	byPerson := map[string]int{}
	sigs := make([]vaxpass.FacilitySignature, len(ev.Records))
	for i, m := range ev.Records {
		if sigs[i], errs[i] = Decode(m.Body); errs[i] != nil {
			continue
		}
		g, ok := byPerson[sigs[i].PersonID]
		if !ok {
			g = len(groups)
			byPerson[sigs[i].PersonID] = g
			groups = append(groups, nil)
		}
		groups[g] = append(groups[g], i)
	}
	next := make(chan []int)
	var wg sync.WaitGroup
	for range min(max(h.Concurrency, 1), len(groups)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for group := range next {
				for _, i := range group {
					var outcome signing.IssueOutcome
					outcome, _, errs[i] = h.Issuer.Process(ctx, sigs[i])
					if errs[i] == nil && h.Observe != nil {
						h.Observe(outcome)
					}
				}
			}
		}()
	}
	for _, g := range groups {
		next <- g
	}
	close(next)
	wg.Wait()
	for i, m := range ev.Records {
		err := errs[i]
		if err == nil {
			continue
		}
		if errors.Is(err, context.Canceled) {
			return resp, err
		}
		h.logger().Warn("central signing failed", "message_id", m.MessageId, "err", err)
		resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: m.MessageId})
	}
	return resp, nil
}

func (h *Handler) logger() *slog.Logger {
	if h.Log != nil {
		return h.Log
	}
	return slog.Default()
}
