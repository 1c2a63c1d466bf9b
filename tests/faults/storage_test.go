//go:build linux

package faults

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/store/embedded"
	"github.com/vaxpass/vaxpass/shared/testkit/cli"
	"github.com/vaxpass/vaxpass/shared/tool/synth"
)

// mountTmpfs mounts a tmpfs of its own (size as mount(8) says it, "64m") on a new
// directory and unmounts it when the test ends. Without the right to mount -- not root,
// or no CAP_SYS_ADMIN -- the test is skipped, saying so.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	mnt := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, "size="+size+",mode=0755"); err != nil {
		t.Skipf("storage fault test skipped: cannot mount a tmpfs (%v); it needs root with CAP_SYS_ADMIN "+
			"(a read-only remount and a full file system cannot be simulated for root otherwise: root ignores permissions). "+
			"The read-only code path is covered by shared/store/embedded's TestOpenReadOnly when not run as root.", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(mnt, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", mnt, err)
		}
	})
	return mnt
}

// remount makes a mounted tmpfs read-only or writable again.
func remount(t *testing.T, mnt string, readOnly bool) {
	t.Helper()
	flags := uintptr(syscall.MS_REMOUNT | syscall.MS_NOSUID | syscall.MS_NODEV)
	if readOnly {
		flags |= syscall.MS_RDONLY
	}
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", flags, ""); err != nil {
		t.Fatalf("remount %s (read-only %v): %v", mnt, readOnly, err)
	}
}

// fillUp writes a file until the file system is full and returns its path; removing it
// frees the space.
func fillUp(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 1<<20)
	for size := len(chunk); size >= 512; {
		if _, err := f.Write(chunk[:size]); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("fill the file system: %v", err)
			}
			size /= 2
		}
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	if free := st.Bavail * uint64(st.Bsize); free > 64<<10 {
		t.Fatalf("the file system still has %d bytes free after filling", free)
	}
	return path
}

