package httpapi

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/vaxpass/vaxpass/shared/edge/apigw"
	"github.com/vaxpass/vaxpass/shared/stage/audit"
)

// OpsKeys authenticates ops callers (the ministry's operators) by the SHA-256 of their ops
// key. The ops credential is separate from facility API keys: a facility key never opens
// an ops endpoint and an ops key never uploads doses.
type OpsKeys interface {
	// OpsKeyValid reports whether hash is the SHA-256 of a valid ops key, and whose it is
	// (the actor name recorded in the audit trail).
	OpsKeyValid(ctx context.Context, hash []byte) (actor string, ok bool, err error)
}

// OpsAuth guards ops endpoints and pages with an ops key (Authorization: Bearer KEY).
type OpsAuth struct {
	Keys OpsKeys
	Log  *slog.Logger
}

// Error code of a missing or unknown ops key.
const codeOpsUnauthorized = "unauthorized"

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
// contract's 401 JSON error (with WWW-Authenticate: Bearer) and h is not called; with
// one, h runs with the actor in its context (OpsActor).
func (a *OpsAuth) Wrap(h apigw.Handler) apigw.Handler {
	return func(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		actor, err := a.Authenticate(ctx, req)
		if err != nil {
			a.log().Error("ops authentication failed", "route", req.RouteKey, "err", err)
			return apigw.InternalError(), nil
		}
		if actor == "" {
			resp := apigw.Error(http.StatusUnauthorized, codeOpsUnauthorized, "missing or unknown ops key")
			resp.Headers["WWW-Authenticate"] = `Bearer realm="vaxpass-ops"`
			return resp, nil
		}
		return h(WithOpsActor(ctx, actor), req)
	}
}

// Authenticate returns the actor of the request's ops key, "" when the request carries
// no valid one; err is a failure of the key store only.
func (a *OpsAuth) Authenticate(ctx context.Context, req events.APIGatewayV2HTTPRequest) (string, error) {
	key, ok := bearerToken(req.Headers)
	if !ok {
		return "", nil
	}
	sum := sha256.Sum256([]byte(key))
	actor, valid, err := a.Keys.OpsKeyValid(ctx, sum[:])
	if err != nil {
		return "", fmt.Errorf("ops keys: %w", err)
	}
	if !valid {
		return "", nil
	}
	if actor == "" {
		actor = "ops"
	}
	return actor, nil
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

func (a *OpsAuth) log() *slog.Logger {
	if a.Log != nil {
		return a.Log
	}
	return slog.Default()
}
