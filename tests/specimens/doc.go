// Package specimens is the acceptance test over the EU DCC quality-assurance
// specimens (testdata/dcc-quality-assurance, Apache-2.0): every QR image must
// decode to a schema-valid DCC, except those listed with their reason in
// testdata/exceptions.csv. It has no code of its own; see specimens_test.go.
package specimens
