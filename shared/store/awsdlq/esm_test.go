package awsdlq_test

import (
	"archive/zip"
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cftypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/vaxpass/vaxpass/shared/edge/api"
	"github.com/vaxpass/vaxpass/shared/store/awsdlq"
	"github.com/vaxpass/vaxpass/shared/testkit/awstest"
)

// failingBootstrap is a provided.al2023 runtime whose every invocation fails: a matcher
// that cannot match (the registry is down).
const failingBootstrap = `#!/bin/sh
api="http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime/invocation"
while :; do
	id=$(curl -sS -D - -o /dev/null "$api/next" | tr -d '\r' | sed -n 's/^lambda-runtime-aws-request-id: *//Ip')
	curl -sS -o /dev/null -X POST -d '{"errorMessage":"registry unavailable","errorType":"Test"}' "$api/$id/error"
done
`

func zipBootstrap(t *testing.T, script string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	h := &zip.FileHeader{Name: "bootstrap", Method: zip.Deflate}
	h.SetMode(0o755)
	w, err := zw.CreateHeader(h)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte(script)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// failingMatcher deploys a function that always fails, subscribed to the doses stream as
// template.yaml subscribes the matcher (filter, on-failure destination), except for the
// record age: the emulator sends failure records only for MaximumRecordAgeInSeconds, and
// takes 1 s where AWS's minimum is 60.
func failingMatcher(t *testing.T, e *doseEnv) {
	t.Helper()
	cfg := awstest.Config(t)
	fn := lambda.NewFromConfig(cfg)
	name := awstest.UniqueName(t, "matcher")
	ctx := t.Context()
	if _, err := fn.CreateFunction(ctx, &lambda.CreateFunctionInput{
		FunctionName: aws.String(name), Runtime: lambdatypes.RuntimeProvidedal2023, Handler: aws.String("bootstrap"),
		Role: aws.String(functionRole(t, cloudformation.NewFromConfig(cfg))), Timeout: aws.Int32(10),
		Code: &lambdatypes.FunctionCode{ZipFile: zipBootstrap(t, failingBootstrap)},
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := fn.DeleteFunction(context.Background(), &lambda.DeleteFunctionInput{FunctionName: aws.String(name)}); err != nil {
			t.Errorf("delete function: %v", err)
		}
	})
	m, err := fn.CreateEventSourceMapping(ctx, &lambda.CreateEventSourceMappingInput{
		FunctionName: aws.String(name), EventSourceArn: aws.String(e.arn), StartingPosition: lambdatypes.EventSourcePositionTrimHorizon,
		BatchSize: aws.Int32(100), BisectBatchOnFunctionError: aws.Bool(true), MaximumRetryAttempts: aws.Int32(10),
		MaximumRecordAgeInSeconds: aws.Int32(1),
		FunctionResponseTypes:     []lambdatypes.FunctionResponseType{lambdatypes.FunctionResponseTypeReportBatchItemFailures},
		FilterCriteria: &lambdatypes.FilterCriteria{Filters: []lambdatypes.Filter{
			{Pattern: aws.String(`{"dynamodb":{"NewImage":{"needs_match":{"S":["1"]}}}}`)},
		}},
		DestinationConfig: &lambdatypes.DestinationConfig{OnFailure: &lambdatypes.OnFailure{Destination: aws.String(queueARN(t, e.sqs, e.failures))}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := fn.DeleteEventSourceMapping(context.Background(), &lambda.DeleteEventSourceMappingInput{UUID: m.UUID}); err != nil {
			t.Errorf("delete event source mapping: %v", err)
		}
	})
}

// functionRole creates a role Lambda can assume (through CloudFormation: the module has no
// IAM client) and returns its ARN. The function calls nothing: the role grants nothing.
func functionRole(t *testing.T, cf *cloudformation.Client) string {
	t.Helper()
	stack := awstest.UniqueName(t, "role")
	const template = `{"Resources":{"Role":{"Type":"AWS::IAM::Role","Properties":{"AssumeRolePolicyDocument":{
		"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}}}},
		"Outputs":{"Arn":{"Value":{"Fn::GetAtt":["Role","Arn"]}}}}`
	if _, err := cf.CreateStack(t.Context(), &cloudformation.CreateStackInput{
		StackName: aws.String(stack), TemplateBody: aws.String(template),
		Capabilities: []cftypes.Capability{cftypes.CapabilityCapabilityIam},
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := cf.DeleteStack(context.Background(), &cloudformation.DeleteStackInput{StackName: aws.String(stack)}); err != nil {
			t.Errorf("delete stack %s: %v", stack, err)
		}
	})
	out, err := cloudformation.NewStackCreateCompleteWaiter(cf).WaitForOutput(t.Context(), &cloudformation.DescribeStacksInput{StackName: aws.String(stack)}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range out.Stacks[0].Outputs {
		if aws.ToString(o.OutputKey) == "Arn" {
			return aws.ToString(o.OutputValue)
		}
	}
	t.Fatal("the role stack has no Arn output")
	return ""
}

// waitLetters waits until the failure queue holds n messages and lists them.
func waitLetters(t *testing.T, e *doseEnv, n int) []api.DeadLetter {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for depth(t, e.sqs, e.failures) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d failure records after 60 s, want %d", depth(t, e.sqs, e.failures), n)
		}
		time.Sleep(200 * time.Millisecond)
	}
	return list(t, e.dl, awsdlq.Matcher, "", 10)
}

// TestMatcherRedriveThroughEventSourceMapping: a real (emulated) event source mapping
// gives up on a dose change and sends its failure record; the letter names the dose, and
// the redrive makes the subscription deliver the dose to the function again (which fails
// again: a second failure record). Once the dose is matched, a redrive changes nothing and
// the function is not invoked again.
func TestMatcherRedriveThroughEventSourceMapping(t *testing.T) {
	e := newDoseEnv(t)
	failingMatcher(t, e)
	d := newDose("79-HCM-0001", "src-esm")
	e.put(t, d)

	first := waitLetters(t, e, 1)
	if len(first) != 1 || first[0].FacilityID != d.FacilityID || first[0].SourceID != d.SourceID || first[0].DeadAt.IsZero() {
		t.Fatalf("letters %+v, want one naming the dose", first)
	}
	if testing.Verbose() {
		logFailureRecord(t, e)
	}
	moved, failed, err := e.dl.Redrive(t.Context(), awsdlq.Matcher, nil)
	if err != nil || moved != 1 || failed != 0 {
		t.Fatalf("Redrive = %d, %d, %v", moved, failed, err)
	}
	second := waitLetters(t, e, 1)
	if len(second) != 1 || second[0].ID == first[0].ID || second[0].SourceID != d.SourceID {
		t.Fatalf("after the redrive: %+v, want a new failure record of the same dose (the matcher got it again)", second)
	}

	e.matched(t, d.Key())
	moved, failed, err = e.dl.Redrive(t.Context(), awsdlq.Matcher, nil)
	if err != nil || moved != 1 || failed != 0 {
		t.Fatalf("Redrive of a matched dose = %d, %d, %v", moved, failed, err)
	}
	if v := e.version(t, d.Key()); v != 3 {
		t.Fatalf("version %d, want 3 (inserted, re-flagged, matched; not written by the last redrive)", v)
	}
	time.Sleep(4 * time.Second) // several failure cycles of the emulator (1 s age, 1 s backoff)
	if n := depth(t, e.sqs, e.failures); n != 0 {
		t.Fatalf("%d failure records after redriving a matched dose, want none", n)
	}
	_, recs := e.records(t)
	if f := flagged(recs); !slices.Equal(f, []string{"src-esm", "src-esm"}) {
		t.Fatalf("changes for the matcher %v, want the insert and the re-flag", f)
	}
}

// logFailureRecord shows the emulator's failure record as it arrived (testdata keeps one).
func logFailureRecord(t *testing.T, e *doseEnv) {
	out, err := e.sqs.ReceiveMessage(t.Context(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(e.failures), VisibilityTimeout: 1})
	if err != nil || len(out.Messages) != 1 {
		t.Fatalf("receive the failure record: %v", err)
	}
	t.Logf("failure record: %s", strings.TrimSpace(aws.ToString(out.Messages[0].Body)))
	time.Sleep(1100 * time.Millisecond)
}
