// Package synth generates a synthetic, deterministic population registry and dose records
// with a controlled mix of the data errors the real programme met (domain-vn.md, "Registry
// matching"), plus the ground truth of what the matcher must answer for each record.
//
// The same Config gives byte-identical output. Generation streams: memory does not grow
// with the number of people.
package synth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/vaxpass/vaxpass/shared/domain/dose"
	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/domain/vaccine"
)

// Config says what to generate.
type Config struct {
	People int // people in the registry
	// Records is the number of dose records to write; 0 means as many as People. The
	// vaccinated people are drawn from the registry until the records are written; when the
	// registry is too small for them, fewer are written (see Summary.Records).
	Records int
	Seed    uint64
	Mix     Mix // nil means DefaultMix
}

// Output receives the three files.
type Output struct {
	Registry io.Writer // CSV: id_number,full_name,dob,gender,commune_code
	Records  io.Writer // JSONL: one dose record (contract shape) a line
	Truth    io.Writer // JSONL: one Truth a line, in the order of Records
}

// Counter receives progress: one Add per person generated.
type Counter interface{ Add(n int64) }

// RegistryHeader is the first line of the registry CSV.
const RegistryHeader = "id_number,full_name,dob,gender,commune_code"

// Summary counts what was generated.
type Summary struct {
	People     int // registry rows
	Vaccinated int // people with at least one dose record
	Records    int
	// PeopleByClass counts vaccinated people by class; RecordsByStatus counts records by
	// the status the matcher must give.
	PeopleByClass   map[Class]int
	RecordsByStatus map[match.Status]int
}

// Errors of Generate.
var (
	ErrConfig = errors.New("invalid generator config")
	// ErrIDSpace: a (province, gender/century, birth year) group ran out of its one million
	// numbers; it cannot happen below hundreds of millions of people.
	ErrIDSpace = errors.New("ID numbers exhausted")
)

// MaxPeople bounds a run; it is far above the 50 million people the system is sized for.
const MaxPeople = 200_000_000

// Generate writes the registry, the dose records and the ground truth. It does not buffer:
// give it buffered writers. progress may be nil.
func Generate(ctx context.Context, cfg Config, out Output, progress Counter) (Summary, error) {
	if cfg.People < 0 || cfg.People > MaxPeople {
		return Summary{}, fmt.Errorf("%w: people must be 0..%d, got %d", ErrConfig, MaxPeople, cfg.People)
	}
	if cfg.Records < 0 || cfg.Records > 4*MaxPeople {
		return Summary{}, fmt.Errorf("%w: records must be 0..%d, got %d", ErrConfig, 4*MaxPeople, cfg.Records)
	}
	if cfg.Records == 0 {
		cfg.Records = cfg.People
	}
	if cfg.Mix == nil {
		cfg.Mix = DefaultMix()
	}
	if err := cfg.Mix.check(); err != nil {
		return Summary{}, err
	}
	g := newGenerator(cfg)
	if _, err := io.WriteString(out.Registry, RegistryHeader+"\n"); err != nil {
		return Summary{}, fmt.Errorf("write registry: %w", err)
	}
	sum := Summary{PeopleByClass: map[Class]int{}, RecordsByStatus: map[match.Status]int{}}
	var regLine, recLines, truthLines []byte
	var p person
	for i := 0; i < cfg.People; i++ {
		if i&1023 == 0 {
			if err := ctx.Err(); err != nil {
				return sum, err
			}
		}
		if err := g.newPerson(&p); err != nil {
			return sum, err
		}
		regLine = g.appendRegistryLine(regLine[:0], &p)
		if _, err := out.Registry.Write(regLine); err != nil {
			return sum, fmt.Errorf("write registry: %w", err)
		}
		sum.People++

		if g.recordsLeft > 0 && g.rng.Float64() < g.vaccinationRate {
			class, n, err := g.vaccinate(&p, &recLines, &truthLines)
			if err != nil {
				return sum, err
			}
			if _, err := out.Records.Write(recLines); err != nil {
				return sum, fmt.Errorf("write records: %w", err)
			}
			if _, err := out.Truth.Write(truthLines); err != nil {
				return sum, fmt.Errorf("write truth: %w", err)
			}
			status, _ := class.Expect()
			sum.Vaccinated++
			sum.Records += n
			sum.PeopleByClass[class]++
			sum.RecordsByStatus[status] += n
		}
		if progress != nil {
			progress.Add(1)
		}
	}
	return sum, nil
}

