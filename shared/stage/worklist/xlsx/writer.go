package xlsx

import (
	"archive/zip"
	"bufio"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Writer streams a workbook to an io.Writer, one sheet after the other, a row at a time:
// memory does not grow with the rows. Text goes into the cells themselves (inline
// strings), so nothing has to be collected for a shared-string table.
//
// The package is the minimal one ECMA-376 asks for, laid out as Excel and LibreOffice
// expect: [Content_Types].xml and _rels/.rels first (tools that sniff the format read
// the first entry), then the worksheets as they are written, then xl/workbook.xml, its
// relationships and xl/styles.xml, which are only known at the end.
type Writer struct {
	zw      *zip.Writer
	names   []string
	filters []string // each sheet's autofilter range, "" for none
	styles  []Style  // style id i+1 is styles[i]; 0 is the default style
	sheet   *Sheet   // the sheet being written, nil between sheets
	started int      // sheets started so far
	err     error    // the first error: the workbook is unusable after it
	closed  bool
}

// Style is a cell style. The zero Style is the default (style id 0).
type Style struct {
	Bold   bool
	Fill   string // background colour as RRGGBB, "" for none
	Border string // colour of a thin bottom border as RRGGBB, "" for none
	Text   bool   // number format "@": what is typed into the cell stays text as typed
	Wrap   bool   // wrap long text, aligned to the top of the cell
}

// SheetOptions shape a sheet.
type SheetOptions struct {
	Widths     []float64 // column widths in characters, from column A; 0 keeps the default
	ColStyles  []int     // each column's style, from A: what typing into an empty cell gets
	FreezeRows int       // rows kept in view at the top while scrolling (a header)
	AutoFilter bool      // filter buttons on the first row, over the columns and rows written
}

// RowOptions shape a row.
type RowOptions struct {
	Height float64 // in points; 0 for the default
}

// Field is one cell to write: Text, Number or Int, optionally WithStyle. The zero Field
// is an empty cell.
type Field struct {
	kind  uint8
	text  string
	num   float64
	style int
}

const (
	fieldBlank uint8 = iota
	fieldText
	fieldNumber
)

// Text is a text cell; "" is an empty cell.
func Text(s string) Field { return Field{kind: fieldText, text: s} }

// Number is a number cell.
func Number(f float64) Field { return Field{kind: fieldNumber, num: f} }

// Int is a whole-number cell.
func Int(n int) Field { return Number(float64(n)) }

// Blank is an empty cell; with a style it still carries the style.
func Blank() Field { return Field{} }

// WithStyle gives the cell a style from Writer.AddStyle.
func (f Field) WithStyle(id int) Field { f.style = id; return f }

const (
	nsMain     = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
	nsRel      = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
	nsPkgRel   = "http://schemas.openxmlformats.org/package/2006/relationships"
	xmlHeader  = `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>` + "\n"
	ctMain     = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"
	ctSheet    = "application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"
	ctStyles   = "application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"
	ctRels     = "application/vnd.openxmlformats-package.relationships+xml"
	relSheet   = nsRel + "/worksheet"
	relStyles  = nsRel + "/styles"
	relOffice  = nsRel + "/officeDocument"
	stylesPart = "xl/styles.xml"
)

// NewWriter starts a workbook with the named sheets, in tab order; each is then written
// with NextSheet. It writes the package's content types and relationships at once.
func NewWriter(w io.Writer, sheetNames ...string) (*Writer, error) {
	if len(sheetNames) == 0 {
		return nil, fmt.Errorf("%w: a workbook needs a sheet", ErrSheetName)
	}
	for i, name := range sheetNames {
		if err := checkSheetName(name); err != nil {
			return nil, err
		}
		for _, before := range sheetNames[:i] {
			if strings.EqualFold(before, name) {
				return nil, fmt.Errorf("%w: %q twice", ErrSheetName, name)
			}
		}
	}
	wr := &Writer{zw: zip.NewWriter(w), names: sheetNames, filters: make([]string, len(sheetNames))}

	b := []byte(xmlHeader + `<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">` +
		`<Default Extension="rels" ContentType="` + ctRels + `"/>` +
		`<Default Extension="xml" ContentType="application/xml"/>` +
		`<Override PartName="/xl/workbook.xml" ContentType="` + ctMain + `"/>` +
		`<Override PartName="/` + stylesPart + `" ContentType="` + ctStyles + `"/>`)
	for i := range sheetNames {
		b = append(b, `<Override PartName="/`+sheetPart(i)+`" ContentType="`+ctSheet+`"/>`...)
	}
	b = append(b, "</Types>"...)
	if err := wr.part("[Content_Types].xml", b); err != nil {
		return nil, err
	}
	rels := xmlHeader + `<Relationships xmlns="` + nsPkgRel + `">` +
		`<Relationship Id="rId1" Type="` + relOffice + `" Target="xl/workbook.xml"/></Relationships>`
	if err := wr.part("_rels/.rels", []byte(rels)); err != nil {
		return nil, err
	}
	return wr, nil
}

func sheetPart(i int) string { return "xl/worksheets/sheet" + strconv.Itoa(i+1) + ".xml" }

// checkSheetName applies Excel's rules: 1 to 31 characters, none of : \ / ? * [ ] and no
// control character, no apostrophe at either end, and not "History" (Excel's own).
func checkSheetName(name string) error {
	n := utf8.RuneCountInString(name)
	switch {
	case n == 0 || n > 31 || !utf8.ValidString(name):
		return fmt.Errorf("%w: %q: 1 to 31 characters", ErrSheetName, name)
	case strings.ContainsAny(name, `:\/?*[]`) || strings.IndexFunc(name, func(r rune) bool { return r < 0x20 || r == 0xfffe || r == 0xffff }) >= 0:
		return fmt.Errorf("%w: %q: no : \\ / ? * [ ] or control characters", ErrSheetName, name)
	case name[0] == '\'' || name[len(name)-1] == '\'':
		return fmt.Errorf("%w: %q: no apostrophe at either end", ErrSheetName, name)
	case strings.EqualFold(name, "History"):
		return fmt.Errorf("%w: %q is reserved", ErrSheetName, name)
	}
	return nil
}

func (w *Writer) part(name string, content []byte) error {
	f, err := w.zw.Create(name)
	if err == nil {
		_, err = f.Write(content)
	}
	if err != nil {
		w.err = fmt.Errorf("write %s: %w", name, err)
	}
	return w.err
}

// AddStyle registers a cell style and returns its id for WithStyle and ColStyles; the
// same style twice gets the same id. Styles can be added until Close.
func (w *Writer) AddStyle(s Style) (int, error) {
	if w.closed {
		return 0, fmt.Errorf("%w: AddStyle after Close", ErrWriterState)
	}
	for _, c := range []string{s.Fill, s.Border} {
		if c != "" && !isRGB(c) {
			return 0, fmt.Errorf("%w: colour %q is not RRGGBB", ErrBadValue, c)
		}
	}
	s.Fill, s.Border = strings.ToUpper(s.Fill), strings.ToUpper(s.Border)
	if s == (Style{}) {
		return 0, nil
	}
	for i, have := range w.styles {
		if have == s {
			return i + 1, nil
		}
	}
	w.styles = append(w.styles, s)
	return len(w.styles), nil
}

func isRGB(s string) bool {
	if len(s) != 6 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !strings.ContainsRune("0123456789abcdefABCDEF", rune(s[i])) {
			return false
		}
	}
	return true
}

