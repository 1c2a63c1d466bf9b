package awskms

import (
	"bytes"
	"encoding/asn1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/big"
	"os"
	"testing"
)

type derVector struct {
	Name  string `json:"name"`
	DER   string `json:"der"`
	Raw   string `json:"raw"`
	Error bool   `json:"error"`
}

func loadDERVectors(tb testing.TB) []derVector {
	tb.Helper()
	b, err := os.ReadFile("testdata/der_vectors.json")
	if err != nil {
		tb.Fatal(err)
	}
	var vs []derVector
	if err := json.Unmarshal(b, &vs); err != nil {
		tb.Fatal(err)
	}
	if len(vs) == 0 {
		tb.Fatal("no vectors")
	}
	return vs
}

func TestRawSignatureVectors(t *testing.T) {
	for _, v := range loadDERVectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			der, err := hex.DecodeString(v.DER)
			if err != nil {
				t.Fatal(err)
			}
			got, err := rawSignature(der)
			if v.Error {
				if !errors.Is(err, ErrDER) {
					t.Errorf("got %x, %v; want ErrDER", got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if hex.EncodeToString(got) != v.Raw {
				t.Errorf("raw %x\nwant %s", got, v.Raw)
			}
		})
	}
}

// ecdsaSig is the ASN.1 ECDSA-Sig-Value, encoded by encoding/asn1 (minimal DER).
type ecdsaSig struct{ R, S *big.Int }

// FuzzRawSignature: whatever rawSignature accepts is exactly the DER of the r||s it
// returns (strictness: one encoding per signature), and r, s are in range.
func FuzzRawSignature(f *testing.F) {
	for _, v := range loadDERVectors(f) {
		der, _ := hex.DecodeString(v.DER)
		f.Add(der)
	}
	f.Fuzz(func(t *testing.T, der []byte) {
		raw, err := rawSignature(der)
		if err != nil {
			if !errors.Is(err, ErrDER) {
				t.Fatalf("error %v does not wrap ErrDER", err)
			}
			return
		}
		if len(raw) != 64 {
			t.Fatalf("%d bytes", len(raw))
		}
		r, s := new(big.Int).SetBytes(raw[:32]), new(big.Int).SetBytes(raw[32:])
		for _, n := range []*big.Int{r, s} {
			if n.Sign() <= 0 || n.Cmp(p256Order) >= 0 {
				t.Fatalf("value %x out of range", n)
			}
		}
		again, err := asn1.Marshal(ecdsaSig{r, s})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again, der) {
			t.Fatalf("accepted %x, but its signature encodes as %x", der, again)
		}
	})
}
