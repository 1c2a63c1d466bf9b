package awsops

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/vaxpass/vaxpass/shared/domain/access"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// Ops keys of before the roles: pk "OPSKEY", sk hex(SHA-256 of the key), actor S,
// created_at S, revoked_at S (once revoked). They are read (KeyByHash, ListKeys) and
// revoked (RevokeKey) as access keys of role ops whose subject is their actor; new ops
// keys are access keys (access_keys.go).
const (
	pkOpsKey      = "OPSKEY"
	attrActor     = "actor"
	attrCreatedAt = "created_at"
	attrRevokedAt = "revoked_at"
)

func checkOpsKeyHash(sum []byte) error {
	if len(sum) != sha256.Size {
		return fmt.Errorf("%w: key hash is %d bytes, want a SHA-256 (%d)", vaxpass.ErrInvalid, len(sum), sha256.Size)
	}
	return nil
}

// OpsKeyValid implements api.OpsKeys: hash is a valid key of role ops (KeyByHash: one
// strongly consistent read, so that a revoked key is refused at once).
func (st *Store) OpsKeyValid(ctx context.Context, sum []byte) (string, bool, error) {
	k, err := st.KeyByHash(ctx, sum)
	if errors.Is(err, vaxpass.ErrNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("awsops: ops key: %w", err)
	}
	if k.Role != access.Ops || k.Revoked() {
		return "", false, nil
	}
	return k.Subject, true, nil
}

// AddOpsKey stores a new ops key for actor: an access key of role ops (AddKey);
// createdAt zero is now.
func (st *Store) AddOpsKey(ctx context.Context, actor string, sum []byte, createdAt time.Time) error {
	return st.AddKey(ctx, access.Key{Role: access.Ops, Subject: actor, Hash: sum, CreatedAt: createdAt})
}
