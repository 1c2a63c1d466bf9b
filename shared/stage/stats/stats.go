// Package stats computes the ops dashboard's numbers (GET /v1/stats and the /ops page):
// per province and per facility, the dose records per match status, and the certificates
// valid, expiring soon, expired and revoked; and the certificates issued per day.
//
// The numbers come from one scan of the doses and the certificates (Source), reduced to a
// few fields each; a Snapshot is cached for MaxAge so that the page a ministry official
// opens every morning costs one scan however many people open it. Memory is bounded by the
// number of provinces, facilities and days, not by the number of records.
package stats

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vaxpass/vaxpass/shared/domain/identity"
	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// Source is what the numbers are counted from.
type Source interface {
	// EachDoseStat calls fn for every dose record: its facility, stored match status and
	// ID number as typed.
	EachDoseStat(ctx context.Context, fn func(facilityID string, status match.Status, idNumber string) error) error
	// EachCertificateStat calls fn for every stored certificate (any status), with the
	// facilities that signed for its person.
	EachCertificateStat(ctx context.Context, fn func(personID, status string, issuedAt, expiresAt time.Time, facilities []string) error) error
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

// VietnamTime is the zone issuance days are counted in (UTC+7, no daylight saving).
var VietnamTime = time.FixedZone("ICT", 7*3600)

// Snapshot is the dashboard's numbers at one instant.
type Snapshot struct {
	GeneratedAt time.Time `json:"generated_at"`
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
	// Valid: issued and not expired. Expiring: valid, expiring within the window.
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

// Service computes and caches snapshots.
type Service struct {
	Source Source
	Now    func() time.Time
	// MaxAge is how long a snapshot is served before a request computes a new one
	// (default 1 minute; negative: every request computes).
	MaxAge time.Duration
	// ExpiringWithin is the window of "expiring" (default DefaultExpiringWithin).
	ExpiringWithin time.Duration

	mu      sync.Mutex // guards cached
	cached  *Snapshot
	compute sync.Mutex // one scan at a time
	// background is set while RunRefresh keeps the snapshot fresh: requests are then
	// always served from the cache (a scan of a big store takes minutes).
	background atomic.Bool
}

// Snapshot returns the cached snapshot while it is younger than MaxAge (or always, while
// RunRefresh works), else computes one. Concurrent callers wait for a single scan.
func (s *Service) Snapshot(ctx context.Context) (Snapshot, error) {
	if snap, ok := s.fresh(); ok {
		return snap, nil
	}
	s.compute.Lock()
	defer s.compute.Unlock()
	if snap, ok := s.fresh(); ok { // computed while this caller waited
		return snap, nil
	}
	snap, err := s.Compute(ctx)
	if err != nil {
		return Snapshot{}, err
	}
	s.store(snap)
	return snap, nil
}

func (s *Service) fresh() (Snapshot, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cached == nil {
		return Snapshot{}, false
	}
	maxAge := s.MaxAge
	if maxAge == 0 {
		maxAge = time.Minute
	}
	if s.background.Load() || (maxAge > 0 && s.now().Sub(s.cached.GeneratedAt) < maxAge) {
		return *s.cached, true
	}
	return Snapshot{}, false
}

func (s *Service) store(snap Snapshot) {
	s.mu.Lock()
	s.cached = &snap
	s.mu.Unlock()
}

// Refresh computes a snapshot now and caches it (a background job keeps the cache warm
// with it, so that requests do not wait for a scan).
func (s *Service) Refresh(ctx context.Context) error {
	s.compute.Lock()
	defer s.compute.Unlock()
	snap, err := s.Compute(ctx)
	if err != nil {
		return err
	}
	s.store(snap)
	return nil
}

// RunRefresh refreshes the snapshot every period until ctx ends; a failed refresh keeps
// the previous snapshot and is reported to onError (may be nil). The pause after a refresh
// is at least twice as long as the refresh took, so on a store too big for the period the
// scan takes at most a third of one core instead of running back to back.
func (s *Service) RunRefresh(ctx context.Context, every time.Duration, onError func(error)) error {
	if every <= 0 {
		return fmt.Errorf("stats: refresh period %v: must be positive", every)
	}
	s.background.Store(true)
	defer s.background.Store(false)
	for {
		start := time.Now()
		if err := s.Refresh(ctx); err != nil && ctx.Err() == nil && onError != nil {
			onError(err)
		}
		t := time.NewTimer(max(every, 2*time.Since(start)))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

func (s *Service) now() time.Time {
	if s.Now == nil {
		return time.Now().UTC()
	}
	return s.Now().UTC()
}

// Compute scans the source and returns fresh numbers.
func (s *Service) Compute(ctx context.Context) (Snapshot, error) {
	now := s.now()
	within := s.ExpiringWithin
	if within <= 0 {
		within = DefaultExpiringWithin
	}
	facs, err := s.Source.ListFacilities(ctx)
	if err != nil {
		return Snapshot{}, fmt.Errorf("stats: list facilities: %w", err)
	}
	t := newTally()
	for _, f := range facs {
		t.facility(f.ID).Name = f.Name
	}
	err = s.Source.EachDoseStat(ctx, func(facilityID string, status match.Status, idNumber string) error {
		t.dose(facilityID, status, provinceOf(idNumber))
		return nil
	})
	if err != nil {
		return Snapshot{}, fmt.Errorf("stats: doses: %w", err)
	}
	soon := now.Add(within)
	err = s.Source.EachCertificateStat(ctx, func(personID, status string, issuedAt, expiresAt time.Time, facilities []string) error {
		t.certificate(provinceOf(personID), facilities, status, issuedAt, expiresAt, now, soon)
		return nil
	})
	if err != nil {
		return Snapshot{}, fmt.Errorf("stats: certificates: %w", err)
	}
	return t.snapshot(now, within), nil
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

type tally struct {
	total      Counts
	provinces  map[string]*Province
	facilities map[string]*Facility
	days       map[string]int
}

func newCounts() Counts {
	c := Counts{ByStatus: make(map[match.Status]int, len(Statuses))}
	for _, st := range Statuses {
		c.ByStatus[st] = 0
	}
	return c
}

func newTally() *tally {
	t := &tally{total: newCounts(), provinces: map[string]*Province{}, facilities: map[string]*Facility{}, days: map[string]int{}}
	// Every province has a row, so a province with nothing yet shows zeros.
	for code, name := range provinces() {
		t.provinces[code] = &Province{Code: code, Name: name, Counts: newCounts()}
	}
	t.provinces[UnknownProvince] = &Province{Code: UnknownProvince, Name: "", Counts: newCounts()}
	return t
}

func (t *tally) facility(id string) *Facility {
	f, ok := t.facilities[id]
	if !ok {
		f = &Facility{ID: id, Counts: newCounts()}
		t.facilities[id] = f
	}
	return f
}

func (t *tally) province(code string) *Province {
	p, ok := t.provinces[code]
	if !ok { // a code the identity package does not name: kept, unnamed
		p = &Province{Code: code, Counts: newCounts()}
		t.provinces[code] = p
	}
	return p
}

func (c *Counts) addDose(status match.Status) {
	c.Doses++
	c.ByStatus[status]++
}

func (t *tally) dose(facilityID string, status match.Status, province string) {
	if status == "" {
		status = match.Pending
	}
	t.total.addDose(status)
	t.province(province).addDose(status)
	t.facility(facilityID).addDose(status)
}

func (c *Certificates) add(status string, expiresAt, now, soon time.Time) {
	switch {
	case status == vaxpass.CertRevoked:
		c.Revoked++
	case status != vaxpass.CertIssued:
	case !now.Before(expiresAt):
		c.Expired++
	default:
		c.Valid++
		if !expiresAt.After(soon) {
			c.Expiring++
		}
	}
}

func (t *tally) certificate(province string, facilities []string, status string, issuedAt, expiresAt, now, soon time.Time) {
	t.total.Certificates.add(status, expiresAt, now, soon)
	t.province(province).Certificates.add(status, expiresAt, now, soon)
	for i, f := range facilities {
		if i > 0 && f == facilities[i-1] {
			continue
		}
		t.facility(f).Certificates.add(status, expiresAt, now, soon)
	}
	if !issuedAt.IsZero() {
		t.days[issuedAt.In(VietnamTime).Format(time.DateOnly)]++
	}
}

func (t *tally) snapshot(now time.Time, within time.Duration) Snapshot {
	snap := Snapshot{
		GeneratedAt: now, ExpiringWithinDays: int(within / (24 * time.Hour)), TimeZone: "Asia/Ho_Chi_Minh (UTC+7)",
		Statuses: slices.Clone(Statuses), Total: t.total,
	}
	for _, p := range t.provinces {
		snap.Provinces = append(snap.Provinces, *p)
	}
	// By code; the unknown row last.
	slices.SortFunc(snap.Provinces, func(a, b Province) int {
		if (a.Code == UnknownProvince) != (b.Code == UnknownProvince) {
			if a.Code == UnknownProvince {
				return 1
			}
			return -1
		}
		return cmp.Compare(a.Code, b.Code)
	})
	for _, f := range t.facilities {
		snap.Facilities = append(snap.Facilities, *f)
	}
	slices.SortFunc(snap.Facilities, func(a, b Facility) int { return cmp.Compare(a.ID, b.ID) })
	snap.Issuance = []Day{}
	for d, n := range t.days {
		snap.Issuance = append(snap.Issuance, Day{Date: d, Issued: n})
	}
	slices.SortFunc(snap.Issuance, func(a, b Day) int { return cmp.Compare(a.Date, b.Date) })
	return snap
}
