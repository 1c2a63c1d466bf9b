// Package registry reads population-registry extracts (contract: CSV with the header
// id_number,full_name,dob,gender, more columns allowed, any order) and holds a registry in
// memory for the matcher (Memory implements match.Registry).
package registry

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"iter"
	"strings"

	"github.com/vaxpass/vaxpass/shared/domain/dose"
	"github.com/vaxpass/vaxpass/shared/domain/match"
)

// Columns every extract must have.
var requiredColumns = [...]string{"id_number", "full_name", "dob", "gender"}

// Limits of an extract line; real lines are under 200 bytes.
const (
	MaxLineBytes = 64 << 10
	MaxNameRunes = dose.MaxName
)

// Sentinel errors. A *LineError concerns one line and reading may go on; ErrHeader and
// ErrLineTooLong end the read.
var (
	ErrHeader      = errors.New("registry extract: bad header")
	ErrLineTooLong = errors.New("registry extract: line too long")
)

// LineError is one rejected line of an extract. It never carries the field's value
// (personal data).
type LineError struct {
	Line   int    // 1-based line number in the file (the header is line 1)
	Field  string // column name, or "" for a problem with the whole line
	Reason string
}

func (e *LineError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("line %d: %s", e.Line, e.Reason)
	}
	return fmt.Sprintf("line %d: %s: %s", e.Line, e.Field, e.Reason)
}

// Reader streams the people of a CSV extract. A UTF-8 byte-order mark is skipped.
type Reader struct {
	csv     *csv.Reader
	columns int    // fields per line, from the header
	col     [4]int // index of id_number, full_name, dob, gender
	// base is where csv started reading in the file: its offsets and line numbers are
	// relative to it (a reader resumed by NewReaderAt starts mid-file).
	base Position
	last int // csv line of the end of the last record read
}

// Position is a place in an extract between two records: the byte offset just after a
// record (its line break included) and the number of the line that record ended on (the
// header is line 1). A Reader resumed there (NewReaderAt) reads the records that follow
// and names their lines as a reader from the start of the file would.
type Position struct {
	Offset int64
	Line   int
}

// NewReader reads the header of an extract.
func NewReader(r io.Reader) (*Reader, error) {
	return newReader(r, Position{})
}

// NewReaderAt reads the header of the extract f, then goes on at pos, a Position returned
// by an earlier Reader of the same file, instead of after the header.
func NewReaderAt(f io.ReadSeeker, pos Position) (*Reader, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	rd, err := NewReader(f)
	if err != nil {
		return nil, err
	}
	if head := rd.Position(); pos.Offset < head.Offset || pos.Line < head.Line {
		return nil, fmt.Errorf("registry extract: resume position %d (line %d) is inside the header", pos.Offset, pos.Line)
	}
	if _, err := f.Seek(pos.Offset, io.SeekStart); err != nil {
		return nil, err
	}
	rd.csv = newCSV(bufio.NewReaderSize(&lineLimiter{r: f}, 64<<10))
	rd.base, rd.last = pos, 0
	return rd, nil
}

func newCSV(r io.Reader) *csv.Reader {
	c := csv.NewReader(r)
	c.FieldsPerRecord = -1 // checked here, so that the error names the line and counts
	c.ReuseRecord = true
	return c
}

func newReader(r io.Reader, base Position) (*Reader, error) {
	br := bufio.NewReaderSize(&lineLimiter{r: r}, 64<<10)
	if bom, err := br.Peek(3); err == nil && bytes.Equal(bom, []byte("\xef\xbb\xbf")) {
		br.Discard(3)
		base.Offset += 3
	}
	c := newCSV(br)
	header, err := c.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: empty file", ErrHeader)
		}
		return nil, fmt.Errorf("%w: %w", ErrHeader, err)
	}
	rd := &Reader{csv: c, columns: len(header), base: base}
	rd.last = endLine(c, header)
	seen := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(h))
		if _, dup := seen[h]; dup && h != "" {
			return nil, fmt.Errorf("%w: column %q appears twice", ErrHeader, h)
		}
		seen[h] = i
	}
	for i, name := range requiredColumns {
		at, ok := seen[name]
		if !ok {
			return nil, fmt.Errorf("%w: column %q missing (need %s)", ErrHeader, name, strings.Join(requiredColumns[:], ","))
		}
		rd.col[i] = at
	}
	return rd, nil
}

