package deployed

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// maxScannedObject bounds what is read of one S3 object (the trust bucket's objects are
// a few KB; a private key block would be near the start of anything holding one).
const maxScannedObject = 16 << 20

// TestDeployedHoldsNoCSCAKey checks that the stack holds no CSCA private key: no KMS key
// of the account and region is the CSCA's (VAXPASS_DEPLOYED_CSCA) or signed any DSC on
// the published trust list (whatever CSCA issued it); no object of the stack's buckets
// and no function's environment holds a PRIVATE KEY block; and the stack has no SSM
// parameter or secret a key could hide in (the template declares none: one added must
// be checked here).
func TestDeployedHoldsNoCSCAKey(t *testing.T) {
	s := openStack(t)
	ctx := context.Background()

	// The CSCA certificate, and the published DSCs with the signatures their issuers made.
	var cscas []*x509.Certificate
	if path := os.Getenv(EnvCSCA); path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		block, _ := pem.Decode(b)
		if block == nil {
			t.Fatalf("%s: no PEM", path)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		cscas = append(cscas, c)
	}
	var entries []struct {
		RawData string `json:"rawData"`
	}
	s.json("GET", "/v1/trustlist", "", nil, &entries, http.StatusOK)
	var dscs []*x509.Certificate
	for _, e := range entries {
		der, err := base64.StdEncoding.DecodeString(e.RawData)
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		if c.SignatureAlgorithm != x509.ECDSAWithSHA256 {
			t.Fatalf("DSC %s signed with %s: this check knows ECDSA with SHA-256 only", c.Subject, c.SignatureAlgorithm)
		}
		dscs = append(dscs, c)
	}
	if len(dscs) == 0 {
		t.Fatal("the published trust list is empty: publish the DSC first (vaxpass dsc publish)")
	}

	// Every KMS key with a public key (asymmetric, usable) in the account and region.
	client := kms.NewFromConfig(s.cfg)
	checked := 0
	for p := kms.NewListKeysPaginator(client, &kms.ListKeysInput{}); p.HasMorePages(); {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range page.Keys {
			out, err := client.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: k.KeyArn})
			var state *kmstypes.KMSInvalidStateException
			var disabled *kmstypes.DisabledException
			var unsupported *kmstypes.UnsupportedOperationException
			switch {
			case errors.As(err, &state), errors.As(err, &disabled), errors.As(err, &unsupported):
				continue // pending deletion, disabled or symmetric: it cannot sign a certificate
			case err != nil:
				var code interface{ ErrorCode() string }
				if errors.As(err, &code) && strings.Contains(code.ErrorCode(), "InvalidKeyUsage") {
					continue
				}
				t.Fatalf("public key of %s: %v", aws.ToString(k.KeyArn), err)
			}
			pub, err := x509.ParsePKIXPublicKey(out.PublicKey)
			if err != nil {
				t.Fatalf("public key of %s: %v", aws.ToString(k.KeyArn), err)
			}
			checked++
			for _, c := range cscas {
				if c.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(pub) {
					t.Errorf("KMS key %s is the CSCA's key", aws.ToString(k.KeyArn))
				}
			}
			ec, ok := pub.(*ecdsa.PublicKey)
			if !ok {
				continue
			}
			for _, d := range dscs {
				digest := sha256.Sum256(d.RawTBSCertificate)
				if ecdsa.VerifyASN1(ec, digest[:], d.Signature) {
					t.Errorf("KMS key %s signed the published DSC %q: it is a CSCA key", aws.ToString(k.KeyArn), d.Subject.CommonName)
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("no KMS key with a public key found: the stack's DSC key at least should be")
	}

	// The stack's resources: buckets' objects, functions' environments, no SSM/secrets.
	stackName := s.outputs["StackName"]
	cfn := cloudformation.NewFromConfig(s.cfg)
	var buckets, functions []string
	for p := cloudformation.NewListStackResourcesPaginator(cfn, &cloudformation.ListStackResourcesInput{StackName: aws.String(stackName)}); p.HasMorePages(); {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range page.StackResourceSummaries {
			switch aws.ToString(r.ResourceType) {
			case "AWS::S3::Bucket":
				buckets = append(buckets, aws.ToString(r.PhysicalResourceId))
			case "AWS::Lambda::Function", "AWS::Serverless::Function":
				functions = append(functions, aws.ToString(r.PhysicalResourceId))
			case "AWS::SSM::Parameter", "AWS::SecretsManager::Secret":
				t.Errorf("the stack has a %s (%s): check here that it holds no private key", aws.ToString(r.ResourceType), aws.ToString(r.LogicalResourceId))
			}
		}
	}
	if len(buckets) == 0 || len(functions) == 0 {
		t.Fatalf("stack %s: %d buckets and %d functions found, want some of each", stackName, len(buckets), len(functions))
	}
	s3c := s3.NewFromConfig(s.cfg)
	objects := 0
	for _, b := range buckets {
		for p := s3.NewListObjectsV2Paginator(s3c, &s3.ListObjectsV2Input{Bucket: aws.String(b)}); p.HasMorePages(); {
			page, err := p.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range page.Contents {
				got, err := s3c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(b), Key: o.Key})
				if err != nil {
					t.Fatal(err)
				}
				body, err := io.ReadAll(io.LimitReader(got.Body, maxScannedObject))
				got.Body.Close()
				if err != nil {
					t.Fatal(err)
				}
				objects++
				if strings.Contains(string(body), "PRIVATE KEY") {
					t.Errorf("s3://%s/%s holds a PRIVATE KEY block", b, aws.ToString(o.Key))
				}
			}
		}
	}
	if objects == 0 {
		t.Error("no S3 object read: the trust bucket should hold the published DSC")
	}
	fn := lambda.NewFromConfig(s.cfg)
	for _, f := range functions {
		out, err := fn.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String(f)})
		if err != nil {
			t.Fatal(err)
		}
		if out.Environment == nil {
			continue
		}
		for name, v := range out.Environment.Variables {
			if strings.Contains(v, "PRIVATE KEY") {
				t.Errorf("function %s: environment variable %s holds a PRIVATE KEY block", f, name)
			}
		}
	}
	t.Logf("checked %d KMS keys, %d DSCs, %d S3 objects in %d buckets, %d functions", checked, len(dscs), objects, len(buckets), len(functions))
}
