package wire_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/domain/access"
	"github.com/vaxpass/vaxpass/shared/stage/audit"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
	"github.com/vaxpass/vaxpass/shared/wire"
	"github.com/vaxpass/vaxpass/shared/wire/local"
)

type trail struct{ entries []audit.Entry }

func (a *trail) Append(_ context.Context, e audit.Entry) error {
	if err := e.Validate(); err != nil {
		return err
	}
	a.entries = append(a.entries, e)
	return nil
}

type facilities map[string]bool

func (f facilities) GetFacility(_ context.Context, id string) (vaxpass.Facility, error) {
	if !f[id] {
		return vaxpass.Facility{}, vaxpass.ErrNotFound
	}
	return vaxpass.Facility{ID: id}, nil
}

func newLifecycle(t *testing.T) (*wire.KeyLifecycle, *trail, *time.Time) {
	t.Helper()
	now := time.Date(2026, 4, 1, 8, 0, 0, 0, time.UTC)
	a := &trail{}
	clock := func() time.Time { return now }
	return &wire.KeyLifecycle{
		Keys:       local.NewAccessKeyFile(t.TempDir(), clock, nil),
		Facilities: facilities{"F1": true}, Audit: a, Now: clock,
		Rand: bytes.NewReader(bytes.Repeat([]byte("0123456789abcdef"), 64)),
	}, a, &now
}

func TestNewKey(t *testing.T) {
	l, a, _ := newLifecycle(t)
	ctx := audit.WithActor(context.Background(), "cli:anna")
	for _, bad := range []struct {
		role    access.Role
		subject string
		want    error
	}{
		{"admin", "anna", vaxpass.ErrInvalid},
		{access.Clerk, "123", vaxpass.ErrInvalid},
		{access.Officer, "Anna", vaxpass.ErrInvalid},
		{access.Facility, "F2", vaxpass.ErrNotFound},
	} {
		if _, _, err := l.NewKey(ctx, bad.role, bad.subject); !errors.Is(err, bad.want) {
			t.Errorf("NewKey(%s, %q) = %v, want %v", bad.role, bad.subject, err, bad.want)
		}
	}
	prefixes := map[access.Role]string{access.Facility: "vxp_", access.Clerk: "vxc_", access.Officer: "vxr_", access.Ops: "vxo_"}
	subjects := map[access.Role]string{access.Facility: "F1", access.Clerk: "00004", access.Officer: "police.hn", access.Ops: "bao"}
	l.Rand = strings.NewReader(strings.Repeat("x", 4*32))
	for _, role := range access.Roles {
		apiKey, k, err := l.NewKey(ctx, role, subjects[role])
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(apiKey, prefixes[role]) || k.ID != access.IDOf(access.Hash(apiKey)) || k.Role != role || k.Subject != subjects[role] {
			t.Errorf("NewKey(%s) = %q, %+v", role, apiKey, k)
		}
		stored, err := l.Keys.KeyByHash(ctx, access.Hash(apiKey))
		if err != nil || stored.ID != k.ID || stored.Revoked() {
			t.Errorf("stored %s key: %+v, %v", role, stored, err)
		}
		e := a.entries[len(a.entries)-1]
		if e.Action != wire.ActionKeyAdd || e.Actor != "cli:anna" || e.Params["role"] != string(role) || e.Params["key_id"] != k.ID || e.Params["subject"] != subjects[role] {
			t.Errorf("audit entry of %s: %+v", role, e)
		}
		for _, v := range e.Params {
			if strings.Contains(v, apiKey) {
				t.Error("the audit entry holds the key")
			}
		}
	}
	if len(a.entries) != 4 {
		t.Errorf("%d audit entries, want 4 (refused adds are not audited)", len(a.entries))
	}
	if _, _, err := (&wire.KeyLifecycle{}).NewKey(ctx, access.Ops, "anna"); !errors.Is(err, wire.ErrNoPort) {
		t.Errorf("NewKey without a store = %v, want ErrNoPort", err)
	}
}

func TestRotateAndRevokeKey(t *testing.T) {
	l, a, now := newLifecycle(t)
	ctx := context.Background()
	l.Rand = strings.NewReader(strings.Repeat("y", 32) + strings.Repeat("z", 32))
	oldKey, old, err := l.NewKey(ctx, access.Clerk, "00004")
	if err != nil {
		t.Fatal(err)
	}
	*now = now.Add(time.Hour)
	newKey, k, err := l.RotateKey(ctx, strings.ToUpper(old.ID))
	if err != nil {
		t.Fatal(err)
	}
	if newKey == oldKey || k.Role != access.Clerk || k.Subject != "00004" || k.ID == old.ID {
		t.Errorf("RotateKey = %q, %+v", newKey, k)
	}
	if got, _ := l.Keys.KeyByHash(ctx, access.Hash(oldKey)); !got.RevokedAt.Equal(*now) {
		t.Errorf("the old key after rotation: %+v", got)
	}
	if got, _ := l.Keys.KeyByHash(ctx, access.Hash(newKey)); got.Revoked() {
		t.Errorf("the new key after rotation: %+v", got)
	}
	if e := a.entries[len(a.entries)-1]; e.Action != wire.ActionKeyRotate || e.Params["key_id"] != k.ID || e.Params["replaced"] != old.ID {
		t.Errorf("rotation audit entry: %+v", e)
	}
	if _, _, err := l.RotateKey(ctx, old.ID); !errors.Is(err, vaxpass.ErrConflict) {
		t.Errorf("rotating a revoked key = %v, want ErrConflict", err)
	}
	for id, want := range map[string]error{"0123456789ab": vaxpass.ErrNotFound, "xyz": vaxpass.ErrInvalid, "0123456789abc": vaxpass.ErrInvalid} {
		if _, _, err := l.RotateKey(ctx, id); !errors.Is(err, want) {
			t.Errorf("RotateKey(%q) = %v, want %v", id, err, want)
		}
		if _, err := l.RevokeKey(ctx, id); !errors.Is(err, want) {
			t.Errorf("RevokeKey(%q) = %v, want %v", id, err, want)
		}
	}

	n := len(a.entries)
	*now = now.Add(time.Hour)
	r, err := l.RevokeKey(ctx, k.ID)
	if err != nil || !r.RevokedAt.Equal(*now) {
		t.Fatalf("RevokeKey = %+v, %v", r, err)
	}
	if len(a.entries) != n+1 || a.entries[n].Action != wire.ActionKeyRevoke || a.entries[n].Params["key_id"] != k.ID {
		t.Errorf("revocation audit entries: %+v", a.entries[n:])
	}
	revokedAt := *now
	*now = now.Add(time.Hour)
	if r, err := l.RevokeKey(ctx, k.ID); err != nil || !r.RevokedAt.Equal(revokedAt) {
		t.Errorf("RevokeKey again = %+v, %v; want it unchanged", r, err)
	}
	if len(a.entries) != n+1 {
		t.Errorf("revoking a revoked key was audited again")
	}
	list, err := l.ListKeys(ctx)
	if err != nil || len(list) != 2 || !list[0].Revoked() || !list[1].Revoked() {
		t.Errorf("ListKeys = %+v, %v", list, err)
	}
}
