package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/vaxpass/vaxpass/shared/hc1/trust"
	"github.com/vaxpass/vaxpass/shared/store/awsstack"
	"github.com/vaxpass/vaxpass/shared/store/filekeys"
	"github.com/vaxpass/vaxpass/shared/testkit/awstest"
)

// newCSCADir runs csca create into a new directory and returns it.
func newCSCADir(t *testing.T, extra ...string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "csca")
	if code, _, stderr := runCLI("", append([]string{"csca", "create", "--out", dir}, extra...)...); code != 0 {
		t.Fatalf("csca create: exit %d: %s", code, stderr)
	}
	return dir
}

func TestDSCPublishUsage(t *testing.T) {
	t.Setenv(awsstack.EnvStack, "")
	csca := newCSCADir(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"dsc"}, "usage: vaxpass dsc publish"},
		{[]string{"dsc", "roll"}, "usage: vaxpass dsc publish"},
		{[]string{"dsc", "publish", "--backend", "gcp", "--stack", "s", "--csca-dir", csca}, "--backend must be embedded or aws"},
		{[]string{"dsc", "publish", "--data", filepath.Dir(csca), "--csca-dir", csca}, "inside the data directory"},
		{[]string{"dsc", "publish", "--backend", "aws", "--stack", "s"}, "--csca-dir DIR is required"},
		{[]string{"dsc", "publish", "--backend", "aws", "--csca-dir", csca}, "--stack NAME or set VAXPASS_STACK"},
		{[]string{"dsc", "publish", "--backend", "aws", "--stack", "s", "--csca-dir", csca, "x"}, `unexpected argument "x"`},
		{[]string{"dsc", "publish", "--backend", "aws", "--stack", "s", "--csca-dir", csca, "--valid-days", "0"}, "--valid-days"},
		{[]string{"dsc", "publish", "--backend", "aws", "--stack", "s", "--csca-dir", csca, "--valid-days", "300"}, "too short"},
		{[]string{"dsc", "publish", "--backend", "aws", "--stack", "s", "--csca-dir", csca, "--valid-days", "abc"}, "invalid value"},
	} {
		code, stdout, stderr := runCLI("", tc.args...)
		if code != 2 || !strings.Contains(stderr, tc.want) || stdout != "" {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, code, stderr, tc.want)
		}
	}
	if code, _, stderr := runCLI("", "dsc", "publish", "-h"); code != 0 || !strings.Contains(stderr, "--csca-dir") {
		t.Errorf("help: exit %d, %s", code, stderr)
	}
}

// The CSCA is read and checked before any AWS call: these fail without an AWS
// configuration at all.
func TestDSCPublishBadCSCA(t *testing.T) {
	t.Setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1") // nothing answers: an AWS call would fail differently
	empty := t.TempDir()
	code, _, stderr := runCLI("", "dsc", "publish", "--backend", "aws", "--stack", "s", "--csca-dir", empty)
	if code != 1 || !strings.Contains(stderr, "CSCA") || !strings.Contains(stderr, "csca.pem") {
		t.Errorf("empty CSCA directory: exit %d, %s", code, stderr)
	}
	// A CSCA ending within the 13 months a DSC needs.
	short := newCSCADir(t, "--years", "1")
	code, _, stderr = runCLI("", "dsc", "publish", "--backend", "aws", "--stack", "s", "--csca-dir", short)
	if code != 1 || !strings.Contains(stderr, "make a new CSCA") {
		t.Errorf("CSCA ending in a year: exit %d, %s", code, stderr)
	}
}

