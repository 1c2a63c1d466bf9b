// Package registrytest generates deterministic synthetic populations and dose records for
// tests and benchmarks of the matcher and the registries. (The full population generator
// for demos is shared/tool/synth; this one is small, fast and stable across versions so that
// benchmark figures stay comparable.)
package registrytest

import (
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/vaxpass/vaxpass/shared/domain/dose"
	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/domain/vnname"
	"golang.org/x/text/unicode/norm"
)

var (
	families = []string{"Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng",
		"Bùi", "Đỗ", "Hồ", "Ngô", "Dương", "Lý", "Đinh", "Trương", "Lương", "Mai"}
	middles = map[string][]string{
		dose.Male:   {"Văn", "Hữu", "Đức", "Minh", "Quang", "Thanh", "Công", "Xuân", "Ngọc", "Tiến"},
		dose.Female: {"Thị", "Ngọc", "Thu", "Thanh", "Minh", "Kim", "Phương", "Hồng", "Bích", "Diệu"},
	}
	givens = map[string][]string{
		dose.Male: {"An", "Bình", "Cường", "Dũng", "Đạt", "Hải", "Hùng", "Huy", "Khánh", "Long",
			"Nam", "Phúc", "Quân", "Sơn", "Thắng", "Tuấn", "Việt", "Vinh", "Bảo", "Hiếu"},
		dose.Female: {"Anh", "Chi", "Dung", "Hà", "Hạnh", "Hoa", "Hương", "Lan", "Linh", "Mai",
			"Ngân", "Nhung", "Oanh", "Phương", "Quỳnh", "Tâm", "Thảo", "Trang", "Vy", "Yến"},
	}
	provinces = []string{"001", "002", "004", "008", "010", "015", "019", "022", "026", "030", "031",
		"036", "038", "040", "046", "048", "051", "056", "066", "074", "075", "079", "087", "092", "096"}
)

// Population returns n distinct registry people, the same for the same seed. About one in
// ten holds a 9-digit CMND, the rest a CCCD whose digits agree with their gender and dob.
func Population(n int, seed uint64) []match.Person {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	people := make([]match.Person, 0, n)
	seen := make(map[string]bool, n)
	for len(people) < n {
		gender := dose.Male
		if rng.IntN(2) == 1 {
			gender = dose.Female
		}
		year := 1930 + rng.IntN(92)
		dob := fmt.Sprintf("%04d-%02d-%02d", year, 1+rng.IntN(12), 1+rng.IntN(28))
		var id string
		if rng.IntN(10) == 0 {
			id = fmt.Sprintf("%09d", rng.IntN(1e9))
		} else {
			d4 := 2 * (year/100 - 19)
			if gender == dose.Female {
				d4++
			}
			id = fmt.Sprintf("%s%d%02d%06d", provinces[rng.IntN(len(provinces))], d4, year%100, rng.IntN(1e6))
		}
		if seen[id] {
			continue
		}
		seen[id] = true
		name := families[rng.IntN(len(families))] + " " + middles[gender][rng.IntN(10)] + " " + givens[gender][rng.IntN(20)]
		people = append(people, match.Person{IDNumber: id, FullName: name, DOB: dob, Gender: gender, NameKey: vnname.Key(name)})
	}
	return people
}

// Records returns n dose records about people of pop, the same for the same seed, in the
// proportions of the 2022 programme's failure classes: most verify (many after automatic
// correction: names without diacritics or in NFD, upper case, year-only dob, IDs typed with
// spaces or dots), some mismatch, have no ID, a malformed ID or an unknown one.
func Records(pop []match.Person, n int, seed uint64) []dose.Record {
	rng := rand.New(rand.NewPCG(seed, 0xd05e))
	out := make([]dose.Record, n)
	for i := range out {
		p := pop[rng.IntN(len(pop))]
		r := dose.Record{SourceID: fmt.Sprintf("rec-%d", i), IDNumber: p.IDNumber, FullName: p.FullName,
			DOB: p.DOB, Gender: p.Gender, Vaccine: "PFIZER", DoseNumber: 1 + rng.IntN(3), VaccinatedOn: "2021-09-15"}
		switch k := rng.IntN(100); {
		case k < 40: // as registered
		case k < 50:
			r.FullName = vnname.Key(p.FullName) // no diacritics
		case k < 55:
			r.FullName = norm.NFD.String(p.FullName)
		case k < 60:
			r.FullName = strings.ToUpper(p.FullName)
		case k < 65:
			r.DOB = p.DOB[:4]
		case k < 70:
			r.IDNumber = spaced(p.IDNumber)
		case k < 78:
			r.DOB = p.DOB[:8] + "29" // wrong day: MISMATCH
		case k < 82:
			r.FullName = p.FullName + " Anh" // wrong name: MISMATCH
		case k < 88:
			r.IDNumber = "" // NO_ID
		case k < 92:
			r.IDNumber = p.IDNumber[:len(p.IDNumber)-1] // one digit lost: INVALID_ID
		default:
			r.IDNumber = unknownID(p, rng) // NOT_FOUND (or INVALID_ID for a CMND turned CCCD)
		}
		out[i] = r
	}
	return out
}

func spaced(id string) string {
	var b strings.Builder
	for i := 0; i < len(id); i++ {
		if i > 0 && i%3 == 0 {
			b.WriteByte(' ')
		}
		b.WriteByte(id[i])
	}
	return b.String()
}

// unknownID keeps the structure of p's ID but changes its random part; with 10^6 random
// parts per prefix it is almost never someone else's.
func unknownID(p match.Person, rng *rand.Rand) string {
	n := len(p.IDNumber)
	return p.IDNumber[:n-6] + fmt.Sprintf("%06d", rng.IntN(1e6))
}
