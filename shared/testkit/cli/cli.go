// Package cli gives tests the real vaxpass binary: built once per test binary from the
// module's ./cmd/vaxpass (or taken from $VAXPASS_BIN), and run as a user runs it.
//
//	out := cli.Must(t, "facility", "add", "--id", "site-1", "--name", "Site", "--data", dir).Stdout
//	r := cli.Runner{Env: []string{"AWS_ENDPOINT_URL=" + url}}.Run(t, "dsc", "publish", ...)
//
// Every command runs with the test's environment plus Runner.Env, and (on Linux) dies with
// the test process, so a test binary killed by its -timeout leaves no vaxpass behind.
package cli

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// EnvBin names a binary built elsewhere (CI's build step) to test as is instead of
// building one.
const EnvBin = "VAXPASS_BIN"

// binPrefix starts the name of the temporary directory a build goes to; the process ID
// follows, so that a later build can remove what finished test binaries left behind.
const binPrefix = "vaxpass-testkit-"

var (
	rootOnce sync.Once
	root     string
	rootErr  error

	binOnce sync.Once
	bin     string
	binErr  error
)

// ModuleRoot returns the directory of the module's go.mod (go env GOMOD, run where the
// test runs).
func ModuleRoot(t testing.TB) string {
	t.Helper()
	r, err := moduleRoot()
	if err != nil {
		t.Fatalf("cannot find the module root: %v", err)
	}
	return r
}

func moduleRoot() (string, error) {
	rootOnce.Do(func() {
		out, err := exec.Command("go", "env", "GOMOD").Output()
		gomod := strings.TrimSpace(string(out))
		switch {
		case err != nil:
			rootErr = fmt.Errorf("go env GOMOD: %w", err)
		case gomod == "" || gomod == os.DevNull:
			rootErr = errors.New("go env GOMOD: not inside a module")
		default:
			root = filepath.Dir(gomod)
		}
	})
	return root, rootErr
}

// Bin returns the vaxpass binary: $VAXPASS_BIN, or ./cmd/vaxpass built (CGO_ENABLED=0,
// as released) into a temporary directory on the first call of the test binary.
func Bin(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		if p := os.Getenv(EnvBin); p != "" {
			if bin, binErr = filepath.Abs(p); binErr == nil {
				_, binErr = os.Stat(bin)
			}
			if binErr != nil {
				binErr = fmt.Errorf("%s: %w", EnvBin, binErr)
			}
			return
		}
		r, err := moduleRoot()
		if err != nil {
			binErr = fmt.Errorf("cannot find the module root: %w", err)
			return
		}
		bin, binErr = build(r)
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return bin
}

func build(root string) (string, error) {
	sweep()
	dir, err := os.MkdirTemp("", binPrefix+strconv.Itoa(os.Getpid())+"-")
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, "vaxpass")
	cmd := exec.Command("go", "build", "-o", out, "./cmd/vaxpass")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("go build ./cmd/vaxpass: %v\n%s", err, msg)
	}
	return out, nil
}

// sweep removes the binaries of test binaries that have exited: nothing runs when the
// last test ends, so each build cleans up after the earlier ones.
func sweep() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), binPrefix+"*-*"))
	for _, d := range dirs {
		pidText, _, _ := strings.Cut(strings.TrimPrefix(filepath.Base(d), binPrefix), "-")
		pid, err := strconv.Atoi(pidText)
		if err != nil || pid == os.Getpid() {
			continue
		}
		if p, err := os.FindProcess(pid); err == nil && errors.Is(p.Signal(syscall.Signal(0)), os.ErrProcessDone) {
			os.RemoveAll(d)
		}
	}
}

// Result is the outcome of one finished run.
type Result struct {
	Stdout, Stderr string
	Code           int           // exit code
	Took           time.Duration // from start to exit
}

// Runner runs the binary; the zero Runner runs it with the test's environment and no
// input. It is a value: derive one per need (cli.Runner{Stdin: hc1}.Run(...)).
type Runner struct {
	// Env is added to the test's environment ("NAME=value"; a later entry wins).
	Env []string
	// Stdin is the command's input.
	Stdin string
	// Stdout, when set, receives the output instead of Result.Stdout (a large one, to a
	// file).
	Stdout io.Writer
	// Timeout bounds a run; zero: the test binary's deadline less a minute, so that a
	// hung command fails the test with its output instead of the whole binary panicking.
	Timeout time.Duration
	// Setup, when set, changes the command before it starts (its binary, its credentials).
	Setup func(*exec.Cmd)
}

// Command returns the exec.Cmd of a run, for a test that drives the process itself (reads
// its output as it comes, signals it).
func (r Runner) Command(t testing.TB, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(Bin(t), args...)
	cmd.Env = append(os.Environ(), r.Env...)
	cmd.Stdin = strings.NewReader(r.Stdin)
	cmd.Stdout = r.Stdout
	setDeathSignal(cmd)
	if r.Setup != nil {
		r.Setup(cmd)
	}
	return cmd
}

