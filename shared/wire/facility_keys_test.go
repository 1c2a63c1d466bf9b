package wire_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/domain/facilitysig"
	"github.com/vaxpass/vaxpass/shared/stage/audit"
	"github.com/vaxpass/vaxpass/shared/stage/signing"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
	"github.com/vaxpass/vaxpass/shared/wire"
	"github.com/vaxpass/vaxpass/shared/wire/local"
)

// signAs signs a (not yet eligible) person's content with the facility's current key.
func signAs(t *testing.T, l *local.Local, facilityID, personID string, at time.Time) vaxpass.FacilitySignature {
	t.Helper()
	signer, err := l.Keys.FacilitySigner(t.Context(), facilityID)
	if err != nil {
		t.Fatal(err)
	}
	c := facilitysig.Content{PersonID: personID, FacilityID: facilityID, FullName: "NGUYEN VAN A", DOB: "1980-01-02",
		Gender: "M", Nationality: "VN", SignedAt: at,
		Doses: []facilitysig.Dose{{SourceID: "s-" + personID, Vaccine: "PFIZER", DoseNumber: 1, VaccinatedOn: "2021-08-01"}}}
	payload, sig, err := facilitysig.Sign(t.Context(), signer, c)
	if err != nil {
		t.Fatal(err)
	}
	return vaxpass.FacilitySignature{PersonID: personID, FacilityID: facilityID, Payload: payload, Signature: sig, SignedAt: at}
}

// A rotation keeps what the former key signed valid; a revocation refuses what the
// revoked key signed, at once for central signing instances that read the facility
// before, and removes the key. Both are audited, and a new process signs with the
// current key.
func TestFacilityKeyRotateRevoke(t *testing.T) {
	dir := t.TempDir()
	now := time.Now().UTC()
	clock := func() time.Time { return now }
	l, err := local.OpenLocal(local.Options{DataDir: dir, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { l.Close() }()
	ctx := audit.WithActor(context.Background(), "cli:anna")
	if _, err := l.Sys.AddFacility(ctx, "F1", "Trạm Y tế 1"); err != nil {
		t.Fatal(err)
	}
	central, err := l.Sys.CentralSigning()
	if err != nil {
		t.Fatal(err)
	}
	process := func(sig vaxpass.FacilitySignature) error {
		_, _, err := central.Process(ctx, sig)
		return err
	}
	sig1 := signAs(t, l, "F1", "P1", now)
	if err := process(sig1); err != nil {
		t.Fatalf("first key's signature: %v", err)
	}
	first, err := l.Store.GetFacility(ctx, "F1")
	if err != nil {
		t.Fatal(err)
	}

	rot, err := l.Sys.RotateFacilityKey(ctx, "F1")
	if err != nil {
		t.Fatal(err)
	}
	if rot.FormerKeyID != first.KeyID || rot.KeyID == first.KeyID || rot.Revoked {
		t.Fatalf("rotation %+v from %s", rot, first.KeyID)
	}
	sig2 := signAs(t, l, "F1", "P2", now)
	if string(sig2.Signature) == string(sig1.Signature) {
		t.Fatal("same signature")
	}
	// The central instance cached F1's keys before the rotation: the new key's signature
	// still verifies (a fresh read), and so does the former key's.
	if err := process(sig2); err != nil {
		t.Errorf("new key's signature after rotation: %v", err)
	}
	if err := process(sig1); err != nil {
		t.Errorf("former key's signature after rotation: %v", err)
	}

	rev, err := l.Sys.RevokeFacilityKey(ctx, "F1")
	if err != nil {
		t.Fatal(err)
	}
	if rev.FormerKeyID != rot.KeyID || !rev.Revoked {
		t.Fatalf("revocation %+v, want the rotated key %s revoked", rev, rot.KeyID)
	}
	now = now.Add(wire.FacilityKeyTTL + time.Second)
	err = process(sig2)
	if !errors.Is(err, signing.ErrBadFacilitySignature) || !errors.Is(err, signing.ErrRevokedFacilityKey) {
		t.Errorf("revoked key's signature: %v, want ErrRevokedFacilityKey", err)
	}
	if err := process(sig1); err != nil {
		t.Errorf("first (retired, not revoked) key's signature after the revocation: %v", err)
	}
	sig3 := signAs(t, l, "F1", "P3", now)
	if err := process(sig3); err != nil {
		t.Errorf("current key's signature after the revocation: %v", err)
	}
	f, err := l.Store.GetFacility(ctx, "F1")
	if err != nil {
		t.Fatal(err)
	}
	if f.KeyID != rev.KeyID || len(f.FormerKeys) != 2 || !f.FormerKeys[0].RevokedAt.IsZero() || f.FormerKeys[1].RevokedAt.IsZero() {
		t.Errorf("record after revocation: key %s, former %+v", f.KeyID, f.FormerKeys)
	}
	if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(rot.KeyID))); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the revoked key's file: %v, want removed", err)
	}
	entries, _, err := l.Ops.Audit.Entries(ctx, audit.Query{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, e := range entries {
		got[e.Action]++
		if e.Action == wire.ActionFacilityKeyRevoke && (e.Params["former_key_id"] != rot.KeyID || e.Actor != "cli:anna") {
			t.Errorf("revocation entry %+v", e)
		}
	}
	if got[wire.ActionFacilityKeyRotate] != 1 || got[wire.ActionFacilityKeyRevoke] != 1 {
		t.Errorf("audit actions %v, want one rotation and one revocation", got)
	}
	if _, err := l.Sys.RotateFacilityKey(ctx, "F9"); !errors.Is(err, vaxpass.ErrNotFound) {
		t.Errorf("rotating an unknown facility: %v, want ErrNotFound", err)
	}

	// Another process signs with the current key.
	l.Close()
	if l, err = local.OpenLocal(local.Options{DataDir: dir, Now: clock}); err != nil {
		t.Fatal(err)
	}
	if cur, err := l.Keys.CurrentFacilityKey(ctx, "F1"); err != nil || cur != rev.KeyID {
		t.Errorf("current key after reopening: %s, %v; want %s", cur, err, rev.KeyID)
	}
	central, err = l.Sys.CentralSigning()
	if err != nil {
		t.Fatal(err)
	}
	if err := process(signAs(t, l, "F1", "P4", now)); err != nil {
		t.Errorf("signature after reopening: %v", err)
	}
}
