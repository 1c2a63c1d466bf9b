package xlsx

import "strconv"

// ColumnName names a 0-based column the way a spreadsheet shows it: A, B, ..., Z, AA.
func ColumnName(col int) string {
	if col < 0 {
		return strconv.Itoa(col)
	}
	var b [8]byte
	i := len(b)
	for n := col + 1; n > 0; n = (n - 1) / 26 {
		i--
		b[i] = byte('A' + (n-1)%26)
	}
	return string(b[i:])
}

// CellName names a cell by its 0-based column and 1-based row: CellName(2, 5) is "C5".
func CellName(col, row int) string { return ColumnName(col) + strconv.Itoa(row) }

// parseRef splits a cell reference such as "C5" into its 0-based column and 1-based row.
// Values past a sheet's bounds are clamped just beyond them, so that the caller's limit
// check reports them without the arithmetic overflowing.
func parseRef(ref string) (col, row int, ok bool) {
	i := 0
	for i < len(ref) && ref[i] >= 'A' && ref[i] <= 'Z' {
		if col <= MaxSheetColumns {
			col = col*26 + int(ref[i]-'A'+1)
		}
		i++
	}
	if i == 0 || i == len(ref) {
		return 0, 0, false
	}
	row, ok = parseIndex(ref[i:])
	return col - 1, row, ok
}

// parseIndex reads a 1-based row number (decimal digits only, no sign), clamped just past
// a sheet's last row.
func parseIndex(s string) (int, bool) {
	if s == "" {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		if n <= MaxSheetRows {
			n = n*10 + int(c-'0')
		}
	}
	if n == 0 {
		return 0, false
	}
	return n, true
}
