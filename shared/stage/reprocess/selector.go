package reprocess

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// Stage names the pipeline stage a run executes again.
type Stage string

// The stages.
const (
	// StageMatch matches the selected doses against the registry again and writes the
	// result where it differs from the stored one.
	StageMatch Stage = "match"
	// StageFacilitySign signs, per facility, the selected verified people whose doses are
	// unsigned or whose stored facility signature no longer covers them, and sends them to
	// central signing.
	StageFacilitySign Stage = "facility-sign"
	// StageCentralSign issues again, from the stored facility signatures, the certificate
	// of every person of the selected doses (a no-op when its content is unchanged).
	StageCentralSign Stage = "central-sign"
)

// Stages lists the stages in pipeline order.
var Stages = []Stage{StageMatch, StageFacilitySign, StageCentralSign}

// DateField is the dose date --from/--to compare.
type DateField string

// The date fields.
const (
	// VaccinatedOn is the day the dose was given (the record's vaccinated_on).
	VaccinatedOn DateField = "vaccinated_on"
	// ReceivedAt is the day the system received the record, in Viet Nam time.
	ReceivedAt DateField = "received_at"
)

// VietnamTime is the zone days are counted in (UTC+7, no daylight saving).
var VietnamTime = time.FixedZone("ICT", 7*3600)

// Filter selects dose records. Empty lists select everything; the lists combine with AND
// between them and OR within one.
type Filter struct {
	Statuses   []match.Status `json:"status,omitempty"`
	Facilities []string       `json:"facility,omitempty"`
	Communes   []string       `json:"commune,omitempty"`
	// DateField says what From and To bound (default VaccinatedOn).
	DateField DateField `json:"date_field,omitempty"`
	// From and To are days (YYYY-MM-DD), both included; either may be empty.
	From string `json:"from,omitempty"`
	To   string `json:"to,omitempty"`
}

// Selector is one reprocessing request: the ops Lambda's direct-invoke payload, the body
// of POST /v1/ops/reprocess and what the CLI's flags build.
type Selector struct {
	Stage Stage `json:"stage"`
	Filter
	// DryRun reports what would change and writes nothing (not even the run's state).
	DryRun bool `json:"dry_run,omitempty"`
	// Actor is who asks (the audit trail's actor); Reason why (free text, no personal data).
	Actor  string `json:"actor,omitempty"`
	Reason string `json:"reason,omitempty"`
	// RunID continues that run instead of looking for one to resume; Stage and the filter
	// may then be left empty (they must equal the run's when given).
	RunID string `json:"run_id,omitempty"`
	// Restart abandons an unfinished run of the same stage and filter and starts afresh
	// (without it, such a run is resumed).
	Restart bool `json:"restart,omitempty"`
}

// Limits of a selector.
const (
	MaxSelectorBytes = 64 << 10
	MaxListItems     = 1000
	maxItemLength    = 64
	MaxReasonRunes   = 1000
	MaxActorRunes    = 128
)

var (
	facilityIDRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	runIDRe      = regexp.MustCompile(`^rp-[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}$`)
)

// knownStatuses are the statuses a filter may name.
var knownStatuses = []match.Status{match.Pending, match.Verified, match.NoID, match.InvalidID, match.NotFound, match.Mismatch}

// FieldError is a selector field that breaks the rules: Field names it ("status[2]"),
// Reason says why without repeating the value. It wraps vaxpass.ErrInvalid.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

// Unwrap makes a FieldError a vaxpass.ErrInvalid.
func (e *FieldError) Unwrap() error { return vaxpass.ErrInvalid }

