package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"
)

// maxBody bounds an answer read (the largest, an audit export, stays far below).
const maxBody = 64 << 20

// Client sends requests to a system's HTTP API as the holder of Key: a facility's API key
// or an ops key, sent as a Bearer token ("" sends none).
type Client struct {
	URL  string // http://host:port
	Key  string
	HTTP *http.Client
}

// NewClient returns a client of the API at url. Its requests time out after 5 minutes:
// a bound on a hung server (signing a whole facility can take a while on a slow disk).
func NewClient(url, key string) *Client {
	return &Client{URL: url, Key: key, HTTP: &http.Client{Timeout: 5 * time.Minute}}
}

// WithKey returns a client of the same API holding another key.
func (c *Client) WithKey(key string) *Client {
	d := *c
	d.Key = key
	return &d
}

// Response is one answer.
type Response struct {
	Status int
	Body   []byte
	Header http.Header
}

// Send sends one request (body nil: none; contentType "": no header) and returns the
// answer; an error is the transport's (the server may have been killed), never a status.
func (c *Client) Send(method, path string, body []byte, contentType string) (Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, c.URL+path, rd)
	if err != nil {
		return Response{}, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if c.Key != "" {
		req.Header.Set("Authorization", "Bearer "+c.Key)
	}
	res, err := c.HTTP.Do(req)
	if err != nil {
		return Response{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, maxBody))
	return Response{Status: res.StatusCode, Body: b, Header: res.Header}, err
}

// Do is Send failing the test on a transport error.
func (c *Client) Do(t testing.TB, method, path string, body []byte, contentType string) Response {
	t.Helper()
	r, err := c.Send(method, path, body, contentType)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

// Call sends in as JSON (nil: no body) and returns the answer, whatever its status.
func (c *Client) Call(t testing.TB, method, path string, in any) Response {
	t.Helper()
	if in == nil {
		return c.Do(t, method, path, nil, "")
	}
	body, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	return c.Do(t, method, path, body, "application/json")
}

// Expect is Call requiring the status want; it decodes the JSON answer into out (when
// not nil).
func (c *Client) Expect(t testing.TB, method, path string, in any, want int, out any) Response {
	t.Helper()
	r := c.Call(t, method, path, in)
	if r.Status != want {
		t.Fatalf("%s %s: status %d, want %d: %.500s", method, path, r.Status, want, r.Body)
	}
	if out != nil {
		if err := json.Unmarshal(r.Body, out); err != nil {
			t.Fatalf("%s %s: decode answer: %v: %.500s", method, path, err, r.Body)
		}
	}
	return r
}

// String is the answer for a message: status and the start of the body.
func (r Response) String() string { return fmt.Sprintf("%d %.300s", r.Status, r.Body) }

// Signed is what a facility's signing did (POST /v1/signatures, and its run).
type Signed struct {
	RunID   string `json:"run_id"`
	Status  string `json:"status"`
	Signed  int    `json:"signed"`
	Waiting int    `json:"waiting"`
}

// Sign asks the facility of the client's key to sign (POST /v1/signatures) and, when the
// answer is 202 (a run goes on in the background), follows the run until it is done
// (GET /v1/signatures/{run_id}). A transport error or another status fails the test.
func (c *Client) Sign(t testing.TB, patience time.Duration) Signed {
	t.Helper()
	var s Signed
	r := c.Call(t, "POST", "/v1/signatures", nil)
	switch r.Status {
	case http.StatusOK:
		s.Status = "done"
	case http.StatusAccepted:
	default:
		t.Fatalf("POST /v1/signatures: status %d: %.500s", r.Status, r.Body)
	}
	if err := json.Unmarshal(r.Body, &s); err != nil {
		t.Fatalf("POST /v1/signatures: %v: %.500s", err, r.Body)
	}
	return c.FollowRun(t, s, patience)
}

// FollowRun polls a signing run until it is done (s as POST answered it).
func (c *Client) FollowRun(t testing.TB, s Signed, patience time.Duration) Signed {
	t.Helper()
	deadline := time.Now().Add(patience)
	for s.Status == "running" {
		if time.Now().After(deadline) {
			t.Fatalf("signing run %s not done after %s: %+v", s.RunID, patience, s)
		}
		time.Sleep(20 * time.Millisecond)
		c.Expect(t, "GET", "/v1/signatures/"+s.RunID, nil, http.StatusOK, &s)
	}
	if s.Status != "done" {
		t.Fatalf("signing run %s: %+v", s.RunID, s)
	}
	return s
}