// Try runs the command to its end. The error says only that it could not run: it did not
// start, or was killed at the timeout; a non-zero exit is Result.Code.
func (r Runner) Try(t testing.TB, args ...string) (Result, error) {
	t.Helper()
	cmd := r.Command(t, args...)
	var out, errOut bytes.Buffer
	if cmd.Stdout == nil {
		cmd.Stdout = &out
	}
	cmd.Stderr = &errOut
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return Result{}, fmt.Errorf("start vaxpass %s: %w", strings.Join(args, " "), err)
	}
	timeout := r.Timeout
	if timeout == 0 {
		timeout = untilDeadline(t)
	}
	var timedOut atomic.Bool
	if timeout > 0 {
		timer := time.AfterFunc(timeout, func() { timedOut.Store(true); cmd.Process.Kill() })
		defer timer.Stop()
	}
	err := cmd.Wait()
	res := Result{Stdout: out.String(), Stderr: errOut.String(), Took: time.Since(start)}
	var exit *exec.ExitError
	switch {
	case timedOut.Load():
		return res, fmt.Errorf("vaxpass %s did not finish within %s:\n%s", strings.Join(args, " "), timeout, Tail(res.Stderr, 20))
	case err == nil:
	case errors.As(err, &exit):
		res.Code = exit.ExitCode()
	default:
		return res, fmt.Errorf("run vaxpass %s: %w", strings.Join(args, " "), err)
	}
	// What ran, and how long it took (the only timings of the long CLI runs).
	t.Logf("vaxpass %.200s: exit %d in %v", strings.Join(args, " "), res.Code, res.Took.Round(time.Millisecond))
	return res, nil
}

// untilDeadline is the time left before the test binary's deadline, less a minute for
// the report; 0 when there is no deadline.
func untilDeadline(t testing.TB) time.Duration {
	d, ok := t.(interface{ Deadline() (time.Time, bool) })
	if !ok {
		return 0
	}
	deadline, ok := d.Deadline()
	if !ok {
		return 0
	}
	return max(time.Second, time.Until(deadline)-time.Minute)
}

// Run runs the command to its end and returns its outcome, whatever the exit code; it
// fails the test only when the command could not run.
func (r Runner) Run(t testing.TB, args ...string) Result {
	t.Helper()
	res, err := r.Try(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// Must runs the command and fails the test unless it exits 0.
func (r Runner) Must(t testing.TB, args ...string) Result {
	t.Helper()
	res := r.Run(t, args...)
	if res.Code != 0 {
		t.Fatalf("vaxpass %s: exit %d\n%s", strings.Join(args, " "), res.Code, res.Stderr)
	}
	return res
}

// KillWhen starts the command, reads its stderr line by line and kills it with SIGKILL
// on the first line at accepts (a crash in the middle of its work); it returns the lines
// read, that one last. The test fails when the command ends first (what says when the
// kill was due) or does not die of the SIGKILL.
func (r Runner) KillWhen(t testing.TB, what string, at func(line string) bool, args ...string) []string {
	t.Helper()
	cmd := r.Command(t, args...)
	if cmd.Stdout == nil {
		cmd.Stdout = io.Discard
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start vaxpass %s: %v", strings.Join(args, " "), err)
	}
	sc := bufio.NewScanner(stderr)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var seen []string
	killed := false
	for sc.Scan() {
		line := sc.Text()
		seen = append(seen, line)
		if at(line) {
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			killed = true
			break
		}
	}
	go io.Copy(io.Discard, stderr)
	err = cmd.Wait()
	if !killed {
		t.Fatalf("vaxpass %s ended (%v) before it could be killed %s:\n%s", strings.Join(args, " "), err, what, strings.Join(seen, "\n"))
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("vaxpass %s: not killed by SIGKILL: %v", strings.Join(args, " "), err)
	}
	t.Logf("killed vaxpass %s %s", strings.Join(args[:min(len(args), 3)], " "), what)
	return seen
}

// The zero Runner's methods, as functions.

// Run runs vaxpass with args; see Runner.Run.
func Run(t testing.TB, args ...string) Result { t.Helper(); return Runner{}.Run(t, args...) }

// Try runs vaxpass with args; see Runner.Try.
func Try(t testing.TB, args ...string) (Result, error) { t.Helper(); return Runner{}.Try(t, args...) }

// Must runs vaxpass with args and requires exit 0; see Runner.Must.
func Must(t testing.TB, args ...string) Result { t.Helper(); return Runner{}.Must(t, args...) }

// Command returns the exec.Cmd of vaxpass with args; see Runner.Command.
func Command(t testing.TB, args ...string) *exec.Cmd { t.Helper(); return Runner{}.Command(t, args...) }

// KillWhen runs vaxpass with args and kills it on a stderr line; see Runner.KillWhen.
func KillWhen(t testing.TB, what string, at func(line string) bool, args ...string) []string {
	t.Helper()
	return Runner{}.KillWhen(t, what, at, args...)
}

// Tail is the last n lines of s (a command's or a server's log, for a failure message).
func Tail(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(l[max(0, len(l)-n):], "\n")
}