// DecodeSelector parses a selector strictly (unknown fields rejected, at most
// MaxSelectorBytes) and normalises it (Normalize).
func DecodeSelector(r io.Reader) (Selector, error) {
	var sel Selector
	data, err := io.ReadAll(io.LimitReader(r, MaxSelectorBytes+1))
	if err != nil {
		return sel, fmt.Errorf("%w: read selector: %w", vaxpass.ErrInvalid, err)
	}
	if len(data) > MaxSelectorBytes {
		return sel, fmt.Errorf("%w: selector is larger than %d bytes", vaxpass.ErrInvalid, MaxSelectorBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&sel); err != nil {
		return sel, fmt.Errorf("%w: selector: %s", vaxpass.ErrInvalid, describeJSON(err))
	}
	if dec.More() {
		return sel, fmt.Errorf("%w: selector: more than one JSON value", vaxpass.ErrInvalid)
	}
	if err := sel.Normalize(); err != nil {
		return sel, err
	}
	return sel, nil
}

func describeJSON(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return fmt.Sprintf("%s: must be a JSON %s", te.Field, te.Type.Kind())
	}
	if s, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return s + ": unknown field"
	}
	return "invalid JSON: " + err.Error()
}

// Normalize checks the selector and puts it in canonical form (statuses upper case, lists
// sorted without duplicates, the default date field), so that two selectors choosing the
// same doses compare equal. Errors wrap vaxpass.ErrInvalid and name the field.
func (s *Selector) Normalize() error {
	var errs []error
	bad := func(field, format string, a ...any) {
		errs = append(errs, &FieldError{Field: field, Reason: fmt.Sprintf(format, a...)})
	}
	if s.RunID != "" && !runIDRe.MatchString(s.RunID) {
		bad("run_id", "is not a run ID (rp-YYYYMMDDTHHMMSSZ-xxxxxxxx)")
	}
	if s.Stage == "" && s.RunID == "" {
		bad("stage", "is required: one of %s", stageList())
	} else if s.Stage != "" && !slices.Contains(Stages, s.Stage) {
		bad("stage", "must be one of %s", stageList())
	}
	if err := s.Filter.normalize(); err != nil {
		errs = append(errs, err)
	}
	if err := checkText(s.Reason, MaxReasonRunes); err != "" {
		bad("reason", "%s", err)
	}
	if err := checkText(s.Actor, MaxActorRunes); err != "" || strings.ContainsAny(s.Actor, "\n\t") {
		if err == "" {
			err = "holds a line break or tab"
		}
		bad("actor", "%s", err)
	}
	return errors.Join(errs...)
}

func stageList() string {
	names := make([]string, len(Stages))
	for i, st := range Stages {
		names[i] = string(st)
	}
	return strings.Join(names, ", ")
}

func checkText(s string, maxRunes int) string {
	switch {
	case !utf8.ValidString(s):
		return "is not valid UTF-8"
	case utf8.RuneCountInString(s) > maxRunes:
		return fmt.Sprintf("is longer than %d characters", maxRunes)
	case strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 && r != '\n' && r != '\t' || r == 0x7f }):
		return "holds a control character"
	}
	return ""
}

func (f *Filter) normalize() error {
	var errs []error
	bad := func(field, format string, a ...any) {
		errs = append(errs, &FieldError{Field: field, Reason: fmt.Sprintf(format, a...)})
	}
	for i, st := range f.Statuses {
		st = match.Status(strings.ToUpper(strings.TrimSpace(string(st))))
		if !slices.Contains(knownStatuses, st) {
			bad(fmt.Sprintf("status[%d]", i), "is not a match status (%s)", statusList())
		}
		f.Statuses[i] = st
	}
	for i := range f.Facilities {
		f.Facilities[i] = strings.TrimSpace(f.Facilities[i])
		if !facilityIDRe.MatchString(f.Facilities[i]) {
			bad(fmt.Sprintf("facility[%d]", i), "is not a facility ID (1-64 of A-Z a-z 0-9 _ -)")
		}
	}
	for i := range f.Communes {
		f.Communes[i] = strings.TrimSpace(f.Communes[i])
		if f.Communes[i] == "" || len(f.Communes[i]) > maxItemLength || strings.ContainsFunc(f.Communes[i], func(r rune) bool { return r < 0x21 || r == 0x7f }) {
			bad(fmt.Sprintf("commune[%d]", i), "is not a commune code (1-64 printable characters)")
		}
	}
	for name, n := range map[string]int{"status": len(f.Statuses), "facility": len(f.Facilities), "commune": len(f.Communes)} {
		if n > MaxListItems {
			bad(name, "lists %d values, more than %d", n, MaxListItems)
		}
	}
	f.Statuses = sortedUnique(f.Statuses)
	f.Facilities = sortedUnique(f.Facilities)
	f.Communes = sortedUnique(f.Communes)
	switch f.DateField {
	case "":
		f.DateField = VaccinatedOn
	case VaccinatedOn, ReceivedAt:
	default:
		bad("date_field", "must be %s or %s", VaccinatedOn, ReceivedAt)
	}
	for field, v := range map[string]string{"from": f.From, "to": f.To} {
		if v == "" {
			continue
		}
		if _, err := time.Parse(time.DateOnly, v); err != nil {
			bad(field, "is not a day YYYY-MM-DD")
		}
	}
	if f.From != "" && f.To != "" && f.From > f.To {
		bad("from", "is after to")
	}
	return errors.Join(errs...)
}

