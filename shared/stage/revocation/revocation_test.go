package revocation_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/stage/revocation"
)

type hashVectors struct {
	Vectors []struct {
		CI             string `json:"ci"`
		Iss            string `json:"iss"`
		UCI            string `json:"uci"`
		CountryCodeUCI string `json:"country_code_uci"`
	} `json:"vectors"`
	Signature struct {
		Sig  string `json:"es256_sig_hex"`
		Hash string `json:"hash"`
	} `json:"signature"`
}

func loadVectors(t testing.TB) hashVectors {
	b, err := os.ReadFile("testdata/hashes.json")
	if err != nil {
		t.Fatal(err)
	}
	var v hashVectors
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestHashesMatchVectors(t *testing.T) {
	v := loadVectors(t)
	if len(v.Vectors) == 0 {
		t.Fatal("no vectors")
	}
	for _, tc := range v.Vectors {
		if got := revocation.UCI(tc.CI).String(); got != tc.UCI {
			t.Errorf("UCI(%q) = %s, want %s", tc.CI, got, tc.UCI)
		}
		if got := revocation.CountryCodeUCI(tc.Iss, tc.CI).String(); got != tc.CountryCodeUCI {
			t.Errorf("CountryCodeUCI(%q, %q) = %s, want %s", tc.Iss, tc.CI, got, tc.CountryCodeUCI)
		}
	}
	sig, _ := hex.DecodeString(v.Signature.Sig)
	if got := revocation.Signature(sig, true).String(); got != v.Signature.Hash {
		t.Errorf("Signature(ES256) = %s, want %s", got, v.Signature.Hash)
	}
	// s is malleable: flipping it must not change the ES256 hash.
	flipped := bytes.Clone(sig)
	flipped[63] ^= 0xff
	if revocation.Signature(flipped, true) != revocation.Signature(sig, true) {
		t.Error("ES256 signature hash depends on s")
	}
	if revocation.Signature(sig, false) == revocation.Signature(sig, true) {
		t.Error("PS256 hash should cover the whole signature")
	}
}

func TestHashTypeCodes(t *testing.T) {
	for typ, want := range map[revocation.HashType]byte{revocation.TypeSignature: 0x0a, revocation.TypeUCI: 0x0b, revocation.TypeCountryCodeUCI: 0x0c} {
		if got, ok := typ.Code(); !ok || got != want {
			t.Errorf("%s.Code() = %#x %v, want %#x", typ, got, ok, want)
		}
	}
	if _, ok := revocation.HashType("UVCI").Code(); ok {
		t.Error("unknown type has a code")
	}
}

func TestBuildParseRoundTrip(t *testing.T) {
	svc := revocation.Service{Issuer: "VN"}
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	listed := []string{"URN:UVCI:01:VN:AAAA#B", "URN:UVCI:01:VN:CCCC#D", "URN:UVCI:01:VN:AAAA#B"} // a duplicate
	var entries []revocation.Entry
	for _, ci := range listed {
		entries = append(entries, svc.NewEntry(ci, "x", "ops", at))
	}
	var buf bytes.Buffer
	if err := revocation.Build("VN", at, entries).Encode(&buf); err != nil {
		t.Fatal(err)
	}
	text := buf.String()
	for _, ci := range listed {
		if strings.Contains(text, ci) || strings.Contains(text, strings.TrimPrefix(ci, "URN:UVCI:")) {
			t.Fatalf("the published list holds a plain UVCI: %s", text)
		}
	}
	set, err := revocation.Parse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if set.Len() != 2 {
		t.Errorf("Len = %d, want 2 (duplicates collapse)", set.Len())
	}
	tests := []struct {
		ci   string
		want bool
	}{
		{"URN:UVCI:01:VN:AAAA#B", true},
		{"URN:UVCI:01:VN:CCCC#D", true},
		{"URN:UVCI:01:VN:EEEE#F", false},
		{"urn:uvci:01:vn:aaaa#b", false}, // hashes are of the exact ci
		{"", false},
	}
	for _, tc := range tests {
		reason, got, err := set.Revoked(context.Background(), tc.ci)
		if err != nil || got != tc.want {
			t.Errorf("Revoked(%q) = %v, %v; want %v", tc.ci, got, err, tc.want)
		}
		if got && reason != revocation.ReasonRevoked {
			t.Errorf("reason %q", reason)
		}
	}
	// Same set, same list (apart from the time): the output is sorted.
	var again bytes.Buffer
	rev := []revocation.Entry{entries[1], entries[0]}
	revocation.Build("VN", at, rev).Encode(&again)
	if again.String() != text {
		t.Error("list depends on the order of entries")
	}
}

func TestParseCountryCodeOnlyAndKIDPartitions(t *testing.T) {
	ci := "URN:UVCI:01:VN:AAAA#B"
	doc := `{"format":"` + revocation.Format + `","issuer":"VN","generated_at":"2025-01-01T00:00:00Z","partitions":[
	 {"hash_type":"COUNTRYCODEUCI","encoding":"hex","hashes":["` + revocation.CountryCodeUCI("VN", ci).String() + `"]},
	 {"kid":"AAECAwQFBgc=","hash_type":"UCI","encoding":"base64","hashes":["` + b64(revocation.UCI("URN:UVCI:01:VN:KIDONLY#X")) + `"]}]}`
	set, err := revocation.Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := set.Revoked(context.Background(), ci); !ok {
		t.Error("COUNTRYCODEUCI entry not found")
	}
	if _, ok, _ := set.Revoked(context.Background(), "URN:UVCI:01:VN:KIDONLY#X"); ok {
		t.Error("a kid partition applied without the kid")
	}
	if _, ok, _ := set.RevokedKID("URN:UVCI:01:VN:KIDONLY#X", "AAECAwQFBgc="); !ok {
		t.Error("kid partition not consulted")
	}
}

func b64(h revocation.Hash) string {
	b, _ := json.Marshal(h[:]) // []byte marshals as base64
	return strings.Trim(string(b), `"`)
}

func TestParseRejects(t *testing.T) {
	ok := `{"format":"` + revocation.Format + `","issuer":"VN","generated_at":"2025-01-01T00:00:00Z","partitions":[{"hash_type":"UCI","encoding":"hex","hashes":["00112233445566778899aabbccddeeff"]}]}`
	if _, err := revocation.Parse([]byte(ok)); err != nil {
		t.Fatalf("valid list: %v", err)
	}
	tests := map[string]string{
		"not json":      `{`,
		"wrong format":  strings.Replace(ok, revocation.Format, "other/1", 1),
		"unknown field": strings.Replace(ok, `"issuer"`, `"uvcis":[],"issuer"`, 1),
		"unknown type":  strings.Replace(ok, `"UCI"`, `"UVCI"`, 1),
		"short hash":    strings.Replace(ok, "00112233445566778899aabbccddeeff", "0011", 1),
		"not hex":       strings.Replace(ok, "00112233445566778899aabbccddeeff", "zz112233445566778899aabbccddeeff", 1),
		"bad encoding":  strings.Replace(ok, `"hex"`, `"b32"`, 1),
		"bad kid":       strings.Replace(ok, `"hash_type"`, `"kid":"***","hash_type"`, 1),
		"trailing data": ok + `{}`,
	}
	for name, doc := range tests {
		if _, err := revocation.Parse([]byte(doc)); !errors.Is(err, revocation.ErrMalformedList) {
			t.Errorf("%s: Parse = %v, want ErrMalformedList", name, err)
		}
	}
}

func TestCheckReasonAndUVCI(t *testing.T) {
	for reason, ok := range map[string]bool{"lost phone": true, "": false, "  ": false, "a\x01b": false, strings.Repeat("é", revocation.MaxReason): true, strings.Repeat("é", revocation.MaxReason+1): false} {
		if err := revocation.CheckReason(reason); (err == nil) != ok {
			t.Errorf("CheckReason(%q) = %v", reason, err)
		}
	}
	if err := revocation.CheckUVCI("not a uvci"); err == nil {
		t.Error("CheckUVCI accepted garbage")
	}
}

func FuzzParse(f *testing.F) {
	b, _ := os.ReadFile("testdata/list.json")
	f.Add(b)
	f.Add([]byte(`{"format":"` + revocation.Format + `","partitions":[]}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		set, err := revocation.Parse(data)
		if err != nil {
			if !errors.Is(err, revocation.ErrMalformedList) {
				t.Fatalf("error not wrapping ErrMalformedList: %v", err)
			}
			return
		}
		set.Revoked(context.Background(), "URN:UVCI:01:VN:AAAA#B")
	})
}
