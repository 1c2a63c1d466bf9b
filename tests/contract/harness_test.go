package contract

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/vaxpass/vaxpass/shared/edge/apigw"
	"github.com/vaxpass/vaxpass/shared/testkit/server"
	"github.com/vaxpass/vaxpass/shared/wire/local"
)

// specPath is the document under test, relative to this package.
const specPath = "../../openapi.yaml"

const xlsxType = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

// startDay is the system's clock at start: after the last generated dose (2022-06-30).
var startDay = time.Date(2022, 7, 15, 8, 0, 0, 0, time.UTC)

func init() {
	// Binary answers: the validator checks the media type and that a body is there; the
	// tests decode them (PNG -> QR -> HC1, .xlsx -> rows).
	openapi3filter.RegisterBodyDecoder(xlsxType, openapi3filter.FileBodyDecoder)
	openapi3filter.RegisterBodyDecoder("image/png", openapi3filter.FileBodyDecoder)
	for _, ct := range []string{"text/html", "text/css", "text/javascript", "image/svg+xml"} {
		openapi3filter.RegisterBodyDecoder(ct, openapi3filter.FileBodyDecoder)
	}
}

// clock is the system's time: frozen unless advanced, so the rate limiter's buckets and
// "today" are the test's to decide.
type clock struct{ ns atomic.Int64 }

func newClock(t time.Time) *clock {
	c := &clock{}
	c.ns.Store(t.UnixNano())
	return c
}

func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// reqExpect says what the document must think of a request.
type reqExpect int

const (
	reqAny     reqExpect = iota // not checked (the request is valid in shape, the answer depends on data)
	reqValid                    // the document must accept the request
	reqInvalid                  // the document must refuse the request (it is malformed in a way the schema states)
)

// call is one HTTP exchange to make.
type call struct {
	name    string
	method  string
	path    string // path and query, as sent (already percent-encoded)
	header  map[string]string
	body    []byte
	request reqExpect
	status  int // expected status
	// anyStatus, when set, lists the statuses allowed instead of status.
	anyStatus []int
}

// response is what came back.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r *response) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("answer is not the JSON expected: %v\n%s", err, truncate(r.body))
	}
}

// errorBody decodes the contract's error body.
func (r *response) errorBody(t *testing.T) apigw.ErrorDetail {
	t.Helper()
	var e apigw.ErrorBody
	r.json(t, &e)
	return e.Error
}

// harness is the running system plus the document that must describe it.
type harness struct {
	srv    *server.System
	sys    *local.Local
	clock  *clock
	doc    *openapi3.T
	router routers.Router
	key    string // the demo facility's API key
	other  string // a second facility's API key
	ops    string // an ops key (actor opsActor), made as `vaxpass ops key` makes it
	demo   local.Demo

	mu      sync.Mutex
	covered map[string]map[int]bool // operationId -> statuses answered
}

// newHarness opens the embedded system in a temporary directory with the demo registry,
// the demo facility and a second one, and serves the HTTP front alone (pumps: startPumps).
func newHarness(t *testing.T) *harness {
	t.Helper()
	doc := loadSpec(t)
	clk := newClock(startDay)
	srv := server.Open(t, server.Options{
		Options: local.Options{
			Now:               clk.Now,
			LookupRate:        apigw.RateLimit{Rate: 1, Burst: 200, MaxKeys: 1000},
			FacilitySignEvery: -1,
			PollInterval:      5 * time.Millisecond,
			// POST /v1/signatures signs two pages of 3 people in the call and answers 202
			// when more wait: the run goes on in the background (GET /v1/signatures/{id}).
			FacilityPageSize: 3,
			SignPagesInCall:  2,
		},
		Demo:      true,
		OpsActor:  opsActor,
		NoSync:    true, // a scratch database
		FrontOnly: true,
	})
	other, err := srv.Local.AddFacility(context.Background(), "other-site", "Another vaccination site")
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{srv: srv, sys: srv.Local, clock: clk, key: srv.FacilityKey, other: other, ops: srv.OpsKey, demo: srv.Demo, doc: doc,
		covered: map[string]map[int]bool{}}
	doc.Servers = openapi3.Servers{{URL: srv.URL}}
	if h.router, err = gorillamux.NewRouter(doc); err != nil {
		t.Fatal(err)
	}
	return h
}

// startPumps runs the matcher and central signing pumps until the test ends. Until then
// every uploaded record stays PENDING.
func (h *harness) startPumps() {
	h.srv.Go("matcher pump", h.sys.RunMatcher)
	h.srv.Go("central signing pump", h.sys.RunCentralSigning)
}

