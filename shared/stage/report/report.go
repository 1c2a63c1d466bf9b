// Package report is the citizen's report: a person whose lookup finds nothing says who
// they are and where they were vaccinated, and the report lands on that facility's and
// that commune's worklists for a person to check. The answer is a reference whatever the
// registry holds: nothing in it (nor in its status before the record is corrected) tells
// whether such a person or dose record exists.
//
// A report is kept apart from the dose records on purpose: it is never matched, never
// signed and never certified. It only points a clerk at a dose record to correct (PATCH
// /v1/doses/{source_id} or the import); the corrected record then goes the usual way
// (matched, signed by its facility, certified). A report is resolved when the lookup
// with the reported details finds the passport: its status tells no more than that
// lookup itself would.
package report

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/vaxpass/vaxpass/shared/domain/dose"
	"github.com/vaxpass/vaxpass/shared/domain/identity"
	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/stage/lookup"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// Status of a report (contract: received|in_review|resolved|rejected).
type Status string

// Statuses. Received is what a report is stored with; Resolved is read, not stored (the
// lookup with the reported details finds the passport). InReview and Rejected are a
// reviewer's to set; no route sets them yet.
const (
	Received Status = "received"
	InReview Status = "in_review"
	Resolved Status = "resolved"
	Rejected Status = "rejected"
)

// StatusReported is the match status a report shows with in a worklist: it is no dose
// record, and no match ran.
const StatusReported match.Status = "REPORTED"

// Limits of a report's fields and of the reports per ID number.
const (
	MaxNote  = 500
	MaxPhone = 20
	// DefaultMaxPerID reports of one ID number are taken in any DefaultWindow: enough
	// to correct a typo in one's own report, too few to flood a commune's worklist
	// with one identity.
	DefaultMaxPerID = 5
	DefaultWindow   = time.Hour
	// ReferenceLen is the length of a reference: 128 random bits, base32 without padding.
	ReferenceLen = 26
)

// Report is one citizen's report as stored.
type Report struct {
	Reference   string    `json:"reference"`
	IDNumber    string    `json:"id_number"`
	FullName    string    `json:"full_name"`
	DOB         string    `json:"dob"`
	Gender      string    `json:"gender"`
	FacilityID  string    `json:"facility_id"`
	CommuneCode string    `json:"commune_code"`
	Phone       string    `json:"phone,omitempty"`
	Note        string    `json:"note,omitempty"`
	Status      Status    `json:"status"`
	ReceivedAt  time.Time `json:"received_at"`
}

// Input is what the citizen types (POST /v1/reports).
type Input struct {
	IDNumber    string `json:"id_number"`
	FullName    string `json:"full_name"`
	DOB         string `json:"dob"`
	Gender      string `json:"gender"`
	FacilityID  string `json:"facility_id"`
	CommuneCode string `json:"commune_code"`
	Phone       string `json:"phone"`
	Note        string `json:"note"`
}

// Scope selects the reports of one facility or of one commune (exactly one is set).
type Scope struct {
	FacilityID  string
	CommuneCode string
}

// Store keeps reports.
type Store interface {
	// PutReport stores a new report (vaxpass.ErrConflict if its reference is taken).
	PutReport(ctx context.Context, r Report) error
	// GetReport reads one (vaxpass.ErrNotFound when unknown).
	GetReport(ctx context.Context, reference string) (Report, error)
	// ListReports lists a scope's reports oldest first, strictly after the cursor (a
	// previous page's Cursor of its last report; "" from the start), at most limit.
	ListReports(ctx context.Context, scope Scope, after string, limit int) ([]Report, error)
}

// Cursor is a report's place in its scope's list: received time (fixed width, so that
// the strings sort as the times) then reference.
func Cursor(r Report) string {
	return r.ReceivedAt.UTC().Format("20060102T150405.000000000Z") + "#" + r.Reference
}

// FacilityReader tells whether a facility is registered.
type FacilityReader interface {
	GetFacility(ctx context.Context, id string) (vaxpass.Facility, error)
}

// Finder is the lookup (unlimited: the limit is the report's route's and ID's).
type Finder interface {
	Find(ctx context.Context, q lookup.Query) (vaxpass.Certificate, error)
}

// Service is the report use case.
type Service struct {
	Store      Store
	Facilities FacilityReader
	Lookup     Finder
	// Limit counts every report of an ID number (NewLimiter); nil: no per-ID limit.
	Limit *lookup.Limiter
	Now   func() time.Time
	Rand  io.Reader
}

// NewLimiter is the per-ID limit of reports over the lookup's attempt store: its keys
// are hashed under a secret of their own (derived from the lookup's), so reports and
// failed lookups of one ID number are counted apart.
func NewLimiter(store lookup.AttemptStore, lookupSecret []byte, now func() time.Time) *lookup.Limiter {
	m := hmac.New(sha256.New, lookupSecret)
	m.Write([]byte("vaxpass report attempts v1"))
	return &lookup.Limiter{Store: store, Secret: m.Sum(nil), Max: DefaultMaxPerID, Window: DefaultWindow, Now: now}
}

