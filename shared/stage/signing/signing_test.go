package signing_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/domain/dose"
	"github.com/vaxpass/vaxpass/shared/domain/facilitysig"
	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/stage/matching"
	"github.com/vaxpass/vaxpass/shared/stage/signing"
	"github.com/vaxpass/vaxpass/shared/stage/verification"
	"github.com/vaxpass/vaxpass/shared/store/embedded"
	"github.com/vaxpass/vaxpass/shared/store/filekeys"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// The use cases run over the real embedded store and software keys; only the queue
// between them is a slice, so each test steps the pipeline by hand.

type sentSignatures []vaxpass.FacilitySignature

func (s *sentSignatures) SendSignature(_ context.Context, sig vaxpass.FacilitySignature) error {
	*s = append(*s, sig)
	return nil
}

type rig struct {
	store    *embedded.Store
	keys     *filekeys.Store
	central  *filekeys.Central
	queue    *sentSignatures
	facility *signing.FacilityService
	issuer   *signing.CentralService
	verifier *verification.Service
	now      time.Time
}

func newRig(t *testing.T) *rig {
	t.Helper()
	dir := t.TempDir()
	db, err := embedded.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	r := &rig{now: time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC), queue: &sentSignatures{}}
	clock := func() time.Time { return r.now }
	if r.store, err = embedded.OpenStore(db, embedded.StoreOptions{Now: clock}); err != nil {
		t.Fatal(err)
	}
	if r.keys, err = filekeys.Open(dir); err != nil {
		t.Fatal(err)
	}
	if r.central, err = filekeys.EnsureCentral(dir, r.now); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"site-a", "site-b"} {
		if _, err := r.keys.CreateFacilityKey(id); err != nil {
			t.Fatal(err)
		}
		if err := r.store.AddFacility(context.Background(), vaxpass.Facility{ID: id, Name: id, APIKeyHash: []byte(id), CreatedAt: r.now}); err != nil {
			t.Fatal(err)
		}
	}
	r.facility = &signing.FacilityService{Store: r.store, Keys: r.keys, Queue: r.queue, Now: clock, PageSize: 2}
	r.issuer = &signing.CentralService{Store: r.store, Keys: r.keys, Rand: rand.Reader, Now: clock,
		Sealer: &signing.HC1Sealer{Signer: r.central.Signer, DSC: r.central.DSC}}
	r.verifier = &verification.Service{Trust: r.central.TrustList, Now: clock}
	return r
}

const personID = "001088012345"

// addVerified stores a dose of personID and records the matcher's VERIFIED verdict on it.
func (r *rig) addVerified(t *testing.T, facility, sourceID, vaccineCode, on string) {
	t.Helper()
	r.addVerifiedOf(t, personID, facility, sourceID, vaccineCode, on)
}

// addVerifiedOf stores a dose of the person and records the matcher's VERIFIED verdict on it.
func (r *rig) addVerifiedOf(t *testing.T, person, facility, sourceID, vaccineCode, on string) {
	t.Helper()
	ctx := context.Background()
	d := vaxpass.Dose{
		FacilityID: facility,
		Record: dose.Record{SourceID: sourceID, FullName: "Nguyen Van An", DOB: "1988", Gender: "male",
			IDNumber: person, Nationality: "VN", Vaccine: vaccineCode, DoseNumber: 1, VaccinatedOn: on},
		Match: match.Result{Status: match.Pending}, ReceivedAt: r.now, UpdatedAt: r.now, Version: 1,
	}
	if created, err := r.store.PutNew(ctx, []vaxpass.Dose{d}); err != nil || !created[0] {
		t.Fatalf("PutNew: %v %v", created, err)
	}
	matching.Apply(&d, match.Result{Status: match.Verified, Reasons: []string{},
		Corrected: map[string]string{"full_name": "Nguyễn Văn An", "dob": "1988-03-14"}}, r.now)
	if err := r.store.SaveMatch(ctx, d); err != nil {
		t.Fatal(err)
	}
}

