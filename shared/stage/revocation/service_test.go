package revocation_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/stage/audit"
	"github.com/vaxpass/vaxpass/shared/stage/revocation"
	"github.com/vaxpass/vaxpass/shared/store/embedded"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

type fixture struct {
	store *embedded.Store
	list  *embedded.RevocationList
	log   *embedded.AuditLog
	svc   *revocation.Service
	now   time.Time
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	db, err := embedded.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	f := &fixture{now: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)}
	clock := func() time.Time { return f.now }
	if f.store, err = embedded.OpenStore(db, embedded.StoreOptions{Now: clock}); err != nil {
		t.Fatal(err)
	}
	if f.list, err = embedded.OpenRevocationList(db); err != nil {
		t.Fatal(err)
	}
	if f.log, err = embedded.OpenAuditLog(db, clock); err != nil {
		t.Fatal(err)
	}
	f.svc = &revocation.Service{List: f.list, Certs: f.store, Issuer: "VN", Now: clock}
	return f
}

// issue stores an active certificate for person.
func (f *fixture) issue(t *testing.T, person, uvci string) vaxpass.Certificate {
	t.Helper()
	c := vaxpass.Certificate{UVCI: uvci, PersonID: person, HC1: "HC1:x", Status: vaxpass.CertIssued,
		IssuedAt: f.now, ExpiresAt: f.now.AddDate(1, 0, 0), Version: 1}
	if err := f.store.ReplaceCertificate(context.Background(), c, nil); err != nil {
		t.Fatal(err)
	}
	return c
}

func (f *fixture) entries(t *testing.T, action string) []audit.Entry {
	t.Helper()
	var out []audit.Entry
	if err := audit.All(context.Background(), f.log, audit.Query{Action: action}, func(e audit.Entry) error {
		out = append(out, e)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

const (
	uvciA = "URN:UVCI:01:VN:3DLCTZKQ4MJXJ6DVB4IQZO6ALM#H"
	uvciB = "URN:UVCI:01:VN:WOKD2LK5CWUXLEVWNAOGYXEP2E#P"
)

func TestRevoke(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.issue(t, "079095922293", uvciA)

	res, err := f.svc.Revoke(ctx, "ops-anna", uvciA, "  issued in error  ")
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != revocation.Revoked || res.Reason != "issued in error" || !res.RevokedAt.Equal(f.now) {
		t.Errorf("Revoke = %+v", res)
	}
	c, err := f.store.CertificateByUVCI(ctx, uvciA)
	if err != nil || c.Status != vaxpass.CertRevoked || c.RevokedReason != "issued in error" {
		t.Fatalf("stored certificate %+v, %v", c, err)
	}
	if _, err := f.store.ActiveCertificate(ctx, "079095922293"); !errors.Is(err, vaxpass.ErrNotFound) {
		t.Errorf("the person still has an active certificate: %v", err)
	}
	reason, listed, err := revocation.Lookup{List: f.list}.Revoked(ctx, uvciA)
	if err != nil || !listed || reason != revocation.ReasonRevoked {
		t.Errorf("Lookup.Revoked = %q %v %v", reason, listed, err)
	}
	if _, listed, _ := (revocation.Lookup{List: f.list}).Revoked(ctx, uvciB); listed {
		t.Error("an unlisted UVCI is revoked")
	}
	notes := f.entries(t, audit.ActionRevocation)
	if len(notes) != 1 || notes[0].Actor != "ops-anna" || notes[0].UVCIs[0] != uvciA || notes[0].Reason != "issued in error" {
		t.Fatalf("audit %+v", notes)
	}

	// Again, in lower case: nothing changes, nothing more is audited.
	f.now = f.now.Add(time.Hour)
	res, err = f.svc.Revoke(ctx, "ops-bob", "urn:uvci:01:vn:3dlctzkq4mjxj6dvb4iqzo6alm#h", "other reason")
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != revocation.AlreadyRevoked || res.Reason != "issued in error" || res.UVCI != uvciA {
		t.Errorf("second Revoke = %+v", res)
	}
	if n := len(f.entries(t, "")); n != 1 {
		t.Errorf("%d audit entries after a repeated revoke, want 1", n)
	}
}

func TestRevokeErrors(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	tests := []struct {
		name, uvci, reason string
		want               error
	}{
		{"unknown", uvciB, "x", vaxpass.ErrNotFound},
		{"not a uvci", "URN:UVCI:nope", "x", vaxpass.ErrInvalid},
		{"no reason", uvciA, " ", revocation.ErrInvalidReason},
	}
	f.issue(t, "p1", uvciA)
	for _, tc := range tests {
		if _, err := f.svc.Revoke(ctx, "ops", tc.uvci, tc.reason); !errors.Is(err, tc.want) {
			t.Errorf("%s: Revoke = %v, want %v", tc.name, err, tc.want)
		}
	}
	if n, _ := f.list.RevocationCount(ctx); n != 0 {
		t.Errorf("failed revocations listed %d entries", n)
	}
}

// A crash after listing but before the store change: the next Revoke completes it.
func TestRevokeCompletesAnInterruptedOne(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.issue(t, "p1", uvciA)
	e := f.svc.NewEntry(uvciA, "fraud", "ops", f.now)
	if added, err := f.list.AddRevocation(ctx, e, nil); err != nil || !added {
		t.Fatal(added, err)
	}
	res, err := f.svc.Revoke(ctx, "ops", uvciA, "fraud")
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != revocation.Revoked {
		t.Errorf("outcome %s, want revoked (completed)", res.Outcome)
	}
	if c, _ := f.store.CertificateByUVCI(ctx, uvciA); c.Status != vaxpass.CertRevoked {
		t.Errorf("status %s", c.Status)
	}
}

func TestSupersededAndPublisher(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	prev := f.issue(t, "p1", uvciA)
	next := prev
	next.UVCI = uvciB
	pub := &revocation.Publisher{List: f.list, Issuer: "VN", Now: func() time.Time { return f.now }}
	body, changed, err := pub.Current(ctx)
	if err != nil || !changed {
		t.Fatal(changed, err)
	}
	empty, _ := revocation.Parse(body)
	if empty.Len() != 0 {
		t.Fatal("list not empty")
	}
	for range 2 { // idempotent
		if err := f.svc.Superseded(ctx, "central-signing", prev, next); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.store.ReplaceCertificate(ctx, next, &prev); err != nil {
		t.Fatal(err)
	}
	body, changed, err = pub.Current(ctx)
	if err != nil || !changed {
		t.Fatal(changed, err)
	}
	set, err := revocation.Parse(body)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := set.Revoked(ctx, uvciA); !ok {
		t.Error("superseded certificate not on the published list")
	}
	if _, ok, _ := set.Revoked(ctx, uvciB); ok {
		t.Error("the new certificate is on the list")
	}
	if _, changed, _ := pub.Current(ctx); changed {
		t.Error("list rebuilt without a change")
	}
	notes := f.entries(t, audit.ActionRevocation)
	if len(notes) != 1 || notes[0].Reason != revocation.ReasonSuperseded || len(notes[0].UVCIs) != 2 {
		t.Fatalf("audit %+v", notes)
	}
}
