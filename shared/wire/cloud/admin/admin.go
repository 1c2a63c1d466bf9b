// Package admin is what an operator does to a deployed stack with their own credentials:
// open the stack from its CloudFormation outputs (the same wire.System the functions run,
// over DynamoDB, SQS, KMS and S3), invoke its ops and renewal functions, load a registry
// extract into its registry table, and read its published trust and revocation lists.
//
// It is kept out of the Lambda binaries on purpose: it links config.LoadDefaultConfig
// (every credential source: SSO, STS, shared files, IMDS), CloudFormation and the Lambda
// client, about a megabyte a function never uses. Nothing under shared/wire/cloud or
// functions/ may import it; cmd/vaxpass and the deployed tests do.
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/vaxpass/vaxpass/shared/hc1/trust"
	"github.com/vaxpass/vaxpass/shared/stage/renewal"
	"github.com/vaxpass/vaxpass/shared/stage/revocation"
	"github.com/vaxpass/vaxpass/shared/store/awsstack"
	"github.com/vaxpass/vaxpass/shared/wire/cloud"
	"github.com/vaxpass/vaxpass/shared/wire/cloud/deadletters"
)

// Stack outputs (template.yaml) the operator's actions need beyond cloud.ConfigFromOutputs.
const (
	OutputOpsFunction     = "OpsFunction"
	OutputRenewalFunction = "RenewalFunction"
)

// LambdaAPI is the part of the Lambda client the admin uses (*lambda.Client implements it).
type LambdaAPI interface {
	Invoke(ctx context.Context, in *lambda.InvokeInput, opts ...func(*lambda.Options)) (*lambda.InvokeOutput, error)
}

// Admin is a deployed stack as its operator sees it.
type Admin struct {
	// Name is the stack's name; Outputs its CloudFormation outputs by key.
	Name    string
	Outputs map[string]string
	// Stack is the system over the stack's services (Stack.Sys is the wire.System).
	Stack *cloud.Stack
	// Lambda invokes the stack's functions.
	Lambda LambdaAPI
	// MaxRenewInvokes bounds the invocations Renew makes for one run (default 96: a
	// day of 15-minute invocations).
	MaxRenewInvokes int
}

// Open finds the stack by name (awsstack.Outputs) with the SDK's default configuration
// (credentials, region, AWS_ENDPOINT_URL for an emulator) and opens it.
func Open(ctx context.Context, stackName string) (*Admin, error) {
	sdk, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("AWS configuration: %w", err)
	}
	if sdk.Region == "" {
		return nil, fmt.Errorf("%w: no AWS region: set AWS_REGION (or a profile with a region)", cloud.ErrConfig)
	}
	outputs, err := awsstack.Outputs(ctx, cloudformation.NewFromConfig(sdk), stackName)
	if err != nil {
		return nil, err
	}
	return New(ctx, sdk, stackName, outputs)
}

// New opens the stack of the given outputs with sdk (Open without CloudFormation: the
// deployed tests read the outputs from a file).
func New(ctx context.Context, sdk aws.Config, stackName string, outputs map[string]string) (*Admin, error) {
	cfg, err := cloud.ConfigFromOutputs(outputs)
	if err != nil {
		return nil, fmt.Errorf("stack %q: %w", stackName, err)
	}
	cfg.SDK = &sdk
	// The operator lists and redrives dead letters (of the functions, only ops links
	// them); a stack without the queues' outputs has none to list.
	var opts []cloud.Option
	if cfg.CentralDLQURL != "" && cfg.MatcherFailureURL != "" {
		opts = append(opts, deadletters.Option)
	}
	st, err := cloud.Open(ctx, cfg, opts...)
	if err != nil {
		return nil, fmt.Errorf("stack %q: %w", stackName, err)
	}
	return &Admin{Name: stackName, Outputs: outputs, Stack: st, Lambda: lambda.NewFromConfig(sdk)}, nil
}

