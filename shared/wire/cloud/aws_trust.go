package cloud

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/vaxpass/vaxpass/shared/hc1/trust"
)

// Objects of the trust bucket. The DSC tool writes them after deploy (README "Deploying"):
// the functions only read.
const (
	// DSCObject is the certificate of the DSC key currently signing (one PEM CERTIFICATE).
	DSCObject = "dsc.pem"
	// TrustListObject is every DSC still needed by a live certificate (a PEM bundle),
	// published by GET /v1/trustlist.
	TrustListObject = "trustlist.pem"
	// maxTrustObject bounds what is read from the bucket.
	maxTrustObject = 1 << 20
)

// ErrTrustNotProvisioned: the trust bucket has no DSC or trust list yet (run the DSC tool).
var ErrTrustNotProvisioned = errors.New("DSC and trust list not provisioned in the trust bucket")

// S3API is the part of the S3 client the trust source uses (*s3.Client implements it).
type S3API interface {
	GetObject(ctx context.Context, in *s3.GetObjectInput, opts ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	PutObject(ctx context.Context, in *s3.PutObjectInput, opts ...func(*s3.Options)) (*s3.PutObjectOutput, error)
}

// s3Trust reads the DSC and the trust list from the trust bucket, caching each for ttl so
// a rotation is seen within minutes without a read per request. It implements
// hcert.TrustResolver.
type s3Trust struct {
	client S3API
	bucket string
	ttl    time.Duration
	now    func() time.Time

	mu     sync.Mutex
	list   *trust.List
	listAt time.Time
	dsc    *x509.Certificate
	dscAt  time.Time
}

func newS3Trust(client S3API, bucket string, ttl time.Duration, now func() time.Time) *s3Trust {
	return &s3Trust{client: client, bucket: bucket, ttl: ttl, now: now}
}

// TrustList returns the trust list (cached).
func (t *s3Trust) TrustList(ctx context.Context) (*trust.List, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.list != nil && t.now().Sub(t.listAt) < t.ttl {
		return t.list, nil
	}
	data, err := getObject(ctx, t.client, t.bucket, TrustListObject)
	if err != nil {
		if t.list != nil {
			return t.list, nil // keep serving the last good list through an S3 hiccup
		}
		return nil, err
	}
	list, err := trust.ParsePEM(data)
	if err != nil {
		return nil, fmt.Errorf("trust list s3://%s/%s: %w", t.bucket, TrustListObject, err)
	}
	t.list, t.listAt = list, t.now()
	return list, nil
}

// LookupKID implements hcert.TrustResolver.
func (t *s3Trust) LookupKID(ctx context.Context, kid []byte) ([]*x509.Certificate, error) {
	list, err := t.TrustList(ctx)
	if err != nil {
		return nil, err
	}
	return list.LookupKID(ctx, kid)
}

// TrustListJSON is GET /v1/trustlist's body.
func (t *s3Trust) TrustListJSON(ctx context.Context) ([]byte, error) {
	list, err := t.TrustList(ctx)
	if err != nil {
		return nil, err
	}
	return list.MarshalJSON()
}

// DSC returns the current DSC certificate (cached).
func (t *s3Trust) DSC(ctx context.Context) (*x509.Certificate, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.dsc != nil && t.now().Sub(t.dscAt) < t.ttl {
		return t.dsc, nil
	}
	data, err := getObject(ctx, t.client, t.bucket, DSCObject)
	if err != nil {
		if t.dsc != nil {
			return t.dsc, nil
		}
		return nil, err
	}
	dsc, err := parseOneCert(data)
	if err != nil {
		return nil, fmt.Errorf("DSC s3://%s/%s: %w", t.bucket, DSCObject, err)
	}
	t.dsc, t.dscAt = dsc, t.now()
	return dsc, nil
}

func getObject(ctx context.Context, client S3API, bucket, key string) ([]byte, error) {
	out, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		var nsk *s3types.NoSuchKey
		if errors.As(err, &nsk) {
			return nil, fmt.Errorf("%w: s3://%s/%s does not exist", ErrTrustNotProvisioned, bucket, key)
		}
		return nil, fmt.Errorf("read s3://%s/%s: %w", bucket, key, err)
	}
	defer out.Body.Close()
	data, err := io.ReadAll(io.LimitReader(out.Body, maxTrustObject+1))
	if err != nil {
		return nil, fmt.Errorf("read s3://%s/%s: %w", bucket, key, err)
	}
	if len(data) > maxTrustObject {
		return nil, fmt.Errorf("s3://%s/%s is larger than %d bytes", bucket, key, maxTrustObject)
	}
	return data, nil
}

func parseOneCert(data []byte) (*x509.Certificate, error) {
	block, rest := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("want one PEM CERTIFICATE block")
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, errors.New("data after the CERTIFICATE block")
	}
	return x509.ParseCertificate(block.Bytes)
}

// DSCPublication is what PublishDSC wrote.
type DSCPublication struct {
	DSC *x509.Certificate
	// TrustList is the published list: the new DSC plus every earlier one kept.
	TrustList *trust.List
}

// PublishDSC certifies the DSC key's public key (from KMS) with the CSCA and publishes it:
// dsc.pem becomes the new DSC and trustlist.pem the earlier list plus the new DSC (earlier
// DSCs stay listed: certificates they signed are still live). Run it after the first
// deploy and to roll the DSC over; the functions see it within their cache TTL.
func PublishDSC(ctx context.Context, s3c S3API, bucket string, dscPublicKey crypto.PublicKey, csca *x509.Certificate, cscaKey crypto.Signer, opt trust.DSCOptions) (DSCPublication, error) {
	var pub DSCPublication
	if _, ok := dscPublicKey.(*ecdsa.PublicKey); !ok {
		return pub, fmt.Errorf("DSC key: want an ECDSA P-256 public key, got %T", dscPublicKey)
	}
	dsc, err := trust.CreateDSC(dscPublicKey, csca, cscaKey, opt)
	if err != nil {
		return pub, err
	}
	list, err := trust.NewList()
	if err != nil {
		return pub, err
	}
	old, err := getObject(ctx, s3c, bucket, TrustListObject)
	switch {
	case err == nil:
		if list, err = trust.ParsePEM(old); err != nil {
			return pub, fmt.Errorf("existing trust list: %w", err)
		}
	case !errors.Is(err, ErrTrustNotProvisioned):
		return pub, err
	}
	if err := list.Add("", dsc); err != nil {
		return pub, fmt.Errorf("add DSC to the trust list: %w", err)
	}
	// The trust list first: a certificate signed with the new DSC must verify the moment
	// it exists.
	if err := putObject(ctx, s3c, bucket, TrustListObject, list.MarshalPEM()); err != nil {
		return pub, err
	}
	if err := putObject(ctx, s3c, bucket, DSCObject, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: dsc.Raw})); err != nil {
		return pub, err
	}
	return DSCPublication{DSC: dsc, TrustList: list}, nil
}

func putObject(ctx context.Context, client S3API, bucket, key string, data []byte) error {
	_, err := client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(data),
		ContentType: aws.String("application/x-pem-file"),
	})
	if err != nil {
		return fmt.Errorf("write s3://%s/%s: %w", bucket, key, err)
	}
	return nil
}
