package lookup

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/vaxpass/vaxpass/shared/domain/dcc"
	"github.com/vaxpass/vaxpass/shared/hc1/hcert"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// Page is what the citizen's page and the printable PDF show of a certificate: the 11
// fields, and what a border officer compares with the passport (the ICAO 9303 name) or
// reads on the certificate (country of vaccination, issuer), taken from the HC1 itself.
type Page struct {
	UVCI      string
	HC1       string
	ExpiresAt time.Time
	Fields    vaxpass.Fields
	// FamilyICAO and GivenICAO are the DCC's fnt and gnt.
	FamilyICAO, GivenICAO string
	// Country is the vaccination's co (ISO 3166-1 alpha-2); Issuer its is.
	Country, Issuer string
}

// PageOf reads the page of an issued certificate. The HC1 is our own, read from our
// store, so it is decoded without checking its signature (the verifier does that for
// anyone else's); the decoding steps keep their size limits all the same.
func PageOf(cert vaxpass.Certificate) (Page, error) {
	p := Page{UVCI: cert.UVCI, HC1: cert.HC1, ExpiresAt: cert.ExpiresAt, Fields: cert.Fields}
	doc, err := dccJSON(cert.HC1)
	if err != nil {
		return p, fmt.Errorf("lookup: page of %s: %w", cert.UVCI, err)
	}
	var c dcc.Certificate
	if err := json.Unmarshal(doc, &c); err != nil {
		return p, fmt.Errorf("lookup: page of %s: %w", cert.UVCI, err)
	}
	p.FamilyICAO, p.GivenICAO = c.Nam.FNT, c.Nam.GNT
	if len(c.V) > 0 {
		p.Country, p.Issuer = c.V[0].CO, c.V[0].IS
	}
	return p, nil
}

func dccJSON(hc1 string) ([]byte, error) {
	cwt, err := hcert.OpenClaims(hc1)
	if err != nil {
		return nil, err
	}
	return hcert.DCCToJSON(cwt.DCC)
}
