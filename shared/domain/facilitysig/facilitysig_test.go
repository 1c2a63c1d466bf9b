package facilitysig_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/domain/facilitysig"
	"github.com/vaxpass/vaxpass/shared/store/filekeys"
)

func content() facilitysig.Content {
	return facilitysig.Content{PersonID: "001088012345", FacilityID: "site", FullName: "Nguyễn Văn An", DOB: "1988-03-14",
		Gender: "male", Nationality: "VN", SignedAt: time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC),
		Doses: []facilitysig.Dose{
			{SourceID: "b", Vaccine: "PFIZER", DoseNumber: 2, VaccinatedOn: "2021-07-01"},
			{SourceID: "a", Vaccine: "PFIZER", DoseNumber: 1, VaccinatedOn: "2021-06-01", Lot: "FF1"},
		}}
}

func TestEncodingIsCanonical(t *testing.T) {
	c := content()
	a, err := facilitysig.Encode(c)
	if err != nil {
		t.Fatal(err)
	}
	c.Doses[0], c.Doses[1] = c.Doses[1], c.Doses[0]
	b, _ := facilitysig.Encode(c)
	if !bytes.Equal(a, b) {
		t.Fatal("dose order changed the bytes")
	}
	back, err := facilitysig.Decode(a)
	if err != nil || back.Doses[0].SourceID != "a" || back.FullName != "Nguyễn Văn An" {
		t.Fatalf("Decode = %+v, %v", back, err)
	}
	// A valid CBOR encoding of the same content that is not canonical is refused.
	if _, err := facilitysig.Decode(append(a, 0)); err == nil {
		t.Fatal("trailing byte accepted")
	}
}

func TestSignVerifyAndTamper(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	signer, err := filekeys.NewSigner(key)
	if err != nil {
		t.Fatal(err)
	}
	payload, sig, err := facilitysig.Sign(context.Background(), signer, content())
	if err != nil || len(sig) != 64 {
		t.Fatalf("Sign: %d bytes, %v", len(sig), err)
	}
	if _, err := facilitysig.Verify(&key.PublicKey, payload, sig); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	badSig := append([]byte(nil), sig...)
	badSig[40] ^= 0x80
	badPayload := append([]byte(nil), payload...)
	badPayload[len(badPayload)/2] ^= 1
	for name, tc := range map[string]struct {
		pub          *ecdsa.PublicKey
		payload, sig []byte
	}{
		"other key": {&other.PublicKey, payload, sig}, "signature bit": {&key.PublicKey, payload, badSig},
		"payload bit": {&key.PublicKey, badPayload, sig}, "short signature": {&key.PublicKey, payload, sig[:63]},
		"no key": {nil, payload, sig},
	} {
		if _, err := facilitysig.Verify(tc.pub, tc.payload, tc.sig); !errors.Is(err, facilitysig.ErrSignature) {
			t.Errorf("%s: Verify = %v, want ErrSignature", name, err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	b, _ := facilitysig.Encode(content())
	f.Add(b)
	f.Add([]byte{0xa0})
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := facilitysig.Decode(data)
		if err != nil {
			return
		}
		again, err := facilitysig.Encode(c)
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("accepted non-canonical input")
		}
	})
}
