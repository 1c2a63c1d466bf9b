package faults

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/vaxpass/vaxpass/shared/domain/facilitysig"
	"github.com/vaxpass/vaxpass/shared/hc1/trust"
	"github.com/vaxpass/vaxpass/shared/stage/signing"
	"github.com/vaxpass/vaxpass/shared/stage/verification"
	"github.com/vaxpass/vaxpass/shared/store/awskms"
	"github.com/vaxpass/vaxpass/shared/store/embedded"
	"github.com/vaxpass/vaxpass/shared/testkit/awstest"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
	"github.com/vaxpass/vaxpass/shared/wire/local"
)

// throttleEvery: the throttling layer answers every Nth KMS request with a
// ThrottlingException (the 2nd, 6th, 10th, ...).
const throttleEvery = 4

// throttlingTransport is the throttling layer: an http.RoundTripper under the SDK's KMS
// client that answers every Nth request as AWS does when a KMS request quota is
// exceeded -- HTTP 400, X-Amzn-ErrorType ThrottlingException, {"__type":...} -- without
// passing it on, and counts what went through. Because it sits below the SDK, the SDK's
// own retryer and error decoding see exactly what they would see from AWS.
type throttlingTransport struct {
	next  http.RoundTripper
	every int

	mu        sync.Mutex
	n         int
	calls     map[string]int // by operation (the X-Amz-Target's action)
	throttled map[string]int
	succeeded map[string]int
	// pending holds, by request body, when each throttled request was refused; a later
	// request with the same body is its retry, and the gap is the backoff.
	pending map[string][]time.Time
	retries []time.Duration
}

func newThrottlingTransport(next http.RoundTripper, every int) *throttlingTransport {
	return &throttlingTransport{next: next, every: every, calls: map[string]int{}, throttled: map[string]int{},
		succeeded: map[string]int{}, pending: map[string][]time.Time{}}
}

func (tt *throttlingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	op := req.Header.Get("X-Amz-Target")
	if _, action, ok := strings.Cut(op, "."); ok {
		op = action
	}
	var body []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		body = b
		req.Body = io.NopCloser(bytes.NewReader(b))
	}
	sum := sha256.Sum256(body)
	id := hex.EncodeToString(sum[:])
	now := time.Now()

	tt.mu.Lock()
	tt.n++
	n := tt.n
	tt.calls[op]++
	if ts := tt.pending[id]; len(ts) > 0 {
		tt.retries = append(tt.retries, now.Sub(ts[0]))
		tt.pending[id] = ts[1:]
	}
	throttle := n%tt.every == tt.every/2 // the second request (a GetPublicKey) is the first throttled
	if throttle {
		tt.throttled[op]++
		tt.pending[id] = append(tt.pending[id], now)
	}
	tt.mu.Unlock()

	if throttle {
		msg := `{"__type":"ThrottlingException","message":"Rate exceeded"}`
		h := http.Header{}
		h.Set("Content-Type", "application/x-amz-json-1.1")
		h.Set("X-Amzn-ErrorType", "ThrottlingException")
		h.Set("X-Amzn-RequestId", "throttled-"+strconv.Itoa(n))
		return &http.Response{
			Status: "400 Bad Request", StatusCode: http.StatusBadRequest, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: h, Body: io.NopCloser(strings.NewReader(msg)), ContentLength: int64(len(msg)), Request: req,
		}, nil
	}
	resp, err := tt.next.RoundTrip(req)
	if err == nil && resp.StatusCode == http.StatusOK {
		tt.mu.Lock()
		tt.succeeded[op]++
		tt.mu.Unlock()
	}
	return resp, err
}

// successes counts the requests of an operation that succeeded.
func (tt *throttlingTransport) successes(op string) int {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	return tt.succeeded[op]
}

// unretried counts throttled requests that were never sent again.
func (tt *throttlingTransport) unretried() int {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	n := 0
	for _, ts := range tt.pending {
		n += len(ts)
	}
	return n
}

// fakeKMS is a KMS endpoint over software keys speaking the service's JSON protocol
// (CreateKey, GetPublicKey, Sign for ECC_NIST_P256 keys), for when no emulator runs.
type fakeKMS struct {
	mu   sync.Mutex
	keys map[string]*ecdsa.PrivateKey
}

