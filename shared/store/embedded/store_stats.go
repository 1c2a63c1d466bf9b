package embedded

// Scans of every dose and every certificate, reduced to the few fields the dashboard
// counts (shared/stage/stats). The dashboard itself reads counters (store_stats_counters.go),
// whose one-time count decodes records with statsDose and statsCert; EachDoseStat and
// EachCertificateStat are a recount for checks, in read transactions of bounded size so
// that a scan of the whole store never holds back writers for long.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/vaxpass/vaxpass/shared/domain/match"
)

// statsChunk is how many records one read transaction of a stats scan reads (a variable
// so that tests can cross chunk boundaries with a few records).
var statsChunk = 10_000

// statsDose is the part of a stored dose the dashboard counts.
type statsDose struct {
	FacilityID string `json:"facility_id"`
	IDNumber   string `json:"id_number"`
	// CommuneCode: the commune rows (stats.InCommune).
	CommuneCode string `json:"commune_code"`
	Match       struct {
		Status match.Status `json:"status"`
	} `json:"match"`
}

// statsCert is the part of a stored certificate the dashboard counts.
type statsCert struct {
	PersonID  string    `json:"person_id"`
	Status    string    `json:"status"`
	IssuedAt  time.Time `json:"issued_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

// EachDoseStat calls fn for every stored dose, in key order, with its facility, stored
// match status and ID number as typed. It stops at fn's first error. It reads the whole
// dose table: an operations call.
func (s *Store) EachDoseStat(ctx context.Context, fn func(facilityID string, status match.Status, idNumber string) error) error {
	err := s.statsScan(ctx, storeBucketDoses, func(_ *bolt.Tx, k, v []byte) error {
		var d statsDose
		if err := json.Unmarshal(v, &d); err != nil {
			return fmt.Errorf("%w: dose %q: %w", storeErrCorrupt, k, err)
		}
		return fn(d.FacilityID, d.Match.Status, d.IDNumber)
	})
	if err != nil {
		return fmt.Errorf("embedded: dose stats: %w", err)
	}
	return nil
}

// EachCertificateStat calls fn for every stored certificate (any status), in UVCI order,
// with its person, stored status, times, and the facilities whose signatures for that
// person central signing holds. It stops at fn's first error.
func (s *Store) EachCertificateStat(ctx context.Context, fn func(personID, status string, issuedAt, expiresAt time.Time, facilities []string) error) error {
	var facs []string
	err := s.statsScan(ctx, storeBucketCerts, func(tx *bolt.Tx, k, v []byte) error {
		var c statsCert
		if err := json.Unmarshal(v, &c); err != nil {
			return fmt.Errorf("%w: certificate %q: %w", storeErrCorrupt, k, err)
		}
		facs = facs[:0]
		if c.PersonID != "" {
			prefix := storePrefix(c.PersonID)
			cur := tx.Bucket(storeBucketFacilitySigs).Cursor()
			for fk, _ := cur.Seek(prefix); fk != nil && bytes.HasPrefix(fk, prefix); fk, _ = cur.Next() {
				facs = append(facs, string(fk[len(prefix):]))
			}
		}
		return fn(c.PersonID, c.Status, c.IssuedAt, c.ExpiresAt, facs)
	})
	if err != nil {
		return fmt.Errorf("embedded: certificate stats: %w", err)
	}
	return nil
}

// statsScan calls fn for every key of bucket, statsChunk keys per read transaction.
func (s *Store) statsScan(ctx context.Context, bucket []byte, fn func(tx *bolt.Tx, k, v []byte) error) error {
	var start []byte // inclusive
	for {
		var next []byte
		err := s.storeView(ctx, func(tx *bolt.Tx) error {
			c := tx.Bucket(bucket).Cursor()
			k, v := c.First()
			if start != nil {
				k, v = c.Seek(start)
			}
			for n := 0; k != nil; k, v = c.Next() {
				if n == statsChunk {
					next = bytes.Clone(k)
					return nil
				}
				if err := fn(tx, k, v); err != nil {
					return err
				}
				n++
			}
			return nil
		})
		if err != nil || next == nil {
			return err
		}
		start = next
	}
}
