// Package audit is the audit trail of ops actions: every correction, revocation,
// reprocessing and renewal run is appended as an Entry -- who, what, when, why, and which
// records by ID -- and ops can query and export the trail. It is append-only: there is no
// update or delete.
//
// The trail holds identifiers only: dose keys (facility/source_id), UVCIs, facility IDs,
// run IDs and counts. It never holds names, dates of birth, ID numbers or HC1 strings, so
// it may be exported and kept for years. (A person's registry ID is their CCCD number,
// personal data: entries name people through their dose keys and certificates instead.)
package audit

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Appender appends entries to the audit trail. Append assigns ID (and At, when zero);
// an entry that fails Validate is refused with an error wrapping ErrInvalid.
type Appender interface {
	Append(ctx context.Context, e Entry) error
}

// Reader queries the audit trail.
type Reader interface {
	// Entries returns the entries matching q in time order, at most q.Limit, and the
	// cursor of the next page ("" when there is none).
	Entries(ctx context.Context, q Query) (entries []Entry, next string, err error)
}

// Actions of the entries this system appends.
const (
	ActionCorrection = "correction"  // a dose record's details corrected (PATCH or re-import)
	ActionRevocation = "revocation"  // a certificate revoked by ops
	ActionRenewal    = "renewal"     // one batch of certificates renewed by a run (their UVCIs)
	ActionRenewalRun = "renewal_run" // a renewal run finished (its counts)
	ActionReprocess  = "reprocess"   // a reprocessing run (stage, selector, counts)
	ActionOpsKey     = "ops_key"     // an ops key created
)

// Entry is one audited action.
type Entry struct {
	// ID is assigned by the trail: unique, and sorting IDs sorts entries by At.
	ID string `json:"id"`
	// At is when the action happened (UTC).
	At time.Time `json:"at"`
	// Actor is who acted: an ops key's actor, "facility:<id>", "cli:<user>" or "scheduler".
	Actor string `json:"actor"`
	// Action is what was done: one of the Action constants, or another lower-case word.
	Action string `json:"action"`
	// Reason is why, as the actor gave it (free text: never put personal data in it).
	Reason string `json:"reason,omitempty"`
	// RunID ties the entries of one run (a renewal or reprocessing run) together.
	RunID string `json:"run_id,omitempty"`
	// Doses are the dose records concerned, as DoseKey strings (facility_id/source_id).
	Doses []string `json:"doses,omitempty"`
	// UVCIs are the certificates concerned.
	UVCIs []string `json:"uvcis,omitempty"`
	// Facilities are the facilities concerned.
	Facilities []string `json:"facilities,omitempty"`
	// Params are the action's non-personal parameters (a window, a stage, a selector).
	Params map[string]string `json:"params,omitempty"`
	// Counts are the action's outcome counts (renewed, skipped, failed...).
	Counts map[string]int64 `json:"counts,omitempty"`
}

// DoseKey formats a dose's key for Entry.Doses.
func DoseKey(facilityID, sourceID string) string { return facilityID + "/" + sourceID }

// Limits of one entry. A run touching more records appends several entries with its RunID.
const (
	MaxIDs       = 10_000 // Doses + UVCIs + Facilities
	MaxIDLength  = 200
	MaxReason    = 1000 // characters
	MaxActor     = 128
	MaxMapKeys   = 32
	MaxParamText = 500
	// MaxBatchIDs is how many IDs callers put in one entry of a batch run.
	MaxBatchIDs = 1000
)

// ErrInvalid: an entry or a query that breaks the rules; the wrapped text names the field.
var ErrInvalid = errors.New("invalid audit input")

var (
	actionRe = regexp.MustCompile(`^[a-z][a-z0-9_]{0,39}$`)
	keyRe    = regexp.MustCompile(`^[a-z][a-z0-9_]{0,39}$`)
)

// Validate checks an entry before it is appended (ID is not checked: the trail sets it).
func (e *Entry) Validate() error {
	var errs []error
	bad := func(field, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%w: %s %s", ErrInvalid, field, fmt.Sprintf(format, a...)))
	}
	if e.At.IsZero() {
		bad("at", "is required")
	}
	if !actionRe.MatchString(e.Action) {
		bad("action", "must be a lower-case word of 1-40 letters, digits and _")
	}
	if err := checkText(e.Actor, MaxActor, false); err != "" || e.Actor == "" {
		if err == "" {
			err = "is required"
		}
		bad("actor", "%s", err)
	}
	if err := checkText(e.Reason, MaxReason, true); err != "" {
		bad("reason", "%s", err)
	}
	if e.RunID != "" {
		if err := checkID(e.RunID); err != "" {
			bad("run_id", "%s", err)
		}
	}
	if n := len(e.Doses) + len(e.UVCIs) + len(e.Facilities); n > MaxIDs {
		bad("doses/uvcis/facilities", "hold %d IDs, more than %d: split the action into several entries", n, MaxIDs)
	}
	for name, ids := range map[string][]string{"doses": e.Doses, "uvcis": e.UVCIs, "facilities": e.Facilities} {
		for i, id := range ids {
			if err := checkID(id); err != "" {
				bad(fmt.Sprintf("%s[%d]", name, i), "%s", err)
				break
			}
		}
	}
	if len(e.Params) > MaxMapKeys {
		bad("params", "has %d keys, more than %d", len(e.Params), MaxMapKeys)
	}
	for _, k := range sortedKeys(e.Params) {
		if !keyRe.MatchString(k) {
			bad("params", "key %q must be a lower-case word", k)
		} else if err := checkText(e.Params[k], MaxParamText, true); err != "" {
			bad("params."+k, "%s", err)
		}
	}
	if len(e.Counts) > MaxMapKeys {
		bad("counts", "has %d keys, more than %d", len(e.Counts), MaxMapKeys)
	}
	for _, k := range sortedKeys(e.Counts) {
		if !keyRe.MatchString(k) {
			bad("counts", "key %q must be a lower-case word", k)
		} else if e.Counts[k] < 0 {
			bad("counts."+k, "is negative")
		}
	}
	return errors.Join(errs...)
}

