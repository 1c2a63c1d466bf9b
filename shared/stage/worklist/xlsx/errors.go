package xlsx

import "errors"

// Input that is not a workbook this package reads: each has its own error, so that the
// caller can tell the person what to do (save as .xlsx, remove the password).
var (
	ErrNotZip       = errors.New("not an .xlsx file (no zip archive)")
	ErrEncrypted    = errors.New("password-protected workbook")
	ErrLegacyFormat = errors.New("legacy .xls (or other OLE2) file")
	ErrCorrupt      = errors.New("malformed .xlsx file")
)

// ErrTooLarge is what every limit error below also is (errors.Is): callers that only need
// "refused for its size" test for it, those that explain test for the precise one.
var ErrTooLarge = errors.New("workbook exceeds a limit")

// Limit errors, one per Limits field (and two fixed bounds). Each is returned wrapped with
// the figures, and matches ErrTooLarge too.
var (
	ErrFileTooLarge          error = &limitError{"file larger than the limit"}
	ErrTooManyParts          error = &limitError{"too many parts in the archive"}
	ErrPartTooLarge          error = &limitError{"part inflates beyond the limit"}
	ErrInflatedTooLarge      error = &limitError{"parts inflate beyond the total limit"}
	ErrCompressionRatio      error = &limitError{"part compressed beyond any real workbook (a zip bomb)"}
	ErrTooManyRows           error = &limitError{"too many rows"}
	ErrTooManyColumns        error = &limitError{"too many columns"}
	ErrCellTooLarge          error = &limitError{"cell text too long"}
	ErrTooManySharedStrings  error = &limitError{"too many shared strings"}
	ErrSharedStringsTooLarge error = &limitError{"shared strings too long"}
	ErrTooManyStyles         error = &limitError{"too many cell styles"}
	// ErrMarkupTooLarge: an XML tag, comment or nesting beyond any a workbook has.
	ErrMarkupTooLarge error = &limitError{"XML markup too large or too deep"}
)

type limitError struct{ msg string }

func (e *limitError) Error() string        { return e.msg }
func (e *limitError) Is(target error) bool { return target == ErrTooLarge }

// Writer errors.
var (
	ErrSheetName   = errors.New("invalid sheet name")
	ErrSheetFull   = errors.New("sheet full")
	ErrCellTooLong = errors.New("cell text longer than a spreadsheet cell holds")
	ErrBadValue    = errors.New("value a spreadsheet cannot hold")
	ErrWriterState = errors.New("xlsx writer misused")
)
