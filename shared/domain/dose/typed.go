package dose

import (
	"strings"

	"golang.org/x/text/unicode/norm"
)

// MsgDOBFormat is the message of a date of birth in no form NormalizeDate and
// ParsePartialDate take.
const MsgDOBFormat = "must be YYYY-MM-DD, YYYY-MM, YYYY or DD/MM/YYYY"

// NormalizeDate turns a date as a Vietnamese clerk or citizen types it (DD/MM/YYYY as
// printed on the CCCD, D/M/YYYY, MM/YYYY, also with '.' or '-' between the parts) into the
// contract's YYYY-MM-DD, YYYY-MM or YYYY. Anything else is returned unchanged (trimmed), so
// validation still names the field. It never guesses: "04/05/1990" is 4 May, the
// Vietnamese order, never April.
func NormalizeDate(s string) string {
	s = strings.TrimSpace(s)
	if len(s) < 6 || len(s) > 10 || !strings.ContainsAny(s, "/.") && strings.Count(s, "-") != 2 {
		return s
	}
	sep := "/"
	switch {
	case strings.Contains(s, "/"):
	case strings.Contains(s, "."):
		sep = "."
	default:
		// YYYY-MM-DD is already the contract's form; DD-MM-YYYY is not.
		if len(s) > 4 && s[4] == '-' {
			return s
		}
		sep = "-"
	}
	parts := strings.Split(s, sep)
	for _, p := range parts {
		if p == "" || strings.Trim(p, "0123456789") != "" {
			return s
		}
	}
	pad := func(p string) (string, bool) {
		switch len(p) {
		case 1:
			return "0" + p, true
		case 2:
			return p, true
		}
		return "", false
	}
	switch len(parts) {
	case 3:
		d, ok1 := pad(parts[0])
		m, ok2 := pad(parts[1])
		if !ok1 || !ok2 || len(parts[2]) != 4 {
			return s
		}
		return parts[2] + "-" + m + "-" + d
	case 2:
		m, ok := pad(parts[0])
		if !ok || len(parts[1]) != 4 {
			return s
		}
		return parts[1] + "-" + m
	}
	return s
}

// NormalizeGender maps the Vietnamese words a clerk types (Nam, Nữ, also without the
// diacritic or in any case) to the contract's male and female; other values come back
// lower-cased for validation to judge.
func NormalizeGender(s string) string {
	g := strings.ToLower(norm.NFC.String(strings.TrimSpace(s)))
	switch g {
	case "nam":
		return Male
	case "nữ", "nu":
		return Female
	}
	return g
}
