// Package access names who may call the API: the roles, the keys that carry them and
// the principal a request runs as. It depends on nothing but the standard library.
package access

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"time"
)

// Role is what a key may do. Each role is a key of its own: a facility key never opens
// a clerk's or an officer's routes, and the reverse.
type Role string

const (
	// Facility is a vaccination site: its own records (upload, read, sign). It never
	// sees registry values; it may see that candidates exist.
	Facility Role = "facility"
	// Clerk is a commune clerk: one commune's worklists and corrections.
	Clerk Role = "clerk"
	// Officer is a registry officer (the police side): the only role that sees registry
	// candidates; each disclosure is audited.
	Officer Role = "officer"
	// Ops is the ministry's operators: stats, reprocessing, dead letters, keys.
	Ops Role = "ops"
)

// Roles are every role, in the order lists show them.
var Roles = []Role{Facility, Clerk, Officer, Ops}

// Valid reports whether r is one of Roles.
func (r Role) Valid() bool {
	switch r {
	case Facility, Clerk, Officer, Ops:
		return true
	}
	return false
}

// ErrInvalid is wrapped by every validation error of this package.
var ErrInvalid = errors.New("access: invalid")

var (
	facilityIDRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	// A commune code is the statistics office's five digits; data that prefixes it with
	// the province (seven digits, as the synthetic generator writes) is taken too.
	communeRe = regexp.MustCompile(`^[0-9]{5,7}$`)
	actorRe   = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)
)

// CheckSubject validates the subject of a key of role r: a facility ID for Facility, a
// commune code (5 to 7 digits) for Clerk, an actor name (lower case, digits, . _ -) for
// Officer and Ops, written into the audit trail.
func CheckSubject(r Role, subject string) error {
	var ok bool
	var want string
	switch r {
	case Facility:
		ok, want = facilityIDRe.MatchString(subject), "a facility ID"
	case Clerk:
		ok, want = communeRe.MatchString(subject), "a commune code of 5 to 7 digits"
	case Officer, Ops:
		ok, want = actorRe.MatchString(subject), "an actor name of lower-case letters, digits, '.', '_' or '-' (at most 64)"
	default:
		return fmt.Errorf("%w: role %q: must be one of facility, clerk, officer, ops", ErrInvalid, r)
	}
	if !ok {
		return fmt.Errorf("%w: %s key subject: must be %s", ErrInvalid, r, want)
	}
	return nil
}

// IDLen is how many hex digits of a key's SHA-256 name it (Key.ID): enough to tell keys
// apart in a list, too few to be the key's hash.
const IDLen = 12

// Hash is the SHA-256 of an API key as presented: the only form a key is stored in.
func Hash(apiKey string) []byte {
	sum := sha256.Sum256([]byte(apiKey))
	return sum[:]
}

// IDOf is the key ID of a key hash (Hash): its first IDLen hex digits.
func IDOf(hash []byte) string {
	h := hex.EncodeToString(hash)
	if len(h) > IDLen {
		h = h[:IDLen]
	}
	return h
}

// Key is an API key as stored and listed: never the key itself.
type Key struct {
	// ID names the key in lists, rotation and revocation (IDOf its hash).
	ID      string `json:"id"`
	Role    Role   `json:"role"`
	Subject string `json:"subject"`
	// Hash is the key's SHA-256; lists leave it out.
	Hash      []byte    `json:"-"`
	CreatedAt time.Time `json:"created_at"`
	// RevokedAt is zero while the key is valid; a revoked key stops working at once.
	RevokedAt time.Time `json:"revoked_at,omitzero"`
}

// Revoked reports whether k no longer opens anything.
func (k Key) Revoked() bool { return !k.RevokedAt.IsZero() }

// Principal is who a request runs as, once its key was found valid.
type Principal struct {
	Role    Role
	Subject string
	KeyID   string
}

type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal of ctx, ok false outside an authenticated request.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}
