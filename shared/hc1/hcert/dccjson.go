package hcert

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/vaxpass/vaxpass/shared/hc1/trust"
)

// CBOR tags allowed inside a DCC: RFC 3339 date-time text (0), epoch seconds
// (1) and RFC 8943 full-date text (1004).
const (
	tagDateTimeText = 0
	tagEpoch        = 1
	tagFullDateText = 1004
)

// DCCToJSON converts the CBOR of a DCC to JSON: maps with text keys become
// objects (key order kept), arrays arrays, text strings strings, integers and
// floats numbers, booleans and null themselves; tags 0 and 1004 become their
// date text, tag 1 an RFC 3339 UTC string. Non-text map keys, duplicate keys,
// byte strings, undefined, other simple values and other tags are errors
// wrapping ErrDCC, as are NaN and infinities (JSON has no form for them).
func DCCToJSON(dcc []byte) ([]byte, error) {
	return AppendDCCJSON(make([]byte, 0, len(dcc)+len(dcc)/4+16), dcc)
}

// AppendDCCJSON is DCCToJSON appending to dst.
func AppendDCCJSON(dst, dcc []byte) ([]byte, error) {
	c := cborReader{data: dcc}
	out, err := c.json(dst, 0)
	if err != nil {
		return dst, fmt.Errorf("%w: %w", ErrDCC, err)
	}
	if c.pos != len(dcc) {
		return dst, fmt.Errorf("%w: %d bytes after the DCC", ErrDCC, len(dcc)-c.pos)
	}
	return out, nil
}

// CertificateType returns which of v (vaccination), t (test) and r (recovery)
// the DCC holds; exactly one must be present.
func CertificateType(dcc []byte) (trust.CertType, error) {
	c := cborReader{data: dcc}
	major, count, indef, err := c.head()
	if err != nil || major != majorMap {
		return 0, fmt.Errorf("%w: not a CBOR map", ErrDCC)
	}
	var found []trust.CertType
	for i := 0; indef || uint64(i) < count; i++ {
		if indef && c.atBreak() {
			break
		}
		key, err := c.textKey()
		if err != nil {
			return 0, fmt.Errorf("%w: %w", ErrDCC, err)
		}
		if len(key) == 1 && (key[0] == 'v' || key[0] == 't' || key[0] == 'r') {
			found = append(found, trust.CertType(key[0]))
		}
		if err := c.skip(1); err != nil {
			return 0, fmt.Errorf("%w: %w", ErrDCC, err)
		}
	}
	if len(found) != 1 {
		return 0, fmt.Errorf("%w: holds %d of the entries v, t, r; want exactly one", ErrDCC, len(found))
	}
	return found[0], nil
}

// text reads a text string, definite or made of definite chunks, appending it
// JSON-quoted to dst.
func (c *cborReader) text(dst []byte, n uint64, indef bool) ([]byte, error) {
	dst = append(dst, '"')
	for {
		if indef {
			if c.atBreak() {
				break
			}
			at := c.pos
			major, cn, cindef, err := c.head()
			if err != nil {
				return nil, err
			}
			if major != majorText || cindef {
				return nil, fmt.Errorf("offset %d: indefinite text chunk is not a definite text string", at)
			}
			n = cn
		}
		at := c.pos
		s, err := c.take(n)
		if err != nil {
			return nil, err
		}
		if !utf8.Valid(s) {
			return nil, fmt.Errorf("offset %d: text is not valid UTF-8", at)
		}
		dst = appendJSONText(dst, s)
		if !indef {
			break
		}
	}
	return append(dst, '"'), nil
}

func (c *cborReader) json(dst []byte, depth int) ([]byte, error) {
	if depth > maxNesting {
		return nil, fmt.Errorf("offset %d: nesting deeper than %d", c.pos, maxNesting)
	}
	at := c.pos
	major, arg, indef, err := c.head()
	if err != nil {
		return nil, err
	}
	switch major {
	case majorUint:
		return strconv.AppendUint(dst, arg, 10), nil
	case majorNegInt:
		if arg < math.MaxInt64 {
			return strconv.AppendInt(dst, -1-int64(arg), 10), nil
		}
		if arg == math.MaxUint64 {
			return append(dst, "-18446744073709551616"...), nil
		}
		return strconv.AppendUint(append(dst, '-'), arg+1, 10), nil
	case majorBytes:
		return nil, fmt.Errorf("offset %d: byte string has no JSON form", at)
	case majorText:
		return c.text(dst, arg, indef)
	case majorArray:
		dst = append(dst, '[')
		for i := uint64(0); indef || i < arg; i++ {
			if indef && c.atBreak() {
				break
			}
			if i >= maxElements {
				return nil, fmt.Errorf("offset %d: array longer than %d", at, maxElements)
			}
			if i > 0 {
				dst = append(dst, ',')
			}
			if dst, err = c.json(dst, depth+1); err != nil {
				return nil, err
			}
		}
		return append(dst, ']'), nil
	case majorMap:
		return c.object(dst, at, arg, indef, depth)
	case majorTag:
		return c.tagged(dst, at, arg, depth)
	}
	return c.simple(dst, at, arg, indef)
}

