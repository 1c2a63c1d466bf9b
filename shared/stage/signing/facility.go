// Package signing holds the two signing use cases: a facility signs its verified, fully
// vaccinated people (FacilityService), and central signing turns facility-signed doses into
// an EU DCC (CentralService).
package signing

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/vaxpass/vaxpass/shared/domain/facilitysig"
	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/domain/vaccine"
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
	// BulkQueue takes bulk runs' signatures (central signing reads it after Queue); nil:
	// Queue takes them all.
	BulkQueue CentralQueue
	Now       func() time.Time
	// PageSize is how many people are read at a time (default 500), and so how many one
	// signature covers at most.
	PageSize int
	// Workers is how many people of a page are read at once (default GOMAXPROCS; a remote
	// store such as DynamoDB wants more, to hide its latency).
	Workers int
}

// SignResult counts what a signing run did.
type SignResult struct {
	Signed int `json:"signed"`
	// Waiting counts verified people whose course is not complete yet.
	Waiting int `json:"waiting"`
}

// BatchQueue is a CentralQueue that also takes many signatures in one call (one commit
// of the embedded queue, SendMessageBatch on SQS). SignAll uses it when the queue has it.
type BatchQueue interface {
	SendSignatures(ctx context.Context, sigs []vaxpass.FacilitySignature) error
}

// BatchMarker is a FacilityStore that also marks several people's doses signed in one
// call. Each group is conditional on its own doses' versions: errs[i] is group i's
// vaxpass.ErrConflict or ErrNotFound (its doses unchanged), and the other groups are
// written. err is for a failure of the whole call (nothing written).
type BatchMarker interface {
	MarkSignedGroups(ctx context.Context, groups [][]vaxpass.Dose, at time.Time) (errs []error, err error)
}

// SignAll signs every pending person of the facility in one call, page after page (see
// SignPage); a run (Runs) does the same with its cursor stored between pages.
func (s *FacilityService) SignAll(ctx context.Context, facilityID string) (SignResult, error) {
	var res SignResult
	after := ""
	for {
		page, err := s.SignPage(ctx, facilityID, after, Interactive)
		res.Signed += page.Signed
		res.Waiting += page.Waiting
		if err != nil || page.Last {
			return res, err
		}
		after = page.Next
	}
}

// PageResult is what signing one page did.
type PageResult struct {
	SignResult
	// Next is the cursor of the next page; Last says there is none.
	Next string
	Last bool
}

// SignPage signs the next page of the facility's pending people, after the cursor person
// ID ("" first): the page's people are read concurrently and signed with one signature
// (one KMS call on AWS: facilitysig.SignBatch), their signatures are sent to central
// signing together (to its bulk queue for bulk work), and then the page's doses are
// marked signed together. The signatures go to central signing before the doses are
// marked: a crash in between leaves them pending, so the next run signs and sends again
// (central signing is idempotent), and nothing is lost. A person whose doses were
// corrected between the read and the mark (vaxpass.ErrConflict) is not counted as signed;
// the re-match makes their doses pending again. A facility without a key is
// vaxpass.ErrNotFound.
func (s *FacilityService) SignPage(ctx context.Context, facilityID, after string, prio Priority) (PageResult, error) {
	var res PageResult
	ctx = WithPriority(ctx, prio)
	signer, err := s.Keys.FacilitySigner(ctx, facilityID)
	if err != nil {
		return res, fmt.Errorf("facility %s key: %w", facilityID, err)
	}
	size := s.PageSize
	if size <= 0 {
		size = 500
	}
	persons, err := s.Store.SignPendingPersons(ctx, facilityID, after, size)
	if err != nil {
		return res, fmt.Errorf("list people to sign: %w", err)
	}
	res.Last = len(persons) < size
	if len(persons) > 0 {
		res.Next = persons[len(persons)-1]
	}
	res.Signed, res.Waiting, err = s.signPage(ctx, signer, facilityID, persons, s.queueFor(prio))
	return res, err
}

func (s *FacilityService) queueFor(prio Priority) CentralQueue {
	if prio == Bulk && s.BulkQueue != nil {
		return s.BulkQueue
	}
	return s.Queue
}

type priorityKey struct{}

// WithPriority tells the adapters below (the KMS budget) whose work a call is.
func WithPriority(ctx context.Context, p Priority) context.Context {
	return context.WithValue(ctx, priorityKey{}, p)
}

// PriorityOf is the priority WithPriority set (Interactive when none).
func PriorityOf(ctx context.Context) Priority {
	if p, ok := ctx.Value(priorityKey{}).(Priority); ok && p != "" {
		return p
	}
	return Interactive
}

// toSign is one person of a page: what the facility vouches for, their signature once
// the page is signed, and the doses it marks signed.
type toSign struct {
	content facilitysig.Content
	sig     vaxpass.FacilitySignature
	pending []vaxpass.Dose
}

