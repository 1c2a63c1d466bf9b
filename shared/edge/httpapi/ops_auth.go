package httpapi

import (
	"context"

	"github.com/vaxpass/vaxpass/shared/domain/access"
	"github.com/vaxpass/vaxpass/shared/edge/apigw"
	"github.com/vaxpass/vaxpass/shared/stage/audit"
)

// OpsKeys is the former ops-only key check (an ops key's SHA-256 -> its actor). The
// handlers authenticate through Auth now; stores that still keep ops keys of their own
// implement it.
type OpsKeys interface {
	// OpsKeyValid reports whether hash is the SHA-256 of a valid ops key, and whose it is
	// (the actor name recorded in the audit trail).
	OpsKeyValid(ctx context.Context, hash []byte) (actor string, ok bool, err error)
}

// OpsAuth guards ops endpoints with a key of role ops (Authorization: Bearer KEY): the
// one authenticator (Auth) with the ops role. A facility, clerk or officer key never opens
// an ops endpoint, and an ops key never uploads doses.
type OpsAuth struct {
	Auth *Auth
}

// OpsActor returns the ops actor Wrap authenticated, or "" outside a wrapped handler.
func OpsActor(ctx context.Context) string {
	return audit.ActorFrom(ctx)
}

// WithOpsActor returns ctx carrying actor as the authenticated ops actor (for callers
// that authenticate another way, and for tests).
func WithOpsActor(ctx context.Context, actor string) context.Context {
	return audit.WithActor(ctx, actor)
}

// Wrap returns h behind ops authentication: without a valid ops key the answer is the
// contract's 401 JSON error (with WWW-Authenticate: Bearer), with a key of another role
// 403, and h is not called; with one, h runs with the actor in its context (OpsActor).
func (a *OpsAuth) Wrap(h apigw.Handler) apigw.Handler {
	return a.Auth.Require("", []access.Role{access.Ops}, h)
}
