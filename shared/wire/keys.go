package wire

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/vaxpass/vaxpass/shared/domain/access"
	"github.com/vaxpass/vaxpass/shared/stage/audit"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// The audit actions of the key lifecycle (audit actions are lower-case words with _).
const (
	ActionKeyAdd    = "key_add"
	ActionKeyRotate = "key_rotate"
	ActionKeyRevoke = "key_revoke"
)

// keyPrefix tells a key's role at a glance (in a log line a user pasted, in a secret
// scanner's rule); the role itself is what the store records.
var keyPrefix = map[access.Role]string{
	access.Facility: "vxp_",
	access.Clerk:    "vxc_",
	access.Officer:  "vxr_",
	access.Ops:      "vxo_",
}

func (s *System) accessKeys() (AccessKeyStore, error) {
	if s.p.AccessKeys == nil {
		return nil, fmt.Errorf("%w: AccessKeys", ErrNoPort)
	}
	return s.p.AccessKeys, nil
}

// KeyLifecycle is the API keys' lifecycle: new, list, rotate, revoke. System's methods
// run it over the system's ports; the embedded CLI runs it over the key file alone while
// a server holds the database (no Facilities, no Audit).
type KeyLifecycle struct {
	Keys AccessKeyStore
	// Facilities, when set, checks that a facility key's facility is registered.
	Facilities interface {
		GetFacility(ctx context.Context, id string) (vaxpass.Facility, error)
	}
	// Audit, when set, records every change with the actor of the context.
	Audit audit.Appender
	Now   func() time.Time
	Rand  io.Reader
}

// Keys is the key lifecycle over the system's ports.
func (s *System) Keys() *KeyLifecycle {
	l := &KeyLifecycle{Keys: s.p.AccessKeys, Facilities: s.p.Store, Now: s.p.Now, Rand: s.p.Rand}
	if s.p.Audit != nil {
		l.Audit = s.p.Audit
	}
	return l
}

// NewKey is KeyLifecycle.NewKey over the system's ports.
func (s *System) NewKey(ctx context.Context, role access.Role, subject string) (string, access.Key, error) {
	return s.Keys().NewKey(ctx, role, subject)
}

// ListKeys is KeyLifecycle.ListKeys over the system's ports.
func (s *System) ListKeys(ctx context.Context) ([]access.Key, error) { return s.Keys().ListKeys(ctx) }

// RotateKey is KeyLifecycle.RotateKey over the system's ports.
func (s *System) RotateKey(ctx context.Context, id string) (string, access.Key, error) {
	return s.Keys().RotateKey(ctx, id)
}

// RevokeKey is KeyLifecycle.RevokeKey over the system's ports.
func (s *System) RevokeKey(ctx context.Context, id string) (access.Key, error) {
	return s.Keys().RevokeKey(ctx, id)
}

func (l *KeyLifecycle) store() (AccessKeyStore, error) {
	if l.Keys == nil {
		return nil, fmt.Errorf("%w: AccessKeys", ErrNoPort)
	}
	return l.Keys, nil
}

func (l *KeyLifecycle) now() time.Time {
	if l.Now == nil {
		return time.Now().UTC()
	}
	return l.Now().UTC()
}

// audit appends e with the actor in ctx ("cli" when none); without a trail, nothing.
func (l *KeyLifecycle) audit(ctx context.Context, e audit.Entry) error {
	if l.Audit == nil {
		return nil
	}
	e.At = l.now()
	if e.Actor = audit.ActorFrom(ctx); e.Actor == "" {
		e.Actor = "cli"
	}
	if err := l.Audit.Append(ctx, e); err != nil {
		return fmt.Errorf("audit %s: %w", e.Action, err)
	}
	return nil
}

// NewKey makes an API key of role for subject (a facility ID, a commune code, an actor)
// and stores its hash; the key is returned once and stored nowhere. A facility key's
// facility must be registered. Audited with the role, subject and key ID, never the key.
func (l *KeyLifecycle) NewKey(ctx context.Context, role access.Role, subject string) (string, access.Key, error) {
	if err := access.CheckSubject(role, subject); err != nil {
		return "", access.Key{}, fmt.Errorf("%w: %w", vaxpass.ErrInvalid, err)
	}
	if role == access.Facility && l.Facilities != nil {
		if _, err := l.Facilities.GetFacility(ctx, subject); errors.Is(err, vaxpass.ErrNotFound) {
			return "", access.Key{}, fmt.Errorf("new key: facility %s: %w: register it first (vaxpass facility add)", subject, vaxpass.ErrNotFound)
		} else if err != nil {
			return "", access.Key{}, fmt.Errorf("new key: facility %s: %w", subject, err)
		}
	}
	apiKey, k, err := l.addKey(ctx, role, subject)
	if err != nil {
		return "", access.Key{}, err
	}
	e := audit.Entry{Action: ActionKeyAdd, Params: map[string]string{"role": string(role), "subject": subject, "key_id": k.ID}}
	if role == access.Facility {
		e.Facilities = []string{subject}
	}
	if err := l.audit(ctx, e); err != nil {
		return "", access.Key{}, err
	}
	return apiKey, k, nil
}