// signPage signs a page of people and returns how many were signed and how many wait.
func (s *FacilityService) signPage(ctx context.Context, signer facilitysig.Signer, facilityID string, persons []string, queue CentralQueue) (signed, waiting int, err error) {
	now := s.Now().UTC()
	work := make([]*toSign, len(persons))
	errs := make([]error, len(persons))
	next := make(chan int)
	var wg sync.WaitGroup
	workers := s.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	for range min(workers, len(persons)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				work[i], errs[i] = s.preparePerson(ctx, facilityID, persons[i], now)
			}
		}()
	}
	for i := range persons {
		if ctx.Err() != nil {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return 0, 0, err
	}
	if err := errors.Join(errs...); err != nil {
		return 0, 0, err
	}
	var batch []*toSign
	for _, w := range work {
		if w == nil {
			waiting++
		} else {
			batch = append(batch, w)
		}
	}
	if len(batch) == 0 {
		return 0, waiting, nil
	}
	if err := signBatch(ctx, signer, facilityID, now, batch); err != nil {
		return 0, waiting, err
	}
	if err := send(ctx, queue, batch); err != nil {
		return 0, waiting, fmt.Errorf("send to central signing: %w", err)
	}
	marked, err := s.mark(ctx, batch, now)
	return marked, waiting, err
}

// preparePerson reads a person's doses and returns the facility's part to sign when their
// course is complete and a dose of the facility is unsigned; nil when there is nothing to
// sign.
func (s *FacilityService) preparePerson(ctx context.Context, facilityID, personID string, now time.Time) (*toSign, error) {
	all, err := s.Store.PersonDoses(ctx, personID)
	if err != nil {
		return nil, fmt.Errorf("read doses of a person: %w", err)
	}
	verified := VerifiedDoses(all)
	if a, err := vaccine.Assess(courseDoses(verified)); err != nil || !a.Eligible {
		return nil, nil // not complete yet: stays pending, looked at again next run
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
		return nil, nil
	}
	return &toSign{content: ContentOf(personID, facilityID, mine, now), pending: pending}, nil
}

// signBatch signs the page's people with one Sign call and sets each one's signature.
func signBatch(ctx context.Context, signer facilitysig.Signer, facilityID string, now time.Time, batch []*toSign) error {
	contents := make([]facilitysig.Content, len(batch))
	for i, w := range batch {
		contents[i] = w.content
	}
	signed, err := facilitysig.SignBatch(ctx, signer, facilityID, now, contents)
	if err != nil {
		return err
	}
	for i, w := range batch {
		w.sig = Envelope(w.content.PersonID, facilityID, now, signed[i])
	}
	return nil
}

// Envelope is the message to central signing that carries one person's facility
// signature.
func Envelope(personID, facilityID string, signedAt time.Time, s facilitysig.Signed) vaxpass.FacilitySignature {
	return vaxpass.FacilitySignature{PersonID: personID, FacilityID: facilityID, SignedAt: signedAt,
		Payload: s.Payload, Signature: s.Signature, Form: string(s.Form), Batch: s.Batch,
		Proof: s.Proof.Path, ProofIndex: s.Proof.Index, TreeSize: s.Proof.TreeSize}
}

// SignedOf is the facility signature a message carries, in the form it says.
func SignedOf(sig vaxpass.FacilitySignature) facilitysig.Signed {
	return facilitysig.Signed{Form: facilitysig.Form(sig.Form), Payload: sig.Payload, Signature: sig.Signature,
		Batch: sig.Batch, Proof: facilitysig.Proof{Index: sig.ProofIndex, TreeSize: sig.TreeSize, Path: sig.Proof}}
}

func send(ctx context.Context, queue CentralQueue, batch []*toSign) error {
	if bq, ok := queue.(BatchQueue); ok {
		sigs := make([]vaxpass.FacilitySignature, len(batch))
		for i, w := range batch {
			sigs[i] = w.sig
		}
		return bq.SendSignatures(ctx, sigs)
	}
	for _, w := range batch {
		if err := queue.SendSignature(ctx, w.sig); err != nil {
			return err
		}
	}
	return nil
}

// mark marks the batch's doses signed and returns how many people it marked.
func (s *FacilityService) mark(ctx context.Context, batch []*toSign, at time.Time) (int, error) {
	errs := make([]error, len(batch))
	if bm, ok := s.Store.(BatchMarker); ok {
		groups := make([][]vaxpass.Dose, len(batch))
		for i, w := range batch {
			groups[i] = w.pending
		}
		var err error
		if errs, err = bm.MarkSignedGroups(ctx, groups, at); err != nil {
			return 0, fmt.Errorf("mark doses signed: %w", err)
		}
	} else {
		for i, w := range batch {
			errs[i] = s.Store.MarkSigned(ctx, w.pending, at)
		}
	}
	marked := 0
	for _, err := range errs {
		switch {
		case err == nil:
			marked++
		case errors.Is(err, vaxpass.ErrConflict), errors.Is(err, vaxpass.ErrNotFound):
			// Corrected meanwhile: the re-match makes the doses pending again.
		default:
			return marked, fmt.Errorf("mark doses signed: %w", err)
		}
	}
	return marked, nil
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