// checkID accepts identifiers: printable, no spaces or separators, bounded.
func checkID(s string) string {
	switch {
	case s == "":
		return "is empty"
	case len(s) > MaxIDLength:
		return fmt.Sprintf("is longer than %d bytes", MaxIDLength)
	case !utf8.ValidString(s):
		return "is not UTF-8"
	}
	for _, r := range s {
		if !unicode.IsPrint(r) || unicode.IsSpace(r) {
			return "holds a space or control character"
		}
	}
	return ""
}

// checkText accepts free text of at most max characters without control characters
// (newlines allowed when multiline).
func checkText(s string, max int, multiline bool) string {
	if !utf8.ValidString(s) {
		return "is not UTF-8"
	}
	if n := utf8.RuneCountInString(s); n > max {
		return fmt.Sprintf("is %d characters, more than %d", n, max)
	}
	for _, r := range s {
		if unicode.IsControl(r) && !(multiline && (r == '\n' || r == '\t')) {
			return "holds a control character"
		}
	}
	return ""
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Query selects entries: At in [From, To) (zero: unbounded), Action and Actor when set,
// after the cursor After (an Entry.ID or a previous next), at most Limit (1..MaxLimit).
type Query struct {
	From, To time.Time
	Action   string
	Actor    string
	After    string
	Limit    int
}

// MaxLimit bounds one page of a query.
const MaxLimit = 10_000

// Validate checks a query.
func (q *Query) Validate() error {
	var errs []error
	if !q.From.IsZero() && !q.To.IsZero() && !q.From.Before(q.To) {
		errs = append(errs, fmt.Errorf("%w: from must be before to", ErrInvalid))
	}
	if q.Action != "" && !actionRe.MatchString(q.Action) {
		errs = append(errs, fmt.Errorf("%w: action must be a lower-case word", ErrInvalid))
	}
	if q.Actor != "" && checkText(q.Actor, MaxActor, false) != "" {
		errs = append(errs, fmt.Errorf("%w: actor is not a valid actor name", ErrInvalid))
	}
	if q.After != "" && checkID(q.After) != "" {
		errs = append(errs, fmt.Errorf("%w: after is not a cursor", ErrInvalid))
	}
	if q.Limit < 1 || q.Limit > MaxLimit {
		errs = append(errs, fmt.Errorf("%w: limit %d must be 1..%d", ErrInvalid, q.Limit, MaxLimit))
	}
	return errors.Join(errs...)
}

// Matches reports whether e passes the query's filters (time range, action, actor); the
// cursor is the reader's business.
func (q *Query) Matches(e *Entry) bool {
	switch {
	case !q.From.IsZero() && e.At.Before(q.From):
		return false
	case !q.To.IsZero() && !e.At.Before(q.To):
		return false
	case q.Action != "" && e.Action != q.Action:
		return false
	case q.Actor != "" && e.Actor != q.Actor:
		return false
	}
	return true
}

// All pages through every entry matching q (q.Limit is the page size; 0 means 1000),
// calling fn for each in order; it stops at fn's first error.
func All(ctx context.Context, r Reader, q Query, fn func(Entry) error) error {
	if q.Limit == 0 {
		q.Limit = 1000
	}
	for {
		page, next, err := r.Entries(ctx, q)
		if err != nil {
			return err
		}
		for _, e := range page {
			if err := fn(e); err != nil {
				return err
			}
		}
		if next == "" {
			return nil
		}
		q.After = next
	}
}

// Chunks splits ids into slices of at most n (for runs that append one entry per batch).
func Chunks(ids []string, n int) [][]string {
	var out [][]string
	for len(ids) > n {
		out = append(out, ids[:n:n])
		ids = ids[n:]
	}
	if len(ids) > 0 {
		out = append(out, ids)
	}
	return out
}

// CLIActor is the actor of a command run by hand: "cli:<user>" (the OS user, or "unknown").
func CLIActor(user string) string {
	user = strings.TrimSpace(user)
	if user == "" || checkText(user, MaxActor-4, false) != "" {
		user = "unknown"
	}
	return "cli:" + user
}

// More actions of ops.
const (
	ActionFacilityAdd = "facility_add" // a vaccination site registered (its ID)
	ActionRedrive     = "redrive"      // dead letters sent back to their consumer
)

type actorKey struct{}

// WithActor returns ctx carrying who acts (an ops key's actor, "cli:<user>"...): the use
// cases that audit read it with ActorFrom.
func WithActor(ctx context.Context, actor string) context.Context {
	return context.WithValue(ctx, actorKey{}, actor)
}

// ActorFrom returns the actor WithActor put in ctx, or "" when none.
func ActorFrom(ctx context.Context) string {
	s, _ := ctx.Value(actorKey{}).(string)
	return s
}
