package apigw

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// recordedEvents is a SecuritySink keeping what it is told.
type recordedEvents struct {
	mu   sync.Mutex
	seen []string
}

func (r *recordedEvents) SecurityEvent(_ context.Context, kind, route string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen = append(r.seen, kind+" "+route)
}

func (r *recordedEvents) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.seen...)
}

// guardedRouter routes POST /small (1 KB, pool "one": one slot, no waiting), POST /keyed
// (keyed, 1 KB) and POST /big (1 MB); every handler reads its body and answers 200.
func guardedRouter(t *testing.T, block chan struct{}) (*Router, *recordedEvents) {
	t.Helper()
	g, err := NewGuard(Limits{
		Default: RouteLimit{MaxBody: 100},
		Routes: map[string]RouteLimit{
			"POST /small": {MaxBody: 1 << 10, Pool: "one"},
			"POST /keyed": {MaxBody: 1 << 10, Keyed: true},
			"POST /big":   {MaxBody: 1 << 20},
		},
		Pools: map[string]Pool{"one": {Slots: 1}},
	})
	if err != nil {
		t.Fatal(err)
	}
	ev := &recordedEvents{}
	g.Events = ev
	r := NewRouter()
	ok := func(_ context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		if block != nil && req.RawPath == "/small" {
			<-block
		}
		b, err := RequestBody(req, 0)
		if err != nil {
			return ErrorResponse(err), nil
		}
		return JSON(200, map[string]int{"bytes": len(b)}), nil
	}
	for _, k := range []string{"POST /small", "POST /keyed", "POST /big"} {
		r.Handle(k, ok)
	}
	r.SetGuard(g)
	return r, ev
}

func TestGuardBodyLimitsBeforeReading(t *testing.T) {
	r, ev := guardedRouter(t, nil)
	bridge := &Bridge{Routes: r}

	t.Run("declared length over the route's limit: refused unread", func(t *testing.T) {
		body := &countingReader{}
		req := httptest.NewRequest("POST", "/small", body)
		req.ContentLength = 1<<10 + 1
		w := httptest.NewRecorder()
		bridge.ServeHTTP(w, req)
		d := assertContractError(t, w, 413, CodeBodyTooLarge)
		if body.n != 0 {
			t.Errorf("read %d bytes of a body known to be too large", body.n)
		}
		if !strings.Contains(d.Message, "1024") {
			t.Errorf("message %q does not name the limit", d.Message)
		}
	})
	t.Run("chunked body cut at the route's limit", func(t *testing.T) {
		body := &countingReader{}
		req := httptest.NewRequest("POST", "/small", io.LimitReader(body, 1<<20))
		req.ContentLength = -1
		w := httptest.NewRecorder()
		bridge.ServeHTTP(w, req)
		assertContractError(t, w, 413, CodeBodyTooLarge)
		if body.n > 2<<10 {
			t.Errorf("read %d bytes for a 1 KB limit", body.n)
		}
	})
	t.Run("unlisted route takes the default", func(t *testing.T) {
		req := httptest.NewRequest("POST", "/nowhere", bytes.NewReader(make([]byte, 101)))
		w := httptest.NewRecorder()
		bridge.ServeHTTP(w, req)
		assertContractError(t, w, 413, CodeBodyTooLarge)
	})
	t.Run("within the limit passes", func(t *testing.T) {
		for _, c := range []struct {
			path string
			n    int
		}{{"/small", 1 << 10}, {"/big", 1 << 20}} {
			req := httptest.NewRequest("POST", c.path, bytes.NewReader(make([]byte, c.n)))
			w := httptest.NewRecorder()
			bridge.ServeHTTP(w, req)
			if w.Code != 200 || !strings.Contains(w.Body.String(), `"bytes":`) {
				t.Errorf("%s with %d bytes: %d %s", c.path, c.n, w.Code, w.Body)
			}
		}
	})
	want := []string{"body_too_large POST /small", "body_too_large POST /small", "body_too_large $default"}
	if got := ev.list(); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("events %q, want %q", got, want)
	}
}

