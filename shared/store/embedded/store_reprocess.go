package embedded

// The reprocessing side of the store (shared/stage/reprocess): selecting doses by status and
// facility through the indexes in the stable (facility_id, source_id) order a run's cursor
// walks, and keeping the state and change journal of runs.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/store/doseitem"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

var (
	// reprocessBucketRuns: run ID -> the run's state document (reprocess.Run JSON).
	reprocessBucketRuns = []byte("reprocess_runs")
	// reprocessBucketChanges: run ID 0 unit ID -> outcome, the journal of a run's changes.
	reprocessBucketChanges = []byte("reprocess_changes")
)

// Bounds of the reprocessing reads.
const (
	// ReprocessMaxScan bounds one ScanDoses page (one read transaction).
	ReprocessMaxScan = 10_000
)

// reprocessCountChunk is how many index keys one read transaction of CountDoses counts:
// long read transactions hold back writers that need to grow the file. (A variable so
// that tests can cross chunk boundaries with a few keys.)
var reprocessCountChunk = 1 << 20

// ScanDoses implements reprocess.DoseStore: in (facility_id, source_id) byte order after
// the key after (the zero key: from the start; (f, ""): from facility f on), at most limit doses whose stored match
// status is one of statuses and whose facility is one of facilities (either list empty:
// any). With statuses it walks the status index, merging the statuses' ranges of each
// facility, so a selective status costs what it selects. done is true when nothing of
// the selection follows the doses returned (false may be followed by an empty page).
func (s *Store) ScanDoses(ctx context.Context, statuses []match.Status, facilities []string, after vaxpass.DoseKey, limit int) ([]vaxpass.Dose, bool, error) {
	statusParts, facs, err := reprocessCheckSelection(statuses, facilities)
	if err == nil && (limit < 1 || limit > ReprocessMaxScan) {
		err = fmt.Errorf("%w: limit %d: must be 1..%d", vaxpass.ErrInvalid, limit, ReprocessMaxScan)
	}
	if err == nil && after != (vaxpass.DoseKey{}) {
		// (facility, ""): from the facility's first dose (where a part of a run starts).
		err = errors.Join(storeCheckPart("facility_id", after.FacilityID, true), storeCheckPart("source_id", after.SourceID, false))
	}
	if err != nil {
		return nil, false, fmt.Errorf("embedded: scan doses: %w", err)
	}
	var out []vaxpass.Dose
	done := false
	err = s.storeView(ctx, func(tx *bolt.Tx) error {
		out = out[:0]
		index := tx.Bucket(storeBucketDoses)
		if len(statusParts) > 0 {
			index = tx.Bucket(storeBucketDoseStatus)
		}
		fac, ok := reprocessFirstFacility(index, facs, after.FacilityID)
		for ok {
			startAfter := ""
			if fac == after.FacilityID {
				startAfter = after.SourceID
			}
			more, err := reprocessScanFacility(tx, fac, statusParts, startAfter, limit-len(out), &out)
			if err != nil {
				return err
			}
			if more || len(out) == limit {
				return nil
			}
			fac, ok = reprocessNextFacility(index, facs, fac)
		}
		done = true
		return nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("embedded: scan doses: %w", err)
	}
	return out, done, nil
}

// reprocessScanFacility appends to out at most need doses of facility fac after the
// source_id startAfter ("" from the first), restricted to statuses (none: any); more is
// true when doses of the facility are left after the last appended.
func reprocessScanFacility(tx *bolt.Tx, fac string, statuses []string, startAfter string, need int, out *[]vaxpass.Dose) (more bool, err error) {
	if len(statuses) == 0 {
		prefix := storePrefix(fac)
		c := tx.Bucket(storeBucketDoses).Cursor()
		k, v := storeSeekAfter(c, prefix, startAfter)
		for ; k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			if need == 0 {
				return true, nil
			}
			d, err := reprocessDecode(fac, string(k[len(prefix):]), v)
			if err != nil {
				return false, err
			}
			*out = append(*out, d)
			need--
		}
		return false, nil
	}
	// The source_ids of each status's range are sorted: the first need+1 of each, merged,
	// give the first need+1 of the facility.
	var ids []string
	c := tx.Bucket(storeBucketDoseStatus).Cursor()
	for _, st := range statuses {
		prefix := storePrefix(fac, st)
		n := 0
		for k, _ := storeSeekAfter(c, prefix, startAfter); k != nil && bytes.HasPrefix(k, prefix) && n <= need; k, _ = c.Next() {
			ids = append(ids, string(k[len(prefix):]))
			n++
		}
	}
	slices.Sort(ids)
	if len(ids) > need {
		ids, more = ids[:need], true
	}
	for _, id := range ids {
		d, err := storeMustGetDose(tx, vaxpass.DoseKey{FacilityID: fac, SourceID: id})
		if err != nil {
			return false, err
		}
		*out = append(*out, d)
	}
	return more, nil
}

