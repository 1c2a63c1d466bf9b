package synth

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// requirePrivate fails unless path has exactly FileMode (a file) or no permission for
// group and others (a directory: the umask may narrow DirMode further).
func requirePrivate(t *testing.T, path string) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if mode := st.Mode().Perm(); st.IsDir() && mode&0o077 != 0 || !st.IsDir() && mode != FileMode {
		t.Errorf("%s has mode %v; want it readable by its owner only", path, mode)
	}
}

// What WriteDir writes is readable by its owner only: the directories it creates and
// every file, also one that existed with a wider mode.
func TestWriteDirModes(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix permissions")
	}
	base := t.TempDir()
	dir := filepath.Join(base, "out", "generated")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// A file of an earlier run, world-readable.
	if err := os.WriteFile(filepath.Join(dir, RegistryFile), []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(dir, RegistryFile), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := WriteDir(context.Background(), dir, Config{People: 20}, nil); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{RegistryFile, RecordsFile, TruthFile} {
		requirePrivate(t, filepath.Join(dir, name))
	}
	if st, _ := os.Stat(dir); st.Mode().Perm() != 0o755 {
		t.Errorf("WriteDir changed the mode of a directory it did not create: %v", st.Mode().Perm())
	}

	fresh := filepath.Join(base, "new", "sub")
	if _, err := WriteDir(context.Background(), fresh, Config{People: 20}, nil); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(base, "new"), fresh, filepath.Join(fresh, RegistryFile), filepath.Join(fresh, RecordsFile), filepath.Join(fresh, TruthFile)} {
		requirePrivate(t, p)
	}
	if b, err := os.ReadFile(filepath.Join(dir, RegistryFile)); err != nil || len(b) <= len("old") {
		t.Errorf("the old registry file was not rewritten: %q, %v", b, err)
	}
}