// NextSheet finishes the sheet being written, if any, and starts the next one named in
// NewWriter.
func (w *Writer) NextSheet(opt SheetOptions) (*Sheet, error) {
	if w.err != nil {
		return nil, w.err
	}
	if w.closed || w.started == len(w.names) {
		return nil, fmt.Errorf("%w: no sheet left to start (%d named)", ErrWriterState, len(w.names))
	}
	if err := w.finishSheet(); err != nil {
		return nil, err
	}
	for _, width := range opt.Widths {
		if width < 0 || width > 255 || math.IsNaN(width) {
			return nil, fmt.Errorf("%w: column width %v (0 to 255)", ErrBadValue, width)
		}
	}
	if len(opt.Widths) > MaxSheetColumns || len(opt.ColStyles) > MaxSheetColumns || opt.FreezeRows < 0 || opt.FreezeRows >= MaxSheetRows {
		return nil, fmt.Errorf("%w: sheet options beyond a sheet's bounds", ErrBadValue)
	}
	for _, id := range opt.ColStyles {
		if err := w.checkStyle(id); err != nil {
			return nil, err
		}
	}
	f, err := w.zw.Create(sheetPart(w.started))
	if err != nil {
		w.err = fmt.Errorf("write sheet: %w", err)
		return nil, w.err
	}
	s := &Sheet{w: w, index: w.started, bw: bufio.NewWriterSize(f, 64<<10), autoFilter: opt.AutoFilter}
	w.started++
	w.sheet = s

	b := append(s.buf[:0], xmlHeader+`<worksheet xmlns="`+nsMain+`" xmlns:r="`+nsRel+`"><sheetViews><sheetView`...)
	if s.index == 0 {
		b = append(b, ` tabSelected="1"`...)
	}
	b = append(b, ` workbookViewId="0">`...)
	if n := opt.FreezeRows; n > 0 {
		top := "A" + strconv.Itoa(n+1)
		b = append(b, `<pane ySplit="`+strconv.Itoa(n)+`" topLeftCell="`+top+`" activePane="bottomLeft" state="frozen"/>`+
			`<selection pane="bottomLeft" activeCell="`+top+`" sqref="`+top+`"/>`...)
	}
	b = append(b, `</sheetView></sheetViews><sheetFormatPr defaultRowHeight="15"/>`...)
	if ncols := max(len(opt.Widths), len(opt.ColStyles)); ncols > 0 {
		b = append(b, "<cols>"...)
		for i := range ncols {
			width, custom := 9.140625, false // Excel's default column, 8.43 characters and padding
			if i < len(opt.Widths) && opt.Widths[i] > 0 {
				width, custom = opt.Widths[i], true
			}
			col := strconv.Itoa(i + 1)
			b = append(b, `<col min="`+col+`" max="`+col+`" width="`...)
			b = strconv.AppendFloat(b, width, 'f', -1, 64)
			b = append(b, '"')
			if i < len(opt.ColStyles) && opt.ColStyles[i] != 0 {
				b = append(b, ` style="`...)
				b = strconv.AppendInt(b, int64(opt.ColStyles[i]), 10)
				b = append(b, '"')
			}
			if custom {
				b = append(b, ` customWidth="1"`...)
			}
			b = append(b, "/>"...)
		}
		b = append(b, "</cols>"...)
	}
	b = append(b, "<sheetData>"...)
	s.buf = b
	return s, s.flushBuf()
}

