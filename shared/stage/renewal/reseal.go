package renewal

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/vaxpass/vaxpass/shared/domain/dcc"
	"github.com/vaxpass/vaxpass/shared/hc1/hcert"
)

// ErrStoredHC1 marks a stored certificate whose HC1 cannot be decoded or does not carry
// its own UVCI: that certificate cannot be renewed (it is counted as failed, and the run
// goes on).
var ErrStoredHC1 = errors.New("stored HC1 unusable")

// StoredDCC decodes a stored HC1 down to the DCC's CBOR (the -260/1 claim, byte for byte
// as it was signed) and returns it with the certificate identifier it carries. The
// signature is not checked: the HC1 comes from our own store.
func StoredDCC(hc1 string) (dccCBOR []byte, ci string, err error) {
	cwt, err := hcert.OpenClaims(hc1)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %w", ErrStoredHC1, err)
	}
	dccCBOR = cwt.DCC
	doc, err := hcert.DCCToJSON(dccCBOR)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %w", ErrStoredHC1, err)
	}
	var d struct {
		V []struct {
			CI string `json:"ci"`
		} `json:"v"`
	}
	if err := json.Unmarshal(doc, &d); err != nil || len(d.V) != 1 || d.V[0].CI == "" {
		return nil, "", fmt.Errorf("%w: the DCC holds no single vaccination entry with a ci", ErrStoredHC1)
	}
	return dccCBOR, d.V[0].CI, nil
}

// HC1Resealer re-signs a DCC unchanged with the central DSC key: new CWT iat and exp
// (iat + 12 months, never past the DSC's validity), the DCC's CBOR bytes exactly as given.
// It is signing.HC1Sealer for a DCC that already exists.
type HC1Resealer struct {
	Signer hcert.Signer
	DSC    *x509.Certificate
}

// Reseal implements Sealer.
func (s *HC1Resealer) Reseal(ctx context.Context, dccCBOR []byte, issuedAt time.Time) (string, time.Time, string, error) {
	claims, err := hcert.NewClaims(dcc.Country, issuedAt, s.DSC)
	if err != nil {
		return "", time.Time{}, "", err
	}
	// A RawMessage is written as is: the renewed DCC is the same bytes.
	hc1, err := hcert.Sign(ctx, s.Signer, claims, cbor.RawMessage(dccCBOR))
	if err != nil {
		return "", time.Time{}, "", fmt.Errorf("re-sign HC1: %w", err)
	}
	return hc1, claims.ExpiresAt, base64.StdEncoding.EncodeToString(s.Signer.KeyID()), nil
}