// splitRegistry writes the registry's people in two files: the first share, and the
// rest. The generator writes people and their records in the same order, so the records
// of the second file's people are the records after those of the first.
func splitRegistry(t *testing.T, pop *population, firstShare float64) (first, second string, inSecond map[string]bool) {
	t.Helper()
	f, err := os.Open(pop.registry)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(lines) < 3 || lines[0] != synth.RegistryHeader {
		t.Fatalf("registry of %d lines, header %q", len(lines), lines[0])
	}
	people := lines[1:]
	cut := int(float64(len(people)) * firstShare)
	inSecond = map[string]bool{}
	for _, l := range people[cut:] {
		id, _, _ := strings.Cut(l, ",")
		inSecond[id] = true
	}
	dir := t.TempDir()
	first, second = filepath.Join(dir, "registry-1.csv"), filepath.Join(dir, "registry-2.csv")
	write := func(path string, ls []string) {
		if err := os.WriteFile(path, []byte(synth.RegistryHeader+"\n"+strings.Join(ls, "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(first, people[:cut])
	write(second, people[cut:])
	return first, second, inSecond
}

// batchesOf is batches() over the records keep selects.
func (p *population) batchesOf(keep func(i int) bool) []batch {
	var out []batch
	for _, b := range p.batches() {
		var sel []int
		for _, i := range b.records {
			if keep(i) {
				sel = append(sel, i)
			}
		}
		if len(sel) > 0 {
			out = append(out, batch{facility: b.facility, records: sel})
		}
	}
	return out
}

// requireFailure checks that a CLI run failed with a non-zero exit and an error naming
// the problem.
func requireFailure(t *testing.T, what string, r cli.Result, names ...string) {
	t.Helper()
	if r.Code == 0 {
		t.Errorf("%s succeeded (exit 0); want a failure\nstdout: %s\nstderr: %s", what, r.Stdout, r.Stderr)
		return
	}
	for _, n := range names {
		if !strings.Contains(r.Stderr, n) {
			t.Errorf("%s: exit %d, but the error does not say %q:\n%s", what, r.Code, n, r.Stderr)
		}
	}
	t.Logf("%s: exit %d: %s", what, r.Code, strings.TrimSpace(cli.Tail(r.Stderr, 3)))
}

// storageRun is the client side of a storage fault run.
type storageRun struct {
	t    *testing.T
	pop  *population
	data string
	keys []string
	led  *ledger
	srv  *faultServer
}

func (r *storageRun) state() runState {
	return runState{pop: r.pop, sent: r.led.sent, acked: r.led.acked}
}

func (r *storageRun) uploadAcked(bs []batch) {
	r.t.Helper()
	for _, b := range bs {
		r.led.markSent(r.pop, b)
		rep, _, err := r.srv.upload(r.pop, b, r.keys[b.facility])
		if err != nil {
			r.t.Fatalf("upload: %v", err)
		}
		for _, bad := range r.led.record(r.pop, b, rep) {
			r.t.Error(bad)
		}
	}
}

// finish uploads the remaining batches, has every facility sign, drains and checks the
// whole invariant.
func (r *storageRun) finish(rest []batch) {
	r.t.Helper()
	r.uploadAcked(rest)
	r.srv.waitMatched(r.keys, 5*time.Minute)
	r.srv.signAll(r.keys)
	r.srv.Stop()
	skew := visibilityTimeout + time.Second
	drain(r.t, r.data, skew)
	requireInvariant(r.t, r.data, r.state(), finished, time.Now().Add(skew))
}

// storagePeople is the population of the storage fault runs: a fifth of the bulk run's.
func storagePeople(t *testing.T) int { return max(500, faultPeople(t)/5) }

// TestReadOnlyDataDir remounts the data directory's file system read-only after a
// partial run: serve, registry load and facility add must each fail at once with an
// error that says the directory is not writable, exit non-zero, and change nothing.
// Writable again, the run finishes and passes the invariant.
func TestReadOnlyDataDir(t *testing.T) {
	t.Parallel()
	mnt := mountTmpfs(t, "256m")
	people := storagePeople(t)
	pop := generate(t, people, people*recordsPerPerson, 21)
	r := &storageRun{t: t, pop: pop, data: filepath.Join(mnt, "data"), led: newLedger()}
	r.keys = setUp(t, r.data, pop)
	batches := pop.batches()
	half := len(batches) / 2
	r.srv = startServer(t, r.data)
	r.uploadAcked(batches[:half])
	r.srv.waitMatched(r.keys, 5*time.Minute)
	r.srv.Stop()

	remount(t, mnt, true)
	const notWritable = "data directory is not writable"
	requireFailure(t, "serve on a read-only data directory", cli.Run(t, "serve", "--data", r.data, "--addr", "127.0.0.1:0", "--sign-every", "0"), notWritable, "read-only file system")
	requireFailure(t, "registry load into a read-only data directory", cli.Run(t, "registry", "load", pop.registry, "--data", r.data), notWritable, "read-only file system")
	requireFailure(t, "facility add in a read-only data directory", cli.Run(t, "facility", "add", "--id", "late-site", "--name", "Late site", "--data", r.data), notWritable, "read-only file system")
	remount(t, mnt, false)

	// Nothing of the failed commands was half-done: the facility can be added now (it
	// would exist already otherwise), and the safety half holds.
	cli.Must(t, "facility", "add", "--id", "late-site", "--name", "Late site", "--data", r.data)
	requireInvariant(t, r.data, r.state(), atCrash, time.Now())
	r.srv = startServer(t, r.data)
	r.finish(batches[half:])
}

// TestDiskFull fills the data directory's file system three times: while a facility
// uploads and signs (the server stays up, answers 5xx and logs "no space left on
// device"), under registry load and facility add (exit non-zero, the same words), and
// while the facilities sign and central signing drains. The database file keeps free
// pages, so a write fails only when it needs the file to grow: the test uploads until
// one is refused, and logs which of the later writes met the full disk. After each
// fill, space is freed and the run goes on; it must end with the whole invariant, and the
// upload refused while the disk was full must come back entirely "accepted" when
// re-sent: no record of it was half-stored.
func TestDiskFull(t *testing.T) {
	t.Parallel()
	mnt := mountTmpfs(t, "256m")
	people := storagePeople(t)
	pop := generate(t, people, people*recordsPerPerson, 22)
	regA, regB, inB := splitRegistry(t, pop, 0.8)
	r := &storageRun{t: t, pop: pop, data: filepath.Join(mnt, "data"), led: newLedger()}
	cli.Must(t, "registry", "load", regA, "--data", r.data)
	r.keys = make([]string, facilityCount)
	for i := range r.keys {
		r.keys[i] = strings.TrimSpace(cli.Must(t, "facility", "add", "--id", facilityID(i), "--name", fmt.Sprintf("Fault site %d", i), "--data", r.data).Stdout)
	}
	batchesA := pop.batchesOf(func(i int) bool { return !inB[pop.truth[i].RegistryID] })
	batchesB := pop.batchesOf(func(i int) bool { return inB[pop.truth[i].RegistryID] })
	if len(batchesA) < 3 || len(batchesB) == 0 {
		t.Fatalf("%d and %d batches: too few for the run", len(batchesA), len(batchesB))
	}
	half := len(batchesA) / 2
	r.srv = startServer(t, r.data)
	r.uploadAcked(batchesA[:half])
	r.srv.waitMatched(r.keys, 5*time.Minute)

	// 1. Full while the server runs. The database file may still hold free pages, so the
	// facility uploads until an upload is refused; then a signing run.
	filler := fillUp(t, mnt)
	next, refused := half, batch{}
	for ; next < len(batchesA) && refused.records == nil; next++ {
		b := batchesA[next]
		r.led.markSent(pop, b)
		rep, status, err := r.srv.upload(pop, b, r.keys[b.facility])
		switch {
		case err == nil: // it fitted in the file's free pages
			for _, bad := range r.led.record(pop, b, rep) {
				t.Error(bad)
			}
		case status != http.StatusServiceUnavailable:
			t.Fatalf("upload on a full disk: status %d, %v; want 503 (unavailable, try again later)", status, err)
		default:
			refused = b
		}
	}
	if refused.records == nil {
		t.Fatalf("every upload was accepted on a full file system")
	}
	t.Logf("upload %d of %d refused on the full disk (%d accepted before)", next, len(batchesA), next-1-half)
	st, body, err := r.srv.request("POST", "/v1/signatures", r.keys[0], nil)
	if err != nil || st != http.StatusOK && st != http.StatusAccepted && st != http.StatusServiceUnavailable {
		t.Errorf("POST /v1/signatures on a full disk: status %d, %v: %.200s; want 200, 202 (a run goes on) or 503", st, err, body)
	}
	t.Logf("POST /v1/signatures on the full disk: status %d", st)
	time.Sleep(100 * time.Millisecond) // the log lines are written after the answers
	if log := r.srv.Log(); !strings.Contains(log, "no space left on device") {
		t.Errorf("the server log does not name the problem (no space left on device):\n%s", cli.Tail(log, 10))
	}
	if !r.srv.Running() {
		t.Fatalf("the server died on a full disk: %v\n%s", r.srv.Err(), cli.Tail(r.srv.Log(), 20))
	}
	r.srv.Stop()

	// 2. Full under the CLI. A facility's key is a new file: that always fails. The
	// registry goes into the database file, which may still have room (at larger sizes
	// bbolt's free pages hold the whole second part): it fails naming the problem, or
	// loads; loading again after the space is freed is harmless either way.
	if load := cli.Run(t, "registry", "load", regB, "--data", r.data); load.Code == 0 {
		t.Logf("registry load on the full disk fitted in the database file's free pages")
	} else {
		requireFailure(t, "registry load on a full disk", load, "no space left on device")
	}
	requireFailure(t, "facility add on a full disk", cli.Run(t, "facility", "add", "--id", "late-site", "--name", "Late site", "--data", r.data), "no space left on device")
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	requireInvariant(t, r.data, r.state(), atCrash, time.Now())
	cli.Must(t, "registry", "load", regB, "--data", r.data)
	cli.Must(t, "facility", "add", "--id", "late-site", "--name", "Late site", "--data", r.data)

	// The refused upload, re-sent: every record new.
	r.srv = startServer(t, r.data)
	rep, _, err := r.srv.upload(pop, refused, r.keys[refused.facility])
	if err != nil {
		t.Fatalf("re-sent upload: %v", err)
	}
	for _, bad := range r.led.record(pop, refused, rep) {
		t.Error(bad)
	}
	if rep.Accepted != len(refused.records) {
		t.Errorf("the upload refused on the full disk, re-sent: %d accepted, %d duplicates of %d: part of it had been stored", rep.Accepted, rep.Duplicates, len(refused.records))
	}
	r.uploadAcked(batchesA[next:])
	r.uploadAcked(batchesB)
	r.srv.waitMatched(r.keys, 5*time.Minute)

	// 3. Full while the facilities sign and central signing drains their signatures.
	before := strings.Count(r.srv.Log(), "no space left on device")
	filler = fillUp(t, mnt)
	var answers []int
	for _, k := range r.keys {
		st, body, err := r.srv.request("POST", "/v1/signatures", k, nil)
		if err != nil || st != http.StatusOK && st != http.StatusAccepted && st < 500 {
			t.Errorf("POST /v1/signatures on a full disk: status %d, %v: %.200s; want 200, 202 or a 5xx error", st, err, body)
		}
		answers = append(answers, st)
	}
	time.Sleep(300 * time.Millisecond)
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if !r.srv.Running() {
		t.Fatalf("the server died on a full disk: %v\n%s", r.srv.Err(), cli.Tail(r.srv.Log(), 20))
	}
	t.Logf("signing on the full disk: answers %v, failures logged: %v", answers, failureKinds(r.srv.Log(), before))
	r.finish(nil)
}

// failureKinds counts the log's "no space left" lines after the first skip ones by the
// component that logged them.
func failureKinds(log string, skip int) map[string]int {
	out := map[string]int{}
	for _, line := range strings.Split(log, "\n") {
		if !strings.Contains(line, "no space left on device") {
			continue
		}
		if skip > 0 {
			skip--
			continue
		}
		var e struct {
			Msg   string `json:"msg"`
			Route string `json:"route"`
		}
		json.Unmarshal([]byte(line), &e)
		out[strings.TrimSpace(e.Msg+" "+e.Route)]++
	}
	return out
}

// TestReadOnlyDataDirUnprivileged covers the read-only code path without mount(2): the
// data directory and its database file are made read-only (modes 0500 and 0400) and the
// commands run as the test's user, or as "nobody" (uid 65534) when that is root (root
// ignores permissions). Each must fail at once, say the
// directory is not writable, and exit non-zero.
func TestReadOnlyDataDirUnprivileged(t *testing.T) {
	t.Parallel()
	// A directory every user can traverse, holding the binary and the data directory.
	base, err := os.MkdirTemp("", "vaxpass-faults-ro-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		os.Chmod(filepath.Join(base, "data"), 0o700)
		os.RemoveAll(base)
	})
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(base, "vaxpass")
	copyFile(t, cli.Bin(t), bin, 0o755)
	data := filepath.Join(base, "data")
	cli.Must(t, "facility", "add", "--id", "ro-site", "--name", "Read-only site", "--data", data)
	// Read-only for its owner too, so that a test run by another user than root fails
	// the same way.
	if err := os.Chmod(filepath.Join(data, embedded.FileName), 0o400); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(data, 0o500); err != nil {
		t.Fatal(err)
	}
	// The copy every user can read, run as "nobody" when the test is root.
	nobody := cli.Runner{Setup: func(cmd *exec.Cmd) {
		cmd.Path, cmd.Args[0] = bin, bin
		if os.Geteuid() == 0 {
			cmd.SysProcAttr.Credential = &syscall.Credential{Uid: 65534, Gid: 65534}
		}
	}}
	as := func(args ...string) cli.Result {
		res, err := nobody.Try(t, args...)
		switch {
		case errors.Is(err, syscall.EPERM), errors.Is(err, os.ErrPermission):
			t.Skipf("read-only test skipped: cannot run the binary as another user (%v)", err)
		case err != nil:
			t.Fatal(err)
		}
		return res
	}
	const notWritable = "data directory is not writable"
	reg := filepath.Join(base, "registry.csv")
	if err := os.WriteFile(reg, []byte(synth.RegistryHeader+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	requireFailure(t, "serve on a read-only data directory (permissions)", as("serve", "--data", data, "--addr", "127.0.0.1:0"), notWritable)
	requireFailure(t, "registry load into a read-only data directory (permissions)", as("registry", "load", reg, "--data", data), notWritable)
	requireFailure(t, "facility add in a read-only data directory (permissions)", as("facility", "add", "--id", "other-site", "--name", "Other", "--data", data), notWritable)
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, mode); err != nil {
		t.Fatal(err)
	}
}

// fillLeaving fills the file system and then gives back free bytes (rounded to pages).
func fillLeaving(t *testing.T, dir string, free int64) string {
	t.Helper()
	path := fillUp(t, dir)
	if free == 0 {
		return path
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, max(0, fi.Size()-free)); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestDiskFullFirstStart sweeps a fresh data directory's first command -- facility add,
// which creates the database, the central keys, the trust list and the facility's key
// -- over a file system with less and less room. Wherever the disk runs out, the command
// must fail naming the problem, and once space is freed the same command must succeed:
// nothing half-created may block the data directory for good.
func TestDiskFullFirstStart(t *testing.T) {
	t.Parallel()
	mnt := mountTmpfs(t, "64m")
	for _, free := range []int64{0, 4 << 10, 8 << 10, 12 << 10, 16 << 10, 20 << 10, 24 << 10, 32 << 10, 48 << 10, 64 << 10, 96 << 10, 128 << 10, 256 << 10} {
		data := filepath.Join(mnt, fmt.Sprintf("data-%d", free))
		filler := fillLeaving(t, mnt, free)
		first := cli.Run(t, "facility", "add", "--id", "first-site", "--name", "First site", "--data", data)
		if err := os.Remove(filler); err != nil {
			t.Fatal(err)
		}
		if first.Code != 0 && !strings.Contains(first.Stderr, "no space left on device") {
			t.Errorf("%d bytes free: facility add failed without naming the problem: exit %d: %s", free, first.Code, first.Stderr)
		}
		again := cli.Run(t, "facility", "add", "--id", "first-site", "--name", "First site", "--data", data)
		switch {
		case first.Code == 0 && (again.Code != 1 || !strings.Contains(again.Stderr, "exists already")):
			t.Errorf("%d bytes free: facility add succeeded, then adding it again: exit %d: %s", free, again.Code, again.Stderr)
		case first.Code != 0 && again.Code != 0:
			t.Errorf("%d bytes free: facility add failed (%s), and after freeing space it still fails: exit %d: %s",
				free, strings.TrimSpace(first.Stderr), again.Code, firstLines(again.Stderr, 4))
		}
		t.Logf("%3d KiB free: exit %d %s", free>>10, first.Code, strings.TrimSpace(cli.Tail(first.Stderr, 1)))
		os.RemoveAll(data)
	}
}

// firstLines cuts a long output (a Go crash's goroutine dump) to its first lines.
func firstLines(s string, n int) string {
	l := strings.SplitN(strings.TrimSpace(s), "\n", n+1)
	if len(l) > n {
		l[n] = "..."
	}
	return strings.Join(l, "\n")
}
