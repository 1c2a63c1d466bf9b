package apigw

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// SecuritySink is told of the security events of the edge (never personal data: a kind and
// a route key). Declared here, where it is used; the ops side counts and logs them.
type SecuritySink interface {
	SecurityEvent(ctx context.Context, kind, route string)
}

// Kinds of security event the edge reports.
const (
	EventBodyTooLarge = "body_too_large" // a body over its route's limit
	EventBusy         = "busy"           // a route's concurrency bound hit
	EventAuthFailed   = "auth_failed"    // a keyed route without a key, refused unread
)

// Error codes of the edge's own refusals.
const (
	CodeBodyTooLarge = "body_too_large"
	CodeBusy         = "busy"
	CodeUnauthorized = "unauthorized"
)

// ErrInvalidGuard marks a guard configuration that cannot work.
var ErrInvalidGuard = errors.New("invalid guard configuration")

// RouteLimit is what one route may cost.
type RouteLimit struct {
	// MaxBody bounds the request body (bytes as sent, before any base64); 0 takes the
	// default route's.
	MaxBody int64
	// Pool names the concurrency bound the route shares ("" for none).
	Pool string
	// Keyed routes need an Authorization header: a request without one is refused with 401
	// before its body is read.
	Keyed bool
}

// Pool bounds how many requests of its routes run at once.
type Pool struct {
	Slots int // requests at once, >= 1
	// Waiting requests may wait for a slot (their bodies unread), at most MaxWait; past
	// Waiting, or after MaxWait, a request gets 503 busy with Retry-After.
	Waiting int
	MaxWait time.Duration
}

// Limits are the per-route limits of an API: routes by route key ("POST /v1/verify"),
// Default for every other one (requests no route takes included).
type Limits struct {
	Default RouteLimit
	Routes  map[string]RouteLimit
	Pools   map[string]Pool
}

// Guard enforces Limits: body sizes checked before a byte is read (the Bridge) or, on AWS,
// before the event's body is decoded; bounded concurrency per pool; keyed routes without
// a key refused unread. Safe for concurrent use.
type Guard struct {
	lim   Limits
	pools map[string]*semaphore
	// Events, when set, is told every refusal. Set it before serving.
	Events SecuritySink
	// Unauthorized, when set, is the answer to a keyed route's request without a key (the
	// contract's 401 of the authenticator); nil: a 401 "unauthorized" with WWW-Authenticate.
	Unauthorized func() events.APIGatewayV2HTTPResponse
	// Authenticate, when set, checks the request's key before its body is read (headers
	// only in req): refused is true for a missing, unknown or revoked key, with the answer
	// to send. Nil: only the Authorization header's presence is checked at the edge.
	Authenticate func(ctx context.Context, req events.APIGatewayV2HTTPRequest) (resp events.APIGatewayV2HTTPResponse, refused bool)
}

// NewGuard checks lim and returns its Guard.
func NewGuard(lim Limits) (*Guard, error) {
	if lim.Default.MaxBody <= 0 {
		return nil, fmt.Errorf("%w: the default route needs a body limit", ErrInvalidGuard)
	}
	g := &Guard{lim: lim, pools: map[string]*semaphore{}}
	for name, p := range lim.Pools {
		if p.Slots < 1 || p.Waiting < 0 || p.MaxWait < 0 {
			return nil, fmt.Errorf("%w: pool %s: Slots >= 1, Waiting and MaxWait >= 0", ErrInvalidGuard, name)
		}
		g.pools[name] = newSemaphore(p)
	}
	for key, r := range lim.Routes {
		if r.Pool != "" && g.pools[r.Pool] == nil {
			return nil, fmt.Errorf("%w: route %s names pool %s, which is not configured", ErrInvalidGuard, key, r.Pool)
		}
	}
	if lim.Default.Pool != "" && g.pools[lim.Default.Pool] == nil {
		return nil, fmt.Errorf("%w: the default route names pool %s, which is not configured", ErrInvalidGuard, lim.Default.Pool)
	}
	return g, nil
}

// Limit is routeKey's limit, the default's fields filling what it leaves zero.
func (g *Guard) Limit(routeKey string) RouteLimit {
	l, ok := g.lim.Routes[routeKey]
	if !ok {
		return g.lim.Default
	}
	if l.MaxBody <= 0 {
		l.MaxBody = g.lim.Default.MaxBody
	}
	return l
}

func (g *Guard) event(ctx context.Context, kind, route string) {
	if g != nil && g.Events != nil {
		g.Events.SecurityEvent(ctx, kind, route)
	}
}

