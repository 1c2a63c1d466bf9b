package faults

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Bounds of a hung system, not speed checks: a slow machine must still pass.
const (
	startTimeout = time.Minute
	stopTimeout  = 30 * time.Second
	cliTimeout   = 5 * time.Minute
)

// dataRoot is where the bulk runs keep their data directories: VAXPASS_FAULT_TMPDIR, else
// /dev/shm when it is a writable directory with 1 GiB free (a SIGKILL does not lose what
// the kernel holds, so the disk's fsync latency would only slow the run; containers
// often give /dev/shm only 64 MiB), else the test's temporary directory.
func dataRoot(t *testing.T) string {
	t.Helper()
	base := os.Getenv("VAXPASS_FAULT_TMPDIR")
	if base == "" {
		var st syscall.Statfs_t
		if syscall.Access("/dev/shm", 2 /* W_OK */) == nil && syscall.Statfs("/dev/shm", &st) == nil && st.Bavail*uint64(st.Bsize) >= 1<<30 {
			base = "/dev/shm"
		}
	}
	if base == "" {
		return t.TempDir()
	}
	dir, err := os.MkdirTemp(base, "vaxpass-faults-")
	if err != nil {
		t.Fatalf("data directory under %s: %v", base, err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// cliResult is the outcome of one CLI run.
type cliResult struct {
	stdout, stderr string
	code           int
}

// runCLI runs the vaxpass binary and returns its output and exit code.
func runCLI(t *testing.T, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cliTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, vaxpassBin, args...)
	setDeathSignal(cmd)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	res := cliResult{stdout: out.String(), stderr: errOut.String()}
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		res.code = exit.ExitCode()
	default:
		t.Fatalf("run vaxpass %s: %v", strings.Join(args, " "), err)
	}
	return res
}

// cli runs the vaxpass binary and returns its stdout, failing the test on a non-zero exit.
func cli(t *testing.T, args ...string) string {
	t.Helper()
	r := runCLI(t, args...)
	if r.code != 0 {
		t.Fatalf("vaxpass %s: exit %d\n%s", strings.Join(args, " "), r.code, r.stderr)
	}
	return r.stdout
}

// setUp loads the registry and adds the run's facilities; it returns their API keys.
func setUp(t *testing.T, data string, pop *population) []string {
	t.Helper()
	cli(t, "registry", "load", pop.registry, "--data", data)
	keys := make([]string, facilityCount)
	for i := range keys {
		keys[i] = strings.TrimSpace(cli(t, "facility", "add", "--id", facilityID(i), "--name", fmt.Sprintf("Fault site %d", i), "--data", data))
	}
	return keys
}

// syncBuffer is a bytes.Buffer safe for one writer and concurrent readers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// server is one `vaxpass serve` subprocess.
type server struct {
	t      *testing.T
	data   string
	base   string
	cmd    *exec.Cmd
	log    syncBuffer // stderr: the JSON log
	exited chan struct{}
	err    error // of Wait, once exited is closed
	http   *http.Client
}

// startServer starts `vaxpass serve` on a free loopback port and waits until it listens.
// The automatic facility signing is off: the test asks for signatures itself.
func startServer(t *testing.T, data string) *server {
	t.Helper()
	s := &server{t: t, data: data, exited: make(chan struct{}), http: &http.Client{Timeout: 5 * time.Minute}}
	s.cmd = exec.Command(vaxpassBin, "serve", "--data", data, "--addr", "127.0.0.1:0", "--sign-every", "0")
	setDeathSignal(s.cmd)
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start vaxpass serve: %v", err)
	}
	t.Cleanup(func() {
		s.kill()
		if t.Failed() {
			t.Logf("server log (%s):\n%s", data, tail(s.log.String(), 30))
		}
	})
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			s.log.Write([]byte(line + "\n"))
			var entry struct {
				Msg string `json:"msg"`
			}
			if json.Unmarshal([]byte(line), &entry) == nil {
				if addr, ok := strings.CutPrefix(entry.Msg, "listening on "); ok {
					select {
					case ready <- addr:
					default:
					}
				}
			}
		}
		io.Copy(io.Discard, stderr)
		s.err = s.cmd.Wait()
		close(s.exited)
	}()
	select {
	case addr := <-ready:
		s.base = "http://" + addr
	case <-s.exited:
		t.Fatalf("vaxpass serve exited before listening (%v):\n%s", s.err, s.log.String())
	case <-time.After(startTimeout):
		t.Fatalf("vaxpass serve did not listen within %s:\n%s", startTimeout, s.log.String())
	}
	return s
}

func tail(s string, lines int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(l[max(0, len(l)-lines):], "\n")
}

func (s *server) running() bool {
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

// kill sends SIGKILL -- a crash: no deferred code runs, no shutdown -- and waits for
// the process to be gone (and its file lock with it).
func (s *server) kill() {
	if !s.running() {
		return
	}
	s.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-s.exited:
	case <-time.After(stopTimeout):
		s.t.Errorf("vaxpass serve (pid %d) did not die on SIGKILL", s.cmd.Process.Pid)
	}
}

// stop asks for a clean shutdown (SIGTERM) and fails the test unless the server exits 0.
func (s *server) stop() {
	s.t.Helper()
	if !s.running() {
		s.t.Fatalf("server exited before stop: %v\n%s", s.err, tail(s.log.String(), 30))
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(stopTimeout):
		s.kill()
		s.t.Fatalf("vaxpass serve did not stop within %s of SIGTERM", stopTimeout)
	}
	if s.err != nil {
		s.t.Fatalf("vaxpass serve exited with %v after SIGTERM:\n%s", s.err, tail(s.log.String(), 30))
	}
}