// drain hands every queued signature to central signing.
func (r *rig) drain(t *testing.T) []signing.IssueOutcome {
	t.Helper()
	var outs []signing.IssueOutcome
	for _, sig := range *r.queue {
		out, _, err := r.issuer.Process(context.Background(), sig)
		if err != nil {
			t.Fatalf("Process: %v", err)
		}
		outs = append(outs, out)
	}
	*r.queue = nil
	return outs
}

func TestIncompleteCourseWaits(t *testing.T) {
	r := newRig(t)
	r.addVerified(t, "site-a", "a1", "PFIZER", "2021-06-01")
	res, err := r.facility.SignAll(context.Background(), "site-a")
	if err != nil || res.Signed != 0 || res.Waiting != 1 || len(*r.queue) != 0 {
		t.Fatalf("SignAll = %+v, %v, queued %d; want waiting 1", res, err, len(*r.queue))
	}
}

func TestSignIssueRenewBooster(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	r.addVerified(t, "site-a", "a1", "PFIZER", "2021-06-01")
	r.addVerified(t, "site-a", "a2", "PFIZER", "2021-07-01")

	res, err := r.facility.SignAll(ctx, "site-a")
	if err != nil || res.Signed != 1 {
		t.Fatalf("SignAll = %+v, %v; want 1 signed", res, err)
	}
	if res, _ := r.facility.SignAll(ctx, "site-a"); res.Signed != 0 {
		t.Fatalf("second SignAll signed %d again", res.Signed)
	}
	sig := (*r.queue)[0]
	if outs := r.drain(t); outs[0] != signing.Issued {
		t.Fatalf("outcome %v, want issued", outs[0])
	}
	cert, err := r.store.ActiveCertificate(ctx, personID)
	if err != nil {
		t.Fatal(err)
	}
	if f := cert.Fields; f.FullName != "Nguyễn Văn An" || f.DoseNumber != 2 || f.TotalDoses != 2 || f.DosesReceived != 2 || f.DateOfBirth != "1988-03-14" {
		t.Fatalf("fields = %+v; want the registry's name and dob, dose 2/2", f)
	}
	if v := r.verifier.Verify(ctx, cert.HC1); !v.Valid {
		t.Fatalf("issued HC1 does not verify: %s", v.Reason)
	}
	if want := r.now.AddDate(1, 0, 0); !cert.ExpiresAt.Equal(want) {
		t.Fatalf("expires %v, want %v", cert.ExpiresAt, want)
	}

	// A re-delivered message changes nothing (at-least-once delivery).
	if out, _, err := r.issuer.Process(ctx, sig); err != nil || out != signing.Unchanged {
		t.Fatalf("re-delivery: %v, %v; want unchanged", out, err)
	}

	// A booster at another site: that site signs its dose, central re-issues 3/3.
	r.now = r.now.Add(time.Hour)
	r.addVerified(t, "site-b", "b1", "MODERNA", "2022-01-10")
	if res, err := r.facility.SignAll(ctx, "site-b"); err != nil || res.Signed != 1 {
		t.Fatalf("site-b SignAll = %+v, %v", res, err)
	}
	if outs := r.drain(t); outs[0] != signing.Reissued {
		t.Fatalf("booster outcome %v, want reissued", outs[0])
	}
	next, err := r.store.ActiveCertificate(ctx, personID)
	if err != nil {
		t.Fatal(err)
	}
	if next.UVCI == cert.UVCI || next.Replaces != cert.UVCI || next.Fields.DoseNumber != 3 || next.Fields.TotalDoses != 3 {
		t.Fatalf("booster certificate = %+v; want a new UVCI replacing the old, dose 3/3", next.Fields)
	}
	old, err := r.store.CertificateByUVCI(ctx, cert.UVCI)
	if err != nil || old.Status != vaxpass.CertRevoked {
		t.Fatalf("replaced certificate status %q, %v; want revoked", old.Status, err)
	}
}

