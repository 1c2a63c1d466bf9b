package xlsx

import (
	"fmt"
	"io"
)

// guard sits between a part's inflated bytes and encoding/xml's Decoder, which reads each
// token (a run of text, a tag, a comment) whole into memory before returning it: it fails
// the stream as soon as one token grows past its bound, so that a 100 MB cell costs a few
// hundred kilobytes at most, not 100 MB. It follows just enough XML to know where tokens
// end, and refuses DTDs (<!DOCTYPE ...>), which OOXML parts never have.
type guard struct {
	r       io.Reader
	maxText int // text between two tags
	maxMark int // a tag, comment, CDATA section or processing instruction
	state   guardState
	run     int    // bytes of the current token so far
	quote   byte   // the quote an attribute value opened, in a tag
	tail    int    // '-' or ']' seen in a row (comment, CDATA end), '?' (PI end)
	bang    []byte // what follows "<!", until it tells a comment from CDATA
	err     error
}

type guardState uint8

const (
	inText guardState = iota
	afterLT
	inTag
	inBang
	inComment
	inCDATA
	inPI
)

func newGuard(r io.Reader, maxText int) *guard {
	return &guard{r: r, maxText: maxText, maxMark: maxMarkup}
}

// maxMarkup bounds a tag with its attributes, a comment or a processing instruction:
// Excel's longest are the root elements with a dozen namespace declarations, about 1 KB.
const maxMarkup = 64 << 10

func (g *guard) Read(p []byte) (int, error) {
	if g.err != nil {
		return 0, g.err
	}
	n, err := g.r.Read(p)
	if cerr := g.check(p[:n]); cerr != nil {
		g.err = cerr
		return 0, cerr
	}
	return n, err
}

func (g *guard) check(p []byte) error {
	for _, c := range p {
		g.run++
		switch g.state {
		case inText:
			if c == '<' {
				g.state, g.run = afterLT, 1
				continue
			}
			if g.run > g.maxText {
				return fmt.Errorf("%w: text of more than %d bytes", ErrCellTooLarge, g.maxText)
			}
			continue
		case afterLT:
			switch c {
			case '!':
				g.state, g.bang = inBang, g.bang[:0]
			case '?':
				g.state, g.tail = inPI, 0
			case '>':
				g.state, g.run = inText, 0
			default:
				g.state, g.quote = inTag, 0
			}
		case inTag:
			switch {
			case g.quote != 0:
				if c == g.quote {
					g.quote = 0
				}
			case c == '"' || c == '\'':
				g.quote = c
			case c == '>':
				g.state, g.run = inText, 0
				continue
			}
		case inBang:
			g.bang = append(g.bang, c)
			switch string(g.bang) {
			case "--":
				g.state, g.tail = inComment, 0
			case "[CDATA[":
				g.state, g.tail = inCDATA, 0
			default:
				if !isPrefix(g.bang, "--") && !isPrefix(g.bang, "[CDATA[") {
					return fmt.Errorf("%w: a DTD or directive (<!%s)", ErrCorrupt, g.bang)
				}
			}
		case inComment:
			g.tail = endOf(g.tail, c, '-', 2)
			if g.tail < 0 {
				g.state, g.run = inText, 0
				continue
			}
		case inCDATA:
			g.tail = endOf(g.tail, c, ']', 2)
			if g.tail < 0 {
				g.state, g.run = inText, 0
				continue
			}
			if g.run > g.maxText+len("<![CDATA[]]>") {
				return fmt.Errorf("%w: CDATA of more than %d bytes", ErrCellTooLarge, g.maxText)
			}
			continue
		case inPI:
			g.tail = endOf(g.tail, c, '?', 1)
			if g.tail < 0 {
				g.state, g.run = inText, 0
				continue
			}
		}
		if g.run > g.maxMark {
			return fmt.Errorf("%w: a tag or comment of more than %d bytes", ErrMarkupTooLarge, g.maxMark)
		}
	}
	return nil
}

// endOf follows a terminator made of at least need copies of mark then '>' ("-->",
// "]]>", "?>"): it returns how many marks are pending, or -1 when c ends the token.
func endOf(seen int, c, mark byte, need int) int {
	switch {
	case c == mark:
		return seen + 1
	case c == '>' && seen >= need:
		return -1
	default:
		return 0
	}
}

func isPrefix(b []byte, s string) bool { return len(b) <= len(s) && string(b) == s[:len(b)] }
