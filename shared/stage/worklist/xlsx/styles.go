package xlsx

import (
	"encoding/xml"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// maxStyles bounds the cell formats read; Excel itself stops at about 64,000.
const maxStyles = 1 << 16

// maxFormatCode bounds one number format code (Excel's limit is 255 characters).
const maxFormatCode = 1024

// numFormat is what a cell style says about a number: its format code, and whether it
// shows the number as a date or time.
type numFormat struct {
	code string
	date bool
}

var general = numFormat{code: "General"}

// builtinFormats are the number formats every workbook has without declaring them
// (ECMA-376 Part 1, 18.8.30).
var builtinFormats = map[int]string{
	0: "General", 1: "0", 2: "0.00", 3: "#,##0", 4: "#,##0.00", 9: "0%", 10: "0.00%",
	11: "0.00E+00", 12: "# ?/?", 13: "# ??/??", 14: "mm-dd-yy", 15: "d-mmm-yy", 16: "d-mmm",
	17: "mmm-yy", 18: "h:mm AM/PM", 19: "h:mm:ss AM/PM", 20: "h:mm", 21: "h:mm:ss",
	22: "m/d/yy h:mm", 37: "#,##0 ;(#,##0)", 38: "#,##0 ;[Red](#,##0)",
	39: "#,##0.00;(#,##0.00)", 40: "#,##0.00;[Red](#,##0.00)", 45: "mm:ss", 46: "[h]:mm:ss",
	47: "mmss.0", 48: "##0.0E+0", 49: "@",
}

// builtinDate reports the built-in formats that show a date or time: 14-22 and 45-47,
// and the locale-defined East Asian (27-36, 50-58) and Thai (71-81) date formats, whose
// codes a workbook does not spell out.
func builtinDate(id int) bool {
	return id >= 14 && id <= 22 || id >= 27 && id <= 36 || id >= 45 && id <= 47 ||
		id >= 50 && id <= 58 || id >= 71 && id <= 81
}

// IsDateFormat reports whether a number format code shows a date or time: it has a day,
// month, year, hour or second placeholder (d m y h s) outside quoted text, escaped
// characters and [colour]/[condition]/[$-locale] brackets; [h], [mm] and [ss] (elapsed
// time) count as time.
func IsDateFormat(code string) bool {
	for i := 0; i < len(code); i++ {
		switch c := code[i]; c {
		case '"':
			end := strings.IndexByte(code[i+1:], '"')
			if end < 0 {
				return false
			}
			i += end + 1
		case '\\', '_', '*':
			i++ // the next character is literal (\), a padding width (_) or a fill (*)
		case '[':
			end := strings.IndexByte(code[i+1:], ']')
			if end < 0 {
				return false
			}
			if inner := strings.ToLower(code[i+1 : i+1+end]); inner != "" && strings.Trim(inner, "hms") == "" {
				return true
			}
			i += end + 1
		case 'd', 'D', 'm', 'M', 'y', 'Y', 'h', 'H', 's', 'S':
			return true
		}
	}
	return false
}

// readStyles reads the number format of every cell style (cellXfs), in order: a cell's
// s attribute indexes this list.
func (r *Reader) readStyles() ([]numFormat, error) {
	if r.stylesPt == "" {
		return nil, nil
	}
	p, err := r.openPart(r.stylesPt, maxMarkup)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	if _, err := p.root("styleSheet"); err != nil {
		return nil, err
	}
	custom := map[int]string{}
	var ids []int
	for {
		tok, err := p.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		se, ok := tok.(xml.StartElement)
		if !ok || p.depth != 3 {
			continue
		}
		switch se.Name.Local {
		case "numFmt":
			id, err := formatID(p, se)
			if err != nil {
				return nil, err
			}
			code, _ := attr(se, "formatCode")
			if len(code) > maxFormatCode {
				return nil, p.corrupt("number format %d longer than %d bytes", id, maxFormatCode)
			}
			if len(custom) == maxStyles {
				return nil, fmt.Errorf("%w: %s declares more than %d number formats", ErrTooManyStyles, quoteName(p.name), maxStyles)
			}
			custom[id] = code
		case "xf":
			// Cell styles (cellXfs) only: cellStyleXfs are the named styles they derive from.
			if p.parent() != "cellXfs" {
				continue
			}
			id, err := formatID(p, se)
			if err != nil {
				return nil, err
			}
			if len(ids) == maxStyles {
				return nil, fmt.Errorf("%w: %s declares more than %d", ErrTooManyStyles, quoteName(p.name), maxStyles)
			}
			ids = append(ids, id)
		}
	}
	formats := make([]numFormat, len(ids))
	for i, id := range ids {
		if code, ok := custom[id]; ok {
			formats[i] = numFormat{code: code, date: IsDateFormat(code)}
		} else {
			formats[i] = numFormat{code: builtinFormats[id], date: builtinDate(id)}
		}
	}
	return formats, nil
}

func formatID(p *xmlPart, se xml.StartElement) (int, error) {
	v, ok := attr(se, "numFmtId")
	if !ok {
		return 0, nil
	}
	id, err := strconv.Atoi(v)
	if err != nil || id < 0 || id > 1<<20 {
		return 0, p.corrupt("number format id %q", truncateName(v))
	}
	return id, nil
}
