package awsstack_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/vaxpass/vaxpass/shared/store/awsstack"
	"github.com/vaxpass/vaxpass/shared/testkit/awstest"
)

// tinyTemplate is one queue and two outputs: a reference and a constant.
const tinyTemplate = `{
  "AWSTemplateFormatVersion": "2010-09-09",
  "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
  "Outputs": {
    "QueueUrl": {"Value": {"Ref": "Queue"}},
    "Greeting": {"Value": "xin chao"}
  }
}`

// A stack deployed with CreateStack is read back by name: its outputs, the reference
// resolved to the queue that exists.
func TestOutputsOnEmulator(t *testing.T) {
	cfg := awstest.Config(t)
	ctx := t.Context()
	cfn := cloudformation.NewFromConfig(cfg)
	// Stack names: a letter, then letters, digits and hyphens.
	name := strings.ReplaceAll(awstest.UniqueName(t, "stack"), "_", "-")
	if _, err := cfn.CreateStack(ctx, &cloudformation.CreateStackInput{StackName: aws.String(name), TemplateBody: aws.String(tinyTemplate)}); err != nil {
		t.Fatalf("create stack: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := cfn.DeleteStack(ctx, &cloudformation.DeleteStackInput{StackName: aws.String(name)}); err != nil {
			t.Errorf("delete stack %s: %v", name, err)
		}
	})
	waiter := cloudformation.NewStackCreateCompleteWaiter(cfn, func(o *cloudformation.StackCreateCompleteWaiterOptions) {
		o.MinDelay, o.MaxDelay = 200*time.Millisecond, 2*time.Second
	})
	if err := waiter.Wait(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(name)}, 2*time.Minute); err != nil {
		t.Fatalf("stack %s not created: %v", name, err)
	}

	out, err := awsstack.Outputs(ctx, cfn, name)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 2 || out["Greeting"] != "xin chao" || out["QueueUrl"] == "" {
		t.Fatalf("outputs %v", out)
	}
	// The output names a real resource: the queue answers.
	if _, err := sqs.NewFromConfig(cfg).GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(out["QueueUrl"])}); err != nil {
		t.Errorf("queue of output QueueUrl %q: %v", out["QueueUrl"], err)
	}
}

func TestOutputsMissingStackOnEmulator(t *testing.T) {
	cfg := awstest.Config(t)
	name := strings.ReplaceAll(awstest.UniqueName(t, "nostack"), "_", "-")
	_, err := awsstack.Outputs(t.Context(), cloudformation.NewFromConfig(cfg), name)
	if !errors.Is(err, awsstack.ErrStackNotFound) || !strings.Contains(err.Error(), name) {
		t.Fatalf("Outputs of a missing stack: %v, want ErrStackNotFound naming %s", err, name)
	}
}