// generator holds the tables and the state of one run.
type generator struct {
	rng         *rand.Rand
	ids         *idAllocator
	words       syllables
	family      nameTable
	middle      [2]nameTable // by gender: 0 male, 1 female
	second      [2]nameTable
	givenNames  [2]nameTable
	province    sampler
	residence   sampler
	communes    [len(provinces)]int
	facilities  [len(provinces)]int
	badProvince []string
	ageBand     sampler
	classDraw   sampler
	firstMonth  sampler
	primary     sampler
	booster     sampler
	course      []int // primary course length, by primaries index
	nDoses      sampler

	vaccinationRate float64
	recordsLeft     int
	seq             int // dose records written: the source_id sequence
}

func newGenerator(cfg Config) *generator {
	g := &generator{
		rng:         rand.New(rand.NewPCG(cfg.Seed, 0x5eed_7a9_b055)),
		ids:         newIDAllocator(cfg.Seed),
		words:       syllables{index: map[string]int{}},
		recordsLeft: cfg.Records,
	}
	g.family = newNameTable(&g.words, familyNames)
	g.middle = [2]nameTable{newNameTable(&g.words, maleMiddle), newNameTable(&g.words, femaleMiddle)}
	g.second = [2]nameTable{newUniformTable(&g.words, maleSecond), newUniformTable(&g.words, femaleSecond)}
	g.givenNames = [2]nameTable{newUniformTable(&g.words, maleGiven), newUniformTable(&g.words, femaleGiven)}

	birth := make([]float64, len(provinces))
	moved := make([]float64, len(provinces))
	known := map[string]bool{}
	for i, p := range provinces {
		birth[i] = float64(p.population)
		moved[i] = float64(p.population * max(1, migrationPull[p.code]))
		g.communes[i] = max(10, p.population/peoplePerCommune)
		g.facilities[i] = max(3, g.communes[i]/4)
		known[p.code] = true
	}
	g.province, g.residence = newSampler(birth), newSampler(moved)
	for c := 0; c < 100; c++ {
		if code := fmt.Sprintf("%03d", c); !known[code] {
			g.badProvince = append(g.badProvince, code)
		}
	}

	ages := make([]float64, len(ageBands))
	for i, b := range ageBands {
		ages[i] = b.weight
	}
	g.ageBand = newSampler(ages)
	g.classDraw = newSampler(cfg.Mix.Fractions())
	g.firstMonth = newSampler(firstDoseMonths[:])
	shares := make([]float64, len(primaries))
	for i, v := range primaries {
		shares[i] = v.weight
		g.course = append(g.course, courseLength(v.code))
	}
	g.primary = newSampler(shares)
	boosters := make([]float64, len(boosterVaccines))
	for i, b := range boosterVaccines {
		boosters[i] = b.weight
	}
	g.booster = newSampler(boosters)
	g.nDoses = newSampler(dosesWanted[:])

	// Vaccinate a share of the registry that uses the records up a little before its end,
	// so that the requested count is met; the rest of the registry stays unvaccinated.
	meanDoses := 0.0
	for i, w := range dosesWanted {
		meanDoses += float64(i+1) * w / 100
	}
	if cfg.People > 0 {
		g.vaccinationRate = min(1, 1.15*float64(cfg.Records)/(float64(cfg.People)*meanDoses*0.92))
	}
	return g
}

func courseLength(c vaccine.Code) int {
	v, err := vaccine.Lookup(string(c))
	if err != nil {
		panic("synth: vaccine table names an unknown vaccine " + string(c))
	}
	return v.PrimaryCourse
}

// person is one registry entry.
type person struct {
	female     bool
	dob        int // day number
	year       int
	birthProv  int // provinces index
	homeProv   int
	commune    int
	facility   int
	id         [12]byte
	name       name
	phone      [10]byte
	hasPhone   bool
	centuryDig int
}

func (p *person) gender() string {
	if p.female {
		return dose.Female
	}
	return dose.Male
}