func (f *fakeKMS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	fail := func(status int, code, msg string) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(map[string]string{"__type": code, "message": msg})
	}
	reply := func(v any) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		json.NewEncoder(w).Encode(v)
	}
	var in struct {
		KeyId            string
		KeySpec          string
		KeyUsage         string
		Message          []byte
		MessageType      string
		SigningAlgorithm string
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&in); err != nil {
		fail(400, "SerializationException", err.Error())
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	switch r.Header.Get("X-Amz-Target") {
	case "TrentService.CreateKey":
		if in.KeySpec != "ECC_NIST_P256" || in.KeyUsage != "SIGN_VERIFY" {
			fail(400, "ValidationException", "only ECC_NIST_P256 SIGN_VERIFY keys")
			return
		}
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			fail(500, "KMSInternalException", err.Error())
			return
		}
		id := fmt.Sprintf("fake-key-%d", len(f.keys)+1)
		f.keys[id] = k
		reply(map[string]any{"KeyMetadata": map[string]any{"KeyId": id, "KeySpec": in.KeySpec, "KeyUsage": in.KeyUsage, "Enabled": true}})
	case "TrentService.GetPublicKey":
		k, ok := f.keys[in.KeyId]
		if !ok {
			fail(400, "NotFoundException", "no key "+in.KeyId)
			return
		}
		der, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
		reply(map[string]any{"KeyId": in.KeyId, "PublicKey": der, "KeySpec": "ECC_NIST_P256", "KeyUsage": "SIGN_VERIFY", "SigningAlgorithms": []string{"ECDSA_SHA_256"}})
	case "TrentService.Sign":
		k, ok := f.keys[in.KeyId]
		switch {
		case !ok:
			fail(400, "NotFoundException", "no key "+in.KeyId)
			return
		case in.SigningAlgorithm != "ECDSA_SHA_256":
			fail(400, "ValidationException", "signing algorithm "+in.SigningAlgorithm)
			return
		}
		digest := in.Message
		if in.MessageType != "DIGEST" {
			d := sha256.Sum256(in.Message)
			digest = d[:]
		}
		sig, err := ecdsa.SignASN1(rand.Reader, k, digest)
		if err != nil {
			fail(500, "KMSInternalException", err.Error())
			return
		}
		reply(map[string]any{"KeyId": in.KeyId, "Signature": sig, "SigningAlgorithm": in.SigningAlgorithm})
	default:
		fail(400, "UnknownOperationException", r.Header.Get("X-Amz-Target"))
	}
}

// createSigningKey creates an ECC_NIST_P256 signing key with an unthrottled client.
func createSigningKey(t *testing.T, client *kms.Client) string {
	t.Helper()
	out, err := client.CreateKey(context.Background(), &kms.CreateKeyInput{KeySpec: "ECC_NIST_P256", KeyUsage: "SIGN_VERIFY"})
	if err != nil {
		t.Fatalf("create KMS key: %v", err)
	}
	return aws.ToString(out.KeyMetadata.KeyId)
}

// retryMode is who retries a throttled call.
type retryMode struct {
	name string
	// sdk is the KMS client's retryer setting.
	sdk func(o *kms.Options)
}

var retryModes = []retryMode{
	// As deployed: the SDK's standard retryer (3 attempts) under awskms's own backoff
	// (6 attempts). Its backoff cap is cut from 20 s to 20 ms to keep the test short.
	{"sdk and awskms retries", func(o *kms.Options) {
		o.Retryer = retry.AddWithMaxBackoffDelay(retry.NewStandard(), 20*time.Millisecond)
	}},
	// The SDK does not retry: every throttle reaches awskms's backoff.
	{"awskms backoff alone", func(o *kms.Options) {
		o.Retryer = retry.AddWithMaxAttempts(retry.NewStandard(), 1)
	}},
}

// kmsCertificates is how many certificates a throttled run issues.
func kmsCertificates(t *testing.T) int { return max(50, faultPeople(t)/15) }

// kmsEndpoint is a KMS to run against: the SDK configuration and how to make a key.
type kmsEndpoint struct {
	name   string
	config func(t *testing.T) (aws.Config, func(t *testing.T) string)
}

