package trust

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestListJSONRoundTrip(t *testing.T) {
	p := newPKI(t)
	a, _ := p.dsc(t, DSCOptions{})
	b, _ := p.dsc(t, DSCOptions{})
	l, err := NewList(a, b, a) // the duplicate is ignored
	if err != nil {
		t.Fatal(err)
	}
	if l.Len() != 2 {
		t.Fatalf("Len = %d, want 2", l.Len())
	}
	data, err := json.Marshal(l)
	if err != nil {
		t.Fatal(err)
	}
	// Exactly the contract shape, field by field.
	var generic []map[string]string
	if err := json.Unmarshal(data, &generic); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"kid":             base64.StdEncoding.EncodeToString(KID(a.Raw)),
		"country":         "VN",
		"certificateType": "DSC",
		"rawData":         base64.StdEncoding.EncodeToString(a.Raw),
	}
	if fmt.Sprint(generic[0]) != fmt.Sprint(want) {
		t.Errorf("entry 0 = %v, want %v", generic[0], want)
	}
	back, err := ParseJSON(data)
	if err != nil {
		t.Fatal(err)
	}
	if back.Len() != 2 || !bytes.Equal(back.Entries()[1].Certificate.Raw, b.Raw) {
		t.Errorf("round trip lost entries: %d", back.Len())
	}
	got, err := back.LookupKID(context.Background(), KID(b.Raw))
	if err != nil || len(got) != 1 || !bytes.Equal(got[0].Raw, b.Raw) {
		t.Errorf("LookupKID = %v, %v", got, err)
	}
	if got := back.ByKID([]byte("12345678")); got != nil {
		t.Errorf("unknown kid found %d certificates", len(got))
	}
	if got := back.ByKID([]byte("short")); got != nil {
		t.Errorf("short kid found %d certificates", len(got))
	}
}

func TestEmptyListMarshalsAsArray(t *testing.T) {
	data, err := json.Marshal(&List{})
	if err != nil || string(data) != "[]" {
		t.Errorf("empty list = %s, %v; want []", data, err)
	}
}

func TestParseJSONRejects(t *testing.T) {
	p := newPKI(t)
	dsc, _ := p.dsc(t, DSCOptions{})
	kid := base64.StdEncoding.EncodeToString(KID(dsc.Raw))
	raw := base64.StdEncoding.EncodeToString(dsc.Raw)
	entry := func(kid, country, typ, raw string) string {
		return fmt.Sprintf(`[{"kid":%q,"country":%q,"certificateType":%q,"rawData":%q}]`, kid, country, typ, raw)
	}
	tests := map[string]struct{ in, field string }{
		"not JSON":          {`{`, ""},
		"object not array":  {`{"kid":"x"}`, ""},
		"null":              {`null`, ""},
		"trailing data":     {entry(kid, "VN", "DSC", raw) + `[]`, "after"},
		"unknown field":     {`[{"kid":"","country":"VN","certificateType":"DSC","rawData":"","extra":1}]`, `"extra"`},
		"missing rawData":   {`[{"kid":"` + kid + `","country":"VN","certificateType":"DSC"}]`, `"rawData"`},
		"kid not a string":  {`[{"kid":1,"country":"VN","certificateType":"DSC","rawData":"` + raw + `"}]`, `"kid"`},
		"wrong type":        {entry(kid, "VN", "CSCA", raw), `"certificateType"`},
		"lower-case land":   {entry(kid, "vn", "DSC", raw), `"country"`},
		"long country":      {entry(kid, "VNM", "DSC", raw), `"country"`},
		"bad base64 raw":    {entry(kid, "VN", "DSC", "!!"), `"rawData"`},
		"not a certificate": {entry(kid, "VN", "DSC", "AAAA"), `"rawData"`},
		"bad base64 kid":    {entry("**", "VN", "DSC", raw), `"kid"`},
		"wrong kid":         {entry(base64.StdEncoding.EncodeToString([]byte("12345678")), "VN", "DSC", raw), `"kid"`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := ParseJSON([]byte(tc.in))
			if !errors.Is(err, ErrTrustList) {
				t.Fatalf("err = %v, want ErrTrustList", err)
			}
			if !strings.Contains(err.Error(), tc.field) {
				t.Errorf("error %q does not name %s", err, tc.field)
			}
		})
	}
}

func TestPEMRoundTrip(t *testing.T) {
	p := newPKI(t)
	a, _ := p.dsc(t, DSCOptions{})
	b, _ := p.dsc(t, DSCOptions{})
	l, _ := NewList(a, b)
	bundle := append([]byte("subject=CN = VN DGC DSC\n"), l.MarshalPEM()...)
	back, err := ParsePEM(bundle)
	if err != nil {
		t.Fatal(err)
	}
	if back.Len() != 2 || back.Entries()[0].Country != "VN" || !bytes.Equal(back.Entries()[1].KID, KID(b.Raw)) {
		t.Errorf("PEM round trip: %+v", back.Entries())
	}
}

func TestParsePEMRejects(t *testing.T) {
	p := newPKI(t)
	dsc, _ := p.dsc(t, DSCOptions{})
	l, _ := NewList(dsc)
	good := l.MarshalPEM()
	for name, in := range map[string][]byte{
		"empty":         nil,
		"no block":      []byte("hello"),
		"private key":   []byte("-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n"),
		"garbage after": append(append([]byte(nil), good...), "junk"...),
		"bad DER":       []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := ParsePEM(in); !errors.Is(err, ErrTrustList) {
				t.Errorf("err = %v, want ErrTrustList", err)
			}
		})
	}
}

// TestKIDCollisionReturnsAll checks a lookup yields every DSC under a KID: a
// real SHA-256 prefix collision cannot be made, so the index is filled directly.
func TestKIDCollisionReturnsAll(t *testing.T) {
	p := newPKI(t)
	a, _ := p.dsc(t, DSCOptions{})
	b, _ := p.dsc(t, DSCOptions{})
	l, _ := NewList(a)
	k := [KIDLen]byte(KID(a.Raw))
	l.byKID[k] = append(l.byKID[k], b)
	got := l.ByKID(k[:])
	if len(got) != 2 || got[0] != a || got[1] != b {
		t.Errorf("ByKID returned %d certificates, want both", len(got))
	}
}

func TestAddNeedsCountry(t *testing.T) {
	l := &List{}
	if err := l.Add("", &x509.Certificate{}); !errors.Is(err, ErrTrustList) {
		t.Errorf("Add without subject country = %v", err)
	}
	if err := l.Add("", nil); !errors.Is(err, ErrTrustList) {
		t.Errorf("Add(nil) = %v", err)
	}
}
