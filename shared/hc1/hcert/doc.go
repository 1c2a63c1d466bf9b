// Package hcert issues and verifies HCERT health certificates (EU DCC): the
// HC1 pipeline DCC -> CBOR -> CWT -> COSE_Sign1 -> zlib -> Base45 -> "HC1:".
//
// Verification runs the same steps backwards as small exported functions, each
// failing with its own sentinel error: Unprefix, DecodeBase45, Inflate,
// ParseCOSE, ParseClaims, VerifySignature, CheckExpiration, CheckKeyUsage and
// DCCToJSON. Verifier chains them with a trust list, a clock and an optional
// payload check.
package hcert
