// Package vaccine is the catalogue of the 8 COVID-19 vaccines licensed in Viet Nam, with
// their EU DCC value-set coding, and the rules that decide whether a person's doses complete
// a primary course and how the certified dose is numbered (dn/sd).
//
// Coding source: eu-dcc-valuesets 2.12.0 (commit 60ea3d8) as summarised in
// dcc/vaccines-vn.json; vp is each vaccine's `vp_recommended_now` (design.md, "Decisions
// already taken"). A test cross-checks every code and display against the official
// value-set files in testdata/valuesets.
package vaccine

import (
	"errors"
	"fmt"
)

// Code is our own vaccine code, as sent in dose records (contract.md, field `vaccine`).
type Code string

// The 8 codes of the contract.
const (
	AstraZeneca Code = "ASTRAZENECA"
	SputnikV    Code = "SPUTNIK_V"
	VeroCell    Code = "VERO_CELL"
	Pfizer      Code = "PFIZER"
	Moderna     Code = "MODERNA"
	Janssen     Code = "JANSSEN"
	HayatVax    Code = "HAYAT_VAX"
	Abdala      Code = "ABDALA"
)

// The disease targeted (DCC `tg`) is the same for every vaccine here: COVID-19, SNOMED CT
// 840539006 (eu-dcc-valuesets disease-agent-targeted.json).
const (
	DiseaseTargeted        = "840539006"
	DiseaseTargetedDisplay = "COVID-19"
)

// ErrUnknownVaccine is returned for a code that is not one of the 8 of the contract.
var ErrUnknownVaccine = errors.New("unknown vaccine code")

// Vaccine is one catalogue entry: our code, the EU value-set codes that go into the DCC,
// the English displays of those codes (shown on the lookup page's 11 fields) and the number
// of doses its primary course needs.
type Vaccine struct {
	Code Code
	// Name is the name Vietnamese users know the vaccine by.
	Name string

	// Prophylaxis is the DCC `vp` code (value set sct-vaccines-covid-19).
	Prophylaxis        string
	ProphylaxisDisplay string
	// Product is the DCC `mp` code (value set vaccines-covid-19-names).
	Product        string
	ProductDisplay string
	// Manufacturer is the DCC `ma` code: the marketing-authorisation holder, or the
	// manufacturer where there is none (value set vaccines-covid-19-auth-holders).
	Manufacturer        string
	ManufacturerDisplay string

	// PrimaryCourse is the number of doses that complete the primary course.
	PrimaryCourse int
}

// catalogue is in the contract's order. Course lengths: domain-vn.md "The 8 licensed
// vaccines" (Janssen 1, Abdala 3, others 2).
var catalogue = [...]Vaccine{
	{
		Code: AstraZeneca, Name: "AstraZeneca",
		Prophylaxis: "29061000087103", ProphylaxisDisplay: "COVID-19 non-replicating viral vector vaccine",
		Product: "EU/1/21/1529", ProductDisplay: "Vaxzevria",
		Manufacturer: "ORG-100001699", ManufacturerDisplay: "AstraZeneca AB",
		PrimaryCourse: 2,
	},
	{
		Code: SputnikV, Name: "Sputnik V",
		Prophylaxis: "29061000087103", ProphylaxisDisplay: "COVID-19 non-replicating viral vector vaccine",
		Product: "Sputnik-V", ProductDisplay: "Sputnik-V",
		Manufacturer: "Gamaleya-Research-Institute", ManufacturerDisplay: "Gamaleya Research Institute",
		PrimaryCourse: 2,
	},
	{
		// Viet Nam's "Vero Cell" is Sinopharm's Beijing product BBIBP-CorV. The EU entry
		// Inactivated-SARS-CoV-2-Vero-Cell is a different (Wuhan, deprecated) product
		// (dcc/notes.md §1.12 "Naming trap").
		Code: VeroCell, Name: "Vero Cell (Sinopharm)",
		Prophylaxis: "1157024006", ProphylaxisDisplay: "Inactivated whole SARS-CoV-2 antigen vaccine",
		Product: "BBIBP-CorV", ProductDisplay: "BBIBP-CorV",
		Manufacturer: "ORG-100020693", ManufacturerDisplay: "China Sinopharm International Corp. - Beijing location",
		PrimaryCourse: 2,
	},
	{
		Code: Pfizer, Name: "Pfizer-BioNTech",
		Prophylaxis: "1119349007", ProphylaxisDisplay: "SARS-CoV-2 mRNA vaccine",
		Product: "EU/1/20/1528", ProductDisplay: "Comirnaty",
		Manufacturer: "ORG-100030215", ManufacturerDisplay: "Biontech Manufacturing GmbH",
		PrimaryCourse: 2,
	},
	{
		Code: Moderna, Name: "Moderna",
		Prophylaxis: "1119349007", ProphylaxisDisplay: "SARS-CoV-2 mRNA vaccine",
		Product: "EU/1/20/1507", ProductDisplay: "Spikevax",
		Manufacturer: "ORG-100031184", ManufacturerDisplay: "Moderna Biotech Spain S.L.",
		PrimaryCourse: 2,
	},
	{
		Code: Janssen, Name: "Janssen",
		Prophylaxis: "29061000087103", ProphylaxisDisplay: "COVID-19 non-replicating viral vector vaccine",
		Product: "EU/1/20/1525", ProductDisplay: "Jcovden",
		Manufacturer: "ORG-100001417", ManufacturerDisplay: "Janssen-Cilag International",
		PrimaryCourse: 1,
	},
	{
		// The UAE-made Sinopharm vaccine has its own product code; never BBIBP-CorV.
		Code: HayatVax, Name: "Hayat-Vax",
		Prophylaxis: "1157024006", ProphylaxisDisplay: "Inactivated whole SARS-CoV-2 antigen vaccine",
		Product: "Hayat-Vax", ProductDisplay: "Hayat-Vax",
		Manufacturer: "ORG-100023050", ManufacturerDisplay: "Gulf Pharmaceutical Industries",
		PrimaryCourse: 2,
	},
	{
		// Annex A lists only the generic vp for Abdala; its MAH code is the literal "CIGB".
		Code: Abdala, Name: "Abdala",
		Prophylaxis: "28531000087107", ProphylaxisDisplay: "COVID-19 vaccine",
		Product: "Abdala", ProductDisplay: "Abdala",
		Manufacturer: "CIGB", ManufacturerDisplay: "Center for Genetic Engineering and Biotechnology",
		PrimaryCourse: 3,
	},
}

// Lookup returns the catalogue entry for an exact code of the contract (no case folding:
// the contract fixes the spelling). An unknown code gives an error wrapping ErrUnknownVaccine.
func Lookup(code string) (Vaccine, error) {
	for _, v := range catalogue {
		if string(v.Code) == code {
			return v, nil
		}
	}
	return Vaccine{}, fmt.Errorf("vaccine %q: %w", code, ErrUnknownVaccine)
}

// All returns the 8 catalogue entries in the contract's order. The slice is a copy.
func All() []Vaccine {
	out := make([]Vaccine, len(catalogue))
	copy(out, catalogue[:])
	return out
}
