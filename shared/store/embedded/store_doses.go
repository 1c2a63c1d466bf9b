package embedded

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/store/doseitem"
	"github.com/vaxpass/vaxpass/shared/store/embedded/feed"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// PutNew implements ingest.DoseWriter: each dose is written only if no dose with its
// facility and source_id is stored (created[i] false: a duplicate, left untouched), and a
// dose repeated within the batch is a duplicate of its first occurrence. The whole batch
// is one transaction with one INSERT change event per created dose; a dose without a
// Version is stored with Version 1. On error nothing is written.
func (s *Store) PutNew(ctx context.Context, doses []vaxpass.Dose) ([]bool, error) {
	for i := range doses {
		if err := storeCheckDose(&doses[i]); err != nil {
			return nil, fmt.Errorf("embedded: put doses: dose %d: %w", i, err)
		}
	}
	created := make([]bool, len(doses))
	err := s.storeUpdate(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(storeBucketDoses)
		for i := range doses {
			d := doses[i]
			if b.Get(storeKey(d.FacilityID, d.SourceID)) != nil {
				continue
			}
			if d.Version < 1 {
				d.Version = 1
			}
			if err := s.storeWriteDose(tx, nil, &d); err != nil {
				return fmt.Errorf("dose %d: %w", i, err)
			}
			created[i] = true
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("embedded: put doses: %w", err)
	}
	return created, nil
}

// SaveMatch implements matching.MatchWriter: d is stored with Version+1 if the stored
// dose still has d.Version (vaxpass.ErrConflict otherwise; vaxpass.ErrNotFound when there
// is none), with a MODIFY change event.
func (s *Store) SaveMatch(ctx context.Context, d vaxpass.Dose) error {
	if err := s.storeConditionalPut(ctx, d); err != nil {
		return fmt.Errorf("embedded: save match %s/%s: %w", d.FacilityID, d.SourceID, err)
	}
	return nil
}

// UpdateDose stores a corrected dose with the semantics of SaveMatch: conditional on
// d.Version, stored with Version+1, a MODIFY change event (which makes the matcher look
// at it again when its personal details changed).
func (s *Store) UpdateDose(ctx context.Context, d vaxpass.Dose) error {
	if err := s.storeConditionalPut(ctx, d); err != nil {
		return fmt.Errorf("embedded: update dose %s/%s: %w", d.FacilityID, d.SourceID, err)
	}
	return nil
}

func (s *Store) storeConditionalPut(ctx context.Context, d vaxpass.Dose) error {
	if err := storeCheckDose(&d); err != nil {
		return err
	}
	var itemErr error
	err := s.storeUpdate(ctx, func(tx *bolt.Tx) error {
		var err error
		itemErr, err = s.storePutIfVersion(tx, &d)
		if err != nil {
			return err
		}
		return itemErr // roll back (nothing was written anyway)
	})
	if itemErr != nil {
		return itemErr
	}
	return err
}

// SaveMatchBatch is SaveMatch for many doses in one transaction (one disk sync for the
// batch). Each dose is judged on its own: errs[i] is nil when doses[i] was stored, or
// wraps vaxpass.ErrConflict, vaxpass.ErrNotFound or vaxpass.ErrInvalid; the same key
// twice in a batch makes the second a conflict unless it carries the first's new
// Version. err is a failure of the store itself, and then nothing was written.
func (s *Store) SaveMatchBatch(ctx context.Context, doses []vaxpass.Dose) (errs []error, err error) {
	errs = make([]error, len(doses))
	err = s.storeUpdate(ctx, func(tx *bolt.Tx) error {
		for i := range doses {
			d := doses[i]
			if err := storeCheckDose(&d); err != nil {
				errs[i] = err
				continue
			}
			itemErr, err := s.storePutIfVersion(tx, &d)
			if err != nil {
				return fmt.Errorf("%s/%s: %w", d.FacilityID, d.SourceID, err)
			}
			errs[i] = itemErr
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("embedded: save matches: %w", err)
	}
	for i, e := range errs {
		if e != nil {
			errs[i] = fmt.Errorf("embedded: save match %s/%s: %w", doses[i].FacilityID, doses[i].SourceID, e)
		}
	}
	return errs, nil
}

// storePutIfVersion writes d with Version+1 if the stored dose has d.Version. itemErr is
// the dose's own failure (conflict, not found); err a failure of the transaction.
func (s *Store) storePutIfVersion(tx *bolt.Tx, d *vaxpass.Dose) (itemErr, err error) {
	old, found, err := storeGetDose(tx, d.Key())
	if err != nil {
		return nil, err
	}
	if !found {
		return vaxpass.ErrNotFound, nil
	}
	if old.Version != d.Version {
		return fmt.Errorf("%w: stored version %d, written version %d", vaxpass.ErrConflict, old.Version, d.Version), nil
	}
	next := *d
	next.Version = old.Version + 1
	return nil, s.storeWriteDose(tx, &old, &next)
}

// MarkSigned implements signing.FacilityStore: it sets SignedAt to at on every given
// dose, each conditional on its Version (vaxpass.ErrConflict, and nothing written, if one
// changed), with Version+1 and a MODIFY change event each. The stored dose is what is
// written (only SignedAt and Version change), not the caller's copy.
func (s *Store) MarkSigned(ctx context.Context, doses []vaxpass.Dose, at time.Time) error {
	errs, err := s.MarkSignedGroups(ctx, [][]vaxpass.Dose{doses}, at)
	if err != nil {
		return err
	}
	return errs[0]
}

// MarkSignedGroups implements signing.BatchMarker: MarkSigned of every group in one
// transaction (one commit). A group whose dose changed or is gone gets its own
// vaxpass.ErrConflict or ErrNotFound in errs and none of its doses written; the other
// groups are written.
func (s *Store) MarkSignedGroups(ctx context.Context, groups [][]vaxpass.Dose, at time.Time) ([]error, error) {
	for g, doses := range groups {
		for i := range doses {
			if err := storeCheckKey(doses[i].Key()); err != nil {
				return nil, fmt.Errorf("embedded: mark signed: group %d dose %d: %w", g, i, err)
			}
		}
	}
	if at.IsZero() {
		return nil, fmt.Errorf("embedded: mark signed: %w: zero signing time", vaxpass.ErrInvalid)
	}
	var errs []error
	err := s.storeUpdate(ctx, func(tx *bolt.Tx) error {
		errs = make([]error, len(groups)) // this function may run again
		for g, doses := range groups {
			olds, err := storeCheckVersions(tx, doses)
			if err != nil {
				if errors.Is(err, vaxpass.ErrConflict) || errors.Is(err, vaxpass.ErrNotFound) {
					errs[g] = fmt.Errorf("embedded: mark signed: %w", err)
					continue
				}
				return err
			}
			for _, old := range olds {
				next := old
				next.SignedAt = at
				next.Version = old.Version + 1
				if err := s.storeWriteDose(tx, &old, &next); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("embedded: mark signed: %w", err)
	}
	return errs, nil
}

// storeCheckVersions reads the distinct doses listed, each still at the version read
// (vaxpass.ErrConflict if one changed, ErrNotFound if one is gone).
func storeCheckVersions(tx *bolt.Tx, doses []vaxpass.Dose) ([]vaxpass.Dose, error) {
	seen := make(map[vaxpass.DoseKey]int64, len(doses))
	var olds []vaxpass.Dose
	for _, d := range doses {
		if v, ok := seen[d.Key()]; ok && v == d.Version {
			continue // listed twice as read: one write
		}
		seen[d.Key()] = d.Version
		old, found, err := storeGetDose(tx, d.Key())
		if err != nil {
			return nil, err
		}
		if !found {
			return nil, fmt.Errorf("%s/%s: %w", d.FacilityID, d.SourceID, vaxpass.ErrNotFound)
		}
		if old.Version != d.Version {
			return nil, fmt.Errorf("%s/%s: %w: stored version %d, read version %d", d.FacilityID, d.SourceID, vaxpass.ErrConflict, old.Version, d.Version)
		}
		olds = append(olds, old)
	}
	return olds, nil
}

// GetDose implements api.DoseReader (vaxpass.ErrNotFound when there is no such dose).
func (s *Store) GetDose(ctx context.Context, key vaxpass.DoseKey) (vaxpass.Dose, error) {
	var d vaxpass.Dose
	if err := storeCheckKey(key); err != nil {
		return d, fmt.Errorf("embedded: get dose: %w", err)
	}
	err := s.storeView(ctx, func(tx *bolt.Tx) error {
		var found bool
		var err error
		d, found, err = storeGetDose(tx, key)
		if err == nil && !found {
			err = vaxpass.ErrNotFound
		}
		return err
	})
	if err != nil {
		return vaxpass.Dose{}, fmt.Errorf("embedded: get dose %s/%s: %w", key.FacilityID, key.SourceID, err)
	}
	return d, nil
}

// ListByStatus implements api.DoseReader: the facility's doses whose stored match status
// is status, in source_id (byte) order, after the source_id after ("" to start), at most
// limit.
func (s *Store) ListByStatus(ctx context.Context, facilityID string, status match.Status, after string, limit int) ([]vaxpass.Dose, error) {
	if err := errors.Join(storeCheckPart("facility_id", facilityID, true), storeCheckPart("status", string(status), true), storeCheckLimit(limit)); err != nil {
		return nil, fmt.Errorf("embedded: list doses by status: %w", err)
	}
	var out []vaxpass.Dose
	err := s.storeView(ctx, func(tx *bolt.Tx) error {
		prefix := storePrefix(facilityID, string(status))
		c := tx.Bucket(storeBucketDoseStatus).Cursor()
		for k, _ := storeSeekAfter(c, prefix, after); k != nil && bytes.HasPrefix(k, prefix) && len(out) < limit; k, _ = c.Next() {
			key := vaxpass.DoseKey{FacilityID: facilityID, SourceID: string(k[len(prefix):])}
			d, err := storeMustGetDose(tx, key)
			if err != nil {
				return err
			}
			out = append(out, d)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("embedded: list doses by status: %w", err)
	}
	return out, nil
}

// SignPendingPersons implements signing.FacilityStore: the distinct people with at least
// one SignPending dose at the facility, in person_id (byte) order, after the person_id
// after ("" to start), at most limit.
func (s *Store) SignPendingPersons(ctx context.Context, facilityID, after string, limit int) ([]string, error) {
	if err := errors.Join(storeCheckPart("facility_id", facilityID, true), storeCheckLimit(limit)); err != nil {
		return nil, fmt.Errorf("embedded: list people to sign: %w", err)
	}
	var out []string
	err := s.storeView(ctx, func(tx *bolt.Tx) error {
		prefix := storePrefix(facilityID)
		c := tx.Bucket(storeBucketDoseSignPending).Cursor()
		var k []byte
		if after == "" {
			k, _ = c.Seek(prefix)
		} else {
			// Past every key of the person after: person 0x00 ... < person 0x01.
			k, _ = c.Seek(append(storeKey(facilityID, after), 1))
		}
		for k != nil && bytes.HasPrefix(k, prefix) && len(out) < limit {
			rest := k[len(prefix):]
			i := bytes.IndexByte(rest, 0)
			if i < 0 {
				return fmt.Errorf("%w: sign-pending index key without a person", storeErrCorrupt)
			}
			person := string(rest[:i])
			out = append(out, person)
			k, _ = c.Seek(append(storeKey(facilityID, person), 1))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("embedded: list people to sign: %w", err)
	}
	return out, nil
}

// PersonDoses implements signing.FacilityStore: every dose whose PersonID is personID, of
// every facility, in facility then source_id order.
func (s *Store) PersonDoses(ctx context.Context, personID string) ([]vaxpass.Dose, error) {
	if err := storeCheckPart("person_id", personID, true); err != nil {
		return nil, fmt.Errorf("embedded: doses of a person: %w", err)
	}
	var out []vaxpass.Dose
	err := s.storeView(ctx, func(tx *bolt.Tx) error {
		prefix := storePrefix(personID)
		c := tx.Bucket(storeBucketDosePerson).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			rest := k[len(prefix):]
			i := bytes.IndexByte(rest, 0)
			if i < 0 {
				return fmt.Errorf("%w: person index key without a facility", storeErrCorrupt)
			}
			d, err := storeMustGetDose(tx, vaxpass.DoseKey{FacilityID: string(rest[:i]), SourceID: string(rest[i+1:])})
			if err != nil {
				return err
			}
			out = append(out, d)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("embedded: doses of a person: %w", err)
	}
	return out, nil
}

// storeWriteDose stores d (old is the stored dose it replaces, nil for a new one), moves
// its index entries and the dashboard's counters and appends its change event, all in tx.
func (s *Store) storeWriteDose(tx *bolt.Tx, old, d *vaxpass.Dose) error {
	if err := statsCountDose(tx, old, d); err != nil {
		return err
	}
	img, err := doseitem.Image(d)
	if err != nil {
		return err
	}
	// The stored value is the item's "doc": one JSON encoding serves both.
	if err := tx.Bucket(storeBucketDoses).Put(storeKey(d.FacilityID, d.SourceID), []byte(img[doseitem.AttrDoc].String())); err != nil {
		return err
	}
	if err := storeReindexDose(tx, old, d); err != nil {
		return err
	}
	change := feed.Change{EventName: feed.Insert, Keys: doseitem.Keys(d), NewImage: img}
	if old != nil {
		change.EventName = feed.Modify // NEW_IMAGE stream: no old image
	}
	_, err = s.feed.Append(tx, change)
	return err
}

// storeDoseIndexKeys are a dose's keys in the three indexes (nil: not in that index).
func storeDoseIndexKeys(d *vaxpass.Dose) (status, person, pending []byte) {
	status = storeKey(d.FacilityID, string(d.Match.Status), d.SourceID)
	if d.PersonID != "" {
		person = storeKey(d.PersonID, d.FacilityID, d.SourceID)
		if d.SignPending() {
			pending = storeKey(d.FacilityID, d.PersonID, d.SourceID)
		}
	}
	return status, person, pending
}

func storeReindexDose(tx *bolt.Tx, old, d *vaxpass.Dose) error {
	var oldKeys [3][]byte
	if old != nil {
		oldKeys[0], oldKeys[1], oldKeys[2] = storeDoseIndexKeys(old)
	}
	var newKeys [3][]byte
	newKeys[0], newKeys[1], newKeys[2] = storeDoseIndexKeys(d)
	if err := storeReindexCommune(tx, old, d); err != nil {
		return err
	}
	for i, name := range [][]byte{storeBucketDoseStatus, storeBucketDosePerson, storeBucketDoseSignPending} {
		if bytes.Equal(oldKeys[i], newKeys[i]) && (oldKeys[i] == nil) == (newKeys[i] == nil) {
			continue
		}
		b := tx.Bucket(name)
		if oldKeys[i] != nil {
			if err := b.Delete(oldKeys[i]); err != nil {
				return err
			}
		}
		if newKeys[i] != nil {
			if err := b.Put(newKeys[i], nil); err != nil {
				return err
			}
		}
	}
	return nil
}

// storeGetDose reads a dose; found is false when there is none.
func storeGetDose(tx *bolt.Tx, key vaxpass.DoseKey) (d vaxpass.Dose, found bool, err error) {
	v := tx.Bucket(storeBucketDoses).Get(storeKey(key.FacilityID, key.SourceID))
	if v == nil {
		return d, false, nil
	}
	if err := doseitem.FromDoc(string(v), &d); err != nil {
		return d, false, fmt.Errorf("%w: dose %s/%s: %w", storeErrCorrupt, key.FacilityID, key.SourceID, err)
	}
	return d, true, nil
}

// storeMustGetDose reads a dose an index points to.
func storeMustGetDose(tx *bolt.Tx, key vaxpass.DoseKey) (vaxpass.Dose, error) {
	d, found, err := storeGetDose(tx, key)
	if err == nil && !found {
		err = fmt.Errorf("%w: index points to missing dose %s/%s", storeErrCorrupt, key.FacilityID, key.SourceID)
	}
	return d, err
}

func storeCheckKey(k vaxpass.DoseKey) error {
	return errors.Join(storeCheckPart("facility_id", k.FacilityID, true), storeCheckPart("source_id", k.SourceID, true))
}

// storeCheckDose rejects a dose whose key or index attributes would break the layout.
func storeCheckDose(d *vaxpass.Dose) error {
	return errors.Join(storeCheckKey(d.Key()),
		storeCheckPart("person_id", d.PersonID, false),
		storeCheckPart("match.status", string(d.Match.Status), false),
		storeCheckCommune(d))
}
