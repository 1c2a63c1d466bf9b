package hcert

import "errors"

// Sentinel errors, one per failure class; every error returned by this package
// wraps exactly one of the step sentinels so callers can tell which step failed.
var (
	// ErrPrefix: the text does not start with the context identifier "HC1:".
	ErrPrefix = errors.New("hcert: prefix")
	// ErrBase45: the text after the prefix is not valid Base45.
	ErrBase45 = errors.New("hcert: base45")
	// ErrInflate: the data is not a valid zlib stream, or inflates beyond MaxCOSESize.
	ErrInflate = errors.New("hcert: inflate")
	// ErrCOSE: the data is not a well-formed, supported COSE_Sign1 structure.
	ErrCOSE = errors.New("hcert: COSE")
	// ErrClaims: the COSE payload is not a well-formed HCERT CWT claims map.
	ErrClaims = errors.New("hcert: CWT claims")
	// ErrTrust: the TrustResolver itself failed (or none is configured).
	ErrTrust = errors.New("hcert: trust lookup")
	// ErrUnknownKID: no trusted DSC has the message's key identifier.
	ErrUnknownKID = errors.New("hcert: unknown kid")
	// ErrSignature: the signature does not verify with any DSC of that kid.
	ErrSignature = errors.New("hcert: signature")
	// ErrExpiration: the validity window check failed; one of ErrNotYetValid,
	// ErrExpired or ErrDSCValidity is wrapped beside it.
	ErrExpiration = errors.New("hcert: expiration check")
	// ErrNotYetValid: the clock is before iat.
	ErrNotYetValid = errors.New("hcert: clock before issued-at")
	// ErrExpired: the clock is after exp.
	ErrExpired = errors.New("hcert: expired")
	// ErrDSCValidity: iat before the DSC's notBefore or exp after its notAfter.
	ErrDSCValidity = errors.New("hcert: outside the DSC validity")
	// ErrKeyUsage: the DSC's extended key usage does not allow the DCC type.
	ErrKeyUsage = errors.New("hcert: key usage")
	// ErrDCC: the DCC is not convertible to JSON or does not hold exactly one of v/t/r.
	ErrDCC = errors.New("hcert: DCC")
	// ErrPayload: the injected payload check (schema, value sets) rejected the DCC.
	ErrPayload = errors.New("hcert: payload check")
	// ErrSign: issuing failed (bad claims, payload encoding or the signer).
	ErrSign = errors.New("hcert: sign")

	// errSignatureSize is wrapped with ErrSign for a Signer reply of the wrong length.
	errSignatureSize = errors.New("signature has the wrong size for the algorithm")
)