func reprocessDecode(fac, src string, v []byte) (vaxpass.Dose, error) {
	var d vaxpass.Dose
	if err := doseitem.FromDoc(string(v), &d); err != nil {
		return d, fmt.Errorf("%w: dose %s/%s: %w", storeErrCorrupt, fac, src, err)
	}
	return d, nil
}

// reprocessFirstFacility is the first facility at or after from: of the sorted list when
// one is given, else of the index's keys (facility 0 ...).
func reprocessFirstFacility(index *bolt.Bucket, facs []string, from string) (string, bool) {
	if len(facs) > 0 {
		i, _ := slices.BinarySearch(facs, from)
		if i < len(facs) {
			return facs[i], true
		}
		return "", false
	}
	k, _ := index.Cursor().Seek([]byte(from))
	return reprocessFacilityOf(k)
}

// reprocessNextFacility is the facility after fac.
func reprocessNextFacility(index *bolt.Bucket, facs []string, fac string) (string, bool) {
	if len(facs) > 0 {
		i, found := slices.BinarySearch(facs, fac)
		if found {
			i++
		}
		if i < len(facs) {
			return facs[i], true
		}
		return "", false
	}
	// Past every key of fac: fac 0x00 ... < fac 0x01.
	k, _ := index.Cursor().Seek(append(storeKey(fac), 1))
	return reprocessFacilityOf(k)
}

func reprocessFacilityOf(k []byte) (string, bool) {
	if k == nil {
		return "", false
	}
	if i := bytes.IndexByte(k, 0); i >= 0 {
		return string(k[:i]), true
	}
	return string(k), true
}

// CountDoses implements reprocess.DoseStore: how many doses ScanDoses would return over
// the whole selection. It counts status-index keys (no dose is read), in read
// transactions of at most 1M keys: about 150M keys for the whole store.
func (s *Store) CountDoses(ctx context.Context, statuses []match.Status, facilities []string) (int64, error) {
	statusParts, facs, err := reprocessCheckSelection(statuses, facilities)
	if err != nil {
		return 0, fmt.Errorf("embedded: count doses: %w", err)
	}
	var prefixes [][]byte
	switch {
	case len(facs) == 0 && len(statusParts) == 0:
		prefixes = [][]byte{nil}
	case len(statusParts) == 0:
		for _, f := range facs {
			prefixes = append(prefixes, storePrefix(f))
		}
	default:
		if len(facs) == 0 {
			err := s.storeView(ctx, func(tx *bolt.Tx) error {
				index := tx.Bucket(storeBucketDoseStatus)
				for f, ok := reprocessFirstFacility(index, nil, ""); ok; f, ok = reprocessNextFacility(index, nil, f) {
					facs = append(facs, f)
				}
				return nil
			})
			if err != nil {
				return 0, fmt.Errorf("embedded: count doses: %w", err)
			}
		}
		for _, f := range facs {
			for _, st := range statusParts {
				prefixes = append(prefixes, storePrefix(f, st))
			}
		}
	}
	var total int64
	for _, p := range prefixes {
		n, err := s.reprocessCountPrefix(ctx, storeBucketDoseStatus, p)
		if err != nil {
			return 0, fmt.Errorf("embedded: count doses: %w", err)
		}
		total += n
	}
	return total, nil
}

