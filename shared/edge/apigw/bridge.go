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
//
// Where API Gateway would answer on its own (no route, malformed Lambda response, function
// error) the Bridge answers with the contract's JSON errors instead.
type Bridge struct {
	// Routes fills RouteKey and PathParameters; a request it does not resolve is sent with
	// RouteKey "$default". Usually the same *Router as Handler.
	Routes RouteTable
	// Handler receives every event. Nil: Routes.(*Router).Serve when Routes is a *Router.
	Handler Handler
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
	h := b.Handler
	if h == nil {
		if router, ok := b.Routes.(*Router); ok {
			h = router.Serve
		}
	}
	ev, err := b.Event(r)
	if err != nil {
		writeEventResponse(w, ev.RequestContext.RequestID, ErrorResponse(err), b.logger())
		return
	}
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
		if raw, merr := json.Marshal(resp); merr != nil || len(raw) > limit {
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
	now := time.Now
	if b.Now != nil {
		now = b.Now
	}
	t := now().UTC()
	random := b.Random
	if random == nil {
		random = rand.Reader
	}
	ev := events.APIGatewayV2HTTPRequest{Version: "2.0"}
	ev.RequestContext.RequestID = newRequestID(random)
	ev.RequestContext.Stage = DefaultRouteKey

	path, err := gatewayPath(rawRequestPath(r))
	if err != nil {
		return ev, err
	}
	body, err := readBody(r, b.MaxBodyBytes)
	if err != nil {
		return ev, err
	}

	sourceIP := remoteIP(r.RemoteAddr)
	domain := hostWithoutPort(r.Host)
	ev.RawPath = path
	ev.RawQueryString = r.URL.RawQuery
	ev.QueryStringParameters = queryParameters(r.URL.RawQuery)
	ev.Headers, ev.Cookies = gatewayHeaders(r, sourceIP, len(body), t, random)
	if len(body) > 0 {
		if IsTextContentType(r.Header.Get("Content-Type")) && utf8Valid(body) {
			ev.Body = string(body)
		} else {
			ev.Body = base64.StdEncoding.EncodeToString(body)
			ev.IsBase64Encoded = true
		}
	}

	ev.RouteKey = DefaultRouteKey
	if b.Routes != nil {
		if key, params, ok := b.Routes.Route(r.Method, path); ok {
			ev.RouteKey, ev.PathParameters = key, params
		}
	}

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

	if limit := b.maxEventBytes(); limit > 0 {
		raw, err := json.Marshal(ev)
		if err != nil {
			return ev, fmt.Errorf("marshal event: %w", err)
		}
		if len(raw) > limit {
			return ev, &RequestError{Status: http.StatusRequestEntityTooLarge, Code: CodePayloadTooLarge,
				Message: fmt.Sprintf("request exceeds the %d-byte function payload limit", limit), Err: ErrBodyTooLarge}
		}
	}
	return ev, nil
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
// over the limit before reading anything.
func readBody(r *http.Request, limit int64) ([]byte, error) {
	if limit <= 0 {
		limit = MaxRequestBodyBytes
	}
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	if r.ContentLength > limit {
		return nil, tooLarge(limit)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, &RequestError{Status: http.StatusBadRequest, Code: CodeInvalidBody,
			Message: "request body could not be read", Err: fmt.Errorf("%w: %w", ErrInvalidBody, err)}
	}
	if int64(len(body)) > limit {
		return nil, tooLarge(limit)
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
