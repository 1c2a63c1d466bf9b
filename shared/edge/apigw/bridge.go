package apigw

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

// Bridge is an http.Handler that runs a Lambda [Handler] the way API Gateway HTTP API
// (payload format 2.0, stage "$default") runs it: each net/http request becomes the event
// API Gateway would send, and the handler's response is written back as API Gateway would
// write it. `vaxpass serve` mounts one Bridge for the API paths.
//
// Faithful where it matters for code that must behave the same locally and in AWS:
//   - RawPath and requestContext.http.path are percent-decoded, as HTTP APIs deliver them
//     (measured on AWS): "%20" arrives as a space and "%2F" as "/" before route matching,
//     a "%25" sequence is decoded a second time (and refused when that fails), and a "?"
//     produced by decoding cuts the path. So a path variable can never carry "/", "?" or "%".
//   - RawQueryString stays encoded; QueryStringParameters are decoded, repeated keys joined
//     with commas.
//   - Header names are lower-cased, repeated headers joined with commas; Cookie headers move
//     to Cookies; host, content-length and x-forwarded-* are set as API Gateway sets them.
//   - The body is text for text/*, application/json, application/xml and
//     application/javascript, and base64 (IsBase64Encoded) for anything else, including no
//     content type (see IsTextContentType).
//   - A body over MaxBodyBytes (API Gateway: 10 MB) is refused with 413 before it is read;
//     so is an event over Lambda's 6 MB invocation limit, and a response over that limit
//     becomes a 500, as it would in AWS.
//   - Stricter than API Gateway, with a [Guard]: the route is found before the body is
//     read, and its own limits applied first (a keyed route without a key: 401; a declared
//     length over the route's limit: 413 body_too_large; its concurrency pool full: 503
//     busy); a body without a declared length is cut at the route's limit.
//
// Where API Gateway would answer on its own (no route, malformed Lambda response, function
// error) the Bridge answers with the contract's JSON errors instead.
type Bridge struct {
	// Routes fills RouteKey and PathParameters; a request it does not resolve is sent with
	// RouteKey "$default". Usually the same *Router as Handler.
	Routes RouteTable
	// Handler receives every event. Nil: Routes.(*Router).Serve when Routes is a *Router.
	Handler Handler
	// Guard applies per-route limits before a request's body is read (see [Guard]); nil:
	// the router's guard when Handler is nil and Routes is a *Router with one. A Handler
	// set here must not apply the same guard again (it would take two slots).
	Guard *Guard
	// MaxBodyBytes caps the request body; 0 means MaxRequestBodyBytes.
	MaxBodyBytes int64
	// MaxEventBytes caps the JSON size of the event and of the response; 0 means
	// LambdaPayloadLimit, negative means no cap.
	MaxEventBytes int
	// Now is the clock for requestContext.time; nil means time.Now.
	Now func() time.Time
	// Random feeds request IDs and trace IDs; nil means crypto/rand.
	Random io.Reader
	// Logger receives one line per failed request (never personal data); nil discards.
	Logger *slog.Logger
	// AccountID and APIID fill the request context; they default to placeholders.
	AccountID, APIID string
}

