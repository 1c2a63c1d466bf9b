package hcert

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"math/big"
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/hc1/trust"
)

// The benchmarks compare the HC1 pipeline with the bare ECDSA operation it
// wraps. Like with like: BenchmarkSignRawECDSA runs the same ecdsa.Sign (with
// crypto/rand) that SoftwareSigner runs, on a precomputed SHA-256 digest, and
// BenchmarkVerifyRawECDSA the same ecdsa.Verify that VerifySignature runs.
//
//	go test ./shared/hcert -run '^$' -bench 'HC1|RawECDSA' -benchmem -count 5

func benchFixture(b *testing.B) (*testPKI, Claims) {
	b.Helper()
	p := newTestPKI(b, trust.DSCOptions{})
	return p, p.claimsAt(b, testEpoch.Add(24*time.Hour))
}

func BenchmarkSignHC1(b *testing.B) {
	p, c := benchFixture(b)
	ctx := context.Background()
	dcc := vietnameseDCC()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Sign(ctx, p.signer, c, dcc); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSignRawECDSA(b *testing.B) {
	p, _ := benchFixture(b)
	digest := sha256.Sum256([]byte("Sig_structure of a DCC"))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := ecdsa.Sign(rand.Reader, p.key, digest[:]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyHC1 runs every step of Verifier.Verify, including signature,
// expiry, key usage and DCC-to-JSON, with CheckPayload nil (schema and value
// sets belong to the dcc package and are measured there).
func BenchmarkVerifyHC1(b *testing.B) {
	p, c := benchFixture(b)
	hc1, err := Sign(context.Background(), p.signer, c, vietnameseDCC())
	if err != nil {
		b.Fatal(err)
	}
	v := p.verifier(c.IssuedAt.Add(time.Hour))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, hc1); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyRawECDSA(b *testing.B) {
	p, _ := benchFixture(b)
	digest := sha256.Sum256([]byte("Sig_structure of a DCC"))
	r, s, err := ecdsa.Sign(rand.Reader, p.key, digest[:])
	if err != nil {
		b.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	b.ReportAllocs()
	for b.Loop() {
		var r, s big.Int // as VerifySignature: r||s to big.Int each time
		r.SetBytes(sig[:32])
		s.SetBytes(sig[32:])
		if !ecdsa.Verify(&p.key.PublicKey, digest[:], &r, &s) {
			b.Fatal("verify failed")
		}
	}
}
