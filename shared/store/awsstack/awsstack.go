// Package awsstack finds a deployed stack's resources for the operator's CLI: the
// stack's CloudFormation outputs (template.yaml's Outputs: tables, queues, keys, the trust
// bucket), by stack name, from the --stack flag or VAXPASS_STACK.
package awsstack

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cftypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/smithy-go"

	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// EnvStack names the stack when --stack is not given.
const EnvStack = "VAXPASS_STACK"

// Errors, one per failure class; returned errors wrap them with the stack's name.
var (
	// ErrNoStackName: neither --stack nor VAXPASS_STACK was given.
	ErrNoStackName = errors.New("no stack name: pass --stack NAME or set " + EnvStack)
	// ErrStackNotFound: no such stack (or it was deleted). It wraps vaxpass.ErrNotFound.
	ErrStackNotFound = fmt.Errorf("stack %w", vaxpass.ErrNotFound)
	// ErrStackNotReady: the stack exists but has no usable resources (being created,
	// creation failed, being deleted).
	ErrStackNotReady = errors.New("stack not ready")
)

// CloudFormationAPI is the part of the CloudFormation client Outputs uses
// (*cloudformation.Client implements it).
type CloudFormationAPI interface {
	DescribeStacks(ctx context.Context, in *cloudformation.DescribeStacksInput, opts ...func(*cloudformation.Options)) (*cloudformation.DescribeStacksOutput, error)
}

// StackName is the stack to operate on: flagValue (the --stack flag) when set, else the
// VAXPASS_STACK environment variable read with getenv, else ErrNoStackName.
func StackName(flagValue string, getenv func(string) string) (string, error) {
	if name := strings.TrimSpace(flagValue); name != "" {
		return name, nil
	}
	if getenv != nil {
		if name := strings.TrimSpace(getenv(EnvStack)); name != "" {
			return name, nil
		}
	}
	return "", ErrNoStackName
}

// Outputs returns the outputs of the stack stackName (name or stack ID), keyed by output
// name. A stack that does not exist is ErrStackNotFound; one without usable resources
// (still being created, rolled back after a failed creation, being deleted) is
// ErrStackNotReady. An update in progress or rolled back still answers: the stack's
// resources are in place and its outputs name them.
func Outputs(ctx context.Context, api CloudFormationAPI, stackName string) (map[string]string, error) {
	if stackName == "" {
		return nil, ErrNoStackName
	}
	out, err := api.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(stackName)})
	if err != nil {
		if isStackMissing(err) {
			return nil, fmt.Errorf("awsstack: %w: %q does not exist (check the stack name, the region and the account)", ErrStackNotFound, stackName)
		}
		return nil, fmt.Errorf("awsstack: describe stack %q: %w", stackName, err)
	}
	if len(out.Stacks) != 1 {
		return nil, fmt.Errorf("awsstack: describe stack %q: %d stacks answered, want 1", stackName, len(out.Stacks))
	}
	st := out.Stacks[0]
	switch status := st.StackStatus; {
	case status == cftypes.StackStatusDeleteComplete:
		// A deleted stack is still described when asked for by stack ID.
		return nil, fmt.Errorf("awsstack: %w: %q was deleted", ErrStackNotFound, stackName)
	case !usable(status):
		return nil, fmt.Errorf("awsstack: %w: %q is %s", ErrStackNotReady, stackName, status)
	}
	outputs := make(map[string]string, len(st.Outputs))
	for _, o := range st.Outputs {
		if k := aws.ToString(o.OutputKey); k != "" {
			outputs[k] = aws.ToString(o.OutputValue)
		}
	}
	return outputs, nil
}

// usable reports whether a stack in this status has its resources: every status but
// those of a creation not (yet) done and of a deletion.
func usable(s cftypes.StackStatus) bool {
	switch s {
	case cftypes.StackStatusCreateInProgress, cftypes.StackStatusCreateFailed,
		cftypes.StackStatusRollbackInProgress, cftypes.StackStatusRollbackFailed, cftypes.StackStatusRollbackComplete,
		cftypes.StackStatusDeleteInProgress, cftypes.StackStatusDeleteFailed, cftypes.StackStatusDeleteComplete,
		cftypes.StackStatusReviewInProgress:
		return false
	}
	return true
}

// isStackMissing recognises DescribeStacks' answer for an unknown stack: a
// ValidationError "Stack with id NAME does not exist" (CloudFormation has no dedicated
// error code for it).
func isStackMissing(err error) bool {
	var api smithy.APIError
	return errors.As(err, &api) && api.ErrorCode() == "ValidationError" &&
		strings.Contains(api.ErrorMessage(), "does not exist")
}
