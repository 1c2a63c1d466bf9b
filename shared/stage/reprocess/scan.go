package reprocess

import (
	"context"
	"fmt"
	"slices"

	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// StatusLister is a dose store that lists a facility's doses of one match status in
// source_id order (the embedded store's status index, DynamoDB's facility#status index).
type StatusLister interface {
	ListFacilities(ctx context.Context) ([]vaxpass.Facility, error)
	// ListByStatus lists the facility's doses in a status by source_id after the
	// source_id after ("" first), at most limit.
	ListByStatus(ctx context.Context, facilityID string, status match.Status, after string, limit int) ([]vaxpass.Dose, error)
}

// ScanByStatus gives DoseStore's ScanDoses and CountDoses to any StatusLister, so that a
// backend without a scan of its own (the DynamoDB store) can run reprocessing: facility by
// facility in ID order, the statuses' lists merged by source_id. Without a status filter
// it reads every status's list. Doses of unregistered facilities are not seen.
type ScanByStatus struct {
	Lister StatusLister
}

// ScanDoses implements DoseStore.
func (s ScanByStatus) ScanDoses(ctx context.Context, statuses []match.Status, facilities []string, after vaxpass.DoseKey, limit int) ([]vaxpass.Dose, bool, error) {
	if limit < 1 {
		return nil, false, fmt.Errorf("%w: limit %d: must be positive", vaxpass.ErrInvalid, limit)
	}
	facs, sts, err := s.selection(ctx, statuses, facilities)
	if err != nil {
		return nil, false, err
	}
	i, _ := slices.BinarySearch(facs, after.FacilityID)
	var out []vaxpass.Dose
	for ; i < len(facs); i++ {
		fac := facs[i]
		startAfter := ""
		if fac == after.FacilityID {
			startAfter = after.SourceID
		}
		need := limit - len(out)
		// The first need+1 of each sorted list, merged, give the facility's first need+1.
		var merged []vaxpass.Dose
		for _, st := range sts {
			page, err := s.Lister.ListByStatus(ctx, fac, st, startAfter, need+1)
			if err != nil {
				return nil, false, fmt.Errorf("list %s doses of %s: %w", st, fac, err)
			}
			merged = append(merged, page...)
		}
		slices.SortFunc(merged, func(a, b vaxpass.Dose) int {
			if a.SourceID < b.SourceID {
				return -1
			}
			if a.SourceID > b.SourceID {
				return 1
			}
			return 0
		})
		if len(merged) > need {
			return append(out, merged[:need]...), false, nil
		}
		out = append(out, merged...)
		if len(out) == limit {
			return out, false, nil // perhaps the end: the next call answers done
		}
	}
	return out, true, nil
}

// CountDoses implements DoseStore by listing the selection page by page: it reads every
// selected dose once. A backend that can count cheaply should count itself.
func (s ScanByStatus) CountDoses(ctx context.Context, statuses []match.Status, facilities []string) (int64, error) {
	facs, sts, err := s.selection(ctx, statuses, facilities)
	if err != nil {
		return 0, err
	}
	const page = 1000
	var n int64
	for _, fac := range facs {
		for _, st := range sts {
			after := ""
			for {
				ds, err := s.Lister.ListByStatus(ctx, fac, st, after, page)
				if err != nil {
					return 0, fmt.Errorf("list %s doses of %s: %w", st, fac, err)
				}
				n += int64(len(ds))
				if len(ds) < page {
					break
				}
				after = ds[len(ds)-1].SourceID
			}
		}
	}
	return n, nil
}

// selection is the sorted facilities (all registered ones when none is given) and
// statuses (all when none is given) to walk.
func (s ScanByStatus) selection(ctx context.Context, statuses []match.Status, facilities []string) ([]string, []match.Status, error) {
	facs := slices.Clone(facilities)
	if len(facs) == 0 {
		all, err := s.Lister.ListFacilities(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("list facilities: %w", err)
		}
		for _, f := range all {
			facs = append(facs, f.ID)
		}
	}
	slices.Sort(facs)
	sts := slices.Clone(statuses)
	if len(sts) == 0 {
		sts = slices.Clone(knownStatuses)
	}
	slices.Sort(sts)
	return slices.Compact(facs), slices.Compact(sts), nil
}
