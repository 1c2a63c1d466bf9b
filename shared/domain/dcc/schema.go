package dcc

import (
	"errors"
	"strings"
)

// The official schema and the jsonschema library that checks it live in the dccschema
// subpackage: the library's package init alone adds ~0.75 MB to every binary that links it,
// and the functions that only issue certificates must fit the 12 MiB Lambda budget. Issuing
// needs only KnownValidVaccination (schema_fast.go); verifying foreign certificates needs
// dccschema.ValidateJSON. The error types both report stay here.

// MaxDocumentSize bounds the JSON documents DecodeDocument, dccschema.ValidateJSON and
// CheckValueSets read. A DCC with every field at its 80-character limit is under 2 KiB; an
// HC1 QR holds at most 4,296 characters.
const MaxDocumentSize = 16 << 10

var (
	// ErrSchema: the document violates the DCC JSON schema (from dccschema the error is a
	// *SchemaError), or Validate could not confirm that a certificate we issue satisfies it.
	ErrSchema = errors.New("DCC schema violation")
	// ErrDocument: the bytes are not one JSON value within MaxDocumentSize.
	ErrDocument = errors.New("DCC document unreadable")
)

// FieldError is one schema violation: the JSON pointer of the offending value (for
// example "/v/0/dn") and what is wrong with it.
type FieldError struct {
	Path    string
	Problem string
}

// SchemaError lists every violation found. errors.Is(err, ErrSchema) holds.
type SchemaError struct {
	Fields []FieldError
}

func (e *SchemaError) Error() string {
	var b strings.Builder
	b.WriteString(ErrSchema.Error())
	for i, f := range e.Fields {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(f.Path)
		b.WriteString(": ")
		b.WriteString(f.Problem)
	}
	return b.String()
}

func (e *SchemaError) Unwrap() error { return ErrSchema }
