package awskms

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"

	"github.com/vaxpass/vaxpass/shared/domain/facilitysig"
)

// fakeKMS is a KMS over a software key whose Sign fails with the queued errors first
// (throttling cannot be provoked on an emulator, which has no rate limits).
type fakeKMS struct {
	key *ecdsa.PrivateKey

	mu        sync.Mutex
	failures  []error // returned by the next Sign calls, in order
	signCalls int
	pubCalls  int
	lastType  types.MessageType
	corrupt   bool // return a signature by another key
}

func newFakeKMS(t *testing.T, failures ...error) *fakeKMS {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &fakeKMS{key: k, failures: failures}
}

func (f *fakeKMS) Sign(ctx context.Context, in *kms.SignInput, _ ...func(*kms.Options)) (*kms.SignOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.signCalls++
	f.lastType = in.MessageType
	if len(f.failures) > 0 {
		err := f.failures[0]
		f.failures = f.failures[1:]
		return nil, err
	}
	if in.SigningAlgorithm != types.SigningAlgorithmSpecEcdsaSha256 {
		return nil, &smithy.GenericAPIError{Code: "ValidationException", Message: "algorithm"}
	}
	digest := in.Message
	if in.MessageType == types.MessageTypeRaw {
		d := sha256.Sum256(in.Message)
		digest = d[:]
	}
	key := f.key
	if f.corrupt {
		key, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	der, err := ecdsa.SignASN1(rand.Reader, key, digest)
	if err != nil {
		return nil, err
	}
	return &kms.SignOutput{Signature: der, SigningAlgorithm: in.SigningAlgorithm}, nil
}

func (f *fakeKMS) GetPublicKey(ctx context.Context, in *kms.GetPublicKeyInput, _ ...func(*kms.Options)) (*kms.GetPublicKeyOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pubCalls++
	der, err := x509.MarshalPKIXPublicKey(&f.key.PublicKey)
	if err != nil {
		return nil, err
	}
	return &kms.GetPublicKeyOutput{PublicKey: der, KeySpec: types.KeySpecEccNistP256, KeyUsage: types.KeyUsageTypeSignVerify}, nil
}

// countingBudget counts Wait calls.
type countingBudget struct {
	mu    sync.Mutex
	waits int
}

func (b *countingBudget) Wait(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.waits++
	return ctx.Err()
}

// testSigner is a signer over f whose backoff sleeps are recorded, not slept.
func testSigner(t *testing.T, f *fakeKMS, opt Options) (*Signer, *[]time.Duration) {
	t.Helper()
	s, err := NewSigner(f, "alias/test", opt)
	if err != nil {
		t.Fatal(err)
	}
	var sleeps []time.Duration
	s.sleep = func(ctx context.Context, d time.Duration) error {
		sleeps = append(sleeps, d)
		return ctx.Err()
	}
	return s, &sleeps
}

func throttled() error {
	return &smithy.GenericAPIError{Code: "ThrottlingException", Message: "Rate exceeded"}
}

func verifies(pub *ecdsa.PublicKey, msg, sig []byte) bool {
	d := sha256.Sum256(msg)
	return len(sig) == 64 && ecdsa.Verify(pub, d[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:]))
}

func TestSignRetries(t *testing.T) {
	internal := &smithy.GenericAPIError{Code: "KMSInternalException", Message: "internal"}
	denied := &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "not authorized to perform: kms:Sign"}
	for _, tc := range []struct {
		name      string
		failures  []error
		wantCalls int
		wantErr   error // nil: signed
		retryable bool
	}{
		{"no failure", nil, 1, nil, false},
		{"throttled twice", []error{throttled(), throttled()}, 3, nil, false},
		{"SDK retry quota exhausted", []error{ratelimit.QuotaExceededError{Available: 0, Requested: 5}}, 2, nil, false},
		{"transient KMS failure", []error{internal, throttled()}, 3, nil, false},
		{"throttled past the budget", []error{throttled(), throttled(), throttled(), throttled(), throttled()}, 4, ErrRetryable, true},
		{"access denied: not retried", []error{denied}, 1, denied, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeKMS(t, tc.failures...)
			budget := &countingBudget{}
			opt := Options{Budget: budget, MaxAttempts: 4, BaseDelay: 10 * time.Millisecond, MaxDelay: 25 * time.Millisecond}
			s, sleeps := testSigner(t, f, opt)
			msg := []byte("to be signed")
			sig, err := s.Sign(t.Context(), msg)
			if f.signCalls != tc.wantCalls {
				t.Errorf("%d Sign calls, want %d", f.signCalls, tc.wantCalls)
			}
			if budget.waits != tc.wantCalls {
				t.Errorf("%d budget waits for %d calls", budget.waits, tc.wantCalls)
			}
			if len(*sleeps) != tc.wantCalls-1 {
				t.Errorf("%d backoff sleeps for %d calls", len(*sleeps), tc.wantCalls)
			}
			for i, d := range *sleeps {
				if limit := min(opt.MaxDelay, opt.BaseDelay<<i); d < 0 || d > limit {
					t.Errorf("sleep %d: %v outside [0, %v]", i, d, limit)
				}
			}
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("error %v, want %v", err, tc.wantErr)
				}
				if errors.Is(err, ErrRetryable) != tc.retryable {
					t.Errorf("retryable %v, want %v", errors.Is(err, ErrRetryable), tc.retryable)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !verifies(&f.key.PublicKey, msg, sig) {
				t.Error("signature does not verify")
			}
		})
	}
}