func TestGuardKeyedRouteWithoutKey(t *testing.T) {
	r, ev := guardedRouter(t, nil)
	bridge := &Bridge{Routes: r}
	body := &countingReader{}
	req := httptest.NewRequest("POST", "/keyed", io.LimitReader(body, 500))
	w := httptest.NewRecorder()
	bridge.ServeHTTP(w, req)
	assertContractError(t, w, 401, CodeUnauthorized)
	if w.Header().Get("WWW-Authenticate") == "" {
		t.Error("401 without WWW-Authenticate")
	}
	if body.n != 0 {
		t.Errorf("read %d bytes of an unauthenticated request", body.n)
	}
	if got := ev.list(); len(got) != 1 || got[0] != "auth_failed POST /keyed" {
		t.Errorf("events %q", got)
	}

	// A key is checked by the route's own authenticator (or Guard.Authenticate), not here.
	req = httptest.NewRequest("POST", "/keyed", strings.NewReader("{}"))
	req.Header.Set("Authorization", "Bearer x")
	w = httptest.NewRecorder()
	bridge.ServeHTTP(w, req)
	if w.Code != 200 {
		t.Errorf("with a key: %d %s", w.Code, w.Body)
	}

	// Authenticate, when set, decides from the headers alone.
	r.Guard().Authenticate = func(_ context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, bool) {
		if req.Body != "" {
			t.Error("Authenticate saw a body")
		}
		return Error(401, "unauthorized", "no"), req.Headers["authorization"] != "Bearer good"
	}
	for key, want := range map[string]int{"Bearer good": 200, "Bearer bad": 401} {
		req = httptest.NewRequest("POST", "/keyed", strings.NewReader("{}"))
		req.Header.Set("Authorization", key)
		w = httptest.NewRecorder()
		bridge.ServeHTTP(w, req)
		if w.Code != want {
			t.Errorf("%s: %d, want %d", key, w.Code, want)
		}
	}
}

func TestGuardBusy(t *testing.T) {
	block := make(chan struct{})
	r, ev := guardedRouter(t, block)
	bridge := &Bridge{Routes: r}
	first := make(chan int)
	go func() {
		w := httptest.NewRecorder()
		bridge.ServeHTTP(w, httptest.NewRequest("POST", "/small", strings.NewReader("{}")))
		first <- w.Code
	}()
	// Wait until the first request holds the pool's one slot.
	s := r.Guard().pools["one"]
	for deadline := time.Now().Add(10 * time.Second); len(s.slots) == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the first request never took the slot")
		}
	}
	body := &countingReader{}
	req := httptest.NewRequest("POST", "/small", io.LimitReader(body, 100))
	w := httptest.NewRecorder()
	bridge.ServeHTTP(w, req)
	assertContractError(t, w, 503, CodeBusy)
	if ra := w.Header().Get("Retry-After"); ra != "1" {
		t.Errorf("Retry-After %q", ra)
	}
	if body.n != 0 {
		t.Errorf("a refused request's body was read (%d bytes)", body.n)
	}
	// Other routes are not held up.
	w = httptest.NewRecorder()
	bridge.ServeHTTP(w, httptest.NewRequest("POST", "/big", strings.NewReader("{}")))
	if w.Code != 200 {
		t.Errorf("another route: %d", w.Code)
	}
	close(block)
	if code := <-first; code != 200 {
		t.Errorf("first request: %d", code)
	}
	// The slot is back.
	w = httptest.NewRecorder()
	bridge.ServeHTTP(w, httptest.NewRequest("POST", "/small", strings.NewReader("{}")))
	if w.Code != 200 {
		t.Errorf("after release: %d %s", w.Code, w.Body)
	}
	if got := ev.list(); len(got) != 1 || got[0] != "busy POST /small" {
		t.Errorf("events %q", got)
	}
}

func TestSemaphoreWaitsBounded(t *testing.T) {
	s := newSemaphore(Pool{Slots: 1, Waiting: 1, MaxWait: time.Minute})
	ctx := context.Background()
	if !s.acquire(ctx) {
		t.Fatal("first acquire")
	}
	got := make(chan bool)
	go func() { got <- s.acquire(ctx) }()
	for deadline := time.Now().Add(10 * time.Second); len(s.waiters) == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the waiter never queued")
		}
	}
	// The queue is full: a third is refused at once, not queued.
	if s.acquire(ctx) {
		t.Fatal("acquired past the waiters' bound")
	}
	s.release()
	if !<-got {
		t.Fatal("the waiter did not get the released slot")
	}
	// A waiter gives up when its request ends.
	cctx, cancel := context.WithCancel(ctx)
	go func() { got <- s.acquire(cctx) }()
	for deadline := time.Now().Add(10 * time.Second); len(s.waiters) == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the waiter never queued")
		}
	}
	cancel()
	if <-got {
		t.Fatal("acquired after the context ended")
	}
}