func (s *Store) reprocessCountPrefix(ctx context.Context, bucket, prefix []byte) (int64, error) {
	var total int64
	start := prefix // inclusive: the first key not counted yet
	for {
		n := 0
		var next []byte
		err := s.storeView(ctx, func(tx *bolt.Tx) error {
			c := tx.Bucket(bucket).Cursor()
			for k, _ := c.Seek(start); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
				if n == reprocessCountChunk {
					next = bytes.Clone(k)
					return nil
				}
				n++
			}
			return nil
		})
		if err != nil {
			return 0, err
		}
		total += int64(n)
		if next == nil {
			return total, nil
		}
		start = next
	}
}

func reprocessCheckSelection(statuses []match.Status, facilities []string) ([]string, []string, error) {
	var errs []error
	st := make([]string, 0, len(statuses))
	for i, v := range statuses {
		errs = append(errs, storeCheckPart(fmt.Sprintf("statuses[%d]", i), string(v), true))
		st = append(st, string(v))
	}
	for i, f := range facilities {
		errs = append(errs, storeCheckPart(fmt.Sprintf("facilities[%d]", i), f, true))
	}
	slices.Sort(st)
	facs := slices.Clone(facilities)
	slices.Sort(facs)
	return slices.Compact(st), slices.Compact(facs), errors.Join(errs...)
}

// SaveRun implements reprocess.RunStore: the run's state and its new changes in one
// transaction.
func (s *Store) SaveRun(ctx context.Context, runID string, doc []byte, changes map[string]string) error {
	err := storeCheckPart("run_id", runID, true)
	for id := range changes {
		if err == nil {
			err = storeCheckPart("change id", id, true)
		}
	}
	if err != nil {
		return fmt.Errorf("embedded: save run: %w", err)
	}
	err = s.storeUpdate(ctx, func(tx *bolt.Tx) error {
		runs, err := tx.CreateBucketIfNotExists(reprocessBucketRuns)
		if err != nil {
			return err
		}
		journal, err := tx.CreateBucketIfNotExists(reprocessBucketChanges)
		if err != nil {
			return err
		}
		if err := runs.Put([]byte(runID), bytes.Clone(doc)); err != nil {
			return err
		}
		for id, outcome := range changes {
			if err := journal.Put(storeKey(runID, id), []byte(outcome)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("embedded: save run %s: %w", runID, err)
	}
	return nil
}

// LoadRun implements reprocess.RunStore (vaxpass.ErrNotFound when there is no such run).
func (s *Store) LoadRun(ctx context.Context, runID string) ([]byte, error) {
	if err := storeCheckPart("run_id", runID, true); err != nil {
		return nil, fmt.Errorf("embedded: load run: %w", err)
	}
	var doc []byte
	err := s.storeView(ctx, func(tx *bolt.Tx) error {
		if b := tx.Bucket(reprocessBucketRuns); b != nil {
			doc = bytes.Clone(b.Get([]byte(runID)))
		}
		if doc == nil {
			return vaxpass.ErrNotFound
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("embedded: load run %s: %w", runID, err)
	}
	return doc, nil
}

// ListRuns implements reprocess.RunStore: every run's state in run ID order.
func (s *Store) ListRuns(ctx context.Context) ([][]byte, error) {
	var out [][]byte
	err := s.storeView(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(reprocessBucketRuns)
		if b == nil {
			return nil
		}
		return b.ForEach(func(_, v []byte) error {
			out = append(out, bytes.Clone(v))
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("embedded: list runs: %w", err)
	}
	return out, nil
}

// RunChanges implements reprocess.RunStore: a run's changes in unit ID order after after.
func (s *Store) RunChanges(ctx context.Context, runID, after string, limit int) (ids, outcomes []string, err error) {
	if err := errors.Join(storeCheckPart("run_id", runID, true), storeCheckLimit(limit)); err != nil {
		return nil, nil, fmt.Errorf("embedded: run changes: %w", err)
	}
	err = s.storeView(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(reprocessBucketChanges)
		if b == nil {
			return nil
		}
		prefix := storePrefix(runID)
		c := b.Cursor()
		for k, v := storeSeekAfter(c, prefix, after); k != nil && bytes.HasPrefix(k, prefix) && len(ids) < limit; k, v = c.Next() {
			ids = append(ids, string(k[len(prefix):]))
			outcomes = append(outcomes, string(v))
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("embedded: run changes of %s: %w", runID, err)
	}
	return ids, outcomes, nil
}