// tooLarge is the answer to a body over its route's limit, and the event.
func (g *Guard) tooLarge(ctx context.Context, route string, limit int64) *RequestError {
	g.event(ctx, EventBodyTooLarge, route)
	return &RequestError{Status: http.StatusRequestEntityTooLarge, Code: CodeBodyTooLarge,
		Message: fmt.Sprintf("request body exceeds this route's limit of %d bytes", limit), Err: ErrBodyTooLarge}
}

// unauthenticated answers a keyed route's request that carries no usable key.
func (g *Guard) unauthenticated(ctx context.Context, route string, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, bool) {
	if g.Authenticate != nil {
		return g.Authenticate(ctx, req)
	}
	if v := req.Headers["authorization"]; strings.TrimSpace(v) != "" {
		return events.APIGatewayV2HTTPResponse{}, false
	}
	g.event(ctx, EventAuthFailed, route)
	if g.Unauthorized != nil {
		return g.Unauthorized(), true
	}
	resp := Error(http.StatusUnauthorized, CodeUnauthorized, "missing, unknown or revoked API key")
	resp.Headers["WWW-Authenticate"] = `Bearer realm="vaxpass"`
	return resp, true
}

// acquire takes a slot of the route's pool; release gives it back. busy is set (and the
// event told) when no slot came in time.
func (g *Guard) acquire(ctx context.Context, route string, l RouteLimit) (release func(), busy *events.APIGatewayV2HTTPResponse) {
	s := g.pools[l.Pool]
	if s == nil {
		return func() {}, nil
	}
	if !s.acquire(ctx) {
		g.event(ctx, EventBusy, route)
		resp := Busy(s.retryAfter())
		return nil, &resp
	}
	return s.release, nil
}

// Wrap guards a Lambda handler: API Gateway has read the whole body already (at most
// 10 MB), so what is left to bound is the work: the body's length is checked first thing,
// before it is base64-decoded or parsed, then the route's pool (per function instance)
// is taken. route resolves the event's route key when API Gateway sent "$default" (nil:
// the event's RouteKey).
func (g *Guard) Wrap(route func(events.APIGatewayV2HTTPRequest) string, h Handler) Handler {
	return func(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		key := req.RouteKey
		if route != nil {
			key = route(req)
		}
		l := g.Limit(key)
		if n := eventBodyBytes(req); n > l.MaxBody {
			return g.tooLarge(ctx, key, l.MaxBody).Response(), nil
		}
		release, busy := g.acquire(ctx, key, l)
		if busy != nil {
			return *busy, nil
		}
		defer release()
		return h(ctx, req)
	}
}

// eventBodyBytes is the size of the body as sent, without decoding it: a base64 body's
// decoded length follows from its encoded one.
func eventBodyBytes(req events.APIGatewayV2HTTPRequest) int64 {
	if !req.IsBase64Encoded {
		return int64(len(req.Body))
	}
	n := int64(base64.StdEncoding.DecodedLen(len(req.Body)))
	for i := len(req.Body) - 1; i >= 0 && i >= len(req.Body)-2 && req.Body[i] == '='; i-- {
		n--
	}
	return n
}

// Busy is the contract's 503 for a route at its concurrency bound, with Retry-After in
// whole seconds (at least 1).
func Busy(retryAfter time.Duration) events.APIGatewayV2HTTPResponse {
	secs := max(int((retryAfter+time.Second-1)/time.Second), 1)
	resp := Error(http.StatusServiceUnavailable, CodeBusy,
		fmt.Sprintf("the server is busy with requests like this one; retry after %d seconds", secs))
	resp.Headers["Retry-After"] = fmt.Sprint(secs)
	return resp
}

// semaphore is a pool's slots with a bounded number of waiters.
type semaphore struct {
	slots   chan struct{}
	waiters chan struct{}
	maxWait time.Duration
}

func newSemaphore(p Pool) *semaphore {
	return &semaphore{slots: make(chan struct{}, p.Slots), waiters: make(chan struct{}, p.Waiting), maxWait: p.MaxWait}
}

// acquire takes a slot: at once, or after waiting (when a waiter's place is free) at most
// maxWait or until ctx ends.
func (s *semaphore) acquire(ctx context.Context) bool {
	select {
	case s.slots <- struct{}{}:
		return true
	default:
	}
	if s.maxWait <= 0 {
		return false
	}
	select {
	case s.waiters <- struct{}{}:
	default:
		return false // the queue is full: no unbounded queueing
	}
	defer func() { <-s.waiters }()
	t := time.NewTimer(s.maxWait)
	defer t.Stop()
	select {
	case s.slots <- struct{}{}:
		return true
	case <-t.C:
		return false
	case <-ctx.Done():
		return false
	}
}

func (s *semaphore) release() { <-s.slots }

// retryAfter suggests when to come back: the longest a waiter would have waited.
func (s *semaphore) retryAfter() time.Duration { return max(s.maxWait, time.Second) }
