package stats

import (
	"fmt"
	"strings"
	"time"

	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// The counters a store keeps for the dashboard, updated in the same transaction as the
// write that changes what they count (see Service). A store renders Keys in its own
// layout; what each write changes is decided here, so both stores count alike.
//
// A dose record counts in the province of its ID number (as typed), at its facility and,
// when its record has a commune code, in that commune within that province, under its
// match status. A certificate counts in the province of its person and at
// every facility holding a signature for that person (so a facility that signs for a
// person later gains their earlier certificates too: stores add the person's
// PersonMetrics to it when they store its first signature for the person): revoked, or,
// while issued, by its expiry day. Every certificate counts once in the country's
// issuance, on the day of its latest signature. Days are Vietnam days (VietnamTime).

// ScopeKind is the kind of row a counter belongs to.
type ScopeKind byte

const (
	// Country is the whole country: only issuance is counted there; the country's other
	// numbers are the sum of the provinces.
	Country ScopeKind = 'c'
	// InProvince is a province (ID: the province code, or UnknownProvince).
	InProvince ScopeKind = 'p'
	// AtFacility is a facility (ID: the facility ID).
	AtFacility ScopeKind = 'f'
	// InCommune is a commune within a province (ID: CommuneScopeID): dose records only,
	// read by a province's drill-down (Service.Province), never by StatCounters.
	InCommune ScopeKind = 'm'
)

// CommuneScopeID is the scope ID of the doses of a commune whose ID numbers name a
// province: "province/commune". A commune's row sits under the province its doses count
// in, so a province's communes add up to it (less the doses without a commune code).
func CommuneScopeID(province, commune string) string { return province + "/" + commune }

// SplitCommuneScopeID reads CommuneScopeID's form back.
func SplitCommuneScopeID(id string) (province, commune string, ok bool) {
	return strings.Cut(id, "/")
}

// Scope is the row a counter belongs to.
type Scope struct {
	Kind ScopeKind
	ID   string // "" for Country
}

// MetricKind is what a counter counts.
type MetricKind byte

const (
	// DoseStatus counts dose records whose match status is Arg.
	DoseStatus MetricKind = 'd'
	// Revoked counts revoked certificates (Arg "").
	Revoked MetricKind = 'r'
	// ExpiresOn counts certificates in status issued whose expiry day is Arg.
	ExpiresOn MetricKind = 'x'
	// IssuedOn counts certificates (any status) last signed on day Arg (Country only).
	IssuedOn MetricKind = 'i'
)

// Metric is what a counter counts.
type Metric struct {
	Kind MetricKind
	Arg  string
}

// Key names one counter.
type Key struct {
	Scope  Scope
	Metric Metric
}

// Delta is what writes change: an amount per counter (zeros are dropped).
type Delta map[Key]int64

// Add adds n to the counter k.
func (d Delta) Add(k Key, n int64) {
	if n == 0 {
		return
	}
	if v := d[k] + n; v != 0 {
		d[k] = v
	} else {
		delete(d, k)
	}
}

// DayOf is the Vietnam day of t ("2006-01-02").
func DayOf(t time.Time) string { return t.In(VietnamTime).Format(time.DateOnly) }

// MonthOf is the month ("2006-01") of a day as DayOf renders it.
func MonthOf(day string) string {
	if len(day) < len("2006-01") {
		return day
	}
	return day[:len("2006-01")]
}

// ValidDay reports whether s is a day as DayOf renders it.
func ValidDay(s string) bool {
	_, err := time.Parse(time.DateOnly, s)
	return err == nil && len(s) == len(time.DateOnly)
}

// doseRow is what a dose counts under: its province, facility, commune (when the record
// has a commune code) and status.
type doseRow struct {
	province, facility, commune string
	status                      match.Status
}

func doseRowOf(d *vaxpass.Dose) doseRow {
	st := d.Match.Status
	if st == "" {
		st = match.Pending
	}
	return doseRow{province: provinceOf(d.IDNumber), facility: d.FacilityID, commune: d.CommuneCode, status: st}
}

// AddDose adds to d what storing next in place of old changes (old nil: a new dose;
// next nil: a dose removed).
func (d Delta) AddDose(old, next *vaxpass.Dose) {
	for _, x := range []struct {
		dose *vaxpass.Dose
		n    int64
	}{{old, -1}, {next, 1}} {
		if x.dose == nil {
			continue
		}
		r := doseRowOf(x.dose)
		m := Metric{DoseStatus, string(r.status)}
		d.Add(Key{Scope{InProvince, r.province}, m}, x.n)
		d.Add(Key{Scope{AtFacility, r.facility}, m}, x.n)
		if r.commune != "" {
			d.Add(Key{Scope{InCommune, CommuneScopeID(r.province, r.commune)}, m}, x.n)
		}
	}
}

// CertChange is what storing a certificate in place of its previous version changes.
type CertChange struct {
	// Province is the province row of the certificate's person.
	Province string
	// Rows is the change of the certificate's rows: its province and every facility
	// holding a signature for its person; the person's PersonMetrics change by it too.
	Rows map[Metric]int64
	// Issuance is the change of the country's issuance per day.
	Issuance map[string]int64
}

// Empty reports whether the change changes nothing.
func (c CertChange) Empty() bool { return len(c.Rows) == 0 && len(c.Issuance) == 0 }

// CertificateChange is what storing next in place of old (old nil: a new certificate)
// changes. Both are versions of one certificate (one person).
func CertificateChange(old, next *vaxpass.Certificate) CertChange {
	c := CertChange{Rows: map[Metric]int64{}, Issuance: map[string]int64{}}
	for _, x := range []struct {
		cert *vaxpass.Certificate
		n    int64
	}{{old, -1}, {next, 1}} {
		if x.cert == nil {
			continue
		}
		c.Province = provinceOf(x.cert.PersonID)
		if m, ok := certMetric(x.cert); ok {
			addMetric(c.Rows, m, x.n)
		}
		if !x.cert.IssuedAt.IsZero() {
			day := DayOf(x.cert.IssuedAt)
			if v := c.Issuance[day] + x.n; v != 0 {
				c.Issuance[day] = v
			} else {
				delete(c.Issuance, day)
			}
		}
	}
	return c
}

// certMetric is the row counter a certificate counts under (none for a status other
// than issued or revoked).
func certMetric(c *vaxpass.Certificate) (Metric, bool) {
	switch c.Status {
	case vaxpass.CertRevoked:
		return Metric{Kind: Revoked}, true
	case vaxpass.CertIssued:
		return Metric{ExpiresOn, DayOf(c.ExpiresAt)}, true
	}
	return Metric{}, false
}

func addMetric(m map[Metric]int64, k Metric, n int64) {
	if v := m[k] + n; v != 0 {
		m[k] = v
	} else {
		delete(m, k)
	}
}

// AddCertificate adds c to d: its rows are its province and facilities (the facilities
// holding a signature for its person).
func (d Delta) AddCertificate(c CertChange, facilities []string) {
	for m, n := range c.Rows {
		d.Add(Key{Scope{InProvince, c.Province}, m}, n)
		for _, f := range facilities {
			d.Add(Key{Scope{AtFacility, f}, m}, n)
		}
	}
	for day, n := range c.Issuance {
		d.Add(Key{Scope{Kind: Country}, Metric{IssuedOn, day}}, n)
	}
}

// PersonMetrics are the row counters of all of one person's certificates: what a
// facility's row gains when it signs for the person for the first time. Stores keep them
// per person, updated with every CertChange of the person's certificates.
type PersonMetrics map[Metric]int64

// Apply adds a certificate change to the person's metrics.
func (p PersonMetrics) Apply(c CertChange) {
	for m, n := range c.Rows {
		addMetric(p, m, n)
	}
}

// AddFacility adds to d what a facility gains when it first signs for a person with
// metrics p.
func (d Delta) AddFacility(facilityID string, p PersonMetrics) {
	for m, n := range p {
		d.Add(Key{Scope{AtFacility, facilityID}, m}, n)
	}
}

// EncodeMetric renders a metric as a short string (its kind byte, then Arg), for
// stores that keep metrics by name.
func EncodeMetric(m Metric) string { return string(rune(m.Kind)) + m.Arg }

// DecodeMetric reads EncodeMetric's form back.
func DecodeMetric(s string) (Metric, error) {
	if s == "" {
		return Metric{}, fmt.Errorf("stats: empty metric")
	}
	m := Metric{Kind: MetricKind(s[0]), Arg: s[1:]}
	switch m.Kind {
	case DoseStatus:
	case Revoked:
		if m.Arg != "" {
			return Metric{}, fmt.Errorf("stats: metric %q", s)
		}
	case ExpiresOn, IssuedOn:
		if !ValidDay(m.Arg) {
			return Metric{}, fmt.Errorf("stats: metric %q: bad day", s)
		}
	default:
		return Metric{}, fmt.Errorf("stats: metric %q: unknown kind", s)
	}
	return m, nil
}

// Row is the stored counters of one row, summed over a store's shards.
type Row struct {
	// Doses counts dose records by match status.
	Doses map[match.Status]int64
	// Revoked counts revoked certificates.
	Revoked int64
	// ExpiryMonths counts certificates in status issued by the month ("2006-01") of their
	// expiry day: every month.
	ExpiryMonths map[string]int64
	// ExpiryDays counts them by expiry day ("2006-01-02"): the days a read asked for.
	ExpiryDays map[string]int64
}

// Tally is the counters a store read (Counters.StatCounters).
type Tally struct {
	Provinces  map[string]*Row
	Facilities map[string]*Row
	// Communes (by CommuneScopeID) are filled by a province's read (CommuneCounters),
	// doses only.
	Communes map[string]*Row
	// Issuance counts certificates by day of their latest signature.
	Issuance map[string]int64
}

// NewTally returns an empty tally.
func NewTally() *Tally {
	return &Tally{Provinces: map[string]*Row{}, Facilities: map[string]*Row{}, Communes: map[string]*Row{}, Issuance: map[string]int64{}}
}

// Row returns the row of a province or facility scope, creating it; nil for Country.
func (t *Tally) Row(s Scope) *Row {
	var rows map[string]*Row
	switch s.Kind {
	case InProvince:
		rows = t.Provinces
	case AtFacility:
		rows = t.Facilities
	case InCommune:
		if t.Communes == nil {
			t.Communes = map[string]*Row{}
		}
		rows = t.Communes
	default:
		return nil
	}
	r, ok := rows[s.ID]
	if !ok {
		r = &Row{Doses: map[match.Status]int64{}, ExpiryMonths: map[string]int64{}, ExpiryDays: map[string]int64{}}
		rows[s.ID] = r
	}
	return r
}

// Add adds n to a counter as stored by key: an ExpiresOn counter adds to its month, and
// to its day when the day is within [from, to]. It fails on a key that cannot be stored
// (a store's corrupt data).
func (t *Tally) Add(k Key, n int64, from, to string) error {
	if k.Metric.Kind == IssuedOn {
		if k.Scope.Kind != Country {
			return fmt.Errorf("stats: issuance counted outside the country row")
		}
		t.Issuance[k.Metric.Arg] += n
		return nil
	}
	r := t.Row(k.Scope)
	if r == nil {
		return fmt.Errorf("stats: counter %q of the country row", EncodeMetric(k.Metric))
	}
	if k.Scope.Kind == InCommune && k.Metric.Kind != DoseStatus {
		return fmt.Errorf("stats: counter %q of a commune row", EncodeMetric(k.Metric))
	}
	switch k.Metric.Kind {
	case DoseStatus:
		r.Doses[match.Status(k.Metric.Arg)] += n
	case Revoked:
		r.Revoked += n
	case ExpiresOn:
		r.ExpiryMonths[MonthOf(k.Metric.Arg)] += n
		if k.Metric.Arg >= from && k.Metric.Arg <= to {
			r.ExpiryDays[k.Metric.Arg] += n
		}
	default:
		return fmt.Errorf("stats: unknown counter kind %q", k.Metric.Kind)
	}
	return nil
}
