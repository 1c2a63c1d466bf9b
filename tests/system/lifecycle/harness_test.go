// Package lifecycle holds the acceptance tests of the certificate's life (issue 6, lines 1
// and 2) and of revocation and the audit trail: the real CLI and `vaxpass serve` on a
// fresh data directory with a generated registry, one facility, an upload, facility
// signing and central signing drained by the server.
//
// The server holds the database lock: the tests stop it before running CLI commands
// (renew, revoke, audit, registry load) on the same data directory, and read the store
// directly only while it is stopped.
//
// Size: VAXPASS_LIFECYCLE_PEOPLE (default 200) registry people, as many dose records.
package lifecycle

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/domain/dose"
	"github.com/vaxpass/vaxpass/shared/domain/uvci"
	"github.com/vaxpass/vaxpass/shared/store/embedded"
	"github.com/vaxpass/vaxpass/shared/tool/synth"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// cli builds ./cmd/vaxpass once per test binary.
func cli(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the CLI and runs the server")
	}
	binOnce.Do(func() {
		out, err := exec.Command("go", "env", "GOMOD").Output()
		if err != nil {
			binErr = err
			return
		}
		root := filepath.Dir(strings.TrimSpace(string(out)))
		dir, err := os.MkdirTemp("", "vaxpass-lifecycle-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "vaxpass")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/vaxpass")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// result is one finished CLI run.
type result struct {
	code           int
	stdout, stderr string
}

// run runs the CLI and returns its exit code and output (never fails the test itself).
func run(t *testing.T, bin string, args ...string) result {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("vaxpass %s: %v", strings.Join(args, " "), err)
	}
	return result{code, out.String(), errb.String()}
}

// mustRun runs the CLI and fails the test unless it exits 0.
func mustRun(t *testing.T, bin string, args ...string) result {
	t.Helper()
	r := run(t, bin, args...)
	if r.code != 0 {
		t.Fatalf("vaxpass %s: exit %d\n%s", strings.Join(args, " "), r.code, r.stderr)
	}
	return r
}

func envInt(t *testing.T, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive integer", name, s)
	}
	return n
}

