package vaxpass

import (
	"time"

	"github.com/vaxpass/vaxpass/shared/domain/dose"
	"github.com/vaxpass/vaxpass/shared/domain/match"
)

// Dose is a dose record as stored: what the facility sent, plus what the pipeline learnt.
type Dose struct {
	FacilityID string `json:"facility_id"`
	dose.Record
	// Match is the person's match status; PENDING until the matcher has run.
	Match match.Result `json:"match"`
	// MatchedDetails is DetailsHash of the record when it was matched: a change of the
	// personal details (a correction) makes them differ and triggers a re-match.
	MatchedDetails string `json:"matched_details,omitempty"`
	// PersonID is the registry ID of the person once VERIFIED; it groups a person's doses
	// across facilities.
	PersonID string `json:"person_id,omitempty"`
	// SignedAt is when the facility signed this dose (zero until then).
	SignedAt   time.Time `json:"signed_at,omitzero"`
	ReceivedAt time.Time `json:"received_at"`
	UpdatedAt  time.Time `json:"updated_at"`
	// Version increases with every write; conditional writes compare it.
	Version int64 `json:"version"`
}

// Key is the idempotency key of a dose: facility + source_id.
func (d *Dose) Key() DoseKey { return DoseKey{FacilityID: d.FacilityID, SourceID: d.SourceID} }

// DoseKey identifies one dose record.
type DoseKey struct {
	FacilityID string `json:"facility_id"`
	SourceID   string `json:"source_id"`
}

// NeedsMatch reports whether the matcher has yet to judge the record's current details.
func (d *Dose) NeedsMatch() bool {
	return d.Match.Status == "" || d.Match.Status == match.Pending || d.MatchedDetails != DetailsHash(&d.Record)
}

// SignPending reports whether the dose is verified and not yet signed by its facility.
func (d *Dose) SignPending() bool {
	return d.Match.Status == match.Verified && d.SignedAt.IsZero() && !d.NeedsMatch()
}
