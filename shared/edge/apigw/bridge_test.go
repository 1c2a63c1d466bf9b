package apigw

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

func loadEvent(t testing.TB, name string) events.APIGatewayV2HTTPRequest {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var ev events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return ev
}

// viaJSON sends ev through its JSON form, as Lambda does, so the comparison is on what a
// function would really receive.
func viaJSON(t testing.TB, ev events.APIGatewayV2HTTPRequest) events.APIGatewayV2HTTPRequest {
	t.Helper()
	raw, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	var back events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	return back
}

// zeroReader is a deterministic Random for request and trace IDs.
type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func fixedClock(ms int64) func() time.Time {
	return func() time.Time { return time.UnixMilli(ms) }
}

// diffEvents reports the differing top-level and request-context fields.
func diffEvents(t *testing.T, got, want events.APIGatewayV2HTTPRequest) {
	t.Helper()
	gv, wv := reflect.ValueOf(got), reflect.ValueOf(want)
	for i := 0; i < gv.NumField(); i++ {
		name := gv.Type().Field(i).Name
		if !reflect.DeepEqual(gv.Field(i).Interface(), wv.Field(i).Interface()) {
			t.Errorf("%s:\n got %#v\nwant %#v", name, gv.Field(i).Interface(), wv.Field(i).Interface())
		}
	}
}

// The AWS sample of a plain `curl https://…/` through a $default route.
func TestBridgeEventMatchesAWSSample(t *testing.T) {
	want := loadEvent(t, "aws-lambda-go/apigw-v2-request-no-authorizer.json")

	r := httptest.NewRequest("GET", "https://aaaaaaaaaa.execute-api.us-west-2.amazonaws.com/", nil)
	r.RemoteAddr = "1.2.3.4:51234"
	r.TLS = &tls.ConnectionState{}
	r.Header = http.Header{
		"Accept":          {"*/*"},
		"User-Agent":      {"curl/7.58.0"},
		"X-Amzn-Trace-Id": {"Root=1-5e9f0c65-1de4d666d4dd26aced652b6c"},
	}
	b := &Bridge{Now: fixedClock(want.RequestContext.TimeEpoch), Random: zeroReader{},
		AccountID: want.RequestContext.AccountID, APIID: want.RequestContext.APIID}
	ev, err := b.Event(r)
	if err != nil {
		t.Fatal(err)
	}
	got := viaJSON(t, ev)

	// What only a real gateway can know: its request ID and the mTLS client certificate.
	if got.RequestContext.RequestID == "" {
		t.Error("no request ID")
	}
	got.RequestContext.RequestID = want.RequestContext.RequestID
	want.RequestContext.Authentication = events.APIGatewayV2HTTPRequestContextAuthentication{}
	diffEvents(t, got, want)
	if !reflect.DeepEqual(got.RequestContext, want.RequestContext) {
		t.Errorf("request context:\n got %+v\nwant %+v", got.RequestContext, want.RequestContext)
	}
}

// A request captured on live AWS: encoded path, repeated query keys and headers, cookies and
// a JSON body.
func TestBridgeEventMatchesLiveCapture(t *testing.T) {
	want := loadEvent(t, "voker/apigwv2-request.json")

	target := "https://sjzepsqsu5.execute-api.us-west-2.amazonaws.com/capture/space%20value?" + want.RawQueryString
	r := httptest.NewRequest("POST", target, strings.NewReader(want.Body))
	r.RemoteAddr = "68.8.83.18:40000"
	r.TLS = &tls.ConnectionState{}
	r.Header = http.Header{
		"Accept":          {"*/*"},
		"Content-Type":    {"application/json"},
		"Content-Length":  {"66"},
		"User-Agent":      {"curl/8.7.1"},
		"X-Amzn-Trace-Id": {"Root=1-6a5145a9-1bae89e2512ec92d5d9438a0"},
		"X-Voker-Probe":   {"first", "second"},
		"Cookie":          {"session=abc123; theme=dark"},
	}
	b := &Bridge{Now: fixedClock(want.RequestContext.TimeEpoch), Random: zeroReader{},
		AccountID: want.RequestContext.AccountID, APIID: want.RequestContext.APIID}
	ev, err := b.Event(r)
	if err != nil {
		t.Fatal(err)
	}
	got := viaJSON(t, ev)

	got.RequestContext.RequestID = want.RequestContext.RequestID
	// The capture's empty authorizer blocks come from an IAM/JWT-capable logger, not from
	// the request; a route without an authorizer has none.
	want.RequestContext.Authorizer = nil
	diffEvents(t, got, want)
	if !reflect.DeepEqual(got.RequestContext, want.RequestContext) {
		t.Errorf("request context:\n got %+v\nwant %+v", got.RequestContext, want.RequestContext)
	}
}

