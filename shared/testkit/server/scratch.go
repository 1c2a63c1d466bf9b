package server

import (
	"os"
	"testing"
)

// EnvTmpDir places the data directories ScratchDir makes.
const EnvTmpDir = "VAXPASS_TMPDIR"

// shm is Linux's tmpfs of shared memory.
const shm = "/dev/shm"

// ScratchDir returns a fresh directory for a data directory, removed when the test ends:
// under $VAXPASS_TMPDIR, else under /dev/shm when it is writable with 1 GiB free, else
// the test's temporary directory. The tests kill processes, they do not cut the power:
// what the kernel holds survives a SIGKILL as it would on disk, and skipping the disk's
// fsync latency keeps long runs short (containers often give /dev/shm 64 MiB only, too
// little for them).
func ScratchDir(t testing.TB) string {
	t.Helper()
	base := os.Getenv(EnvTmpDir)
	if base == "" && shmFree() >= 1<<30 {
		base = shm
	}
	if base == "" {
		return t.TempDir()
	}
	dir, err := os.MkdirTemp(base, "vaxpass-test-")
	if err != nil {
		t.Fatalf("data directory under %s: %v", base, err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}