func TestDSCValidity(t *testing.T) {
	now := time.Date(2027, 3, 10, 12, 0, 0, 0, time.UTC)
	cscaWithKey := func(country string, nb, na time.Time) (*x509.Certificate, *ecdsa.PrivateKey) {
		c, k, err := trust.NewCSCA(trust.CSCAOptions{Subject: pkix.Name{Country: []string{country}}, NotBefore: nb, NotAfter: na})
		if err != nil {
			t.Fatal(err)
		}
		return c, k
	}
	csca := func(country string, nb, na time.Time) *x509.Certificate {
		c, _ := cscaWithKey(country, nb, na)
		return c
	}
	long, longKey := cscaWithKey("LA", now.AddDate(-1, 0, 0), now.AddDate(3, 0, 0))
	opt, err := dscValidity(long, now, 730)
	if err != nil {
		t.Fatal(err)
	}
	if !opt.NotBefore.Equal(now.Add(-time.Hour)) || !opt.NotAfter.Equal(now.Add(-time.Hour).AddDate(0, 0, 730)) {
		t.Errorf("validity %s..%s", opt.NotBefore, opt.NotAfter)
	}
	if strings.Join(opt.Subject.Country, ",") != "LA" || opt.Subject.CommonName != "LA DGC DSC" {
		t.Errorf("subject %v, want the CSCA's country", opt.Subject)
	}
	// trust.CreateDSC accepts the options (the validity lies within the CSCA's).
	if _, err := trust.CreateDSC(&longKey.PublicKey, long, longKey, opt); err != nil {
		t.Errorf("CreateDSC with the options: %v", err)
	}

	// Cut to the CSCA's end when that still leaves 13 months.
	mid := csca("VN", now.Add(-30*time.Minute), now.AddDate(1, 6, 0))
	opt, err = dscValidity(mid, now, 730)
	if err != nil {
		t.Fatal(err)
	}
	if !opt.NotAfter.Equal(mid.NotAfter) || !opt.NotBefore.Equal(mid.NotBefore) {
		t.Errorf("validity %s..%s, want within the CSCA's %s..%s", opt.NotBefore, opt.NotAfter, mid.NotBefore, mid.NotAfter)
	}
	if opt.NotAfter.Before(filekeys.DSCMinRemaining(now)) {
		t.Error("DSC shorter than the minimum")
	}

	for name, c := range map[string]*x509.Certificate{
		"CSCA ending in 10 months": csca("VN", now.AddDate(-1, 0, 0), now.AddDate(0, 10, 0)),
		"CSCA not yet valid":       csca("VN", now.Add(time.Hour), now.AddDate(4, 0, 0)),
		"CSCA expired":             csca("VN", now.AddDate(-5, 0, 0), now.AddDate(0, 0, -1)),
	} {
		if _, err := dscValidity(c, now, 730); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := dscValidity(long, now, 200); err == nil {
		t.Error("200 days: no error")
	}
}

// dscTestTemplate is the part of template.yaml dsc publish uses: the DSC's KMS key and the
// trust bucket, as outputs DscKeyArn and TrustBucket.
const dscTestTemplate = `{
  "AWSTemplateFormatVersion": "2010-09-09",
  "Resources": {
    "DscKey": {"Type": "AWS::KMS::Key", "Properties": {
      "KeySpec": "ECC_NIST_P256", "KeyUsage": "SIGN_VERIFY",
      "KeyPolicy": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"AWS": {"Fn::Sub": "arn:aws:iam::${AWS::AccountId}:root"}}, "Action": "kms:*", "Resource": "*"}]}}},
    "TrustBucket": {"Type": "AWS::S3::Bucket"}
  },
  "Outputs": {
    "DscKeyArn": {"Value": {"Fn::GetAtt": ["DscKey", "Arn"]}},
    "TrustBucket": {"Value": {"Ref": "TrustBucket"}}
  }
}`

// createTestStack deploys template as a new stack and deletes it (its bucket emptied
// first) when the test ends.
func createTestStack(t *testing.T, cfg aws.Config, template string) (string, map[string]string) {
	t.Helper()
	ctx := t.Context()
	cfn := cloudformation.NewFromConfig(cfg)
	name := strings.ReplaceAll(awstest.UniqueName(t, "stack"), "_", "-")
	if _, err := cfn.CreateStack(ctx, &cloudformation.CreateStackInput{StackName: aws.String(name), TemplateBody: aws.String(template)}); err != nil {
		t.Fatalf("create stack: %v", err)
	}
	var outputs map[string]string
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if b := outputs["TrustBucket"]; b != "" {
			emptyBucket(ctx, t, s3.NewFromConfig(cfg), b)
		}
		if _, err := cfn.DeleteStack(ctx, &cloudformation.DeleteStackInput{StackName: aws.String(name)}); err != nil {
			t.Errorf("delete stack %s: %v", name, err)
		}
	})
	waiter := cloudformation.NewStackCreateCompleteWaiter(cfn, func(o *cloudformation.StackCreateCompleteWaiterOptions) {
		o.MinDelay, o.MaxDelay = 200*time.Millisecond, 2*time.Second
	})
	if err := waiter.Wait(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(name)}, 3*time.Minute); err != nil {
		t.Fatalf("stack %s not created: %v", name, err)
	}
	outputs, err := awsstack.Outputs(ctx, cfn, name)
	if err != nil {
		t.Fatal(err)
	}
	return name, outputs
}

func emptyBucket(ctx context.Context, t *testing.T, client *s3.Client, bucket string) {
	out, err := client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	if err != nil {
		t.Errorf("list s3://%s: %v", bucket, err)
		return
	}
	for _, o := range out.Contents {
		if _, err := client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: o.Key}); err != nil {
			t.Errorf("delete s3://%s/%s: %v", bucket, aws.ToString(o.Key), err)
		}
	}
}

