package vaccine

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// valueSet is the shape of an eu-dcc-valuesets file.
type valueSet struct {
	ValueSetID     string `json:"valueSetId"`
	ValueSetValues map[string]struct {
		Display string `json:"display"`
		Active  bool   `json:"active"`
	} `json:"valueSetValues"`
}

func loadJSON(t *testing.T, path string, into any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, into); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func loadValueSet(t *testing.T, name string) valueSet {
	var vs valueSet
	loadJSON(t, filepath.Join("testdata", "valuesets", name), &vs)
	if len(vs.ValueSetValues) == 0 {
		t.Fatalf("%s: empty value set", name)
	}
	return vs
}

// TestCatalogueAgainstOfficialValueSets checks every code and display of the catalogue
// against the official eu-dcc-valuesets files (testdata/valuesets, Apache-2.0, commit
// 60ea3d8) and against the project's coding table dcc/vaccines-vn.json.
func TestCatalogueAgainstOfficialValueSets(t *testing.T) {
	tg := loadValueSet(t, "disease-agent-targeted.json")
	vp := loadValueSet(t, "vaccine-prophylaxis.json")
	mp := loadValueSet(t, "vaccine-medicinal-product.json")
	ma := loadValueSet(t, "vaccine-mah-manf.json")

	var annexA struct {
		ValueSetValues map[string]struct {
			VaccineCode         string   `json:"vaccine-code"`
			VaccineManufacturer string   `json:"vaccine-manufacturer"`
			SCTCodes            []string `json:"sct-codes"`
		} `json:"valueSetValues"`
	}
	loadJSON(t, filepath.Join("testdata", "valuesets", "vaccine-encoding-instructions.json"), &annexA)

	var vn struct {
		Vaccines []struct {
			EUDisplay        string `json:"eu_display"`
			MP               string `json:"mp"`
			MA               string `json:"ma"`
			MADisplay        string `json:"ma_display"`
			VPRecommendedNow string `json:"vp_recommended_now"`
		} `json:"vaccines"`
	}
	loadJSON(t, filepath.Join("testdata", "vaccines-vn.json"), &vn)

	if got := tg.ValueSetValues[DiseaseTargeted]; got.Display != DiseaseTargetedDisplay || !got.Active {
		t.Errorf("tg %s: value set has %+v, want active %q", DiseaseTargeted, got, DiseaseTargetedDisplay)
	}

	all := All()
	if len(all) != len(vn.Vaccines) {
		t.Fatalf("catalogue has %d vaccines, vaccines-vn.json %d", len(all), len(vn.Vaccines))
	}
	for _, v := range all {
		t.Run(string(v.Code), func(t *testing.T) {
			check := func(field string, vs valueSet, code, display string) {
				t.Helper()
				e, ok := vs.ValueSetValues[code]
				switch {
				case !ok:
					t.Errorf("%s %q not in value set %s", field, code, vs.ValueSetID)
				case !e.Active:
					t.Errorf("%s %q is inactive in %s", field, code, vs.ValueSetID)
				case e.Display != display:
					t.Errorf("%s %q display = %q, value set says %q", field, code, display, e.Display)
				}
			}
			check("vp", vp, v.Prophylaxis, v.ProphylaxisDisplay)
			check("mp", mp, v.Product, v.ProductDisplay)
			check("ma", ma, v.Manufacturer, v.ManufacturerDisplay)

			// Annex A: the product's own encoding instruction pairs mp with ma and lists the
			// acceptable vp codes.
			found := false
			for name, instr := range annexA.ValueSetValues {
				if instr.VaccineCode != v.Product {
					continue
				}
				found = true
				if instr.VaccineManufacturer != v.Manufacturer {
					t.Errorf("Annex A %q pairs mp %s with ma %s, catalogue has %s", name, v.Product, instr.VaccineManufacturer, v.Manufacturer)
				}
				if !slices.Contains(instr.SCTCodes, v.Prophylaxis) {
					t.Errorf("Annex A %q allows vp %v, catalogue has %s", name, instr.SCTCodes, v.Prophylaxis)
				}
			}
			if !found {
				t.Errorf("no Annex A encoding instruction for mp %s", v.Product)
			}

			// The design decision: vp_recommended_now, mp and ma as in vaccines-vn.json.
			matched := 0
			for _, w := range vn.Vaccines {
				if w.EUDisplay != v.ProductDisplay {
					continue
				}
				matched++
				if w.MP != v.Product || w.MA != v.Manufacturer || w.VPRecommendedNow != v.Prophylaxis || w.MADisplay != v.ManufacturerDisplay {
					t.Errorf("vaccines-vn.json has mp=%s ma=%s (%s) vp=%s; catalogue mp=%s ma=%s (%s) vp=%s",
						w.MP, w.MA, w.MADisplay, w.VPRecommendedNow, v.Product, v.Manufacturer, v.ManufacturerDisplay, v.Prophylaxis)
				}
			}
			if matched != 1 {
				t.Errorf("%d entries of vaccines-vn.json have eu_display %q, want 1", matched, v.ProductDisplay)
			}
		})
	}
}

func TestVeroCellIsBBIBPCorV(t *testing.T) {
	// dcc/notes.md §1.12 "Naming trap": Inactivated-SARS-CoV-2-Vero-Cell is the Wuhan product.
	v, err := Lookup("VERO_CELL")
	if err != nil {
		t.Fatal(err)
	}
	if v.Product != "BBIBP-CorV" || v.Manufacturer != "ORG-100020693" {
		t.Errorf("VERO_CELL coded %s / %s, want BBIBP-CorV / ORG-100020693", v.Product, v.Manufacturer)
	}
	h, _ := Lookup("HAYAT_VAX")
	if h.Product == v.Product {
		t.Errorf("HAYAT_VAX shares product code %s with VERO_CELL", h.Product)
	}
}

func TestLookup(t *testing.T) {
	// The contract's list (contract.md, field `vaccine`) and course lengths (domain-vn.md).
	want := []struct {
		code   string
		course int
	}{
		{"ASTRAZENECA", 2}, {"SPUTNIK_V", 2}, {"VERO_CELL", 2}, {"PFIZER", 2},
		{"MODERNA", 2}, {"JANSSEN", 1}, {"HAYAT_VAX", 2}, {"ABDALA", 3},
	}
	all := All()
	if len(all) != len(want) {
		t.Fatalf("All() has %d entries, want %d", len(all), len(want))
	}
	for i, w := range want {
		v, err := Lookup(w.code)
		if err != nil {
			t.Errorf("Lookup(%q): %v", w.code, err)
			continue
		}
		if string(v.Code) != w.code || v.PrimaryCourse != w.course {
			t.Errorf("Lookup(%q) = %s course %d, want course %d", w.code, v.Code, v.PrimaryCourse, w.course)
		}
		if all[i].Code != v.Code {
			t.Errorf("All()[%d] = %s, want %s (contract order)", i, all[i].Code, w.code)
		}
		if v.Name == "" {
			t.Errorf("%s has no name", w.code)
		}
	}
	for _, bad := range []string{"", "pfizer", "Pfizer", " PFIZER", "PFIZER ", "SINOVAC", "VERO CELL"} {
		if _, err := Lookup(bad); !errors.Is(err, ErrUnknownVaccine) {
			t.Errorf("Lookup(%q) error = %v, want ErrUnknownVaccine", bad, err)
		}
	}
	all[0].Code = "CHANGED"
	if All()[0].Code != AstraZeneca {
		t.Error("All() exposes the catalogue itself")
	}
}
