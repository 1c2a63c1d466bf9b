// Package awskms signs with KMS keys: the DSC key of central signing (hcert.Signer) and
// the facility keys (facilitysig.Signer). Both are ECC_NIST_P256 SIGN_VERIFY keys, signed
// with SigningAlgorithm ECDSA_SHA_256 and MessageType RAW over the bytes to sign (the
// COSE ToBeSigned or the facility's canonical CBOR): KMS hashes them, which means the same
// on AWS and on the emulators. KMS answers in DER; the signers return COSE's 64-byte r||s,
// and verify it with the key's public key (GetPublicKey once, cached) before returning, so
// a signature that would not verify never leaves.
//
// Throttling is normal under bulk work: a throttled or transiently failing Sign is retried
// with exponential backoff and full jitter, at most Options.MaxAttempts calls, after which
// the error wraps ErrRetryable: nothing was signed, the caller's message stays on its
// queue and comes back. An Options.Budget paces the calls (TokenBucket). These attempts
// come on top of the SDK client's own retryer; the SDK's client-side retry quota running
// out counts as throttling too. Options.Observe sees every Sign attempt (to count KMS
// calls and throttles as metrics).
package awskms

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"
	"github.com/veraison/go-cose"

	"github.com/vaxpass/vaxpass/shared/hc1/trust"
)

// API is the part of the KMS client the signers use (*kms.Client implements it).
type API interface {
	Sign(ctx context.Context, in *kms.SignInput, opts ...func(*kms.Options)) (*kms.SignOutput, error)
	GetPublicKey(ctx context.Context, in *kms.GetPublicKeyInput, opts ...func(*kms.Options)) (*kms.GetPublicKeyOutput, error)
}

// MaxRawMessage is KMS's limit for MessageType RAW; a longer message is signed as its
// SHA-256 digest (MessageType DIGEST), which is the same ECDSA_SHA_256 signature.
const MaxRawMessage = 4096

var (
	// ErrRetryable: KMS throttled or failed transiently on every attempt; nothing was
	// signed, try again later.
	ErrRetryable = errors.New("awskms: KMS busy or unavailable, retry later")
	// ErrKey: the key is not an ECC_NIST_P256 signing key, or not the DSC's key.
	ErrKey = errors.New("awskms: unusable key")
	// ErrVerify: KMS returned a signature that does not verify with the key's public key.
	ErrVerify = errors.New("awskms: KMS signature does not verify")
	// ErrMessage: nothing to sign.
	ErrMessage = errors.New("awskms: empty message")
)

// Options configure a signer.
type Options struct {
	// Budget paces Sign calls (every attempt takes a token); nil: no pacing.
	Budget Budget
	// MaxAttempts bounds the Sign calls for one signature (default 6).
	MaxAttempts int
	// BaseDelay is the backoff cap of the first retry, doubled on each (default 50ms);
	// MaxDelay caps it (default 2s). Each delay is drawn uniformly below the cap.
	BaseDelay, MaxDelay time.Duration
	// Observe, when set, is called once per Sign call made to KMS (every attempt, after
	// it returns), on the signing goroutine: keep it quick and safe for concurrent use.
	Observe func(Outcome)
}

// Outcome is one Sign call to KMS, as Options.Observe sees it.
type Outcome struct {
	// Throttled: KMS, or the SDK's client-side retry quota, refused the call for rate;
	// nothing was signed. Count it as a throttle, not as a signature.
	Throttled bool
	// Err is the call's error; nil when KMS returned a signature (that the signer then
	// still checks).
	Err error
	// Took is the call's duration; Waited the time the Budget made it wait first.
	Took, Waited time.Duration
}

func (o Options) withDefaults() Options {
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 6
	}
	if o.BaseDelay <= 0 {
		o.BaseDelay = 50 * time.Millisecond
	}
	if o.MaxDelay <= 0 {
		o.MaxDelay = 2 * time.Second
	}
	return o
}

