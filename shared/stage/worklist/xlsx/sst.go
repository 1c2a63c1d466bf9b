package xlsx

import (
	"encoding/xml"
	"fmt"
	"io"
	"strconv"
)

// sharedStrings is the workbook's string table, kept as one string and the end offset of
// each entry: 4 bytes per entry rather than a 16-byte string header and an allocation.
type sharedStrings struct {
	text string
	ends []uint32
}

func (s *sharedStrings) get(i int) (string, bool) {
	if s == nil || i < 0 || i >= len(s.ends) {
		return "", false
	}
	start := uint32(0)
	if i > 0 {
		start = s.ends[i-1]
	}
	return s.text[start:s.ends[i]], true
}

// readSharedStrings streams the table: the declared count is checked before any entry is
// read, and each entry, the entries' number and their text as they come.
func (r *Reader) readSharedStrings() (*sharedStrings, error) {
	if r.stringsPt == "" {
		return nil, nil
	}
	p, err := r.openPart(r.stringsPt, r.textBound())
	if err != nil {
		return nil, err
	}
	defer p.Close()
	root, err := p.root("sst")
	if err != nil {
		return nil, err
	}
	// uniqueCount is optional and only a claim; the entries are counted as they come too.
	if v, ok := attr(root, "uniqueCount"); ok {
		if n, err := strconv.ParseUint(v, 10, 64); err == nil && n > uint64(r.lim.MaxSharedStrings) {
			return nil, fmt.Errorf("%w: %s declares %d (limit %d)", ErrTooManySharedStrings, quoteName(p.name), n, r.lim.MaxSharedStrings)
		}
	}
	var (
		buf  []byte
		ends []uint32
		item []byte
	)
	for {
		tok, err := p.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		se, ok := tok.(xml.StartElement)
		if !ok || se.Name.Local != "si" || p.depth != 2 {
			continue
		}
		if len(ends) == r.lim.MaxSharedStrings {
			return nil, fmt.Errorf("%w: %s has more than %d", ErrTooManySharedStrings, quoteName(p.name), r.lim.MaxSharedStrings)
		}
		if item, err = r.stringItem(p, item[:0]); err != nil {
			return nil, err
		}
		if int64(len(buf))+int64(len(item)) > r.lim.MaxSharedStringBytes {
			return nil, fmt.Errorf("%w: %s holds more than %d bytes of text", ErrSharedStringsTooLarge, quoteName(p.name), r.lim.MaxSharedStringBytes)
		}
		buf = append(buf, item...)
		ends = append(ends, uint32(len(buf)))
	}
	return &sharedStrings{text: string(buf), ends: ends}, nil
}

// stringItem reads the text of a string item (CT_Rst: a shared string <si> or a cell's
// inline <is>) whose start tag was just returned: its <t>, or the <t> of each rich-text
// run <r>; phonetic runs (<rPh>) are a reading aid, not text. Whitespace is kept with or
// without xml:space="preserve": a run of one space between two formatted words is text.
func (r *Reader) stringItem(p *xmlPart, out []byte) ([]byte, error) {
	depth := p.depth
	for {
		tok, err := p.next()
		if err != nil {
			if err == io.EOF {
				return out, p.corrupt("unexpected end")
			}
			return out, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			switch {
			case t.Name.Local == "t" && (p.depth == depth+1 || p.depth == depth+2 && p.parent() == "r"):
				start := len(out)
				if out, err = p.text(out, start+r.lim.MaxCellBytes); err != nil {
					return out, err
				}
				out = append(out[:start], decodeXstring(out[start:])...)
				if len(out) > r.lim.MaxCellBytes {
					return out, fmt.Errorf("%w: %s: more than %d bytes", ErrCellTooLarge, quoteName(p.name), r.lim.MaxCellBytes)
				}
			case t.Name.Local == "r" && p.depth == depth+1:
				// a run: its <t> comes next; its <rPr> is skipped below
			default:
				if err := p.skip(); err != nil {
					return out, err
				}
			}
		case xml.EndElement:
			if p.depth < depth {
				return out, nil
			}
		}
	}
}

// textBound is the longest run of character data a part may hold: a cell's text with
// every character written as an entity or escape (&#x1F600; is 10 bytes for 4).
func (r *Reader) textBound() int { return 4*r.lim.MaxCellBytes + 1024 }
