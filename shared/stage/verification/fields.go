package verification

import (
	"encoding/json"
	"strings"

	"github.com/vaxpass/vaxpass/shared/domain/dcc"
)

// Fields are the certificate's displayed fields in English, for a vaccination certificate
// (the 11 fields of Decision 5772/QĐ-BYT less nationality, which the DCC does not carry).
type Fields struct {
	FullName          string `json:"full_name"`
	DateOfBirth       string `json:"date_of_birth"`
	Disease           string `json:"disease,omitempty"`
	DateOfVaccination string `json:"date_of_vaccination,omitempty"`
	DoseNumber        int    `json:"dose_number,omitempty"`
	TotalDoses        int    `json:"total_doses,omitempty"`
	Vaccine           string `json:"vaccine,omitempty"`
	VaccineProduct    string `json:"vaccine_product,omitempty"`
	Manufacturer      string `json:"manufacturer,omitempty"`
	Country           string `json:"country,omitempty"`
	Issuer            string `json:"issuer,omitempty"`
	CertificateID     string `json:"certificate_id,omitempty"`
}

// fieldsOf renders the display fields of a DCC; nil when it cannot be read.
func fieldsOf(doc []byte) *Fields {
	var c dcc.Certificate
	if err := json.Unmarshal(doc, &c); err != nil {
		return nil
	}
	f := &Fields{
		FullName:    strings.TrimSpace(c.Nam.FN + " " + c.Nam.GN),
		DateOfBirth: c.DOB,
	}
	if len(c.V) == 1 {
		v := c.V[0]
		f.Disease = display(dcc.DiseaseAgentTargeted, v.TG)
		f.DateOfVaccination = v.DT
		f.DoseNumber, f.TotalDoses = v.DN, v.SD
		f.Vaccine = display(dcc.VaccineProphylaxis, v.VP)
		f.VaccineProduct = display(dcc.VaccineMedicinalProduct, v.MP)
		f.Manufacturer = display(dcc.VaccineMAHManufacturer, v.MA)
		f.Country, f.Issuer, f.CertificateID = v.CO, v.IS, v.CI
	}
	return f
}

// display is the value set's English display of a code, or the code itself.
func display(vs dcc.ValueSet, code string) string {
	if d, ok := dcc.Display(vs, code); ok {
		return d
	}
	return code
}
