package apigw

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/aws/aws-lambda-go/events"
)

// DefaultRouteKey is API Gateway's catch-all route key.
const DefaultRouteKey = "$default"

// ErrInvalidRouteKey marks a route key that API Gateway would not accept.
var ErrInvalidRouteKey = errors.New("invalid route key")

// The methods an HTTP API route may name; ANY matches them all.
var routeMethods = map[string]bool{
	"ANY": true, "DELETE": true, "GET": true, "HEAD": true,
	"OPTIONS": true, "PATCH": true, "POST": true, "PUT": true,
}

type segmentKind int

// Ordered from most to least specific: API Gateway prefers literal segments to path
// variables, and path variables to a greedy {name+}.
const (
	segLiteral segmentKind = iota
	segParam
	segGreedy
)

type segment struct {
	kind segmentKind
	text string // the literal, or the parameter's name
}

// RouteKey is a parsed API Gateway route key such as "GET /v1/doses/{source_id}".
type RouteKey struct {
	Method   string // "GET", …, or "ANY"; empty for $default
	Path     string // the path template; empty for $default
	segments []segment
}

// ParseRouteKey parses "METHOD /path" (path variables {name}, a final greedy {name+}) or
// "$default", with the rules API Gateway applies when a route is created.
func ParseRouteKey(key string) (RouteKey, error) {
	if key == DefaultRouteKey {
		return RouteKey{}, nil
	}
	method, path, ok := strings.Cut(key, " ")
	if !ok {
		return RouteKey{}, fmt.Errorf("%w %q: want \"METHOD /path\" or \"$default\"", ErrInvalidRouteKey, key)
	}
	if !routeMethods[method] {
		return RouteKey{}, fmt.Errorf("%w %q: unknown method %q", ErrInvalidRouteKey, key, method)
	}
	if !strings.HasPrefix(path, "/") {
		return RouteKey{}, fmt.Errorf("%w %q: path must start with /", ErrInvalidRouteKey, key)
	}
	parts := strings.Split(path[1:], "/")
	segs := make([]segment, 0, len(parts))
	seen := map[string]bool{}
	for i, p := range parts {
		switch {
		case strings.HasPrefix(p, "{") && strings.HasSuffix(p, "}"):
			name := p[1 : len(p)-1]
			kind := segParam
			if strings.HasSuffix(name, "+") {
				kind, name = segGreedy, strings.TrimSuffix(name, "+")
				if i != len(parts)-1 {
					return RouteKey{}, fmt.Errorf("%w %q: greedy variable {%s+} must be the last segment", ErrInvalidRouteKey, key, name)
				}
			}
			if name == "" || strings.ContainsAny(name, "{}+/ ") {
				return RouteKey{}, fmt.Errorf("%w %q: bad path variable %q", ErrInvalidRouteKey, key, p)
			}
			if seen[name] {
				return RouteKey{}, fmt.Errorf("%w %q: path variable %q used twice", ErrInvalidRouteKey, key, name)
			}
			seen[name] = true
			segs = append(segs, segment{kind: kind, text: name})
		case strings.ContainsAny(p, "{} "):
			return RouteKey{}, fmt.Errorf("%w %q: segment %q mixes text and a variable", ErrInvalidRouteKey, key, p)
		case p == "" && i != len(parts)-1:
			return RouteKey{}, fmt.Errorf("%w %q: empty path segment", ErrInvalidRouteKey, key)
		default:
			segs = append(segs, segment{kind: segLiteral, text: p})
		}
	}
	return RouteKey{Method: method, Path: path, segments: segs}, nil
}

// String gives the key back in API Gateway's form.
func (k RouteKey) String() string {
	if k.Method == "" {
		return DefaultRouteKey
	}
	return k.Method + " " + k.Path
}

