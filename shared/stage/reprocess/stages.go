package reprocess

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vaxpass/vaxpass/shared/domain/dcc"
	"github.com/vaxpass/vaxpass/shared/domain/facilitysig"
	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/domain/vaccine"
	"github.com/vaxpass/vaxpass/shared/stage/matching"
	"github.com/vaxpass/vaxpass/shared/stage/signing"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// stage is one pipeline stage as a run drives it.
type stage interface {
	// units turns a page of scanned doses into units of work: those the filter selects,
	// each person (or person at a facility) once over the whole run -- through the first
	// of their selected doses in scan order.
	units(ctx context.Context, f *Filter, doses []vaxpass.Dose) ([]Unit, error)
	// state reads a unit's current state.
	state(ctx context.Context, u *Unit) (state, error)
	// apply does the units' work (in a dry run: decides it) and says per unit what it did.
	// err is a failure that ends the run; a unit's own failure is in its result.
	apply(ctx context.Context, units []Unit, dryRun bool) ([]result, error)
	// changeLabel names the change between two states of a unit.
	changeLabel(pre, post state) string
}

// result is what apply did with one unit: outcome is what it changed (or would change)
// into; skip, for a unit left alone, why (optional); err the unit's failure.
type result struct {
	outcome string
	skip    string
	err     error
}

// Outcomes and skip reasons (lower-case words: they are audit count keys).
const (
	OutcomeSigned   = "signed"
	OutcomeResigned = "resigned"
	OutcomeIssued   = "issued"
	OutcomeReissued = "reissued"
	OutcomeRenewed  = "renewed"
	SkipNotEligible = "not_eligible"
	SkipNotVerified = "not_verified"
)

const (
	matchRetries      = 3
	fingerprintPrefix = 16 // hex digits
	stateAbsent       = "absent"
	labelPendingSign  = "pending"
	labelAllSigned    = "signed"
)

func (s *Service) stageFor(st Stage) (stage, error) {
	switch st {
	case StageMatch:
		if s.Matcher == nil {
			return nil, fmt.Errorf("%w: %s needs the matcher", ErrStageUnavailable, st)
		}
		return &matchStage{s: s}, nil
	case StageFacilitySign:
		if s.Keys == nil || s.Queue == nil || s.Signatures == nil {
			return nil, fmt.Errorf("%w: %s needs facility keys, the central queue and the facility signatures", ErrStageUnavailable, st)
		}
		return &facilitySignStage{s: s}, nil
	case StageCentralSign:
		if s.Issuer == nil || s.Certificates == nil {
			return nil, fmt.Errorf("%w: %s needs central signing and the certificates", ErrStageUnavailable, st)
		}
		return &centralSignStage{s: s}, nil
	}
	return nil, fmt.Errorf("%w: stage: %q is not one of %s", vaxpass.ErrInvalid, st, stageList())
}

func fingerprint(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:fingerprintPrefix/2])
}

// personDoses reads people's doses once per page.
type personDoses struct {
	s     *Service
	cache map[string][]vaxpass.Dose
}

func (p *personDoses) get(ctx context.Context, personID string) ([]vaxpass.Dose, error) {
	if ds, ok := p.cache[personID]; ok {
		return ds, nil
	}
	ds, err := p.s.Doses.PersonDoses(ctx, personID)
	if err != nil {
		return nil, fmt.Errorf("read a person's doses: %w", err)
	}
	if p.cache == nil {
		p.cache = map[string][]vaxpass.Dose{}
	}
	p.cache[personID] = ds
	return ds, nil
}

// firstOf reports whether d is the first, in scan order, of the person's doses that
// qualify: the person's unit is found through that dose only.
func firstOf(d *vaxpass.Dose, all []vaxpass.Dose, qualifies func(*vaxpass.Dose) bool) bool {
	for i := range all {
		x := &all[i]
		if keyLess(x.Key(), d.Key()) && qualifies(x) {
			return false
		}
	}
	return true
}

// ---- match ----

type matchStage struct{ s *Service }

func (m *matchStage) units(_ context.Context, f *Filter, doses []vaxpass.Dose) ([]Unit, error) {
	var out []Unit
	for i := range doses {
		if d := &doses[i]; f.Matches(d) {
			out = append(out, Unit{ID: doseID(d.Key()), dose: d})
		}
	}
	return out, nil
}

func (m *matchStage) state(ctx context.Context, u *Unit) (state, error) {
	d, err := m.dose(ctx, u, true)
	if errors.Is(err, vaxpass.ErrNotFound) {
		return state{FP: stateAbsent}, nil
	}
	if err != nil {
		return state{}, err
	}
	return matchState(d), nil
}

