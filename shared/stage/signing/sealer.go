package signing

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"time"

	"github.com/vaxpass/vaxpass/shared/domain/dcc"
	"github.com/vaxpass/vaxpass/shared/hc1/hcert"
)

// HC1Sealer seals certificates with the central DSC key: CWT claims (iss VN, iat, exp =
// iat + 12 months, never past the DSC's validity), COSE_Sign1 ES256, zlib, base45, HC1:.
// Signer is a software key locally and a KMS key on AWS.
type HC1Sealer struct {
	Signer hcert.Signer
	DSC    *x509.Certificate
}

// Seal implements Sealer.
func (s *HC1Sealer) Seal(ctx context.Context, c *dcc.Certificate, issuedAt time.Time) (string, time.Time, string, error) {
	claims, err := hcert.NewClaims(dcc.Country, issuedAt, s.DSC)
	if err != nil {
		return "", time.Time{}, "", err
	}
	hc1, err := hcert.Sign(ctx, s.Signer, claims, c)
	if err != nil {
		return "", time.Time{}, "", fmt.Errorf("sign HC1: %w", err)
	}
	return hc1, claims.ExpiresAt, base64.StdEncoding.EncodeToString(s.Signer.KeyID()), nil
}
