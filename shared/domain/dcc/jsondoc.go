package dcc

import (
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"
)

// DecodeDocument reads one JSON document into the values encoding/json would produce with
// UseNumber (map[string]any, []any, string, json.Number, bool, nil), more strictly: it
// rejects oversize input, trailing data, duplicate object keys (two values for one field
// make a certificate ambiguous), invalid UTF-8 (encoding/json would silently replace it)
// and nesting deeper than maxDepth. It is a small hand parser because the
// encoding/json.Decoder token API took ~15µs for one certificate, which the verify path
// cannot afford; FuzzDecodeDocument checks it against encoding/json.
func DecodeDocument(doc []byte) (any, error) {
	if len(doc) > MaxDocumentSize {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrDocument, len(doc), MaxDocumentSize)
	}
	p := jsonParser{b: doc}
	v, err := p.value(0)
	if err == nil {
		p.skipSpace()
		if p.i != len(p.b) {
			err = errors.New("data after the document")
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%w: at byte %d: %w", ErrDocument, p.i, err)
	}
	return v, nil
}

// maxDepth bounds nesting: a DCC is 4 levels deep.
const maxDepth = 16

type jsonParser struct {
	b []byte
	i int
}

var errEnd = errors.New("unexpected end of document")

func (p *jsonParser) skipSpace() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *jsonParser) value(depth int) (any, error) {
	p.skipSpace()
	if p.i >= len(p.b) {
		return nil, errEnd
	}
	switch c := p.b[p.i]; {
	case c == '{':
		if depth >= maxDepth {
			return nil, errors.New("nested too deeply")
		}
		return p.object(depth)
	case c == '[':
		if depth >= maxDepth {
			return nil, errors.New("nested too deeply")
		}
		return p.array(depth)
	case c == '"':
		return p.string()
	case c == '-' || ('0' <= c && c <= '9'):
		return p.number()
	case c == 't':
		return true, p.literal("true")
	case c == 'f':
		return false, p.literal("false")
	case c == 'n':
		return nil, p.literal("null")
	default:
		return nil, fmt.Errorf("unexpected character %q", c)
	}
}

func (p *jsonParser) literal(word string) error {
	if len(p.b)-p.i < len(word) || string(p.b[p.i:p.i+len(word)]) != word {
		return fmt.Errorf("invalid literal, want %s", word)
	}
	p.i += len(word)
	return nil
}

func (p *jsonParser) object(depth int) (any, error) {
	p.i++ // '{'
	obj := make(map[string]any, 8)
	p.skipSpace()
	if p.i < len(p.b) && p.b[p.i] == '}' {
		p.i++
		return obj, nil
	}
	for {
		p.skipSpace()
		if p.i >= len(p.b) {
			return nil, errEnd
		}
		if p.b[p.i] != '"' {
			return nil, errors.New("object key is not a string")
		}
		k, err := p.string()
		if err != nil {
			return nil, err
		}
		key := k.(string)
		if _, dup := obj[key]; dup {
			return nil, fmt.Errorf("duplicate key %q", key)
		}
		p.skipSpace()
		if p.i >= len(p.b) || p.b[p.i] != ':' {
			return nil, errors.New("missing ':' after object key")
		}
		p.i++
		if obj[key], err = p.value(depth + 1); err != nil {
			return nil, err
		}
		p.skipSpace()
		if p.i >= len(p.b) {
			return nil, errEnd
		}
		switch p.b[p.i] {
		case ',':
			p.i++
		case '}':
			p.i++
			return obj, nil
		default:
			return nil, errors.New("missing ',' or '}' in object")
		}
	}
}

func (p *jsonParser) array(depth int) (any, error) {
	p.i++ // '['
	arr := []any{}
	p.skipSpace()
	if p.i < len(p.b) && p.b[p.i] == ']' {
		p.i++
		return arr, nil
	}
	for {
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		arr = append(arr, v)
		p.skipSpace()
		if p.i >= len(p.b) {
			return nil, errEnd
		}
		switch p.b[p.i] {
		case ',':
			p.i++
		case ']':
			p.i++
			return arr, nil
		default:
			return nil, errors.New("missing ',' or ']' in array")
		}
	}
}

// string reads a JSON string. Strings without escapes (all of a certificate's, in
// practice) are taken as they are; escaped ones are unquoted by encoding/json itself, so
// escape handling cannot differ from it.
func (p *jsonParser) string() (any, error) {
	start := p.i
	p.i++ // opening quote
	escaped := false
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			raw := p.b[start+1 : p.i]
			p.i++
			if !utf8.Valid(raw) {
				return nil, errors.New("string is not valid UTF-8")
			}
			if !escaped {
				return string(raw), nil
			}
			var s string
			if err := json.Unmarshal(p.b[start:p.i], &s); err != nil {
				return nil, fmt.Errorf("invalid string escape: %w", err)
			}
			return s, nil
		case c == '\\':
			escaped = true
			p.i += 2 // the escaped character; \uXXXX digits are checked by json.Unmarshal
		case c < 0x20:
			return nil, errors.New("control character in string")
		default:
			p.i++
		}
	}
	return nil, errEnd
}

// number reads a number by the JSON grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (p *jsonParser) number() (any, error) {
	start := p.i
	if p.b[p.i] == '-' {
		p.i++
	}
	digits := func() int {
		n := 0
		for p.i < len(p.b) && '0' <= p.b[p.i] && p.b[p.i] <= '9' {
			p.i++
			n++
		}
		return n
	}
	switch {
	case p.i < len(p.b) && p.b[p.i] == '0':
		p.i++
	case digits() == 0:
		return nil, errors.New("invalid number")
	}
	if p.i < len(p.b) && p.b[p.i] == '.' {
		p.i++
		if digits() == 0 {
			return nil, errors.New("invalid number: no digits after '.'")
		}
	}
	if p.i < len(p.b) && (p.b[p.i] == 'e' || p.b[p.i] == 'E') {
		p.i++
		if p.i < len(p.b) && (p.b[p.i] == '+' || p.b[p.i] == '-') {
			p.i++
		}
		if digits() == 0 {
			return nil, errors.New("invalid number: no digits in exponent")
		}
	}
	return json.Number(p.b[start:p.i]), nil
}
