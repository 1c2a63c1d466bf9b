package xlsx

import (
	"encoding/xml"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Row is one row of the sheet that has at least one cell element.
type Row struct {
	Num   int    // 1-based row number
	Cells []Cell // in column order, gaps left out; empty cells are not reported
}

// Rows streams the worksheet's rows. Use it as
//
//	rows, err := r.Rows()
//	...
//	defer rows.Close()
//	for rows.Next() { row := rows.Row() ... }
//	if err := rows.Err(); err != nil { ... }
type Rows struct {
	r       *Reader
	p       *xmlPart
	strings *sharedStrings
	formats []numFormat
	row     Row
	last    int // number of the last row read
	buf     []byte
	err     error
}

// Rows reads the styles and the shared-string table, then opens the first worksheet. Only
// one Rows should be open at a time: the limits on inflated bytes count for the Reader.
func (r *Reader) Rows() (*Rows, error) {
	formats, err := r.readStyles()
	if err != nil {
		return nil, err
	}
	sst, err := r.readSharedStrings()
	if err != nil {
		return nil, err
	}
	p, err := r.openPart(r.sheetPart, r.textBound())
	if err != nil {
		return nil, err
	}
	if _, err := p.root("worksheet"); err != nil {
		p.Close()
		return nil, err
	}
	return &Rows{r: r, p: p, strings: sst, formats: formats}, nil
}

// Next reads the next row; false at the end of the sheet or on an error (Err).
func (rs *Rows) Next() bool {
	if rs.err != nil {
		return false
	}
	for {
		tok, err := rs.p.next()
		if err != nil {
			rs.err = err // io.EOF at the end of the sheet
			return false
		}
		se, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		switch {
		case se.Name.Local == "row" && rs.p.depth == 3 && rs.p.parent() == "sheetData":
			if err := rs.readRow(se); err != nil {
				rs.err = err
				return false
			}
			return true
		case rs.p.depth == 2 && se.Name.Local != "sheetData":
			// sheet properties, columns, merged cells ...: nothing a row needs
			if err := rs.p.skip(); err != nil {
				rs.err = err
				return false
			}
		}
	}
}

// Row is the row Next read. Its Cells are reused by the next call to Next.
func (rs *Rows) Row() Row { return rs.row }

// Err is the error that ended Next, nil at the end of the sheet.
func (rs *Rows) Err() error {
	if rs.err == io.EOF {
		return nil
	}
	return rs.err
}

// Close releases the sheet.
func (rs *Rows) Close() error { return rs.p.Close() }

func (rs *Rows) readRow(se xml.StartElement) error {
	p, lim := rs.p, rs.r.lim
	num, numbered := rs.last+1, false
	if v, ok := attr(se, "r"); ok {
		n, ok := parseIndex(v)
		if !ok {
			return p.corrupt("row number %q", truncateName(v))
		}
		num, numbered = n, true
	}
	if err := rs.checkRow(num); err != nil {
		return err
	}
	rs.row = Row{Num: num, Cells: rs.row.Cells[:0]}
	lastCol := -1
	for {
		tok, err := p.next()
		if err != nil {
			if err == io.EOF {
				return p.corrupt("row %d: unexpected end", num)
			}
			return err
		}
		switch t := tok.(type) {
		case xml.EndElement:
			rs.last = rs.row.Num
			return nil
		case xml.StartElement:
			if t.Name.Local != "c" {
				if err := p.skip(); err != nil {
					return err
				}
				continue
			}
			col := lastCol + 1
			if ref, ok := attr(t, "r"); ok {
				c, row, ok := parseRef(ref)
				if !ok {
					return p.corrupt("row %d: cell reference %q", rs.row.Num, truncateName(ref))
				}
				if row != rs.row.Num {
					// A row without a number takes its first cell's.
					if numbered || lastCol >= 0 {
						return p.corrupt("cell %s in row %d", truncateName(ref), rs.row.Num)
					}
					if err := rs.checkRow(row); err != nil {
						return err
					}
					rs.row.Num = row
				}
				col = c
			}
			if col >= lim.MaxColumns {
				return fmt.Errorf("%w: cell %s (limit %d columns)", ErrTooManyColumns, CellName(min(col, MaxSheetColumns), rs.row.Num), lim.MaxColumns)
			}
			if col <= lastCol {
				return p.corrupt("cell %s out of order in row %d", CellName(col, rs.row.Num), rs.row.Num)
			}
			lastCol = col
			cell, err := rs.readCell(t, col)
			if err != nil {
				return err
			}
			if cell.Value != "" {
				rs.row.Cells = append(rs.row.Cells, cell)
			}
		}
	}
}

// checkRow refuses a row number before its row is read: out of order, or past the limit.
func (rs *Rows) checkRow(num int) error {
	if num <= rs.last {
		return rs.p.corrupt("row %d after row %d", num, rs.last)
	}
	if num > rs.r.lim.MaxRows {
		return fmt.Errorf("%w: row %d (limit %d)", ErrTooManyRows, min(num, MaxSheetRows+1), rs.r.lim.MaxRows)
	}
	return nil
}

// readCell reads the cell whose start tag was just returned.
func (rs *Rows) readCell(se xml.StartElement, col int) (Cell, error) {
	p, lim := rs.p, rs.r.lim
	name := func() string { return CellName(col, rs.row.Num) }
	typ, _ := attr(se, "t")
	format := general
	if s, ok := attr(se, "s"); ok {
		i, err := strconv.Atoi(s)
		switch {
		case err != nil || i < 0:
			return Cell{}, p.corrupt("cell %s: style %q", name(), truncateName(s))
		case i < len(rs.formats):
			format = rs.formats[i]
		case i > 0 || rs.formats != nil:
			return Cell{}, p.corrupt("cell %s: style %d of %d", name(), i, len(rs.formats))
		}
	}

	var value []byte
	hasValue, inline := false, false
	depth := p.depth
	for {
		tok, err := p.next()
		if err != nil {
			if err == io.EOF {
				return Cell{}, p.corrupt("cell %s: unexpected end", name())
			}
			return Cell{}, err
		}
		if _, end := tok.(xml.EndElement); end && p.depth < depth {
			break
		}
		t, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		switch {
		case t.Name.Local == "v" && !hasValue:
			if value, err = p.text(rs.buf[:0], lim.MaxCellBytes); err != nil {
				return Cell{}, fmt.Errorf("cell %s: %w", name(), err)
			}
			hasValue = true
		case t.Name.Local == "is" && !inline:
			if value, err = rs.r.stringItem(p, rs.buf[:0]); err != nil {
				return Cell{}, fmt.Errorf("cell %s: %w", name(), err)
			}
			inline = true
		default: // a formula (its cached result is <v>), extensions
			if err := p.skip(); err != nil {
				return Cell{}, err
			}
		}
	}
	rs.buf = value[:0]

	cell := Cell{Col: col, Format: format.code, date1904: rs.r.date1904}
	switch typ {
	case "inlineStr":
		cell.Type, cell.Value = TypeInlineString, string(value)
	case "s":
		if !hasValue {
			return cell, nil
		}
		i, err := strconv.Atoi(strings.TrimSpace(string(value)))
		s, ok := rs.strings.get(i)
		if err != nil || !ok {
			return Cell{}, p.corrupt("cell %s: no such shared string", name())
		}
		cell.Type, cell.Value = TypeString, s
	case "str":
		cell.Type, cell.Value = TypeString, string(decodeXstring(value))
	case "b":
		switch strings.TrimSpace(string(value)) {
		case "":
		case "1", "true":
			cell.Type, cell.Value = TypeBool, "1"
		case "0", "false":
			cell.Type, cell.Value = TypeBool, "0"
		default:
			return Cell{}, p.corrupt("cell %s: not a boolean", name())
		}
	case "e":
		cell.Type, cell.Value = TypeError, strings.TrimSpace(string(value))
	case "d":
		cell.Type, cell.Value = TypeDate, strings.TrimSpace(string(value))
	case "n", "":
		v := strings.TrimSpace(string(value))
		if v == "" {
			return cell, nil
		}
		if !validNumber(v) {
			// The value is not quoted: it is the sender's data, and may be personal.
			return Cell{}, p.corrupt("cell %s: not a number", name())
		}
		if _, err := strconv.ParseFloat(v, 64); err != nil {
			return Cell{}, p.corrupt("cell %s: number out of range", name())
		}
		cell.Type, cell.Value = TypeNumber, v
		if format.date {
			cell.Type = TypeDate
		}
	default:
		return Cell{}, p.corrupt("cell %s: type %q", name(), truncateName(typ))
	}
	return cell, nil
}
