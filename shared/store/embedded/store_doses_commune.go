package embedded

// Doses listed by commune (a commune clerk's worklists): the index bucket
// storeBucketDoseCommune, kept by storeWriteDose in the transaction of every dose write as
// the other dose indexes are, and built once for a database written before it existed.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/store/doseitem"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

var (
	// communeReadyKey (in store_meta) is set once storeBucketDoseCommune indexes every
	// stored dose.
	communeReadyKey = []byte("doses_by_commune_ready")
	// communeCursorKey (in store_meta) is the doses-bucket key of the last dose the
	// backfill indexed, while it has not finished: a backfill cut short resumes after it.
	communeCursorKey = []byte("doses_by_commune_backfill")
)

// communeBackfillChunk is how many doses one backfill transaction indexes: a bounded
// transaction (memory, and the work lost to a crash) on a database of millions of doses.
// A variable: tests make it small.
var communeBackfillChunk = 20000

// ListByCommune lists the doses whose record's commune_code is commune and whose stored
// match status is status, of every facility, in (facility_id, source_id) (byte) order,
// strictly after the dose key after (the zero DoseKey to start), at most limit.
func (s *Store) ListByCommune(ctx context.Context, commune string, status match.Status, after vaxpass.DoseKey, limit int) ([]vaxpass.Dose, error) {
	if err := errors.Join(storeCheckPart("commune", commune, true), storeCheckPart("status", string(status), true),
		storeCheckPart("after.facility_id", after.FacilityID, false), storeCheckPart("after.source_id", after.SourceID, false),
		storeCheckLimit(limit)); err != nil {
		return nil, fmt.Errorf("embedded: list doses by commune: %w", err)
	}
	var out []vaxpass.Dose
	err := s.storeView(ctx, func(tx *bolt.Tx) error {
		prefix := storePrefix(commune, string(status))
		c := tx.Bucket(storeBucketDoseCommune).Cursor()
		var k []byte
		if after == (vaxpass.DoseKey{}) {
			k, _ = c.Seek(prefix)
		} else {
			start := append(prefix, storeKey(after.FacilityID, after.SourceID)...)
			if k, _ = c.Seek(start); bytes.Equal(k, start) {
				k, _ = c.Next()
			}
		}
		for ; k != nil && bytes.HasPrefix(k, prefix) && len(out) < limit; k, _ = c.Next() {
			rest := k[len(prefix):]
			i := bytes.IndexByte(rest, 0)
			if i < 0 {
				return fmt.Errorf("%w: commune index key without a source_id", storeErrCorrupt)
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
		return nil, fmt.Errorf("embedded: list doses by commune: %w", err)
	}
	return out, nil
}

// storeCommuneKey is a dose's key in storeBucketDoseCommune (nil without a commune code).
func storeCommuneKey(facilityID, sourceID, commune string, status match.Status) []byte {
	if commune == "" {
		return nil
	}
	return storeKey(commune, string(status), facilityID, sourceID)
}

// storeReindexCommune moves a dose's commune index entry from old's (nil: a new dose) to
// d's.
func storeReindexCommune(tx *bolt.Tx, old, d *vaxpass.Dose) error {
	var oldKey []byte
	if old != nil {
		oldKey = storeCommuneKey(old.FacilityID, old.SourceID, old.CommuneCode, old.Match.Status)
	}
	newKey := storeCommuneKey(d.FacilityID, d.SourceID, d.CommuneCode, d.Match.Status)
	if bytes.Equal(oldKey, newKey) && (oldKey == nil) == (newKey == nil) {
		return nil
	}
	b := tx.Bucket(storeBucketDoseCommune)
	if oldKey != nil {
		if err := b.Delete(oldKey); err != nil {
			return err
		}
	}
	if newKey != nil {
		return b.Put(newKey, nil)
	}
	return nil
}

// storeCheckCommune rejects a commune code that would break the index key, and a dose
// whose by_commune sort value would pass DynamoDB's 1,024-byte sort key limit (both
// stores accept the same doses).
func storeCheckCommune(d *vaxpass.Dose) error {
	if err := storeCheckPart("commune_code", d.CommuneCode, false); err != nil {
		return err
	}
	if n := len(doseitem.FacilitySource(d.FacilityID, d.SourceID)); d.CommuneCode != "" && n > storeMaxKeyPart {
		return fmt.Errorf("%w: facility_id and source_id of a dose with a commune code are %d bytes, more than %d", vaxpass.ErrInvalid, n, storeMaxKeyPart)
	}
	return nil
}

// storeCommuneStart runs in the transaction that creates the buckets: a database without
// doses (a new one) needs no backfill, and is marked ready without another commit.
func storeCommuneStart(tx *bolt.Tx) error {
	meta := tx.Bucket(storeBucketMeta)
	if meta.Get(communeReadyKey) != nil {
		return nil
	}
	if k, _ := tx.Bucket(storeBucketDoses).Cursor().First(); k != nil {
		return nil // storeCommuneBackfill's work
	}
	return meta.Put(communeReadyKey, []byte{1})
}

// communeDose is the part of a stored dose the backfill indexes.
type communeDose struct {
	FacilityID  string `json:"facility_id"`
	SourceID    string `json:"source_id"`
	CommuneCode string `json:"commune_code"`
	Match       struct {
		Status match.Status `json:"status"`
	} `json:"match"`
}

// storeCommuneBackfill indexes every stored dose in storeBucketDoseCommune, once per
// database (a database written before the index existed): in transactions of
// communeBackfillChunk doses, each recording how far it got, so an interrupted backfill
// resumes where it stopped at the next open, and indexing a dose twice puts the same key.
// It runs while the store opens, before any write, so no write can race it; writes keep
// the index from then on.
func storeCommuneBackfill(db *bolt.DB) error {
	var done bool
	// Read first: an empty write transaction still commits (a disk sync at every open).
	if err := db.View(func(tx *bolt.Tx) error {
		done = tx.Bucket(storeBucketMeta).Get(communeReadyKey) != nil
		return nil
	}); err != nil {
		return fmt.Errorf("index doses by commune: %w", err)
	}
	for !done {
		err := db.Update(func(tx *bolt.Tx) error {
			meta := tx.Bucket(storeBucketMeta)
			if meta.Get(communeReadyKey) != nil {
				done = true
				return nil
			}
			c := tx.Bucket(storeBucketDoses).Cursor()
			var k, v []byte
			if cursor := meta.Get(communeCursorKey); cursor != nil {
				cursor = bytes.Clone(cursor)
				if k, v = c.Seek(cursor); bytes.Equal(k, cursor) {
					k, v = c.Next()
				}
			} else {
				k, v = c.First()
			}
			var keys [][]byte
			var last []byte
			for n := 0; k != nil && n < communeBackfillChunk; k, v = c.Next() {
				n++
				last = k
				var d communeDose
				if err := json.Unmarshal(v, &d); err != nil {
					return fmt.Errorf("%w: dose %q: %w", storeErrCorrupt, k, err)
				}
				full := vaxpass.Dose{FacilityID: d.FacilityID, Match: match.Result{Status: d.Match.Status}}
				full.SourceID, full.CommuneCode = d.SourceID, d.CommuneCode
				if storeCheckCommune(&full) != nil {
					// Written before commune codes were checked, and not indexable: such a
					// dose is refused at its next write until corrected.
					continue
				}
				if key := storeCommuneKey(d.FacilityID, d.SourceID, d.CommuneCode, d.Match.Status); key != nil {
					keys = append(keys, key)
				}
			}
			// In key order: bbolt splits nodes at commit, and many inserts out of order
			// into one node cost quadratic time.
			slices.SortFunc(keys, bytes.Compare)
			b := tx.Bucket(storeBucketDoseCommune)
			for _, key := range keys {
				if err := b.Put(key, nil); err != nil {
					return err
				}
			}
			if k != nil {
				return meta.Put(communeCursorKey, bytes.Clone(last))
			}
			if err := meta.Delete(communeCursorKey); err != nil {
				return err
			}
			done = true
			return meta.Put(communeReadyKey, []byte{1})
		})
		if err != nil {
			return fmt.Errorf("index doses by commune: %w", err)
		}
	}
	return nil
}
