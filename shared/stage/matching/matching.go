// Package matching is the use case the dose store's change feed drives: a new or
// corrected dose record is matched against the registry and its status written back.
package matching

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/vaxpass/vaxpass/shared/domain/identity"
	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// MatchWriter saves a dose's match result. SaveMatch must be conditional on the dose's
// Version as read (returning vaxpass.ErrConflict if it changed) and store Version+1.
type MatchWriter interface {
	SaveMatch(ctx context.Context, d vaxpass.Dose) error
}

// BatchWriter saves many match results in one write (one transaction or request): each
// errs[i] is doses[i]'s own outcome (nil, or wrapping vaxpass.ErrConflict), err a store
// failure. A store that has it makes the change feed's batches far cheaper.
type BatchWriter interface {
	SaveMatchBatch(ctx context.Context, doses []vaxpass.Dose) (errs []error, err error)
}

// Service is the matching use case.
type Service struct {
	Doses   MatchWriter
	Matcher *match.Matcher
	Now     func() time.Time
}

// Outcome of handling one change.
type Outcome int

const (
	// Unchanged: the record's current details were already matched (a re-delivery, or the
	// change event of the matcher's own write).
	Unchanged Outcome = iota
	// Matched: a status was written.
	Matched
	// Superseded: the record changed again meanwhile; that newer change has its own event.
	Superseded
)

// MatchDose matches one dose as it stands in a change event (the new image). It is
// idempotent: handling the same image twice writes once. An error is transient (registry
// or store unavailable): the caller retries the event.
func (s *Service) MatchDose(ctx context.Context, d vaxpass.Dose) (Outcome, error) {
	if !d.NeedsMatch() {
		return Unchanged, nil
	}
	res, err := s.Matcher.Match(d.Record)
	if err != nil {
		return Unchanged, fmt.Errorf("match %s/%s: %w", d.FacilityID, d.SourceID, err)
	}
	Apply(&d, res, s.Now().UTC())
	switch err := s.Doses.SaveMatch(ctx, d); {
	case errors.Is(err, vaxpass.ErrConflict):
		return Superseded, nil
	case err != nil:
		return Unchanged, fmt.Errorf("save match %s/%s: %w", d.FacilityID, d.SourceID, err)
	}
	return Matched, nil
}

// Apply writes a match result onto a dose: status, the details it judged, the person it
// belongs to when verified. A re-match clears the facility signature: the details the
// facility vouched for may have changed, so it must sign again.
func Apply(d *vaxpass.Dose, res match.Result, now time.Time) {
	d.Match = res
	d.MatchedDetails = vaxpass.DetailsHash(&d.Record)
	d.PersonID = ""
	if res.Status == match.Verified {
		if id, err := identity.Parse(d.IDNumber); err == nil {
			d.PersonID = id.Number
		}
	}
	d.SignedAt = time.Time{}
	d.UpdatedAt = now
}

// MatchDoses matches a batch of change-event images, saving the results together when the
// store is a BatchWriter. errs[i] is the transient failure of doses[i], if any.
func (s *Service) MatchDoses(ctx context.Context, doses []vaxpass.Dose) (outcomes []Outcome, errs []error) {
	outcomes = make([]Outcome, len(doses))
	errs = make([]error, len(doses))
	bw, ok := s.Doses.(BatchWriter)
	if !ok {
		for i, d := range doses {
			outcomes[i], errs[i] = s.MatchDose(ctx, d)
		}
		return outcomes, errs
	}
	now := s.Now().UTC()
	var batch []vaxpass.Dose
	var idx []int
	for i, d := range doses {
		if !d.NeedsMatch() {
			continue
		}
		res, err := s.Matcher.Match(d.Record)
		if err != nil {
			errs[i] = fmt.Errorf("match %s/%s: %w", d.FacilityID, d.SourceID, err)
			continue
		}
		Apply(&d, res, now)
		batch = append(batch, d)
		idx = append(idx, i)
	}
	if len(batch) == 0 {
		return outcomes, errs
	}
	itemErrs, err := bw.SaveMatchBatch(ctx, batch)
	for j, i := range idx {
		switch {
		case err != nil:
			errs[i] = fmt.Errorf("save matches: %w", err)
		case errors.Is(itemErrs[j], vaxpass.ErrConflict):
			outcomes[i] = Superseded
		case itemErrs[j] != nil:
			errs[i] = fmt.Errorf("save match %s/%s: %w", batch[j].FacilityID, batch[j].SourceID, itemErrs[j])
		default:
			outcomes[i] = Matched
		}
	}
	return outcomes, errs
}