var kmsEndpoints = []kmsEndpoint{
	{"fake KMS", func(t *testing.T) (aws.Config, func(t *testing.T) string) {
		srv := httptest.NewServer(&fakeKMS{keys: map[string]*ecdsa.PrivateKey{}})
		t.Cleanup(srv.Close)
		cfg := aws.Config{
			Region:       "us-east-1",
			Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
			BaseEndpoint: aws.String(srv.URL),
		}
		plain := kms.NewFromConfig(cfg)
		return cfg, func(t *testing.T) string { return createSigningKey(t, plain) }
	}},
	{"emulator", func(t *testing.T) (aws.Config, func(t *testing.T) string) {
		cfg := awstest.Config(t) // skips, saying why, unless VAXPASS_AWS_TESTS=1
		plain := kms.NewFromConfig(cfg)
		return cfg, func(t *testing.T) string { return awstest.SigningKey(t, plain) }
	}},
}

// kmsRig is a KMS client behind the throttling layer, a DSC over a KMS key (issued by a
// software CSCA) with its trust list, and KMS facility keys.
type kmsRig struct {
	tt         *throttlingTransport
	dsc        *x509.Certificate
	trust      *trust.List
	dscSigner  *awskms.DSCSigner
	facilities map[string]*awskms.Signer
}

func newKMSRig(t *testing.T, ep kmsEndpoint, mode retryMode, facilities ...string) *kmsRig {
	t.Helper()
	ctx := context.Background()
	cfg, newKey := ep.config(t)
	next := http.DefaultTransport
	if hc, ok := cfg.HTTPClient.(*http.Client); ok && hc.Transport != nil {
		next = hc.Transport
	}
	r := &kmsRig{tt: newThrottlingTransport(next, throttleEvery), facilities: map[string]*awskms.Signer{}}
	cfg = cfg.Copy()
	cfg.HTTPClient = &http.Client{Transport: r.tt, Timeout: time.Minute}
	client := kms.NewFromConfig(cfg, mode.sdk)

	// Short backoff caps (the deployed defaults are 50 ms..2 s): the test counts the
	// retries rather than waiting them out.
	opt := awskms.Options{BaseDelay: 2 * time.Millisecond, MaxDelay: 20 * time.Millisecond}
	for _, f := range facilities {
		s, err := awskms.NewSigner(client, newKey(t), opt)
		if err != nil {
			t.Fatal(err)
		}
		r.facilities[f] = s
	}
	dscKeyID := newKey(t)
	probe, err := awskms.NewSigner(client, dscKeyID, opt)
	if err != nil {
		t.Fatal(err)
	}
	dscPub, err := probe.PublicKey(ctx)
	if err != nil {
		t.Fatalf("DSC key: %v", err)
	}
	start := time.Now().UTC().Truncate(time.Second).Add(-time.Hour)
	cscaKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	csca, err := trust.CreateCSCA(cscaKey, trust.CSCAOptions{NotBefore: start})
	if err != nil {
		t.Fatal(err)
	}
	if r.dsc, err = trust.CreateDSC(dscPub, csca, cscaKey, trust.DSCOptions{NotBefore: start}); err != nil {
		t.Fatal(err)
	}
	if r.trust, err = trust.NewList(r.dsc); err != nil {
		t.Fatal(err)
	}
	if r.dscSigner, err = awskms.NewDSCSigner(client, dscKeyID, r.dsc.Raw, opt); err != nil {
		t.Fatal(err)
	}
	return r
}

// FacilitySigner implements signing.FacilityKeys with the KMS facility keys.
func (r *kmsRig) FacilitySigner(ctx context.Context, facilityID string) (facilitysig.Signer, error) {
	s, ok := r.facilities[facilityID]
	if !ok {
		return nil, vaxpass.ErrNotFound
	}
	return s, nil
}

// FacilityPublicKey implements signing.FacilityPublicKeys.
func (r *kmsRig) FacilityPublicKey(ctx context.Context, facilityID string) (*ecdsa.PublicKey, error) {
	s, ok := r.facilities[facilityID]
	if !ok {
		return nil, vaxpass.ErrNotFound
	}
	return s.PublicKey(ctx)
}

