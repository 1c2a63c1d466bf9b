package embedded

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/vaxpass/vaxpass/shared/stage/report"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

var (
	// reportBucket: reference -> JSON of report.Report.
	reportBucket = []byte("reports")
	// reportScopeBucket: "F" facility 0 cursor, or "C" commune 0 cursor -> reference
	// (report.Cursor: received time then reference, so a scope lists oldest first).
	reportScopeBucket = []byte("reports_by_scope")
)

// Reports keeps citizens' reports (report.Store).
type Reports struct {
	db *DB
}

var _ report.Store = (*Reports)(nil)

// OpenReports opens the reports of db.
func OpenReports(db *DB) (*Reports, error) {
	if err := db.bolt.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{reportBucket, reportScopeBucket} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("embedded: open reports: %w", classify(err))
	}
	return &Reports{db: db}, nil
}

func reportScopePrefix(sc report.Scope) []byte {
	if sc.FacilityID != "" {
		return append([]byte("F"+sc.FacilityID), 0)
	}
	return append([]byte("C"+sc.CommuneCode), 0)
}

// PutReport implements report.Store.
func (s *Reports) PutReport(ctx context.Context, r report.Report) error {
	for _, f := range []struct{ name, v string }{{"reference", r.Reference}, {"facility_id", r.FacilityID}, {"commune_code", r.CommuneCode}} {
		if err := storeCheckPart(f.name, f.v, true); err != nil {
			return fmt.Errorf("embedded: put report: %w", err)
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	v, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("embedded: put report: %w", err)
	}
	cur := report.Cursor(r)
	err = s.db.bolt.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(reportBucket)
		if b.Get([]byte(r.Reference)) != nil {
			return fmt.Errorf("%w: report reference taken", vaxpass.ErrConflict)
		}
		if err := b.Put([]byte(r.Reference), v); err != nil {
			return err
		}
		idx := tx.Bucket(reportScopeBucket)
		for _, sc := range []report.Scope{{FacilityID: r.FacilityID}, {CommuneCode: r.CommuneCode}} {
			if err := idx.Put(append(reportScopePrefix(sc), cur...), []byte(r.Reference)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("embedded: put report: %w", unavailable(classify(err)))
	}
	return nil
}

// GetReport implements report.Store.
func (s *Reports) GetReport(ctx context.Context, reference string) (report.Report, error) {
	if err := ctx.Err(); err != nil {
		return report.Report{}, err
	}
	var r report.Report
	err := s.db.bolt.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(reportBucket).Get([]byte(reference))
		if v == nil {
			return fmt.Errorf("report: %w", vaxpass.ErrNotFound)
		}
		return json.Unmarshal(v, &r)
	})
	if err != nil {
		return report.Report{}, fmt.Errorf("embedded: get report: %w", err)
	}
	return r, nil
}

// ListReports implements report.Store.
func (s *Reports) ListReports(ctx context.Context, sc report.Scope, after string, limit int) ([]report.Report, error) {
	if (sc.FacilityID == "") == (sc.CommuneCode == "") || limit < 1 {
		return nil, fmt.Errorf("embedded: list reports: %w: one scope and a positive limit", vaxpass.ErrInvalid)
	}
	if err := storeCheckPart("scope", sc.FacilityID+sc.CommuneCode, true); err != nil {
		return nil, fmt.Errorf("embedded: list reports: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	prefix := reportScopePrefix(sc)
	var out []report.Report
	err := s.db.bolt.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(reportScopeBucket).Cursor()
		start := append(append([]byte(nil), prefix...), after...)
		k, ref := c.Seek(start)
		if after != "" && bytes.Equal(k, start) {
			k, ref = c.Next()
		}
		reports := tx.Bucket(reportBucket)
		for ; k != nil && bytes.HasPrefix(k, prefix) && len(out) < limit; k, ref = c.Next() {
			var r report.Report
			v := reports.Get(ref)
			if v == nil {
				return fmt.Errorf("report index names a missing report")
			}
			if err := json.Unmarshal(v, &r); err != nil {
				return err
			}
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("embedded: list reports: %w", err)
	}
	return out, nil
}
