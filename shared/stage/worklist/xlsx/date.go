package xlsx

import (
	"fmt"
	"math"
	"time"
)

// Day serials: the 1900 system counts 1900-01-01 as day 1 and, like Lotus 1-2-3, has a
// 29 February 1900 (day 60) that never was; the 1904 system counts 1904-01-01 as day 0.
var (
	epoch1900 = time.Date(1899, 12, 31, 0, 0, 0, 0, time.UTC)
	epoch1904 = time.Date(1904, 1, 1, 0, 0, 0, 0, time.UTC)
)

// maxSerial is 9999-12-31, the last day a spreadsheet shows, in the 1900 system.
const maxSerial = 2958465

// ExcelSerialToTime turns a date cell's number into the time it shows (UTC; the fraction
// is the time of day, rounded to the millisecond). date1904 is the workbook's date system
// (Reader.Date1904). It refuses serials no spreadsheet shows as a date: negative ones,
// day 0 and day 60 of the 1900 system (1900-01-00 and 1900-02-29), and those past
// 9999-12-31.
func ExcelSerialToTime(serial float64, date1904 bool) (time.Time, error) {
	limit := float64(maxSerial + 1)
	if date1904 {
		limit -= 1462 // the 1904 system's day 0 is the 1900 system's day 1462
	}
	if math.IsNaN(serial) || serial < 0 || serial >= limit {
		return time.Time{}, fmt.Errorf("%v is not a date serial", serial)
	}
	day := math.Floor(serial)
	ms := time.Duration(math.Round((serial-day)*86400e3)) * time.Millisecond
	if date1904 {
		return epoch1904.AddDate(0, 0, int(day)).Add(ms), nil
	}
	switch {
	case day == 0 || day == 60:
		return time.Time{}, fmt.Errorf("%v is not a date serial (day %v of 1900 did not exist)", serial, day)
	case day > 60:
		day-- // past the day that never was
	}
	return epoch1900.AddDate(0, 0, int(day)).Add(ms), nil
}