// checkRetried checks that the layer throttled Sign calls, that every throttled request
// was sent again and that nothing failed otherwise; it logs the counts.
func (r *kmsRig) checkRetried(t *testing.T) {
	t.Helper()
	tt := r.tt
	tt.mu.Lock()
	calls, throttled, succeeded := copyCounts(tt.calls), copyCounts(tt.throttled), copyCounts(tt.succeeded)
	retries := append([]time.Duration(nil), tt.retries...)
	tt.mu.Unlock()
	if throttled["Sign"] == 0 {
		t.Fatalf("no Sign request throttled (%v calls): the layer did nothing", calls)
	}
	for op, c := range calls {
		if c != throttled[op]+succeeded[op] {
			t.Errorf("%s: %d requests, %d throttled, %d succeeded: some failed otherwise", op, c, throttled[op], succeeded[op])
		}
	}
	if u := tt.unretried(); u != 0 {
		t.Errorf("%d throttled requests were never retried", u)
	}
	if len(retries) == 0 {
		t.Fatal("no retry seen")
	}
	sort.Slice(retries, func(i, j int) bool { return retries[i] < retries[j] })
	var total time.Duration
	for _, d := range retries {
		total += d
	}
	t.Logf("KMS requests %v, throttled %v; %d retries after a backoff of %s median, %s max (%s in all)",
		calls, throttled, len(retries), retries[len(retries)/2].Round(time.Microsecond),
		retries[len(retries)-1].Round(time.Microsecond), total.Round(time.Millisecond))
}

// TestKMSThrottling issues certificates through signing.CentralService with KMS keys
// (central DSC key and facility key, awskms signers) behind the throttling layer: every
// fourth KMS request answered ThrottlingException. Every certificate must be issued
// exactly once -- as many successful KMS Sign calls as signatures needed, processing a
// signature again changes nothing -- and verify with the trust list, and every throttled
// request must have been retried. It runs on a fake KMS endpoint, and on the emulator
// when VAXPASS_AWS_TESTS=1 (the emulator never throttles by itself).
func TestKMSThrottling(t *testing.T) {
	t.Parallel()
	for _, ep := range kmsEndpoints {
		for _, mode := range retryModes {
			t.Run(ep.name+"/"+mode.name, func(t *testing.T) {
				t.Parallel()
				runThrottled(t, newKMSRig(t, ep, mode, "kms-site"))
			})
		}
	}
}

