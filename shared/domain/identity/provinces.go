package identity

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"strings"
)

// provincesJSON is a verbatim copy of /work/shared/vn/provinces.json (the project's
// reference list of the 63 province-of-birth-registration codes of Circular 07/2016/TT-BCA
// Appendix I, with its sources). Keep the two in step.
//
//go:embed provinces.json
var provincesJSON []byte

// provinceNames maps the 63 3-digit codes to the province's Vietnamese name;
// knownProvince is the same set indexed by the code's value, for the hot path.
var (
	provinceNames = mustLoadProvinces(provincesJSON)
	knownProvince = func() (known [1000]bool) {
		for code := range provinceNames {
			known[int(code[0]-'0')*100+int(code[1]-'0')*10+int(code[2]-'0')] = true
		}
		return known
	}()
)

func mustLoadProvinces(data []byte) map[string]string {
	var doc struct {
		Provinces []struct {
			Code   string `json:"code"`
			NameVi string `json:"name_vi"`
		} `json:"provinces"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		panic(fmt.Sprintf("identity: embedded provinces.json: %v", err))
	}
	m := make(map[string]string, len(doc.Provinces))
	for _, p := range doc.Provinces {
		if len(p.Code) != 3 || strings.Trim(p.Code, "0123456789") != "" || p.NameVi == "" {
			panic(fmt.Sprintf("identity: embedded provinces.json: bad entry %+v", p))
		}
		m[p.Code] = p.NameVi
	}
	return m
}

// ProvinceCount returns the number of known province codes (63).
func ProvinceCount() int { return len(provinceNames) }
