package trust_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"time"

	"github.com/vaxpass/vaxpass/shared/hc1/trust"
)

// Create a CSCA and a vaccination DSC for a key (a KMS key's public key works
// the same), publish the trust list and read it back.
func Example() {
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	cscaKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csca, _ := trust.CreateCSCA(cscaKey, trust.CSCAOptions{NotBefore: start})
	signingKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	dsc, _ := trust.CreateDSC(&signingKey.PublicKey, csca, cscaKey, trust.DSCOptions{NotBefore: start})

	list, _ := trust.NewList(dsc)
	data, _ := json.Marshal(list)
	back, err := trust.ParseJSON(data)
	fmt.Println(err, back.Len(), len(back.ByKID(trust.KID(dsc.Raw))))
	fmt.Println(dsc.NotAfter.Format(time.DateOnly), trust.CheckKeyUsage(dsc, trust.Vaccination) == nil, trust.CheckKeyUsage(dsc, trust.Test) == nil)
	// Output:
	// <nil> 1 1
	// 2027-01-01 true false
}