func TestTamperedFacilitySignatureRejected(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	r.addVerified(t, "site-a", "a1", "JANSSEN", "2021-08-01")
	if _, err := r.facility.SignAll(ctx, "site-a"); err != nil {
		t.Fatal(err)
	}
	good := (*r.queue)[0]
	if good.Form != string(facilitysig.FormMerkle) || good.TreeSize != 1 || len(good.Proof) != 0 {
		t.Fatalf("a page of one: form %q, tree of %d, proof of %d hashes; want a merkle tree of one", good.Form, good.TreeSize, len(good.Proof))
	}
	cases := map[string]func(s *vaxpass.FacilitySignature){
		"signature byte":   func(s *vaxpass.FacilitySignature) { s.Signature[5] ^= 1 },
		"payload byte":     func(s *vaxpass.FacilitySignature) { s.Payload[len(s.Payload)-3] ^= 1 },
		"batch head byte":  func(s *vaxpass.FacilitySignature) { s.Batch[len(s.Batch)-2] ^= 1 },
		"proof index":      func(s *vaxpass.FacilitySignature) { s.ProofIndex = 1 },
		"tree size":        func(s *vaxpass.FacilitySignature) { s.TreeSize = 2; s.Proof = [][]byte{make([]byte, 32)} },
		"told single form": func(s *vaxpass.FacilitySignature) { s.Form = "" },
		"unknown form":     func(s *vaxpass.FacilitySignature) { s.Form = "merkle-sha1" },
		"other facility":   func(s *vaxpass.FacilitySignature) { s.FacilityID = "site-b" },
		"unknown facility": func(s *vaxpass.FacilitySignature) { s.FacilityID = "nowhere" },
		"other person":     func(s *vaxpass.FacilitySignature) { s.PersonID = "079200000001" },
	}
	for name, tamper := range cases {
		t.Run(name, func(t *testing.T) {
			sig := good
			sig.Signature = append([]byte(nil), good.Signature...)
			sig.Payload = append([]byte(nil), good.Payload...)
			sig.Batch = append([]byte(nil), good.Batch...)
			tamper(&sig)
			if _, _, err := r.issuer.Process(ctx, sig); !errors.Is(err, signing.ErrBadFacilitySignature) {
				t.Fatalf("Process = %v, want ErrBadFacilitySignature", err)
			}
		})
	}
	if _, err := r.store.ActiveCertificate(ctx, personID); !errors.Is(err, vaxpass.ErrNotFound) {
		t.Fatalf("a tampered signature issued a certificate: %v", err)
	}
	if out, _, err := r.issuer.Process(ctx, good); err != nil || out != signing.Issued {
		t.Fatalf("untampered: %v, %v", out, err)
	}
}

// hookStore lets another worker run right after one of this worker's reads: of the
// active certificate (afterActive) or of the person's signatures (afterSignatures, the
// interleaving that raced in the fault runs when central signing took two queue batches
// at once). Each hook runs once.
type hookStore struct {
	signing.CentralStore
	afterActive, afterSignatures func()
}

func (s *hookStore) ActiveCertificate(ctx context.Context, personID string) (vaxpass.Certificate, error) {
	c, err := s.CentralStore.ActiveCertificate(ctx, personID)
	runOnce(&s.afterActive)
	return c, err
}

func (s *hookStore) FacilitySignatures(ctx context.Context, personID string) ([]vaxpass.FacilitySignature, error) {
	sigs, err := s.CentralStore.FacilitySignatures(ctx, personID)
	runOnce(&s.afterSignatures)
	return sigs, err
}

func runOnce(hook *func()) {
	if f := *hook; f != nil {
		*hook = nil
		f()
	}
}

