// Package filekeys keeps the embedded backend's software keys as PEM files in the data
// directory: one P-256 signing key per facility (the local stand-in for a facility's KMS
// key) and the central key material (the DSC and the CSCA's certificate, never the CSCA's
// key: see EnsureCentral and PublishDSC). Key files are
// created 0600 and atomically (temporary file, fsync, hard link or rename, directory
// fsync), and an existing key is never overwritten.
package filekeys

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/vaxpass/vaxpass/shared/domain/facilitysig"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// KeysDir is the directory of key files inside the data directory.
const KeysDir = "keys"

// MaxKeyFileBytes bounds a key or certificate file read back.
const MaxKeyFileBytes = 64 << 10

// Errors, one per failure class; returned errors wrap them with context.
var (
	// ErrKeyExists: a key is already stored under that name (it is never overwritten).
	ErrKeyExists = errors.New("filekeys: key already exists")
	// ErrKeyFile: a key or certificate file cannot be used (malformed PEM, not P-256,
	// key and certificate not matching).
	ErrKeyFile = errors.New("filekeys: unusable key file")
)

// Store holds the facility keys of a data directory. It implements
// signing.FacilityKeys and signing.FacilityPublicKeys, and is safe for concurrent use.
type Store struct {
	dir string

	mu   sync.Mutex
	keys map[string]*ecdsa.PrivateKey // loaded facility keys, by facility ID
}

// Open opens the key store of dataDir, creating <dataDir>/keys (0700) if needed.
func Open(dataDir string) (*Store, error) {
	dir := filepath.Join(dataDir, KeysDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("filekeys: create %s: %w", dir, err)
	}
	return &Store{dir: dir, keys: map[string]*ecdsa.PrivateKey{}}, nil
}

// Dir is the directory holding the key files.
func (s *Store) Dir() string { return s.dir }

// CheckFacilityID rejects a facility ID that cannot name a key file: it must be 1 to 64
// of A-Z a-z 0-9 _ - (so no path separators, dots or traversal). The error wraps
// vaxpass.ErrInvalid.
func CheckFacilityID(id string) error {
	if len(id) < 1 || len(id) > 64 {
		return fmt.Errorf("%w: facility ID must be 1 to 64 characters, got %d", vaxpass.ErrInvalid, len(id))
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return fmt.Errorf("%w: facility ID character %d must be one of A-Z a-z 0-9 _ -", vaxpass.ErrInvalid, i+1)
		}
	}
	return nil
}

// FacilityKeyFile is the file name of a facility's key inside the keys directory.
func FacilityKeyFile(facilityID string) string { return "facility-" + facilityID + ".pem" }

// KeyID is the Facility.KeyID of a facility's local key: its path relative to the data
// directory.
func KeyID(facilityID string) string { return KeysDir + "/" + FacilityKeyFile(facilityID) }

