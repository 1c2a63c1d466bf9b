// Package embedded is the single-file backend of the local runner: one bbolt database in
// the data directory (<dir>/vaxpass.db) holding the population registry (and, later, the
// dose store and queues).
package embedded

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
)

// FileName is the database file inside the data directory.
const FileName = "vaxpass.db"

// LockTimeout is how long Open waits for the file lock another process holds.
const LockTimeout = 2 * time.Second

// lockTimeout is LockTimeout, shortened by tests.
var lockTimeout = LockTimeout

// Errors of Open.
var (
	ErrLocked   = errors.New("database is locked by another process (is a vaxpass server running on this data directory?)")
	ErrReadOnly = errors.New("data directory is not writable")
)

// DB is an open embedded database. It is safe for concurrent use.
type DB struct {
	bolt *bolt.DB
	path string
}

// Open opens (creating it and the directory if needed) the database in dir. It fails with
// ErrLocked when another process has it open, and with ErrReadOnly when dir or the file
// cannot be written.
func Open(dir string) (*DB, error) {
	// Owner-only: the data directory holds personal data and keys.
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("embedded: create data directory %s: %w", dir, classify(err))
	}
	path := filepath.Join(dir, FileName)
	if err := createWhole(path); err != nil {
		return nil, fmt.Errorf("embedded: create %s: %w", path, classify(err))
	}
	b, err := bolt.Open(path, 0o600, boltOptions())
	if err != nil {
		return nil, fmt.Errorf("embedded: open %s: %w", path, classify(err))
	}
	// Concurrent writers that join a batch (Store.storeBatch) wait at most this long for
	// company: about one commit's fsync on the disks measured.
	b.MaxBatchDelay = 2 * time.Millisecond
	db := &DB{bolt: b, path: path}
	if err := db.bolt.Update(func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("bucket %s: %w", name, err)
			}
		}
		return nil
	}); err != nil {
		b.Close()
		return nil, fmt.Errorf("embedded: initialise %s: %w", path, classify(err))
	}
	return db, nil
}

func boltOptions() *bolt.Options {
	return &bolt.Options{
		Timeout: lockTimeout,
		// A hash-map freelist that is not written on every commit: far faster commits on a
		// database of millions of keys; the freelist is rebuilt by scanning on open.
		FreelistType:   bolt.FreelistMapType,
		NoFreelistSync: true,
	}
}

// createWhole creates the database file when it does not exist, never leaving half of
// one: bbolt writes a new file's first pages in one write, and a disk that fills up (or
// a crash) half-way leaves a file it cannot open again -- "file size too small", or meta
// pages pointing past the end of the file, a SIGBUS on the next open. So a new database
// is initialised under a temporary name and linked into place complete (a link, not a
// rename: it never replaces a file another process created meanwhile).
func createWhole(path string) error {
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		return nil // there already, or bolt.Open reports why not
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".new-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	f.Close()
	defer os.Remove(tmp)
	b, err := bolt.Open(tmp, 0o600, boltOptions())
	if err != nil {
		return err
	}
	if err := b.Close(); err != nil {
		return err
	}
	if err := os.Link(tmp, path); err != nil && !errors.Is(err, fs.ErrExist) {
		// No hard links here (some network file systems): rename, unless another
		// process created the file meanwhile.
		if _, statErr := os.Lstat(path); statErr == nil {
			return nil
		}
		if err := os.Rename(tmp, path); err != nil {
			return err
		}
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return err
	}
	return nil
}

// classify adds ErrLocked or ErrReadOnly to the errors that mean that.
func classify(err error) error {
	switch {
	case errors.Is(err, bolt.ErrTimeout):
		return fmt.Errorf("%w: %w", ErrLocked, err)
	case errors.Is(err, fs.ErrPermission), errors.Is(err, syscall.EROFS), errors.Is(err, bolt.ErrDatabaseReadOnly):
		return fmt.Errorf("%w: %w", ErrReadOnly, err)
	}
	return err
}

// Close closes the database, releasing its lock.
func (db *DB) Close() error { return db.bolt.Close() }

// Path returns the database file's path.
func (db *DB) Path() string { return db.path }
