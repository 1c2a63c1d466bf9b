// Package xlsx is a small, strict .xlsx codec: the little of SpreadsheetML that worklists
// and Excel imports need, and nothing that makes a binary large (no reflection-driven
// copying, no formula engine).
//
// Writer streams rows into a minimal ECMA-376 package (content types, relationships,
// workbook, styles, worksheets), text as inline strings, with bold filled headers, text
// number formats, frozen header rows, column widths and autofilters.
//
// Reader reads the first worksheet of an untrusted workbook as a stream, checking every
// limit (Limits) before the work it guards, and answers each failure with its own
// sentinel error: ErrNotZip, ErrEncrypted, ErrLegacyFormat, ErrCorrupt, and the limit
// errors, which all match ErrTooLarge as well.
package xlsx
