package vnname

import (
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

func TestSplit(t *testing.T) {
	tests := []struct {
		in, family, given string
	}{
		{"Nguyễn Văn An", "Nguyễn", "Văn An"},
		{"  Trần   Thị  Bích Ngọc ", "Trần", "Thị Bích Ngọc"},
		{"Lê", "Lê", ""},
		{"", "", ""},
		{"   ", "", ""},
		{norm.NFD.String("Đặng Thuỳ\tTrâm"), "Đặng", "Thuỳ Trâm"},
		{"Nguyen\u00a0Van An", "Nguyen", "Van An"},
	}
	for _, tt := range tests {
		family, given := Split(tt.in)
		if family != tt.family || given != tt.given {
			t.Errorf("Split(%q) = %q, %q; want %q, %q", tt.in, family, given, tt.family, tt.given)
		}
		if !norm.NFC.IsNormalString(family) || !norm.NFC.IsNormalString(given) {
			t.Errorf("Split(%q) is not NFC", tt.in)
		}
	}
}

func TestNormalize(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Nguyễn Văn An", "Nguyễn Văn An"},
		{norm.NFD.String("Nguyễn Văn An"), "Nguyễn Văn An"},
		{" Nguyễn  Văn\n An ", "Nguyễn Văn An"},
		{"NGUYEN VAN AN", "NGUYEN VAN AN"},
		{"", ""},
		{"\u3000Lê\u2003Lợi", "Lê Lợi"},
	}
	for _, tt := range tests {
		if got := Normalize(tt.in); got != tt.want {
			t.Errorf("Normalize(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestKey(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Nguyễn Văn An", "nguyen van an"},
		{norm.NFD.String("Nguyễn Văn An"), "nguyen van an"},
		{"NGUYỄN  VĂN   AN", "nguyen van an"},
		{"nguyen van an", "nguyen van an"},
		{" Nguyen Van An\t", "nguyen van an"},
		{"Đặng Thị Hồng", "dang thi hong"},
		{"Dang Thi Hong", "dang thi hong"},
		{"đỗ ĐỨC", "do duc"},
		{"Phạm Thị Ơn Ưng", "pham thi on ung"},
		{"Ngô Bảo Châu", "ngo bao chau"},
		{"Lưu Ý Ỷ Ỹ Ỵ", "luu y y y y"},
		{"Ｎｇｕｙｅｎ", "nguyen"}, // full-width letters
		{"a\u00a8b", "a b"},  // a compatibility form holding a space
		{"", ""},
		{"   ", ""},
	}
	for _, tt := range tests {
		if got := Key(tt.in); got != tt.want {
			t.Errorf("Key(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if got := string(AppendKey([]byte("x"), tt.in)); got != "x"+tt.want {
			t.Errorf("AppendKey(x, %q) = %q, want %q", tt.in, got, "x"+tt.want)
		}
	}
}

func TestKeyAllocations(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() { _ = Key("nguyen van an") }); n != 0 {
		t.Errorf("Key of a key allocates %v times, want 0", n)
	}
	buf := make([]byte, 0, 64)
	if n := testing.AllocsPerRun(100, func() { buf = AppendKey(buf[:0], "Nguyễn Văn An") }); n != 0 {
		t.Errorf("AppendKey into a reused buffer allocates %v times, want 0", n)
	}
}

func TestICAO(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Nguyễn", "NGUYEN"},
		{"Văn An", "VAN<AN"},
		{"Đặng Thị Hồng", "DANG<THI<HONG"},
		{"đinh", "DINH"},
		{"Ðorđe", "DORDE"},
		{"Phạm Thị Ơn Ưng", "PHAM<THI<ON<UNG"},
		{"Lưu Ý Ỷ Ỹ Ỵ", "LUU<Y<Y<Y<Y"},
		{"d'Arsøns - van Halen", "DARSOENS<VAN<HALEN"},
		{"Müller-Lüdenscheidt", "MUELLER<LUEDENSCHEIDT"},
		{"Gößmann", "GOESSMANN"},
		{"Åsa Ærø", "AASA<AEROE"},
		{"Þór", "THOR"},
		{"Œuvre", "OEUVRE"},
		{"Ĳssel", "IJSSEL"},
		{"Łukasz Świątek", "LUKASZ<SWIATEK"},
		{"  Smith,  John  ", "SMITH<JOHN"},
		{"John 3rd", "JOHN<RD"},
		{"A--B,,C", "A<B<C"},
		{"-Nguyễn-", "NGUYEN"},
		{"VAN<AN", "VAN<AN"},
		{"Ｎｇｕｙｅｎ", "NGUYEN"},
		{"1234", ""},
		{"", ""},
		{"李", ""},
		{strings.Repeat("Nguyễn ", 20), strings.Repeat("NGUYEN<", 12)[:80]},
		{strings.Repeat("Nguyễn ", 11) + "Ab Cd", strings.Repeat("NGUYEN<", 11) + "AB"}, // no trailing filler after the cut
	}
	for _, tt := range tests {
		for _, form := range []norm.Form{norm.NFC, norm.NFD, norm.NFKC, norm.NFKD} {
			in := form.String(tt.in)
			if got := ICAO(in); got != tt.want {
				t.Errorf("ICAO(%+q) = %q, want %q", in, got, tt.want)
			}
		}
	}
}

