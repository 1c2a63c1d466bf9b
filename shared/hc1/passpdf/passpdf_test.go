package passpdf_test

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/vaxpass/vaxpass/shared/hc1/passpdf"
	"github.com/vaxpass/vaxpass/shared/hc1/qrscan"
	"github.com/vaxpass/vaxpass/shared/testkit/pdftool"
)

// hc1Like is a string of an HC1's size and alphabet (base45 after the prefix).
func hc1Like(n int) string {
	const b45 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
	r := rand.New(rand.NewPCG(1, 2))
	var sb strings.Builder
	sb.WriteString("HC1:")
	for range n {
		sb.WriteByte(b45[r.IntN(len(b45))])
	}
	return sb.String()
}

func sample(hc1 string) passpdf.Passport {
	return passpdf.Passport{
		TitleVI: "Hộ chiếu vắc xin COVID-19", TitleEN: "EU Digital COVID Certificate: vaccination",
		HC1: hc1, Footer: "Có hiệu lực đến / Valid until 05/12/2027",
		Rows: []passpdf.Row{
			{LabelVI: "Họ và tên", LabelEN: "Name", Value: "Nguyễn Thị Ánh Tuyết"},
			{LabelVI: "Tên theo hộ chiếu (ICAO)", LabelEN: "Name (ICAO 9303)", Value: "NGUYEN<THI<ANH<TUYET"},
			{LabelVI: "Loại vắc xin", LabelEN: "Vaccine", Value: "SARS-CoV-2 mRNA vaccine", ValueVI: "Vắc xin mRNA phòng SARS-CoV-2"},
			{LabelVI: "Tên vắc xin", LabelEN: "Vaccine product", Value: "Comirnaty"},
			{LabelVI: "Mã chứng nhận", LabelEN: "Certificate ID", Value: "URN:UVCI:01:VN:8F3K2M9Q7T1X#K"},
		},
	}
}

// The page a citizen prints: one A4 page whose QR, rendered at 150 dpi by a real PDF
// renderer, decodes to the HC1, and whose text holds the values in Vietnamese.
func TestRenderReadsBack(t *testing.T) {
	for _, n := range []int{300, 700} { // a typical HC1 and a long one
		hc1 := hc1Like(n)
		pdf, err := passpdf.Render(sample(hc1))
		if err != nil {
			t.Fatal(err)
		}
		if info := pdftool.Info(t, pdf); !strings.Contains(info, "Pages:           1") || !strings.Contains(info, "(A4)") {
			t.Errorf("not one A4 page:\n%s", info)
		}
		pages := pdftool.Pages(t, pdf, 150)
		if len(pages) != 1 {
			t.Fatalf("%d pages", len(pages))
		}
		got, err := qrscan.Decode(pages[0])
		if err != nil || got != hc1 {
			t.Fatalf("QR at 150 dpi: %v (got %d chars of %d)", err, len(got), len(hc1))
		}
		text := pdftool.Text(t, pdf)
		for _, want := range []string{"Nguyễn Thị Ánh Tuyết", "NGUYEN<THI<ANH<TUYET", "Comirnaty", "URN:UVCI:01:VN:8F3K2M9Q7T1X#K",
			"Vắc xin mRNA phòng SARS-CoV-2", "Họ và tên", "Certificate ID", "Valid until 05/12/2027"} {
			if !strings.Contains(text, want) {
				t.Errorf("text lacks %q:\n%s", want, text)
			}
		}
	}
}

func TestRenderRefuses(t *testing.T) {
	if _, err := passpdf.Render(passpdf.Passport{}); !errors.Is(err, passpdf.ErrInput) {
		t.Errorf("no HC1: %v", err)
	}
	p := sample(hc1Like(100))
	p.Rows[0].Value = strings.Repeat("x", 201)
	if _, err := passpdf.Render(p); !errors.Is(err, passpdf.ErrInput) {
		t.Errorf("long value: %v", err)
	}
}

func BenchmarkRender(b *testing.B) {
	p := sample(hc1Like(400))
	for b.Loop() {
		if _, err := passpdf.Render(p); err != nil {
			b.Fatal(err)
		}
	}
}