func (g *generator) newPerson(p *person) error {
	r := g.rng
	p.female = r.IntN(2) == 1
	band := ageBands[g.ageBand.pick(r)]
	age := band.from + r.IntN(band.to-band.from+1)
	p.year = refYear - age
	jan1 := civilDay(p.year, 1, 1)
	p.dob = jan1 + r.IntN(civilDay(p.year+1, 1, 1)-jan1)

	p.birthProv = g.province.pick(r)
	p.homeProv = p.birthProv
	if r.Float64() < movedAway {
		p.homeProv = g.residence.pick(r)
	}
	p.commune = r.IntN(g.communes[p.homeProv])
	p.facility = r.IntN(g.facilities[p.homeProv])

	p.centuryDig = (p.year/100-19)*2 + b2i(p.female)
	random6, err := g.ids.take(p.birthProv, p.centuryDig, p.year%100, false)
	if err != nil {
		return err
	}
	p.id = makeID(provinces[p.birthProv].code, p.centuryDig, p.year%100, random6)

	gi := b2i(p.female)
	p.name.words[0] = g.family.pick(r)
	p.name.words[1] = g.middle[gi].pick(r)
	p.name.n = 3
	if r.Float64() < twoMiddleNames {
		p.name.words[2] = g.second[gi].pick(r)
		p.name.n = 4
	}
	p.name.words[p.name.n-1] = g.givenNames[gi].pick(r)

	p.hasPhone = r.Float64() < hasPhone
	if p.hasPhone {
		pre := mobilePrefixes[r.IntN(len(mobilePrefixes))]
		copy(p.phone[:], pre)
		fillDigits(r, p.phone[3:])
	}
	return nil
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func makeID(prov string, centuryDigit, yy int, random6 uint32) [12]byte {
	var id [12]byte
	copy(id[:], prov)
	id[3] = byte('0' + centuryDigit)
	id[4], id[5] = byte('0'+yy/10), byte('0'+yy%10)
	for i := 11; i >= 6; i-- {
		id[i] = byte('0' + random6%10)
		random6 /= 10
	}
	return id
}

func fillDigits(r *rand.Rand, b []byte) {
	for i := range b {
		b[i] = byte('0' + r.IntN(10))
	}
}

func (g *generator) appendCommune(b []byte, p *person) []byte {
	b = append(b, provinces[p.homeProv].code...)
	return appendPadded(b, p.commune, 4)
}

func (g *generator) appendRegistryLine(b []byte, p *person) []byte {
	b = append(b, p.id[:]...)
	b = append(b, ',')
	b = appendCSV(b, string(g.words.appendForm(nil, p.name, formNFC)))
	b = append(b, ',')
	b = appendDay(b, p.dob)
	b = append(b, ',')
	b = append(b, p.gender()...)
	b = append(b, ',')
	b = g.appendCommune(b, p)
	return append(b, '\n')
}

// Truth is one line of the ground-truth file: what the matcher must answer for a record.
type Truth struct {
	SourceID string `json:"source_id"`
	// RegistryID is the person's real ID in the registry, whatever the record carries.
	RegistryID string       `json:"registry_id"`
	Class      Class        `json:"class"`
	Status     match.Status `json:"status"`
	Reasons    []string     `json:"reasons"`
	// Corrected names the fields (of the dose record) where a VERIFIED record's value
	// differs from the registry's, so the matcher reports the registry's value.
	Corrected []string `json:"corrected"`
}

// recordDetails are the personal fields a record carries after the planted error.
type recordDetails struct {
	name, dob, gender, id string
}

// vaccinate draws the person's class and doses and renders the records and truth lines.
func (g *generator) vaccinate(p *person, recLines, truthLines *[]byte) (Class, int, error) {
	r := g.rng
	class := Classes[g.classDraw.pick(r)]
	det, err := g.plant(p, class)
	if err != nil {
		return "", 0, err
	}
	status, reasons := class.Expect()
	var corrected []string
	if status == match.Verified {
		if det.name != string(g.words.appendForm(nil, p.name, formNFC)) {
			corrected = append(corrected, match.FieldFullName)
		}
		if det.dob != string(appendDay(nil, p.dob)) {
			corrected = append(corrected, match.FieldDOB)
		}
		if det.id != string(p.id[:]) {
			corrected = append(corrected, match.FieldIDNumber)
		}
	}

	var doses [4]plannedDose
	n := g.planDoses(p, doses[:0])
	n = min(n, g.recordsLeft)
	g.recordsLeft -= n

	rec, tr := (*recLines)[:0], (*truthLines)[:0]
	for k := 0; k < n; k++ {
		d := doses[k]
		g.seq++
		rec = append(rec, `{"source_id":"`...)
		idStart := len(rec)
		rec = g.appendSourceID(rec, p, d.facility)
		idEnd := len(rec)
		rec = append(rec, `","full_name":`...)
		rec = appendJSONString(rec, det.name)
		rec = append(rec, `,"dob":"`...)
		rec = append(rec, det.dob...)
		rec = append(rec, `","gender":"`...)
		rec = append(rec, det.gender...)
		rec = append(rec, `","id_number":`...)
		rec = appendJSONString(rec, det.id)
		if p.hasPhone {
			rec = append(rec, `,"phone":"`...)
			rec = append(rec, p.phone[:]...)
			rec = append(rec, '"')
		}
		rec = append(rec, `,"nationality":"VN","commune_code":"`...)
		rec = g.appendCommune(rec, p)
		rec = append(rec, `","vaccine":"`...)
		rec = append(rec, d.vaccine...)
		rec = append(rec, `","dose_number":`...)
		rec = strconv.AppendInt(rec, int64(k+1), 10)
		rec = append(rec, `,"vaccinated_on":"`...)
		rec = appendDay(rec, d.day)
		rec = append(rec, `","lot":"`...)
		rec = append(rec, d.lot...)
		rec = appendPadded(rec, d.lotNumber, 4)
		rec = append(rec, "\"}\n"...)

		tr = append(tr, `{"source_id":"`...)
		tr = append(tr, rec[idStart:idEnd]...)
		tr = append(tr, `","registry_id":"`...)
		tr = append(tr, p.id[:]...)
		tr = append(tr, `","class":"`...)
		tr = append(tr, class...)
		tr = append(tr, `","status":"`...)
		tr = append(tr, string(status)...)
		tr = append(tr, `","reasons":`...)
		tr = appendJSONList(tr, reasons)
		tr = append(tr, `,"corrected":`...)
		tr = appendJSONList(tr, corrected)
		tr = append(tr, "}\n"...)
	}
	*recLines, *truthLines = rec, tr
	return class, n, nil
}

// appendSourceID writes a source_id unique over the whole run: the facility that gave the
// dose and the run's record sequence, "F079012-0000000001".
func (g *generator) appendSourceID(b []byte, p *person, facility int) []byte {
	b = append(b, 'F')
	b = append(b, provinces[p.homeProv].code...)
	b = appendPadded(b, facility, 3)
	b = append(b, '-')
	return appendPadded(b, g.seq, 10)
}

// plant returns the record's personal details with the class's error in them.
func (g *generator) plant(p *person, class Class) (recordDetails, error) {
	r := g.rng
	det := recordDetails{
		name:   string(g.words.appendForm(nil, p.name, formNFC)),
		dob:    string(appendDay(nil, p.dob)),
		gender: p.gender(),
		id:     string(p.id[:]),
	}
	yy := p.year % 100
	switch class {
	case Clean:
	case NameNFD:
		det.name = string(g.words.appendForm(nil, p.name, formNFD))
	case NameASCII:
		det.name = string(g.words.appendForm(nil, p.name, formASCII))
	case NameUpper:
		det.name = string(g.words.appendForm(nil, p.name, formUpper))
	case NameSpaces:
		b := g.words.appendForm(nil, p.name, formNFC)
		gaps := 0
		for i := range b {
			if b[i] == ' ' {
				gaps++
			}
		}
		doubled := r.IntN(gaps) // double this gap; sometimes every gap
		every := r.IntN(4) == 0
		var out []byte
		gap := 0
		for _, c := range b {
			out = append(out, c)
			if c == ' ' {
				if every || gap == doubled {
					out = append(out, ' ')
				}
				gap++
			}
		}
		det.name = string(out)
	case IDSpaced:
		det.id = groupID(p.id[:], ' ', r.IntN(2) == 0)
	case IDDotted:
		det.id = groupID(p.id[:], '.', true)
	case DOBYearOnly:
		det.dob = det.dob[:4]
	case NoID:
		det.id = ""
	case IDLength:
		b := append([]byte(nil), p.id[:]...)
		at := r.IntN(len(b))
		if r.IntN(2) == 0 {
			b = append(b[:at], b[at+1:]...)
		} else {
			b = append(b[:at], append([]byte{byte('0' + r.IntN(10))}, b[at:]...)...)
		}
		det.id = string(b)
	case IDLetters:
		det.id = letterForDigit(r, p.id)
	case IDProvince:
		id := p.id
		copy(id[:], g.badProvince[r.IntN(len(g.badProvince))])
		det.id = string(id[:])
	case IDGenderCentury:
		digit := p.centuryDig ^ 1 // the other gender
		// or the other century, unless that puts the birth in the future: the matcher
		// rejects such a number for its birth year (ID_BIRTH_YEAR) before anything else.
		if other := (p.centuryDig + 2) % 4; r.IntN(2) == 0 && (19+other/2)*100+yy <= refYear {
			digit = other
		}
		random6, err := g.ids.take(p.birthProv, digit, yy, true)
		if err != nil {
			return det, err
		}
		id := makeID(provinces[p.birthProv].code, digit, yy, random6)
		det.id = string(id[:])
	case IDBirthYear:
		other := yy%10*10 + yy/10 // the two digits swapped
		if other == yy {
			other = (yy + 1) % 100
		}
		random6, err := g.ids.take(p.birthProv, p.centuryDig, other, true)
		if err != nil {
			return det, err
		}
		id := makeID(provinces[p.birthProv].code, p.centuryDig, other, random6)
		det.id = string(id[:])
	case NotFound:
		random6, err := g.ids.take(p.birthProv, p.centuryDig, yy, true)
		if err != nil {
			return det, err
		}
		id := makeID(provinces[p.birthProv].code, p.centuryDig, yy, random6)
		det.id = string(id[:])
	case OldCMND:
		var b [9]byte
		b[0] = byte('0' + r.IntN(4))
		fillDigits(r, b[1:])
		det.id = string(b[:])
	case WrongName:
		det.name = g.otherGivenName(p)
	case WrongDOB:
		det.dob = string(appendDay(nil, g.otherDOB(p.dob)))
	case WrongGender:
		det.gender = dose.Female
		if p.female {
			det.gender = dose.Male
		}
	case WrongNameDOB:
		det.name = g.otherGivenName(p)
		det.dob = string(appendDay(nil, g.otherDOB(p.dob)))
	default:
		return det, fmt.Errorf("%w: unknown class %q", ErrConfig, class)
	}
	return det, nil
}

// groupID writes an ID in groups of three ("079 085 012 345"), or as two halves.
func groupID(id []byte, sep byte, threes bool) string {
	size := 6
	if threes {
		size = 3
	}
	var b []byte
	for i := 0; i < len(id); i += size {
		if i > 0 {
			b = append(b, sep)
		}
		b = append(b, id[i:min(i+size, len(id))]...)
	}
	return string(b)
}

// lookAlikes are the letters typed for digits they resemble.
var lookAlikes = map[byte]byte{'0': 'O', '1': 'l', '2': 'Z', '5': 'S', '6': 'G', '8': 'B'}

func letterForDigit(r *rand.Rand, id [12]byte) string {
	var at []int
	for i, c := range id {
		if _, ok := lookAlikes[c]; ok {
			at = append(at, i)
		}
	}
	i := at[r.IntN(len(at))] // never empty: a CCCD starts with 0
	id[i] = lookAlikes[id[i]]
	return string(id[:])
}

// otherGivenName replaces the given name with another of the same gender that does not
// fold to the same key, so no normalisation can make the two agree.
func (g *generator) otherGivenName(p *person) string {
	table := g.givenNames[b2i(p.female)]
	old := g.words.list[p.name.given()].key
	nm := p.name
	for {
		w := table.pick(g.rng)
		if g.words.list[w].key != old {
			nm.words[nm.n-1] = w
			return string(g.words.appendForm(nil, nm, formNFC))
		}
	}
}

// otherDOB returns a different, plausible date of birth: day and month swapped, a day
// typed wrong, or the year off by one.
func (g *generator) otherDOB(dob int) int {
	r := g.rng
	y, m, d := dayToCivil(dob)
	for {
		var y2, m2, d2 = y, m, d
		switch r.IntN(3) {
		case 0:
			if d > 12 || d == m {
				continue
			}
			m2, d2 = d, m
		case 1:
			d2 = d + 1 + r.IntN(5)
			if r.IntN(2) == 0 {
				d2 = d - 1 - r.IntN(5)
			}
		case 2:
			y2 = y + 1
			if r.IntN(2) == 0 {
				y2 = y - 1
			}
		}
		if d2 < 1 || d2 > daysIn(y2, m2) || y2 > refYear-1 {
			continue
		}
		if other := civilDay(y2, m2, d2); other != dob {
			return other
		}
	}
}

// plannedDose is one dose of a person's history.
type plannedDose struct {
	vaccine   string
	day       int
	facility  int
	lot       string
	lotNumber int
}

// planDoses fills dst with the person's doses in order and returns how many.
func (g *generator) planDoses(p *person, dst []plannedDose) int {
	r := g.rng
	want := g.nDoses.pick(r) + 1
	age := refYear - p.year
	vi := g.primary.pick(r)
	earliest := campaignStart
	if age < 18 {
		vi = 2 // Pfizer: the vaccine given to 12-17 year olds
		if r.IntN(6) == 0 {
			vi = 3 // Moderna
		}
		earliest = minorsFrom
	}
	v := primaries[vi]
	earliest = max(earliest, v.available)

	// First dose: a month by the campaign's shape, redrawn while it is before the vaccine
	// (or the age group) was available; then a day in it.
	day := 0
	for try := 0; ; try++ {
		month := g.firstMonth.pick(r)
		y, m := 2021, 3+month
		if m > 12 {
			y, m = 2022, m-12
		}
		day = civilDay(y, m, 1) + r.IntN(daysIn(y, m))
		if day >= earliest {
			break
		}
		if try == 8 {
			day = earliest + r.IntN(30)
			break
		}
	}
	facility := p.facility
	lotNumber := r.IntN(10000)
	dst = append(dst, plannedDose{string(v.code), day, facility, v.lot, lotNumber})
	course := g.course[vi]
	for k := 2; k <= want && k <= course; k++ {
		day += v.minGap + r.IntN(v.spread+1)
		if day > campaignEnd {
			return len(dst)
		}
		code := string(v.code)
		if course == 2 && v.code == vaccine.AstraZeneca && r.Float64() < mixedSecondDose {
			code = string(vaccine.Pfizer)
		}
		dst = append(dst, plannedDose{code, day, facility, lotFor(code), r.IntN(10000)})
	}
	for k := course + 1; k <= want; k++ {
		day = max(day+90+r.IntN(90), boostersFrom+r.IntN(60))
		if day > campaignEnd {
			break
		}
		if r.IntN(5) == 0 { // boosters are often given at another site
			facility = r.IntN(g.facilities[p.homeProv])
		}
		code := boosterVaccines[g.booster.pick(r)].value
		dst = append(dst, plannedDose{code, day, facility, lotFor(code), r.IntN(10000)})
	}
	return len(dst)
}

func lotFor(code string) string {
	for _, v := range primaries {
		if string(v.code) == code {
			return v.lot
		}
	}
	return ""
}

// Day numbers: days since 1970-01-01.

func civilDay(y, m, d int) int {
	return int(time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC).Unix() / 86400)
}

func dayToCivil(day int) (y, m, d int) {
	t := time.Unix(int64(day)*86400, 0).UTC()
	yy, mm, dd := t.Date()
	return yy, int(mm), dd
}

func daysIn(y, m int) int { return time.Date(y, time.Month(m)+1, 0, 0, 0, 0, 0, time.UTC).Day() }

func appendDay(b []byte, day int) []byte {
	y, m, d := dayToCivil(day)
	b = appendPadded(b, y, 4)
	b = append(b, '-')
	b = appendPadded(b, m, 2)
	b = append(b, '-')
	return appendPadded(b, d, 2)
}

// appendPadded writes n >= 0 with leading zeros to at least width digits.
func appendPadded(b []byte, n, width int) []byte {
	var tmp [20]byte
	s := strconv.AppendInt(tmp[:0], int64(n), 10)
	for i := len(s); i < width; i++ {
		b = append(b, '0')
	}
	return append(b, s...)
}