// addKey makes and stores a key, unaudited.
func (s *System) addKey(ctx context.Context, role access.Role, subject string) (string, access.Key, error) {
	return s.Keys().addKey(ctx, role, subject)
}

func (l *KeyLifecycle) addKey(ctx context.Context, role access.Role, subject string) (string, access.Key, error) {
	store, err := l.store()
	if err != nil {
		return "", access.Key{}, err
	}
	apiKey, hash, err := NewSecret(l.Rand, keyPrefix[role])
	if err != nil {
		return "", access.Key{}, err
	}
	k := access.Key{ID: access.IDOf(hash), Role: role, Subject: subject, Hash: hash, CreatedAt: l.now()}
	if err := store.AddKey(ctx, k); err != nil {
		return "", access.Key{}, fmt.Errorf("new %s key: %w", role, err)
	}
	return apiKey, k, nil
}

// ListKeys lists every API key, revoked ones included, oldest first.
func (l *KeyLifecycle) ListKeys(ctx context.Context) ([]access.Key, error) {
	store, err := l.store()
	if err != nil {
		return nil, err
	}
	return store.ListKeys(ctx)
}

// findKey is the key of ID id (either case).
func (l *KeyLifecycle) findKey(ctx context.Context, id string) (access.Key, error) {
	if err := checkKeyID(id); err != nil {
		return access.Key{}, err
	}
	keys, err := l.ListKeys(ctx)
	if err != nil {
		return access.Key{}, err
	}
	for _, k := range keys {
		if strings.EqualFold(k.ID, id) {
			return k, nil
		}
	}
	return access.Key{}, fmt.Errorf("key %s: %w (vaxpass key list shows the keys)", strings.ToLower(id), vaxpass.ErrNotFound)
}

func checkKeyID(id string) error {
	if len(id) != access.IDLen || strings.Trim(strings.ToLower(id), "0123456789abcdef") != "" {
		return fmt.Errorf("%w: key ID %q: must be %d hex digits (vaxpass key list)", vaxpass.ErrInvalid, id, access.IDLen)
	}
	return nil
}

// RotateKey replaces the key of ID id: a new key of the same role and subject is stored,
// then the old one is revoked (so that there is never a moment without a valid key). A
// revoked key is not rotated (vaxpass.ErrConflict): make a new one with NewKey.
func (l *KeyLifecycle) RotateKey(ctx context.Context, id string) (string, access.Key, error) {
	old, err := l.findKey(ctx, id)
	if err != nil {
		return "", access.Key{}, err
	}
	if old.Revoked() {
		return "", access.Key{}, fmt.Errorf("rotate key %s: %w: it was revoked at %s", old.ID, vaxpass.ErrConflict, old.RevokedAt.Format("2006-01-02T15:04:05Z07:00"))
	}
	apiKey, k, err := l.addKey(ctx, old.Role, old.Subject)
	if err != nil {
		return "", access.Key{}, err
	}
	if _, err := l.Keys.RevokeKey(ctx, old.ID, l.now()); err != nil {
		// The new key stands; the old one is still valid: revoke it again by hand.
		return "", access.Key{}, fmt.Errorf("rotate key %s: the new key %s is stored but the old one is not revoked: %w", old.ID, k.ID, err)
	}
	e := audit.Entry{Action: ActionKeyRotate, Params: map[string]string{"role": string(k.Role), "subject": k.Subject, "key_id": k.ID, "replaced": old.ID}}
	if k.Role == access.Facility {
		e.Facilities = []string{k.Subject}
	}
	if err := l.audit(ctx, e); err != nil {
		return "", access.Key{}, err
	}
	return apiKey, k, nil
}

// RevokeKey revokes the key of ID id at once; revoking a revoked key changes nothing
// (the key is returned with its first revocation time, and no audit entry is added).
func (l *KeyLifecycle) RevokeKey(ctx context.Context, id string) (access.Key, error) {
	if err := checkKeyID(id); err != nil {
		return access.Key{}, err
	}
	store, err := l.store()
	if err != nil {
		return access.Key{}, err
	}
	at := l.now()
	k, err := store.RevokeKey(ctx, strings.ToLower(id), at)
	if errors.Is(err, vaxpass.ErrNotFound) {
		return access.Key{}, fmt.Errorf("key %s: %w (vaxpass key list shows the keys)", strings.ToLower(id), vaxpass.ErrNotFound)
	}
	if err != nil {
		return access.Key{}, fmt.Errorf("revoke key: %w", err)
	}
	if !k.RevokedAt.Equal(at) {
		return k, nil // revoked before
	}
	e := audit.Entry{Action: ActionKeyRevoke, Params: map[string]string{"role": string(k.Role), "subject": k.Subject, "key_id": k.ID}}
	if k.Role == access.Facility {
		e.Facilities = []string{k.Subject}
	}
	if err := l.audit(ctx, e); err != nil {
		return access.Key{}, err
	}
	return k, nil
}