// match reports whether path (as API Gateway hands it over: already percent-decoded) fits the
// template, and the path variables it binds.
func (k RouteKey) match(path string) (map[string]string, bool) {
	if !strings.HasPrefix(path, "/") {
		return nil, false
	}
	parts := strings.Split(path[1:], "/")
	var params map[string]string
	for i, seg := range k.segments {
		if i >= len(parts) {
			return nil, false
		}
		switch seg.kind {
		case segLiteral:
			if parts[i] != seg.text {
				return nil, false
			}
		case segParam:
			if parts[i] == "" {
				return nil, false
			}
			if params == nil {
				params = map[string]string{}
			}
			params[seg.text] = parts[i]
		case segGreedy:
			rest := strings.Join(parts[i:], "/")
			if rest == "" {
				return nil, false
			}
			if params == nil {
				params = map[string]string{}
			}
			params[seg.text] = rest
			return params, true
		}
	}
	return params, len(parts) == len(k.segments)
}

// moreSpecific reports whether k should win over o when both match a path: segment by segment
// literal beats variable beats greedy; then a named method beats ANY.
func (k RouteKey) moreSpecific(o RouteKey) bool {
	for i := 0; i < len(k.segments) && i < len(o.segments); i++ {
		if k.segments[i].kind != o.segments[i].kind {
			return k.segments[i].kind < o.segments[i].kind
		}
	}
	if len(k.segments) != len(o.segments) {
		return len(k.segments) > len(o.segments)
	}
	return k.Method != "ANY" && o.Method == "ANY"
}

// shape is the template with variable names erased: two routes of one method and one shape
// would be ambiguous, and API Gateway refuses them.
func (k RouteKey) shape() string {
	var b strings.Builder
	b.WriteString(k.Method)
	for _, s := range k.segments {
		b.WriteByte('/')
		switch s.kind {
		case segLiteral:
			b.WriteString(s.text)
		case segParam:
			b.WriteString("{}")
		case segGreedy:
			b.WriteString("{+}")
		}
	}
	return b.String()
}

type route struct {
	key     RouteKey
	handler Handler
}

// Router dispatches API Gateway HTTP API events to handlers by route key. It is itself a
// [Handler] (see [Router.Serve]), so one Lambda function can serve several routes, and it is
// the [RouteTable] a [Bridge] consults to fill in RouteKey and PathParameters the way API
// Gateway's route table does. The zero value is not usable: call [NewRouter].
type Router struct {
	routes   []route
	byKey    map[string]int
	shapes   map[string]string
	fallback Handler
	guard    *Guard
}

// SetGuard makes the Router enforce g's per-route limits: [Router.Serve] (a Lambda) checks
// each event's body length and takes its route's pool before the handler runs; a [Bridge]
// over the Router checks them before reading the request's body. Call it at start-up.
func (r *Router) SetGuard(g *Guard) { r.guard = g }

// Guard is the guard SetGuard set, or nil.
func (r *Router) Guard() *Guard { return r.guard }

// RouteKeyOf is the route an event goes to: its RouteKey when registered, else the route
// its method and RawPath match, else "$default".
func (r *Router) RouteKeyOf(req events.APIGatewayV2HTTPRequest) string {
	if _, ok := r.byKey[req.RouteKey]; ok {
		return req.RouteKey
	}
	if rt, _, _ := r.lookup(req.RequestContext.HTTP.Method, req.RawPath); rt != nil {
		return rt.key.String()
	}
	return DefaultRouteKey
}

// NewRouter returns an empty Router: every request gets the contract's 404.
func NewRouter() *Router {
	return &Router{byKey: map[string]int{}, shapes: map[string]string{}}
}

// Handle registers h for routeKey ("POST /v1/doses", "GET /v1/doses/{source_id}", or
// "$default" for requests no other route matches). Routes are fixed at start-up, so a
// malformed, duplicate or ambiguous key is a programming error and panics, like
// http.ServeMux.
func (r *Router) Handle(routeKey string, h Handler) {
	if h == nil {
		panic("apigw: nil handler for route " + routeKey)
	}
	k, err := ParseRouteKey(routeKey)
	if err != nil {
		panic("apigw: " + err.Error())
	}
	if k.Method == "" {
		if r.fallback != nil {
			panic("apigw: route $default registered twice")
		}
		r.fallback = h
		return
	}
	if _, dup := r.byKey[k.String()]; dup {
		panic("apigw: route registered twice: " + k.String())
	}
	if other, clash := r.shapes[k.shape()]; clash {
		panic(fmt.Sprintf("apigw: route %s is ambiguous with %s", k, other))
	}
	r.byKey[k.String()] = len(r.routes)
	r.shapes[k.shape()] = k.String()
	r.routes = append(r.routes, route{key: k, handler: h})
}

