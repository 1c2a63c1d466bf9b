package xlsx

import (
	"bytes"
	"strings"
	"unicode/utf8"
)

// OOXML strings (ST_Xstring) carry characters XML 1.0 cannot, such as most control
// characters, as _xHHHH_ (a UTF-16 code unit in hex); an underscore that would read as
// the start of one is itself written _x005F_.

// decodeXstring undoes the _xHHHH_ escapes in s.
func decodeXstring(s []byte) []byte {
	if !bytes.Contains(s, []byte("_x")) {
		return s
	}
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); {
		if u, ok := xEscape(s[i:]); ok {
			i += 7
			// A surrogate pair is two escapes in a row.
			if u >= 0xd800 && u < 0xdc00 {
				if lo, ok := xEscape(s[i:]); ok && lo >= 0xdc00 && lo < 0xe000 {
					i += 7
					out = utf8.AppendRune(out, 0x10000+(rune(u)-0xd800)<<10+(rune(lo)-0xdc00))
					continue
				}
			}
			out = utf8.AppendRune(out, rune(u)) // a lone surrogate becomes U+FFFD
			continue
		}
		out = append(out, s[i])
		i++
	}
	return out
}

// xEscape reads "_xHHHH_" at the start of s.
func xEscape(s []byte) (uint16, bool) {
	if len(s) < 7 || s[0] != '_' || s[1] != 'x' || s[6] != '_' {
		return 0, false
	}
	var u uint16
	for _, c := range s[2:6] {
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, false
		}
		u = u<<4 | uint16(d)
	}
	return u, true
}

// appendText appends s as XML character data: markup characters as entities, characters
// XML cannot carry (and carriage returns, which XML parsers turn into line feeds) as
// _xHHHH_, and an underscore that starts something escape-shaped as _x005F_. Invalid
// UTF-8 becomes U+FFFD.
func appendText(b []byte, s string) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '&':
				b = append(b, "&amp;"...)
			case c == '<':
				b = append(b, "&lt;"...)
			case c == '>':
				b = append(b, "&gt;"...)
			case c == '"':
				b = append(b, "&quot;"...)
			case c == '_' && isXEscape(s[i:]):
				b = append(b, "_x005F_"...)
			case c < 0x20 && c != '\t' && c != '\n':
				b = appendXEscape(b, rune(c))
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, "\uFFFD"...)
		case r == 0xfffe || r == 0xffff:
			b = appendXEscape(b, r)
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return b
}

// isXEscape reports whether the underscore starting s must be written _x005F_: it is
// followed by x and four hex digits. The seventh character is not looked at, because
// what follows may itself be written as an escape that starts with an underscore
// ("_x0000" then a carriage return is written "_x0000_x000D_"); escaping an underscore
// that did not need it costs six bytes and reads back the same.
func isXEscape(s string) bool {
	if len(s) < 6 || s[1] != 'x' {
		return false
	}
	for _, c := range []byte(s[2:6]) {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

func appendXEscape(b []byte, r rune) []byte {
	const hex = "0123456789ABCDEF"
	return append(b, '_', 'x', hex[r>>12&0xf], hex[r>>8&0xf], hex[r>>4&0xf], hex[r&0xf], '_')
}

// needsPreserve reports whether s has whitespace that a spreadsheet drops without
// xml:space="preserve": at either end.
func needsPreserve(s string) bool {
	return s != "" && (strings.ContainsRune(" \t\n\r", rune(s[0])) || strings.ContainsRune(" \t\n\r", rune(s[len(s)-1])))
}
