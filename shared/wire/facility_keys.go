package wire

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/vaxpass/vaxpass/shared/stage/audit"
	"github.com/vaxpass/vaxpass/shared/stage/signing"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// Audit actions of a facility's signing key.
const (
	ActionFacilityKeyRotate = "facility_key_rotate"
	ActionFacilityKeyRevoke = "facility_key_revoke"
)

// MaxFormerFacilityKeys bounds a facility's former keys (each stays in its record, to
// verify what it signed): far more than a facility rotates in a programme's life.
const MaxFormerFacilityKeys = 500

// FacilityKeyRotator is what replacing a facility's signing key needs of the key store
// (key files on the embedded backend, KMS keys on AWS).
type FacilityKeyRotator interface {
	// NewFacilityKey makes a new signing key for the facility; it is not used until
	// UseFacilityKey.
	NewFacilityKey(ctx context.Context, facilityID string) (keyID string, pub *ecdsa.PublicKey, err error)
	// UseFacilityKey makes keyID the key the facility signs with.
	UseFacilityKey(ctx context.Context, facilityID, keyID string) error
	// CurrentFacilityKey is the key the facility signs with now.
	CurrentFacilityKey(ctx context.Context, facilityID string) (keyID string, err error)
	// DisableFacilityKey makes a revoked key unable to sign (a key file removed, a KMS
	// key's deletion scheduled).
	DisableFacilityKey(ctx context.Context, facilityID, keyID string) error
}

// FacilityKeyUpdater stores a facility's key fields (KeyID, PublicKey, FormerKeys),
// conditional on the stored KeyID being prevKeyID (vaxpass.ErrConflict otherwise).
type FacilityKeyUpdater interface {
	UpdateFacilityKey(ctx context.Context, f vaxpass.Facility, prevKeyID string) error
}

// FacilityKeyChange is what a rotation or revocation did (no personal data).
type FacilityKeyChange struct {
	FacilityID string `json:"facility_id"`
	// KeyID is the facility's new signing key; FormerKeyID the one it replaced.
	KeyID       string    `json:"key_id"`
	FormerKeyID string    `json:"former_key_id"`
	Revoked     bool      `json:"revoked"`
	At          time.Time `json:"at"`
}

// RotateFacilityKey gives the facility a new signing key: the facility signs with it from
// now on, and what the former key signed still verifies (the former key's public key
// stays in the facility's record).
func (s *System) RotateFacilityKey(ctx context.Context, facilityID string) (FacilityKeyChange, error) {
	return s.replaceFacilityKey(ctx, facilityID, false)
}

// RevokeFacilityKey rotates the facility's key and revokes the former one: central
// signing refuses what it signed from now on, and the key itself is disabled. People
// whose signature by the revoked key had not reached central signing yet are refused
// there (their messages dead-lettered); their doses stay marked signed, so the
// facility-sign reprocessing re-signs them with the new key: `vaxpass reprocess --stage
// facility-sign --facility F` (it signs again everyone whose stored facility signature
// does not cover their doses). Signatures central signing stored before the revocation
// and the certificates issued from them are kept.
func (s *System) RevokeFacilityKey(ctx context.Context, facilityID string) (FacilityKeyChange, error) {
	return s.replaceFacilityKey(ctx, facilityID, true)
}

func (s *System) replaceFacilityKey(ctx context.Context, facilityID string, revoke bool) (FacilityKeyChange, error) {
	what := "rotate"
	if revoke {
		what = "revoke"
	}
	fail := func(err error) (FacilityKeyChange, error) {
		return FacilityKeyChange{}, fmt.Errorf("%s the signing key of facility %s: %w", what, facilityID, err)
	}
	keys, ok := s.p.Keys.(FacilityKeyRotator)
	store, ok2 := s.p.Store.(FacilityKeyUpdater)
	if !ok || !ok2 {
		return fail(fmt.Errorf("%w: the key store or the store cannot replace a facility's key", ErrNoPort))
	}
	f, err := s.p.Store.GetFacility(ctx, facilityID)
	if err != nil {
		return fail(err)
	}
	if len(f.FormerKeys) >= MaxFormerFacilityKeys {
		return fail(fmt.Errorf("%w: the facility has %d former keys already", vaxpass.ErrInvalid, len(f.FormerKeys)))
	}
	// A run stopped between storing the record and switching the key store leaves the
	// store signing with the key before: finish that switch first.
	if cur, err := keys.CurrentFacilityKey(ctx, facilityID); err != nil {
		return fail(err)
	} else if cur != f.KeyID {
		if err := keys.UseFacilityKey(ctx, facilityID, f.KeyID); err != nil {
			return fail(fmt.Errorf("finish the switch to key %s: %w", f.KeyID, err))
		}
	}
	oldPub := f.PublicKey
	if len(oldPub) == 0 {
		pub, err := s.p.Keys.FacilityPublicKey(ctx, facilityID)
		if err != nil {
			return fail(fmt.Errorf("the current key's public key: %w", err))
		}
		if oldPub, err = x509.MarshalPKIXPublicKey(pub); err != nil {
			return fail(err)
		}
	}
	newID, newPub, err := keys.NewFacilityKey(ctx, facilityID)
	if err != nil {
		return fail(err)
	}
	now := s.p.Now().UTC()
	next := f
	next.KeyID = newID
	if next.PublicKey, err = x509.MarshalPKIXPublicKey(newPub); err != nil {
		return fail(err)
	}
	former := vaxpass.FacilityKeyVersion{KeyID: f.KeyID, PublicKey: oldPub, RetiredAt: now}
	if revoke {
		former.RevokedAt = now
	}
	next.FormerKeys = append(slices.Clone(f.FormerKeys), former)
	// The record first: from here the old key's signatures verify as a former key's (or
	// are refused, revoked), and the new key's verify as soon as it signs.
	if err := store.UpdateFacilityKey(ctx, next, f.KeyID); err != nil {
		// The new key was never used: disabled again, best effort.
		if derr := keys.DisableFacilityKey(ctx, facilityID, newID); derr != nil {
			err = errors.Join(err, fmt.Errorf("disable the unused key %s: %w", newID, derr))
		}
		return fail(err)
	}
	if err := keys.UseFacilityKey(ctx, facilityID, newID); err != nil {
		return fail(fmt.Errorf("the record names key %s but the key store still signs with %s (run the command again to finish): %w", newID, f.KeyID, err))
	}
	change := FacilityKeyChange{FacilityID: facilityID, KeyID: newID, FormerKeyID: f.KeyID, Revoked: revoke, At: now}
	action := ActionFacilityKeyRotate
	if revoke {
		action = ActionFacilityKeyRevoke
		if err := keys.DisableFacilityKey(ctx, facilityID, f.KeyID); err != nil {
			return change, fmt.Errorf("facility %s: key %s is revoked (central signing refuses it) but disabling it failed: %w", facilityID, f.KeyID, err)
		}
	}
	e := audit.Entry{Action: action, Facilities: []string{facilityID}, Params: map[string]string{"key_id": newID, "former_key_id": f.KeyID}}
	if err := s.audit(ctx, e); err != nil {
		return change, err
	}
	return change, nil
}

