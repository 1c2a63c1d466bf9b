package filekeys

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// A facility's first key is keys/facility-<id>.pem; a rotation makes
// keys/facility-<id>.<16 hex>.pem (the dot cannot be in a facility ID, so no facility's
// file name is another's). keys/facility-<id>.current names the file the facility signs
// with; without it, the first key.

func currentFile(facilityID string) string { return "facility-" + facilityID + ".current" }

// fileOfKeyID checks that keyID is one of the facility's key IDs and returns its file name.
func fileOfKeyID(facilityID, keyID string) (string, error) {
	name, ok := strings.CutPrefix(keyID, KeysDir+"/")
	if ok && name == FacilityKeyFile(facilityID) {
		return name, nil
	}
	prefix := "facility-" + facilityID + "."
	if rest, found := strings.CutPrefix(name, prefix); ok && found {
		if h, found := strings.CutSuffix(rest, ".pem"); found && len(h) == 16 && isLowerHex(h) {
			return name, nil
		}
	}
	return "", fmt.Errorf("%w: %q is not a key ID of facility %s", vaxpass.ErrInvalid, keyID, facilityID)
}

func isLowerHex(s string) bool {
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// NewFacilityKey makes a new P-256 key for the facility (wire.FacilityKeyRotator); the
// facility keeps signing with its current key until UseFacilityKey.
func (s *Store) NewFacilityKey(ctx context.Context, facilityID string) (string, *ecdsa.PublicKey, error) {
	if err := ctx.Err(); err != nil {
		return "", nil, err
	}
	if err := CheckFacilityID(facilityID); err != nil {
		return "", nil, fmt.Errorf("filekeys: new facility key: %w", err)
	}
	var suffix [8]byte
	if _, err := rand.Read(suffix[:]); err != nil {
		return "", nil, fmt.Errorf("filekeys: new facility key: %w", err)
	}
	name := "facility-" + facilityID + "." + hex.EncodeToString(suffix[:]) + ".pem"
	key, err := createKey(filepath.Join(s.dir, name))
	if err != nil {
		return "", nil, fmt.Errorf("filekeys: new key of facility %s: %w", facilityID, err)
	}
	return KeysDir + "/" + name, &key.PublicKey, nil
}

// CurrentFacilityKey is the key ID the facility signs with (wire.FacilityKeyRotator).
func (s *Store) CurrentFacilityKey(ctx context.Context, facilityID string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	name, err := s.currentName(facilityID)
	if err != nil {
		return "", err
	}
	return KeysDir + "/" + name, nil
}

// currentName reads the facility's .current file: the first key's name when it has none.
func (s *Store) currentName(facilityID string) (string, error) {
	if err := CheckFacilityID(facilityID); err != nil {
		return "", fmt.Errorf("filekeys: facility key: %w", err)
	}
	data, err := os.ReadFile(filepath.Join(s.dir, currentFile(facilityID)))
	if errors.Is(err, fs.ErrNotExist) {
		return FacilityKeyFile(facilityID), nil
	}
	if err != nil {
		return "", fmt.Errorf("filekeys: current key of facility %s: %w", facilityID, err)
	}
	name, err := fileOfKeyID(facilityID, KeysDir+"/"+strings.TrimSpace(string(data)))
	if err != nil {
		return "", fmt.Errorf("%w: %s: %w", ErrKeyFile, currentFile(facilityID), err)
	}
	return name, nil
}

// UseFacilityKey makes keyID, an existing key of the facility, the one it signs with
// (wire.FacilityKeyRotator): the .current file is replaced atomically.
func (s *Store) UseFacilityKey(ctx context.Context, facilityID, keyID string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	name, err := fileOfKeyID(facilityID, keyID)
	if err != nil {
		return fmt.Errorf("filekeys: use facility key: %w", err)
	}
	key, err := readKey(filepath.Join(s.dir, name))
	if err != nil {
		return fmt.Errorf("filekeys: use key %s of facility %s: %w", keyID, facilityID, err)
	}
	if err := writeReplace(filepath.Join(s.dir, currentFile(facilityID)), []byte(name+"\n"), 0o600); err != nil {
		return fmt.Errorf("filekeys: use key %s of facility %s: %w", keyID, facilityID, err)
	}
	s.mu.Lock()
	s.keys[facilityID] = key
	s.mu.Unlock()
	return nil
}

// DisableFacilityKey removes a key file of the facility that is not its current key
// (wire.FacilityKeyRotator): a revoked key never signs again. A key already gone is not
// an error.
func (s *Store) DisableFacilityKey(ctx context.Context, facilityID, keyID string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	name, err := fileOfKeyID(facilityID, keyID)
	if err != nil {
		return fmt.Errorf("filekeys: disable facility key: %w", err)
	}
	cur, err := s.currentName(facilityID)
	if err != nil {
		return err
	}
	if cur == name {
		return fmt.Errorf("filekeys: disable key %s of facility %s: %w: it is the key the facility signs with", keyID, facilityID, vaxpass.ErrConflict)
	}
	if err := os.Remove(filepath.Join(s.dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("filekeys: disable key %s of facility %s: %w", keyID, facilityID, err)
	}
	return syncDir(s.dir)
}
