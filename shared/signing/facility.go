// Package signing holds the two signing use cases: a facility signs its verified, fully
// vaccinated people (FacilityService), and central signing turns facility-signed doses into
// an EU DCC (CentralService).
package signing

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/vaxpass/vaxpass/shared/facilitysig"
	"github.com/vaxpass/vaxpass/shared/match"
	"github.com/vaxpass/vaxpass/shared/vaccine"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// FacilityStore is what facility signing reads and writes.
type FacilityStore interface {
	// SignPendingPersons lists the people with at least one verified, unsigned dose at the
	// facility, in a stable order, after the cursor person ID ("" to start), at most limit.
	SignPendingPersons(ctx context.Context, facilityID, after string, limit int) ([]string, error)
	// PersonDoses returns every dose of the person (all facilities).
	PersonDoses(ctx context.Context, personID string) ([]vaxpass.Dose, error)
	// MarkSigned sets SignedAt on the given doses, each conditional on its Version as
	// read (vaxpass.ErrConflict if one changed: it was corrected meanwhile).
	MarkSigned(ctx context.Context, doses []vaxpass.Dose, at time.Time) error
}

// CentralQueue hands a facility signature to central signing.
type CentralQueue interface {
	SendSignature(ctx context.Context, sig vaxpass.FacilitySignature) error
}

// FacilityKeys gives a facility's signer.
type FacilityKeys interface {
	FacilitySigner(ctx context.Context, facilityID string) (facilitysig.Signer, error)
}

// FacilityService signs, for one facility, every verified and fully vaccinated person
// whose doses it has not signed yet (contract: POST /v1/signatures; also run daily).
type FacilityService struct {
	Store FacilityStore
	Keys  FacilityKeys
	Queue CentralQueue
	Now   func() time.Time
	// PageSize is how many people are read at a time (default 500).
	PageSize int
}

// SignResult counts what a signing run did.
type SignResult struct {
	Signed int `json:"signed"`
	// Waiting counts verified people whose course is not complete yet.
	Waiting int `json:"waiting"`
}

// SignAll signs every pending person of the facility. The signature goes to central
// signing before the doses are marked signed: a crash in between leaves them pending, so
// the next run signs and sends again (central signing is idempotent), and nothing is lost.
func (s *FacilityService) SignAll(ctx context.Context, facilityID string) (SignResult, error) {
	var res SignResult
	signer, err := s.Keys.FacilitySigner(ctx, facilityID)
	if err != nil {
		return res, fmt.Errorf("facility %s key: %w", facilityID, err)
	}
	page := s.PageSize
	if page <= 0 {
		page = 500
	}
	after := ""
	for {
		persons, err := s.Store.SignPendingPersons(ctx, facilityID, after, page)
		if err != nil {
			return res, fmt.Errorf("list people to sign: %w", err)
		}
		for _, pid := range persons {
			if err := ctx.Err(); err != nil {
				return res, err
			}
			signed, err := s.signPerson(ctx, signer, facilityID, pid)
			if err != nil {
				return res, err
			}
			if signed {
				res.Signed++
			} else {
				res.Waiting++
			}
		}
		if len(persons) < page {
			return res, nil
		}
		after = persons[len(persons)-1]
	}
}

func (s *FacilityService) signPerson(ctx context.Context, signer facilitysig.Signer, facilityID, personID string) (bool, error) {
	all, err := s.Store.PersonDoses(ctx, personID)
	if err != nil {
		return false, fmt.Errorf("read doses of a person: %w", err)
	}
	verified := VerifiedDoses(all)
	if a, err := vaccine.Assess(courseDoses(verified)); err != nil || !a.Eligible {
		return false, nil // not complete yet: stays pending, looked at again next run
	}
	var mine, pending []vaxpass.Dose
	for _, d := range verified {
		if d.FacilityID == facilityID {
			mine = append(mine, d)
			if d.SignedAt.IsZero() {
				pending = append(pending, d)
			}
		}
	}
	if len(pending) == 0 {
		return false, nil
	}
	now := s.Now().UTC()
	content := ContentOf(personID, facilityID, mine, now)
	payload, sig, err := facilitysig.Sign(ctx, signer, content)
	if err != nil {
		return false, err
	}
	if err := s.Queue.SendSignature(ctx, vaxpass.FacilitySignature{
		PersonID: personID, FacilityID: facilityID, Payload: payload, Signature: sig, SignedAt: now,
	}); err != nil {
		return false, fmt.Errorf("send to central signing: %w", err)
	}
	if err := s.Store.MarkSigned(ctx, pending, now); err != nil {
		// A conflict means a dose was corrected meanwhile: the re-match makes it pending again.
		return false, fmt.Errorf("mark doses signed: %w", err)
	}
	return true, nil
}

// VerifiedDoses keeps the doses whose current details are verified.
func VerifiedDoses(all []vaxpass.Dose) []vaxpass.Dose {
	out := make([]vaxpass.Dose, 0, len(all))
	for _, d := range all {
		if d.Match.Status == match.Verified && !d.NeedsMatch() {
			out = append(out, d)
		}
	}
	return out
}

func courseDoses(ds []vaxpass.Dose) []vaccine.Dose {
	out := make([]vaccine.Dose, len(ds))
	for i, d := range ds {
		out[i] = vaccine.Dose{Vaccine: vaccine.Code(d.Vaccine), DoseNumber: d.DoseNumber, VaccinatedOn: d.VaccinatedOn}
	}
	return out
}

// ContentOf is what the facility vouches for: the person as the registry knows them
// (the matcher's corrections applied) and the doses it gave.
func ContentOf(personID, facilityID string, doses []vaxpass.Dose, at time.Time) facilitysig.Content {
	c := facilitysig.Content{PersonID: personID, FacilityID: facilityID, SignedAt: at}
	// Every verified dose of a person carries the same registry details; take the newest.
	latest := slices.MaxFunc(doses, func(a, b vaxpass.Dose) int { return a.UpdatedAt.Compare(b.UpdatedAt) })
	c.FullName, c.DOB, c.Gender = corrected(latest)
	c.Nationality = latest.Nationality
	for _, d := range doses {
		c.Doses = append(c.Doses, facilitysig.Dose{SourceID: d.SourceID, Vaccine: d.Vaccine, DoseNumber: d.DoseNumber, VaccinatedOn: d.VaccinatedOn, Lot: d.Lot})
	}
	return c
}

func corrected(d vaxpass.Dose) (name, dob, gender string) {
	name, dob, gender = d.FullName, d.DOB, d.Gender
	if v := d.Match.Corrected[match.FieldFullName]; v != "" {
		name = v
	}
	if v := d.Match.Corrected[match.FieldDOB]; v != "" {
		dob = v
	}
	if v := d.Match.Corrected[match.FieldGender]; v != "" {
		gender = v
	}
	return name, dob, gender
}
