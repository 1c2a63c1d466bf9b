// Package dcc holds the EU Digital COVID Certificate payload (the JSON/CBOR document under
// CWT claim -260/1), builds it for one certified dose, and validates documents against the
// official JSON schema and value sets.
//
// Struct tags are json tags; fxamacker/cbor/v2 honours them too, so the same types encode
// the CBOR payload. Optional fields carry omitempty and no field is a pointer, so neither
// encoding ever emits null (dcc-quality-assurance SpecialCaseHandling.md: never emit
// null/undefined, no empty optional fields).
package dcc

import (
	"bytes"
	"encoding/json"
)

// Constants of every certificate we issue (design.md, "Decisions already taken").
const (
	// SchemaVersion is the `ver` we emit: 1.3.0, like Viet Nam's specimen and most
	// third-country issuers (dcc/notes.md §1.9); it is valid against the 1.3.3 schema.
	SchemaVersion = "1.3.0"
	// Issuer is the `is` text.
	Issuer = "Ministry of Health of Viet Nam"
	// Country is the country of vaccination, `co`.
	Country = "VN"
)

// Certificate is the DCC document (eu-dcc-schema 1.3.x). Exactly one of V, T, R is set;
// we only issue V, but T and R let a verifier decode other issuers' certificates.
type Certificate struct {
	Ver string `json:"ver"`
	Nam Name   `json:"nam"`
	// DOB is YYYY-MM-DD, YYYY-MM or YYYY (the schema also allows "", so it is never
	// omitted).
	DOB string        `json:"dob"`
	V   []Vaccination `json:"v,omitempty"`
	T   []Test        `json:"t,omitempty"`
	R   []Recovery    `json:"r,omitempty"`
}

// Name is the person's name as written (FN, GN) and in ICAO 9303 form (FNT, GNT:
// ^[A-Z<]*$, at most 80 characters).
type Name struct {
	FN  string `json:"fn,omitempty"`
	FNT string `json:"fnt,omitempty"`
	GN  string `json:"gn,omitempty"`
	GNT string `json:"gnt,omitempty"`
}

// Vaccination is one vaccination event; all ten fields are required by the schema.
type Vaccination struct {
	TG string `json:"tg"` // disease targeted
	VP string `json:"vp"` // vaccine or prophylaxis
	MP string `json:"mp"` // medicinal product
	MA string `json:"ma"` // marketing-authorisation holder or manufacturer
	DN int    `json:"dn"` // dose number
	SD int    `json:"sd"` // total doses in the series
	DT string `json:"dt"` // date of vaccination, YYYY-MM-DD
	CO string `json:"co"` // country of vaccination
	IS string `json:"is"` // certificate issuer
	CI string `json:"ci"` // UVCI
}

// Test is one test event (for decoding other issuers' certificates).
type Test struct {
	TG string `json:"tg"`
	TT string `json:"tt"`
	NM string `json:"nm,omitempty"`
	MA string `json:"ma,omitempty"`
	SC string `json:"sc"`
	TR string `json:"tr"`
	TC string `json:"tc,omitempty"`
	CO string `json:"co"`
	IS string `json:"is"`
	CI string `json:"ci"`
}

// Recovery is one recovery statement (for decoding other issuers' certificates).
type Recovery struct {
	TG string `json:"tg"`
	FR string `json:"fr"`
	CO string `json:"co"`
	IS string `json:"is"`
	DF string `json:"df"`
	DU string `json:"du"`
	CI string `json:"ci"`
}

// JSON returns the certificate's JSON encoding without encoding/json's HTML escaping, so
// that fnt "VAN<AN" stays "VAN<AN" and not "VAN\u003cAN" (both decode the same; this
// one is what people and other tools expect to read).
func (c *Certificate) JSON() ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(c); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}