// CreateFacilityKey creates the facility's P-256 signing key and returns its KeyID. It
// fails with ErrKeyExists when the facility already has a key.
func (s *Store) CreateFacilityKey(facilityID string) (keyID string, err error) {
	if err := CheckFacilityID(facilityID); err != nil {
		return "", fmt.Errorf("filekeys: create facility key: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", fmt.Errorf("filekeys: create facility key: %w", err)
	}
	pemBytes, err := encodeKey(key)
	if err != nil {
		return "", err
	}
	path := filepath.Join(s.dir, FacilityKeyFile(facilityID))
	if err := writeNew(path, pemBytes); err != nil {
		return "", fmt.Errorf("filekeys: create key of facility %s: %w", facilityID, err)
	}
	s.mu.Lock()
	s.keys[facilityID] = key
	s.mu.Unlock()
	return KeyID(facilityID), nil
}

// EnsureFacilityKey is CreateFacilityKey that keeps an existing key instead of failing
// (for a registration retried after a crash); created says which happened.
func (s *Store) EnsureFacilityKey(facilityID string) (keyID string, created bool, err error) {
	keyID, err = s.CreateFacilityKey(facilityID)
	if errors.Is(err, ErrKeyExists) {
		if _, err := s.facilityKey(facilityID); err != nil {
			return "", false, err
		}
		return KeyID(facilityID), false, nil
	}
	return keyID, err == nil, err
}

// FacilitySigner implements signing.FacilityKeys: a signer over the facility's key
// (vaxpass.ErrNotFound when it has none).
func (s *Store) FacilitySigner(ctx context.Context, facilityID string) (facilitysig.Signer, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	key, err := s.facilityKey(facilityID)
	if err != nil {
		return nil, err
	}
	return &Signer{key: key}, nil
}

// FacilityPublicKey implements signing.FacilityPublicKeys (vaxpass.ErrNotFound when the
// facility has no key).
func (s *Store) FacilityPublicKey(ctx context.Context, facilityID string) (*ecdsa.PublicKey, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	key, err := s.facilityKey(facilityID)
	if err != nil {
		return nil, err
	}
	return &key.PublicKey, nil
}

// facilityKey loads (once) a facility's current key (its .current file, else its first
// key). Key files are never rewritten and UseFacilityKey, the only change of the current
// key, updates the cache; the data directory has one process at a time.
func (s *Store) facilityKey(facilityID string) (*ecdsa.PrivateKey, error) {
	if err := CheckFacilityID(facilityID); err != nil {
		return nil, fmt.Errorf("filekeys: facility key: %w", err)
	}
	s.mu.Lock()
	key, ok := s.keys[facilityID]
	s.mu.Unlock()
	if ok {
		return key, nil
	}
	name, err := s.currentName(facilityID)
	if err != nil {
		return nil, err
	}
	key, err = readKey(filepath.Join(s.dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("filekeys: key of facility %s: %w", facilityID, vaxpass.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("filekeys: key of facility %s: %w", facilityID, err)
	}
	s.mu.Lock()
	s.keys[facilityID] = key
	s.mu.Unlock()
	return key, nil
}

// Signer signs with a software P-256 key: ECDSA over SHA-256 of the input, answered as
// the 64-byte r||s (the facilitysig.Signer contract, the same as a KMS key's after DER
// conversion).
type Signer struct{ key *ecdsa.PrivateKey }

// NewSigner returns a Signer over key, which must be a P-256 key.
func NewSigner(key *ecdsa.PrivateKey) (*Signer, error) {
	if key == nil || key.Curve != elliptic.P256() {
		return nil, fmt.Errorf("%w: not a P-256 key", ErrKeyFile)
	}
	return &Signer{key: key}, nil
}

// Sign implements facilitysig.Signer.
func (s *Signer) Sign(ctx context.Context, toBeSigned []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	digest := sha256.Sum256(toBeSigned)
	r, ss, err := ecdsa.Sign(rand.Reader, s.key, digest[:])
	if err != nil {
		return nil, fmt.Errorf("filekeys: sign: %w", err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	ss.FillBytes(sig[32:])
	return sig, nil
}

// Public is the signer's public key.
func (s *Signer) Public() *ecdsa.PublicKey { return &s.key.PublicKey }

// encodeKey renders a private key as a PKCS#8 "PRIVATE KEY" PEM block.
func encodeKey(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("filekeys: encode key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// readKey reads a P-256 private key: one PKCS#8 "PRIVATE KEY" or SEC 1 "EC PRIVATE KEY"
// PEM block.
func readKey(path string) (*ecdsa.PrivateKey, error) {
	block, err := readPEM(path)
	if err != nil {
		return nil, err
	}
	var key any
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("%w: %s: PEM block %q, want PRIVATE KEY", ErrKeyFile, path, block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrKeyFile, path, err)
	}
	ec, ok := key.(*ecdsa.PrivateKey)
	if !ok || ec.Curve != elliptic.P256() {
		return nil, fmt.Errorf("%w: %s: not a P-256 key", ErrKeyFile, path)
	}
	return ec, nil
}

// readCert reads one "CERTIFICATE" PEM block.
func readCert(path string) (*x509.Certificate, error) {
	block, err := readPEM(path)
	if err != nil {
		return nil, err
	}
	if block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%w: %s: PEM block %q, want CERTIFICATE", ErrKeyFile, path, block.Type)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrKeyFile, path, err)
	}
	return cert, nil
}

// readPEM reads a file holding exactly one PEM block (and white space).
func readPEM(path string) (*pem.Block, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxKeyFileBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxKeyFileBytes {
		return nil, fmt.Errorf("%w: %s: larger than %d bytes", ErrKeyFile, path, MaxKeyFileBytes)
	}
	block, rest := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%w: %s: no PEM block", ErrKeyFile, path)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, fmt.Errorf("%w: %s: data after the PEM block", ErrKeyFile, path)
	}
	return block, nil
}

// writeNew creates path with data (mode 0600) atomically and only if it does not exist:
// the data is written and synced to a temporary file, which is then hard-linked to path
// (link fails if path exists, so nothing is ever overwritten, not even by a concurrent
// writer). Where hard links are not supported it falls back to a rename after an
// existence check. ErrKeyExists when path exists.
func writeNew(path string, data []byte) error {
	tmp, err := writeTemp(path, data)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	switch err := os.Link(tmp, path); {
	case err == nil:
	case errors.Is(err, fs.ErrExist):
		return fmt.Errorf("%w: %s", ErrKeyExists, path)
	default:
		if _, statErr := os.Lstat(path); statErr == nil {
			return fmt.Errorf("%w: %s", ErrKeyExists, path)
		}
		if err := os.Rename(tmp, path); err != nil {
			return err
		}
	}
	return syncDir(filepath.Dir(path))
}

// writeReplace writes path atomically (temporary file, sync, rename), replacing what was
// there: for files derived from the keys, such as the trust list.
func writeReplace(path string, data []byte, mode fs.FileMode) error {
	tmp, err := writeTemp(path, data)
	if err != nil {
		return err
	}
	if err := os.Chmod(tmp, mode); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(filepath.Dir(path))
}

// writeTemp writes data to a new 0600 temporary file next to path and syncs it.
func writeTemp(path string, data []byte) (string, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return "", err
	}
	name := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(name)
		return "", err
	}
	return name, nil
}

// syncDir makes a directory entry change durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return err
	}
	return nil
}
