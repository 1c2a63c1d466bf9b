package embedded

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestOpen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	db, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if db.Path() != filepath.Join(dir, FileName) {
		t.Errorf("Path %s", db.Path())
	}
	if _, err := os.Stat(db.Path()); err != nil {
		t.Errorf("database file: %v", err)
	}

	lockTimeout = 100 * time.Millisecond
	t.Cleanup(func() { lockTimeout = LockTimeout })
	if _, err := Open(dir); !errors.Is(err, ErrLocked) {
		t.Errorf("second Open: %v, want ErrLocked", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = Open(dir)
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	db.Close()
}

func TestOpenReadOnly(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root ignores directory permissions")
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o500); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(dir, 0o700) })
	if _, err := Open(dir); !errors.Is(err, ErrReadOnly) {
		t.Errorf("Open in a read-only directory: %v, want ErrReadOnly", err)
	}
	if _, err := Open(filepath.Join(dir, "sub")); !errors.Is(err, ErrReadOnly) {
		t.Errorf("Open below a read-only directory: %v, want ErrReadOnly", err)
	}
}

func TestOpenNotADirectory(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o600)
	if _, err := Open(file); err == nil {
		t.Error("Open on a regular file succeeded")
	}
}
