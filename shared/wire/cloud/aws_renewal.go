package cloud

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/vaxpass/vaxpass/shared/stage/renewal"
)

// RenewalRequest is the renewal function's event: the schedule sends {"action":"renew"};
// an operator may invoke it with another window, e.g. {"action":"renew","window":"60d"}.
type RenewalRequest struct {
	Action string `json:"action"`
	// Window in renewal.ParseWindow's form; empty: the configured window (RENEWAL_WINDOW_DAYS).
	Window string `json:"window,omitempty"`
	// Actor is recorded in the audit trail (default "schedule").
	Actor string `json:"actor,omitempty"`
}

// ActionRenew is the renewal function's action.
const ActionRenew = "renew"

// renewalMargin is kept free before the function's deadline: the run stops, its state is
// stored, and the next invocation resumes it.
const renewalMargin = 20 * time.Second

// HandleRenewal is the renewal function: one renewal run (renewal.Service), resumable, at
// the configured KMS sign rate. A scheduled EventBridge event without our payload counts
// as {"action":"renew"}.
func (a *Stack) HandleRenewal(ctx context.Context, ev json.RawMessage) (renewal.Summary, error) {
	var req RenewalRequest
	var probe struct {
		DetailType string `json:"detail-type"`
	}
	if err := json.Unmarshal(ev, &probe); err == nil && probe.DetailType == "Scheduled Event" {
		req.Action = ActionRenew
	} else {
		dec := json.NewDecoder(strings.NewReader(string(ev)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			return renewal.Summary{}, fmt.Errorf("%w: renewal event: %w", ErrOpsRequest, err)
		}
	}
	if req.Action != ActionRenew {
		return renewal.Summary{}, fmt.Errorf("%w: renewal event action %q, want %q", ErrOpsRequest, req.Action, ActionRenew)
	}
	window := a.cfg.RenewalWindow
	if req.Window != "" {
		w, err := renewal.ParseWindow(req.Window)
		if err != nil {
			return renewal.Summary{}, fmt.Errorf("%w: %w", ErrOpsRequest, err)
		}
		window = w
	}
	actor := req.Actor
	if actor == "" {
		actor = "schedule"
	}
	if dl, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, dl.Add(-renewalMargin))
		defer cancel()
	}
	svc, err := a.Renewal(ctx)
	if err != nil {
		return renewal.Summary{}, err
	}
	sum, err := svc.Run(ctx, actor, window)
	a.cfg.Log.Info("renewal run", "run", sum.RunID, "window", sum.Window, "resumed", sum.Resumed,
		"renewed", sum.Counts.Renewed, "failed", sum.Counts.Failed, "conflicts", sum.Counts.Conflicts, "err", err)
	return sum, err
}

// Renewal returns the renewal use case over the certificates table, the ops table, and the
// DSC key, paced by the stack's bulk KMS budget so renewal leaves interactive issuance its
// headroom.
func (a *Stack) Renewal(ctx context.Context) (*renewal.Service, error) {
	return a.Sys.Renewal(float64(a.kmsBudget())*BulkShare, nil)
}

// BulkShare is the part of the KMS budget bulk work (backlog, renewal, reprocessing) may
// use: the rest is kept for interactive issuance.
const BulkShare = 0.9