func loadSpec(t testing.TB) *openapi3.T {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile(specPath)
	if err != nil {
		t.Fatalf("load %s: %v", specPath, err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		t.Fatalf("%s is not a valid OpenAPI document: %v", specPath, err)
	}
	return doc
}

// opsActor is the actor of the harness's ops key: the audit trail records it.
const opsActor = "ops-contract"

// opsAuth is the ops key's header, with a JSON content type.
func (h *harness) opsAuth() map[string]string {
	return map[string]string{"Authorization": "Bearer " + h.ops, "Content-Type": "application/json"}
}

func (h *harness) auth() map[string]string {
	return map[string]string{"Authorization": "Bearer " + h.key}
}

func (h *harness) authJSON() map[string]string {
	return map[string]string{"Authorization": "Bearer " + h.key, "Content-Type": "application/json"}
}

// do makes the call and checks the answer against the document and c.status.
func (h *harness) do(t *testing.T, c call) *response {
	t.Helper()
	req, err := http.NewRequest(c.method, h.srv.URL+c.path, bytes.NewReader(c.body))
	if err != nil {
		t.Fatalf("%s: %v", c.name, err)
	}
	if c.body == nil {
		req.Body, req.ContentLength = http.NoBody, 0
	}
	for k, v := range c.header {
		req.Header.Set(k, v)
	}
	httpResp, err := h.srv.Client("").HTTP.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", c.name, err)
	}
	defer httpResp.Body.Close()
	body, err := io.ReadAll(httpResp.Body)
	if err != nil {
		t.Fatalf("%s: read answer: %v", c.name, err)
	}
	resp := &response{status: httpResp.StatusCode, header: httpResp.Header, body: body}
	h.check(t, c, req, resp)
	return resp
}