// ServeHTTP implements http.Handler.
func (b *Bridge) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h, guard := b.Handler, b.Guard
	if h == nil {
		if router, ok := b.Routes.(*Router); ok {
			// The Bridge applies the router's guard itself, before reading the body.
			h = router.dispatch
			if guard == nil {
				guard = router.guard
			}
		}
	}
	ev, release, refusal, err := b.event(w, r, guard)
	if err != nil {
		writeEventResponse(w, ev.RequestContext.RequestID, ErrorResponse(err), b.logger())
		return
	}
	if refusal != nil {
		writeEventResponse(w, ev.RequestContext.RequestID, *refusal, b.logger())
		return
	}
	defer release()
	logger := b.logger().With("route", ev.RouteKey, "request_id", ev.RequestContext.RequestID)
	if h == nil {
		logger.Error("bridge has no handler")
		writeEventResponse(w, ev.RequestContext.RequestID, InternalError(), logger)
		return
	}
	ctx := lambdacontext.NewContext(r.Context(), &lambdacontext.LambdaContext{AwsRequestID: ev.RequestContext.RequestID})
	resp, err := h(ctx, ev)
	if err != nil {
		// Lambda reports a function error and API Gateway answers 500 without a body the
		// contract knows; the error class is logged, never sent.
		logger.Error("handler returned an error", "error", err.Error())
		resp = InternalError()
	} else if limit := b.maxEventBytes(); limit > 0 {
		if n, merr := responseSize(resp); merr != nil || n > limit {
			logger.Error("handler response exceeds the Lambda payload limit", "limit", limit)
			resp = InternalError()
		}
	}
	writeEventResponse(w, ev.RequestContext.RequestID, resp, logger)
}

func (b *Bridge) logger() *slog.Logger {
	if b.Logger != nil {
		return b.Logger
	}
	return slog.New(slog.DiscardHandler)
}

func (b *Bridge) maxEventBytes() int {
	switch {
	case b.MaxEventBytes == 0:
		return LambdaPayloadLimit
	case b.MaxEventBytes < 0:
		return 0
	default:
		return b.MaxEventBytes
	}
}

// requestTimeLayout is requestContext.time's layout, e.g. "21/Apr/2020:15:08:21 +0000".
const requestTimeLayout = "02/Jan/2006:15:04:05 -0700"

// Event converts r into the event API Gateway would send. On failure the returned event
// still carries its request ID and the error is a *RequestError (400 bad path, 413 too
// large).
func (b *Bridge) Event(r *http.Request) (events.APIGatewayV2HTTPRequest, error) {
	ev, release, _, err := b.event(nil, r, nil)
	if release != nil {
		release()
	}
	return ev, err
}

