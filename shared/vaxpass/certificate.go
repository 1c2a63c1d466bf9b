package vaxpass

import "time"

// Certificate is an issued EU DCC. One person has at most one certificate in status
// issued; a certificate that replaces another revokes it (Replaces / RevokedReason).
type Certificate struct {
	UVCI     string `json:"uvci"`
	PersonID string `json:"person_id"`
	// HC1 is the signed QR payload; it is personal data and never logged.
	HC1       string    `json:"hc1"`
	Status    string    `json:"status"`
	IssuedAt  time.Time `json:"issued_at"`
	ExpiresAt time.Time `json:"expires_at"`
	// KID is the base64 kid of the DSC that signed it.
	KID string `json:"kid"`
	// ContentHash fingerprints what the certificate says (everything but ci, iat, exp): an
	// issuance request with the same content is a no-op, a different one is a new certificate.
	ContentHash string `json:"content_hash"`
	// Fields are the 11 displayed fields (Decision 5772/QĐ-BYT), kept for the lookup page.
	Fields Fields `json:"fields"`
	// NameKey and DOB let a lookup check the typed details without decoding the HC1.
	NameKey string `json:"name_key"`
	DOB     string `json:"dob"`
	// Replaces is the UVCI of the certificate this one superseded.
	Replaces      string    `json:"replaces,omitempty"`
	RevokedReason string    `json:"revoked_reason,omitempty"`
	RevokedAt     time.Time `json:"revoked_at,omitzero"`
	Version       int64     `json:"version"`
}

// StatusAt is the certificate's status as a caller sees it at now: an issued certificate
// past its expiry is expired.
func (c *Certificate) StatusAt(now time.Time) string {
	if c.Status == CertIssued && !now.Before(c.ExpiresAt) {
		return CertExpired
	}
	return c.Status
}

// Fields are the 11 fields of the certificate shown in English (contract: lookup "fields").
type Fields struct {
	FullName          string `json:"full_name"`
	DateOfBirth       string `json:"date_of_birth"`
	Nationality       string `json:"nationality"`
	Disease           string `json:"disease"`
	DosesReceived     int    `json:"doses_received"`
	DateOfVaccination string `json:"date_of_vaccination"`
	DoseNumber        int    `json:"dose_number"`
	// TotalDoses is sd: the page shows the dose number as "dn/sd".
	TotalDoses     int    `json:"total_doses"`
	Vaccine        string `json:"vaccine"`
	VaccineProduct string `json:"vaccine_product"`
	Manufacturer   string `json:"manufacturer"`
	CertificateID  string `json:"certificate_id"`
}

// FacilitySignature is a facility's signature over a person's verified doses it gave
// (canonical CBOR of them). Central signing verifies it before issuing.
type FacilitySignature struct {
	PersonID   string `json:"person_id"`
	FacilityID string `json:"facility_id"`
	// Payload is the person's canonical CBOR; Signature is ECDSA P-256 r||s over the
	// SHA-256 of what Form says is signed.
	Payload   []byte    `json:"payload"`
	Signature []byte    `json:"signature"`
	SignedAt  time.Time `json:"signed_at"`
	// Form is facilitysig.Form: "" (the first form, one signature per person) signs
	// Payload; "merkle-sha256" signs Batch, the head of a Merkle tree over a page of
	// people's payloads, and Proof (sibling hashes, leaf first), ProofIndex and TreeSize
	// show that Payload is in it. Empty fields are left out, so messages and stored
	// signatures of the first form read as before.
	Form       string   `json:"form,omitempty"`
	Batch      []byte   `json:"batch,omitempty"`
	Proof      [][]byte `json:"proof,omitempty"`
	ProofIndex uint64   `json:"proof_index,omitempty"`
	TreeSize   uint64   `json:"tree_size,omitempty"`
}
