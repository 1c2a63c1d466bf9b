package signing_test

import (
	"context"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/domain/dose"
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

// addVerified stores a dose and records the matcher's VERIFIED verdict on it.
func (r *rig) addVerified(t *testing.T, facility, sourceID, vaccineCode, on string) {
	t.Helper()
	ctx := context.Background()
	d := vaxpass.Dose{
		FacilityID: facility,
		Record: dose.Record{SourceID: sourceID, FullName: "Nguyen Van An", DOB: "1988", Gender: "male",
			IDNumber: personID, Nationality: "VN", Vaccine: vaccineCode, DoseNumber: 1, VaccinatedOn: on},
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
	cases := map[string]func(s *vaxpass.FacilitySignature){
		"signature byte":   func(s *vaxpass.FacilitySignature) { s.Signature[5] ^= 1 },
		"payload byte":     func(s *vaxpass.FacilitySignature) { s.Payload[len(s.Payload)-3] ^= 1 },
		"other facility":   func(s *vaxpass.FacilitySignature) { s.FacilityID = "site-b" },
		"unknown facility": func(s *vaxpass.FacilitySignature) { s.FacilityID = "nowhere" },
		"other person":     func(s *vaxpass.FacilitySignature) { s.PersonID = "079200000001" },
	}
	for name, tamper := range cases {
		t.Run(name, func(t *testing.T) {
			sig := good
			sig.Signature = append([]byte(nil), good.Signature...)
			sig.Payload = append([]byte(nil), good.Payload...)
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

// interleavedStore lets another worker run between this worker's first read of a
// person's signatures and the rest of its round: the interleaving that raced in the
// fault runs when central signing took two queue batches at once.
type interleavedStore struct {
	signing.CentralStore
	between func()
}

func (s *interleavedStore) FacilitySignatures(ctx context.Context, personID string) ([]vaxpass.FacilitySignature, error) {
	sigs, err := s.CentralStore.FacilitySignatures(ctx, personID)
	if f := s.between; f != nil {
		s.between = nil
		f()
	}
	return sigs, err
}

func TestConcurrentWorkersEndOnAllDoses(t *testing.T) {
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

	// Worker A stores site-a's signature and reads the person's signatures (only its own);
	// worker B then stores site-b's and issues 3/3; worker A goes on with what it read.
	var errB error
	slow := *r.issuer
	slow.Store = &interleavedStore{CentralStore: r.store, between: func() {
		_, _, errB = r.issuer.Process(ctx, sigB)
	}}
	if _, _, err := slow.Process(ctx, sigA); err != nil {
		t.Fatalf("worker A: %v", err)
	}
	if errB != nil {
		t.Fatalf("worker B: %v", errB)
	}
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
