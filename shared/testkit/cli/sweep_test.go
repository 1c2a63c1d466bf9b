package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// TestSweep: a build removes the binaries of test binaries that have exited, and keeps
// those of the living.
func TestSweep(t *testing.T) {
	done := exec.Command("go", "version")
	if err := done.Run(); err != nil {
		t.Fatal(err)
	}
	dead := filepath.Join(os.TempDir(), binPrefix+strconv.Itoa(done.Process.Pid)+"-sweeptest")
	alive := filepath.Join(os.TempDir(), binPrefix+strconv.Itoa(os.Getpid())+"-sweeptest")
	for _, d := range []string{dead, alive} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(d) })
	}
	sweep()
	if _, err := os.Stat(dead); !os.IsNotExist(err) {
		t.Errorf("%s of an exited process is still there (%v)", dead, err)
	}
	if _, err := os.Stat(alive); err != nil {
		t.Errorf("%s of this process was removed: %v", alive, err)
	}
}
