package passportpage

import (
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/stage/lookup"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

func TestLayout(t *testing.T) {
	pg := lookup.Page{HC1: "HC1:X", FamilyICAO: "NGUYEN", GivenICAO: "THI<LAN", Country: "VN", Issuer: "Ministry of Health of Viet Nam",
		ExpiresAt: time.Date(2027, 12, 4, 20, 0, 0, 0, time.UTC),
		Fields: vaxpass.Fields{FullName: "Nguyễn Thị Lan", DateOfBirth: "1984-04-15", Nationality: "VN", DoseNumber: 2, TotalDoses: 2,
			DateOfVaccination: "2021-09-02", Vaccine: "SARS-CoV-2 mRNA vaccine", CertificateID: "URN:UVCI:01:VN:X#Y"}}
	p := Layout(pg)
	if len(p.Rows) != 14 || p.HC1 != "HC1:X" {
		t.Fatalf("%d rows", len(p.Rows))
	}
	want := map[string][2]string{
		"Name, ICAO 9303 transliteration": {"NGUYEN<<THI<LAN", ""},
		"Date of birth":                   {"15/04/1984", ""},
		"Date of vaccination":             {"02/09/2021", ""},
		"Dose number":                     {"2/2", ""},
		"Vaccine / prophylaxis":           {"SARS-CoV-2 mRNA vaccine", "Vắc xin mRNA phòng SARS-CoV-2"},
		"Country of vaccination":          {"VN", "Việt Nam"},
		"Certificate issuer":              {"Ministry of Health of Viet Nam", "Bộ Y tế"},
	}
	for _, r := range p.Rows {
		if w, ok := want[r.LabelEN]; ok && (r.Value != w[0] || r.ValueVI != w[1]) {
			t.Errorf("%s: %q / %q, want %q / %q", r.LabelEN, r.Value, r.ValueVI, w[0], w[1])
		}
	}
	// Vietnam's day: 20:00 UTC on 4 December is 5 December in Hanoi.
	if p.Footer != "Có hiệu lực đến / Valid until 05/12/2027" {
		t.Errorf("footer %q", p.Footer)
	}
	if DateVI("1984") != "1984" || DateVI("1984-04") != "04/1984" {
		t.Error("partial dates")
	}
}
