package wire

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/vaxpass/vaxpass/shared/domain/access"
	"github.com/vaxpass/vaxpass/shared/stage/audit"
	"github.com/vaxpass/vaxpass/shared/stage/revocation"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// The operator's actions, the same on both backends: the CLI calls them (with the
// operator's credentials on AWS), the ops routes call the use cases behind them.

// OpsKeyStore keeps the ops keys: only their SHA-256, with the actor each names.
type OpsKeyStore interface {
	// OpsKeyValid reports whether hash is the SHA-256 of a valid ops key, and whose.
	OpsKeyValid(ctx context.Context, hash []byte) (actor string, ok bool, err error)
	AddOpsKey(ctx context.Context, actor string, sha256 []byte, createdAt time.Time) error
}

// facilityIDRe is what a facility ID may be: it names key files and KMS aliases.
var facilityIDRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// opsActorRe is what an ops actor name may be: it is written into the audit trail.
var opsActorRe = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// CheckFacility validates a facility registration.
func CheckFacility(id, name string) error {
	switch {
	case !facilityIDRe.MatchString(id):
		return fmt.Errorf("%w: facility id must be 1-64 of A-Z a-z 0-9 _ -", vaxpass.ErrInvalid)
	case name == "" || utf8.RuneCountInString(name) > 200 || !utf8.ValidString(name):
		return fmt.Errorf("%w: facility name must be 1-200 characters", vaxpass.ErrInvalid)
	}
	return nil
}

// AddFacility registers a vaccination site, creates its signing key and returns its API
// key. Only the key's SHA-256 is stored: the caller shows the key once.
func (s *System) AddFacility(ctx context.Context, id, name string) (string, error) {
	name = strings.TrimSpace(name)
	if err := CheckFacility(id, name); err != nil {
		return "", err
	}
	if _, err := s.p.Store.GetFacility(ctx, id); err == nil {
		return "", fmt.Errorf("%w: facility %s exists", vaxpass.ErrConflict, id)
	} else if !errors.Is(err, vaxpass.ErrNotFound) {
		return "", err
	}
	keys, err := s.accessKeys()
	if err != nil {
		return "", err
	}
	keyID, err := s.p.Keys.EnsureFacilityKey(ctx, id)
	if err != nil {
		return "", fmt.Errorf("facility signing key: %w", err)
	}
	f := vaxpass.Facility{ID: id, Name: name, KeyID: keyID, CreatedAt: s.p.Now().UTC()}
	if pk, ok := s.p.Keys.(PublicKeyReader); ok {
		pub, err := pk.PublicKeyOf(ctx, keyID)
		if err != nil {
			return "", fmt.Errorf("facility signing key: %w", err)
		}
		if f.PublicKey, err = x509.MarshalPKIXPublicKey(pub); err != nil {
			return "", fmt.Errorf("facility signing key: %w", err)
		}
	}
	// The API key is an access key of role facility, stored before the facility so that
	// no facility is ever without its key; a facility that cannot be stored has its key
	// revoked again. (The facility record keeps the key's hash too, for the
	// authentication of before the roles.)
	apiKey, k, err := s.addKey(ctx, access.Facility, id)
	if err != nil {
		return "", err
	}
	f.APIKeyHash = k.Hash
	if err := s.p.Store.AddFacility(ctx, f); err != nil {
		if _, rerr := keys.RevokeKey(ctx, k.ID, s.p.Now().UTC()); rerr != nil {
			err = errors.Join(err, fmt.Errorf("revoking its unused API key %s: %w", k.ID, rerr))
		}
		return "", err
	}
	e := audit.Entry{Action: audit.ActionFacilityAdd, Facilities: []string{id}, Params: map[string]string{"role": string(access.Facility), "key_id": k.ID}}
	if err := s.audit(ctx, e); err != nil {
		return "", err
	}
	return apiKey, nil
}

// PublicKeyReader is a key store that reads a key's public key by its ID; a facility's
// is then stored with its record (vaxpass.Facility.PublicKey).
type PublicKeyReader interface {
	PublicKeyOf(ctx context.Context, keyID string) (*ecdsa.PublicKey, error)
}

// NewOpsKey makes an ops key for actor: NewKey of role ops. The key is returned once.
func (s *System) NewOpsKey(ctx context.Context, actor string) (string, error) {
	key, _, err := s.NewKey(ctx, access.Ops, actor)
	return key, err
}

// Revoke revokes a certificate on an operator's word; the revocation and its audit entry
// (with the actor) are written together.
func (s *System) Revoke(ctx context.Context, actor, uvci, reason string) (revocation.Result, error) {
	rev, err := s.Revoker()
	if err != nil {
		return revocation.Result{}, err
	}
	return rev.Revoke(ctx, actor, uvci, reason)
}

// NewSecret makes a 256-bit key with prefix and its SHA-256.
func NewSecret(rand io.Reader, prefix string) (key string, hash []byte, err error) {
	b := make([]byte, 32)
	if _, err := io.ReadFull(rand, b); err != nil {
		return "", nil, fmt.Errorf("new key: %w", err)
	}
	key = prefix + base64.RawURLEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(key))
	return key, sum[:], nil
}

// audit appends e with the actor in ctx (audit.WithActor; "cli" when none) at now. Without
// an audit trail (tests of one use case) nothing is written.
func (s *System) audit(ctx context.Context, e audit.Entry) error {
	if s.p.Audit == nil {
		return nil
	}
	e.At = s.p.Now().UTC()
	if e.Actor = audit.ActorFrom(ctx); e.Actor == "" {
		e.Actor = "cli"
	}
	if err := s.p.Audit.Append(ctx, e); err != nil {
		return fmt.Errorf("audit %s: %w", e.Action, err)
	}
	return nil
}

// DeadLetters lists and redrives dead letters; a redrive is audited with the actor in ctx.
func (s *System) DeadLetters() (DeadLetters, error) {
	if s.p.DeadLetters == nil {
		return nil, fmt.Errorf("%w: DeadLetters", ErrNoPort)
	}
	return auditedDeadLetters{s.p.DeadLetters, s}, nil
}

type auditedDeadLetters struct {
	DeadLetters
	s *System
}

func (d auditedDeadLetters) Redrive(ctx context.Context, queue string, ids []string) (int, int, error) {
	moved, failed, err := d.DeadLetters.Redrive(ctx, queue, ids)
	if moved+failed > 0 {
		e := audit.Entry{Action: audit.ActionRedrive, Params: map[string]string{"queue": queue},
			Counts: map[string]int64{"moved": int64(moved), "failed": int64(failed)}}
		if aerr := d.s.audit(ctx, e); aerr != nil && err == nil {
			err = aerr
		}
	}
	return moved, failed, err
}
