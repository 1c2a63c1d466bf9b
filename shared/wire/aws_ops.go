package wire

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/stage/matching"
)

// Ops actions (the ops function's "action"; the facility signing schedule sends the first).
const (
	ActionSignAllFacilities = "sign-all-facilities"
	ActionSign              = "sign"    // facility_id: facility signing for one facility
	ActionRematch           = "rematch" // facility_id, status: match those doses again
	ActionRedrive           = "redrive" // max: move dead letters back to the central queue
	ActionRevoke            = "revoke"  // uvci, reason
)

// OpsRequest is the ops function's event (direct invoke), e.g.
// {"action":"rematch","facility_id":"site-1","status":"NOT_FOUND"} after a registry update.
type OpsRequest struct {
	Action     string `json:"action"`
	FacilityID string `json:"facility_id,omitempty"`
	Status     string `json:"status,omitempty"`
	UVCI       string `json:"uvci,omitempty"`
	Reason     string `json:"reason,omitempty"`
	Max        int    `json:"max,omitempty"`
}

// OpsResult is the ops function's answer; only the counts of the action run are set.
type OpsResult struct {
	Action     string      `json:"action"`
	Signing    *SigningRun `json:"signing,omitempty"`
	Rematched  int         `json:"rematched,omitempty"`
	Superseded int         `json:"superseded,omitempty"`
	Unchanged  int         `json:"unchanged,omitempty"`
	Redriven   int         `json:"redriven,omitempty"`
	Revoked    string      `json:"revoked,omitempty"`
}

// ErrOpsRequest: an ops event with an unknown action or a missing field.
var ErrOpsRequest = errors.New("ops request")

// maxRedrive bounds one redrive call when the request gives no max.
const maxRedrive = 10_000

// HandleOps is the ops function: reprocessing on an operator's direct invoke.
func (a *AWS) HandleOps(ctx context.Context, req OpsRequest) (OpsResult, error) {
	res := OpsResult{Action: req.Action}
	a.cfg.Log.Info("ops request", "action", req.Action, "facility", req.FacilityID, "status", req.Status)
	switch req.Action {
	case ActionSignAllFacilities:
		run, err := a.SignAllFacilities(ctx)
		res.Signing = &run
		return res, err
	case ActionSign:
		if req.FacilityID == "" {
			return res, fmt.Errorf("%w: sign needs facility_id", ErrOpsRequest)
		}
		r, err := a.FacilitySigning.SignAll(ctx, req.FacilityID)
		res.Signing = &SigningRun{Facilities: 1, Signed: r.Signed, Waiting: r.Waiting}
		return res, err
	case ActionRematch:
		st := match.Status(strings.ToUpper(req.Status))
		if req.FacilityID == "" || !rematchable[st] {
			return res, fmt.Errorf("%w: rematch needs facility_id and status (one of PENDING, NO_ID, INVALID_ID, NOT_FOUND, MISMATCH, VERIFIED)", ErrOpsRequest)
		}
		return res, a.rematch(ctx, req.FacilityID, st, &res)
	case ActionRedrive:
		n := req.Max
		if n <= 0 {
			n = maxRedrive
		}
		var err error
		res.Redriven, err = a.redrive(ctx, n)
		return res, err
	case ActionRevoke:
		if req.UVCI == "" || strings.TrimSpace(req.Reason) == "" {
			return res, fmt.Errorf("%w: revoke needs uvci and reason", ErrOpsRequest)
		}
		c, err := a.Store.CertificateByUVCI(ctx, req.UVCI)
		if err != nil {
			return res, fmt.Errorf("revoke: %w", err)
		}
		if err := a.Store.RevokeCertificate(ctx, c, strings.TrimSpace(req.Reason), a.cfg.Now().UTC()); err != nil {
			return res, fmt.Errorf("revoke: %w", err)
		}
		res.Revoked = c.UVCI
		return res, nil
	default:
		return res, fmt.Errorf("%w: unknown action %q", ErrOpsRequest, req.Action)
	}
}

var rematchable = map[match.Status]bool{
	match.Pending: true, match.NoID: true, match.InvalidID: true, match.NotFound: true, match.Mismatch: true, match.Verified: true,
}

// rematch matches a facility's doses in one status again (after a registry update or a
// matcher fix): the stored "matched details" are cleared so the matcher judges each anew.
func (a *AWS) rematch(ctx context.Context, facilityID string, st match.Status, res *OpsResult) error {
	const page = 500
	after := ""
	for {
		doses, err := a.Store.ListByStatus(ctx, facilityID, st, after, page)
		if err != nil {
			return fmt.Errorf("rematch: list %s doses: %w", st, err)
		}
		for _, d := range doses {
			d.MatchedDetails = ""
			out, err := a.Matching.MatchDose(ctx, d)
			if err != nil {
				return fmt.Errorf("rematch after %d doses: %w", res.Rematched+res.Superseded+res.Unchanged, err)
			}
			switch out {
			case matching.Matched:
				res.Rematched++
			case matching.Superseded:
				res.Superseded++
			default:
				res.Unchanged++
			}
		}
		if len(doses) < page {
			return nil
		}
		after = doses[len(doses)-1].SourceID
	}
}

// redrive moves up to max messages from the central dead-letter queue back to the central
// queue: each is sent again before it is deleted, so a crash duplicates rather than loses
// (central signing is idempotent).
func (a *AWS) redrive(ctx context.Context, max int) (int, error) {
	if a.cfg.CentralDLQURL == "" {
		return 0, fmt.Errorf("%w: %s is not set", ErrAWSConfig, EnvCentralDLQURL)
	}
	moved := 0
	for moved < max {
		out, err := a.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(a.cfg.CentralDLQURL), MaxNumberOfMessages: int32(min(10, max-moved)),
			WaitTimeSeconds: 1, VisibilityTimeout: 60,
		})
		if err != nil {
			return moved, fmt.Errorf("redrive: receive: %w", err)
		}
		if len(out.Messages) == 0 {
			return moved, nil
		}
		for _, m := range out.Messages {
			if _, err := a.redriveTo.Send(ctx, []byte(aws.ToString(m.Body))); err != nil {
				return moved, fmt.Errorf("redrive: send: %w", err)
			}
			if _, err := a.sqs.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(a.cfg.CentralDLQURL), ReceiptHandle: m.ReceiptHandle}); err != nil {
				return moved, fmt.Errorf("redrive: delete: %w", err)
			}
			moved++
		}
	}
	return moved, nil
}

// decodeOps reads an ops event strictly (an unknown field is a typo, not something to ignore).
func decodeOps(ev json.RawMessage) (OpsRequest, error) {
	var req OpsRequest
	dec := json.NewDecoder(strings.NewReader(string(ev)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return req, fmt.Errorf("%w: %w", ErrOpsRequest, err)
	}
	return req, nil
}

// HandleOpsEvent is HandleOps over the raw event, decoded strictly.
func (a *AWS) HandleOpsEvent(ctx context.Context, ev json.RawMessage) (OpsResult, error) {
	req, err := decodeOps(ev)
	if err != nil {
		return OpsResult{}, err
	}
	return a.HandleOps(ctx, req)
}
