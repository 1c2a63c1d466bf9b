// Package stats computes the ops dashboard's numbers (GET /v1/stats and the /ops page):
// per province and per facility, the dose records per match status, and the certificates
// valid, expiring soon, expired and revoked; and the certificates issued per day.
//
// The numbers are read from counters the store keeps as it writes (Counters; what each
// write changes is decided in counters.go), so a snapshot is current when asked and costs
// a read of the counters, whose number is bounded by the provinces, facilities and days,
// not by the number of records. Valid, expiring and expired are worked out at read time
// from the certificates' expiry days and the clock.
package stats

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/vaxpass/vaxpass/shared/domain/identity"
	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// Counters is what the numbers are read from: the store's counters.
type Counters interface {
	// StatCounters reads every counter, summed over the store's shards: issued
	// certificates by expiry day only for the days from..to (inclusive, "2006-01-02").
	StatCounters(ctx context.Context, from, to string) (*Tally, error)
	// ListFacilities lists the registered facilities (their names label the rows).
	ListFacilities(ctx context.Context) ([]vaxpass.Facility, error)
}

// Statuses are the match statuses, in the order the dashboard shows them.
var Statuses = []match.Status{match.Verified, match.Pending, match.Mismatch, match.NotFound, match.InvalidID, match.NoID}

// UnknownProvince is the province code of records whose ID number names no province: no
// ID, a malformed one, or a 9-digit CMND (which does not encode one).
const UnknownProvince = "unknown"

// DefaultExpiringWithin is the window of "expiring" (the renewal job's default window).
const DefaultExpiringWithin = 30 * 24 * time.Hour

// VietnamTime is the zone issuance and expiry days are counted in (UTC+7, no daylight
// saving).
var VietnamTime = time.FixedZone("ICT", 7*3600)

// Snapshot is the dashboard's numbers at one instant.
type Snapshot struct {
	GeneratedAt time.Time `json:"generated_at"`
	// AsOf is when the counters were read: the numbers are those of that instant (the
	// counters change in the transaction of every write, and a snapshot is read when
	// asked, never cached).
	AsOf time.Time `json:"as_of"`
	// ExpiringWithinDays is the window of Certificates.Expiring.
	ExpiringWithinDays int `json:"expiring_within_days"`
	// TimeZone names the zone of Issuance's days.
	TimeZone string `json:"time_zone"`
	// Statuses lists the keys of every ByStatus, in display order.
	Statuses   []match.Status `json:"statuses"`
	Total      Counts         `json:"total"`
	Provinces  []Province     `json:"provinces"`
	Facilities []Facility     `json:"facilities"`
	// Issuance counts certificates by the day (in TimeZone) they were signed: every stored
	// certificate once, whatever its status now; a renewed certificate counts on the day
	// of its latest signature. Days without issuance are left out.
	Issuance []Day `json:"issuance"`
	// Security counts the security events by kind (security.Kinds), today and in all;
	// absent without Service.Security.
	Security map[string]SecurityCount `json:"security,omitempty"`
	// Communes is one province's drill-down, when asked for (Service.SnapshotOf).
	Communes *ProvinceCommunes `json:"communes,omitempty"`
}

// Counts are the numbers of one row.
type Counts struct {
	// Doses counts dose records; ByStatus splits them by match status (every status
	// present, zeros included).
	Doses        int                  `json:"doses"`
	ByStatus     map[match.Status]int `json:"by_status"`
	Certificates Certificates         `json:"certificates"`
}

// Certificates count certificates. A person's certificate counts in the province of
// their ID number, and at every facility that signed doses of theirs (so facility rows
// may add up to more than the total).
type Certificates struct {
	// Valid: issued and not expired. Expiring: valid, expiring within the window. Both,
	// and Expired, are exact to the day (see Service.Snapshot).
	Valid    int `json:"valid"`
	Expiring int `json:"expiring"`
	// Expired: issued, past their expiry (renewal re-signs them).
	Expired int `json:"expired"`
	// Revoked: revoked by ops, or superseded by a corrected certificate.
	Revoked int `json:"revoked"`
}

// Province is a province's row: Code is the 3-digit code of the ID number, or
// UnknownProvince.
type Province struct {
	Code string `json:"code"`
	Name string `json:"name"`
	Counts
}

// Facility is a facility's row.
type Facility struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Counts
}

// Day is the issuance of one day.
type Day struct {
	Date   string `json:"date"`
	Issued int    `json:"issued"`
}

// Service computes snapshots from the store's counters.
type Service struct {
	Counters Counters
	Now      func() time.Time
	// ExpiringWithin is the window of "expiring" (default DefaultExpiringWithin).
	ExpiringWithin time.Duration
	// Security, when set, adds the security events' counts.
	Security SecurityCounters
}

