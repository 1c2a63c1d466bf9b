// Package vaxpass holds the entities the pipeline stores and passes between stages --
// a stored dose, a facility, a facility signature, a certificate -- and the errors every
// stage and adapter shares. It has no dependencies beyond the domain packages.
package vaxpass

import (
	"context"
	"errors"
	"time"
)

// Errors shared by use cases and adapters; the edge maps them to status codes once.
var (
	// ErrNotFound: no such record, person, facility or certificate.
	ErrNotFound = errors.New("not found")
	// ErrConflict: a conditional write lost against a concurrent one; retry from a fresh read.
	ErrConflict = errors.New("conflict")
	// ErrUnauthorized: a missing or unknown credential.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrInvalid: the caller sent something malformed; wrapped errors say what.
	ErrInvalid = errors.New("invalid input")
	// ErrUnavailable: the storage cannot take writes for now (disk full, read-only
	// file system); nothing was written and the same request can be tried again later.
	ErrUnavailable = errors.New("storage unavailable")
)

// Facility is a vaccination site: it uploads doses with its API key and signs them with its key.
type Facility struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// APIKeyHash is SHA-256 of the API key; the key itself is never stored.
	APIKeyHash []byte `json:"api_key_hash"`
	// KeyID names the facility's signing key in the key store (KMS key ARN or local file).
	KeyID string `json:"key_id"`
	// PublicKey is the signing key's public key (PKIX DER), kept with the record so that
	// verifiers read it with the facility instead of asking the key store (KMS's
	// GetPublicKey quota is small next to central signing's instances x facilities).
	PublicKey []byte    `json:"public_key,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	// FormerKeys are the signing keys the facility used before KeyID, oldest first: a
	// signature one of them made still verifies unless that key was revoked.
	FormerKeys []FacilityKeyVersion `json:"former_keys,omitempty"`
}

// FacilityKeyVersion is a facility's former signing key: its ID in the key store, its
// public key (PKIX DER), when it was replaced and, for a revoked key, when it was revoked
// (central signing then refuses what it signed).
type FacilityKeyVersion struct {
	KeyID     string    `json:"key_id"`
	PublicKey []byte    `json:"public_key"`
	RetiredAt time.Time `json:"retired_at"`
	RevokedAt time.Time `json:"revoked_at,omitzero"`
}

// CertificateStatus values of the contract.
const (
	CertIssued  = "issued"
	CertRevoked = "revoked"
	CertExpired = "expired"
)

// InvalidFieldError is ErrInvalid naming the request field at fault, so that the edge can
// answer with a 400 that names it. Err says what is wrong, for logs.
type InvalidFieldError struct {
	Field string
	Err   error
}

func (e *InvalidFieldError) Error() string { return e.Field + ": " + e.Err.Error() }

// Unwrap makes errors.Is(err, ErrInvalid) hold, and keeps the cause reachable.
func (e *InvalidFieldError) Unwrap() []error { return []error{ErrInvalid, e.Err} }

// StorageWatcher learns that a store refused a write for want of storage (ErrUnavailable:
// a full disk, a read-only file system). The embedded backend's pumps put one in the
// context of each handler call: a handler reports failed items without their reasons
// (SQS and DynamoDB partial batch responses), and a write that waits for storage must not
// count towards dead-lettering.
type StorageWatcher interface{ StorageUnavailable(err error) }

type storageWatcherKey struct{}

// WithStorageWatcher returns ctx carrying w.
func WithStorageWatcher(ctx context.Context, w StorageWatcher) context.Context {
	return context.WithValue(ctx, storageWatcherKey{}, w)
}

// StorageWatcherFrom returns the watcher in ctx, if any.
func StorageWatcherFrom(ctx context.Context) (StorageWatcher, bool) {
	w, ok := ctx.Value(storageWatcherKey{}).(StorageWatcher)
	return w, ok
}
