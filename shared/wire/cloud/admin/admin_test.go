package admin

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/vaxpass/vaxpass/shared/stage/reprocess"
	"github.com/vaxpass/vaxpass/shared/wire/cloud"
)

// fakeLambda answers invocations from a script, recording the payloads.
type fakeLambda struct {
	calls   []string
	names   []string
	answers []func() (*lambda.InvokeOutput, error)
}

func (f *fakeLambda) Invoke(_ context.Context, in *lambda.InvokeInput, _ ...func(*lambda.Options)) (*lambda.InvokeOutput, error) {
	if in.InvocationType != lambdatypes.InvocationTypeRequestResponse {
		return nil, errors.New("not RequestResponse")
	}
	f.calls = append(f.calls, string(in.Payload))
	f.names = append(f.names, aws.ToString(in.FunctionName))
	a := f.answers[0]
	if len(f.answers) > 1 {
		f.answers = f.answers[1:]
	}
	return a()
}

func ok(payload string) func() (*lambda.InvokeOutput, error) {
	return func() (*lambda.InvokeOutput, error) { return &lambda.InvokeOutput{Payload: []byte(payload)}, nil }
}

func failed(payload string) func() (*lambda.InvokeOutput, error) {
	return func() (*lambda.InvokeOutput, error) {
		return &lambda.InvokeOutput{FunctionError: aws.String("Unhandled"), Payload: []byte(payload)}, nil
	}
}

func testAdmin(f *fakeLambda) *Admin {
	return &Admin{Name: "s", Outputs: map[string]string{OutputOpsFunction: "s-ops", OutputRenewalFunction: "s-renew"}, Lambda: f}
}

func TestInvokeOps(t *testing.T) {
	f := &fakeLambda{answers: []func() (*lambda.InvokeOutput, error){
		ok(`{"action":"reprocess-status","run":{"id":"rp-20240101T000000Z-0badcafe","state":"done","total":3}}`),
	}}
	res, err := testAdmin(f).InvokeOps(context.Background(), cloud.OpsRequest{Action: cloud.ActionReprocessStatus, RunID: "rp-20240101T000000Z-0badcafe"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Run == nil || res.Run.State != reprocess.Done || res.Run.Total != 3 {
		t.Errorf("result %+v", res)
	}
	var sent cloud.OpsRequest
	if err := json.Unmarshal([]byte(f.calls[0]), &sent); err != nil || sent.Action != cloud.ActionReprocessStatus || f.names[0] != "s-ops" {
		t.Errorf("sent %s to %s", f.calls[0], f.names[0])
	}
}

func TestInvokeFunctionErrorCarriesTheMessage(t *testing.T) {
	f := &fakeLambda{answers: []func() (*lambda.InvokeOutput, error){
		failed(`{"errorMessage":"ops request: unknown action \"x\"","errorType":"*fmt.wrapError"}`),
	}}
	_, err := testAdmin(f).InvokeOps(context.Background(), cloud.OpsRequest{Action: "x"})
	var fe *FunctionError
	if !errors.As(err, &fe) || fe.Message != `ops request: unknown action "x"` || fe.Function != OutputOpsFunction {
		t.Fatalf("error %v (%#v)", err, fe)
	}
	if !strings.Contains(err.Error(), `unknown action "x"`) {
		t.Errorf("error text %q does not carry the function's message", err)
	}
	// A function error without the usual body still is an error.
	f = &fakeLambda{answers: []func() (*lambda.InvokeOutput, error){failed(``)}}
	if _, err := testAdmin(f).InvokeOps(context.Background(), cloud.OpsRequest{Action: "x"}); !errors.As(err, &fe) || fe.Message != "Unhandled" {
		t.Errorf("bare function error: %v", err)
	}
}

func TestInvokeMissingOutput(t *testing.T) {
	a := &Admin{Name: "s", Outputs: map[string]string{}, Lambda: &fakeLambda{}}
	if _, err := a.InvokeOps(context.Background(), cloud.OpsRequest{Action: cloud.ActionReprocessRuns}); !errors.Is(err, cloud.ErrConfig) {
		t.Fatalf("no OpsFunction output: %v", err)
	}
}

func TestRenewResumesAfterTheDeadline(t *testing.T) {
	f := &fakeLambda{answers: []func() (*lambda.InvokeOutput, error){
		failed(`{"errorMessage":"renewal: save run: context deadline exceeded","errorType":"*fmt.wrapError"}`),
		ok(`{"run_id":"rn-1","window":"30d","resumed":true,"counts":{"renewed":7}}`),
	}}
	sum, err := testAdmin(f).Renew(context.Background(), cloud.RenewalRequest{Window: "30d", Actor: "cli:anna"})
	if err != nil {
		t.Fatal(err)
	}
	if len(f.calls) != 2 || sum.RunID != "rn-1" || !sum.Resumed || sum.Counts.Renewed != 7 {
		t.Errorf("%d invocations, summary %+v", len(f.calls), sum)
	}
	var sent cloud.RenewalRequest
	if err := json.Unmarshal([]byte(f.calls[1]), &sent); err != nil || sent.Action != cloud.ActionRenew || sent.Window != "30d" || sent.Actor != "cli:anna" || f.names[1] != "s-renew" {
		t.Errorf("second invocation %s to %s", f.calls[1], f.names[1])
	}

	// Another failure is returned at once; a deadline that keeps coming stops at the limit.
	f = &fakeLambda{answers: []func() (*lambda.InvokeOutput, error){failed(`{"errorMessage":"renewal: ops request: bad window"}`)}}
	if _, err := testAdmin(f).Renew(context.Background(), cloud.RenewalRequest{}); err == nil || len(f.calls) != 1 {
		t.Errorf("failing renewal: %v after %d invocations", err, len(f.calls))
	}
	f = &fakeLambda{answers: []func() (*lambda.InvokeOutput, error){failed(`{"errorMessage":"context deadline exceeded"}`)}}
	a := testAdmin(f)
	a.MaxRenewInvokes = 3
	if _, err := a.Renew(context.Background(), cloud.RenewalRequest{}); err == nil || len(f.calls) != 3 {
		t.Errorf("renewal that never finishes: %v after %d invocations, want an error after 3", err, len(f.calls))
	}
}