// request sends one request as the facility holding key; a transport error is returned
// (the server may have been killed), never fatal.
func (s *server) request(method, path, key string, body []byte) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, s.base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := s.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	return resp.StatusCode, b, err
}

// uploadResult and uploadReport are the contract's answer to POST /v1/doses, declared
// here: the test reads what the API says.
type uploadResult struct {
	SourceID string `json:"source_id"`
	Status   string `json:"status"`
}

type uploadReport struct {
	Accepted   int            `json:"accepted"`
	Duplicates int            `json:"duplicates"`
	Rejected   int            `json:"rejected"`
	Results    []uploadResult `json:"results"`
}

// upload posts a batch and decodes the answer; ok is false when no 200 answer came
// (the connection broke, or the server answered an error).
func (s *server) upload(pop *population, b batch, key string) (rep uploadReport, status int, err error) {
	status, body, err := s.request("POST", "/v1/doses", key, pop.body(b))
	if err != nil {
		return rep, status, err
	}
	if status != http.StatusOK {
		return rep, status, fmt.Errorf("POST /v1/doses: status %d: %.300s", status, body)
	}
	if err := json.Unmarshal(body, &rep); err != nil {
		return rep, status, fmt.Errorf("POST /v1/doses: decode answer: %w", err)
	}
	if len(rep.Results) != len(b.records) {
		return rep, status, fmt.Errorf("POST /v1/doses: %d results for %d records", len(rep.Results), len(b.records))
	}
	return rep, status, nil
}

// pendingCount reads how many of a facility's records wait for the matcher (the first
// worklist page is enough to tell "none" from "some").
func (s *server) pendingCount(key string) (int, error) {
	status, body, err := s.request("GET", "/v1/worklist?status=PENDING", key, nil)
	if err != nil {
		return 0, err
	}
	if status != http.StatusOK {
		return 0, fmt.Errorf("GET /v1/worklist: status %d: %.300s", status, body)
	}
	var page struct {
		Records []json.RawMessage `json:"records"`
	}
	if err := json.Unmarshal(body, &page); err != nil {
		return 0, err
	}
	return len(page.Records), nil
}

// waitMatched polls until no facility has a record waiting for the matcher.
func (s *server) waitMatched(keys []string, timeout time.Duration) {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		total := 0
		for _, k := range keys {
			n, err := s.pendingCount(k)
			if err != nil {
				s.t.Fatalf("wait for the matcher: %v", err)
			}
			total += n
		}
		if total == 0 {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%d records still PENDING after %s", total, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// signAll asks every facility to sign (POST /v1/signatures) and returns how many people
// each signed.
func (s *server) signAll(keys []string) []int {
	s.t.Helper()
	out := make([]int, len(keys))
	for i, k := range keys {
		status, body, err := s.request("POST", "/v1/signatures", k, nil)
		if err != nil || status != http.StatusOK {
			s.t.Fatalf("POST /v1/signatures as %s: status %d, %v: %.300s", facilityID(i), status, err, body)
		}
		var res struct {
			Signed int `json:"signed"`
		}
		if err := json.Unmarshal(body, &res); err != nil {
			s.t.Fatal(err)
		}
		out[i] = res.Signed
	}
	return out
}

// doseCertificate reads GET /v1/doses/{source_id} and tells whether it shows a certificate.
func (s *server) doseCertificate(key, sourceID string) bool {
	status, body, err := s.request("GET", "/v1/doses/"+url.PathEscape(sourceID), key, nil)
	if err != nil || status != http.StatusOK {
		return false
	}
	var v struct {
		Certificate *struct {
			UVCI string `json:"uvci"`
		} `json:"certificate"`
	}
	return json.Unmarshal(body, &v) == nil && v.Certificate != nil
}

// ledger is what the client knows from the server's answers.
type ledger struct {
	sent     map[doseKey]bool
	acked    map[doseKey]bool // answered accepted or duplicate
	accepted map[doseKey]int  // times answered accepted: more than once is a duplicate insert
	rejected map[doseKey]bool
}

func newLedger() *ledger {
	return &ledger{sent: map[doseKey]bool{}, acked: map[doseKey]bool{}, accepted: map[doseKey]int{}, rejected: map[doseKey]bool{}}
}

func (l *ledger) markSent(pop *population, b batch) {
	for _, i := range b.records {
		l.sent[pop.key(i)] = true
	}
}

// record notes an upload answer; it returns the answers that break the contract.
func (l *ledger) record(pop *population, b batch, rep uploadReport) []string {
	var bad []string
	for j, r := range rep.Results {
		k := pop.key(b.records[j])
		if r.SourceID != k.SourceID {
			bad = append(bad, fmt.Sprintf("result %d names %s, the record is %s", j, r.SourceID, k.SourceID))
			continue
		}
		switch r.Status {
		case "accepted":
			l.accepted[k]++
			l.acked[k] = true
			if l.accepted[k] > 1 {
				bad = append(bad, fmt.Sprintf("%s accepted %d times: stored twice", k, l.accepted[k]))
			}
		case "duplicate":
			l.acked[k] = true
		case "rejected":
			l.rejected[k] = true
		default:
			bad = append(bad, fmt.Sprintf("%s: status %q", k, r.Status))
		}
	}
	return bad
}