// Paths sent to live AWS and what the function received.
func TestBridgeDecodesPathsLikeHTTPAPI(t *testing.T) {
	raw, err := os.ReadFile("testdata/voker/ingress-paths.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []struct {
		SentPath        string `json:"sentPath"`
		HTTPAPIPath     string `json:"httpAPIPath"`
		HTTPAPIRejected bool   `json:"httpAPIRejected"`
	}
	if err := json.Unmarshal(raw, &cases); err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(c.SentPath, func(t *testing.T) {
			r := httptest.NewRequest("GET", "http://127.0.0.1:8080"+c.SentPath+"?marker=x", nil)
			ev, err := (&Bridge{}).Event(r)
			if c.HTTPAPIRejected {
				var re *RequestError
				if !errors.As(err, &re) || re.Status != 400 || !errors.Is(err, ErrInvalidPath) {
					t.Fatalf("want a 400 invalid path, got %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ev.RawPath != c.HTTPAPIPath || ev.RequestContext.HTTP.Path != c.HTTPAPIPath {
				t.Errorf("rawPath %q, http.path %q; AWS delivered %q", ev.RawPath, ev.RequestContext.HTTP.Path, c.HTTPAPIPath)
			}
			if ev.RawQueryString != "marker=x" {
				t.Errorf("rawQueryString %q", ev.RawQueryString)
			}
		})
	}
}

func TestBridgeBodyEncoding(t *testing.T) {
	xlsx := []byte("PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00\xff\xfe binary")
	cases := []struct {
		contentType string
		body        []byte
		base64      bool
	}{
		{"application/json", []byte(`{"full_name":"Nguyễn Văn An"}`), false},
		{"application/json; charset=utf-8", []byte(`{}`), false},
		{"text/csv", []byte("source_id,dob\nA1,1990\n"), false},
		{"application/xml", []byte("<a/>"), false},
		{"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", xlsx, true},
		{"application/octet-stream", []byte("plain ascii still binary"), true},
		{"application/x-www-form-urlencoded", []byte("a=b"), true},
		{"", []byte(`{"no":"content type"}`), true},
		{"text/plain", []byte("not utf-8: \xff"), true}, // a text type that cannot be a JSON string
		{"application/problem+json", []byte(`{}`), true},
	}
	for _, c := range cases {
		t.Run(c.contentType, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/v1/imports", bytes.NewReader(c.body))
			if c.contentType != "" {
				r.Header.Set("Content-Type", c.contentType)
			}
			ev, err := (&Bridge{}).Event(r)
			if err != nil {
				t.Fatal(err)
			}
			ev = viaJSON(t, ev)
			if ev.IsBase64Encoded != c.base64 {
				t.Fatalf("isBase64Encoded = %v, want %v", ev.IsBase64Encoded, c.base64)
			}
			got, err := RequestBody(ev, 0)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, c.body) {
				t.Errorf("body round trip: got %q want %q", got, c.body)
			}
			if ev.Headers["content-length"] != strconv.Itoa(len(c.body)) {
				t.Errorf("content-length %q", ev.Headers["content-length"])
			}
		})
	}
}