var (
	communeRe = regexp.MustCompile(`^[0-9]{5,7}$`)
	phoneRe   = regexp.MustCompile(`^\+?[0-9][0-9 .-]{6,18}[0-9]$`)
	refRe     = regexp.MustCompile(`^[A-Z2-7]{26}$`)
)

// Normalize trims the fields and reads dates and genders as people type them.
func (in *Input) Normalize() {
	for _, p := range []*string{&in.IDNumber, &in.FullName, &in.DOB, &in.Gender, &in.FacilityID, &in.CommuneCode, &in.Phone, &in.Note} {
		*p = strings.TrimSpace(*p)
	}
	in.DOB = dose.NormalizeDate(in.DOB)
	in.Gender = dose.NormalizeGender(in.Gender)
	if id, err := identity.Parse(in.IDNumber); err == nil {
		in.IDNumber = id.Number
	}
}

// Validate checks a normalized input and returns every problem, in field order.
func (in *Input) Validate(today time.Time) []dose.FieldError {
	var errs []dose.FieldError
	add := func(field, code, msg string) {
		errs = append(errs, dose.FieldError{Field: field, Code: code, Message: msg})
	}
	text := func(field, v string, max int, required bool) bool {
		switch {
		case v == "" && required:
			add(field, dose.CodeRequired, "is required")
		case !utf8.ValidString(v):
			add(field, dose.CodeFormat, "is not valid UTF-8")
		case utf8.RuneCountInString(v) > max:
			add(field, dose.CodeTooLong, "is longer than the limit")
		case strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 && r != '\n' || r == 0x7f }):
			add(field, dose.CodeFormat, "contains control characters")
		default:
			return v != ""
		}
		return false
	}
	if text("id_number", in.IDNumber, dose.MaxShort, true) {
		if _, err := identity.Parse(in.IDNumber); err != nil {
			add("id_number", dose.CodeFormat, "must be a CCCD (12 digits) or CMND (9 digits) number")
		}
	}
	if text("full_name", in.FullName, dose.MaxName, true) && strings.Contains(in.FullName, "\n") {
		add("full_name", dose.CodeFormat, "contains control characters")
	}
	if text("dob", in.DOB, 10, true) {
		if _, err := time.Parse("2006-01-02", in.DOB); err != nil {
			add("dob", dose.CodeFormat, "must be DD/MM/YYYY or YYYY-MM-DD")
		} else if in.DOB > today.Format("2006-01-02") {
			add("dob", dose.CodeRange, "is in the future")
		}
	}
	if in.Gender == "" {
		add("gender", dose.CodeRequired, "is required")
	} else if in.Gender != dose.Male && in.Gender != dose.Female {
		add("gender", dose.CodeValue, "must be male or female (Nam or Nữ)")
	}
	if text("facility_id", in.FacilityID, dose.MaxShort, true) && strings.ContainsAny(in.FacilityID, "/?%#\n") {
		add("facility_id", dose.CodeFormat, "is not a facility ID")
	}
	if text("commune_code", in.CommuneCode, 7, true) && !communeRe.MatchString(in.CommuneCode) {
		add("commune_code", dose.CodeFormat, "must be a commune code of 5 to 7 digits")
	}
	if text("phone", in.Phone, MaxPhone, false) && !phoneRe.MatchString(in.Phone) {
		add("phone", dose.CodeFormat, "must be a phone number (digits, optionally +, spaces, dots or dashes)")
	}
	text("note", in.Note, MaxNote, false)
	return errs
}

// FieldError is a report refused for one field: errors.Is(err, vaxpass.ErrInvalid).
type FieldError struct{ dose.FieldError }

func (e *FieldError) Error() string { return "report: " + e.FieldError.Error() }

// Unwrap makes errors.Is(err, vaxpass.ErrInvalid) hold.
func (e *FieldError) Unwrap() error { return vaxpass.ErrInvalid }

// errKept is the limiter's "failure" that keeps a stored report counted (Guard takes
// back anything else).
var errKept = fmt.Errorf("report stored: %w", vaxpass.ErrNotFound)

