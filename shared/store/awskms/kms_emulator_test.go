package awskms_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/vaxpass/vaxpass/shared/domain/facilitysig"
	"github.com/vaxpass/vaxpass/shared/hc1/hcert"
	"github.com/vaxpass/vaxpass/shared/hc1/trust"
	"github.com/vaxpass/vaxpass/shared/store/awskms"
	"github.com/vaxpass/vaxpass/shared/testkit/awstest"
)

var _ hcert.Signer = (*awskms.DSCSigner)(nil)

// recorder keeps every ToBeSigned and the signature the signer returned for it.
type recorder struct {
	hcert.Signer
	mu   sync.Mutex
	tbs  [][]byte
	sigs [][]byte
}

func (r *recorder) Sign(ctx context.Context, tbs []byte) ([]byte, error) {
	sig, err := r.Signer.Sign(ctx, tbs)
	if err == nil {
		r.mu.Lock()
		r.tbs = append(r.tbs, bytes.Clone(tbs))
		r.sigs = append(r.sigs, sig)
		r.mu.Unlock()
	}
	return sig, err
}

// kmsPublicKey reads a key's public key with GetPublicKey, independently of the signer.
func kmsPublicKey(t *testing.T, client *kms.Client, keyID string) *ecdsa.PublicKey {
	t.Helper()
	out, err := client.GetPublicKey(t.Context(), &kms.GetPublicKeyInput{KeyId: aws.String(keyID)})
	if err != nil {
		t.Fatal(err)
	}
	k, err := x509.ParsePKIXPublicKey(out.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pub, ok := k.(*ecdsa.PublicKey)
	if !ok {
		t.Fatalf("public key %T", k)
	}
	return pub
}

// The acceptance line: a KMS-signed certificate verifies with the public key from
// GetPublicKey and with the trust list.
func TestDSCSignerOnKMS(t *testing.T) {
	cfg := awstest.Config(t)
	client := kms.NewFromConfig(cfg)
	keyID := awstest.SigningKey(t, client)
	pub := kmsPublicKey(t, client, keyID)

	// A CSCA (software key) issues the DSC over the KMS key's public key.
	start := time.Now().UTC().Truncate(time.Second).Add(-time.Hour)
	cscaKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	csca, err := trust.CreateCSCA(cscaKey, trust.CSCAOptions{NotBefore: start})
	if err != nil {
		t.Fatal(err)
	}
	dsc, err := trust.CreateDSC(pub, csca, cscaKey, trust.DSCOptions{NotBefore: start})
	if err != nil {
		t.Fatal(err)
	}
	list, err := trust.NewList(dsc)
	if err != nil {
		t.Fatal(err)
	}
	budget, err := awskms.NewTokenBucket(200, 20)
	if err != nil {
		t.Fatal(err)
	}
	var signed, failed atomic.Int64 // Sign calls seen by Observe
	observe := func(o awskms.Outcome) {
		if o.Err == nil {
			signed.Add(1)
		} else {
			failed.Add(1)
		}
	}
	signer, err := awskms.NewDSCSigner(client, keyID, dsc.Raw, awskms.Options{Budget: budget, Observe: observe})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(signer.KeyID(), trust.KID(dsc.Raw)) {
		t.Fatalf("KeyID %x, want the DSC's kid", signer.KeyID())
	}
	rec := &recorder{Signer: signer}

	iat := start.Add(time.Minute)
	claims, err := hcert.NewClaims("VN", iat, dsc)
	if err != nil {
		t.Fatal(err)
	}
	verifier := &hcert.Verifier{Trust: list, Now: func() time.Time { return iat.Add(time.Hour) }}
	const n = 100
	hc1s := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			payload := hcert.JSONPayload(fmt.Sprintf(`{"ver":"1.3.0","nam":{"fnt":"NGUYEN","fn":"Nguyen","gnt":"AN","gn":"An"},"dob":"1990-01-02","v":[{"tg":"840539006","vp":"J07BX03","mp":"EU/1/20/1528","ma":"ORG-100030215","dn":2,"sd":2,"dt":"2021-09-20","co":"VN","is":"Ministry of Health of Viet Nam","ci":"URN:UVCI:01:VN:KMS%03d#X"}]}`, i))
			hc1s[i], errs[i] = hcert.Sign(t.Context(), rec, claims, payload)
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("certificate %d: %v", i, errs[i])
		}
		res, err := verifier.Verify(t.Context(), hc1s[i])
		if err != nil {
			t.Fatalf("certificate %d does not verify with the trust list: %v", i, err)
		}
		if !bytes.Equal(res.KID, signer.KeyID()) || res.DSC != dsc {
			t.Errorf("certificate %d: kid %x, DSC %v", i, res.KID, res.DSC.Subject)
		}
	}
	if len(rec.tbs) != n {
		t.Fatalf("%d ToBeSigned recorded, want %d", len(rec.tbs), n)
	}
	for i := range rec.tbs {
		d := sha256.Sum256(rec.tbs[i])
		sig := rec.sigs[i]
		if len(sig) != 64 || !ecdsa.Verify(pub, d[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
			t.Errorf("signature %d does not verify with GetPublicKey's key", i)
		}
	}
	// What the HC1 carries is what was signed.
	for i, hc1 := range hc1s[:3] {
		msg := decodeCOSE(t, hc1)
		j := indexOf(rec.tbs, msg.SigStructure())
		if j < 0 || !bytes.Equal(rec.sigs[j], msg.Signature) {
			t.Errorf("certificate %d: its ToBeSigned and signature are not the ones KMS signed", i)
		}
	}

	// A message over KMS's RAW limit is signed as its digest: the same signature.
	long := bytes.Repeat([]byte{0xa5}, awskms.MaxRawMessage+100)
	sig, err := signer.Sign(t.Context(), long)
	if err != nil {
		t.Fatal(err)
	}
	d := sha256.Sum256(long)
	if !ecdsa.Verify(pub, d[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		t.Error("the digest-mode signature does not verify")
	}
	// One successful Sign call per signature (a failed call, e.g. a lost response, is
	// retried and counted apart).
	if signed.Load() != n+1 {
		t.Errorf("Observe saw %d successful Sign calls (and %d failed) for %d signatures", signed.Load(), failed.Load(), n+1)
	}
}

func decodeCOSE(t *testing.T, hc1 string) *hcert.Sign1 {
	t.Helper()
	text, err := hcert.Unprefix(hc1)
	if err != nil {
		t.Fatal(err)
	}
	z, err := hcert.DecodeBase45(text)
	if err != nil {
		t.Fatal(err)
	}
	c, err := hcert.Inflate(z)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := hcert.ParseCOSE(c)
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

func indexOf(list [][]byte, b []byte) int {
	for i, x := range list {
		if bytes.Equal(x, b) {
			return i
		}
	}
	return -1
}

func TestDSCSignerRefusesAnotherKey(t *testing.T) {
	cfg := awstest.Config(t)
	client := kms.NewFromConfig(cfg)
	keyID := awstest.SigningKey(t, client)

	// A DSC over a software key, given with the KMS key: every Sign must refuse.
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	csca, err := trust.CreateCSCA(other, trust.CSCAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dsc, err := trust.CreateDSC(&other.PublicKey, csca, other, trust.DSCOptions{})
	if err != nil {
		t.Fatal(err)
	}
	signer, err := awskms.NewDSCSigner(client, keyID, dsc.Raw, awskms.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := signer.Sign(t.Context(), []byte("tbs")); !errors.Is(err, awskms.ErrKey) {
		t.Errorf("signing with a DSC of another key: %v, want ErrKey", err)
	}
}

func TestFacilitySignerOnKMS(t *testing.T) {
	cfg := awstest.Config(t)
	client := kms.NewFromConfig(cfg)
	keyID := awstest.SigningKey(t, client)
	// Facility keys are named by alias (the template's alias/<stack>-... form).
	alias := "alias/" + awstest.UniqueName(t, "facility")
	if _, err := client.CreateAlias(t.Context(), &kms.CreateAliasInput{AliasName: aws.String(alias), TargetKeyId: aws.String(keyID)}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = client.DeleteAlias(context.Background(), &kms.DeleteAliasInput{AliasName: aws.String(alias)})
	})
	signer, err := awskms.NewSigner(client, alias, awskms.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var _ facilitysig.Signer = signer
	c := facilitysig.Content{
		PersonID: "001090012345", FacilityID: "79-HCM-0001", FullName: "NGUYEN VAN AN", DOB: "1990-01-02",
		Gender: "male", Nationality: "VN", SignedAt: time.Date(2021, 9, 1, 8, 0, 0, 0, time.UTC),
		Doses: []facilitysig.Dose{
			{SourceID: "a2", Vaccine: "PFIZER", DoseNumber: 2, VaccinatedOn: "2021-08-29"},
			{SourceID: "a1", Vaccine: "PFIZER", DoseNumber: 1, VaccinatedOn: "2021-08-01", Lot: "FF1234"},
		},
	}
	payload, sig, err := facilitysig.Sign(t.Context(), signer, c)
	if err != nil {
		t.Fatal(err)
	}
	got, err := facilitysig.Verify(kmsPublicKey(t, client, keyID), payload, sig)
	if err != nil {
		t.Fatalf("the facility signature does not verify with GetPublicKey's key: %v", err)
	}
	if got.PersonID != c.PersonID || len(got.Doses) != 2 || got.Doses[0].SourceID != "a1" {
		t.Errorf("signed content %+v", got)
	}
}
