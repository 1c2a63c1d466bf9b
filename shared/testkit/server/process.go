package server

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/testkit/cli"
)

// Bounds of a hung server, not speed checks: a slow machine must still pass.
const (
	startTimeout = time.Minute
	stopTimeout  = 30 * time.Second
	// logLines is how much of the server's log a failed test shows.
	logLines = 40
)

// Process is one `vaxpass serve` subprocess: the binary a user runs, killed when the test
// ends whatever happens.
type Process struct {
	URL  string // http://127.0.0.1:port
	Data string // its data directory

	t      testing.TB
	cmd    *exec.Cmd
	stdout syncBuffer
	log    syncBuffer // stderr: the JSON log
	exited chan struct{}
	err    error // of Wait, once exited is closed
}

// Spawn starts `vaxpass serve --data data --addr 127.0.0.1:0 flags...` and waits until
// it logs "listening on" (a minute at most).
func Spawn(t testing.TB, data string, flags ...string) *Process {
	t.Helper()
	args := append([]string{"serve", "--data", data, "--addr", "127.0.0.1:0"}, flags...)
	p := &Process{t: t, Data: data, cmd: cli.Command(t, args...), exited: make(chan struct{})}
	p.cmd.Stdout = &p.stdout
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start vaxpass serve: %v", err)
	}
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("server log (%s):\n%s", data, cli.Tail(p.log.String(), logLines))
		}
	})
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			p.log.Write([]byte(line + "\n"))
			if addr, ok := listeningOn(line); ok {
				select {
				case ready <- addr:
				default:
				}
			}
		}
		io.Copy(io.Discard, stderr)
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	select {
	case addr := <-ready:
		p.URL = "http://" + addr
	case <-p.exited:
		t.Fatalf("vaxpass serve exited before listening (%v):\n%s", p.err, p.log.String())
	case <-time.After(startTimeout):
		t.Fatalf("vaxpass serve did not log \"listening on\" within %s:\n%s", startTimeout, p.log.String())
	}
	return p
}

// listeningOn reads the address of serve's JSON log line "listening on <addr>".
func listeningOn(line string) (string, bool) {
	var entry struct {
		Msg string `json:"msg"`
	}
	if json.Unmarshal([]byte(line), &entry) != nil {
		return "", false
	}
	return strings.CutPrefix(entry.Msg, "listening on ")
}

// Stdout is what the server printed on stdout so far (the demo's API key).
func (p *Process) Stdout() string { return p.stdout.String() }

// Log is the server's log (stderr) so far.
func (p *Process) Log() string { return p.log.String() }

// Running tells whether the process is still alive.
func (p *Process) Running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// Err is how the process ended (nil while it runs, or after a clean exit).
func (p *Process) Err() error {
	if p.Running() {
		return nil
	}
	return p.err
}

// Kill sends SIGKILL -- a crash: no deferred code runs, no shutdown -- and waits until
// the process is gone, and its lock on the data directory with it.
func (p *Process) Kill() {
	if !p.Running() {
		return
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-p.exited:
	case <-time.After(stopTimeout):
		p.t.Errorf("vaxpass serve (pid %d) did not die on SIGKILL", p.cmd.Process.Pid)
	}
}

// Stop asks for a clean shutdown (SIGTERM) and fails the test unless the server exits 0
// within 30 s.
func (p *Process) Stop() {
	p.t.Helper()
	if !p.Running() {
		p.t.Fatalf("vaxpass serve exited before stop: %v\n%s", p.err, cli.Tail(p.log.String(), logLines))
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(stopTimeout):
		p.Kill()
		p.t.Fatalf("vaxpass serve did not stop within %s of SIGTERM", stopTimeout)
	}
	if p.err != nil {
		p.t.Fatalf("vaxpass serve exited with %v after SIGTERM:\n%s", p.err, cli.Tail(p.log.String(), logLines))
	}
}

// DemoKey waits for the API key `serve --demo` prints on stdout (10 s at most).
func (p *Process) DemoKey(t testing.TB) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		key := strings.TrimSpace(p.Stdout())
		if strings.HasPrefix(key, "vxp_") {
			return key
		}
		if time.Now().After(deadline) {
			t.Fatalf("no demo API key on stdout within 10s: stdout %q", key)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Client returns a client of the server's API holding key ("" for none).
func (p *Process) Client(key string) *Client { return NewClient(p.URL, key) }

// syncBuffer is a bytes.Buffer safe for one writer and concurrent readers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(q []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(q)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