// raceTwoSites signs one person at two facilities (3 doses) and runs worker A on site-a's
// signature through store (a hookStore on the rig's store whose hook is set by hook) with
// worker B issuing from site-b's signature where the hook fires. It returns A's outcome,
// the rig and both signatures.
func raceTwoSites(t *testing.T, hook func(s *hookStore, workerB func())) (signing.IssueOutcome, *rig, vaxpass.FacilitySignature, vaxpass.FacilitySignature) {
	t.Helper()
	ctx := context.Background()
	r := newRig(t)
	r.addVerified(t, "site-a", "a1", "PFIZER", "2021-06-01")
	r.addVerified(t, "site-a", "a2", "PFIZER", "2021-07-01")
	r.addVerified(t, "site-b", "b1", "MODERNA", "2022-01-10")
	for _, site := range []string{"site-a", "site-b"} {
		if res, err := r.facility.SignAll(ctx, site); err != nil || res.Signed != 1 {
			t.Fatalf("%s SignAll = %+v, %v", site, res, err)
		}
	}
	sigA, sigB := (*r.queue)[0], (*r.queue)[1]
	var errB error
	store := &hookStore{CentralStore: r.store}
	hook(store, func() { _, _, errB = r.issuer.Process(ctx, sigB) })
	slow := *r.issuer
	slow.Store = store
	out, _, err := slow.Process(ctx, sigA)
	if err != nil || errB != nil {
		t.Fatalf("worker A: %v; worker B: %v", err, errB)
	}
	return out, r, sigA, sigB
}

// Worker B runs whole between worker A's read of the (missing) certificate and its read
// of the signatures: A sees both signatures, its write conditional on no certificate
// fails, and its next round finds B's certificate saying all it would.
func TestWorkerBetweenCertificateAndSignatureReads(t *testing.T) {
	out, r, _, _ := raceTwoSites(t, func(s *hookStore, workerB func()) { s.afterActive = workerB })
	if out != signing.Unchanged {
		t.Errorf("worker A: %s, want unchanged (B's certificate already says 3/3)", out)
	}
	cert, err := r.store.ActiveCertificate(context.Background(), personID)
	if err != nil {
		t.Fatal(err)
	}
	if f := cert.Fields; f.DoseNumber != 3 || f.DosesReceived != 3 || cert.Replaces != "" {
		t.Fatalf("active certificate %d/%d, replaces %q; want B's 3/3, the person's first", f.DoseNumber, f.DosesReceived, cert.Replaces)
	}
}

// Worker A stores site-a's signature and reads the person's signatures (only its own);
// worker B then stores site-b's and issues 3/3; worker A goes on with what it read.
func TestConcurrentWorkersEndOnAllDoses(t *testing.T) {
	ctx := context.Background()
	_, r, sigA, sigB := raceTwoSites(t, func(s *hookStore, workerB func()) { s.afterSignatures = workerB })
	cert, err := r.store.ActiveCertificate(ctx, personID)
	if err != nil {
		t.Fatal(err)
	}
	if f := cert.Fields; f.DoseNumber != 3 || f.TotalDoses != 3 || f.DosesReceived != 3 {
		t.Fatalf("active certificate says %d/%d of %d doses; want 3/3 of 3 (a stale worker overwrote it)", f.DoseNumber, f.TotalDoses, f.DosesReceived)
	}
	// Both deliveries again: nothing changes.
	for _, sig := range []vaxpass.FacilitySignature{sigA, sigB} {
		if out, _, err := r.issuer.Process(ctx, sig); err != nil || out != signing.Unchanged {
			t.Fatalf("re-delivery: %v, %v; want unchanged", out, err)
		}
	}
}

// countingKeys counts the facility Sign calls: each is a KMS call on AWS.
type countingKeys struct {
	signing.FacilityKeys
	calls *atomic.Int64
}

func (k countingKeys) FacilitySigner(ctx context.Context, facilityID string) (facilitysig.Signer, error) {
	s, err := k.FacilityKeys.FacilitySigner(ctx, facilityID)
	return countingSigner{s, k.calls}, err
}

type countingSigner struct {
	facilitysig.Signer
	calls *atomic.Int64
}

func (s countingSigner) Sign(ctx context.Context, tbs []byte) ([]byte, error) {
	s.calls.Add(1)
	return s.Signer.Sign(ctx, tbs)
}

