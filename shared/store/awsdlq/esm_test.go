package awsdlq_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cftypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	streamtypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/vaxpass/vaxpass/shared/store/awsdlq"
	"github.com/vaxpass/vaxpass/shared/testkit/awstest"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// failingBootstrap is a provided.al2023 runtime whose every invocation fails (a matcher
// that cannot reach the registry); it appends each event it gets, one per line, to the
// file $CAPTURE.
const failingBootstrap = `#!/bin/sh
api="http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime/invocation"
while :; do
	hdr=$(mktemp)
	body=$(curl -sS -D "$hdr" "$api/next")
	id=$(tr -d '\r' <"$hdr" | sed -n 's/^lambda-runtime-aws-request-id: *//Ip')
	rm -f "$hdr"
	printf '%s\n' "$body" >>"$CAPTURE"
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
func failingMatcher(t *testing.T, e *doseEnv) (capture string) {
	t.Helper()
	cfg := awstest.Config(t)
	fn := lambda.NewFromConfig(cfg)
	name := awstest.UniqueName(t, "matcher")
	ctx := t.Context()
	capture = filepath.Join(t.TempDir(), "events")
	if _, err := fn.CreateFunction(ctx, &lambda.CreateFunctionInput{
		FunctionName: aws.String(name), Runtime: lambdatypes.RuntimeProvidedal2023, Handler: aws.String("bootstrap"),
		Role: aws.String(functionRole(t, cloudformation.NewFromConfig(cfg))), Timeout: aws.Int32(10),
		Environment: &lambdatypes.Environment{Variables: map[string]string{"CAPTURE": capture}},
		Code:        &lambdatypes.FunctionCode{ZipFile: zipBootstrap(t, failingBootstrap)},
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
		DestinationConfig: &lambdatypes.DestinationConfig{OnFailure: &lambdatypes.OnFailure{Destination: aws.String(queueARN(t, e.sqs.Client, e.failures))}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := fn.DeleteEventSourceMapping(context.Background(), &lambda.DeleteEventSourceMappingInput{UUID: m.UUID}); err != nil {
			t.Errorf("delete event source mapping: %v", err)
		}
	})
	return capture
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

// waitLetter waits until a failure record of the batch starting at sequence number seq
// is in the failure queue and returns the listing. (The emulator's poller may send a
// batch's record twice: the test looks for the batch, not a count.)
func waitLetter(t *testing.T, e *doseEnv, seq string) []vaxpass.DeadLetter {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if depth(t, e.sqs.Client, e.failures) > 0 {
			ls := list(t, e.dl, awsdlq.Matcher, "", 10)
			if slices.ContainsFunc(ls, func(l vaxpass.DeadLetter) bool { return ofBatch(l, seq) }) {
				return ls
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no failure record of the batch at %s after 60 s", seq)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// ofBatch reports a letter of the one-change batch at sequence number seq.
func ofBatch(l vaxpass.DeadLetter, seq string) bool {
	return strings.Contains(l.Reason, "sequence numbers "+seq+" to "+seq)
}

// flaggedSeqs lists the sequence numbers of the changes the matcher's filter passes.
func flaggedSeqs(t *testing.T, e *doseEnv) []string {
	t.Helper()
	_, recs := e.records(t)
	var out []string
	for _, r := range recs {
		if len(flagged([]streamtypes.Record{r})) == 1 {
			out = append(out, aws.ToString(r.Dynamodb.SequenceNumber))
		}
	}
	return out
}

// invokedWith lists the sequence numbers of the changes the function was invoked with.
func invokedWith(t *testing.T, capture string) []string {
	t.Helper()
	b, err := os.ReadFile(capture)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var seqs []string
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var ev events.DynamoDBEvent
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			continue // a line being written
		}
		for _, r := range ev.Records {
			seqs = append(seqs, r.Change.SequenceNumber)
		}
	}
	return seqs
}

// waitInvoked waits until the function was invoked with the change at seq.
func waitInvoked(t *testing.T, capture, seq string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !slices.Contains(invokedWith(t, capture), seq) {
		if time.Now().After(deadline) {
			t.Fatalf("the function was not invoked with the change at %s within 30 s (invoked with %v)", seq, invokedWith(t, capture))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestMatcherRedriveThroughEventSourceMapping: a real (emulated) event source mapping
// gives up on a dose change and sends its failure record; the letter names the dose, and
// the redrive makes the subscription deliver the dose to the function again. Once the
// dose is matched, a redrive writes nothing and nothing more reaches the function.
func TestMatcherRedriveThroughEventSourceMapping(t *testing.T) {
	e := newDoseEnv(t)
	capture := failingMatcher(t, e)
	d := newDose("79-HCM-0001", "src-esm")
	e.put(t, d)
	inserted := flaggedSeqs(t, e)
	if len(inserted) != 1 {
		t.Fatalf("changes for the matcher %v, want the insert", inserted)
	}

	first := waitLetter(t, e, inserted[0])
	for _, l := range first {
		if l.FacilityID != d.FacilityID || l.SourceID != d.SourceID || l.DeadAt.IsZero() || l.SentAt.IsZero() {
			t.Fatalf("letter %+v, want one naming the dose", l)
		}
	}
	if testing.Verbose() {
		logFailureRecord(t, e)
	}
	moved, failed, err := redrive(t, e.dl, awsdlq.Matcher, nil)
	if err != nil || moved < len(first) || failed != 0 {
		t.Fatalf("Redrive = %d, %d, %v; want the %d letters moved", moved, failed, err, len(first))
	}
	seqs := flaggedSeqs(t, e)
	if len(seqs) != 2 || seqs[0] != inserted[0] {
		t.Fatalf("changes for the matcher %v, want the insert and the re-flag", seqs)
	}
	waitInvoked(t, capture, seqs[1]) // the function got the dose again
	for _, l := range list(t, e.dl, awsdlq.Matcher, "", 10) {
		if slices.ContainsFunc(first, func(f vaxpass.DeadLetter) bool { return f.ID == l.ID }) {
			t.Fatalf("letter %s was redriven and is still there", l.ID)
		}
	}

	e.matched(t, d.Key())
	if _, failed, err := redrive(t, e.dl, awsdlq.Matcher, nil); err != nil || failed != 0 {
		t.Fatalf("Redrive after the match = %d failed, %v", failed, err)
	}
	if v := e.version(t, d.Key()); v != 3 {
		t.Fatalf("version %d, want 3 (inserted, re-flagged, matched; not written again)", v)
	}
	time.Sleep(3 * time.Second) // several poll cycles of the emulator
	if got := flaggedSeqs(t, e); !slices.Equal(got, seqs) {
		t.Fatalf("changes for the matcher %v, want still %v", got, seqs)
	}
	for _, seq := range invokedWith(t, capture) {
		if seq != seqs[0] && seq != seqs[1] {
			t.Fatalf("the function got the change at %s: want only the insert and the re-flag (%v)", seq, seqs)
		}
	}
}

// logFailureRecord shows the emulator's failure record as it arrived (testdata keeps one).
func logFailureRecord(t *testing.T, e *doseEnv) {
	out, err := e.sqs.Client.ReceiveMessage(t.Context(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(e.failures), VisibilityTimeout: 1})
	if err != nil || len(out.Messages) != 1 {
		t.Fatalf("receive the failure record: %v", err)
	}
	t.Logf("failure record: %s", strings.TrimSpace(aws.ToString(out.Messages[0].Body)))
	time.Sleep(1100 * time.Millisecond)
}
