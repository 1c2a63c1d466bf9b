// Package ingest is the upload use case: a facility's batch of dose records is judged
// record by record and the valid ones are stored idempotently on facility + source_id.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/vaxpass/vaxpass/shared/domain/dose"
	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// MaxBatch is the most records one upload may carry; larger uploads are split by the caller.
const MaxBatch = 1000

// DoseWriter stores doses. PutNew writes each dose only if its key is absent and reports,
// per dose, whether it was created (false: a duplicate of a stored one). UpdateDose
// rewrites a stored dose, conditional on its Version as read (vaxpass.ErrConflict).
type DoseWriter interface {
	PutNew(ctx context.Context, doses []vaxpass.Dose) (created []bool, err error)
	GetDose(ctx context.Context, key vaxpass.DoseKey) (vaxpass.Dose, error)
	UpdateDose(ctx context.Context, d vaxpass.Dose) error
}

// Service is the upload use case.
type Service struct {
	Doses DoseWriter
	Now   func() time.Time
}

// Verdicts of one record (contract: accepted|duplicate|rejected).
const (
	Accepted  = "accepted"
	Duplicate = "duplicate"
	Rejected  = "rejected"
)

// Result is the verdict on one record; Row is set for Excel imports.
type Result struct {
	Row      int               `json:"row,omitempty"`
	SourceID string            `json:"source_id"`
	Status   string            `json:"status"`
	Errors   []dose.FieldError `json:"errors,omitempty"`
}

// Report is the answer to an upload (contract: POST /v1/doses).
type Report struct {
	Accepted   int      `json:"accepted"`
	Duplicates int      `json:"duplicates"`
	Rejected   int      `json:"rejected"`
	Results    []Result `json:"results"`
}

// Item is one record to ingest; Row is its spreadsheet row (0 for API uploads) and
// Errors are problems found before validation (for example a cell that is not a number).
// Corrected marks a row of a worklist sent back with corrections typed in: it corrects the
// stored record of the same source_id (which is then matched again) rather than being a
// duplicate of it.
type Item struct {
	Row       int
	Record    dose.Record
	Errors    []dose.FieldError
	Corrected bool
}

// Submit judges and stores a batch. One bad record never rejects the others; a source_id
// repeated within the batch is a duplicate of its first occurrence. An error is returned
// only when the store fails, and then nothing of the batch is reported as accepted.
func (s *Service) Submit(ctx context.Context, facilityID string, items []Item) (Report, error) {
	if len(items) > MaxBatch {
		return Report{}, fmt.Errorf("%w: batch of %d records is over the limit of %d", vaxpass.ErrInvalid, len(items), MaxBatch)
	}
	now := s.Now().UTC()
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	rep := Report{Results: make([]Result, len(items))}
	var batch []vaxpass.Dose
	var batchIdx []int
	seen := make(map[string]int, len(items))
	for i := range items {
		it := &items[i]
		rec := it.Record
		rec.Normalize()
		res := Result{Row: it.Row, SourceID: rec.SourceID}
		// Problems found while reading the record make its other fields unreliable:
		// report those alone.
		errs := it.Errors
		if len(errs) == 0 {
			errs = rec.Validate(today)
		}
		switch {
		case len(errs) > 0:
			res.Status, res.Errors = Rejected, errs
		case seenBefore(seen, rec.SourceID, i):
			res.Status = Duplicate
		case it.Corrected:
			status, err := s.correct(ctx, facilityID, rec, now)
			if err != nil {
				return Report{}, err
			}
			if status == "" { // nothing stored under that source_id: a new record after all
				batch = append(batch, newDose(facilityID, rec, now))
				batchIdx = append(batchIdx, i)
			}
			res.Status = status
		default:
			batch = append(batch, newDose(facilityID, rec, now))
			batchIdx = append(batchIdx, i)
		}
		rep.Results[i] = res
	}
	if len(batch) > 0 {
		created, err := s.Doses.PutNew(ctx, batch)
		if err != nil {
			return Report{}, fmt.Errorf("store doses: %w", err)
		}
		for j, i := range batchIdx {
			if created[j] {
				rep.Results[i].Status = Accepted
			} else {
				rep.Results[i].Status = Duplicate
			}
		}
	}
	for _, r := range rep.Results {
		switch r.Status {
		case Accepted:
			rep.Accepted++
		case Duplicate:
			rep.Duplicates++
		default:
			rep.Rejected++
		}
	}
	return rep, nil
}

func seenBefore(seen map[string]int, id string, i int) bool {
	if _, ok := seen[id]; ok {
		return true
	}
	seen[id] = i
	return false
}

func newDose(facilityID string, rec dose.Record, now time.Time) vaxpass.Dose {
	return vaxpass.Dose{
		FacilityID: facilityID,
		Record:     rec,
		Match:      match.Result{Status: match.Pending},
		ReceivedAt: now,
		UpdatedAt:  now,
		Version:    1,
	}
}

// correct applies a corrected record onto the stored one: Accepted when it changed
// something (the change feed then re-matches it), Duplicate when it changed nothing, ""
// when no record has that source_id. A concurrent change is retried a few times.
func (s *Service) correct(ctx context.Context, facilityID string, rec dose.Record, now time.Time) (string, error) {
	key := vaxpass.DoseKey{FacilityID: facilityID, SourceID: rec.SourceID}
	for attempt := 0; ; attempt++ {
		d, err := s.Doses.GetDose(ctx, key)
		if errors.Is(err, vaxpass.ErrNotFound) {
			return "", nil
		}
		if err != nil {
			return "", fmt.Errorf("read dose to correct: %w", err)
		}
		if d.Record == rec {
			return Duplicate, nil
		}
		d.Record = rec
		d.UpdatedAt = now
		// What the facility signed has changed: it signs again (after a re-match when
		// personal details changed), and central signing re-issues.
		d.SignedAt = time.Time{}
		switch err := s.Doses.UpdateDose(ctx, d); {
		case err == nil:
			return Accepted, nil
		case errors.Is(err, vaxpass.ErrConflict) && attempt < 3:
			continue
		default:
			return "", fmt.Errorf("store correction: %w", err)
		}
	}
}
