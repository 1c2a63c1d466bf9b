package audit

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Export formats.
const (
	FormatJSONL = "jsonl"
	FormatCSV   = "csv"
)

// CSVHeader is the header row of a CSV export. Lists are joined with spaces (IDs hold
// none); params and counts are key=value pairs joined with spaces.
var CSVHeader = []string{"id", "at", "actor", "action", "reason", "run_id", "doses", "uvcis", "facilities", "params", "counts"}

// Writer writes entries in an export format. Call Flush at the end.
type Writer struct {
	format string
	buf    *bufio.Writer
	csv    *csv.Writer
	header bool
}

// NewWriter returns a writer of format (FormatJSONL or FormatCSV) to w.
func NewWriter(w io.Writer, format string) (*Writer, error) {
	switch format {
	case FormatJSONL:
		return &Writer{format: format, buf: bufio.NewWriter(w)}, nil
	case FormatCSV:
		return &Writer{format: format, csv: csv.NewWriter(w)}, nil
	}
	return nil, fmt.Errorf("%w: format %q: want jsonl or csv", ErrInvalid, format)
}

// Write writes one entry.
func (w *Writer) Write(e Entry) error {
	if w.format == FormatJSONL {
		b, err := json.Marshal(e)
		if err != nil {
			return fmt.Errorf("audit: encode entry %s: %w", e.ID, err)
		}
		w.buf.Write(b)
		return w.buf.WriteByte('\n')
	}
	if !w.header {
		w.header = true
		if err := w.csv.Write(CSVHeader); err != nil {
			return err
		}
	}
	return w.csv.Write(csvRow(e))
}

// Flush writes out what is buffered; a CSV export of no entries still gets its header.
func (w *Writer) Flush() error {
	if w.format == FormatJSONL {
		return w.buf.Flush()
	}
	if !w.header {
		w.header = true
		if err := w.csv.Write(CSVHeader); err != nil {
			return err
		}
	}
	w.csv.Flush()
	return w.csv.Error()
}

func csvRow(e Entry) []string {
	var params, counts []string
	for _, k := range sortedKeys(e.Params) {
		params = append(params, k+"="+e.Params[k])
	}
	for _, k := range sortedKeys(e.Counts) {
		counts = append(counts, k+"="+strconv.FormatInt(e.Counts[k], 10))
	}
	return []string{
		e.ID, e.At.UTC().Format(time.RFC3339Nano), cell(e.Actor), e.Action, cell(e.Reason), cell(e.RunID),
		cell(strings.Join(e.Doses, " ")), cell(strings.Join(e.UVCIs, " ")), cell(strings.Join(e.Facilities, " ")),
		cell(strings.Join(params, " ")), strings.Join(counts, " "),
	}
}

// cell defuses spreadsheet formulas: a cell an operator opens in Excel must not start
// with = + - @ (CSV injection), so such text is prefixed with a quote.
func cell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
