// Package dccschema validates DCC JSON documents against the official EU schema with the
// jsonschema library. It is apart from package dcc so that binaries which only issue
// certificates (dcc.Validate checks our own output with dcc.KnownValidVaccination) do not
// link the library: its package init alone costs ~0.75 MB per binary, and every Lambda
// must stay within 12 MiB. Verifying foreign certificates (any issuer, tests and
// recoveries too) needs it. Errors are package dcc's: *dcc.SchemaError (wrapping
// dcc.ErrSchema) and dcc.ErrDocument.
package dccschema

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/vaxpass/vaxpass/shared/domain/dcc"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// The official schema (ehn-dcc-development/eu-dcc-schema DCC.combined-schema.json, 1.3.3,
// Apache-2.0, see LICENSE beside it) is compiled into the binary: Lambda functions and the
// verifier CLI run without the reference folder and without network, and validating
// against a copy fetched at run time would let the check change under us.
//
//go:embed DCC.combined-schema.json
var combinedSchema []byte

// schemaURL is the schema's own $id, so its internal $refs resolve without any loader.
const schemaURL = "https://id.uvci.eu/DCC.combined-schema.json"

// compiledSchema compiles the embedded schema once, on first use; safe for concurrent
// validators. Format keywords ("date", "date-time") are annotations, as JSON Schema
// 2020-12 specifies by default and as the EU's own test data expects: the schema's valid
// tests carry "+02" offsets (test/valid/T-rat-dates1.json) and dgc-testdata expects
// date-time `dt` values to pass. Our issuer checks dates strictly in dcc.Validate.
func compiledSchema() (*jsonschema.Schema, error) {
	compiledSchemaOnce.Do(func() { compiledSchemaOnce.v, compiledSchemaOnce.err = compileSchema() })
	return compiledSchemaOnce.v, compiledSchemaOnce.err
}

// compiledSchemaOnce holds compiledSchema's result. A plain function and a sync.Once rather
// than a package-level sync.OnceValues closure: the linker then leaves the work out of
// binaries that never call it.
var compiledSchemaOnce struct {
	sync.Once
	v   *jsonschema.Schema
	err error
}

func compileSchema() (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(combinedSchema))
	if err != nil {
		return nil, fmt.Errorf("dccschema: embedded schema: %w", err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(schemaURL, doc); err != nil {
		return nil, fmt.Errorf("dccschema: embedded schema: %w", err)
	}
	sch, err := c.Compile(schemaURL)
	if err != nil {
		return nil, fmt.Errorf("dccschema: embedded schema: %w", err)
	}
	return sch, nil
}

// ValidateJSON validates one DCC JSON document against the official schema. A violation
// gives a *dcc.SchemaError naming each failing JSON path; bytes that are not a single JSON
// value of at most dcc.MaxDocumentSize give dcc.ErrDocument. Duplicate object keys are
// rejected: two values for one field make the certificate ambiguous.
func ValidateJSON(doc []byte) error {
	v, err := dcc.DecodeDocument(doc)
	if err != nil {
		return err
	}
	return ValidateValue(v)
}

// ValidateValue validates an already decoded document: the value encoding/json produces
// into an `any` (with or without UseNumber), or a CBOR decoding into map[string]any,
// []any, string and integer types. The verifier uses it to skip a JSON round trip.
func ValidateValue(v any) error {
	if dcc.KnownValidVaccination(v) {
		return nil
	}
	return validateWithLibrary(v)
}

// validateWithLibrary runs the official schema through the jsonschema library.
func validateWithLibrary(v any) error {
	sch, err := compiledSchema()
	if err != nil {
		return err
	}
	err = sch.Validate(v)
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return fmt.Errorf("%w: %w", dcc.ErrSchema, err)
	}
	return &dcc.SchemaError{Fields: leafErrors(ve)}
}

// printer renders the validator's messages; made on first use, so a binary that never
// validates a certificate does not carry its language tables.
var printer = sync.OnceValue(func() *message.Printer { return message.NewPrinter(language.English) })

// leafErrors flattens the validator's error tree to its leaves, the violations a person
// can act on, sorted by path. For a oneOf over v/t/r the leaves say which property is
// missing in each branch.
func leafErrors(ve *jsonschema.ValidationError) []dcc.FieldError {
	var out []dcc.FieldError
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			out = append(out, dcc.FieldError{
				Path:    "/" + strings.Join(e.InstanceLocation, "/"),
				Problem: e.ErrorKind.LocalizedString(printer()),
			})
			return
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	slices.SortStableFunc(out, func(a, b dcc.FieldError) int { return strings.Compare(a.Path, b.Path) })
	return slices.Compact(out)
}