// clockBudget is a Budget whose Wait advances a fake clock by wait.
type clockBudget struct {
	clock *fakeClock
	wait  time.Duration
}

func (b clockBudget) Wait(ctx context.Context) error {
	b.clock.advance(b.wait)
	return ctx.Err()
}

// fakeClock advances by step on every reading.
type fakeClock struct {
	mu   sync.Mutex
	t    time.Time
	step time.Duration
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(c.step)
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestSignObserved(t *testing.T) {
	internal := &smithy.GenericAPIError{Code: "KMSInternalException", Message: "internal"}
	denied := &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "not authorized to perform: kms:Sign"}
	quota := ratelimit.QuotaExceededError{Available: 0, Requested: 5}
	for _, tc := range []struct {
		name      string
		failures  []error
		want      []Outcome // Took and Waited filled in below
		signature bool
	}{
		{"signed at once", nil, []Outcome{{}}, true},
		{"throttles, a transient failure, then signed", []error{throttled(), quota, internal},
			[]Outcome{{Throttled: true, Err: throttled()}, {Throttled: true, Err: quota}, {Err: internal}, {}}, true},
		{"denied", []error{denied}, []Outcome{{Err: denied}}, false},
		{"throttled on every attempt", []error{throttled(), throttled(), throttled(), throttled()},
			[]Outcome{{Throttled: true, Err: throttled()}, {Throttled: true, Err: throttled()}, {Throttled: true, Err: throttled()}, {Throttled: true, Err: throttled()}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeKMS(t, tc.failures...)
			clock := &fakeClock{t: time.Unix(1e9, 0), step: 3 * time.Millisecond}
			var got []Outcome
			opt := Options{MaxAttempts: 4, Budget: clockBudget{clock, 40 * time.Millisecond}, Observe: func(o Outcome) { got = append(got, o) }}
			s, _ := testSigner(t, f, opt)
			s.now = clock.now
			_, err := s.Sign(t.Context(), []byte("m"))
			if (err == nil) != tc.signature {
				t.Fatalf("error %v", err)
			}
			if f.pubCalls != 1 || len(got) != f.signCalls {
				t.Errorf("%d outcomes for %d Sign calls (GetPublicKey is not observed)", len(got), f.signCalls)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("%d outcomes, want %d: %+v", len(got), len(tc.want), got)
			}
			for i, o := range got {
				w := tc.want[i]
				if o.Throttled != w.Throttled || (o.Err == nil) != (w.Err == nil) || o.Err != nil && o.Err.Error() != w.Err.Error() {
					t.Errorf("outcome %d: %+v, want %+v", i, o, w)
				}
				// The clock steps 3ms per reading; the budget adds 40ms before the call.
				if o.Took != 3*time.Millisecond || o.Waited != 43*time.Millisecond {
					t.Errorf("outcome %d: took %v waited %v, want 3ms and 43ms", i, o.Took, o.Waited)
				}
			}
		})
	}
	t.Run("canceled in the budget: no call, nothing observed", func(t *testing.T) {
		f := newFakeKMS(t)
		observed := 0
		s, _ := testSigner(t, f, Options{Budget: &countingBudget{}, Observe: func(Outcome) { observed++ }})
		ctx, cancel := context.WithCancel(t.Context())
		if _, err := s.PublicKey(ctx); err != nil {
			t.Fatal(err)
		}
		cancel()
		if _, err := s.Sign(ctx, []byte("m")); !errors.Is(err, context.Canceled) {
			t.Errorf("error %v", err)
		}
		if observed != 0 || f.signCalls != 0 {
			t.Errorf("%d outcomes, %d calls", observed, f.signCalls)
		}
	})
}

