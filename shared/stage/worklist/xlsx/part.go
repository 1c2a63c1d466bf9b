package xlsx

import (
	"bufio"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// maxDepth bounds element nesting: a shared string with rich text nests five deep, a
// cell's inline string six; the decoder keeps one entry per open element.
const maxDepth = 64

// xmlPart is one part of the package being decoded token by token.
type xmlPart struct {
	name  string
	rc    io.ReadCloser
	dec   *xml.Decoder
	depth int
	stack []string // local names of the open elements
	ended bool     // the root element has ended
}

// openPart starts decoding a part: its declared size is checked before inflating, its
// actual size while inflating (headers can lie), and no token may outgrow maxText.
func (r *Reader) openPart(name string, maxText int) (*xmlPart, error) {
	f := r.parts[strings.ToLower(name)]
	if f == nil {
		return nil, fmt.Errorf("%w: no part %s", ErrCorrupt, quoteName(name))
	}
	if f.UncompressedSize64 > uint64(r.lim.MaxPartBytes) {
		return nil, fmt.Errorf("%w: %s declares %d bytes (limit %d)", ErrPartTooLarge, quoteName(name), f.UncompressedSize64, r.lim.MaxPartBytes)
	}
	if f.UncompressedSize64 > ratioFloor && f.UncompressedSize64 > uint64(r.lim.MaxRatio)*max(f.CompressedSize64, 1) {
		return nil, fmt.Errorf("%w: %s declares %d bytes from %d (limit %d:1)", ErrCompressionRatio, quoteName(name),
			f.UncompressedSize64, f.CompressedSize64, r.lim.MaxRatio)
	}
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, quoteName(name), err)
	}
	cr := &countReader{r: rc, name: name, partMax: r.lim.MaxPartBytes, total: &r.inflated, totalMax: r.lim.MaxTotalBytes}
	br := bufio.NewReaderSize(cr, 32<<10)
	if bom, _ := br.Peek(3); string(bom) == "\ufeff" {
		br.Discard(3) // encoding/xml does not expect a byte-order mark
	}
	dec := xml.NewDecoder(newGuard(br, maxText))
	dec.Strict = true
	return &xmlPart{name: name, rc: rc, dec: dec}, nil
}

func (p *xmlPart) Close() error { return p.rc.Close() }

// next returns the next token; io.EOF at the end of the part.
func (p *xmlPart) next() (xml.Token, error) {
	tok, err := p.dec.Token()
	if err != nil {
		if err == io.EOF {
			return nil, io.EOF
		}
		return nil, p.fail(err)
	}
	switch t := tok.(type) {
	case xml.StartElement:
		if p.ended {
			return nil, p.corrupt("a second root element")
		}
		p.depth++
		if p.depth > maxDepth {
			return nil, fmt.Errorf("%w: %s nests elements deeper than %d", ErrMarkupTooLarge, quoteName(p.name), maxDepth)
		}
		p.stack = append(p.stack, t.Name.Local)
	case xml.EndElement:
		p.depth--
		p.stack = p.stack[:p.depth]
		p.ended = p.depth == 0
	}
	return tok, nil
}

// parent is the local name of the element around the one just started ("" at the root).
func (p *xmlPart) parent() string {
	if len(p.stack) < 2 {
		return ""
	}
	return p.stack[len(p.stack)-2]
}

// fail gives a decoding error its sentinel: a limit's own, or ErrCorrupt.
func (p *xmlPart) fail(err error) error {
	if errors.Is(err, ErrTooLarge) || errors.Is(err, ErrCorrupt) {
		return fmt.Errorf("%s: %w", quoteName(p.name), err)
	}
	return fmt.Errorf("%w: %s: %v", ErrCorrupt, quoteName(p.name), err)
}

func (p *xmlPart) corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrCorrupt, quoteName(p.name), fmt.Sprintf(format, args...))
}

// root reads up to the root element and checks its name.
func (p *xmlPart) root(local string) (xml.StartElement, error) {
	for {
		tok, err := p.next()
		if err != nil {
			if err == io.EOF {
				return xml.StartElement{}, p.corrupt("no <%s> element", local)
			}
			return xml.StartElement{}, err
		}
		if se, ok := tok.(xml.StartElement); ok {
			if se.Name.Local != local {
				return se, p.corrupt("<%s> where <%s> belongs", truncateName(se.Name.Local), local)
			}
			return se, nil
		}
	}
}

// skip reads past the end of the element whose start tag was just returned.
func (p *xmlPart) skip() error {
	depth := p.depth
	for p.depth >= depth {
		if _, err := p.next(); err != nil {
			if err == io.EOF {
				return p.corrupt("unexpected end")
			}
			return err
		}
	}
	return nil
}

// text appends the character data of the element whose start tag was just returned to
// buf, up to its end tag; more than limit bytes in all is ErrCellTooLarge. Elements
// inside it are skipped.
func (p *xmlPart) text(buf []byte, limit int) ([]byte, error) {
	depth := p.depth
	for {
		tok, err := p.next()
		if err != nil {
			if err == io.EOF {
				return buf, p.corrupt("unexpected end")
			}
			return buf, err
		}
		switch t := tok.(type) {
		case xml.CharData:
			if len(buf)+len(t) > limit {
				return buf, fmt.Errorf("%w: %s: more than %d bytes", ErrCellTooLarge, quoteName(p.name), limit)
			}
			buf = append(buf, t...)
		case xml.StartElement:
			if err := p.skip(); err != nil {
				return buf, err
			}
		case xml.EndElement:
			if p.depth < depth {
				return buf, nil
			}
		}
	}
}

func attr(se xml.StartElement, local string) (string, bool) {
	for _, a := range se.Attr {
		if a.Name.Local == local && a.Name.Space == "" {
			return a.Value, true
		}
	}
	return "", false
}

// countReader counts the bytes a part inflates to, against the part's limit and the
// total of all parts read.
type countReader struct {
	r        io.Reader
	name     string
	part     int64
	partMax  int64
	total    *int64
	totalMax int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.part += int64(n)
	*c.total += int64(n)
	if c.part > c.partMax {
		return 0, fmt.Errorf("%w: %s inflates past %d bytes", ErrPartTooLarge, quoteName(c.name), c.partMax)
	}
	if *c.total > c.totalMax {
		return 0, fmt.Errorf("%w: the parts read inflate past %d bytes", ErrInflatedTooLarge, c.totalMax)
	}
	return n, err
}

// quoteName shows a part name from the file in an error, cut short: it is the sender's
// text, not ours.
func quoteName(name string) string { return fmt.Sprintf("%q", truncateName(name)) }

func truncateName(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
