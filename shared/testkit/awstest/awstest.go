// Package awstest is the test helper of the AWS adapters (awsddb, awssqs, awskms): it
// gives a test the AWS configuration of the emulator (ministack, or LocalStack) and
// creates uniquely named tables, queues and keys that it deletes when the test ends.
//
// Adapter tests against AWS run only when asked to:
//
//	VAXPASS_AWS_TESTS=1 AWS_ENDPOINT_URL=http://127.0.0.1:4566 \
//	AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test \
//	go test ./shared/awsddb/... ./shared/awssqs/... ./shared/awskms/...
//
// Without VAXPASS_AWS_TESTS=1 they are skipped with a message saying so. With it, an
// unset AWS_ENDPOINT_URL is a test failure, not a fallback to a real account: these tests
// create and delete resources. The configuration comes from config.LoadDefaultConfig, as
// in production; nothing here knows which emulator answers.
package awstest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// Environment variables read by Config.
const (
	// EnvEnable must be "1" for the tests to run.
	EnvEnable = "VAXPASS_AWS_TESTS"
	// EnvEndpoint is the emulator's endpoint, e.g. http://127.0.0.1:4566 (the SDK reads
	// it too: config.LoadDefaultConfig honours it for every service).
	EnvEndpoint = "AWS_ENDPOINT_URL"
)

// cleanupTimeout bounds the deletion of a test's resources (the test's own context is
// already canceled when cleanups run).
const cleanupTimeout = 30 * time.Second

// Config returns the AWS configuration for an adapter test, or skips the test when
// VAXPASS_AWS_TESTS is not "1".
func Config(t testing.TB) aws.Config {
	t.Helper()
	if os.Getenv(EnvEnable) != "1" {
		t.Skipf("AWS adapter test skipped: set %s=1 and %s (e.g. http://127.0.0.1:4566) with a running emulator (ministack) to run it", EnvEnable, EnvEndpoint)
	}
	if os.Getenv(EnvEndpoint) == "" {
		t.Fatalf("%s=1 but %s is not set: these tests create and delete resources and only run against an emulator endpoint", EnvEnable, EnvEndpoint)
	}
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		t.Fatalf("load AWS config: %v", err)
	}
	if cfg.Region == "" {
		t.Fatalf("no AWS region: set AWS_REGION (e.g. us-east-1) and credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, any value for an emulator)")
	}
	return cfg
}

// nameChars are the characters every resource name accepts (tables, queues, aliases).
var nameChars = regexp.MustCompile(`[^A-Za-z0-9_-]+`)

// UniqueName returns a resource name unique to this run of this test: "vp-", prefix and
// part of the test name (cut to fit), then random hex; at most 64 characters.
func UniqueName(t testing.TB, prefix string) string {
	t.Helper()
	var b [5]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	test := nameChars.ReplaceAllString(t.Name(), "-")
	if len(test) > 24 {
		test = test[len(test)-24:]
	}
	suffix := "-" + hex.EncodeToString(b[:])
	name := "vp-" + prefix + "-" + strings.Trim(test, "-")
	if len(name) > 64-len(suffix) {
		name = name[:64-len(suffix)] // the random suffix always stays
	}
	return name + suffix
}

// DeleteTablesAtCleanup deletes the named DynamoDB tables when the test ends (tables that
// do not exist are ignored).
func DeleteTablesAtCleanup(t testing.TB, client *dynamodb.Client, names ...string) {
	t.Helper()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		for _, name := range names {
			_, err := client.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(name)})
			if err != nil && !isNotFound(err) {
				t.Errorf("delete table %s: %v", name, err)
			}
		}
	})
}

// Queue creates a standard SQS queue with the given attributes (nil for defaults) and
// deletes it when the test ends. It returns the queue URL.
func Queue(t testing.TB, client *sqs.Client, attributes map[string]string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	out, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(UniqueName(t, "q")), Attributes: attributes})
	if err != nil {
		t.Fatalf("create queue: %v", err)
	}
	url := aws.ToString(out.QueueUrl)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		if _, err := client.DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: aws.String(url)}); err != nil && !isNotFound(err) {
			t.Errorf("delete queue %s: %v", url, err)
		}
	})
	return url
}

// SigningKey creates a KMS ECC_NIST_P256 SIGN_VERIFY key (the DSC and facility key type)
// and schedules its deletion (after the minimum 7 days) when the test ends. It returns
// the key ID.
func SigningKey(t testing.TB, client *kms.Client) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	out, err := client.CreateKey(ctx, &kms.CreateKeyInput{
		KeySpec:     kmstypes.KeySpecEccNistP256,
		KeyUsage:    kmstypes.KeyUsageTypeSignVerify,
		Description: aws.String("vaxpass adapter test " + t.Name()),
	})
	if err != nil {
		t.Fatalf("create KMS key: %v", err)
	}
	id := aws.ToString(out.KeyMetadata.KeyId)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		_, err := client.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(id), PendingWindowInDays: aws.Int32(7)})
		if err != nil && !isNotFound(err) {
			t.Errorf("schedule deletion of KMS key %s: %v", id, err)
		}
	})
	return id
}

// isNotFound reports the "no such resource" errors of the three services.
func isNotFound(err error) bool {
	var code interface{ ErrorCode() string }
	if !errors.As(err, &code) {
		return false
	}
	switch code.ErrorCode() {
	case "ResourceNotFoundException", "AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist", "NotFoundException":
		return true
	}
	return false
}
