package local_test

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/vaxpass/vaxpass/shared/wire/local"
)

// The demo's files hold (synthetic) personal data and the demo facility's key: the
// demo directory and everything in it are readable by their owner only.
func TestDemoFilesAreOwnerOnly(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix permissions")
	}
	l, err := local.OpenLocal(local.Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	d, err := l.SetupDemo(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(d.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if m := st.Mode().Perm(); m&0o077 != 0 {
		t.Errorf("demo directory has mode %v; want no access for group and others", m)
	}
	entries, err := os.ReadDir(d.Dir)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"registry.csv": true, "records.jsonl": true, "truth.jsonl": true, "doses.json": true, "lookup.json": true, "api-key.txt": true}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		delete(want, e.Name())
		if m := info.Mode().Perm(); m != 0o600 {
			t.Errorf("%s has mode %v; want 0600", filepath.Join(d.Dir, e.Name()), m)
		}
	}
	if len(want) > 0 {
		t.Errorf("the demo wrote no %v", want)
	}
}
