package hcert_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/vaxpass/vaxpass/shared/hc1/hcert"
	"github.com/vaxpass/vaxpass/shared/hc1/trust"
)

// Issue an HC1 certificate with a software key and verify it against a trust list.
func Example() {
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	cscaKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csca, _ := trust.CreateCSCA(cscaKey, trust.CSCAOptions{NotBefore: start})
	dscKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	dsc, _ := trust.CreateDSC(&dscKey.PublicKey, csca, cscaKey, trust.DSCOptions{NotBefore: start})

	signer, _ := hcert.NewSoftwareSigner(dscKey, trust.KID(dsc.Raw))
	iat := start.Add(48 * time.Hour)
	claims, _ := hcert.NewClaims("VN", iat, dsc) // exp = iat + 12 months, within the DSC
	dcc := hcert.JSONPayload(`{"ver":"1.3.0","nam":{"fnt":"NGUYEN","gnt":"AN"},"dob":"1990-01-02","v":[{"tg":"840539006","vp":"J07BX03","mp":"EU/1/20/1528","ma":"ORG-100030215","dn":2,"sd":2,"dt":"2021-09-20","co":"VN","is":"Ministry of Health of Viet Nam","ci":"URN:UVCI:01:VN:ABC#1"}]}`)
	hc1, err := hcert.Sign(context.Background(), signer, claims, dcc)
	if err != nil {
		panic(err)
	}

	list, _ := trust.NewList(dsc)
	v := &hcert.Verifier{Trust: list, Now: func() time.Time { return iat.Add(time.Hour) }}
	res, err := v.Verify(context.Background(), hc1)
	fmt.Println(hc1[:4], err, res.Issuer, res.Type, res.ExpiresAt.Format(time.DateOnly))

	v.Now = func() time.Time { return iat.AddDate(2, 0, 0) }
	_, err = v.Verify(context.Background(), hc1)
	fmt.Println(err)
	// Output:
	// HC1: <nil> VN vaccination 2026-01-03
	// hcert: expiration check: hcert: expired: now 2027-01-03T00:00:00Z is after exp 2026-01-03T00:00:00Z
}
