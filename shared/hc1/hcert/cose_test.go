package hcert

import (
	"bytes"
	"errors"
	"testing"

	"github.com/veraison/go-cose"
)

// cborMap encodes a map with int keys whose values are given pre-encoded.
func cborMap(kv ...any) []byte {
	b := appendHead(nil, majorMap, uint64(len(kv)/2))
	for i := 0; i < len(kv); i += 2 {
		b = appendInt(b, int64(kv[i].(int)))
		b = append(b, kv[i+1].([]byte)...)
	}
	return b
}

func cborInt(v int64) []byte   { return appendInt(nil, v) }
func cborBstr(b []byte) []byte { return appendBytes(nil, b) }

// sign1 assembles a COSE_Sign1 from its parts; prefix holds the tag bytes.
func sign1(prefix, protected, unprotected, payload, sig []byte) []byte {
	b := append(append([]byte(nil), prefix...), 0x84)
	b = appendBytes(b, protected)
	b = append(b, unprotected...)
	b = append(b, payload...)
	return append(b, sig...)
}

var (
	testKID   = []byte{1, 2, 3, 4, 5, 6, 7, 8}
	otherKID  = []byte{9, 9, 9, 9, 9, 9, 9, 9}
	protES256 = cborMap(1, cborInt(-7), 4, cborBstr(testKID))
	emptyMap  = []byte{0xa0}
	payload1  = cborBstr([]byte{0xa0})
	sig64     = cborBstr(make([]byte, 64))
	tag18     = []byte{0xd2}
)