// event builds the event. With a guard the route is found first and its limits applied
// before a byte of the body is read: a keyed route without a key, a declared length over
// the route's limit and a full pool give refusal (the answer to send); a body that turns
// out too long while read is an error. release gives the pool's slot back (non-nil when
// neither is set).
func (b *Bridge) event(w http.ResponseWriter, r *http.Request, g *Guard) (ev events.APIGatewayV2HTTPRequest, release func(), refusal *events.APIGatewayV2HTTPResponse, err error) {
	now := time.Now
	if b.Now != nil {
		now = b.Now
	}
	t := now().UTC()
	random := b.Random
	if random == nil {
		random = rand.Reader
	}
	ev = events.APIGatewayV2HTTPRequest{Version: "2.0"}
	ev.RequestContext.RequestID = newRequestID(random)
	ev.RequestContext.Stage = DefaultRouteKey

	path, err := gatewayPath(rawRequestPath(r))
	if err != nil {
		return ev, nil, nil, err
	}
	ev.RouteKey = DefaultRouteKey
	if b.Routes != nil {
		if key, params, ok := b.Routes.Route(r.Method, path); ok {
			ev.RouteKey, ev.PathParameters = key, params
		}
	}
	sourceIP := remoteIP(r.RemoteAddr)
	domain := hostWithoutPort(r.Host)
	ev.RawPath = path
	ev.RawQueryString = r.URL.RawQuery
	ev.QueryStringParameters = queryParameters(r.URL.RawQuery)
	ev.Headers, ev.Cookies = gatewayHeaders(r, sourceIP, 0, t, random)

	rc := &ev.RequestContext
	rc.RouteKey = ev.RouteKey
	rc.AccountID = orDefault(b.AccountID, "000000000000")
	rc.APIID = orDefault(b.APIID, "local")
	rc.DomainName = domain
	rc.DomainPrefix, _, _ = strings.Cut(domain, ".")
	rc.Time = t.Format(requestTimeLayout)
	rc.TimeEpoch = t.UnixMilli()
	rc.HTTP = events.APIGatewayV2HTTPRequestContextHTTPDescription{
		Method:    r.Method,
		Path:      path,
		Protocol:  r.Proto,
		SourceIP:  sourceIP,
		UserAgent: r.UserAgent(),
	}

	release = func() {}
	limit, tooLong := b.MaxBodyBytes, tooLarge
	if limit <= 0 {
		limit = MaxRequestBodyBytes
	}
	if g != nil {
		ctx := r.Context()
		l := g.Limit(ev.RouteKey)
		if l.Keyed {
			if resp, refused := g.unauthenticated(ctx, ev.RouteKey, ev); refused {
				return ev, nil, &resp, nil
			}
		}
		if l.MaxBody < limit {
			limit = l.MaxBody
			tooLong = func(n int64) *RequestError { return g.tooLarge(ctx, ev.RouteKey, n) }
		}
		if r.ContentLength > limit {
			return ev, nil, nil, tooLong(limit)
		}
		var busy *events.APIGatewayV2HTTPResponse
		if release, busy = g.acquire(ctx, ev.RouteKey, l); busy != nil {
			return ev, nil, busy, nil
		}
	}
	body, err := readBody(w, r, limit, tooLong)
	if err != nil {
		release()
		return ev, nil, nil, err
	}
	ev.Headers["content-length"] = strconv.Itoa(len(body))
	if len(body) > 0 {
		if IsTextContentType(r.Header.Get("Content-Type")) && utf8Valid(body) {
			// The event takes the bytes over (nothing writes to body after this): no second
			// copy of a body of megabytes.
			ev.Body = unsafe.String(unsafe.SliceData(body), len(body))
		} else {
			ev.Body = base64.StdEncoding.EncodeToString(body)
			ev.IsBase64Encoded = true
		}
	}

	if limit := b.maxEventBytes(); limit > 0 {
		n, err := eventSize(ev)
		if err != nil {
			release()
			return ev, nil, nil, fmt.Errorf("marshal event: %w", err)
		}
		if n > limit {
			release()
			return ev, nil, nil, &RequestError{Status: http.StatusRequestEntityTooLarge, Code: CodePayloadTooLarge,
				Message: fmt.Sprintf("request exceeds the %d-byte function payload limit", limit), Err: ErrBodyTooLarge}
		}
	}
	return ev, release, nil, nil
}

// eventSize is the length of ev's JSON form, without a copy of its body: the body (up to
// megabytes) is measured as JSON would escape it, the rest marshalled.
func eventSize(ev events.APIGatewayV2HTTPRequest) (int, error) {
	body := ev.Body
	if body == "" {
		raw, err := json.Marshal(ev)
		return len(raw), err
	}
	ev.Body = "x" // one byte in JSON, whatever omitempty does
	raw, err := json.Marshal(ev)
	if err != nil {
		return 0, err
	}
	return len(raw) - 1 + jsonEscapedLen(body), nil
}

// responseSize is eventSize's counterpart for an answer.
func responseSize(resp events.APIGatewayV2HTTPResponse) (int, error) {
	body := resp.Body
	if body == "" {
		raw, err := json.Marshal(resp)
		return len(raw), err
	}
	resp.Body = "x" // one byte in JSON, whatever omitempty does
	raw, err := json.Marshal(resp)
	if err != nil {
		return 0, err
	}
	return len(raw) - 1 + jsonEscapedLen(body), nil
}