// Submit validates and stores a report. Its answer is the same whatever the registry
// and the dose records hold: only the input's form, the facility's registration (public
// knowledge) and the per-ID limit (*lookup.LockedError) can refuse it.
func (s *Service) Submit(ctx context.Context, in Input) (Report, error) {
	in.Normalize()
	now := s.now().UTC()
	if errs := in.Validate(now); len(errs) > 0 {
		return Report{}, &FieldError{errs[0]}
	}
	if _, err := s.Facilities.GetFacility(ctx, in.FacilityID); errors.Is(err, vaxpass.ErrNotFound) {
		return Report{}, &FieldError{dose.FieldError{Field: "facility_id", Code: dose.CodeValue, Message: "is not a registered facility"}}
	} else if err != nil {
		return Report{}, fmt.Errorf("report: read facility: %w", err)
	}
	r := Report{
		IDNumber: in.IDNumber, FullName: in.FullName, DOB: in.DOB, Gender: in.Gender,
		FacilityID: in.FacilityID, CommuneCode: in.CommuneCode, Phone: in.Phone, Note: in.Note,
		Status: Received, ReceivedAt: now,
	}
	store := func(ctx context.Context) error {
		for attempt := 0; ; attempt++ {
			ref, err := s.newReference()
			if err != nil {
				return err
			}
			r.Reference = ref
			err = s.Store.PutReport(ctx, r)
			if errors.Is(err, vaxpass.ErrConflict) && attempt < 2 {
				continue // 128 random bits: never in practice, but a reference is never reused
			}
			if err != nil {
				return fmt.Errorf("report: store: %w", err)
			}
			return errKept
		}
	}
	var err error
	if s.Limit != nil {
		err = s.Limit.Guard(ctx, in.IDNumber, store)
	} else {
		err = store(ctx)
	}
	if err != nil && !errors.Is(err, errKept) {
		return Report{}, err
	}
	return r, nil
}

func (s *Service) newReference() (string, error) {
	var b [16]byte
	rd := s.Rand
	if rd == nil {
		rd = rand.Reader
	}
	if _, err := io.ReadFull(rd, b[:]); err != nil {
		return "", fmt.Errorf("report: reference: %w", err)
	}
	return base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]), nil
}

// ValidReference reports whether ref has a reference's form (checked before any read).
func ValidReference(ref string) bool { return refRe.MatchString(ref) }

// Get returns a report with its status as of now (vaxpass.ErrNotFound when unknown).
func (s *Service) Get(ctx context.Context, ref string) (Report, error) {
	if !ValidReference(ref) {
		return Report{}, fmt.Errorf("report: malformed reference: %w", vaxpass.ErrNotFound)
	}
	r, err := s.Store.GetReport(ctx, ref)
	if err != nil {
		return Report{}, fmt.Errorf("report: read: %w", err)
	}
	return s.withStatus(ctx, r)
}

// Status is a report's status as of now.
func (s *Service) Status(ctx context.Context, ref string) (Status, error) {
	r, err := s.Get(ctx, ref)
	return r.Status, err
}

// withStatus reads whether an open report is resolved: the lookup with its details finds
// the passport.
func (s *Service) withStatus(ctx context.Context, r Report) (Report, error) {
	if r.Status != Received && r.Status != InReview {
		return r, nil
	}
	_, err := s.Lookup.Find(ctx, lookup.Query{IDNumber: r.IDNumber, FullName: r.FullName, DOB: r.DOB})
	switch {
	case err == nil:
		r.Status = Resolved
	case !errors.Is(err, vaxpass.ErrNotFound):
		return r, fmt.Errorf("report: status: %w", err)
	}
	return r, nil
}

// MaxList is the most reports one List answers.
const MaxList = 200

// List returns a scope's reports (a facility's or a commune's worklist of reports), each
// with its status as of now, and the cursor of the next page ("" at the end).
func (s *Service) List(ctx context.Context, scope Scope, after string, limit int) ([]Report, string, error) {
	if (scope.FacilityID == "") == (scope.CommuneCode == "") {
		return nil, "", fmt.Errorf("%w: a report list is a facility's or a commune's", vaxpass.ErrInvalid)
	}
	if limit <= 0 || limit > MaxList {
		limit = MaxList
	}
	rs, err := s.Store.ListReports(ctx, scope, after, limit)
	if err != nil {
		return nil, "", fmt.Errorf("report: list: %w", err)
	}
	for i := range rs {
		if rs[i], err = s.withStatus(ctx, rs[i]); err != nil {
			return nil, "", err
		}
	}
	next := ""
	if len(rs) == limit {
		next = Cursor(rs[len(rs)-1])
	}
	return rs, next, nil
}

// Record and Result are a report as a worklist row (worklist.Row{Facility: r.FacilityID,
// Record: r.Record(), Result: r.Result()}): the citizen's details where a dose record has
// them, source_id "report:"+reference, status REPORTED, the note as a reason. It has no
// vaccine, dose or date: it is not a dose record, and importing it corrects nothing.
// (Not a worklist.Row itself: this package is linked by every API function, the
// worklist's spreadsheet codec only by the facility API.)
func (r Report) Record() dose.Record {
	return dose.Record{
		SourceID: "report:" + r.Reference, FullName: r.FullName, DOB: r.DOB, Gender: r.Gender,
		IDNumber: r.IDNumber, Phone: r.Phone, Nationality: "VN", CommuneCode: r.CommuneCode,
	}
}

// Result is the report's row status: REPORTED, reason CITIZEN_REPORT (reasons are codes;
// the citizen's note is in the report itself, GET /v1/reports).
func (r Report) Result() match.Result {
	return match.Result{Status: StatusReported, Reasons: []string{"CITIZEN_REPORT"}}
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}