func TestParseCOSE(t *testing.T) {
	tests := []struct {
		name      string
		msg       []byte
		kid       []byte
		protected bool
		wantErr   bool
	}{
		{"tag 18", sign1(tag18, protES256, emptyMap, payload1, sig64), testKID, true, false},
		{"tag 61 around tag 18", sign1([]byte{0xd8, 0x3d, 0xd2}, protES256, emptyMap, payload1, sig64), testKID, true, false},
		{"untagged", sign1(nil, protES256, emptyMap, payload1, sig64), testKID, true, false},
		{"kid unprotected only", sign1(tag18, cborMap(1, cborInt(-7)), cborMap(4, cborBstr(testKID)), payload1, sig64), testKID, false, false},
		{"protected kid wins", sign1(tag18, protES256, cborMap(4, cborBstr(otherKID)), payload1, sig64), testKID, true, false},
		{"PS256", sign1(tag18, cborMap(1, cborInt(-37), 4, cborBstr(testKID)), emptyMap, payload1, sig64), testKID, true, false},
		{"tag 61 alone", sign1([]byte{0xd8, 0x3d}, protES256, emptyMap, payload1, sig64), nil, false, true},
		{"tag 98 (COSE_Sign)", sign1([]byte{0xd8, 0x62}, protES256, emptyMap, payload1, sig64), nil, false, true},
		{"tag 18 twice", sign1([]byte{0xd2, 0xd2}, protES256, emptyMap, payload1, sig64), nil, false, true},
		{"alg only unprotected", sign1(tag18, cborMap(4, cborBstr(testKID)), cborMap(1, cborInt(-7)), payload1, sig64), nil, false, true},
		{"empty protected", sign1(tag18, nil, cborMap(1, cborInt(-7), 4, cborBstr(testKID)), payload1, sig64), nil, false, true},
		{"alg as text", sign1(tag18, cborMap(1, []byte{0x65, 'E', 'S', '2', '5', '6'}, 4, cborBstr(testKID)), emptyMap, payload1, sig64), nil, false, true},
		{"crit header", sign1(tag18, cborMap(1, cborInt(-7), 2, []byte{0x81, 0x04}, 4, cborBstr(testKID)), emptyMap, payload1, sig64), nil, false, true},
		{"duplicate protected key", sign1(tag18, cborMap(1, cborInt(-7), 1, cborInt(-7), 4, cborBstr(testKID)), emptyMap, payload1, sig64), nil, false, true},
		{"no kid", sign1(tag18, cborMap(1, cborInt(-7)), emptyMap, payload1, sig64), nil, false, true},
		{"kid as text", sign1(tag18, cborMap(1, cborInt(-7), 4, []byte{0x61, 'k'}), emptyMap, payload1, sig64), nil, false, true},
		{"unprotected not a map", sign1(tag18, protES256, []byte{0x80}, payload1, sig64), nil, false, true},
		{"detached payload", sign1(tag18, protES256, emptyMap, []byte{0xf6}, sig64), nil, false, true},
		{"payload as text", sign1(tag18, protES256, emptyMap, []byte{0x61, 'x'}, sig64), nil, false, true},
		{"empty signature", sign1(tag18, protES256, emptyMap, payload1, []byte{0x40}), nil, false, true},
		{"trailing byte", append(sign1(tag18, protES256, emptyMap, payload1, sig64), 0), nil, false, true},
		{"three elements", append([]byte{0xd2, 0x83}, sign1(nil, protES256, emptyMap, payload1, nil)[1:]...), nil, false, true},
		{"not an array", []byte{0xd2, 0xa0}, nil, false, true},
		{"empty", nil, nil, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			msg, err := ParseCOSE(tc.msg)
			if tc.wantErr {
				if !errors.Is(err, ErrCOSE) {
					t.Fatalf("err = %v, want ErrCOSE", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(msg.KID, tc.kid) || msg.KIDProtected != tc.protected {
				t.Errorf("kid %x protected %v, want %x %v", msg.KID, msg.KIDProtected, tc.kid, tc.protected)
			}
			if msg.Algorithm != cose.AlgorithmES256 && msg.Algorithm != cose.AlgorithmPS256 {
				t.Errorf("alg %v", msg.Algorithm)
			}
		})
	}
}

// TestSigStructureUsesProtectedAsReceived checks a non-canonical protected
// header (a 1-byte int encoded in 2 bytes) is hashed as received, not re-encoded.
func TestSigStructureUsesProtectedAsReceived(t *testing.T) {
	prot := []byte{0xa2, 0x01, 0x38, 0x06, 0x04, 0x48, 1, 2, 3, 4, 5, 6, 7, 8} // alg -7 as 38 06
	msg, err := ParseCOSE(sign1(tag18, prot, emptyMap, payload1, sig64))
	if err != nil {
		t.Fatal(err)
	}
	want := append(append([]byte{0x84, 0x6a}, "Signature1"...), cborBstr(prot)...)
	want = append(append(want, 0x40), cborBstr([]byte{0xa0})...)
	if got := msg.SigStructure(); !bytes.Equal(got, want) {
		t.Errorf("Sig_structure\n got %x\nwant %x", got, want)
	}
}

func TestParseCOSERejectsHugeAndDeep(t *testing.T) {
	if _, err := ParseCOSE(make([]byte, MaxCOSESize+1)); !errors.Is(err, ErrCOSE) {
		t.Errorf("oversized: %v", err)
	}
	// An array head claiming 2^32 elements with no data must fail without allocating them.
	if _, err := ParseCOSE([]byte{0xd2, 0x9a, 0xff, 0xff, 0xff, 0xff}); !errors.Is(err, ErrCOSE) {
		t.Errorf("huge count: %v", err)
	}
	deep := append(bytes.Repeat([]byte{0x81}, 1000), 0)
	if _, err := ParseCOSE(sign1(tag18, protES256, emptyMap, payload1, deep)); !errors.Is(err, ErrCOSE) {
		t.Errorf("deep nesting: %v", err)
	}
	wide := appendHead(nil, majorMap, maxElements+1)
	for i := 0; i <= maxElements; i++ {
		wide = append(appendInt(wide, int64(i+10)), 0)
	}
	if _, err := ParseCOSE(sign1(tag18, protES256, wide, payload1, sig64)); !errors.Is(err, ErrCOSE) {
		t.Errorf("oversized map: %v", err)
	}
}