func TestBridgeQueryAndCookies(t *testing.T) {
	r := httptest.NewRequest("GET", "/v1/worklist?status=MISMATCH&status=NO_ID&format=csv&q=Nguy%E1%BB%85n+V%C4%83n&flag&bad=%zz", nil)
	r.Header.Add("Cookie", "a=1; b=2")
	r.Header.Add("Cookie", "c=3")
	r.Header.Add("X-Multi", "one")
	r.Header.Add("X-Multi", "two")
	r.Header.Set("X-Forwarded-For", "203.0.113.9")
	r.RemoteAddr = "[2001:db8::1]:5555"
	ev, err := (&Bridge{}).Event(r)
	if err != nil {
		t.Fatal(err)
	}
	ev = viaJSON(t, ev)
	wantQuery := map[string]string{"status": "MISMATCH,NO_ID", "format": "csv", "q": "Nguyễn Văn", "flag": ""}
	if !reflect.DeepEqual(ev.QueryStringParameters, wantQuery) {
		t.Errorf("query parameters %v, want %v", ev.QueryStringParameters, wantQuery)
	}
	if ev.RawQueryString != "status=MISMATCH&status=NO_ID&format=csv&q=Nguy%E1%BB%85n+V%C4%83n&flag&bad=%zz" {
		t.Errorf("raw query %q", ev.RawQueryString)
	}
	if want := []string{"a=1", "b=2", "c=3"}; !reflect.DeepEqual(ev.Cookies, want) {
		t.Errorf("cookies %v, want %v", ev.Cookies, want)
	}
	if _, ok := ev.Headers["cookie"]; ok {
		t.Error("cookie header kept in headers")
	}
	if ev.Headers["x-multi"] != "one,two" {
		t.Errorf("x-multi %q", ev.Headers["x-multi"])
	}
	for name := range ev.Headers {
		if name != strings.ToLower(name) {
			t.Errorf("header %q not lower-cased", name)
		}
	}
	if ev.RequestContext.HTTP.SourceIP != "2001:db8::1" {
		t.Errorf("source IP %q", ev.RequestContext.HTTP.SourceIP)
	}
	if ev.Headers["x-forwarded-for"] != "203.0.113.9, 2001:db8::1" {
		t.Errorf("x-forwarded-for %q", ev.Headers["x-forwarded-for"])
	}
	if ev.Headers["x-forwarded-proto"] != "http" {
		t.Errorf("x-forwarded-proto %q", ev.Headers["x-forwarded-proto"])
	}

	none, err := (&Bridge{}).Event(httptest.NewRequest("GET", "/v1/trustlist", nil))
	if err != nil {
		t.Fatal(err)
	}
	if raw, _ := json.Marshal(none); bytes.Contains(raw, []byte("queryStringParameters")) || bytes.Contains(raw, []byte(`"cookies"`)) {
		t.Errorf("empty query and cookies must be omitted like API Gateway does: %s", raw)
	}
}

// countingReader fails the test if the bridge reads a body it should have refused.
type countingReader struct{ n int }

func (c *countingReader) Read(p []byte) (int, error) {
	c.n += len(p)
	clear(p)
	return len(p), nil
}

func TestBridgeBodyLimits(t *testing.T) {
	t.Run("declared length over 10 MB is refused unread", func(t *testing.T) {
		body := &countingReader{}
		r := httptest.NewRequest("POST", "/v1/imports", body)
		r.ContentLength = MaxRequestBodyBytes + 1
		w := httptest.NewRecorder()
		(&Bridge{Routes: NewRouter()}).ServeHTTP(w, r)
		assertContractError(t, w, 413, CodePayloadTooLarge)
		if body.n != 0 {
			t.Errorf("read %d bytes of a body already known to be too large", body.n)
		}
	})
	t.Run("undeclared length is cut at the limit", func(t *testing.T) {
		body := &countingReader{}
		r := httptest.NewRequest("POST", "/v1/imports", io.LimitReader(body, 5000))
		r.ContentLength = -1
		w := httptest.NewRecorder()
		(&Bridge{Routes: NewRouter(), MaxBodyBytes: 1000}).ServeHTTP(w, r)
		assertContractError(t, w, 413, CodePayloadTooLarge)
		if body.n > 1000+512+1 { // io.ReadAll's first buffer is 512 bytes
			t.Errorf("read %d bytes for a 1000-byte limit", body.n)
		}
	})
	t.Run("exactly the limit passes", func(t *testing.T) {
		r := httptest.NewRequest("POST", "/x", bytes.NewReader(make([]byte, 1000)))
		ev, err := (&Bridge{MaxBodyBytes: 1000}).Event(r)
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := RequestBody(ev, 0); len(b) != 1000 {
			t.Errorf("body %d bytes", len(b))
		}
	})
	t.Run("event over the Lambda payload limit", func(t *testing.T) {
		// 6 MB of binary is 8 MB once base64-encoded: under API Gateway's limit, over
		// Lambda's. The real limit is used; nothing smaller stands in for it.
		r := httptest.NewRequest("POST", "/v1/imports", bytes.NewReader(make([]byte, 5<<20)))
		r.Header.Set("Content-Type", "application/octet-stream")
		w := httptest.NewRecorder()
		(&Bridge{Routes: NewRouter()}).ServeHTTP(w, r)
		assertContractError(t, w, 413, CodePayloadTooLarge)
	})
}