// jsonEscapedLen is how many bytes encoding/json adds for s inside its quotes: the escapes
// it writes for quotes, backslashes, control characters, <, > and &, invalid UTF-8 and
// U+2028/U+2029.
func jsonEscapedLen(s string) int {
	n := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t' || c == '\b' || c == '\f':
				n += 2
			case c < 0x20 || c == '<' || c == '>' || c == '&':
				n += 6
			default:
				n++
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1, r == '\u2028', r == '\u2029':
			n += 6
		default:
			n += size
		}
		i += size
	}
	return n
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// rawRequestPath is the path exactly as the client sent it, still percent-encoded.
func rawRequestPath(r *http.Request) string {
	if strings.HasPrefix(r.RequestURI, "/") {
		p, _, _ := strings.Cut(r.RequestURI, "?")
		return p
	}
	if r.RequestURI != "" && r.RequestURI != "*" {
		if u, err := url.ParseRequestURI(r.RequestURI); err == nil {
			return u.EscapedPath()
		}
	}
	return r.URL.EscapedPath()
}

// gatewayPath decodes a request path the way API Gateway HTTP API does before routing
// (measured on live AWS): decode once; a decoded "?" ends the path; a "%" still present is
// decoded once more, and a path that then fails to decode is refused.
func gatewayPath(raw string) (string, error) {
	bad := &RequestError{Status: http.StatusBadRequest, Code: CodeInvalidPath,
		Message: "request path is not validly percent-encoded", Err: ErrInvalidPath}
	if raw == "" {
		raw = "/"
	}
	p, err := url.PathUnescape(raw)
	if err != nil {
		return "", bad
	}
	p, _, _ = strings.Cut(p, "?")
	if strings.Contains(p, "%") {
		if p, err = url.PathUnescape(p); err != nil {
			return "", bad
		}
	}
	return p, nil
}

// readBody reads at most limit bytes (0: MaxRequestBodyBytes), refusing a declared length
// over the limit before reading anything, and an undeclared one (chunked) as soon as it
// passes the limit (http.MaxBytesReader: the server then closes the connection). A declared
// length is read into a buffer of that size, not a growing one.
func readBody(w http.ResponseWriter, r *http.Request, limit int64, tooLong func(int64) *RequestError) ([]byte, error) {
	if limit <= 0 {
		limit = MaxRequestBodyBytes
	}
	if tooLong == nil {
		tooLong = tooLarge
	}
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	if r.ContentLength > limit {
		return nil, tooLong(limit)
	}
	rd := http.MaxBytesReader(w, r.Body, limit)
	var body []byte
	var err error
	if r.ContentLength > 0 {
		body = make([]byte, r.ContentLength)
		var n int
		n, err = io.ReadFull(rd, body)
		body = body[:n]
	} else {
		body, err = io.ReadAll(rd)
	}
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return nil, tooLong(limit)
	case err != nil:
		return nil, &RequestError{Status: http.StatusBadRequest, Code: CodeInvalidBody,
			Message: "request body could not be read", Err: fmt.Errorf("%w: %w", ErrInvalidBody, err)}
	}
	return body, nil
}

func utf8Valid(b []byte) bool { return invalidUTF8Offset(b) == len(b) }

// queryParameters decodes a raw query as API Gateway does: values decoded ("+" is a space),
// a repeated key's values joined with commas in order; nil when there is none. A malformed
// pair is skipped rather than failing the request.
func queryParameters(raw string) map[string]string {
	if raw == "" {
		return nil
	}
	var params map[string]string
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		key, err1 := url.QueryUnescape(k)
		val, err2 := url.QueryUnescape(v)
		if err1 != nil || err2 != nil {
			continue
		}
		if params == nil {
			params = map[string]string{}
		}
		if prev, ok := params[key]; ok {
			params[key] = prev + "," + val
		} else {
			params[key] = val
		}
	}
	return params
}

