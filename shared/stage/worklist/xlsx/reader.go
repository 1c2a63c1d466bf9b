package xlsx

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"encoding/xml"
	"fmt"
	"io"
	"net/url"
	"path"
	"strings"
)

// Reader reads the first worksheet of an .xlsx workbook.
type Reader struct {
	lim      Limits
	parts    map[string]*zip.File // by lower-case part name: OPC part names ignore case
	inflated int64                // bytes inflated so far, all parts together

	date1904  bool
	sheetName string
	sheetPart string
	stylesPt  string // "" when the workbook has none
	stringsPt string // "" when the workbook has none
}

var (
	zipMagic = []byte("PK\x03\x04")
	oleMagic = []byte{0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1}
	// encryptedPackage is the stream an encrypted OOXML workbook keeps inside its OLE2
	// container (MS-OFFCRYPTO), named in UTF-16LE in the container's directory.
	encryptedPackage = utf16le("EncryptedPackage")
)

// NewReader opens the workbook in ra (size bytes) and finds its first worksheet by the
// package relationships and the workbook's sheet list. It reads no cell yet.
func NewReader(ra io.ReaderAt, size int64, lim Limits) (*Reader, error) {
	lim = lim.withDefaults()
	if size > lim.MaxFileBytes {
		return nil, fmt.Errorf("%w: %d bytes (limit %d)", ErrFileTooLarge, size, lim.MaxFileBytes)
	}
	var head [8]byte
	n, _ := ra.ReadAt(head[:], 0)
	switch {
	case bytes.Equal(head[:n], oleMagic):
		if found, err := contains(ra, size, encryptedPackage); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
		} else if found {
			return nil, ErrEncrypted
		}
		return nil, ErrLegacyFormat
	case !bytes.HasPrefix(head[:n], zipMagic):
		return nil, ErrNotZip
	}
	if err := checkEntryCount(ra, size, lim.MaxParts); err != nil {
		return nil, err
	}
	zr, err := zip.NewReader(ra, size)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if len(zr.File) > lim.MaxParts {
		return nil, fmt.Errorf("%w: %d (limit %d)", ErrTooManyParts, len(zr.File), lim.MaxParts)
	}
	r := &Reader{lim: lim, parts: make(map[string]*zip.File, len(zr.File))}
	var declared uint64
	for _, f := range zr.File {
		declared += f.UncompressedSize64
		if f.UncompressedSize64 > uint64(lim.MaxTotalBytes) || declared > uint64(lim.MaxTotalBytes) {
			return nil, fmt.Errorf("%w: the parts declare more than %d bytes", ErrInflatedTooLarge, lim.MaxTotalBytes)
		}
		name := strings.ToLower(strings.TrimPrefix(f.Name, "/"))
		if _, dup := r.parts[name]; dup {
			return nil, fmt.Errorf("%w: part %s twice", ErrCorrupt, quoteName(f.Name))
		}
		r.parts[name] = f
	}
	if err := r.readWorkbook(); err != nil {
		return nil, err
	}
	return r, nil
}

// Date1904 reports whether the workbook counts dates from 1904 (ExcelSerialToTime).
func (r *Reader) Date1904() bool { return r.date1904 }

// SheetName is the name of the worksheet Rows reads.
func (r *Reader) SheetName() string { return r.sheetName }

