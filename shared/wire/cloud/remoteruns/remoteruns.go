// Package remoteruns is the ops API function's control of reprocessing runs: it asks the
// ops worker function (a direct invoke, cloud.OpsRequest) to start, dry-run and report
// runs, so the API function links none of the stages a run works through (and stays small
// and quick to start), and every run is worked on by the one function whose role may.
package remoteruns

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/vaxpass/vaxpass/shared/stage/reprocess"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
	"github.com/vaxpass/vaxpass/shared/wire/cloud"
)

// EnvOpsFunction names the ops worker function (template.yaml sets it on the API function).
const EnvOpsFunction = "OPS_FUNCTION_NAME"

// Invoker is the part of the Lambda client used (*lambda.Client implements it).
type Invoker interface {
	Invoke(ctx context.Context, in *lambda.InvokeInput, opts ...func(*lambda.Options)) (*lambda.InvokeOutput, error)
}

// Runs implements api.ReprocessRuns by invoking the ops worker function.
type Runs struct {
	Lambda   Invoker
	Function string
}

// New returns the runs of the stack's ops worker function.
func New(s *cloud.Stack, function string) (*Runs, error) {
	if function == "" {
		return nil, fmt.Errorf("%w: %s is not set", cloud.ErrConfig, EnvOpsFunction)
	}
	return &Runs{Lambda: lambda.NewFromConfig(*s.Config().SDK), Function: function}, nil
}

// ErrRemote: the worker function failed (its error message is logged there, never sent on:
// it may hold internal details).
var ErrRemote = errors.New("ops worker function failed")

func (r *Runs) invoke(ctx context.Context, req cloud.OpsRequest) (cloud.OpsResult, error) {
	var res cloud.OpsResult
	payload, err := json.Marshal(req)
	if err != nil {
		return res, err
	}
	out, err := r.Lambda.Invoke(ctx, &lambda.InvokeInput{
		FunctionName: aws.String(r.Function), InvocationType: types.InvocationTypeRequestResponse, Payload: payload,
	})
	if err != nil {
		return res, fmt.Errorf("invoke %s: %w", req.Action, err)
	}
	if out.FunctionError != nil {
		var fe struct {
			ErrorMessage string `json:"errorMessage"`
		}
		_ = json.Unmarshal(out.Payload, &fe)
		// The worker's errors that are the caller's fault keep their class, so the API
		// answers 4xx for them as on the embedded backend.
		switch {
		case containsAny(fe.ErrorMessage, "not found"):
			return res, fmt.Errorf("%s: %w", req.Action, vaxpass.ErrNotFound)
		case containsAny(fe.ErrorMessage, "invalid", "ops request"):
			return res, fmt.Errorf("%s: %w: %s", req.Action, vaxpass.ErrInvalid, fe.ErrorMessage)
		case containsAny(fe.ErrorMessage, "already finished"):
			return res, fmt.Errorf("%s: %w: %w", req.Action, vaxpass.ErrConflict, reprocess.ErrRunFinished)
		}
		return res, fmt.Errorf("%s: %w", req.Action, ErrRemote)
	}
	if err := json.Unmarshal(out.Payload, &res); err != nil {
		return res, fmt.Errorf("%s: the worker's answer: %w", req.Action, err)
	}
	return res, nil
}

func containsAny(s string, words ...string) bool {
	for _, w := range words {
		if strings.Contains(s, w) {
			return true
		}
	}
	return false
}

// Start implements api.ReprocessRuns.
func (r *Runs) Start(ctx context.Context, sel reprocess.Selector) (reprocess.Run, error) {
	res, err := r.invoke(ctx, cloud.OpsRequest{Action: cloud.ActionReprocess, Selector: &sel})
	if err != nil {
		return reprocess.Run{}, err
	}
	if res.Run == nil {
		return reprocess.Run{}, fmt.Errorf("start: %w: no run in the answer", ErrRemote)
	}
	return *res.Run, nil
}

// DryRun implements api.ReprocessRuns.
func (r *Runs) DryRun(ctx context.Context, sel reprocess.Selector) (reprocess.Summary, error) {
	sel.DryRun = true
	res, err := r.invoke(ctx, cloud.OpsRequest{Action: cloud.ActionReprocess, Selector: &sel})
	if err != nil {
		return reprocess.Summary{}, err
	}
	if res.Summary == nil {
		return reprocess.Summary{}, fmt.Errorf("dry run: %w: no summary in the answer", ErrRemote)
	}
	return *res.Summary, nil
}

// GetRun implements api.ReprocessRuns.
func (r *Runs) GetRun(ctx context.Context, id string) (reprocess.Run, error) {
	res, err := r.invoke(ctx, cloud.OpsRequest{Action: cloud.ActionReprocessStatus, RunID: id})
	if err != nil {
		return reprocess.Run{}, err
	}
	if res.Run == nil {
		return reprocess.Run{}, fmt.Errorf("run %s: %w", id, vaxpass.ErrNotFound)
	}
	return *res.Run, nil
}

// ListRuns implements api.ReprocessRuns.
func (r *Runs) ListRuns(ctx context.Context) ([]reprocess.Run, error) {
	res, err := r.invoke(ctx, cloud.OpsRequest{Action: cloud.ActionReprocessRuns})
	return res.Runs, err
}
