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
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("embedded: create data directory %s: %w", dir, classify(err))
	}
	path := filepath.Join(dir, FileName)
	b, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout: lockTimeout,
		// A hash-map freelist that is not written on every commit: far faster commits on a
		// database of millions of keys; the freelist is rebuilt by scanning on open.
		FreelistType:   bolt.FreelistMapType,
		NoFreelistSync: true,
	})
	if err != nil {
		return nil, fmt.Errorf("embedded: open %s: %w", path, classify(err))
	}
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