// FunctionError is an invocation the function answered with an error (Lambda's
// FunctionError): Message is the function's errorMessage.
type FunctionError struct {
	Function string
	Type     string
	Message  string
}

func (e *FunctionError) Error() string {
	if e.Type != "" {
		return fmt.Sprintf("function %s failed (%s): %s", e.Function, e.Type, e.Message)
	}
	return fmt.Sprintf("function %s failed: %s", e.Function, e.Message)
}

// invoke calls the function of output with payload (RequestResponse) and decodes its
// answer into out.
func (a *Admin) invoke(ctx context.Context, output string, payload, out any) error {
	name := a.Outputs[output]
	if name == "" {
		return fmt.Errorf("%w: stack %q has no %s output", cloud.ErrConfig, a.Name, output)
	}
	in, err := json.Marshal(payload)
	if err != nil {
		return fmt.Errorf("invoke %s: %w", output, err)
	}
	res, err := a.Lambda.Invoke(ctx, &lambda.InvokeInput{
		FunctionName: aws.String(name), InvocationType: lambdatypes.InvocationTypeRequestResponse, Payload: in,
	})
	if err != nil {
		return fmt.Errorf("invoke %s: %w", output, err)
	}
	if res.FunctionError != nil {
		fe := &FunctionError{Function: output, Message: strings.TrimSpace(string(res.Payload))}
		var body struct {
			Message string `json:"errorMessage"`
			Type    string `json:"errorType"`
		}
		if json.Unmarshal(res.Payload, &body) == nil && body.Message != "" {
			fe.Message, fe.Type = body.Message, body.Type
		}
		if fe.Message == "" {
			fe.Message = aws.ToString(res.FunctionError)
		}
		return fe
	}
	if out != nil {
		if err := json.Unmarshal(res.Payload, out); err != nil {
			return fmt.Errorf("invoke %s: answer: %w", output, err)
		}
	}
	return nil
}

// InvokeOps runs one direct-invoke action of the ops function (cloud.HandleOps).
func (a *Admin) InvokeOps(ctx context.Context, req cloud.OpsRequest) (cloud.OpsResult, error) {
	var res cloud.OpsResult
	err := a.invoke(ctx, OutputOpsFunction, req, &res)
	return res, err
}

// Renew runs a renewal run in the renewal function (cloud.HandleRenewal). An invocation
// that runs out of time stores where it stopped and fails with the deadline; Renew then
// invokes again, which resumes the run, until it finishes (at most MaxRenewInvokes times).
func (a *Admin) Renew(ctx context.Context, req cloud.RenewalRequest) (renewal.Summary, error) {
	if req.Action == "" {
		req.Action = cloud.ActionRenew
	}
	limit := a.MaxRenewInvokes
	if limit <= 0 {
		limit = 96
	}
	for n := 1; ; n++ {
		var sum renewal.Summary
		err := a.invoke(ctx, OutputRenewalFunction, req, &sum)
		var fe *FunctionError
		if errors.As(err, &fe) && strings.Contains(fe.Message, context.DeadlineExceeded.Error()) && ctx.Err() == nil && n < limit {
			continue // the run stored its place; the next invocation resumes it
		}
		return sum, err
	}
}

// TrustList is the stack's published trust list (trustlist.pem in its trust bucket).
func (a *Admin) TrustList(ctx context.Context) (*trust.List, error) {
	return a.Stack.Trust.TrustList(ctx)
}

// Revocations is the stack's published revocation list (GET /v1/revocations' body),
// rendered from its ops table.
func (a *Admin) Revocations(ctx context.Context) (*revocation.Set, error) {
	pub, err := a.Stack.Sys.Publisher()
	if err != nil {
		return nil, err
	}
	body, _, err := pub.Current(ctx)
	if err != nil {
		return nil, err
	}
	set, err := revocation.Parse(body)
	if err != nil {
		return nil, fmt.Errorf("revocation list of stack %q: %w", a.Name, err)
	}
	return set, nil
}
