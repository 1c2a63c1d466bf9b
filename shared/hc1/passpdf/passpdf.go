// Package passpdf draws a vaccine passport as a one-page A4 PDF: the certificate's fields
// with their Vietnamese labels beside the English ones, and its QR code drawn as vector
// squares (sharp at any printer resolution, decodable from a 150 dpi scan).
package passpdf

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"

	"codeberg.org/go-pdf/fpdf"

	"github.com/vaxpass/vaxpass/shared/hc1/qr"
)

// DejaVu Sans covers every Vietnamese letter (the PDF core fonts do not); see fonts/LICENSE.
var (
	//go:embed fonts/DejaVuSans.ttf
	fontRegular []byte
	//go:embed fonts/DejaVuSans-Bold.ttf
	fontBold []byte
)

// Row is one field of the passport: labels in Vietnamese and English, the value as the
// certificate carries it (English) and, where it differs, its Vietnamese rendering.
type Row struct {
	LabelVI, LabelEN string
	Value, ValueVI   string
}

// Passport is what the page shows.
type Passport struct {
	// Title lines, Vietnamese then English.
	TitleVI, TitleEN string
	Rows             []Row
	// HC1 is the QR code's content.
	HC1 string
	// Footer is a line under the QR (for example the validity), may be empty.
	Footer string
}

// ErrInput reports a passport that cannot be drawn (no HC1, a value too long).
var ErrInput = errors.New("passpdf: invalid input")

// maxValue bounds each value so that a row fits the page; certificate values are at
// most 80 characters (DCC schema), labels are ours.
const maxValue = 200

// Render draws p on one A4 page.
func Render(p Passport) ([]byte, error) {
	if p.HC1 == "" {
		return nil, fmt.Errorf("%w: no HC1", ErrInput)
	}
	for _, r := range p.Rows {
		if len(r.Value) > maxValue || len(r.ValueVI) > maxValue {
			return nil, fmt.Errorf("%w: value of %q too long", ErrInput, r.LabelEN)
		}
	}
	sym, err := qr.Encode(p.HC1, qr.LevelQ)
	if err != nil {
		return nil, fmt.Errorf("passpdf: QR: %w", err)
	}

	pdf := fpdf.New("P", "mm", "A4", "")
	pdf.SetCreator("vaxpass", true)
	pdf.SetTitle(p.TitleEN, true)
	pdf.SetMargins(15, 15, 15)
	pdf.SetAutoPageBreak(false, 10)
	pdf.AddUTF8FontFromBytes("dejavu", "", fontRegular)
	pdf.AddUTF8FontFromBytes("dejavu", "B", fontBold)
	pdf.AddPage()

	pdf.SetFont("dejavu", "B", 16)
	pdf.CellFormat(0, 8, p.TitleVI, "", 1, "C", false, 0, "")
	pdf.SetFont("dejavu", "", 12)
	pdf.CellFormat(0, 6, p.TitleEN, "", 1, "C", false, 0, "")

	// The QR: 4-module quiet zone, 70 mm wide: at 150 dpi a module of a version-20
	// symbol is ~4 pixels, plenty for a decoder.
	const qrSide = 70.0
	n := sym.Size + 2*qr.QuietZone
	m := qrSide / float64(n)
	x0, y0 := (210-qrSide)/2, 32.0
	pdf.SetFillColor(0, 0, 0)
	for y := range sym.Size {
		for x := 0; x < sym.Size; {
			if !sym.Dark(x, y) {
				x++
				continue
			}
			run := 1 // a run of dark modules is one rectangle: smaller file, no seams
			for x+run < sym.Size && sym.Dark(x+run, y) {
				run++
			}
			pdf.Rect(x0+float64(x+qr.QuietZone)*m, y0+float64(y+qr.QuietZone)*m, float64(run)*m+0.01, m+0.01, "F")
			x += run
		}
	}

	y := y0 + qrSide + 6
	pdf.SetY(y)
	for _, r := range p.Rows {
		pdf.SetX(15)
		pdf.SetFont("dejavu", "B", 10)
		pdf.CellFormat(70, 5, r.LabelVI, "", 0, "L", false, 0, "")
		pdf.SetFont("dejavu", "", 10)
		pdf.CellFormat(0, 5, r.Value, "", 1, "L", false, 0, "")
		pdf.SetX(15)
		pdf.SetFont("dejavu", "", 8)
		pdf.SetTextColor(90, 90, 90)
		pdf.CellFormat(70, 4, r.LabelEN, "", 0, "L", false, 0, "")
		if r.ValueVI != "" && r.ValueVI != r.Value {
			pdf.CellFormat(0, 4, r.ValueVI, "", 1, "L", false, 0, "")
		} else {
			pdf.Ln(4)
		}
		pdf.SetTextColor(0, 0, 0)
		pdf.Ln(1.5)
	}
	if p.Footer != "" {
		pdf.SetY(282)
		pdf.SetFont("dejavu", "", 8)
		pdf.CellFormat(0, 4, p.Footer, "", 1, "C", false, 0, "")
	}
	var buf bytes.Buffer
	if err := pdf.Output(&buf); err != nil {
		return nil, fmt.Errorf("passpdf: %w", err)
	}
	return buf.Bytes(), nil
}
