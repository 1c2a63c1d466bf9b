package xlsx

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// CellType is what kind of value a cell holds.
type CellType uint8

const (
	TypeString       CellType = iota + 1 // a shared string (t="s") or a formula's text result (t="str")
	TypeInlineString                     // text kept in the cell (t="inlineStr")
	TypeNumber                           // a number whose format is not a date format
	TypeBool                             // Value "1" or "0"
	TypeDate                             // a number in a date or time format (Value: the day serial), or t="d" (Value: ISO 8601)
	TypeError                            // a formula error such as #N/A
)

func (t CellType) String() string {
	switch t {
	case TypeString:
		return "string"
	case TypeInlineString:
		return "inlineStr"
	case TypeNumber:
		return "number"
	case TypeBool:
		return "bool"
	case TypeDate:
		return "date"
	case TypeError:
		return "error"
	}
	return "CellType(" + strconv.Itoa(int(t)) + ")"
}

// Cell is one cell with a value; empty cells are not reported.
type Cell struct {
	Col  int // 0-based column: A is 0
	Type CellType
	// Value is the cell's content as stored: the text of a string cell, the number as
	// written (possibly in scientific notation) for numbers and serial dates.
	Value string
	// Format is the number format code of the cell's style ("General" when it has none).
	Format string

	date1904 bool
}

// Float reads a number, or a date's day serial.
func (c Cell) Float() (float64, error) {
	if c.Type != TypeNumber && c.Type != TypeDate {
		return 0, fmt.Errorf("%s cell is not a number", c.Type)
	}
	return strconv.ParseFloat(c.Value, 64)
}

// Time reads a date cell in the workbook's date system (UTC).
func (c Cell) Time() (time.Time, error) {
	if c.Type != TypeDate {
		return time.Time{}, fmt.Errorf("%s cell is not a date", c.Type)
	}
	if serial, err := strconv.ParseFloat(c.Value, 64); err == nil {
		return ExcelSerialToTime(serial, c.date1904)
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02", "15:04:05.999999999"} {
		if t, err := time.Parse(layout, c.Value); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("date cell %q is not ISO 8601", c.Value)
}

// Text is the cell as a person reading the sheet would type it back:
//   - text as it is, errors as written (#N/A), booleans TRUE or FALSE;
//   - numbers rounded to the 15 significant digits a spreadsheet keeps, in plain decimal
//     notation (1.5E+3 is "1500") unless very large or small; a number whose format is
//     a run of zeros ("000000000000", which keeps an ID's leading zeros) is rounded to a
//     whole number and padded to that many digits; other formats are not applied;
//   - dates as YYYY-MM-DD, with " HH:MM:SS" when there is a time of day.
func (c Cell) Text() string {
	switch c.Type {
	case TypeNumber:
		return formatNumber(c.Value, c.Format)
	case TypeDate:
		t, err := c.Time()
		if err != nil {
			return formatNumber(c.Value, "General")
		}
		if t.Hour() == 0 && t.Minute() == 0 && t.Second() == 0 {
			return t.Format("2006-01-02")
		}
		return t.Format("2006-01-02 15:04:05")
	case TypeBool:
		if c.Value == "1" {
			return "TRUE"
		}
		return "FALSE"
	}
	return c.Value
}

func formatNumber(v, format string) string {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return v
	}
	if n := zeroRun(format); n > 0 && math.Abs(f) < 1e15 {
		whole := math.Round(f) // half away from zero, as a spreadsheet rounds
		digits := strconv.FormatInt(int64(math.Abs(whole)), 10)
		if len(digits) < n {
			digits = strings.Repeat("0", n-len(digits)) + digits
		}
		if whole < 0 {
			return "-" + digits
		}
		return digits
	}
	return plainNumber(f)
}

// zeroRun is the length of a format code's first section when it is only zeros ("0",
// "000000000000"), else 0.
func zeroRun(format string) int {
	if i := strings.IndexByte(format, ';'); i >= 0 {
		format = format[:i]
	}
	if format == "" || strings.Trim(format, "0") != "" {
		return 0
	}
	return len(format)
}

func plainNumber(f float64) string {
	f, _ = strconv.ParseFloat(strconv.FormatFloat(f, 'g', 15, 64), 64)
	if f == 0 {
		return "0" // and not -0
	}
	if a := math.Abs(f); a >= 1e-9 && a < 1e21 {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	return strconv.FormatFloat(f, 'E', -1, 64)
}

// validNumber reports whether s is a decimal number as xsd:double writes finite ones:
// [sign] digits [. digits] [E [sign] digits], with a digit somewhere in the mantissa.
func validNumber(s string) bool {
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	digits := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i, digits = i+1, digits+1
	}
	if i < len(s) && s[i] == '.' {
		i++
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i, digits = i+1, digits+1
		}
	}
	if digits == 0 {
		return false
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		exp := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i, exp = i+1, exp+1
		}
		if exp == 0 {
			return false
		}
	}
	return i == len(s)
}
