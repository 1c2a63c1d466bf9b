package hcert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/hc1/trust"
)

// Test DCC types with json tags, shaped like what the issuer produces for a
// Vietnamese vaccination (schema 1.3.0; NFC names, ICAO transliteration).
type testDCC struct {
	Ver string        `json:"ver"`
	Nam testName      `json:"nam"`
	DOB string        `json:"dob"`
	V   []testVaccine `json:"v"`
}

type testName struct {
	FN  string `json:"fn"`
	FNT string `json:"fnt"`
	GN  string `json:"gn"`
	GNT string `json:"gnt"`
}

type testVaccine struct {
	TG string `json:"tg"`
	VP string `json:"vp"`
	MP string `json:"mp"`
	MA string `json:"ma"`
	DN int    `json:"dn"`
	SD int    `json:"sd"`
	DT string `json:"dt"`
	CO string `json:"co"`
	IS string `json:"is"`
	CI string `json:"ci"`
}

func vietnameseDCC() testDCC {
	return testDCC{
		Ver: "1.3.0",
		Nam: testName{FN: "Nguyễn", FNT: "NGUYEN", GN: "Thị Minh Khai", GNT: "THI<MINH<KHAI"},
		DOB: "1990-07-15",
		V: []testVaccine{{
			TG: "840539006", VP: "J07BX03", MP: "EU/1/20/1528", MA: "ORG-100030215",
			DN: 2, SD: 2, DT: "2021-09-20", CO: "VN",
			IS: "Ministry of Health of Viet Nam",
			CI: "URN:UVCI:01:VN:79A1B2C3D4E5F6G7H8J9#K",
		}},
	}
}

// testPKI is a CSCA, one vaccination DSC, its signer and a trust list.
type testPKI struct {
	csca    *x509.Certificate
	cscaKey *ecdsa.PrivateKey
	dsc     *x509.Certificate
	key     *ecdsa.PrivateKey
	signer  *SoftwareSigner
	list    *trust.List
}

var testEpoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func newTestPKI(tb testing.TB, opt trust.DSCOptions) *testPKI {
	tb.Helper()
	p := &testPKI{}
	var err error
	if p.cscaKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		tb.Fatal(err)
	}
	if p.csca, err = trust.CreateCSCA(p.cscaKey, trust.CSCAOptions{NotBefore: testEpoch}); err != nil {
		tb.Fatal(err)
	}
	if p.key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		tb.Fatal(err)
	}
	if opt.NotBefore.IsZero() {
		opt.NotBefore = testEpoch
	}
	if p.dsc, err = trust.CreateDSC(&p.key.PublicKey, p.csca, p.cscaKey, opt); err != nil {
		tb.Fatal(err)
	}
	if p.signer, err = NewSoftwareSigner(p.key, trust.KID(p.dsc.Raw)); err != nil {
		tb.Fatal(err)
	}
	if p.list, err = trust.NewList(p.dsc); err != nil {
		tb.Fatal(err)
	}
	return p
}

// claimsAt returns 12-month claims issued at iat with the fixture's DSC.
func (p *testPKI) claimsAt(tb testing.TB, iat time.Time) Claims {
	tb.Helper()
	c, err := NewClaims("VN", iat, p.dsc)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func (p *testPKI) verifier(now time.Time) *Verifier {
	return &Verifier{Trust: p.list, Now: func() time.Time { return now }}
}