func (w *Writer) checkStyle(id int) error {
	if id < 0 || id > len(w.styles) {
		return fmt.Errorf("%w: style %d was not added", ErrWriterState, id)
	}
	return nil
}

// finishSheet closes the sheet being written.
func (w *Writer) finishSheet() error {
	s := w.sheet
	if s == nil {
		return nil
	}
	w.sheet = nil
	b := append(s.buf[:0], "</sheetData>"...)
	if s.autoFilter && s.rows > 0 && s.cols > 0 {
		ref := "A1:" + CellName(s.cols-1, s.rows)
		b = append(b, `<autoFilter ref="`+ref+`"/>`...)
		w.filters[s.index] = "$A$1:$" + ColumnName(s.cols-1) + "$" + strconv.Itoa(s.rows)
	}
	b = append(b, `<pageMargins left="0.7" right="0.7" top="0.75" bottom="0.75" header="0.3" footer="0.3"/></worksheet>`...)
	s.buf = b
	if err := s.flushBuf(); err != nil {
		return err
	}
	if err := s.bw.Flush(); err != nil {
		w.err = fmt.Errorf("write sheet: %w", err)
	}
	return w.err
}

// Close finishes the last sheet, writes the sheets named but not started as empty ones,
// then the workbook, its relationships and styles, and the zip directory. It does not
// close the underlying writer.
func (w *Writer) Close() error {
	if w.closed {
		return w.err
	}
	if w.err != nil {
		w.closed = true
		return w.err
	}
	for w.started < len(w.names) {
		if _, err := w.NextSheet(SheetOptions{}); err != nil {
			return err
		}
	}
	if err := w.finishSheet(); err != nil {
		return err
	}
	w.closed = true

	b := []byte(xmlHeader + `<workbook xmlns="` + nsMain + `" xmlns:r="` + nsRel + `">` +
		`<bookViews><workbookView xWindow="240" yWindow="15" windowWidth="16095" windowHeight="9660"/></bookViews><sheets>`)
	for i, name := range w.names {
		b = append(b, `<sheet name="`...)
		b = appendText(b, name)
		b = append(b, `" sheetId="`+strconv.Itoa(i+1)+`" r:id="rId`+strconv.Itoa(i+1)+`"/>`...)
	}
	b = append(b, "</sheets>"...)
	hasFilter := false
	for i, ref := range w.filters {
		if ref == "" {
			continue
		}
		if !hasFilter {
			b, hasFilter = append(b, "<definedNames>"...), true
		}
		// The hidden name Excel keeps for a sheet's filter range.
		b = append(b, `<definedName name="_xlnm._FilterDatabase" localSheetId="`+strconv.Itoa(i)+`" hidden="1">`...)
		b = appendText(b, "'"+strings.ReplaceAll(w.names[i], "'", "''")+"'!"+ref)
		b = append(b, "</definedName>"...)
	}
	if hasFilter {
		b = append(b, "</definedNames>"...)
	}
	b = append(b, "</workbook>"...)
	if err := w.part("xl/workbook.xml", b); err != nil {
		return err
	}

	b = []byte(xmlHeader + `<Relationships xmlns="` + nsPkgRel + `">`)
	for i := range w.names {
		id := strconv.Itoa(i + 1)
		b = append(b, `<Relationship Id="rId`+id+`" Type="`+relSheet+`" Target="worksheets/sheet`+id+`.xml"/>`...)
	}
	b = append(b, `<Relationship Id="rId`+strconv.Itoa(len(w.names)+1)+`" Type="`+relStyles+`" Target="styles.xml"/></Relationships>`...)
	if err := w.part("xl/_rels/workbook.xml.rels", b); err != nil {
		return err
	}
	if err := w.part(stylesPart, w.stylesXML()); err != nil {
		return err
	}
	if err := w.zw.Close(); err != nil {
		w.err = fmt.Errorf("write xlsx: %w", err)
	}
	return w.err
}

