package base45

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"testing"
)

type vectors struct {
	Valid []struct {
		BytesHex string `json:"bytes_hex"`
		Text     string `json:"text"`
	} `json:"valid"`
	Invalid []struct {
		Text string `json:"text"`
		Why  string `json:"why"`
	} `json:"invalid"`
}

func loadVectors(tb testing.TB) vectors {
	tb.Helper()
	raw, err := os.ReadFile("testdata/vectors.json")
	if err != nil {
		tb.Fatal(err)
	}
	var v vectors
	if err := json.Unmarshal(raw, &v); err != nil {
		tb.Fatal(err)
	}
	if len(v.Valid) == 0 || len(v.Invalid) == 0 {
		tb.Fatal("testdata/vectors.json holds no vectors")
	}
	return v
}

func TestVectors(t *testing.T) {
	v := loadVectors(t)
	for _, tc := range v.Valid {
		want, err := hex.DecodeString(tc.BytesHex)
		if err != nil {
			t.Fatal(err)
		}
		t.Run("encode/"+tc.Text, func(t *testing.T) {
			if got := Encode(want); got != tc.Text {
				t.Errorf("Encode(%x) = %q, want %q", want, got, tc.Text)
			}
			if got := EncodedLen(len(want)); got != len(tc.Text) {
				t.Errorf("EncodedLen(%d) = %d, want %d", len(want), got, len(tc.Text))
			}
		})
		t.Run("decode/"+tc.Text, func(t *testing.T) {
			got, err := Decode(tc.Text)
			if err != nil {
				t.Fatalf("Decode(%q): %v", tc.Text, err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("Decode(%q) = %x, want %x", tc.Text, got, want)
			}
		})
	}
	for _, tc := range v.Invalid {
		t.Run("reject/"+tc.Why, func(t *testing.T) {
			got, err := Decode(tc.Text)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Decode(%q) = %x, %v; want ErrInvalid (%s)", tc.Text, got, err, tc.Why)
			}
		})
	}
}

func TestAppendKeepsPrefix(t *testing.T) {
	prefix := []byte("HC1:")
	enc := AppendEncode(append([]byte(nil), prefix...), []byte("AB"))
	if string(enc) != "HC1:BB8" {
		t.Errorf("AppendEncode = %q, want %q", enc, "HC1:BB8")
	}
	dec, err := AppendDecode([]byte{0xaa}, "BB8")
	if err != nil || !bytes.Equal(dec, []byte{0xaa, 'A', 'B'}) {
		t.Errorf("AppendDecode = %x, %v; want aa4142", dec, err)
	}
	dec, err = AppendDecode([]byte{0xaa}, "BB8GGW")
	if err == nil || !bytes.Equal(dec, []byte{0xaa}) {
		t.Errorf("AppendDecode on bad input = %x, %v; want aa and an error", dec, err)
	}
}

func TestErrorNamesOffset(t *testing.T) {
	_, err := Decode("BB8BBa")
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("offset 5")) {
		t.Errorf("error %v does not name offset 5", err)
	}
}

// TestAllPairs checks every two-byte group round-trips, so the arithmetic
// encoder and the table decoder agree on the whole 16-bit range.
func TestAllPairs(t *testing.T) {
	var src [2]byte
	for n := 0; n < 1<<16; n++ {
		src[0], src[1] = byte(n>>8), byte(n)
		dec, err := Decode(Encode(src[:]))
		if err != nil || !bytes.Equal(dec, src[:]) {
			t.Fatalf("round trip of %04x = %x, %v", n, dec, err)
		}
	}
}

func FuzzRoundTrip(f *testing.F) {
	for _, tc := range loadVectors(f).Valid {
		b, _ := hex.DecodeString(tc.BytesHex)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		enc := Encode(src)
		if len(enc) != EncodedLen(len(src)) {
			t.Fatalf("len(Encode) = %d, want %d", len(enc), EncodedLen(len(src)))
		}
		dec, err := Decode(enc)
		if err != nil || !bytes.Equal(dec, src) {
			t.Fatalf("Decode(Encode(%x)) = %x, %v", src, dec, err)
		}
	})
}

func FuzzDecode(f *testing.F) {
	v := loadVectors(f)
	for _, tc := range v.Valid {
		f.Add(tc.Text)
	}
	for _, tc := range v.Invalid {
		f.Add(tc.Text)
	}
	f.Fuzz(func(t *testing.T, s string) {
		dec, err := Decode(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Decode(%q) error %v does not wrap ErrInvalid", s, err)
			}
			return
		}
		// Valid Base45 text has exactly one encoding, so it must re-encode to itself.
		if again := Encode(dec); again != s {
			t.Fatalf("Encode(Decode(%q)) = %q", s, again)
		}
	})
}

var benchData = bytes.Repeat([]byte("x\x9c\xbb\xd4\xe2\xbb\x90Q\x9dP"), 36) // ~zlib-like, 360 bytes

func BenchmarkEncode(b *testing.B) {
	dst := make([]byte, 0, EncodedLen(len(benchData)))
	b.SetBytes(int64(len(benchData)))
	for b.Loop() {
		dst = AppendEncode(dst[:0], benchData)
	}
}

func BenchmarkDecode(b *testing.B) {
	s := Encode(benchData)
	dst := make([]byte, 0, len(benchData))
	b.SetBytes(int64(len(s)))
	for b.Loop() {
		var err error
		if dst, err = AppendDecode(dst[:0], s); err != nil {
			b.Fatal(err)
		}
	}
}