// gatewayHeaders builds the lower-cased header map and the cookie list.
func gatewayHeaders(r *http.Request, sourceIP string, bodyLen int, t time.Time, random io.Reader) (map[string]string, []string) {
	headers := make(map[string]string, len(r.Header)+6)
	var cookies []string
	for name, values := range r.Header {
		lname := strings.ToLower(name)
		if lname == "cookie" {
			for _, v := range values {
				for _, c := range strings.Split(v, ";") {
					if c = strings.TrimSpace(c); c != "" {
						cookies = append(cookies, c)
					}
				}
			}
			continue
		}
		headers[lname] = strings.Join(values, ",")
	}
	headers["host"] = r.Host
	headers["content-length"] = strconv.Itoa(bodyLen)
	if prior := headers["x-forwarded-for"]; prior != "" {
		headers["x-forwarded-for"] = prior + ", " + sourceIP
	} else {
		headers["x-forwarded-for"] = sourceIP
	}
	proto, port := "http", "80"
	if r.TLS != nil {
		proto, port = "https", "443"
	}
	if addr, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		if _, p, err := net.SplitHostPort(addr.String()); err == nil {
			port = p
		}
	}
	headers["x-forwarded-proto"] = proto
	headers["x-forwarded-port"] = port
	if _, ok := headers["x-amzn-trace-id"]; !ok {
		headers["x-amzn-trace-id"] = traceID(t, random)
	}
	return headers, cookies
}

// newRequestID mimics API Gateway's request IDs ("LV7fzho-PHcEJPw="): 11 random bytes.
func newRequestID(random io.Reader) string {
	var b [11]byte
	_, _ = io.ReadFull(random, b[:])
	return base64.URLEncoding.EncodeToString(b[:])
}

// traceID is an X-Ray trace header as API Gateway adds it: Root=1-<epoch hex>-<96 random bits>.
func traceID(t time.Time, random io.Reader) string {
	var b [12]byte
	_, _ = io.ReadFull(random, b[:])
	return fmt.Sprintf("Root=1-%08x-%s", t.Unix(), hex.EncodeToString(b[:]))
}

func remoteIP(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		return remoteAddr
	}
	return host
}

func hostWithoutPort(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		return h
	}
	return host
}

// ErrBadResponse marks a Lambda response API Gateway could not turn into an HTTP answer.
var ErrBadResponse = errors.New("malformed function response")

// WriteResponse writes a Lambda response as API Gateway would: status, headers (repeated
// ones from MultiValueHeaders), one Set-Cookie per cookie, and the body base64-decoded when
// IsBase64Encoded. Nothing is written when the response is malformed (status outside
// 100–599, body not base64); the error wraps ErrBadResponse.
func WriteResponse(w http.ResponseWriter, resp events.APIGatewayV2HTTPResponse) error {
	if resp.StatusCode < 100 || resp.StatusCode > 599 {
		return fmt.Errorf("%w: status code %d", ErrBadResponse, resp.StatusCode)
	}
	body := []byte(resp.Body)
	if resp.IsBase64Encoded {
		var err error
		if body, err = base64.StdEncoding.DecodeString(resp.Body); err != nil {
			return fmt.Errorf("%w: body is not valid base64: %w", ErrBadResponse, err)
		}
	}
	h := w.Header()
	for k, v := range resp.Headers {
		h.Set(k, v)
	}
	for k, vs := range resp.MultiValueHeaders {
		for _, v := range vs {
			h.Add(k, v)
		}
	}
	for _, c := range resp.Cookies {
		h.Add("Set-Cookie", c)
	}
	if _, ok := h["Content-Type"]; !ok {
		h["Content-Type"] = nil // API Gateway does not sniff; neither may net/http
	}
	w.WriteHeader(resp.StatusCode)
	_, err := w.Write(body)
	return err
}

// writeEventResponse writes resp, falling back to the generic 500 when it is malformed, and
// adds API Gateway's apigw-requestid header.
func writeEventResponse(w http.ResponseWriter, requestID string, resp events.APIGatewayV2HTTPResponse, logger *slog.Logger) {
	if requestID != "" {
		w.Header().Set("Apigw-Requestid", requestID)
	}
	err := WriteResponse(w, resp)
	if errors.Is(err, ErrBadResponse) {
		logger.Error("handler returned a malformed response", "error", err.Error())
		_ = WriteResponse(w, InternalError())
	}
}

var _ http.Handler = (*Bridge)(nil)