// stylesXML lays the styles out as Excel does: fonts, fills (the first two are reserved:
// none and gray125), borders, the one named style (Normal) and the cell styles.
func (w *Writer) stylesXML() []byte {
	fills := []string{""}
	borders := []string{""}
	index := func(list *[]string, v string) int {
		for i, have := range *list {
			if have == v {
				return i
			}
		}
		*list = append(*list, v)
		return len(*list) - 1
	}
	type xf struct{ numFmt, font, fill, border int }
	xfs := make([]xf, len(w.styles))
	for i, s := range w.styles {
		x := xf{font: 0, fill: 0, border: index(&borders, s.Border)}
		if s.Bold {
			x.font = 1
		}
		if s.Fill != "" {
			x.fill = index(&fills, s.Fill) + 1 // after gray125
		}
		if s.Text {
			x.numFmt = 49
		}
		xfs[i] = x
	}
	const font = `<sz val="11"/><name val="Calibri"/><family val="2"/></font>`
	b := []byte(xmlHeader + `<styleSheet xmlns="` + nsMain + `">` +
		`<fonts count="2"><font>` + font + `<font><b/>` + font + `</fonts>`)
	b = append(b, `<fills count="`+strconv.Itoa(len(fills)+1)+`"><fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/></fill>`...)
	for _, c := range fills[1:] {
		b = append(b, `<fill><patternFill patternType="solid"><fgColor rgb="FF`+c+`"/><bgColor indexed="64"/></patternFill></fill>`...)
	}
	b = append(b, `</fills><borders count="`+strconv.Itoa(len(borders))+`"><border><left/><right/><top/><bottom/><diagonal/></border>`...)
	for _, c := range borders[1:] {
		b = append(b, `<border><left/><right/><top/><bottom style="thin"><color rgb="FF`+c+`"/></bottom><diagonal/></border>`...)
	}
	b = append(b, `</borders><cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>`...)
	b = append(b, `<cellXfs count="`+strconv.Itoa(len(xfs)+1)+`"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>`...)
	for i, x := range xfs {
		b = append(b, `<xf numFmtId="`+strconv.Itoa(x.numFmt)+`" fontId="`+strconv.Itoa(x.font)+`" fillId="`+strconv.Itoa(x.fill)+
			`" borderId="`+strconv.Itoa(x.border)+`" xfId="0"`...)
		if x.numFmt != 0 {
			b = append(b, ` applyNumberFormat="1"`...)
		}
		if x.font != 0 {
			b = append(b, ` applyFont="1"`...)
		}
		if x.fill != 0 {
			b = append(b, ` applyFill="1"`...)
		}
		if x.border != 0 {
			b = append(b, ` applyBorder="1"`...)
		}
		if w.styles[i].Wrap {
			b = append(b, ` applyAlignment="1"><alignment vertical="top" wrapText="1"/></xf>`...)
		} else {
			b = append(b, "/>"...)
		}
	}
	b = append(b, `</cellXfs><cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>`+
		`<dxfs count="0"/><tableStyles count="0" defaultTableStyle="TableStyleMedium9" defaultPivotStyle="PivotStyleLight16"/></styleSheet>`...)
	return b
}