// doRaw writes a request byte for byte (to send what http.Client will not) and checks the
// answer like do.
func (h *harness) doRaw(t *testing.T, c call, raw string, halfClose bool) *response {
	t.Helper()
	conn, err := net.Dial("tcp", h.srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	if halfClose {
		conn.(*net.TCPConn).CloseWrite()
	}
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	httpResp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%s: %v", c.name, err)
	}
	defer httpResp.Body.Close()
	body, err := io.ReadAll(httpResp.Body)
	if err != nil {
		t.Fatalf("%s: read answer: %v", c.name, err)
	}
	req, err := http.NewRequest(c.method, h.srv.URL+c.path, bytes.NewReader(c.body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range c.header {
		req.Header.Set(k, v)
	}
	resp := &response{status: httpResp.StatusCode, header: httpResp.Header, body: body}
	h.check(t, c, req, resp)
	return resp
}

// check validates one answer: the expected status, the document's verdict on the request
// (when asked) and on the answer, and the contract's rules for error bodies.
func (h *harness) check(t *testing.T, c call, req *http.Request, resp *response) {
	t.Helper()
	if len(c.anyStatus) > 0 {
		if !slices.Contains(c.anyStatus, resp.status) {
			t.Errorf("%s: %s %s: status %d, want one of %v; body: %s", c.name, c.method, c.path, resp.status, c.anyStatus, truncate(resp.body))
		}
	} else if resp.status != c.status {
		t.Errorf("%s: %s %s: status %d, want %d; body: %s", c.name, c.method, c.path, resp.status, c.status, truncate(resp.body))
	}
	// Only answers with a body need a Content-Type (304 Not Modified has none).
	if resp.header.Get("Content-Type") == "" && resp.status != http.StatusNotModified && resp.status != http.StatusNoContent {
		t.Errorf("%s: answer %d has no Content-Type", c.name, resp.status)
	}
	if resp.status >= 400 {
		checkErrorBody(t, c.name, resp)
	}

	route, pathParams, err := h.router.FindRoute(req)
	if err != nil {
		h.checkUnrouted(t, c, req, resp, err)
		return
	}
	// The router hands path parameters over percent-encoded; the server (as API Gateway)
	// sees them decoded, and the document's rules (maxLength) are about the decoded value.
	for k, v := range pathParams {
		if dec, err := url.PathUnescape(v); err == nil {
			pathParams[k] = dec
		}
	}
	ctx := context.Background()
	opts := &openapi3filter.Options{
		IncludeResponseStatus: true,
		MultiError:            true,
		AuthenticationFunc:    bearerPresent,
	}
	reqInput := &openapi3filter.RequestValidationInput{Request: req, PathParams: pathParams, Route: route, Options: opts}
	switch c.request {
	case reqValid:
		req.Body = io.NopCloser(bytes.NewReader(c.body))
		if err := openapi3filter.ValidateRequest(ctx, reqInput); err != nil {
			t.Errorf("%s: the document refuses a request the test calls valid: %v", c.name, err)
		}
	case reqInvalid:
		req.Body = io.NopCloser(bytes.NewReader(c.body))
		if err := openapi3filter.ValidateRequest(ctx, reqInput); err == nil {
			t.Errorf("%s: the document accepts a malformed request (it should state the rule the server enforces)", c.name)
		}
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: reqInput,
		Status:                 resp.status,
		Header:                 resp.header,
		Options:                opts,
	}
	in.SetBodyBytes(resp.body)
	if err := openapi3filter.ValidateResponse(ctx, in); err != nil {
		t.Errorf("%s: %s %s -> %d: the document does not allow this answer: %v\nbody: %s", c.name, c.method, c.path, resp.status, err, truncate(resp.body))
	}
	h.mu.Lock()
	op := route.Operation.OperationID
	if h.covered[op] == nil {
		h.covered[op] = map[int]bool{}
	}
	h.covered[op][resp.status] = true
	h.mu.Unlock()
}

// checkUnrouted validates an answer to a request no operation takes: it must be one of the
// document's answers for that case (404 unknown path, 405 wrong method, 400 bad path).
func (h *harness) checkUnrouted(t *testing.T, c call, req *http.Request, resp *response, routeErr error) {
	t.Helper()
	var name string
	switch {
	case resp.status == http.StatusNotFound:
		name = "NotFound"
	case resp.status == http.StatusMethodNotAllowed && errors.Is(routeErr, routers.ErrMethodNotAllowed):
		name = "MethodNotAllowed"
	case resp.status == http.StatusBadRequest:
		name = "BadPath"
	default:
		t.Errorf("%s: %s %s is no operation of the document (%v), yet answered %d", c.name, c.method, c.path, routeErr, resp.status)
		return
	}
	r := h.doc.Components.Responses[name].Value
	for hname, hdr := range r.Headers {
		v := resp.header.Get(hname)
		if v == "" && hdr.Value.Required {
			t.Errorf("%s: answer %d lacks the header %s", c.name, resp.status, hname)
			continue
		}
		if v != "" {
			if err := hdr.Value.Schema.Value.VisitJSON(v); err != nil {
				t.Errorf("%s: header %s: %v", c.name, hname, err)
			}
		}
	}
	mt := r.Content.Get(resp.header.Get("Content-Type"))
	if mt == nil {
		t.Errorf("%s: answer %d has Content-Type %q, not the document's", c.name, resp.status, resp.header.Get("Content-Type"))
		return
	}
	var v any
	if err := json.Unmarshal(resp.body, &v); err != nil {
		t.Errorf("%s: answer %d is not JSON: %v", c.name, resp.status, err)
		return
	}
	if err := mt.Schema.Value.VisitJSON(v); err != nil {
		t.Errorf("%s: answer %d does not match components/responses/%s: %v\nbody: %s", c.name, resp.status, name, err, truncate(resp.body))
	}
}

// bearerPresent is the document's security check as a validator can make it: the header is
// there and is a Bearer token (whether the key is known is the server's business).
func bearerPresent(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	if in.SecurityScheme.Type == "http" && in.SecurityScheme.Scheme == "bearer" {
		v := in.RequestValidationInput.Request.Header.Get("Authorization")
		if key, ok := strings.CutPrefix(v, "Bearer "); !ok || strings.TrimSpace(key) == "" {
			return errors.New("no Bearer token")
		}
	}
	return nil
}

// internalMarkers are bits of text that only an internal error would put in a message.
var internalMarkers = []string{"embedded:", "bolt", "goroutine", "panic", ".go:", "runtime error", "invalid input:", "%!"}

// checkErrorBody enforces the contract for every error: JSON, the error object with a code
// and a message, and no internal error text.
func checkErrorBody(t *testing.T, name string, resp *response) {
	t.Helper()
	if ct := resp.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s: error %d has Content-Type %q", name, resp.status, ct)
		return
	}
	var e struct {
		Error *apigw.ErrorDetail `json:"error"`
	}
	dec := json.NewDecoder(bytes.NewReader(resp.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil || e.Error == nil || e.Error.Code == "" || e.Error.Message == "" {
		t.Errorf("%s: error %d is not the contract's error body: %s", name, resp.status, truncate(resp.body))
		return
	}
	for _, m := range internalMarkers {
		if strings.Contains(strings.ToLower(e.Error.Message), m) {
			t.Errorf("%s: error %d message carries internal text (%q): %q", name, resp.status, m, e.Error.Message)
		}
	}
}

// checkCoverage fails for every status the document lists that no call produced, except
// those no outside caller can bring about on a healthy system.
func (h *harness) checkCoverage(t *testing.T, unreachable map[string][]int) {
	t.Helper()
	var missing []string
	for path, item := range h.doc.Paths.Map() {
		for method, op := range item.Operations() {
			for code := range op.Responses.Map() {
				var status int
				fmt.Sscan(code, &status)
				// 500 and 503 need a failing server or a full disk: tests/faults brings the
				// 503 about (TestDiskFull).
				if slices.Contains(unreachable[op.OperationID], status) || status == http.StatusInternalServerError || status == http.StatusServiceUnavailable {
					continue
				}
				if !h.covered[op.OperationID][status] {
					missing = append(missing, fmt.Sprintf("%s %s (%s) %d", method, path, op.OperationID, status))
				}
			}
		}
	}
	sort.Strings(missing)
	for _, m := range missing {
		t.Errorf("documented answer never exercised: %s", m)
	}
}

// readDemo reads a JSON file the demo set-up wrote.
func readDemo(t *testing.T, h *harness, name string, v any) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(h.demo.Dir, name))
	if err != nil {
		t.Fatal(err)
	}
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func pathEscape(s string) string { return url.PathEscape(s) }

func truncate(b []byte) string {
	if len(b) > 600 {
		return string(b[:600]) + "…"
	}
	return string(b)
}

// eventually polls cond until it holds, failing after a generous bound (the pumps poll
// every few milliseconds; the bound only stops a broken pipeline from hanging the test).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
