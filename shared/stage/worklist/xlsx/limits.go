package xlsx

// Spreadsheet bounds (Excel's): a sheet has at most this many rows and columns, a cell
// at most MaxCellChars UTF-16 code units of text.
const (
	MaxSheetRows    = 1 << 20
	MaxSheetColumns = 1 << 14
	MaxCellChars    = 32767
)

// Limits bound what reading one workbook may cost. Each is checked before the work it
// guards: the file size before unzipping, a part's declared size before inflating it and
// its actual size while inflating, a row or cell reference before its content is read.
// A field left zero (or negative) takes its value from DefaultLimits.
type Limits struct {
	MaxFileBytes         int64 // the archive as sent
	MaxParts             int   // entries in the archive
	MaxPartBytes         int64 // one part inflated, as declared and as actually read
	MaxTotalBytes        int64 // all entries inflated, as declared; and all parts read
	MaxRows              int   // highest row number, 1-based (a header row counts)
	MaxColumns           int   // highest column number, 1-based
	MaxCellBytes         int   // one cell's text, UTF-8 after XML decoding
	MaxSharedStrings     int   // entries in the shared-string table
	MaxSharedStringBytes int64 // the table's text, all entries together
	// MaxRatio bounds a part's declared inflated size over its compressed size, for parts
	// declaring more than ratioFloor bytes: deflate's ceiling is about 1032:1, which only
	// a bomb (megabytes of one repeated byte) comes near, while a real sheet's XML
	// compresses 5 to 30 times.
	MaxRatio int
}

// ratioFloor: parts smaller than this are not judged by their ratio (a few KB of empty
// cells compress far, and cost nothing).
const ratioFloor = 1 << 20

// DefaultLimits admit any sheet Excel itself can hold within a 20 MB file, while keeping
// what reading costs to a few hundred megabytes.
func DefaultLimits() Limits {
	return Limits{
		MaxFileBytes:         20 << 20,
		MaxParts:             1000,
		MaxPartBytes:         256 << 20,
		MaxTotalBytes:        256 << 20,
		MaxRows:              MaxSheetRows,
		MaxColumns:           MaxSheetColumns,
		MaxCellBytes:         3 * MaxCellChars, // a full cell of non-Latin text
		MaxSharedStrings:     4 << 20,
		MaxSharedStringBytes: 64 << 20,
		MaxRatio:             200,
	}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxFileBytes <= 0 {
		l.MaxFileBytes = d.MaxFileBytes
	}
	if l.MaxParts <= 0 {
		l.MaxParts = d.MaxParts
	}
	if l.MaxPartBytes <= 0 {
		l.MaxPartBytes = d.MaxPartBytes
	}
	if l.MaxTotalBytes <= 0 {
		l.MaxTotalBytes = d.MaxTotalBytes
	}
	if l.MaxRows <= 0 {
		l.MaxRows = d.MaxRows
	}
	if l.MaxColumns <= 0 {
		l.MaxColumns = d.MaxColumns
	}
	if l.MaxCellBytes <= 0 {
		l.MaxCellBytes = d.MaxCellBytes
	}
	if l.MaxSharedStrings <= 0 {
		l.MaxSharedStrings = d.MaxSharedStrings
	}
	if l.MaxSharedStringBytes <= 0 {
		l.MaxSharedStringBytes = d.MaxSharedStringBytes
	}
	if l.MaxRatio <= 0 {
		l.MaxRatio = d.MaxRatio
	}
	// References past a sheet's bounds are clamped just beyond them (parseRef).
	l.MaxRows = min(l.MaxRows, MaxSheetRows)
	l.MaxColumns = min(l.MaxColumns, MaxSheetColumns)
	// The shared-string table is addressed with 32-bit offsets.
	l.MaxSharedStringBytes = min(l.MaxSharedStringBytes, 1<<32-1)
	return l
}