func TestSignBackoffCanceled(t *testing.T) {
	f := newFakeKMS(t, throttled(), throttled())
	s, err := NewSigner(f, "k", Options{MaxAttempts: 5, BaseDelay: time.Hour, MaxDelay: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	s.jitter = func(n int64) int64 { return n - 1 } // the longest delay: only cancellation ends it
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		for {
			f.mu.Lock()
			calls := f.signCalls
			f.mu.Unlock()
			if calls > 0 {
				cancel()
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	_, err = s.Sign(ctx, []byte("m"))
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrRetryable) {
		t.Errorf("error %v, want context.Canceled", err)
	}
	if f.signCalls != 1 {
		t.Errorf("%d Sign calls after cancellation", f.signCalls)
	}
}

func TestSignChecks(t *testing.T) {
	t.Run("public key read once", func(t *testing.T) {
		f := newFakeKMS(t)
		s, _ := testSigner(t, f, Options{})
		var wg sync.WaitGroup
		for range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := s.Sign(context.Background(), []byte("m")); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if f.pubCalls != 1 {
			t.Errorf("%d GetPublicKey calls for 20 signatures", f.pubCalls)
		}
	})
	t.Run("signature of another key", func(t *testing.T) {
		f := newFakeKMS(t)
		f.corrupt = true
		s, _ := testSigner(t, f, Options{})
		if _, err := s.Sign(t.Context(), []byte("m")); !errors.Is(err, ErrVerify) {
			t.Errorf("error %v, want ErrVerify", err)
		}
	})
	t.Run("long message signed as digest", func(t *testing.T) {
		f := newFakeKMS(t)
		s, _ := testSigner(t, f, Options{})
		msg := make([]byte, MaxRawMessage+1)
		sig, err := s.Sign(t.Context(), msg)
		if err != nil || f.lastType != types.MessageTypeDigest || !verifies(&f.key.PublicKey, msg, sig) {
			t.Errorf("type %s, %v", f.lastType, err)
		}
		if _, err := s.Sign(t.Context(), msg[:MaxRawMessage]); err != nil || f.lastType != types.MessageTypeRaw {
			t.Errorf("at the limit: type %s, %v", f.lastType, err)
		}
	})
	t.Run("empty message", func(t *testing.T) {
		s, _ := testSigner(t, newFakeKMS(t), Options{})
		if _, err := s.Sign(t.Context(), nil); !errors.Is(err, ErrMessage) {
			t.Errorf("error %v", err)
		}
	})
	t.Run("facility signature verifies", func(t *testing.T) {
		f := newFakeKMS(t)
		s, _ := testSigner(t, f, Options{})
		var _ facilitysig.Signer = s
		c := facilitysig.Content{PersonID: "001090012345", FacilityID: "f1", FullName: "NGUYEN VAN AN", DOB: "1990-01-02",
			Doses: []facilitysig.Dose{{SourceID: "a1", Vaccine: "PFIZER", DoseNumber: 1, VaccinatedOn: "2021-08-01"}}}
		payload, sig, err := facilitysig.Sign(t.Context(), s, c)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := facilitysig.Verify(&f.key.PublicKey, payload, sig); err != nil {
			t.Error(err)
		}
	})
}

func TestTokenBucket(t *testing.T) {
	b, err := NewTokenBucket(10, 3)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2021, 9, 1, 8, 0, 0, 0, time.UTC)
	var slept []time.Duration
	cancelSleep := false
	b.now = func() time.Time { return now }
	b.sleep = func(ctx context.Context, d time.Duration) error {
		if cancelSleep { // the caller gave up while waiting
			cancelSleep = false
			return context.Canceled
		}
		slept = append(slept, d)
		return nil
	}
	wait := func() time.Duration {
		t.Helper()
		n := len(slept)
		if err := b.Wait(t.Context()); err != nil {
			t.Fatal(err)
		}
		if len(slept) == n {
			return 0
		}
		return slept[n]
	}
	for i := range 3 {
		if d := wait(); d != 0 {
			t.Errorf("burst call %d waited %v", i, d)
		}
	}
	// Empty: each caller reserves the next token, 100ms apart, without the clock moving.
	for i, want := range []time.Duration{100 * time.Millisecond, 200 * time.Millisecond} {
		if d := wait(); d != want {
			t.Errorf("queued call %d waited %v, want %v", i, d, want)
		}
	}
	// Half a second later the two reservations are paid and 3 tokens refilled (capped at burst).
	now = now.Add(500 * time.Millisecond)
	for i := range 3 {
		if d := wait(); d != 0 {
			t.Errorf("after refill, call %d waited %v", i, d)
		}
	}
	if d := wait(); d != 100*time.Millisecond {
		t.Errorf("after the refilled burst: waited %v", d)
	}

	// A canceled wait gives its token back: the next caller waits as long as it would have.
	cancelSleep = true
	if err := b.Wait(t.Context()); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled wait: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := b.Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("wait with a canceled context: %v", err)
	}
	if d := wait(); d != 200*time.Millisecond {
		t.Errorf("after a canceled wait: waited %v, want 200ms", d)
	}

	for _, bad := range []struct {
		rate  float64
		burst int
	}{{0, 1}, {1, 0}, {-1, 5}} {
		if _, err := NewTokenBucket(bad.rate, bad.burst); !errors.Is(err, ErrBudget) {
			t.Errorf("NewTokenBucket(%v, %d): %v", bad.rate, bad.burst, err)
		}
	}
}