// Routes lists the registered route keys, sorted ("$default" included when registered): what
// a SAM template must route to this handler.
func (r *Router) Routes() []string {
	keys := make([]string, 0, len(r.routes)+1)
	for _, rt := range r.routes {
		keys = append(keys, rt.key.String())
	}
	if r.fallback != nil {
		keys = append(keys, DefaultRouteKey)
	}
	sort.Strings(keys)
	return keys
}

// RouteTable resolves a request to a route key the way API Gateway's route table does.
type RouteTable interface {
	// Route returns the most specific route key matching method and path (percent-decoded,
	// as in the event's RawPath) and the path variables it binds; ok is false when only
	// $default would take the request.
	Route(method, path string) (routeKey string, params map[string]string, ok bool)
}

// Route implements [RouteTable].
func (r *Router) Route(method, path string) (string, map[string]string, bool) {
	rt, params, _ := r.lookup(method, path)
	if rt == nil {
		return "", nil, false
	}
	return rt.key.String(), params, true
}

// lookup finds the most specific route for method and path, or, when none takes the method,
// the methods that would have matched the path (for 405's Allow header).
func (r *Router) lookup(method, path string) (*route, map[string]string, []string) {
	var best *route
	var bestParams map[string]string
	allowed := map[string]bool{}
	for i := range r.routes {
		rt := &r.routes[i]
		params, ok := rt.key.match(path)
		if !ok {
			continue
		}
		if rt.key.Method != "ANY" && rt.key.Method != method {
			allowed[rt.key.Method] = true
			continue
		}
		if best == nil || rt.key.moreSpecific(best.key) {
			best, bestParams = rt, params
		}
	}
	if best != nil {
		return best, bestParams, nil
	}
	methods := make([]string, 0, len(allowed))
	for m := range allowed {
		methods = append(methods, m)
	}
	sort.Strings(methods)
	return nil, nil, methods
}

// Serve is the Router as a Lambda handler. An event whose RouteKey names a registered route
// goes straight to it (API Gateway already chose); for "$default" or an unknown key the
// Router matches RawPath and method itself, so one function behind a $default route serves
// every path. PathParameters are filled from RawPath when it fits the route's template and
// RouteKey is set to the matched route, so handlers see the same event either way. No match:
// the $default handler if registered, else the contract's 405 (with Allow) when the path
// exists under other methods, else 404.
//
// With a guard ([Router.SetGuard]), its limits are checked first.
func (r *Router) Serve(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	if r.guard != nil {
		return r.guard.Wrap(r.RouteKeyOf, r.dispatch)(ctx, req)
	}
	return r.dispatch(ctx, req)
}

// dispatch is Serve without the guard.
func (r *Router) dispatch(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	if i, ok := r.byKey[req.RouteKey]; ok {
		rt := &r.routes[i]
		// Behind a custom domain's API mapping RawPath may carry a prefix the template lacks;
		// then API Gateway's own PathParameters stand.
		if params, ok := rt.key.match(req.RawPath); ok {
			req.PathParameters = params
		}
		return rt.handler(ctx, req)
	}
	method := req.RequestContext.HTTP.Method
	rt, params, allowed := r.lookup(method, req.RawPath)
	switch {
	case rt != nil:
		req.RouteKey = rt.key.String()
		req.PathParameters = params
		return rt.handler(ctx, req)
	case r.fallback != nil:
		return r.fallback(ctx, req)
	case len(allowed) > 0:
		return MethodNotAllowed(allowed), nil
	default:
		return NotFound(), nil
	}
}

// PathParameter returns the named path variable of a routed request, or "" when absent.
func PathParameter(req events.APIGatewayV2HTTPRequest, name string) string {
	return req.PathParameters[name]
}