func statusList() string {
	names := make([]string, len(knownStatuses))
	for i, st := range knownStatuses {
		names[i] = string(st)
	}
	return strings.Join(names, ", ")
}

func sortedUnique[T ~string](in []T) []T {
	if len(in) == 0 {
		return nil
	}
	out := slices.Clone(in)
	slices.Sort(out)
	return slices.Compact(out)
}

// Matches reports whether the filter selects d. The store narrows the scan by status and
// facility through its indexes; Matches is the whole rule.
func (f *Filter) Matches(d *vaxpass.Dose) bool {
	if len(f.Statuses) > 0 && !slices.Contains(f.Statuses, d.Match.Status) {
		return false
	}
	if len(f.Facilities) > 0 && !slices.Contains(f.Facilities, d.FacilityID) {
		return false
	}
	if len(f.Communes) > 0 && !slices.Contains(f.Communes, d.CommuneCode) {
		return false
	}
	if f.From == "" && f.To == "" {
		return true
	}
	day := d.VaccinatedOn
	if f.DateField == ReceivedAt {
		day = d.ReceivedAt.In(VietnamTime).Format(time.DateOnly)
	}
	return (f.From == "" || day >= f.From) && (f.To == "" || day <= f.To)
}

// IsZero reports whether the filter selects every dose.
func (f *Filter) IsZero() bool {
	return len(f.Statuses) == 0 && len(f.Facilities) == 0 && len(f.Communes) == 0 && f.From == "" && f.To == ""
}

// String renders the filter as the CLI flags that select the same doses.
func (f Filter) String() string {
	var parts []string
	join := func(flag string, vals []string) {
		if len(vals) > 0 {
			parts = append(parts, "--"+flag+" "+strings.Join(vals, ","))
		}
	}
	statuses := make([]string, len(f.Statuses))
	for i, s := range f.Statuses {
		statuses[i] = string(s)
	}
	join("status", statuses)
	join("facility", f.Facilities)
	join("commune", f.Communes)
	if f.From != "" || f.To != "" {
		if f.DateField != "" && f.DateField != VaccinatedOn {
			parts = append(parts, "--date "+string(f.DateField))
		}
		if f.From != "" {
			parts = append(parts, "--from "+f.From)
		}
		if f.To != "" {
			parts = append(parts, "--to "+f.To)
		}
	}
	if len(parts) == 0 {
		return "(all doses)"
	}
	return strings.Join(parts, " ")
}

// sameWork reports whether two normalised selectors ask for the same stage over the same
// doses (a run of one may be resumed for the other).
func sameWork(a Stage, fa Filter, b Stage, fb Filter) bool {
	return a == b && slices.Equal(fa.Statuses, fb.Statuses) && slices.Equal(fa.Facilities, fb.Facilities) &&
		slices.Equal(fa.Communes, fb.Communes) && fa.DateField == fb.DateField && fa.From == fb.From && fa.To == fb.To
}