// Signer signs with one KMS key. It implements facilitysig.Signer. It is safe for
// concurrent use.
type Signer struct {
	client API
	keyID  string
	opt    Options
	// want is the public key the KMS key must have (the DSC's), nil when unchecked.
	want *ecdsa.PublicKey
	// sleep and jitter are the clock and randomness of backoff (tests replace them).
	sleep  func(ctx context.Context, d time.Duration) error
	jitter func(n int64) int64
	now    func() time.Time // times Outcome.Took and Waited

	mu  sync.Mutex
	pub *ecdsa.PublicKey
}

// NewSigner returns a signer for the KMS key keyID (key ID, ARN or alias).
func NewSigner(client API, keyID string, opt Options) (*Signer, error) {
	if client == nil || keyID == "" {
		return nil, fmt.Errorf("%w: a KMS client and a key ID are required", ErrKey)
	}
	return &Signer{client: client, keyID: keyID, opt: opt.withDefaults(), sleep: sleepCtx, jitter: rand.Int64N, now: time.Now}, nil
}

// PublicKey returns the key's public key, read with GetPublicKey on first use and cached
// (its quota is low: 5/s). A failed read is not cached.
func (s *Signer) PublicKey(ctx context.Context) (*ecdsa.PublicKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pub != nil {
		return s.pub, nil
	}
	var out *kms.GetPublicKeyOutput
	err := s.retry(ctx, false, func(ctx context.Context) error {
		var err error
		out, err = s.client.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: aws.String(s.keyID)})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("awskms: public key of %s: %w", s.keyID, err)
	}
	pub, err := parsePublicKey(out)
	if err != nil {
		return nil, fmt.Errorf("awskms: public key of %s: %w", s.keyID, err)
	}
	if s.want != nil && !s.want.Equal(pub) {
		return nil, fmt.Errorf("%w: KMS key %s is not the key of the DSC", ErrKey, s.keyID)
	}
	s.pub = pub
	return pub, nil
}

// parsePublicKey checks GetPublicKey's answer and parses its SubjectPublicKeyInfo.
func parsePublicKey(out *kms.GetPublicKeyOutput) (*ecdsa.PublicKey, error) {
	if out.KeySpec != "" && out.KeySpec != types.KeySpecEccNistP256 {
		return nil, fmt.Errorf("%w: key spec %s, want %s", ErrKey, out.KeySpec, types.KeySpecEccNistP256)
	}
	if out.KeyUsage != "" && out.KeyUsage != types.KeyUsageTypeSignVerify {
		return nil, fmt.Errorf("%w: key usage %s, want %s", ErrKey, out.KeyUsage, types.KeyUsageTypeSignVerify)
	}
	key, err := x509.ParsePKIXPublicKey(out.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKey, err)
	}
	pub, ok := key.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return nil, fmt.Errorf("%w: public key is %T, want ECDSA P-256", ErrKey, key)
	}
	return pub, nil
}

