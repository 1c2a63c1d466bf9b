// Package lookup is the citizen's lookup use case: ID number, full name and date of birth
// in, the person's certificate out -- or one neutral "not found" whatever went wrong, so
// the answer never tells whether an ID number is known.
package lookup

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/vaxpass/vaxpass/shared/domain/dose"
	"github.com/vaxpass/vaxpass/shared/domain/identity"
	"github.com/vaxpass/vaxpass/shared/domain/vnname"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// CertReader reads certificates.
type CertReader interface {
	ActiveCertificate(ctx context.Context, personID string) (vaxpass.Certificate, error)
	CertificateByUVCI(ctx context.Context, uvci string) (vaxpass.Certificate, error)
}

// Service is the lookup use case.
type Service struct {
	Certs CertReader
}

// Query is what the citizen types.
type Query struct {
	IDNumber string `json:"id_number"`
	FullName string `json:"full_name"`
	DOB      string `json:"dob"`
}

// Validate names the first field that cannot be used at all (empty, or a malformed date):
// those are the caller's mistakes and get a 400; anything else is a neutral 404.
func (q Query) Validate() []dose.FieldError {
	var errs []dose.FieldError
	if strings.TrimSpace(q.IDNumber) == "" {
		errs = append(errs, dose.FieldError{Field: "id_number", Code: dose.CodeRequired, Message: "is required"})
	}
	if strings.TrimSpace(q.FullName) == "" {
		errs = append(errs, dose.FieldError{Field: "full_name", Code: dose.CodeRequired, Message: "is required"})
	}
	if d := dose.NormalizeDate(q.DOB); d == "" {
		errs = append(errs, dose.FieldError{Field: "dob", Code: dose.CodeRequired, Message: "is required"})
	} else if _, err := dose.ParsePartialDate(d); err != nil {
		errs = append(errs, dose.FieldError{Field: "dob", Code: dose.CodeFormat, Message: dose.MsgDOBFormat})
	}
	return errs
}

// Find returns the person's active certificate when all three details agree with it.
// Name comparison ignores diacritics, case, spacing and Unicode form (as the matcher does);
// the date of birth must be the certificate's. Any mismatch is vaxpass.ErrNotFound.
func (s *Service) Find(ctx context.Context, q Query) (vaxpass.Certificate, error) {
	if len(q.Validate()) > 0 {
		return vaxpass.Certificate{}, vaxpass.ErrNotFound
	}
	id, err := identity.Parse(q.IDNumber)
	if err != nil {
		return vaxpass.Certificate{}, vaxpass.ErrNotFound
	}
	cert, err := s.Certs.ActiveCertificate(ctx, id.Number)
	if err != nil {
		if errors.Is(err, vaxpass.ErrNotFound) {
			return vaxpass.Certificate{}, vaxpass.ErrNotFound
		}
		return vaxpass.Certificate{}, fmt.Errorf("read certificate: %w", err)
	}
	if vnname.Key(q.FullName) != cert.NameKey || dose.NormalizeDate(q.DOB) != cert.DOB {
		return vaxpass.Certificate{}, vaxpass.ErrNotFound
	}
	return cert, nil
}

// ByUVCI returns a certificate by its identifier (for the QR image).
func (s *Service) ByUVCI(ctx context.Context, uvci string) (vaxpass.Certificate, error) {
	return s.Certs.CertificateByUVCI(ctx, strings.ToUpper(strings.TrimSpace(uvci)))
}
