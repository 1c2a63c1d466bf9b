package storetest

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/domain/access"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// AccessKeys is an access key store (wire.AccessKeyStore; declared here again so that
// this package does not import the wiring).
type AccessKeys interface {
	KeyByHash(ctx context.Context, hash []byte) (access.Key, error)
	AddKey(ctx context.Context, k access.Key) error
	ListKeys(ctx context.Context) ([]access.Key, error)
	RevokeKey(ctx context.Context, id string, at time.Time) (access.Key, error)
}

func keyHash(apiKey string) []byte { return access.Hash(apiKey) }

// RunAccessKeys is the access key stores' contract: keys of every role are added, found
// by hash, listed oldest first and revoked by ID, a revocation holding at once -- also
// through a second store over the same data (another process, another Lambda instance).
// newStore opens a fresh, empty store and a function opening another over the same data.
func RunAccessKeys(t *testing.T, newStore func(t *testing.T) (st AccessKeys, again func() AccessKeys)) {
	ctx := context.Background()
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	k := func(apiKey string, r access.Role, subject string, at time.Time) access.Key {
		h := keyHash(apiKey)
		return access.Key{ID: access.IDOf(h), Role: r, Subject: subject, Hash: h, CreatedAt: at}
	}
	same := func(a, b access.Key) bool {
		return a.ID == b.ID && a.Role == b.Role && a.Subject == b.Subject && string(a.Hash) == string(b.Hash) &&
			a.CreatedAt.Equal(b.CreatedAt) && a.RevokedAt.Equal(b.RevokedAt)
	}

	t.Run("lifecycle", func(t *testing.T) {
		st, again := newStore(t)
		fac := k("vxk_facility", access.Facility, "HN-001", t0)
		clerk := k("vxk_clerk", access.Clerk, "00004", t0.Add(2*time.Minute))
		officer := k("vxk_officer", access.Officer, "police.hn", t0.Add(time.Minute))
		ops := k("vxk_ops", access.Ops, "alice", t0.Add(3*time.Minute))
		for _, key := range []access.Key{fac, clerk, officer, ops} {
			if err := st.AddKey(ctx, key); err != nil {
				t.Fatalf("AddKey %s: %v", key.Role, err)
			}
		}
		if _, err := st.KeyByHash(ctx, keyHash("vxk_unknown")); !errors.Is(err, vaxpass.ErrNotFound) {
			t.Errorf("KeyByHash(unknown) = %v, want ErrNotFound", err)
		}
		if _, err := st.KeyByHash(ctx, keyHash("vxk_facility")[:16]); !errors.Is(err, vaxpass.ErrNotFound) {
			t.Errorf("KeyByHash(short hash) = %v, want ErrNotFound", err)
		}
		for _, want := range []access.Key{fac, clerk, officer, ops} {
			got, err := st.KeyByHash(ctx, want.Hash)
			if err != nil || !same(got, want) {
				t.Errorf("KeyByHash %s = %+v, %v; want %+v", want.Role, got, err, want)
			}
		}
		list, err := st.ListKeys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		wantList := []access.Key{fac, officer, clerk, ops} // oldest first
		if len(list) != len(wantList) {
			t.Fatalf("ListKeys = %d keys, want %d: %+v", len(list), len(wantList), list)
		}
		for i := range list {
			if !same(list[i], wantList[i]) {
				t.Errorf("ListKeys[%d] = %+v, want %+v", i, list[i], wantList[i])
			}
		}

		// Revocation: at once, seen by another store over the same data, idempotent.
		other := again()
		revokedAt := t0.Add(time.Hour)
		got, err := st.RevokeKey(ctx, clerk.ID, revokedAt)
		wantRevoked := clerk
		wantRevoked.RevokedAt = revokedAt
		if err != nil || !same(got, wantRevoked) {
			t.Fatalf("RevokeKey = %+v, %v; want %+v", got, err, wantRevoked)
		}
		for name, s := range map[string]AccessKeys{"the same store": st, "another store": other} {
			got, err := s.KeyByHash(ctx, clerk.Hash)
			if err != nil || !got.Revoked() || !got.RevokedAt.Equal(revokedAt) {
				t.Errorf("%s: KeyByHash(revoked) = %+v, %v; want it revoked at %v", name, got, err, revokedAt)
			}
			if got, err := s.KeyByHash(ctx, officer.Hash); err != nil || got.Revoked() {
				t.Errorf("%s: KeyByHash(officer) = %+v, %v; want it valid", name, got, err)
			}
		}
		if got, err := other.RevokeKey(ctx, strings.ToUpper(clerk.ID), revokedAt.Add(time.Hour)); err != nil || !same(got, wantRevoked) {
			t.Errorf("RevokeKey again = %+v, %v; want it unchanged %+v", got, err, wantRevoked)
		}
		if _, err := st.RevokeKey(ctx, "0123456789ab", revokedAt); !errors.Is(err, vaxpass.ErrNotFound) {
			t.Errorf("RevokeKey(unknown) = %v, want ErrNotFound", err)
		}
		if _, err := st.RevokeKey(ctx, "nothex", revokedAt); !errors.Is(err, vaxpass.ErrInvalid) {
			t.Errorf("RevokeKey(not an ID) = %v, want ErrInvalid", err)
		}
		list, err = other.ListKeys(ctx)
		if err != nil || len(list) != 4 {
			t.Fatalf("ListKeys after revoking = %+v, %v", list, err)
		}
		for _, l := range list {
			if l.Revoked() != (l.ID == clerk.ID) {
				t.Errorf("ListKeys after revoking: %s revoked = %v", l.ID, l.Revoked())
			}
		}
	})

	t.Run("conflicts and invalid keys", func(t *testing.T) {
		st, _ := newStore(t)
		a := k("vxk_a", access.Ops, "alice", t0)
		if err := st.AddKey(ctx, a); err != nil {
			t.Fatal(err)
		}
		taken := k("vxk_a", access.Clerk, "00004", t0.Add(time.Minute))
		if err := st.AddKey(ctx, taken); !errors.Is(err, vaxpass.ErrConflict) {
			t.Errorf("AddKey(a stored hash) = %v, want ErrConflict", err)
		}
		bad := []access.Key{
			{Role: access.Ops, Subject: "alice", Hash: keyHash("x")[:31], CreatedAt: t0},
			{Role: "admin", Subject: "alice", Hash: keyHash("y"), CreatedAt: t0},
			{Role: access.Clerk, Subject: "4", Hash: keyHash("z"), CreatedAt: t0},
			{Role: access.Ops, Subject: "A B", Hash: keyHash("w"), CreatedAt: t0},
		}
		for _, b := range bad {
			if err := st.AddKey(ctx, b); !errors.Is(err, vaxpass.ErrInvalid) {
				t.Errorf("AddKey(%s %q, %d-byte hash) = %v, want ErrInvalid", b.Role, b.Subject, len(b.Hash), err)
			}
		}
		list, err := st.ListKeys(ctx)
		if err != nil || len(list) != 1 || !same(list[0], a) {
			t.Errorf("ListKeys = %+v, %v; want only %+v", list, err, a)
		}
		got, err := st.KeyByHash(ctx, a.Hash)
		if err != nil || !same(got, a) {
			t.Errorf("KeyByHash after a refused add = %+v, %v; want %+v", got, err, a)
		}
	})

	t.Run("concurrent writers", func(t *testing.T) {
		st, again := newStore(t)
		stores := []AccessKeys{st, again()}
		const n = 8
		var wg sync.WaitGroup
		errs := make([]error, 2*n)
		for i := range 2 * n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				key := k("vxk_c"+string(rune('a'+i)), access.Ops, "writer", t0.Add(time.Duration(i)*time.Second))
				errs[i] = stores[i%2].AddKey(ctx, key)
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("AddKey %d: %v", i, err)
			}
		}
		list, err := st.ListKeys(ctx)
		if err != nil || len(list) != 2*n {
			t.Fatalf("ListKeys = %d keys, %v; want %d (a concurrent write lost)", len(list), err, 2*n)
		}
		for i := range 2 * n {
			if _, err := stores[(i+1)%2].KeyByHash(ctx, keyHash("vxk_c"+string(rune('a'+i)))); err != nil {
				t.Errorf("KeyByHash %d: %v", i, err)
			}
		}
	})

	t.Run("a revocation between reads is seen at once", func(t *testing.T) {
		st, again := newStore(t)
		other := again()
		for i := range 20 {
			key := k("vxk_r"+string(rune('a'+i)), access.Facility, "F1", t0)
			if err := st.AddKey(ctx, key); err != nil {
				t.Fatal(err)
			}
			// Read through the other store first (a cache would keep it), then revoke.
			if got, err := other.KeyByHash(ctx, key.Hash); err != nil || got.Revoked() {
				t.Fatalf("KeyByHash %d before revoking = %+v, %v", i, got, err)
			}
			if _, err := st.RevokeKey(ctx, key.ID, t0.Add(time.Minute)); err != nil {
				t.Fatal(err)
			}
			if got, err := other.KeyByHash(ctx, key.Hash); err != nil || !got.Revoked() {
				t.Fatalf("KeyByHash %d right after revoking = %+v, %v; want it revoked", i, got, err)
			}
		}
	})
}