// Snapshot reads the counters and returns the numbers at the service's now.
//
// Certificates are counted by expiry day (a Vietnam day): an issued certificate is
// expired from the day after its expiry day, and expiring while valid with an expiry day
// no later than the day of now+ExpiringWithin. The split is exact to the day, not to the
// second.
func (s *Service) Snapshot(ctx context.Context) (Snapshot, error) {
	now := s.now()
	within := s.ExpiringWithin
	if within <= 0 {
		within = DefaultExpiringWithin
	}
	today, end := DayOf(now), DayOf(now.Add(within))
	// Days of today's month before today are expired; the rest of the window is expiring.
	tally, err := s.Counters.StatCounters(ctx, MonthOf(today)+"-01", end)
	if err != nil {
		return Snapshot{}, fmt.Errorf("stats: read counters: %w", err)
	}
	facs, err := s.Counters.ListFacilities(ctx)
	if err != nil {
		return Snapshot{}, fmt.Errorf("stats: list facilities: %w", err)
	}
	snap := build(tally, facs, now, within, today, end)
	if s.Security != nil {
		if snap.Security, err = securityOf(ctx, s.Security, now); err != nil {
			return Snapshot{}, err
		}
	}
	return snap, nil
}

func (s *Service) now() time.Time {
	if s.Now == nil {
		return time.Now().UTC()
	}
	return s.Now().UTC()
}

// build turns counters into the snapshot's rows.
func build(t *Tally, facs []vaxpass.Facility, now time.Time, within time.Duration, today, end string) Snapshot {
	snap := Snapshot{
		GeneratedAt: now, AsOf: now, ExpiringWithinDays: int(within / (24 * time.Hour)), TimeZone: "Asia/Ho_Chi_Minh (UTC+7)",
		Statuses: slices.Clone(Statuses), Total: newCounts(),
	}
	// Every province has a row, so a province with nothing yet shows zeros.
	rows := map[string]*Province{UnknownProvince: {Code: UnknownProvince, Counts: newCounts()}}
	for code, name := range provinces() {
		rows[code] = &Province{Code: code, Name: name, Counts: newCounts()}
	}
	for code, r := range t.Provinces {
		p, ok := rows[code]
		if !ok { // a code the identity package does not name: kept, unnamed
			p = &Province{Code: code, Counts: newCounts()}
			rows[code] = p
		}
		p.Counts = countsOf(r, today, end)
		snap.Total.add(p.Counts)
	}
	for _, code := range slices.Sorted(maps.Keys(rows)) {
		if code != UnknownProvince {
			snap.Provinces = append(snap.Provinces, *rows[code])
		}
	}
	snap.Provinces = append(snap.Provinces, *rows[UnknownProvince]) // the unknown row last

	names := map[string]string{}
	for _, f := range facs {
		names[f.ID] = f.Name
	}
	ids := map[string]bool{}
	for id := range names {
		ids[id] = true
	}
	for id := range t.Facilities {
		ids[id] = true
	}
	for _, id := range slices.Sorted(maps.Keys(ids)) {
		f := Facility{ID: id, Name: names[id], Counts: newCounts()}
		if r := t.Facilities[id]; r != nil {
			f.Counts = countsOf(r, today, end)
		}
		snap.Facilities = append(snap.Facilities, f)
	}

	snap.Issuance = []Day{}
	for d, n := range t.Issuance {
		if n != 0 {
			snap.Issuance = append(snap.Issuance, Day{Date: d, Issued: int(n)})
		}
	}
	slices.SortFunc(snap.Issuance, func(a, b Day) int { return cmp.Compare(a.Date, b.Date) })
	return snap
}

// countsOf works out a row's numbers: expired are the issued certificates whose expiry
// day is before today, expiring those from today to end.
func countsOf(r *Row, today, end string) Counts {
	c := newCounts()
	for st, n := range r.Doses {
		if n != 0 {
			c.ByStatus[st] += int(n)
			c.Doses += int(n)
		}
	}
	month := MonthOf(today)
	var issued, expired, expiring int64
	for m, n := range r.ExpiryMonths {
		issued += n
		if m < month {
			expired += n
		}
	}
	for d, n := range r.ExpiryDays {
		switch {
		case d < today:
			if MonthOf(d) == month {
				expired += n
			}
		case d <= end:
			expiring += n
		}
	}
	c.Certificates = Certificates{Valid: int(issued - expired), Expiring: int(expiring), Expired: int(expired), Revoked: int(r.Revoked)}
	return c
}

func (c *Counts) add(o Counts) {
	c.Doses += o.Doses
	for st, n := range o.ByStatus {
		c.ByStatus[st] += n
	}
	c.Certificates.Valid += o.Certificates.Valid
	c.Certificates.Expiring += o.Certificates.Expiring
	c.Certificates.Expired += o.Certificates.Expired
	c.Certificates.Revoked += o.Certificates.Revoked
}

// provinceOf is the province code of an ID number, or UnknownProvince.
func provinceOf(idNumber string) string {
	id, err := identity.Parse(idNumber)
	if err != nil || id.ProvinceCode() == "" {
		return UnknownProvince
	}
	return id.ProvinceCode()
}

// provinces maps every province code the identity package knows to its name; it asks
// identity.Parse about each 3-digit prefix (Parse checks the province of 12 digits).
var provinces = sync.OnceValue(func() map[string]string {
	out := map[string]string{}
	for i := range 1000 {
		if id, err := identity.Parse(fmt.Sprintf("%03d000000000", i)); err == nil {
			out[id.ProvinceCode()] = id.ProvinceName()
		}
	}
	return out
})

// ProvinceOf is the province code the dashboard files an ID number under.
func ProvinceOf(idNumber string) string { return provinceOf(idNumber) }

func newCounts() Counts {
	c := Counts{ByStatus: make(map[match.Status]int, len(Statuses))}
	for _, st := range Statuses {
		c.ByStatus[st] = 0
	}
	return c
}