// server is a running `vaxpass serve`.
type server struct {
	t      *testing.T
	cmd    *exec.Cmd
	base   string
	stderr *syncBuffer
	done   chan error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

var listening = regexp.MustCompile(`listening on (127\.0\.0\.1:\d+)`)

// serve starts the server on a free port and waits until it listens.
func serve(t *testing.T, bin, data string) *server {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--data", data, "--addr", "127.0.0.1:0")
	s := &server{t: t, cmd: cmd, stderr: &syncBuffer{}, done: make(chan error, 1)}
	cmd.Stderr = s.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.done <- cmd.Wait() }()
	t.Cleanup(func() { s.stop() })
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if m := listening.FindStringSubmatch(s.stderr.String()); m != nil {
			s.base = "http://" + m[1]
			return s
		}
		select {
		case err := <-s.done:
			t.Fatalf("serve exited: %v\n%s", err, s.stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("serve did not listen within a minute:\n%s", s.stderr.String())
	return nil
}

// stop interrupts the server and waits for it to exit (and release the database).
func (s *server) stop() {
	if s.cmd.ProcessState != nil || s.cmd.Process == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGINT)
	select {
	case err := <-s.done:
		if err != nil {
			s.t.Errorf("serve exited with %v\n%s", err, s.stderr.String())
		}
	case <-time.After(30 * time.Second):
		s.cmd.Process.Kill()
		s.t.Errorf("serve did not stop within 30s\n%s", s.stderr.String())
	}
}

// call makes one API request; key is a Bearer credential ("" for none).
func (s *server) call(method, path, key string, body any) (int, []byte) {
	s.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			s.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.base+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// waitFor polls cond until it holds (a minute at most).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// world is a data directory with certificates issued through the whole pipeline.
type world struct {
	bin, data, gen, apiKey string
	records                []dose.Record
	// certs are the issued certificates, by person.
	certs map[string]vaxpass.Certificate
}

const facilityID = "site-1"

// issue builds a world: a generated registry (clean records only: every vaccinated person
// is VERIFIED), a facility, an upload of every record, facility signing, and central
// signing drained by the server; the server is stopped at the end.
func issue(t *testing.T, people int, seed int) *world {
	t.Helper()
	w := &world{bin: cli(t), data: filepath.Join(t.TempDir(), "data"), gen: t.TempDir()}
	mustRun(t, w.bin, "registry", "generate", "--people", strconv.Itoa(people), "--seed", strconv.Itoa(seed),
		"--mix", "only,clean=1", "--out", w.gen)
	mustRun(t, w.bin, "registry", "load", filepath.Join(w.gen, synth.RegistryFile), "--data", w.data)
	w.apiKey = strings.TrimSpace(mustRun(t, w.bin, "facility", "add", "--id", facilityID, "--name", "Trạm Y tế", "--data", w.data).stdout)

	f, err := os.Open(filepath.Join(w.gen, synth.RecordsFile))
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r dose.Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		w.records = append(w.records, r)
	}
	f.Close()

	srv := serve(t, w.bin, w.data)
	for i := 0; i < len(w.records); i += 1000 {
		batch := w.records[i:min(i+1000, len(w.records))]
		code, body := srv.call("POST", "/v1/doses", w.apiKey, map[string]any{"records": batch})
		if code != 200 {
			t.Fatalf("upload: %d %s", code, body)
		}
	}
	waitFor(t, "matching", func() bool {
		code, body := srv.call("GET", "/v1/worklist?status=PENDING", w.apiKey, nil)
		var page struct{ Records []json.RawMessage }
		json.Unmarshal(body, &page)
		return code == 200 && len(page.Records) == 0
	})
	code, body := srv.call("POST", "/v1/signatures", w.apiKey, nil)
	var signed struct{ Signed int }
	if code != 200 || json.Unmarshal(body, &signed) != nil || signed.Signed == 0 {
		t.Fatalf("facility signing: %d %s", code, body)
	}
	waitFor(t, "central signing", func() bool {
		return len(certificatesOf(t, srv, w)) == signed.Signed
	})
	srv.stop()
	w.certs = w.readCerts(t)
	if len(w.certs) != signed.Signed {
		t.Fatalf("%d certificates stored, %d people signed", len(w.certs), signed.Signed)
	}
	return w
}

// certificatesOf asks the facility API which certificates its records have now.
func certificatesOf(t *testing.T, srv *server, w *world) map[string]string {
	byUVCI := map[string]string{}
	for _, r := range w.records {
		code, body := srv.call("GET", "/v1/doses/"+r.SourceID, w.apiKey, nil)
		if code != 200 {
			t.Fatalf("GET dose %s: %d %s", r.SourceID, code, body)
		}
		var v struct {
			Certificate *struct{ UVCI string } `json:"certificate"`
		}
		json.Unmarshal(body, &v)
		if v.Certificate != nil {
			byUVCI[v.Certificate.UVCI] = r.SourceID
		}
	}
	return byUVCI
}

// readCerts reads the active certificates from the store (the server must be stopped).
func (w *world) readCerts(t *testing.T) map[string]vaxpass.Certificate {
	t.Helper()
	db, err := embedded.Open(w.data)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	st, err := embedded.OpenStore(db, embedded.StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]vaxpass.Certificate{}
	cursor := ""
	for {
		page, next, err := st.ListCertificates(context.Background(), cursor, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range page {
			if c.Status == vaxpass.CertIssued {
				out[c.PersonID] = c
			}
		}
		if next == "" {
			return out
		}
		cursor = next
	}
}

// verdict is the part of `vaxpass verify`'s JSON the tests read.
type verdict struct {
	Valid     bool   `json:"valid"`
	Step      string `json:"step"`
	Reason    string `json:"reason"`
	ExpiresAt string `json:"expires_at"`
	IssuedAt  string `json:"issued_at"`
	DCC       struct {
		Nam struct {
			FNT string `json:"fnt"`
			GNT string `json:"gnt"`
		} `json:"nam"`
		V []struct {
			CI string `json:"ci"`
		} `json:"v"`
	} `json:"dcc"`
}

// verify runs `vaxpass verify` on an HC1 (from stdin) against the data directory's trust
// list (and revocation list, when present).
func verify(t *testing.T, bin, data, hc1 string) (verdict, int) {
	t.Helper()
	cmd := exec.Command(bin, "verify", "--data", data, "-")
	cmd.Stdin = strings.NewReader(hc1)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	var v verdict
	if err := json.Unmarshal(out.Bytes(), &v); err != nil {
		t.Fatalf("verify output %q (stderr %s): %v", out.String(), errb.String(), err)
	}
	return v, code
}

// uvciCheck is the UVCI check character of s.
func uvciCheck(s string) (byte, error) { return uvci.CheckChar(s) }

// nextSecond waits until the clock is past the second of the latest issue: iat has whole
// seconds, so a renewal run renews only certificates issued before its starting second (a
// certificate issued in that second could not get a later expiry).
func nextSecond(certs map[string]vaxpass.Certificate) {
	var last time.Time
	for _, c := range certs {
		if c.IssuedAt.After(last) {
			last = c.IssuedAt
		}
	}
	if d := time.Until(last.Truncate(time.Second).Add(time.Second)); d > 0 {
		time.Sleep(d)
	}
}