// Sign signs msg with ECDSA_SHA_256 and returns the signature as 64-byte r||s, verified
// with the key's public key.
func (s *Signer) Sign(ctx context.Context, msg []byte) ([]byte, error) {
	if len(msg) == 0 {
		return nil, ErrMessage
	}
	pub, err := s.PublicKey(ctx)
	if err != nil {
		return nil, err
	}
	digest := sha256.Sum256(msg)
	in := &kms.SignInput{
		KeyId:            aws.String(s.keyID),
		SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256,
		MessageType:      types.MessageTypeRaw,
		Message:          msg,
	}
	if len(msg) > MaxRawMessage {
		in.MessageType, in.Message = types.MessageTypeDigest, digest[:]
	}
	var out *kms.SignOutput
	err = s.retry(ctx, true, func(ctx context.Context) error {
		var err error
		out, err = s.client.Sign(ctx, in)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("awskms: sign with %s: %w", s.keyID, err)
	}
	sig, err := rawSignature(out.Signature)
	if err != nil {
		return nil, fmt.Errorf("awskms: sign with %s: %w", s.keyID, err)
	}
	r, ss := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
	if !ecdsa.Verify(pub, digest[:], r, ss) {
		return nil, fmt.Errorf("%w: key %s", ErrVerify, s.keyID)
	}
	return sig, nil
}

// retry calls fn until it succeeds, fails for good, or MaxAttempts calls were made,
// backed off with full jitter. When sign is true the calls are Sign calls: paced by the
// Budget (when set) and each one observed (Options.Observe).
func (s *Signer) retry(ctx context.Context, sign bool, fn func(ctx context.Context) error) error {
	var last error
	for attempt := 0; attempt < s.opt.MaxAttempts; attempt++ {
		if attempt > 0 {
			if err := s.sleep(ctx, s.backoff(attempt)); err != nil {
				return fmt.Errorf("%w (after %d attempts: %w)", err, attempt, last)
			}
		}
		start := s.now()
		if sign && s.opt.Budget != nil {
			if err := s.opt.Budget.Wait(ctx); err != nil {
				return err
			}
		}
		called := s.now()
		err := fn(ctx)
		if sign && s.opt.Observe != nil {
			s.opt.Observe(Outcome{Throttled: throttle(err), Err: err, Took: s.now().Sub(called), Waited: called.Sub(start)})
		}
		if err == nil {
			return nil
		}
		if !retryable(err) {
			return err
		}
		last = err
	}
	return fmt.Errorf("%w: %d attempts: %w", ErrRetryable, s.opt.MaxAttempts, last)
}

// backoff is the delay before attempt (1, 2, ...): uniform in [0, min(MaxDelay,
// BaseDelay*2^(attempt-1))].
func (s *Signer) backoff(attempt int) time.Duration {
	limit := s.opt.MaxDelay
	if attempt-1 < 30 {
		limit = min(limit, s.opt.BaseDelay<<(attempt-1))
	}
	return time.Duration(s.jitter(int64(limit) + 1))
}

// transientCodes are KMS error codes that a later attempt can succeed after.
var transientCodes = map[string]bool{"KMSInternalException": true, "DependencyTimeoutException": true}

// retryable reports throttling (by the service or the SDK's retry quota) and transient
// failures; never a canceled or timed-out context.
func retryable(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if throttle(err) {
		return true
	}
	var api smithy.APIError
	if errors.As(err, &api) && transientCodes[api.ErrorCode()] {
		return true
	}
	return retry.IsErrorRetryables(retry.DefaultRetryables).IsErrorRetryable(err) == aws.TrueTernary
}

// throttle reports a call refused for rate: by the service, or by the SDK's client-side
// retry quota.
func throttle(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var quota ratelimit.QuotaExceededError
	if errors.As(err, &quota) {
		return true
	}
	return retry.IsErrorThrottles(retry.DefaultThrottles).IsErrorThrottle(err) == aws.TrueTernary
}

// DSCSigner is the central signer: a KMS key certified by a DSC. It implements
// hcert.Signer (ES256, kid of the DSC).
type DSCSigner struct {
	*Signer
	kid []byte
}

// NewDSCSigner returns a signer for the KMS key keyID whose DSC is dscDER. KeyID() is the
// DSC's kid (trust.KID); the KMS key's public key must be the DSC's (checked when it is
// first read: a mismatch fails every Sign with ErrKey).
func NewDSCSigner(client API, keyID string, dscDER []byte, opt Options) (*DSCSigner, error) {
	dsc, err := x509.ParseCertificate(dscDER)
	if err != nil {
		return nil, fmt.Errorf("%w: DSC: %w", ErrKey, err)
	}
	want, ok := dsc.PublicKey.(*ecdsa.PublicKey)
	if !ok || want.Curve != elliptic.P256() {
		return nil, fmt.Errorf("%w: the DSC's key is %T, want ECDSA P-256", ErrKey, dsc.PublicKey)
	}
	s, err := NewSigner(client, keyID, opt)
	if err != nil {
		return nil, err
	}
	s.want = want
	return &DSCSigner{Signer: s, kid: trust.KID(dsc.Raw)}, nil
}

// Algorithm implements hcert.Signer: ES256.
func (s *DSCSigner) Algorithm() cose.Algorithm { return cose.AlgorithmES256 }

// KeyID implements hcert.Signer: the DSC's kid (shared; do not modify).
func (s *DSCSigner) KeyID() []byte { return s.kid }