func readObject(t *testing.T, client *s3.Client, bucket, key string) []byte {
	t.Helper()
	out, err := client.GetObject(t.Context(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("read s3://%s/%s: %v", bucket, key, err)
	}
	defer out.Body.Close()
	data, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// published reads dsc.pem and trustlist.pem of the bucket.
func published(t *testing.T, client *s3.Client, bucket string) (*x509.Certificate, *trust.List) {
	t.Helper()
	dscPEM := readObject(t, client, bucket, "dsc.pem")
	list, err := trust.ParsePEM(readObject(t, client, bucket, "trustlist.pem"))
	if err != nil {
		t.Fatal(err)
	}
	one, err := trust.ParsePEM(dscPEM)
	if err != nil || one.Len() != 1 {
		t.Fatalf("dsc.pem: %v, %d certificates", err, one.Len())
	}
	return one.Entries()[0].Certificate, list
}

// The operator's sequence on a stack: csca create, dsc publish, dsc publish again (roll-over).
func TestDSCPublishOnEmulator(t *testing.T) {
	cfg := awstest.Config(t)
	stack, outputs := createTestStack(t, cfg, dscTestTemplate)
	bucket, keyARN := outputs["TrustBucket"], outputs["DscKeyArn"]
	s3c := s3.NewFromConfig(cfg)
	cscaDir := newCSCADir(t)
	csca, _, err := loadCSCADir(cscaDir)
	if err != nil {
		t.Fatal(err)
	}
	kmsPub, err := kms.NewFromConfig(cfg).GetPublicKey(t.Context(), &kms.GetPublicKeyInput{KeyId: aws.String(keyARN)})
	if err != nil {
		t.Fatal(err)
	}
	wantPub, err := x509.ParsePKIXPublicKey(kmsPub.PublicKey)
	if err != nil {
		t.Fatal(err)
	}

	t.Setenv(awsstack.EnvStack, "")
	code, stdout, stderr := runCLI("", "dsc", "publish", "--backend", "aws", "--stack", stack, "--csca-dir", cscaDir)
	if code != 0 {
		t.Fatalf("dsc publish: exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "trust list: 1 DSC") || !strings.Contains(stdout, bucket) {
		t.Errorf("stdout %q", stdout)
	}
	dsc1, list := published(t, s3c, bucket)
	if err := trust.CheckIssuedBy(dsc1, csca); err != nil {
		t.Error(err)
	}
	if k, ok := wantPub.(*ecdsa.PublicKey); !ok || !k.Equal(dsc1.PublicKey) {
		t.Error("the DSC does not certify the stack's KMS key")
	}
	if err := trust.CheckKeyUsage(dsc1, trust.Vaccination); err != nil {
		t.Error(err)
	}
	if got := dsc1.NotAfter.Sub(dsc1.NotBefore); got != 730*24*time.Hour {
		t.Errorf("DSC validity %s, want 730 days", got)
	}
	if list.Len() != 1 || len(list.ByKID(trust.KID(dsc1.Raw))) != 1 {
		t.Fatalf("trust list %d entries, want the DSC", list.Len())
	}
	js, err := list.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var entries []map[string]string
	if err := json.Unmarshal(js, &entries); err != nil || entries[0]["country"] != "VN" || entries[0]["certificateType"] != "DSC" {
		t.Errorf("trust list JSON %s (%v)", js, err)
	}

	// Again, the stack from the environment: a new DSC for the same key; the first stays
	// listed for the certificates it signed.
	t.Setenv(awsstack.EnvStack, stack)
	code, stdout, stderr = runCLI("", "dsc", "publish", "--backend", "aws", "--csca-dir", cscaDir, "--valid-days", "500")
	if code != 0 {
		t.Fatalf("second dsc publish: exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "trust list: 2 DSC") {
		t.Errorf("stdout %q", stdout)
	}
	dsc2, list := published(t, s3c, bucket)
	if bytes.Equal(dsc2.Raw, dsc1.Raw) {
		t.Fatal("dsc.pem not replaced")
	}
	if got := dsc2.NotAfter.Sub(dsc2.NotBefore); got != 500*24*time.Hour {
		t.Errorf("second DSC validity %s, want 500 days", got)
	}
	if list.Len() != 2 || len(list.ByKID(trust.KID(dsc1.Raw))) != 1 || len(list.ByKID(trust.KID(dsc2.Raw))) != 1 {
		t.Errorf("trust list %d entries, want both DSCs", list.Len())
	}
	for _, e := range list.Entries() {
		if err := trust.CheckIssuedBy(e.Certificate, csca); err != nil {
			t.Error(err)
		}
	}
}

func TestDSCPublishStackProblemsOnEmulator(t *testing.T) {
	cfg := awstest.Config(t)
	cscaDir := newCSCADir(t)
	missing := strings.ReplaceAll(awstest.UniqueName(t, "nostack"), "_", "-")
	code, _, stderr := runCLI("", "dsc", "publish", "--backend", "aws", "--stack", missing, "--csca-dir", cscaDir)
	if code != 1 || !strings.Contains(stderr, missing) || !strings.Contains(stderr, "does not exist") {
		t.Errorf("missing stack: exit %d, %s", code, stderr)
	}
	// A stack that is not a vaxpass stack.
	other, _ := createTestStack(t, cfg, `{"Resources": {"Queue": {"Type": "AWS::SQS::Queue"}}, "Outputs": {"Q": {"Value": {"Ref": "Queue"}}}}`)
	code, _, stderr = runCLI("", "dsc", "publish", "--backend", "aws", "--stack", other, "--csca-dir", cscaDir)
	if code != 1 || !strings.Contains(stderr, "DscKeyArn") {
		t.Errorf("stack without the outputs: exit %d, %s", code, stderr)
	}
}
