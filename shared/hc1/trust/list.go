package trust

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
)

// ErrTrustList is wrapped by every trust-list parsing error.
var ErrTrustList = errors.New("trust: invalid trust list")

// CertificateTypeDSC is the only certificateType a trust list carries.
const CertificateTypeDSC = "DSC"

// Entry is one DSC on a trust list.
type Entry struct {
	KID         []byte // KID(Certificate.Raw)
	Country     string // ISO 3166-1 alpha-2 of the issuing country
	Certificate *x509.Certificate
}

// List is a set of DSCs indexed by KID. Several DSCs may share a KID (it is a
// truncated hash), so a lookup returns all of them. A List is safe for
// concurrent reads; Add must not run concurrently with anything else.
type List struct {
	entries []Entry
	byKID   map[[KIDLen]byte][]*x509.Certificate
}

// NewList returns a List holding the given DSCs, each under the country of its
// subject (C=).
func NewList(dscs ...*x509.Certificate) (*List, error) {
	l := &List{}
	for _, c := range dscs {
		if err := l.Add("", c); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// Add puts dsc on the list under country; an empty country means the
// certificate subject's C=. Adding a certificate already present is a no-op.
func (l *List) Add(country string, dsc *x509.Certificate) error {
	if dsc == nil {
		return fmt.Errorf("%w: nil certificate", ErrTrustList)
	}
	if country == "" {
		if len(dsc.Subject.Country) != 1 {
			return fmt.Errorf("%w: DSC %q: subject has %d countries, need exactly one",
				ErrTrustList, dsc.Subject.CommonName, len(dsc.Subject.Country))
		}
		country = dsc.Subject.Country[0]
	}
	if !isCountryCode(country) {
		return fmt.Errorf("%w: country %q is not an upper-case ISO 3166-1 alpha-2 code", ErrTrustList, country)
	}
	var k [KIDLen]byte
	copy(k[:], KID(dsc.Raw))
	for _, c := range l.byKID[k] {
		if bytes.Equal(c.Raw, dsc.Raw) {
			return nil
		}
	}
	if l.byKID == nil {
		l.byKID = make(map[[KIDLen]byte][]*x509.Certificate)
	}
	l.byKID[k] = append(l.byKID[k], dsc)
	l.entries = append(l.entries, Entry{KID: k[:], Country: country, Certificate: dsc})
	return nil
}

// Entries returns the list's entries in insertion order (shared, do not modify).
func (l *List) Entries() []Entry { return l.entries }

// Len returns the number of DSCs on the list.
func (l *List) Len() int { return len(l.entries) }

// ByKID returns every DSC whose KID is kid; nil when there is none.
func (l *List) ByKID(kid []byte) []*x509.Certificate {
	if len(kid) != KIDLen {
		return nil
	}
	return l.byKID[[KIDLen]byte(kid)]
}

// LookupKID is ByKID in the shape of a verifier's trust resolver; it never fails.
func (l *List) LookupKID(_ context.Context, kid []byte) ([]*x509.Certificate, error) {
	return l.ByKID(kid), nil
}

// jsonEntry is the public contract's trust-list element.
type jsonEntry struct {
	KID             string `json:"kid"`
	Country         string `json:"country"`
	CertificateType string `json:"certificateType"`
	RawData         string `json:"rawData"`
}

// MarshalJSON writes the contract shape
// [{"kid":"<base64>","country":"VN","certificateType":"DSC","rawData":"<base64 DER>"}].
func (l *List) MarshalJSON() ([]byte, error) {
	out := make([]jsonEntry, len(l.entries)) // non-nil: an empty list is [] not null
	for i, e := range l.entries {
		out[i] = jsonEntry{
			KID:             base64.StdEncoding.EncodeToString(e.KID),
			Country:         e.Country,
			CertificateType: CertificateTypeDSC,
			RawData:         base64.StdEncoding.EncodeToString(e.Certificate.Raw),
		}
	}
	return json.Marshal(out)
}

// ParseJSON reads a trust list in the contract shape. It is strict: unknown or
// missing fields, a certificateType other than DSC, a country that is not an
// alpha-2 code, undecodable base64 or DER, and a kid that is not the KID of
// rawData are all errors naming the entry and field.
func ParseJSON(data []byte) (*List, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var raw []map[string]json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTrustList, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: data after the JSON array", ErrTrustList)
	}
	if raw == nil {
		return nil, fmt.Errorf("%w: want a JSON array", ErrTrustList)
	}
	l := &List{}
	for i, m := range raw {
		e, err := parseJSONEntry(m)
		if err != nil {
			return nil, fmt.Errorf("%w: entry %d: %w", ErrTrustList, i, err)
		}
		if err := l.Add(e.Country, e.Certificate); err != nil {
			return nil, fmt.Errorf("entry %d: %w", i, err)
		}
	}
	return l, nil
}

func parseJSONEntry(m map[string]json.RawMessage) (Entry, error) {
	fields := map[string]*string{}
	var je jsonEntry
	fields["kid"], fields["country"], fields["certificateType"], fields["rawData"] =
		&je.KID, &je.Country, &je.CertificateType, &je.RawData
	for name := range m {
		if _, ok := fields[name]; !ok {
			return Entry{}, fmt.Errorf("unknown field %q", name)
		}
	}
	for name, dst := range fields {
		v, ok := m[name]
		if !ok {
			return Entry{}, fmt.Errorf("missing field %q", name)
		}
		if err := json.Unmarshal(v, dst); err != nil {
			return Entry{}, fmt.Errorf("field %q: want a string: %w", name, err)
		}
	}
	if je.CertificateType != CertificateTypeDSC {
		return Entry{}, fmt.Errorf("field \"certificateType\": %q, want %q", je.CertificateType, CertificateTypeDSC)
	}
	if !isCountryCode(je.Country) {
		return Entry{}, fmt.Errorf("field \"country\": %q is not an upper-case alpha-2 code", je.Country)
	}
	der, err := base64.StdEncoding.Strict().DecodeString(je.RawData)
	if err != nil {
		return Entry{}, fmt.Errorf("field \"rawData\": %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return Entry{}, fmt.Errorf("field \"rawData\": %w", err)
	}
	kid, err := base64.StdEncoding.Strict().DecodeString(je.KID)
	if err != nil {
		return Entry{}, fmt.Errorf("field \"kid\": %w", err)
	}
	if want := KID(der); !bytes.Equal(kid, want) {
		return Entry{}, fmt.Errorf("field \"kid\": %x is not the KID %x of rawData", kid, want)
	}
	return Entry{KID: kid, Country: je.Country, Certificate: cert}, nil
}

// MarshalPEM writes the list's DSCs as a bundle of CERTIFICATE blocks.
func (l *List) MarshalPEM() []byte {
	var b bytes.Buffer
	for _, e := range l.entries {
		_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: e.Certificate.Raw})
	}
	return b.Bytes()
}

// ParsePEM reads a bundle of CERTIFICATE blocks; each DSC is listed under its
// subject's country. Text between blocks is skipped (openssl writes subject
// lines there); other block types, trailing text and an empty bundle are errors.
func ParsePEM(data []byte) (*List, error) {
	l := &List{}
	rest := data
	for n := 0; ; n++ {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("%w: PEM block %d is %q, want CERTIFICATE", ErrTrustList, n, block.Type)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: PEM block %d: %w", ErrTrustList, n, err)
		}
		if err := l.Add("", cert); err != nil {
			return nil, fmt.Errorf("PEM block %d: %w", n, err)
		}
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, fmt.Errorf("%w: %d bytes outside PEM blocks", ErrTrustList, len(bytes.TrimSpace(rest)))
	}
	if l.Len() == 0 {
		return nil, fmt.Errorf("%w: no CERTIFICATE block", ErrTrustList)
	}
	return l, nil
}

func isCountryCode(s string) bool {
	return len(s) == 2 && s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' && s[1] <= 'Z'
}
