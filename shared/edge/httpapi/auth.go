package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/vaxpass/vaxpass/shared/domain/access"
	"github.com/vaxpass/vaxpass/shared/edge/apigw"
	"github.com/vaxpass/vaxpass/shared/stage/audit"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// KeyLookup finds an API key by its SHA-256 (the access key store of every role).
type KeyLookup interface {
	// KeyByHash returns the key whose SHA-256 is hash: vaxpass.ErrNotFound when unknown; a
	// revoked key is returned with RevokedAt set.
	KeyByHash(ctx context.Context, hash []byte) (access.Key, error)
}

// SecurityEvents counts security events (authentication failures, refusals) for ops.
type SecurityEvents interface {
	SecurityEvent(ctx context.Context, kind, route string)
}

// Kinds of security event the authenticator reports.
const (
	EventAuthFailed  = "auth_failed"  // a missing or unknown key
	EventAuthRevoked = "auth_revoked" // a revoked key used
	EventForbidden   = "forbidden"    // a valid key of a role the route does not allow
)

// Error code of a valid key of the wrong role.
const codeForbidden = "forbidden"

// errRevoked: the key was revoked (answered as any unusable key: 401).
var errRevoked = errors.New("revoked API key")

// Auth is the one authenticator of every keyed route: the Bearer key's SHA-256 is looked
// up, and the route runs only for a valid key of one of its roles, with the key's
// principal in its context (access.PrincipalFrom). The key itself and personal data are
// never logged; the route, the role and the key's ID are.
type Auth struct {
	Keys KeyLookup
	// Events, when set, is told every refusal.
	Events SecurityEvents
	Log    *slog.Logger
}

// Require returns h behind the key check: no, an unknown or a revoked key gets the
// contract's 401 (with WWW-Authenticate), a valid key of a role not in roles a 403, and
// h is not called. route names the route in logs and events ("" takes the request's
// route key). An ops principal also runs as the audit trail's actor (audit.WithActor).
func (a *Auth) Require(route string, roles []access.Role, h apigw.Handler) apigw.Handler {
	return func(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		name := route
		if name == "" {
			name = req.RouteKey
		}
		p, err := a.Authenticate(ctx, req)
		switch {
		case errors.Is(err, errRevoked):
			a.event(ctx, EventAuthRevoked, name)
			a.log().Info("revoked API key used", "route", name, "role", string(p.Role), "key_id", p.KeyID)
			return Unauthorized(), nil
		case errors.Is(err, vaxpass.ErrUnauthorized):
			a.event(ctx, EventAuthFailed, name)
			return Unauthorized(), nil
		case err != nil:
			a.log().Error("authentication failed", "route", name, "err", err)
			return apigw.InternalError(), nil
		}
		if !slices.Contains(roles, p.Role) {
			a.event(ctx, EventForbidden, name)
			a.log().Info("API key of another role refused", "route", name, "role", string(p.Role), "key_id", p.KeyID)
			return Forbidden(), nil
		}
		ctx = access.WithPrincipal(ctx, p)
		if p.Role == access.Ops {
			ctx = audit.WithActor(ctx, p.Subject)
		}
		return h(ctx, req)
	}
}

// Authenticate returns the principal of the request's key. Errors: vaxpass.ErrUnauthorized
// for a missing or unknown key, errRevoked (with the key's principal, for the log) for a
// revoked one, anything else for a failure of the key store.
func (a *Auth) Authenticate(ctx context.Context, req events.APIGatewayV2HTTPRequest) (access.Principal, error) {
	key, ok := bearerToken(req.Headers)
	if !ok {
		return access.Principal{}, vaxpass.ErrUnauthorized
	}
	k, err := a.Keys.KeyByHash(ctx, access.Hash(key))
	switch {
	case errors.Is(err, vaxpass.ErrNotFound):
		return access.Principal{}, vaxpass.ErrUnauthorized
	case err != nil:
		return access.Principal{}, fmt.Errorf("access keys: %w", err)
	case !k.Role.Valid() || k.Subject == "":
		// A key the store holds but cannot be acted on: as good as none.
		return access.Principal{}, fmt.Errorf("%w: key %s has no usable role", vaxpass.ErrUnauthorized, k.ID)
	}
	p := access.Principal{Role: k.Role, Subject: k.Subject, KeyID: k.ID}
	if p.KeyID == "" {
		p.KeyID = access.IDOf(access.Hash(key))
	}
	if k.Revoked() {
		return p, errRevoked
	}
	return p, nil
}

// Unauthorized is the contract's 401: no usable key.
func Unauthorized() events.APIGatewayV2HTTPResponse {
	resp := apigw.Error(http.StatusUnauthorized, codeUnauthorized, "missing, unknown or revoked API key")
	resp.Headers["WWW-Authenticate"] = `Bearer realm="vaxpass"`
	return resp
}

// Forbidden is the contract's 403: a valid key whose role may not use the route.
func Forbidden() events.APIGatewayV2HTTPResponse {
	return apigw.Error(http.StatusForbidden, codeForbidden, "this API key's role may not use this route")
}

func (a *Auth) event(ctx context.Context, kind, route string) {
	if a.Events != nil {
		a.Events.SecurityEvent(ctx, kind, route)
	}
}

func (a *Auth) log() *slog.Logger {
	if a.Log != nil {
		return a.Log
	}
	return slog.Default()
}

// principal is the request's principal (set by Auth.Require).
func principal(ctx context.Context) (access.Principal, error) {
	p, ok := access.PrincipalFrom(ctx)
	if !ok {
		// A handler wired without Auth.Require: refuse rather than serve anyone.
		return p, fmt.Errorf("%w: no principal in the request", vaxpass.ErrUnauthorized)
	}
	return p, nil
}

// auditActor names p in the audit trail: an ops actor by name, the others by role and
// subject (facility:<id>, clerk:<commune>, officer:<name>).
func auditActor(p access.Principal) string {
	if p.Role == access.Ops {
		return p.Subject
	}
	return string(p.Role) + ":" + p.Subject
}

// bearerToken reads "Authorization: Bearer KEY" (header name in any case, as HTTP allows;
// API Gateway lower-cases it).
func bearerToken(headers map[string]string) (string, bool) {
	auth, found := headers["authorization"]
	if !found {
		for k, v := range headers {
			if strings.EqualFold(k, "authorization") {
				auth, found = v, true
				break
			}
		}
	}
	if !found {
		return "", false
	}
	scheme, key, ok := strings.Cut(strings.TrimSpace(auth), " ")
	key = strings.TrimSpace(key)
	if !ok || !strings.EqualFold(scheme, "Bearer") || key == "" || len(key) > 512 {
		return "", false
	}
	return key, true
}