// Read returns the next person, io.EOF at the end, a *LineError for a bad line (call Read
// again to go on), or another error that ends the read. The person is normalised: ID digits
// only, name in display form (vnname.Normalize) with its NameKey, gender in lower case.
func (r *Reader) Read() (match.Person, error) {
	rec, err := r.csv.Read()
	if err != nil {
		var pe *csv.ParseError
		switch {
		case errors.As(err, &pe):
			// csv has read up to the end of the line it failed on.
			r.last = pe.Line
			return match.Person{}, &LineError{Line: r.base.Line + pe.Line, Reason: "malformed CSV: " + pe.Err.Error()}
		case errors.Is(err, ErrLineTooLong):
			return match.Person{}, err
		case errors.Is(err, io.EOF):
			return match.Person{}, io.EOF
		}
		return match.Person{}, fmt.Errorf("registry extract: %w", err)
	}
	line, _ := r.csv.FieldPos(0)
	r.last = endLine(r.csv, rec)
	line += r.base.Line
	if len(rec) != r.columns {
		return match.Person{}, &LineError{Line: line, Reason: fmt.Sprintf("has %d fields, the header %d", len(rec), r.columns)}
	}
	p, field, reason := parsePerson(rec[r.col[0]], rec[r.col[1]], rec[r.col[2]], rec[r.col[3]])
	if reason != "" {
		return match.Person{}, &LineError{Line: line, Field: field, Reason: reason}
	}
	return p, nil
}

// Position is where the reader is: just after the last record it read, rejected ones
// included (after the header before the first Read).
func (r *Reader) Position() Position {
	return Position{Offset: r.base.Offset + r.csv.InputOffset(), Line: r.base.Line + r.last}
}

// endLine is the csv line on which the record just read ends: where its last field starts,
// plus the line breaks inside that field (quoted; csv turns each CRLF in it into LF).
func endLine(c *csv.Reader, rec []string) int {
	if len(rec) == 0 {
		return 0
	}
	line, _ := c.FieldPos(len(rec) - 1)
	return line + strings.Count(rec[len(rec)-1], "\n")
}

// All returns the people and line errors of the rest of the extract, in file order. It
// stops after an error that is not a *LineError.
func (r *Reader) All() iter.Seq2[match.Person, error] {
	return func(yield func(match.Person, error) bool) {
		for {
			p, err := r.Read()
			if errors.Is(err, io.EOF) {
				return
			}
			var le *LineError
			if !yield(p, err) || (err != nil && !errors.As(err, &le)) {
				return
			}
		}
	}
}

// parsePerson validates and normalises one entry; on failure it names the field and why.
func parsePerson(idNumber, fullName, dob, gender string) (p match.Person, field, reason string) {
	p, err := Check(match.Person{
		IDNumber: strings.TrimSpace(idNumber),
		FullName: fullName,
		DOB:      strings.TrimSpace(dob),
		Gender:   strings.ToLower(strings.TrimSpace(gender)),
	})
	var pe *PersonError
	if errors.As(err, &pe) {
		return p, pe.Field, pe.Reason
	}
	return p, "", ""
}

// lineLimiter fails a read once a physical line grows beyond MaxLineBytes, so that a file
// without newlines (or a runaway quoted field) cannot exhaust memory.
type lineLimiter struct {
	r   io.Reader
	run int // bytes since the last '\n'
}

func (l *lineLimiter) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	for b := p[:n]; ; {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			l.run += len(b)
			break
		}
		if l.run += i; l.run > MaxLineBytes {
			break
		}
		l.run, b = 0, b[i+1:]
	}
	if l.run > MaxLineBytes {
		return 0, fmt.Errorf("%w: more than %d bytes", ErrLineTooLong, MaxLineBytes)
	}
	return n, err
}
