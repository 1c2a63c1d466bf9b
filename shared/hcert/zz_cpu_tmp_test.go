package hcert

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"github.com/vaxpass/vaxpass/shared/base45"
	"github.com/veraison/go-cose"
	"hash/adler32"
	"runtime"
	"sort"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/vaxpass/vaxpass/shared/trust"
)

func threadCPU() time.Duration {
	var ts syscall.Timespec
	syscall.Syscall(syscall.SYS_CLOCK_GETTIME, 3, uintptr(unsafe.Pointer(&ts)), 0)
	return time.Duration(ts.Nano())
}

func TestCPURatioTmp(t *testing.T) {
	runtime.LockOSThread()
	p := newTestPKI(t, trust.DSCOptions{})
	c := p.claimsAt(t, testEpoch.Add(time.Hour))
	ctx := context.Background()
	dcc := vietnameseDCC()
	digest := sha256.Sum256([]byte("x"))
	hc1, _ := Sign(ctx, p.signer, c, dcc)
	v := p.verifier(c.IssuedAt.Add(time.Hour))
	r, s, _ := ecdsa.Sign(rand.Reader, p.key, digest[:])
	z := appendZlib(nil, typicalCOSE(t))
	src := typicalCOSE(t)
	dd := deflaterPool.Get().(*deflater)
	fake := failingSigner{p.signer, cose.AlgorithmES256, make([]byte, 64), nil}
	fns := map[string]func(){
		"signHC1": func() { Sign(ctx, p.signer, c, dcc) },
		"signRaw": func() { ecdsa.Sign(rand.Reader, p.key, digest[:]) },
		"verHC1":  func() { v.Verify(ctx, hc1) },
		"verRaw":  func() { ecdsa.Verify(&p.key.PublicKey, digest[:], r, s) },
		"zlib":    func() { appendZlib(nil, src) },
		"cbor": func() {
			var b bytes.Buffer
			encMode.MarshalToBuffer(cwtClaims{Issuer: "VN", ExpiresAt: 5, IssuedAt: 4, HCert: hcertClaim{DCC: dcc}}, &b)
		},
		"b45":      func() { base45.AppendEncode(make([]byte, 0, 600), z) },
		"sha":      func() { sha256.Sum256(src) },
		"tok":      func() { dd.tokenize(src) },
		"tokplan":  func() { dd.tokenize(src); dd.planDynamic() },
		"adler":    func() { adler32.Checksum(src) },
		"signFake": func() { Sign(ctx, fake, c, dcc) },
		"softsig":  func() { p.signer.Sign(ctx, src) },
		"inflate":  func() { Inflate(z) },
	}
	res := map[string][]float64{}
	for round := 0; round < 15; round++ {
		for name, f := range fns {
			const n = 300
			t0 := threadCPU()
			for i := 0; i < n; i++ {
				f()
			}
			res[name] = append(res[name], float64(threadCPU()-t0)/n)
		}
	}
	for name, xs := range res {
		sort.Float64s(xs)
		t.Logf("%-8s min %8.0f  median %8.0f ns (thread CPU)", name, xs[0], xs[len(xs)/2])
	}
}