func (c *cborReader) object(dst []byte, at int, n uint64, indef bool, depth int) ([]byte, error) {
	var keyBuf [16][]byte // seen keys, for duplicate detection without allocating
	keys := keyBuf[:0]
	dst = append(dst, '{')
	for i := uint64(0); indef || i < n; i++ {
		if indef && c.atBreak() {
			break
		}
		if i >= maxElements {
			return nil, fmt.Errorf("offset %d: map larger than %d", at, maxElements)
		}
		kat := c.pos
		k, err := c.textKey()
		if err != nil {
			return nil, err
		}
		for _, seen := range keys {
			if bytes.Equal(seen, k) {
				return nil, fmt.Errorf("offset %d: duplicate map key %q", kat, k)
			}
		}
		keys = append(keys, k)
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(appendJSONText(append(dst, '"'), k), '"', ':')
		if dst, err = c.json(dst, depth+1); err != nil {
			return nil, err
		}
	}
	return append(dst, '}'), nil
}

func (c *cborReader) tagged(dst []byte, at int, tag uint64, depth int) ([]byte, error) {
	switch tag {
	case tagDateTimeText, tagFullDateText:
		major, n, indef, err := c.head()
		if err != nil {
			return nil, err
		}
		if major != majorText {
			return nil, fmt.Errorf("offset %d: tag %d does not enclose a text string", at, tag)
		}
		return c.text(dst, n, indef)
	case tagEpoch:
		var sec float64
		major, arg, _, err := c.head()
		if err != nil {
			return nil, err
		}
		switch major {
		case majorUint:
			sec = float64(arg)
		case majorNegInt:
			sec = -1 - float64(arg)
		case majorSimple:
			if sec, err = c.float(at, arg); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("offset %d: tag 1 does not enclose a number", at)
		}
		if math.IsNaN(sec) || math.Abs(sec) > 1<<40 {
			return nil, fmt.Errorf("offset %d: tag 1 time %v out of range", at, sec)
		}
		whole, frac := math.Modf(sec)
		t := time.Unix(int64(whole), int64(frac*1e9)).UTC()
		return strconv.AppendQuote(dst, t.Format(time.RFC3339Nano)), nil
	}
	return nil, fmt.Errorf("offset %d: tag %d is not allowed in a DCC", at, tag)
}

// simple handles major type 7: false, true, null and floats.
func (c *cborReader) simple(dst []byte, at int, arg uint64, indef bool) ([]byte, error) {
	if indef {
		return nil, fmt.Errorf("offset %d: unexpected break", at)
	}
	ai := c.data[at] & 0x1f
	switch {
	case ai == 20:
		return append(dst, "false"...), nil
	case ai == 21:
		return append(dst, "true"...), nil
	case ai == 22:
		return append(dst, "null"...), nil
	case ai >= 25 && ai <= 27:
		f, err := c.float(at, arg)
		if err != nil {
			return nil, err
		}
		return appendJSONFloat(dst, f, ai != 27), nil
	}
	return nil, fmt.Errorf("offset %d: simple value %d has no JSON form", at, arg)
}

// float decodes the float whose head is at data[at] with argument bits.
func (c *cborReader) float(at int, bits uint64) (float64, error) {
	var f float64
	switch c.data[at] & 0x1f {
	case 25:
		f = halfToFloat(uint16(bits))
	case 26:
		f = float64(math.Float32frombits(uint32(bits)))
	case 27:
		f = math.Float64frombits(bits)
	default:
		return 0, fmt.Errorf("offset %d: not a float", at)
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("offset %d: NaN or infinity has no JSON form", at)
	}
	return f, nil
}

// appendJSONText appends s (valid UTF-8) with JSON escapes, without quotes.
func appendJSONText(dst, s []byte) []byte {
	const hex = "0123456789abcdef"
	start := 0
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[b>>4], hex[b&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == '\u2028' || r == '\u2029' { // valid JSON, but not valid JavaScript
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xf])
			start = i + size
		}
		i += size
	}
	return append(dst, s[start:]...)
}

// appendJSONFloat formats like encoding/json (shortest form; exponent only for
// very small or large magnitudes). narrow selects float32 precision for
// values that came from half or single floats.
func appendJSONFloat(dst []byte, f float64, narrow bool) []byte {
	bitSize := 64
	if narrow {
		bitSize = 32
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (bitSize == 64 && (abs < 1e-6 || abs >= 1e21) || bitSize == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21)) {
		format = 'e'
	}
	n := len(dst)
	dst = strconv.AppendFloat(dst, f, format, -1, bitSize)
	if format == 'e' { // clean up e-09 to e-9
		m := len(dst) - n
		if m >= 4 && dst[len(dst)-4] == 'e' && dst[len(dst)-3] == '-' && dst[len(dst)-2] == '0' {
			dst[len(dst)-2] = dst[len(dst)-1]
			dst = dst[:len(dst)-1]
		}
	}
	return dst
}

// halfToFloat converts an IEEE 754 half-precision value (RFC 8949 Appendix D).
func halfToFloat(h uint16) float64 {
	exp := int(h>>10) & 0x1f
	mant := float64(h & 0x3ff)
	var v float64
	switch exp {
	case 0:
		v = math.Ldexp(mant, -24)
	case 31:
		if mant == 0 {
			v = math.Inf(1)
		} else {
			v = math.NaN()
		}
	default:
		v = math.Ldexp(mant+1024, exp-25)
	}
	if h&0x8000 != 0 {
		return -v
	}
	return v
}
