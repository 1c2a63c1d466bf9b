package qr

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode/decoder"
	zxenc "github.com/makiuchi-d/gozxing/qrcode/encoder"
)

const alnumSet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"

// randomAlnum returns n random characters of the alphanumeric set.
func randomAlnum(r *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = alnumSet[r.IntN(len(alnumSet))]
	}
	return string(b)
}

var zxLevel = map[Level]decoder.ErrorCorrectionLevel{
	LevelL: decoder.ErrorCorrectionLevel_L, LevelM: decoder.ErrorCorrectionLevel_M,
	LevelQ: decoder.ErrorCorrectionLevel_Q, LevelH: decoder.ErrorCorrectionLevel_H,
}

// zxingEncode encodes text with gozxing's encoder (which writes a single
// alphanumeric segment for such text), optionally forced to a version and mask.
func zxingEncode(t testing.TB, text string, l Level, version, mask int) *zxenc.QRCode {
	t.Helper()
	hints := map[gozxing.EncodeHintType]any{}
	if version > 0 {
		hints[gozxing.EncodeHintType_QR_VERSION] = version
		hints[gozxing.EncodeHintType_QR_MASK_PATTERN] = mask
	}
	code, err := zxenc.Encoder_encode(text, zxLevel[l], hints)
	if err != nil {
		t.Fatalf("gozxing encode: %v", err)
	}
	return code
}

// TestEncodeMatchesGozxing compares every module with an independent encoder
// forced to the same version and mask, and checks the version is the smallest.
func TestEncodeMatchesGozxing(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	texts := []string{"A", "HELLO WORLD", "HC1:" + randomAlnum(r, 556), " LEADING AND TRAILING SPACES "}
	for _, n := range []int{2, 10, 11, 12, 25, 47, 77, 114, 300, 420, 534, 560, 600, 825, 1038, 1100, 1500, 2500} {
		texts = append(texts, randomAlnum(r, n))
	}
	for _, text := range texts {
		for l := LevelL; l <= LevelH; l++ {
			sym, err := Encode(text, l)
			if errors.Is(err, ErrTooLong) {
				continue
			}
			if err != nil {
				t.Fatalf("len %d %v: %v", len(text), l, err)
			}
			if want := zxingEncode(t, text, l, 0, 0).GetVersion().GetVersionNumber(); sym.Version != want {
				t.Errorf("len %d %v: version %d, gozxing picks %d", len(text), l, sym.Version, want)
			}
			m := zxingEncode(t, text, l, sym.Version, sym.Mask).GetMatrix()
			if m.GetWidth() != sym.Size {
				t.Fatalf("len %d %v: size %d, gozxing %d", len(text), l, sym.Size, m.GetWidth())
			}
			diff := 0
			for y := 0; y < sym.Size; y++ {
				for x := 0; x < sym.Size; x++ {
					if sym.Dark(x, y) != (m.Get(x, y) == 1) {
						diff++
					}
				}
			}
			if diff != 0 {
				t.Errorf("len %d %v v%d mask %d: %d modules differ from gozxing", len(text), l, sym.Version, sym.Mask, diff)
			}
		}
	}
}

func TestEncodeSegments(t *testing.T) {
	// Long digit runs would be cheaper as numeric segments; HCERT wants one
	// alphanumeric segment regardless.
	text := "HC1:" + strings.Repeat("0123456789", 40)
	sym, err := Encode(text, LevelQ)
	if err != nil {
		t.Fatal(err)
	}
	if len(sym.Segments) != 1 || sym.Segments[0].Mode != "alphanumeric" || sym.Segments[0].Chars != len(text) {
		t.Fatalf("segments %+v, want one alphanumeric segment of %d", sym.Segments, len(text))
	}
	if sym.Level != LevelQ || sym.Size != 17+4*sym.Version {
		t.Fatalf("level %v size %d version %d", sym.Level, sym.Size, sym.Version)
	}
}

func TestEncodeErrors(t *testing.T) {
	tests := []struct {
		name  string
		text  string
		level Level
		want  error
		msg   string
	}{
		{"empty", "", LevelQ, ErrEmpty, ""},
		{"lower case", "HC1:abc", LevelQ, ErrNotAlphanumeric, "offset 4"},
		{"non-ASCII", "HC1:É", LevelQ, ErrNotAlphanumeric, "byte 0xc3 at offset 4"},
		{"newline", "HC1:A\n", LevelQ, ErrNotAlphanumeric, "offset 5"},
		{"too long at Q", strings.Repeat("A", 2421), LevelQ, ErrTooLong, "2421 characters"},
		{"too long at L", strings.Repeat("A", 4297), LevelL, ErrTooLong, "version 40-L"},
		{"bad level", "A", Level(4), ErrBadLevel, "4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Encode(tt.text, tt.level)
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("err = %v, want %v containing %q", err, tt.want, tt.msg)
			}
		})
	}
	// The capacity limits themselves fit.
	for _, c := range []struct {
		n int
		l Level
	}{{2420, LevelQ}, {4296, LevelL}, {1852, LevelH}} {
		if sym, err := Encode(strings.Repeat("A", c.n), c.l); err != nil || sym.Version != 40 {
			t.Errorf("%d chars at %v: %v", c.n, c.l, err)
		}
	}
}

// TestVersionTables checks the tabulated and computed version data against gozxing's.
func TestVersionTables(t *testing.T) {
	for v := 1; v <= 40; v++ {
		zv, err := decoder.Version_GetVersionForNumber(v)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := rawDataModules(v)/8, zv.GetTotalCodewords(); got != want {
			t.Errorf("v%d total codewords %d, want %d", v, got, want)
		}
		got, want := alignmentPositions(v), zv.GetAlignmentPatternCenters()
		if len(got) != len(want) {
			t.Errorf("v%d alignment %v, want %v", v, got, want)
		} else {
			for i := range got {
				if got[i] != want[i] {
					t.Errorf("v%d alignment %v, want %v", v, got, want)
					break
				}
			}
		}
		for l := LevelL; l <= LevelH; l++ {
			eb := zv.GetECBlocksForLevel(zxLevel[l])
			if int(eccPerBlock[l][v]) != eb.GetECCodewordsPerBlock() || int(eccBlocks[l][v]) != eb.GetNumBlocks() {
				t.Errorf("v%d-%v EC %d×%d, want %d×%d", v, l, eccBlocks[l][v], eccPerBlock[l][v], eb.GetNumBlocks(), eb.GetECCodewordsPerBlock())
			}
		}
	}
}

func TestLevelString(t *testing.T) {
	for l, want := range map[Level]string{LevelL: "L", LevelM: "M", LevelQ: "Q", LevelH: "H", Level(9): "Level(9)"} {
		if got := l.String(); got != want {
			t.Errorf("%d: %q, want %q", int(l), got, want)
		}
	}
}
