package hcert

import (
	"context"
	"testing"

	"github.com/veraison/go-cose"

	"github.com/vaxpass/vaxpass/shared/trust"
)

func BenchmarkPlanTmp(b *testing.B) {
	src := typicalCOSE(b)
	d := deflaterPool.Get().(*deflater)
	d.tokenize(src)
	for b.Loop() {
		d.planDynamic()
	}
}

func BenchmarkSignFakeTmp(b *testing.B) {
	p := newTestPKI(b, trust.DSCOptions{})
	c := p.claimsAt(b, testEpoch)
	fake := failingSigner{p.signer, cose.AlgorithmES256, make([]byte, 64), nil}
	dcc := vietnameseDCC()
	for b.Loop() {
		Sign(context.Background(), fake, c, dcc)
	}
}