func TestPageCostsOneSign(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	const people = 100
	for i := range people {
		r.addVerifiedOf(t, fmt.Sprintf("0010880%05d", i), "site-a", fmt.Sprintf("j%d", i), "JANSSEN", "2021-08-01")
	}
	for _, tc := range []struct{ page, signs int }{{people, 1}, {30, 4}} {
		t.Run(fmt.Sprintf("page of %d", tc.page), func(t *testing.T) {
			// Every run signs the same people afresh: their doses are made pending again.
			for i := range people {
				d, err := r.store.PersonDoses(ctx, fmt.Sprintf("0010880%05d", i))
				if err != nil || len(d) != 1 {
					t.Fatalf("doses: %v", err)
				}
				matching.Apply(&d[0], d[0].Match, r.now)
				if err := r.store.SaveMatch(ctx, d[0]); err != nil {
					t.Fatal(err)
				}
			}
			var calls atomic.Int64
			fs := *r.facility
			fs.Keys, fs.PageSize, fs.Workers = countingKeys{r.keys, &calls}, tc.page, 8
			res, err := fs.SignAll(ctx, "site-a")
			if err != nil || res.Signed != people {
				t.Fatalf("SignAll = %+v, %v; want %d signed", res, err, people)
			}
			if got := int(calls.Load()); got != tc.signs {
				t.Fatalf("%d people in pages of %d cost %d Sign calls, want %d", people, tc.page, got, tc.signs)
			}
			depth := bits.Len(uint(tc.page - 1))
			for _, sig := range *r.queue {
				if len(sig.Proof) > depth {
					t.Fatalf("proof of %d hashes in a page of %d", len(sig.Proof), tc.page)
				}
			}
			outs := r.drain(t)
			issued := map[signing.IssueOutcome]int{}
			for _, o := range outs {
				issued[o]++
			}
			if len(outs) != people || issued[signing.NotYet] != 0 {
				t.Fatalf("outcomes %v; want %d certificates", issued, people)
			}
		})
	}
	cert, err := r.store.ActiveCertificate(ctx, "001088000042")
	if err != nil {
		t.Fatal(err)
	}
	if v := r.verifier.Verify(ctx, cert.HC1); !v.Valid {
		t.Fatalf("issued HC1 does not verify: %s", v.Reason)
	}
}

// A message of the first form (one signature per person, no form field), as queued or
// stored before batch signing, still issues.
func TestSingleFormSignatureStillIssues(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	r.addVerified(t, "site-a", "a1", "JANSSEN", "2021-08-01")
	doses, err := r.store.PersonDoses(ctx, personID)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := r.keys.FacilitySigner(ctx, "site-a")
	if err != nil {
		t.Fatal(err)
	}
	payload, sig, err := facilitysig.Sign(ctx, signer, signing.ContentOf(personID, "site-a", doses, r.now))
	if err != nil {
		t.Fatal(err)
	}
	old, _ := json.Marshal(map[string]any{"person_id": personID, "facility_id": "site-a", "payload": payload, "signature": sig, "signed_at": r.now})
	var msg vaxpass.FacilitySignature
	if err := json.Unmarshal(old, &msg); err != nil {
		t.Fatal(err)
	}
	if out, _, err := r.issuer.Process(ctx, msg); err != nil || out != signing.Issued {
		t.Fatalf("first-form signature: %v, %v; want issued", out, err)
	}
	again, _ := json.Marshal(msg)
	var fields map[string]any
	if err := json.Unmarshal(again, &fields); err != nil || len(fields) != 5 {
		t.Fatalf("a first-form signature encodes with other fields: %v %v", fields, err)
	}
	// Told it is a batch signature, it is refused.
	msg.Form = string(facilitysig.FormMerkle)
	msg.Batch, msg.TreeSize = payload, 1
	if _, _, err := r.issuer.Process(ctx, msg); !errors.Is(err, signing.ErrBadFacilitySignature) {
		t.Fatalf("first-form signature told as a batch: %v", err)
	}
}