// checkICAO asserts the output alphabet and shape of an ICAO transliteration.
func checkICAO(t *testing.T, in, got string) {
	t.Helper()
	if len(got) > MaxICAO {
		t.Fatalf("ICAO(%q) is %d characters long", in, len(got))
	}
	for i := 0; i < len(got); i++ {
		if c := got[i]; (c < 'A' || c > 'Z') && c != '<' {
			t.Fatalf("ICAO(%q) = %q holds %q", in, got, c)
		}
	}
	if strings.HasPrefix(got, "<") || strings.HasSuffix(got, "<") || strings.Contains(got, "<<") {
		t.Fatalf("ICAO(%q) = %q has a leading, trailing or doubled filler", in, got)
	}
}

var fuzzSeeds = []string{
	"Nguyễn Văn An", "Đặng Thị Hồng", "d'Arsøns - van Halen", "Gößmann", "  NGUYỄN  văn An ",
	"Ｎｇｕｙｅｎ", "a\u00a8b", "VAN<AN", "Lưu Ý Ỷ Ỹ Ỵ", "\u0301x", "ǅ",
}

func FuzzICAO(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			return
		}
		got := ICAO(s)
		checkICAO(t, s, got)
		if again := ICAO(got); again != got {
			t.Fatalf("ICAO not idempotent: ICAO(%q) = %q, ICAO(that) = %q", s, got, again)
		}
		for _, form := range []norm.Form{norm.NFC, norm.NFD, norm.NFKC, norm.NFKD} {
			if other := ICAO(form.String(s)); other != got {
				t.Fatalf("ICAO depends on the normal form: %q -> %q, %+q -> %q", s, got, form.String(s), other)
			}
		}
	})
}

func FuzzKey(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			return
		}
		k := Key(s)
		if strings.HasPrefix(k, " ") || strings.HasSuffix(k, " ") || strings.Contains(k, "  ") {
			t.Fatalf("Key(%q) = %q has stray spaces", s, k)
		}
		if again := Key(k); again != k {
			t.Fatalf("Key not idempotent: Key(%q) = %q, Key(that) = %q", s, k, again)
		}
		if u := Key(strings.ToUpper(s)); isASCII(s) && u != k {
			t.Fatalf("Key depends on case: %q -> %q, upper -> %q", s, k, u)
		}
		for _, form := range []norm.Form{norm.NFC, norm.NFD} {
			if other := Key(form.String(s)); other != k {
				t.Fatalf("Key depends on the normal form: %q -> %q, %+q -> %q", s, k, form.String(s), other)
			}
		}
		if got := string(AppendKey(nil, s)); got != k {
			t.Fatalf("AppendKey(%q) = %q, Key = %q", s, got, k)
		}
		n := Normalize(s)
		if !norm.NFC.IsNormalString(n) || Normalize(n) != n {
			t.Fatalf("Normalize(%q) = %q is not a fixed point in NFC", s, n)
		}
	})
}

func BenchmarkKey(b *testing.B) {
	for _, in := range []string{"nguyen van an", "NGUYEN VAN AN", "Nguyễn Văn An", norm.NFD.String("Nguyễn Văn An")} {
		b.Run(in, func(b *testing.B) {
			buf := make([]byte, 0, 64)
			b.ReportAllocs()
			for b.Loop() {
				buf = AppendKey(buf[:0], in)
			}
		})
	}
}

func BenchmarkICAO(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = ICAO("Nguyễn Văn An")
	}
}