// checkEntryCount reads the archive's end record for the number of entries, so that a
// directory of a million entries is refused before archive/zip builds it.
func checkEntryCount(ra io.ReaderAt, size int64, max int) error {
	const endLen = 22 // end of central directory record, without its comment
	tail := min(size, endLen+0xffff)
	buf := make([]byte, tail)
	if _, err := ra.ReadAt(buf, size-tail); err != nil && err != io.EOF {
		return fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	i := bytes.LastIndex(buf, []byte("PK\x05\x06"))
	if i < 0 || len(buf)-i < endLen {
		return nil // archive/zip will say what is wrong
	}
	// Entries in the whole archive; 0xffff means "see the zip64 record": at least as many.
	if n := int(binary.LittleEndian.Uint16(buf[i+10:])); n > max {
		return fmt.Errorf("%w: %d or more (limit %d)", ErrTooManyParts, n, max)
	}
	return nil
}

// contains scans ra for pattern in overlapping chunks.
func contains(ra io.ReaderAt, size int64, pattern []byte) (bool, error) {
	buf := make([]byte, 64<<10)
	for off := int64(0); off < size; off += int64(len(buf) - len(pattern)) {
		n, err := ra.ReadAt(buf, off)
		if bytes.Contains(buf[:n], pattern) {
			return true, nil
		}
		if err == io.EOF || off+int64(n) >= size {
			return false, nil
		}
		if err != nil {
			return false, err
		}
	}
	return false, nil
}

func utf16le(s string) []byte {
	b := make([]byte, 0, 2*len(s))
	for i := 0; i < len(s); i++ {
		b = append(b, s[i], 0)
	}
	return b
}

// relationship is one entry of a .rels part, its target resolved to a part name.
type relationship struct {
	id, typ, target string
}

// relType compares relationship types by their last segment, which the transitional and
// the strict OOXML namespaces share.
func relType(typ, kind string) bool { return strings.HasSuffix(typ, "/"+kind) }

// readRels reads the relationships of the part source ("" for the package itself).
func (r *Reader) readRels(source string) ([]relationship, error) {
	dir, file := path.Split(source)
	p, err := r.openPart(dir+"_rels/"+file+".rels", maxMarkup)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	if _, err := p.root("Relationships"); err != nil {
		return nil, err
	}
	max := 4*r.lim.MaxParts + 64 // internal targets are parts; a few external ones
	var rels []relationship
	for {
		tok, err := p.next()
		if err == io.EOF {
			return rels, nil
		}
		if err != nil {
			return nil, err
		}
		se, ok := tok.(xml.StartElement)
		if !ok || se.Name.Local != "Relationship" || p.depth != 2 {
			continue
		}
		if len(rels) == max {
			return nil, fmt.Errorf("%w: %s has more than %d relationships", ErrTooManyParts, quoteName(p.name), max)
		}
		id, _ := attr(se, "Id")
		typ, _ := attr(se, "Type")
		target, _ := attr(se, "Target")
		if mode, _ := attr(se, "TargetMode"); mode == "External" {
			continue
		}
		rels = append(rels, relationship{id: id, typ: typ, target: resolve(dir, target)})
	}
}

// resolve turns a relationship target into a part name: relative to the source part's
// folder, or from the package root when it starts with a slash.
func resolve(dir, target string) string {
	if u, err := url.PathUnescape(target); err == nil {
		target = u
	}
	if strings.HasPrefix(target, "/") {
		return strings.TrimPrefix(path.Clean(target), "/")
	}
	return strings.TrimPrefix(path.Join("/"+dir, target), "/")
}

// readWorkbook follows the package's officeDocument relationship to the workbook, and the
// workbook's relationships to its first worksheet, styles and shared strings.
func (r *Reader) readWorkbook() error {
	rels, err := r.readRels("")
	if err != nil {
		return err
	}
	book := ""
	for _, rel := range rels {
		if relType(rel.typ, "officeDocument") {
			book = rel.target
			break
		}
	}
	if book == "" {
		return fmt.Errorf("%w: no workbook in the package", ErrCorrupt)
	}
	rels, err = r.readRels(book)
	if err != nil {
		return err
	}
	sheets := map[string]string{}
	for _, rel := range rels {
		switch {
		case relType(rel.typ, "worksheet"):
			sheets[rel.id] = rel.target
		case relType(rel.typ, "styles") && r.stylesPt == "":
			r.stylesPt = rel.target
		case relType(rel.typ, "sharedStrings") && r.stringsPt == "":
			r.stringsPt = rel.target
		}
	}

	p, err := r.openPart(book, maxMarkup)
	if err != nil {
		return err
	}
	defer p.Close()
	if _, err := p.root("workbook"); err != nil {
		return err
	}
	for {
		tok, err := p.next()
		if err == io.EOF {
			return fmt.Errorf("%w: the workbook has no worksheet", ErrCorrupt)
		}
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			switch {
			case t.Name.Local == "workbookPr" && p.depth == 2:
				v, _ := attr(t, "date1904")
				r.date1904 = v == "1" || v == "true"
			case t.Name.Local == "sheet" && p.depth == 3:
				id := ""
				for _, a := range t.Attr {
					if a.Name.Local == "id" && a.Name.Space != "" {
						id = a.Value
					}
				}
				if target, ok := sheets[id]; ok && id != "" {
					r.sheetName, _ = attr(t, "name")
					r.sheetPart = target
					return nil // the first worksheet in tab order; the rest is not needed
				}
			}
		case xml.EndElement:
			if t.Name.Local == "sheets" && p.depth == 1 {
				return fmt.Errorf("%w: the workbook has no worksheet", ErrCorrupt)
			}
		}
	}
}
