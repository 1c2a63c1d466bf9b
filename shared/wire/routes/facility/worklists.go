package facility

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"iter"
	"slices"
	"time"

	"github.com/vaxpass/vaxpass/shared/edge/httpapi"

	"github.com/vaxpass/vaxpass/shared/domain/dose"
	"github.com/vaxpass/vaxpass/shared/stage/ingest"
	"github.com/vaxpass/vaxpass/shared/stage/worklist"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// Worklists adapts the worklist package to the facility API.
type Worklists struct {
	Now func() time.Time
}

// Write renders doses as a CSV or .xlsx worklist of a facility or a clerk: candidates
// as their count.
func (w Worklists) Write(out io.Writer, format string, doses []vaxpass.Dose) error {
	return write(out, format, doses, false)
}

// WriteDisclosed renders doses as the registry officer's CSV list: candidates in full.
func (w Worklists) WriteDisclosed(out io.Writer, doses []vaxpass.Dose) error {
	return write(out, "csv", doses, true)
}

func write(out io.Writer, format string, doses []vaxpass.Dose, disclose bool) error {
	rows := func(yield func(worklist.Row) bool) {
		for _, d := range doses {
			if !yield(worklist.Row{Facility: d.FacilityID, Record: d.Record, Result: d.Match, Disclose: disclose}) {
				return
			}
		}
	}
	var err error
	switch format {
	case "csv":
		_, err = worklist.WriteCSV(out, iter.Seq[worklist.Row](rows))
	case "xlsx":
		_, err = worklist.WriteXLSX(out, iter.Seq[worklist.Row](rows))
	default:
		err = fmt.Errorf("worklist format %q", format)
	}
	return err
}

// ReadImport reads an .xlsx import sheet or a worklist sent back, row by row. A worklist
// is read against the store (stored): each row is the stored record with its corrected_*
// cells applied, its read-only cells only compared (ImportRow.Warnings).
func (w Worklists) ReadImport(body []byte, stored httpapi.StoredRecord) ([]httpapi.ImportRow, error) {
	// One import is one upload batch: a sheet with more rows is refused before they are
	// read, not after (the rows a reader would parse for nothing are the cost of an attack).
	lim := worklist.DefaultLimits()
	lim.MaxRows = ingest.MaxBatch
	// 1,000 real rows are ~0.7 MB of sheet XML: 16 MB unzipped is generous and bounded.
	lim.MaxUnzipped = min(lim.MaxUnzipped, 16<<20)
	var base worklist.Stored
	if stored != nil {
		base = worklist.Stored(stored)
	}
	res, err := worklist.ReadXLSXStored(bytes.NewReader(body), w.Now().UTC(), lim, base)
	if errors.Is(err, worklist.ErrTooLarge) {
		return nil, fmt.Errorf("%w: %w: %w", vaxpass.ErrInvalid, httpapi.ErrImportTooLarge, err)
	}
	if err != nil {
		for _, e := range []error{worklist.ErrTooLarge, worklist.ErrCorrupt, worklist.ErrEncrypted, worklist.ErrLegacyFormat, worklist.ErrHeader} {
			if errors.Is(err, e) {
				return nil, fmt.Errorf("%w: %w", vaxpass.ErrInvalid, err)
			}
		}
		return nil, err
	}
	rows := make([]httpapi.ImportRow, 0, len(res.Accepted)+len(res.Rejected))
	for _, a := range res.Accepted {
		rows = append(rows, httpapi.ImportRow{
			Item: ingest.Item{Row: a.Row, Record: a.Record,
				// A row read against the store corrects that record (unchanged: a duplicate).
				Corrected: a.FromStore || res.Worklist && len(a.Corrected) > 0},
			FromStore: a.FromStore, FacilityID: a.Facility, Warnings: a.Warnings,
		})
	}
	for _, r := range res.Rejected {
		rows = append(rows, httpapi.ImportRow{Item: ingest.Item{Row: r.Row, Record: recordWithID(r.SourceID), Errors: r.Errors}})
	}
	slices.SortFunc(rows, func(a, b httpapi.ImportRow) int { return a.Row - b.Row })
	return rows, nil
}

func recordWithID(sourceID string) (r dose.Record) {
	r.SourceID = sourceID
	return r
}
