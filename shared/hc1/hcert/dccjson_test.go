package hcert

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"testing"

	"github.com/vaxpass/vaxpass/shared/hc1/trust"
)

func TestDCCToJSON(t *testing.T) {
	tests := []struct {
		name, cborHex, want string
	}{
		{"strings and ints", "a2636e756d18646374787463c3a164", `{"num":100,"txt":"ád"}`},
		{"negative and big", "a3616120616239ffff6163f5", `{"a":-1,"b":-65536,"c":true}`},
		{"min negint", "a1616e3bffffffffffffffff", `{"n":-18446744073709551616}`},
		{"max uint", "a1616e1bffffffffffffffff", `{"n":18446744073709551615}`},
		{"null false", "a2616af6616bf4", `{"j":null,"k":false}`},
		{"array", "a161618301020a", `{"a":[1,2,10]}`},
		{"tag 0 date-time", "a1627363c074323032312d30352d32395431393a32313a31335a", `{"sc":"2021-05-29T19:21:13Z"}`},
		{"tag 1004 date", "a163646f62d903ec6a313939302d30372d3135", `{"dob":"1990-07-15"}`},
		{"tag 1 epoch", "a16174c11a60b269ed", `{"t":"2021-05-29T16:21:01Z"}`},
		{"float16", "a16166f93e00", `{"f":1.5}`},
		{"float32", "a16166fa3dcccccd", `{"f":0.1}`},
		{"float64 tiny", "a16166fb3e7ad7f29abcaf48", `{"f":1e-7}`},
		{"escapes", "a161786a220a5c013c0809e280a8", `{"x":"\"\n\\\u0001<\u0008\t\u2028"}`},
		{"indefinite map and text", "bf6178 7f6161 6162 ff ff", `{"x":"ab"}`},
		{"indefinite array", "a161619f0102ff", `{"a":[1,2]}`},
		{"nested", "a1616ea1626676684e677579e1bb856e", `{"n":{"fv":"Nguyễn"}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := hex.DecodeString(spaceless(tc.cborHex))
			if err != nil {
				t.Fatal(err)
			}
			got, err := DCCToJSON(b)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
			if !json.Valid(got) {
				t.Errorf("invalid JSON %s", got)
			}
		})
	}
}

func spaceless(s string) string {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != ' ' {
			out = append(out, s[i])
		}
	}
	return string(out)
}

func TestDCCToJSONRejects(t *testing.T) {
	tests := map[string]string{
		"int key":           "a10102",
		"bytes key":         "a1416101",
		"duplicate key":     "a2616101616102",
		"byte string value": "a161614101",
		"undefined":         "a16161f7",
		"simple 16":         "a16161f0",
		"NaN":               "a16166f97e00",
		"infinity":          "a16166f97c00",
		"unknown tag":       "a16161d82001",
		"tag 0 on int":      "a16161c001",
		"invalid UTF-8":     "a1616162ff00",
		"truncated":         "a2616101",
		"trailing":          "a161610100",
		"break alone":       "ff",
		"huge text length":  "a161617affffffff",
		"deep":              "a16161" + repeatHex("81", 40) + "00",
	}
	for name, h := range tests {
		t.Run(name, func(t *testing.T) {
			b, _ := hex.DecodeString(h)
			if got, err := DCCToJSON(b); !errors.Is(err, ErrDCC) {
				t.Errorf("DCCToJSON(%s) = %s, %v; want ErrDCC", h, got, err)
			}
		})
	}
}

func repeatHex(h string, n int) string {
	s := ""
	for i := 0; i < n; i++ {
		s += h
	}
	return s
}

func TestCertificateType(t *testing.T) {
	tests := []struct {
		hex  string
		want trust.CertType
		ok   bool
	}{
		{"a2637665726131617680", trust.Vaccination, true},
		{"a1617480", trust.Test, true},
		{"a1617280", trust.Recovery, true},
		{"a26176806174 80", 0, false}, // v and t
		{"a163766572613", 0, false},   // truncated
		{"a1637665726131", 0, false},  // none
		{"80", 0, false},              // not a map
	}
	for _, tc := range tests {
		b, _ := hex.DecodeString(spaceless(tc.hex))
		got, err := CertificateType(b)
		if tc.ok && (err != nil || got != tc.want) {
			t.Errorf("CertificateType(%s) = %v, %v; want %v", tc.hex, got, err, tc.want)
		}
		if !tc.ok && !errors.Is(err, ErrDCC) {
			t.Errorf("CertificateType(%s) = %v, %v; want ErrDCC", tc.hex, got, err)
		}
	}
}
