package awsstack

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cftypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/smithy-go"

	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

func TestStackName(t *testing.T) {
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == EnvStack {
				return v
			}
			return ""
		}
	}
	for _, tc := range []struct {
		name, flag, env, want string
	}{
		{"flag wins", "from-flag", "from-env", "from-flag"},
		{"environment", "", "from-env", "from-env"},
		{"blank flag falls back", "  ", "from-env", "from-env"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := StackName(tc.flag, env(tc.env))
			if err != nil || got != tc.want {
				t.Errorf("StackName(%q, %s=%q) = %q, %v; want %q", tc.flag, EnvStack, tc.env, got, err, tc.want)
			}
		})
	}
	for _, getenv := range []func(string) string{env(""), env(" "), nil} {
		_, err := StackName("", getenv)
		if !errors.Is(err, ErrNoStackName) {
			t.Errorf("StackName without flag or environment: %v, want ErrNoStackName", err)
		}
		if err != nil && (!strings.Contains(err.Error(), "--stack") || !strings.Contains(err.Error(), EnvStack)) {
			t.Errorf("error %q does not say how to give the stack name", err)
		}
	}
}

// fakeCFN answers DescribeStacks with stacks or err, and records the name asked for.
type fakeCFN struct {
	stacks []cftypes.Stack
	err    error
	asked  string
}

func (f *fakeCFN) DescribeStacks(_ context.Context, in *cloudformation.DescribeStacksInput, _ ...func(*cloudformation.Options)) (*cloudformation.DescribeStacksOutput, error) {
	f.asked = aws.ToString(in.StackName)
	if f.err != nil {
		return nil, f.err
	}
	return &cloudformation.DescribeStacksOutput{Stacks: f.stacks}, nil
}

func stack(status cftypes.StackStatus, kv ...string) cftypes.Stack {
	s := cftypes.Stack{StackName: aws.String("s"), StackStatus: status}
	for i := 0; i+1 < len(kv); i += 2 {
		s.Outputs = append(s.Outputs, cftypes.Output{OutputKey: aws.String(kv[i]), OutputValue: aws.String(kv[i+1])})
	}
	return s
}

func TestOutputs(t *testing.T) {
	ctx := context.Background()
	f := &fakeCFN{stacks: []cftypes.Stack{stack(cftypes.StackStatusUpdateComplete, "TrustBucket", "b-1", "DscKeyArn", "arn:k")}}
	out, err := Outputs(ctx, f, "vaxpass")
	if err != nil {
		t.Fatal(err)
	}
	if f.asked != "vaxpass" {
		t.Errorf("asked for stack %q", f.asked)
	}
	if len(out) != 2 || out["TrustBucket"] != "b-1" || out["DscKeyArn"] != "arn:k" {
		t.Errorf("outputs %v", out)
	}

	// Statuses: an update (in progress or rolled back) keeps the resources; a creation
	// not done or a deletion has none to name.
	for status, ok := range map[cftypes.StackStatus]bool{
		cftypes.StackStatusCreateComplete:         true,
		cftypes.StackStatusUpdateInProgress:       true,
		cftypes.StackStatusUpdateRollbackComplete: true,
		cftypes.StackStatusImportComplete:         true,
		cftypes.StackStatusCreateInProgress:       false,
		cftypes.StackStatusRollbackComplete:       false,
		cftypes.StackStatusDeleteInProgress:       false,
		cftypes.StackStatusReviewInProgress:       false,
	} {
		_, err := Outputs(ctx, &fakeCFN{stacks: []cftypes.Stack{stack(status, "K", "V")}}, "vaxpass")
		if ok && err != nil {
			t.Errorf("%s: %v", status, err)
		}
		if !ok && (!errors.Is(err, ErrStackNotReady) || !strings.Contains(err.Error(), string(status))) {
			t.Errorf("%s: %v, want ErrStackNotReady naming the status", status, err)
		}
	}

	_, err = Outputs(ctx, &fakeCFN{stacks: []cftypes.Stack{stack(cftypes.StackStatusDeleteComplete)}}, "arn:aws:cloudformation:us-east-1:1:stack/old/x")
	if !errors.Is(err, ErrStackNotFound) {
		t.Errorf("deleted stack: %v, want ErrStackNotFound", err)
	}

	missing := &smithy.GenericAPIError{Code: "ValidationError", Message: "Stack with id gone does not exist"}
	_, err = Outputs(ctx, &fakeCFN{err: missing}, "gone")
	if !errors.Is(err, ErrStackNotFound) || !errors.Is(err, vaxpass.ErrNotFound) || !strings.Contains(err.Error(), `"gone"`) {
		t.Errorf("missing stack: %v, want ErrStackNotFound naming it", err)
	}

	// Any other failure is passed on, wrapped, and is not "not found".
	denied := &smithy.GenericAPIError{Code: "AccessDenied", Message: "not authorized"}
	_, err = Outputs(ctx, &fakeCFN{err: denied}, "vaxpass")
	if !errors.Is(err, denied) || errors.Is(err, ErrStackNotFound) {
		t.Errorf("access denied: %v", err)
	}
	other := &smithy.GenericAPIError{Code: "ValidationError", Message: "1 validation error detected"}
	if _, err = Outputs(ctx, &fakeCFN{err: other}, "vaxpass"); errors.Is(err, ErrStackNotFound) {
		t.Errorf("other validation error taken for a missing stack: %v", err)
	}

	if _, err = Outputs(ctx, &fakeCFN{}, "vaxpass"); err == nil {
		t.Error("no stack in the answer: no error")
	}
	if _, err = Outputs(ctx, &fakeCFN{}, ""); !errors.Is(err, ErrNoStackName) {
		t.Errorf("empty name: %v, want ErrNoStackName", err)
	}
}