// Sheet is the sheet being written.
type Sheet struct {
	w          *Writer
	index      int
	bw         *bufio.Writer
	buf        []byte
	rows       int // rows written
	cols       int // columns of the widest row
	autoFilter bool
}

// WriteRow writes the next row, its cells from column A.
func (s *Sheet) WriteRow(cells ...Field) error { return s.WriteRowOpts(RowOptions{}, cells...) }

// WriteRowOpts writes the next row with options.
func (s *Sheet) WriteRowOpts(opt RowOptions, cells ...Field) error {
	w := s.w
	if w.err != nil {
		return w.err
	}
	if w.sheet != s {
		return fmt.Errorf("%w: write to a finished sheet", ErrWriterState)
	}
	if s.rows == MaxSheetRows {
		return fmt.Errorf("%w: %d rows", ErrSheetFull, MaxSheetRows)
	}
	if len(cells) > MaxSheetColumns {
		return fmt.Errorf("%w: %d columns", ErrSheetFull, MaxSheetColumns)
	}
	if opt.Height < 0 || opt.Height > 409 || math.IsNaN(opt.Height) {
		return fmt.Errorf("%w: row height %v (0 to 409 points)", ErrBadValue, opt.Height)
	}
	num := s.rows + 1
	row := strconv.Itoa(num)
	b := append(s.buf[:0], `<row r="`+row+`"`...)
	if opt.Height > 0 {
		b = append(b, ` ht="`...)
		b = strconv.AppendFloat(b, opt.Height, 'f', -1, 64)
		b = append(b, `" customHeight="1"`...)
	}
	b = append(b, '>')
	for i, c := range cells {
		if err := w.checkStyle(c.style); err != nil {
			return err
		}
		if c.kind == fieldBlank || c.kind == fieldText && c.text == "" {
			if c.style == 0 {
				continue
			}
			c.kind = fieldBlank
		}
		b = append(b, `<c r="`...)
		b = append(b, ColumnName(i)...)
		b = append(b, row...)
		b = append(b, '"')
		if c.style != 0 {
			b = append(b, ` s="`...)
			b = strconv.AppendInt(b, int64(c.style), 10)
			b = append(b, '"')
		}
		switch c.kind {
		case fieldBlank:
			b = append(b, "/>"...)
		case fieldNumber:
			if math.IsNaN(c.num) || math.IsInf(c.num, 0) {
				return fmt.Errorf("%w: cell %s: %v", ErrBadValue, CellName(i, num), c.num)
			}
			b = append(b, "><v>"...)
			if a := math.Abs(c.num); a == 0 || a >= 1e-9 && a < 1e21 {
				b = strconv.AppendFloat(b, c.num, 'f', -1, 64)
			} else {
				b = strconv.AppendFloat(b, c.num, 'E', -1, 64)
			}
			b = append(b, "</v></c>"...)
		case fieldText:
			if len(c.text) > MaxCellChars && len(utf16.Encode([]rune(c.text))) > MaxCellChars {
				return fmt.Errorf("%w: cell %s: more than %d characters", ErrCellTooLong, CellName(i, num), MaxCellChars)
			}
			b = append(b, ` t="inlineStr"><is><t`...)
			if needsPreserve(c.text) {
				b = append(b, ` xml:space="preserve"`...)
			}
			b = append(b, '>')
			b = appendText(b, c.text)
			b = append(b, "</t></is></c>"...)
		}
		s.cols = max(s.cols, i+1)
	}
	b = append(b, "</row>"...)
	s.buf = b
	s.rows++
	return s.flushBuf()
}

func (s *Sheet) flushBuf() error {
	if _, err := s.bw.Write(s.buf); err != nil {
		s.w.err = fmt.Errorf("write sheet: %w", err)
	}
	s.buf = s.buf[:0]
	return s.w.err
}
