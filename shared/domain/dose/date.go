package dose

import (
	"errors"
	"time"
)

// PartialDate is a date of birth as Vietnamese records hold it: a year, a year and month,
// or a full date. Month and Day are 0 when unknown.
type PartialDate struct {
	Year, Month, Day int
}

// ErrDate reports a date that is not YYYY, YYYY-MM or YYYY-MM-DD, or not a real day.
var ErrDate = errors.New("date must be YYYY, YYYY-MM or YYYY-MM-DD")

// ParsePartialDate parses YYYY, YYYY-MM or YYYY-MM-DD, rejecting impossible days.
func ParsePartialDate(s string) (PartialDate, error) {
	var d PartialDate
	switch len(s) {
	case 4, 7, 10:
	default:
		return d, ErrDate
	}
	num := func(from, to int) (int, bool) {
		n := 0
		for i := from; i < to; i++ {
			c := s[i]
			if c < '0' || c > '9' {
				return 0, false
			}
			n = n*10 + int(c-'0')
		}
		return n, true
	}
	var ok bool
	if d.Year, ok = num(0, 4); !ok || d.Year < 1900 || d.Year > 2099 {
		return d, ErrDate
	}
	if len(s) >= 7 {
		if s[4] != '-' {
			return d, ErrDate
		}
		if d.Month, ok = num(5, 7); !ok || d.Month < 1 || d.Month > 12 {
			return d, ErrDate
		}
	}
	if len(s) == 10 {
		if s[7] != '-' {
			return d, ErrDate
		}
		if d.Day, ok = num(8, 10); !ok || d.Day < 1 {
			return d, ErrDate
		}
		if t := time.Date(d.Year, time.Month(d.Month), d.Day, 0, 0, 0, 0, time.UTC); t.Day() != d.Day {
			return d, ErrDate
		}
	}
	return d, nil
}

// Agrees reports whether a partial date is compatible with a full one: every part it
// states is equal. A year-only record agrees with any day of that year.
func (d PartialDate) Agrees(full PartialDate) bool {
	return d.Year == full.Year &&
		(d.Month == 0 || d.Month == full.Month) &&
		(d.Day == 0 || d.Day == full.Day)
}

// String formats the date back as YYYY, YYYY-MM or YYYY-MM-DD.
func (d PartialDate) String() string {
	t := time.Date(d.Year, time.Month(max(d.Month, 1)), max(d.Day, 1), 0, 0, 0, 0, time.UTC)
	switch {
	case d.Month == 0:
		return t.Format("2006")
	case d.Day == 0:
		return t.Format("2006-01")
	}
	return t.Format("2006-01-02")
}
