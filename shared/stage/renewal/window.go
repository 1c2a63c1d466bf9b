package renewal

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// MaxWindow bounds a renewal window: a certificate lives 12 months, so a window of more
// than two years is a typo.
const MaxWindow = 2 * 366 * 24 * time.Hour

// DefaultWindow is the scheduled renewal's window.
const DefaultWindow = 30 * 24 * time.Hour

// ParseWindow reads a renewal window: days as "30d", or a Go duration ("720h", "90m").
// It must be positive and at most MaxWindow.
func ParseWindow(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	var d time.Duration
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || n == "" || n[0] == '+' || n[0] == '-' {
			return 0, fmt.Errorf("window %q: want a whole number of days such as 30d, or a duration such as 720h", s)
		}
		if days > int(MaxWindow/(24*time.Hour)) {
			return 0, fmt.Errorf("window %q: more than %d days", s, int(MaxWindow/(24*time.Hour)))
		}
		d = time.Duration(days) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf("window %q: want days such as 30d, or a duration such as 720h", s)
		}
	}
	switch {
	case d <= 0:
		return 0, fmt.Errorf("window %q: must be positive", s)
	case d > MaxWindow:
		return 0, fmt.Errorf("window %q: more than %d days", s, int(MaxWindow/(24*time.Hour)))
	}
	return d, nil
}

// FormatWindow writes a window as ParseWindow reads it: whole days as "30d".
func FormatWindow(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return strconv.Itoa(int(d/(24*time.Hour))) + "d"
	}
	return d.String()
}