// dose returns the unit's dose: as scanned, or read again (fresh, or no scanned copy).
func (m *matchStage) dose(ctx context.Context, u *Unit, fresh bool) (vaxpass.Dose, error) {
	if u.dose != nil && !fresh {
		return *u.dose, nil
	}
	key, err := parseDoseID(u.ID)
	if err != nil {
		return vaxpass.Dose{}, err
	}
	return m.s.Doses.GetDose(ctx, key)
}

func matchState(d vaxpass.Dose) state {
	return state{
		FP:    fingerprint(resultKey(d.Match), d.PersonID, d.MatchedDetails),
		Label: strings.ToLower(string(d.Match.Status)),
	}
}

// resultKey renders a match result for comparison: nil and empty lists alike, and
// candidates as stored (without their transient name keys).
func resultKey(r match.Result) string {
	var b strings.Builder
	b.WriteString(string(r.Status))
	b.WriteByte(0)
	b.WriteString(strings.Join(r.Reasons, ","))
	for _, k := range slices.Sorted(maps.Keys(r.Corrected)) {
		b.WriteString("\x00" + k + "=" + r.Corrected[k])
	}
	if len(r.Candidates) > 0 {
		c, _ := json.Marshal(r.Candidates)
		b.WriteByte(0)
		b.Write(c)
	}
	return b.String()
}

func (m *matchStage) apply(ctx context.Context, units []Unit, dryRun bool) ([]result, error) {
	results := make([]result, len(units))
	var save []vaxpass.Dose
	var saveIdx []int
	for i := range units {
		d, err := m.dose(ctx, &units[i], false)
		if err != nil {
			results[i].err = err
			continue
		}
		next, changed, err := m.rematch(d)
		switch {
		case err != nil:
			results[i].err = err
		case !changed:
		default:
			results[i].outcome = strings.ToLower(string(next.Match.Status))
			if !dryRun {
				save = append(save, next)
				saveIdx = append(saveIdx, i)
			}
		}
	}
	if len(save) == 0 {
		return results, nil
	}
	errs, err := m.s.Doses.SaveMatchBatch(ctx, save)
	if err != nil {
		return nil, fmt.Errorf("save matches: %w", err)
	}
	for j, e := range errs {
		i := saveIdx[j]
		if errors.Is(e, vaxpass.ErrConflict) {
			// Written meanwhile by someone else (a correction, the stream matcher): judge
			// the record as it is now.
			results[i] = m.retry(ctx, &units[i])
			continue
		}
		results[i].err = e
	}
	return results, nil
}

// rematch matches d again; changed is false when the stored result already says this.
func (m *matchStage) rematch(d vaxpass.Dose) (vaxpass.Dose, bool, error) {
	res, err := m.s.Matcher.Match(d.Record)
	if err != nil {
		return d, false, fmt.Errorf("match: %w", err)
	}
	if !d.NeedsMatch() && resultKey(res) == resultKey(d.Match) {
		return d, false, nil
	}
	matching.Apply(&d, res, m.s.now())
	return d, true, nil
}

func (m *matchStage) retry(ctx context.Context, u *Unit) result {
	for range matchRetries {
		d, err := m.dose(ctx, u, true)
		if err != nil {
			return result{err: err}
		}
		next, changed, err := m.rematch(d)
		if err != nil || !changed {
			return result{err: err}
		}
		errs, err := m.s.Doses.SaveMatchBatch(ctx, []vaxpass.Dose{next})
		if err != nil {
			return result{err: err}
		}
		if !errors.Is(errs[0], vaxpass.ErrConflict) {
			return result{outcome: strings.ToLower(string(next.Match.Status)), err: errs[0]}
		}
	}
	return result{err: fmt.Errorf("%w: the record kept changing", vaxpass.ErrConflict)}
}

func (m *matchStage) changeLabel(_, post state) string { return post.Label }

// ---- facility-sign ----

type facilitySignStage struct{ s *Service }

// signable: the dose is verified with its current details and belongs to a person.
func signable(d *vaxpass.Dose) bool {
	return d.PersonID != "" && d.Match.Status == match.Verified && !d.NeedsMatch()
}

func (fs *facilitySignStage) units(ctx context.Context, f *Filter, doses []vaxpass.Dose) ([]Unit, error) {
	people := personDoses{s: fs.s}
	var out []Unit
	for i := range doses {
		d := &doses[i]
		if !f.Matches(d) || !signable(d) {
			continue
		}
		all, err := people.get(ctx, d.PersonID)
		if err != nil {
			return nil, err
		}
		if !firstOf(d, all, func(x *vaxpass.Dose) bool { return x.FacilityID == d.FacilityID && f.Matches(x) && signable(x) }) {
			continue
		}
		out = append(out, Unit{ID: doseID(d.Key()), Facility: d.FacilityID, Subject: d.PersonID, dose: d})
	}
	return out, nil
}