func runThrottled(t *testing.T, rig *kmsRig) {
	ctx := context.Background()
	n := kmsCertificates(t)
	tt := rig.tt
	const facility = "kms-site"
	facSigner := rig.facilities[facility]
	db, err := embedded.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	store, err := embedded.OpenStore(db, embedded.StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	central := &signing.CentralService{
		Store: store, Keys: rig,
		Sealer: &signing.HC1Sealer{Signer: rig.dscSigner, DSC: rig.dsc}, Rand: rand.Reader, Now: time.Now,
	}

	// n people, each signed by the facility and then by central signing, 8 at a time. A
	// call that still fails after every retry (awskms.ErrRetryable) is what a queue
	// redelivers: it is tried again, and counted.
	type job struct {
		sig     vaxpass.FacilitySignature
		outcome signing.IssueOutcome
		cert    *vaxpass.Certificate
		// tries of the facility signature and of central signing (more than one: redelivered)
		facTries, centralTries int
		err                    error
	}
	jobs := make([]job, n)
	work := func(i int) {
		j := &jobs[i]
		c := facilitysig.Content{
			PersonID: fmt.Sprintf("0010%08d", i), FacilityID: facility, FullName: "Nguyễn Văn An",
			DOB: fmt.Sprintf("19%02d-0%d-1%d", 50+i%50, 1+i%9, i%10), Gender: "male", Nationality: "VN",
			SignedAt: time.Now().UTC(),
			Doses: []facilitysig.Dose{
				{SourceID: fmt.Sprintf("kms-%d-1", i), Vaccine: "PFIZER", DoseNumber: 1, VaccinatedOn: "2021-08-01", Lot: "FF0001"},
				{SourceID: fmt.Sprintf("kms-%d-2", i), Vaccine: "PFIZER", DoseNumber: 2, VaccinatedOn: "2021-08-29", Lot: "FF0002"},
			},
		}
		for j.facTries = 1; ; j.facTries++ {
			payload, sig, err := facilitysig.Sign(ctx, facSigner, c)
			if err == nil {
				j.sig = vaxpass.FacilitySignature{PersonID: c.PersonID, FacilityID: facility, Payload: payload, Signature: sig, SignedAt: c.SignedAt}
				break
			}
			if !errors.Is(err, awskms.ErrRetryable) || j.facTries == 5 {
				j.err = fmt.Errorf("facility signature: %w", err)
				return
			}
		}
		for j.centralTries = 1; ; j.centralTries++ {
			j.outcome, j.cert, j.err = central.Process(ctx, j.sig)
			if !errors.Is(j.err, awskms.ErrRetryable) || j.centralTries == 5 {
				return
			}
		}
	}
	began := time.Now()
	var wg sync.WaitGroup
	next1 := make(chan int)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next1 {
				work(i)
			}
		}()
	}
	for i := range n {
		next1 <- i
	}
	close(next1)
	wg.Wait()
	elapsed := time.Since(began)

	redelivered := 0
	for i, j := range jobs {
		if j.err != nil {
			t.Fatalf("person %d: %v", i, j.err)
		}
		if j.outcome != signing.Issued {
			t.Errorf("person %d: outcome %s, want %s", i, j.outcome, signing.Issued)
		}
		redelivered += j.facTries - 1 + j.centralTries - 1
	}
	signsBefore := tt.successes("Sign")

	// Exactly once: processing every signature again issues nothing and signs nothing.
	for i, j := range jobs {
		out, _, err := central.Process(ctx, j.sig)
		for tries := 1; errors.Is(err, awskms.ErrRetryable) && tries < 10; tries++ {
			out, _, err = central.Process(ctx, j.sig)
		}
		if err != nil || out != signing.Unchanged {
			t.Errorf("person %d processed again: %s, %v; want %s", i, out, err, signing.Unchanged)
		}
	}
	if got := tt.successes("Sign"); got != signsBefore {
		t.Errorf("processing the signatures again made %d KMS signatures", got-signsBefore)
	}

	// Every certificate stored once, issued, and verifying with the trust list.
	verifier := &verification.Service{Trust: rig.trust, Now: time.Now}
	byPerson := map[string]int{}
	stored := 0
	for cursor := ""; ; {
		page, nextCursor, err := store.ListCertificates(ctx, cursor, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range page {
			stored++
			byPerson[c.PersonID]++
			if c.Status != vaxpass.CertIssued {
				t.Errorf("certificate %s in status %s", c.UVCI, c.Status)
			}
			if v := verifier.Verify(ctx, c.HC1); !v.Valid {
				t.Errorf("certificate %s does not verify: %s: %s", c.UVCI, v.Step, v.Reason)
			} else if v.Fields == nil || v.Fields.DoseNumber != 2 || v.Fields.TotalDoses != 2 || !strings.EqualFold(v.Fields.CertificateID, c.UVCI) {
				t.Errorf("certificate %s: fields %+v", c.UVCI, v.Fields)
			}
		}
		if nextCursor == "" {
			break
		}
		cursor = nextCursor
	}
	if stored != n || len(byPerson) != n {
		t.Errorf("%d certificates stored for %d people; want %d, one each", stored, len(byPerson), n)
	}

	// The throttling happened, every throttled request was sent again, and each signature
	// needed was made once.
	rig.checkRetried(t)
	if got := tt.successes("Sign"); got != 2*n {
		t.Errorf("%d successful KMS Sign calls for %d certificates; want %d (one facility and one central signature each)", got, n, 2*n)
	}
	t.Logf("%d certificates in %s; %d calls redelivered after awskms gave up", n, elapsed.Round(time.Millisecond), redelivered)
}

func copyCounts(m map[string]int) map[string]int {
	out := make(map[string]int, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// TestKMSThrottlingPipeline runs a generated population through the whole pipeline in
// process -- upload, matcher, facility signing, the central signing queue -- with every
// facility key and the DSC key in KMS behind the throttling layer, and ends with the
// invariant check of the other fault runs.
func TestKMSThrottlingPipeline(t *testing.T) {
	t.Parallel()
	for _, ep := range kmsEndpoints {
		t.Run(ep.name, func(t *testing.T) {
			t.Parallel()
			facilities := make([]string, facilityCount)
			for i := range facilities {
				facilities[i] = facilityID(i)
			}
			rig := newKMSRig(t, ep, retryModes[0], facilities...)
			rewire := func(l *local.Local) {
				l.FacilitySigning.Keys = rig
				l.CentralSigning.Keys = rig
				l.CentralSigning.Sealer = &signing.HC1Sealer{Signer: rig.dscSigner, DSC: rig.dsc}
			}
			people := max(300, faultPeople(t)/10)
			began := time.Now()
			dir, run := runInProcess(t, generate(t, people, people*recordsPerPerson, 31), rewire)
			run.trust = rig.trust
			rep := requireInvariant(t, dir, run, finished, time.Now())
			rig.checkRetried(t)
			t.Logf("%d people, %d certificates through throttled KMS in %s", people, rep.Issued+rep.Revoked, time.Since(began).Round(time.Millisecond))
		})
	}
}