func TestGuardOnLambdaEvents(t *testing.T) {
	r, ev := guardedRouter(t, nil)
	call := func(req events.APIGatewayV2HTTPRequest) events.APIGatewayV2HTTPResponse {
		t.Helper()
		resp, err := r.Serve(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	b64 := func(n int) string { return base64.StdEncoding.EncodeToString(make([]byte, n)) }
	cases := []struct {
		name string
		req  events.APIGatewayV2HTTPRequest
		want int
	}{
		{"text at the limit", events.APIGatewayV2HTTPRequest{RouteKey: "POST /small", RawPath: "/small", Body: strings.Repeat("a", 1<<10)}, 200},
		{"text over", events.APIGatewayV2HTTPRequest{RouteKey: "POST /small", RawPath: "/small", Body: strings.Repeat("a", 1<<10+1)}, 413},
		{"base64 at the limit", events.APIGatewayV2HTTPRequest{RouteKey: "POST /small", RawPath: "/small", Body: b64(1 << 10), IsBase64Encoded: true}, 200},
		{"base64 over", events.APIGatewayV2HTTPRequest{RouteKey: "POST /small", RawPath: "/small", Body: b64(1<<10 + 1), IsBase64Encoded: true}, 413},
		{"$default resolved by path", events.APIGatewayV2HTTPRequest{RouteKey: "$default", RawPath: "/small", Body: strings.Repeat("a", 1<<10+1),
			RequestContext: events.APIGatewayV2HTTPRequestContext{HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: "POST"}}}, 413},
		{"big route", events.APIGatewayV2HTTPRequest{RouteKey: "POST /big", RawPath: "/big", Body: b64(1 << 20), IsBase64Encoded: true}, 200},
	}
	for _, c := range cases {
		if resp := call(c.req); resp.StatusCode != c.want {
			t.Errorf("%s: %d, want %d: %s", c.name, resp.StatusCode, c.want, resp.Body)
		}
	}
	if got := ev.list(); len(got) != 3 {
		t.Errorf("events %q, want three body_too_large", got)
	}
}

func TestEventBodyBytes(t *testing.T) {
	for n := 0; n < 10; n++ {
		req := events.APIGatewayV2HTTPRequest{Body: base64.StdEncoding.EncodeToString(make([]byte, n)), IsBase64Encoded: true}
		if got := eventBodyBytes(req); got != int64(n) {
			t.Errorf("%d bytes: %d", n, got)
		}
	}
}

// eventSize measures without copying the body what json.Marshal would write.
func TestEventSizeMatchesMarshal(t *testing.T) {
	bodies := []string{"", "plain", `{"a":"<b>&\"\\"}`, "tab\tnew\nline\r\x00\x1f", "Nguyễn Văn An", "\u2028\u2029", "bad \xff utf8 \xe1", strings.Repeat("é", 1000)}
	for _, b := range bodies {
		ev := events.APIGatewayV2HTTPRequest{Version: "2.0", RawPath: "/x", Body: b, Headers: map[string]string{"a": "b"}}
		raw, _ := json.Marshal(ev)
		if n, err := eventSize(ev); err != nil || n != len(raw) {
			t.Errorf("%q: eventSize %d, marshal %d (%v)", b, n, len(raw), err)
		}
		resp := events.APIGatewayV2HTTPResponse{StatusCode: 200, Body: b}
		raw, _ = json.Marshal(resp)
		if n, err := responseSize(resp); err != nil || n != len(raw) {
			t.Errorf("%q: responseSize %d, marshal %d (%v)", b, n, len(raw), err)
		}
	}
}

func TestNewGuardRefusesBadConfig(t *testing.T) {
	for name, lim := range map[string]Limits{
		"no default body":   {},
		"unknown pool":      {Default: RouteLimit{MaxBody: 1}, Routes: map[string]RouteLimit{"GET /": {Pool: "x"}}},
		"pool without slot": {Default: RouteLimit{MaxBody: 1}, Pools: map[string]Pool{"x": {}}},
	} {
		if _, err := NewGuard(lim); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
