// Package verification turns the HC1 verifier's result into the verdict callers see --
// `vaxpass verify` and POST /v1/verify give the same answer for the same input -- and adds
// the checks beyond the signature: revocation by UVCI.
package verification

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/vaxpass/vaxpass/shared/domain/dcc"
	"github.com/vaxpass/vaxpass/shared/domain/dcc/dccschema"
	"github.com/vaxpass/vaxpass/shared/hc1/hcert"
)

// Verdict is the JSON verdict on one HC1 string.
//
// Step names the check that failed; Reason is the full message. The decoded fields are
// present once the signature has verified, also when a later check failed (an expired
// certificate still shows when it expired); content no trusted key vouches for is never shown.
type Verdict struct {
	Valid     bool            `json:"valid"`
	Step      string          `json:"step,omitempty"`
	Reason    string          `json:"reason,omitempty"`
	KID       string          `json:"kid,omitempty"` // base64, as on trust lists
	Algorithm string          `json:"alg,omitempty"`
	Issuer    string          `json:"issuer,omitempty"`
	IssuedAt  string          `json:"issued_at,omitempty"`
	ExpiresAt string          `json:"expires_at,omitempty"`
	Type      string          `json:"type,omitempty"` // vaccination, test or recovery
	DCC       json.RawMessage `json:"dcc,omitempty"`
	Fields    *Fields         `json:"fields,omitempty"`
}

// ErrRevoked: the certificate's UVCI is on the revocation list.
var ErrRevoked = errors.New("revoked")

// Revocations tells whether a UVCI is revoked, and why.
type Revocations interface {
	Revoked(ctx context.Context, uvci string) (reason string, revoked bool, err error)
}

// Service verifies HC1 strings against a trust list (and, when set, a revocation list).
type Service struct {
	Trust       hcert.TrustResolver
	Revocations Revocations
	Now         func() time.Time
}

// steps maps the verifier's sentinel errors to step names, most specific first.
var steps = []struct {
	err  error
	step string
}{
	{hcert.ErrPrefix, "prefix"},
	{hcert.ErrBase45, "base45"},
	{hcert.ErrInflate, "inflate"},
	{hcert.ErrCOSE, "cose"},
	{hcert.ErrTrust, "trust"},
	{hcert.ErrUnknownKID, "unknown_kid"},
	{hcert.ErrSignature, "signature"},
	{hcert.ErrClaims, "claims"},
	{hcert.ErrNotYetValid, "not_yet_valid"},
	{hcert.ErrExpired, "expired"},
	{hcert.ErrDSCValidity, "dsc_validity"},
	{hcert.ErrExpiration, "expiration"},
	{hcert.ErrKeyUsage, "key_usage"},
	{dcc.ErrSchema, "schema"},
	{dcc.ErrValueSet, "value_set"},
	{hcert.ErrPayload, "payload"},
	{hcert.ErrDCC, "dcc"},
	{ErrRevoked, "revoked"},
}

// Step names the check an error of Verify failed.
func Step(err error) string {
	for _, s := range steps {
		if errors.Is(err, s.err) {
			return s.step
		}
	}
	return "verify"
}

// CheckPayload is the DCC content check: the official JSON schema, then the value sets.
func CheckPayload(doc []byte) error {
	if err := dccschema.ValidateJSON(doc); err != nil {
		return err
	}
	return dcc.CheckValueSets(doc)
}

// Verify checks one HC1 string. A revoked certificate's reason is "revoked".
func (s *Service) Verify(ctx context.Context, hc1 string) Verdict {
	v := Verdict{}
	verifier := hcert.Verifier{Trust: s.Trust, Now: s.Now, CheckPayload: CheckPayload}
	res, err := verifier.Verify(ctx, hc1)
	if res != nil {
		v.fill(res, hc1)
	}
	if err == nil && s.Revocations != nil {
		err = s.checkRevoked(ctx, res.DCC)
	}
	if err != nil {
		v.Step, v.Reason = Step(err), err.Error()
		if errors.Is(err, ErrRevoked) {
			v.Reason = "revoked"
		}
		return v
	}
	v.Valid = true
	return v
}

// Invalid is the verdict on input that never reached the verifier (an unreadable QR image).
func Invalid(step string, err error) Verdict {
	return Verdict{Step: step, Reason: err.Error()}
}

func (s *Service) checkRevoked(ctx context.Context, doc []byte) error {
	var d struct {
		V []struct {
			CI string `json:"ci"`
		} `json:"v"`
		T []struct {
			CI string `json:"ci"`
		} `json:"t"`
		R []struct {
			CI string `json:"ci"`
		} `json:"r"`
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		return fmt.Errorf("%w: %w", hcert.ErrDCC, err)
	}
	for _, e := range d.V {
		if err := s.revoked(ctx, e.CI); err != nil {
			return err
		}
	}
	for _, e := range d.T {
		if err := s.revoked(ctx, e.CI); err != nil {
			return err
		}
	}
	for _, e := range d.R {
		if err := s.revoked(ctx, e.CI); err != nil {
			return err
		}
	}
	return nil
}

func (s *Service) revoked(ctx context.Context, ci string) error {
	reason, revoked, err := s.Revocations.Revoked(ctx, ci)
	if err != nil {
		return fmt.Errorf("revocation list: %w", err)
	}
	if revoked {
		return fmt.Errorf("%w: %s", ErrRevoked, reason)
	}
	return nil
}

// fill copies the decoded fields of a Result whose signature verified.
func (v *Verdict) fill(r *hcert.Result, hc1 string) {
	v.KID = base64.StdEncoding.EncodeToString(r.KID)
	v.Algorithm = r.Algorithm.String()
	v.Issuer = r.Issuer
	if !r.IssuedAt.IsZero() {
		v.IssuedAt = r.IssuedAt.UTC().Format(time.RFC3339)
	}
	if !r.ExpiresAt.IsZero() {
		v.ExpiresAt = r.ExpiresAt.UTC().Format(time.RFC3339)
	}
	if r.Type.Valid() {
		v.Type = r.Type.String()
	}
	doc := r.DCC
	if doc == nil {
		// The verifier stops at the first failed check (expiry, say) before converting
		// the DCC; the signature has verified, so show the content.
		doc = decodeDCC(hc1)
	}
	if json.Valid(doc) {
		v.DCC = doc
		v.Fields = fieldsOf(doc)
	}
}

// decodeDCC runs the decoding steps again to get the DCC JSON; nil when any fails.
func decodeDCC(hc1 string) []byte {
	cwt, err := hcert.OpenClaims(hc1)
	if err != nil {
		return nil
	}
	doc, err := hcert.DCCToJSON(cwt.DCC)
	if err != nil {
		return nil
	}
	return doc
}