// mine returns the person's verified doses given at the facility.
func (fs *facilitySignStage) mine(ctx context.Context, u *Unit) (verified, mine []vaxpass.Dose, err error) {
	all, err := fs.s.Doses.PersonDoses(ctx, u.Subject)
	if err != nil {
		return nil, nil, fmt.Errorf("read a person's doses: %w", err)
	}
	verified = signing.VerifiedDoses(all)
	for _, d := range verified {
		if d.FacilityID == u.Facility {
			mine = append(mine, d)
		}
	}
	return verified, mine, nil
}

func (fs *facilitySignStage) state(ctx context.Context, u *Unit) (state, error) {
	_, mine, err := fs.mine(ctx, u)
	if err != nil {
		return state{}, err
	}
	if len(mine) == 0 {
		return state{FP: stateAbsent}, nil
	}
	parts := make([]string, 0, len(mine))
	label := labelAllSigned
	for _, d := range mine {
		parts = append(parts, d.SourceID+"@"+strconv.FormatInt(d.SignedAt.UnixNano(), 10))
		if d.SignedAt.IsZero() {
			label = labelPendingSign
		}
	}
	slices.Sort(parts)
	return state{FP: fingerprint(parts...), Label: label}, nil
}

func (fs *facilitySignStage) apply(ctx context.Context, units []Unit, dryRun bool) ([]result, error) {
	results := make([]result, len(units))
	signers := map[string]facilitysig.Signer{}
	for i := range units {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		results[i] = fs.signOne(ctx, &units[i], dryRun, signers)
	}
	return results, nil
}

// signOne signs a person at a facility when their doses there are unsigned, or when the
// facility signature central signing stored does not cover them (it was lost, rejected or
// is stale): the same rule as the daily signing, plus the repair of lost signatures.
func (fs *facilitySignStage) signOne(ctx context.Context, u *Unit, dryRun bool, signers map[string]facilitysig.Signer) result {
	s := fs.s
	verified, mine, err := fs.mine(ctx, u)
	if err != nil {
		return result{err: err}
	}
	if len(mine) == 0 {
		return result{skip: SkipNotVerified}
	}
	if a, err := vaccine.Assess(courseDoses(verified)); err != nil || !a.Eligible {
		return result{skip: SkipNotEligible}
	}
	var pending []vaxpass.Dose
	for _, d := range mine {
		if d.SignedAt.IsZero() {
			pending = append(pending, d)
		}
	}
	outcome := OutcomeSigned
	toMark := pending
	if len(pending) == 0 {
		covered, err := fs.covered(ctx, u, mine)
		if err != nil {
			return result{err: err}
		}
		if covered {
			return result{}
		}
		outcome, toMark = OutcomeResigned, mine
	}
	if dryRun {
		return result{outcome: outcome}
	}
	signer, ok := signers[u.Facility]
	if !ok {
		if signer, err = s.Keys.FacilitySigner(ctx, u.Facility); err != nil {
			return result{err: fmt.Errorf("facility %s key: %w", u.Facility, err)}
		}
		signers[u.Facility] = signer
	}
	now := s.now()
	payload, sig, err := facilitysig.Sign(ctx, signer, signing.ContentOf(u.Subject, u.Facility, mine, now))
	if err != nil {
		return result{err: err}
	}
	// Sent before the doses are marked: a crash in between leaves them pending, and the
	// next attempt signs and sends again (central signing is idempotent).
	if err := s.Queue.SendSignature(ctx, vaxpass.FacilitySignature{PersonID: u.Subject, FacilityID: u.Facility,
		Payload: payload, Signature: sig, SignedAt: now}); err != nil {
		return result{err: fmt.Errorf("send to central signing: %w", err)}
	}
	if err := s.Doses.MarkSigned(ctx, toMark, now); err != nil {
		return result{err: fmt.Errorf("mark doses signed: %w", err)}
	}
	return result{outcome: outcome}
}