func assertContractError(t *testing.T, w *httptest.ResponseRecorder, status int, code string) ErrorDetail {
	t.Helper()
	if w.Code != status {
		t.Errorf("status %d, want %d (body %s)", w.Code, status, w.Body)
	}
	if ct := w.Header().Get("Content-Type"); ct != contentTypeJSON {
		t.Errorf("content type %q", ct)
	}
	var body ErrorBody
	dec := json.NewDecoder(w.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		t.Fatalf("error body is not the contract's: %v", err)
	}
	if body.Error.Code != code || body.Error.Message == "" {
		t.Errorf("error %+v, want code %q and a message", body.Error, code)
	}
	return body.Error
}

func TestBridgeWritesResponses(t *testing.T) {
	png := []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\x00")
	router := NewRouter()
	router.Handle("GET /v1/passports/{uvci}/qr.png", func(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		if lc, ok := lambdacontext.FromContext(ctx); !ok || lc.AwsRequestID != req.RequestContext.RequestID {
			t.Error("handler context lacks the Lambda context")
		}
		if req.PathParameters["uvci"] != "URN:UVCI:01:VN:ABC123#Q" {
			t.Errorf("uvci %q", req.PathParameters["uvci"])
		}
		return PNG(png, 300), nil
	})
	router.Handle("POST /v1/session", func(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		resp := JSON(201, map[string]int{"n": 1})
		resp.Cookies = []string{"a=1; Path=/; HttpOnly", "b=2; Path=/"}
		resp.MultiValueHeaders = map[string][]string{"Vary": {"Origin", "Accept"}}
		return resp, nil
	})
	srv := httptest.NewServer(&Bridge{Routes: router})
	defer srv.Close()

	res, err := http.Get(srv.URL + "/v1/passports/URN%3AUVCI%3A01%3AVN%3AABC123%23Q/qr.png")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !bytes.Equal(got, png) {
		t.Errorf("status %d, body %q", res.StatusCode, got)
	}
	if res.Header.Get("Content-Type") != "image/png" || res.Header.Get("Cache-Control") != "private, max-age=300" {
		t.Errorf("headers %v", res.Header)
	}
	if res.Header.Get("Apigw-Requestid") == "" {
		t.Error("no apigw-requestid header")
	}

	res, err = http.Post(srv.URL+"/v1/session", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 201 {
		t.Errorf("status %d", res.StatusCode)
	}
	if c := res.Header.Values("Set-Cookie"); !reflect.DeepEqual(c, []string{"a=1; Path=/; HttpOnly", "b=2; Path=/"}) {
		t.Errorf("set-cookie %q", c)
	}
	if v := res.Header.Values("Vary"); !reflect.DeepEqual(v, []string{"Origin", "Accept"}) {
		t.Errorf("vary %q", v)
	}
}

func TestBridgeRouting(t *testing.T) {
	var seen events.APIGatewayV2HTTPRequest
	echo := func(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		seen = req
		return JSON(200, req.PathParameters), nil
	}
	router := NewRouter()
	router.Handle("GET /v1/doses/{source_id}", echo)
	router.Handle("POST /v1/doses", echo)
	b := &Bridge{Routes: router, Random: zeroReader{}}

	cases := []struct {
		method, target string
		status         int
		routeKey       string
		param          string
	}{
		{"GET", "/v1/doses/A%20B", 200, "GET /v1/doses/{source_id}", "A B"},
		{"GET", "/v1/doses/S-%C3%A1", 200, "GET /v1/doses/{source_id}", "S-á"},
		{"POST", "/v1/doses", 200, "POST /v1/doses", ""},
		{"DELETE", "/v1/doses", 405, "$default", ""},
		{"GET", "/v1/nope", 404, "$default", ""},
		{"GET", "/v1/doses/a%2Fb", 404, "$default", ""}, // "%2F" is a path separator once decoded, as on AWS
		{"GET", "/v1/doses/", 404, "$default", ""},
		{"GET", "/v1/doses/50%25", 400, "", ""}, // AWS refuses it: decoded twice, "%" alone fails
	}
	for _, c := range cases {
		t.Run(c.method+" "+c.target, func(t *testing.T) {
			seen = events.APIGatewayV2HTTPRequest{}
			w := httptest.NewRecorder()
			b.ServeHTTP(w, httptest.NewRequest(c.method, c.target, nil))
			if w.Code != c.status {
				t.Fatalf("status %d, want %d: %s", w.Code, c.status, w.Body)
			}
			switch c.status {
			case 200:
				if seen.RouteKey != c.routeKey || seen.RequestContext.RouteKey != c.routeKey {
					t.Errorf("route key %q / %q", seen.RouteKey, seen.RequestContext.RouteKey)
				}
				if seen.PathParameters["source_id"] != c.param {
					t.Errorf("source_id %q, want %q", seen.PathParameters["source_id"], c.param)
				}
			case 405:
				assertContractError(t, w, 405, CodeMethodNotAllowed)
				if w.Header().Get("Allow") != "POST" {
					t.Errorf("Allow %q", w.Header().Get("Allow"))
				}
			case 404:
				assertContractError(t, w, 404, CodeNotFound)
			case 400:
				assertContractError(t, w, 400, CodeInvalidPath)
			}
		})
	}
}

func TestBridgeFailures(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	secret := "Nguyễn Văn An 001090012345"
	cases := []struct {
		name string
		h    Handler
		max  int
	}{
		{"function error", func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
			return events.APIGatewayV2HTTPResponse{}, errors.New("dynamodb: throttled")
		}, 0},
		{"no status code", func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
			return events.APIGatewayV2HTTPResponse{Body: secret}, nil
		}, 0},
		{"bad base64 body", func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
			return events.APIGatewayV2HTTPResponse{StatusCode: 200, Body: secret, IsBase64Encoded: true}, nil
		}, 0},
		{"response over the Lambda payload limit", func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
			return Bytes(200, "text/csv", make([]byte, LambdaPayloadLimit)), nil
		}, 0},
		{"response over a configured limit", func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
			return JSON(200, strings.Repeat("x", 2000)), nil
		}, 1000},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			logs.Reset()
			w := httptest.NewRecorder()
			(&Bridge{Handler: c.h, Logger: logger, MaxEventBytes: c.max}).ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
			assertContractError(t, w, 500, CodeInternal)
			if strings.Contains(w.Body.String(), secret) || strings.Contains(w.Body.String(), "dynamodb") {
				t.Errorf("internal detail leaked to the caller: %s", w.Body)
			}
			if logs.Len() == 0 {
				t.Error("failure not logged")
			}
			if strings.Contains(logs.String(), "001090012345") {
				t.Errorf("personal data logged: %s", logs.String())
			}
		})
	}
}

func TestBridgeNoContentSniffing(t *testing.T) {
	h := func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		return events.APIGatewayV2HTTPResponse{StatusCode: 200, Body: "<html><script>alert(1)</script>"}, nil
	}
	w := httptest.NewRecorder()
	(&Bridge{Handler: h}).ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
	if ct := w.Header().Get("Content-Type"); ct != "" {
		t.Errorf("content type sniffed as %q", ct)
	}
}

func TestWriteResponseBase64(t *testing.T) {
	payload := []byte{0, 1, 2, 0xff, 0xfe}
	w := httptest.NewRecorder()
	err := WriteResponse(w, events.APIGatewayV2HTTPResponse{StatusCode: 200, Body: base64.StdEncoding.EncodeToString(payload), IsBase64Encoded: true})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(w.Body.Bytes(), payload) {
		t.Errorf("body %v", w.Body.Bytes())
	}
	if err := WriteResponse(httptest.NewRecorder(), events.APIGatewayV2HTTPResponse{StatusCode: 600}); !errors.Is(err, ErrBadResponse) {
		t.Errorf("status 600: %v", err)
	}
}
