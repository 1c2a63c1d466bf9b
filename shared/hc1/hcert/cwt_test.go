package hcert

import (
	"errors"
	"math"
	"testing"
	"time"
)

func cborText(s string) []byte { return append(appendHead(nil, majorText, uint64(len(s))), s...) }

func cborFloat64(f float64) []byte {
	b := []byte{0xfb}
	u := math.Float64bits(f)
	for i := 7; i >= 0; i-- {
		b = append(b, byte(u>>(8*i)))
	}
	return b
}

func TestParseClaims(t *testing.T) {
	dcc := []byte{0xa1, 0x63, 'v', 'e', 'r', 0x65, '1', '.', '3', '.', '0'}
	hcert := cborMap(1, dcc)
	ok := func(kv ...any) []byte { return cborMap(kv...) }
	tests := []struct {
		name    string
		payload []byte
		iat     time.Time
		wantErr bool
	}{
		{"int dates", ok(1, cborText("VN"), 4, cborInt(1700003600), 6, cborInt(1700000000), -260, hcert), time.Unix(1700000000, 0), false},
		{"float dates (ES, HU)", ok(1, cborText("ES"), 4, cborFloat64(1630402567), 6, cborFloat64(1621262460.78), -260, hcert), time.Unix(1621262460, 780000000), false},
		{"no iss", ok(4, cborInt(2), 6, cborInt(1), -260, hcert), time.Unix(1, 0), false},
		{"extra claims ignored", ok(2, cborText("sub"), 4, cborInt(2), 6, cborInt(1), -260, cborMap(1, dcc, 2, cborInt(0))), time.Unix(1, 0), false},
		{"iss not text", ok(1, cborInt(704), 4, cborInt(2), 6, cborInt(1), -260, hcert), time.Time{}, true},
		{"iss bytes", ok(1, cborBstr([]byte("VN")), 4, cborInt(2), 6, cborInt(1), -260, hcert), time.Time{}, true},
		{"no iat", ok(4, cborInt(2), -260, hcert), time.Time{}, true},
		{"no exp", ok(6, cborInt(1), -260, hcert), time.Time{}, true},
		{"iat text", ok(4, cborInt(2), 6, cborText("2021"), -260, hcert), time.Time{}, true},
		{"iat tagged", ok(4, cborInt(2), 6, append([]byte{0xc1}, cborInt(1)...), -260, hcert), time.Time{}, true},
		{"iat huge", ok(4, cborInt(2), 6, cborInt(math.MaxInt64), -260, hcert), time.Time{}, true},
		{"no hcert", ok(4, cborInt(2), 6, cborInt(1)), time.Time{}, true},
		{"hcert not a map", ok(4, cborInt(2), 6, cborInt(1), -260, dcc[1:4]), time.Time{}, true},
		{"hcert without 1", ok(4, cborInt(2), 6, cborInt(1), -260, cborMap(2, dcc)), time.Time{}, true},
		{"DCC not a map", ok(4, cborInt(2), 6, cborInt(1), -260, cborMap(1, cborText("{}"))), time.Time{}, true},
		{"duplicate claim", ok(4, cborInt(2), 4, cborInt(3), 6, cborInt(1), -260, hcert), time.Time{}, true},
		{"payload not a map", cborInt(7), time.Time{}, true},
		{"empty", nil, time.Time{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cwt, err := ParseClaims(tc.payload)
			if tc.wantErr {
				if !errors.Is(err, ErrClaims) {
					t.Fatalf("err = %v, want ErrClaims", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !cwt.IssuedAt.Equal(tc.iat) {
				t.Errorf("iat %v, want %v", cwt.IssuedAt, tc.iat)
			}
			if string(cwt.DCC) != string(dcc) {
				t.Errorf("DCC %x, want %x", cwt.DCC, dcc)
			}
		})
	}
}
