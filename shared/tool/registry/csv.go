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
}

// NewReader reads the header of an extract.
func NewReader(r io.Reader) (*Reader, error) {
	br := bufio.NewReaderSize(&lineLimiter{r: r}, 64<<10)
	if bom, err := br.Peek(3); err == nil && bytes.Equal(bom, []byte("\xef\xbb\xbf")) {
		br.Discard(3)
	}
	c := csv.NewReader(br)
	c.FieldsPerRecord = -1 // checked here, so that the error names the line and counts
	c.ReuseRecord = true
	header, err := c.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: empty file", ErrHeader)
		}
		return nil, fmt.Errorf("%w: %w", ErrHeader, err)
	}
	rd := &Reader{csv: c, columns: len(header)}
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
			return match.Person{}, &LineError{Line: pe.Line, Reason: "malformed CSV: " + pe.Err.Error()}
		case errors.Is(err, ErrLineTooLong):
			return match.Person{}, err
		case errors.Is(err, io.EOF):
			return match.Person{}, io.EOF
		}
		return match.Person{}, fmt.Errorf("registry extract: %w", err)
	}
	line, _ := r.csv.FieldPos(0)
	if len(rec) != r.columns {
		return match.Person{}, &LineError{Line: line, Reason: fmt.Sprintf("has %d fields, the header %d", len(rec), r.columns)}
	}
	p, field, reason := parsePerson(rec[r.col[0]], rec[r.col[1]], rec[r.col[2]], rec[r.col[3]])
	if reason != "" {
		return match.Person{}, &LineError{Line: line, Field: field, Reason: reason}
	}
	return p, nil
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