// FacilityKeyTTL is how long a facility's keys read from its record are used before
// being read again: a revocation holds everywhere within it. It is short because a
// revoked key must stop working at once, yet saves most reads (central signing handles
// a facility's page of people together). A signature no cached key verifies is checked
// against a fresh read at once, so a rotation needs no wait.
const FacilityKeyTTL = 2 * time.Second

// FacilityKeyring implements signing.FacilityKeyring over the facility records: the
// current key (the record's PublicKey, else the key store's) and the former keys, each
// facility's read at most once per FacilityKeyTTL. Central signing verifies with it.
type FacilityKeyring struct {
	Keys       signing.FacilityPublicKeys
	Facilities interface {
		GetFacility(ctx context.Context, id string) (vaxpass.Facility, error)
	}
	Now func() time.Time

	mu    sync.Mutex
	cache map[string]keyringEntry
}

type keyringEntry struct {
	keys []signing.FacilityKey
	read time.Time
}

// FacilityPublicKey implements signing.FacilityPublicKeys: the current key.
func (r *FacilityKeyring) FacilityPublicKey(ctx context.Context, facilityID string) (*ecdsa.PublicKey, error) {
	keys, err := r.FacilityKeyring(ctx, facilityID, false)
	if err != nil {
		return nil, err
	}
	return keys[0].Public, nil
}

// FacilityKeyring implements signing.FacilityKeyring.
func (r *FacilityKeyring) FacilityKeyring(ctx context.Context, facilityID string, fresh bool) ([]signing.FacilityKey, error) {
	now := r.Now()
	r.mu.Lock()
	e, ok := r.cache[facilityID]
	r.mu.Unlock()
	if ok && !fresh && now.Sub(e.read) < FacilityKeyTTL {
		return e.keys, nil
	}
	f, err := r.Facilities.GetFacility(ctx, facilityID)
	if err != nil {
		return nil, err
	}
	cur := signing.FacilityKey{KeyID: f.KeyID}
	if len(f.PublicKey) > 0 {
		if cur.Public, err = parseECKey(f.PublicKey); err != nil {
			return nil, fmt.Errorf("facility %s: key %s: %w", facilityID, f.KeyID, err)
		}
	} else if cur.Public, err = r.Keys.FacilityPublicKey(ctx, facilityID); err != nil {
		return nil, err
	}
	keys := []signing.FacilityKey{cur}
	for _, v := range slices.Backward(f.FormerKeys) {
		pub, err := parseECKey(v.PublicKey)
		if err != nil {
			return nil, fmt.Errorf("facility %s: former key %s: %w", facilityID, v.KeyID, err)
		}
		keys = append(keys, signing.FacilityKey{KeyID: v.KeyID, Public: pub, Revoked: !v.RevokedAt.IsZero()})
	}
	r.mu.Lock()
	if r.cache == nil {
		r.cache = map[string]keyringEntry{}
	}
	r.cache[facilityID] = keyringEntry{keys: keys, read: now}
	r.mu.Unlock()
	return keys, nil
}

func parseECKey(der []byte) (*ecdsa.PublicKey, error) {
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, err
	}
	ec, ok := pub.(*ecdsa.PublicKey)
	if !ok {
		return nil, errors.New("not an ECDSA public key")
	}
	return ec, nil
}

// facilityKeyring is central signing's view of the facilities' keys.
func (s *System) facilityKeyring() *FacilityKeyring {
	return &FacilityKeyring{Keys: s.p.Keys, Facilities: s.p.Store, Now: s.p.Now}
}