// covered reports whether central signing holds a signature of the facility whose content
// is what the facility would sign now (its signing time aside).
func (fs *facilitySignStage) covered(ctx context.Context, u *Unit, mine []vaxpass.Dose) (bool, error) {
	sigs, err := fs.s.Signatures.FacilitySignatures(ctx, u.Subject)
	if err != nil {
		return false, fmt.Errorf("read facility signatures: %w", err)
	}
	want, err := facilitysig.Encode(signing.ContentOf(u.Subject, u.Facility, mine, time.Time{}))
	if err != nil {
		return false, err
	}
	for _, sg := range sigs {
		if sg.FacilityID != u.Facility {
			continue
		}
		c, err := facilitysig.Decode(sg.Payload)
		if err != nil {
			return false, nil // unreadable: sign again
		}
		c.SignedAt = time.Time{}
		got, err := facilitysig.Encode(c)
		return err == nil && bytes.Equal(got, want), nil
	}
	return false, nil
}

func courseDoses(ds []vaxpass.Dose) []vaccine.Dose {
	out := make([]vaccine.Dose, len(ds))
	for i, d := range ds {
		out[i] = vaccine.Dose{Vaccine: vaccine.Code(d.Vaccine), DoseNumber: d.DoseNumber, VaccinatedOn: d.VaccinatedOn}
	}
	return out
}

func (fs *facilitySignStage) changeLabel(pre, _ state) string {
	if pre.Label == labelAllSigned {
		return OutcomeResigned
	}
	return OutcomeSigned
}

// ---- central-sign ----

type centralSignStage struct{ s *Service }

func (cs *centralSignStage) units(ctx context.Context, f *Filter, doses []vaxpass.Dose) ([]Unit, error) {
	people := personDoses{s: cs.s}
	var out []Unit
	for i := range doses {
		d := &doses[i]
		if !f.Matches(d) || d.PersonID == "" {
			continue
		}
		all, err := people.get(ctx, d.PersonID)
		if err != nil {
			return nil, err
		}
		if !firstOf(d, all, func(x *vaxpass.Dose) bool { return x.PersonID == d.PersonID && f.Matches(x) }) {
			continue
		}
		out = append(out, Unit{ID: doseID(d.Key()), Subject: d.PersonID, dose: d})
	}
	return out, nil
}

func (cs *centralSignStage) state(ctx context.Context, u *Unit) (state, error) {
	c, err := cs.s.Certificates.ActiveCertificate(ctx, u.Subject)
	if errors.Is(err, vaxpass.ErrNotFound) {
		return state{FP: stateAbsent}, nil
	}
	if err != nil {
		return state{}, fmt.Errorf("read the active certificate: %w", err)
	}
	return state{FP: fingerprint(strings.ToUpper(c.UVCI), strconv.FormatInt(c.Version, 10)), Label: c.UVCI}, nil
}

func (cs *centralSignStage) apply(ctx context.Context, units []Unit, dryRun bool) ([]result, error) {
	issuer := cs.s.Issuer
	if dryRun {
		if cs.s.DryRunIssuer == nil {
			return nil, fmt.Errorf("%w: a dry run of %s needs a dry-run issuer", ErrStageUnavailable, StageCentralSign)
		}
		issuer = cs.s.DryRunIssuer
	}
	results := make([]result, len(units))
	for i := range units {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		out, _, err := issuer.Issue(ctx, units[i].Subject)
		switch {
		case err != nil:
			results[i].err = err
		case out == signing.Issued:
			results[i].outcome = OutcomeIssued
		case out == signing.Reissued:
			results[i].outcome = OutcomeReissued
		case out == signing.NotYet:
			results[i].skip = SkipNotEligible
		}
	}
	return results, nil
}

func (cs *centralSignStage) changeLabel(pre, post state) string {
	switch {
	case pre.Label == "":
		return OutcomeIssued
	case strings.EqualFold(pre.Label, post.Label):
		return OutcomeRenewed
	}
	return OutcomeReissued
}

// DryRunIssuer returns a copy of central signing that decides exactly as c does --
// eligibility, content, new or unchanged certificate -- and writes and signs nothing: the
// central-sign stage's dry run.
func DryRunIssuer(c *signing.CentralService) *signing.CentralService {
	cp := *c
	cp.Store = readOnlyCentral{c.Store}
	cp.Sealer = noSeal{}
	return &cp
}

type readOnlyCentral struct{ signing.CentralStore }

func (readOnlyCentral) PutFacilitySignature(context.Context, vaxpass.FacilitySignature) error {
	return nil
}

func (readOnlyCentral) ReplaceCertificate(context.Context, vaxpass.Certificate, *vaxpass.Certificate) error {
	return nil
}

type noSeal struct{}

func (noSeal) Seal(_ context.Context, _ *dcc.Certificate, issuedAt time.Time) (string, time.Time, string, error) {
	return "", issuedAt.AddDate(1, 0, 0), "", nil
}
