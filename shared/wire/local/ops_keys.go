package local

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"time"

	"github.com/vaxpass/vaxpass/shared/vaxpass"
	"github.com/vaxpass/vaxpass/shared/wire"
)

// OpsKeysFile is the file of the data directory holding the ops keys' SHA-256 hashes (never
// the keys). It is a plain file, not the database, so `vaxpass ops key` works while a
// server holds the database, and the server picks new keys up without a restart.
const OpsKeysFile = "ops-keys.json"

// maxOpsKeysFile bounds the ops key file.
const maxOpsKeysFile = 1 << 20

// opsActorRe is what an ops actor name may be: it is written into the audit trail.
var opsActorRe = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// OpsKeyRecord is one ops key as stored.
type OpsKeyRecord struct {
	Actor     string    `json:"actor"`
	SHA256    string    `json:"sha256"`
	CreatedAt time.Time `json:"created_at"`
}

type opsKeysDoc struct {
	Keys []OpsKeyRecord `json:"keys"`
}

// OpsKeyFile implements api.OpsKeys over <data>/ops-keys.json, re-reading it when it
// changes.
type OpsKeyFile struct {
	path string
	now  func() time.Time
	rand io.Reader

	mu      sync.Mutex
	modTime time.Time
	size    int64
	keys    []OpsKeyRecord
}

// NewOpsKeyFile returns the ops keys of dataDir.
func NewOpsKeyFile(dataDir string, now func() time.Time, rand io.Reader) *OpsKeyFile {
	return &OpsKeyFile{path: filepath.Join(dataDir, OpsKeysFile), now: now, rand: rand}
}

// OpsKeyValid implements api.OpsKeys.
func (f *OpsKeyFile) OpsKeyValid(_ context.Context, hash []byte) (string, bool, error) {
	keys, err := f.load()
	if err != nil {
		return "", false, err
	}
	for _, k := range keys {
		want, err := hex.DecodeString(k.SHA256)
		if err == nil && subtle.ConstantTimeCompare(want, hash) == 1 {
			return k.Actor, true, nil
		}
	}
	return "", false, nil
}

// load returns the keys, re-reading the file when its size or time changed.
func (f *OpsKeyFile) load() ([]OpsKeyRecord, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st, err := os.Stat(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		f.keys, f.modTime, f.size = nil, time.Time{}, 0
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ops keys: %w", err)
	}
	if f.keys != nil && st.ModTime().Equal(f.modTime) && st.Size() == f.size {
		return f.keys, nil
	}
	doc, err := readOpsKeys(f.path)
	if err != nil {
		return nil, err
	}
	f.keys, f.modTime, f.size = doc.Keys, st.ModTime(), st.Size()
	if f.keys == nil {
		f.keys = []OpsKeyRecord{}
	}
	return f.keys, nil
}

func readOpsKeys(path string) (opsKeysDoc, error) {
	var doc opsKeysDoc
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return doc, nil
	}
	if err != nil {
		return doc, fmt.Errorf("ops keys: %w", err)
	}
	if len(b) > maxOpsKeysFile {
		return doc, fmt.Errorf("ops keys: %s is larger than %d bytes", path, maxOpsKeysFile)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return doc, fmt.Errorf("ops keys: %s: %w", path, err)
	}
	return doc, nil
}

// Create makes a new ops key for actor and stores its hash; the key is returned once and
// never stored.
func (f *OpsKeyFile) Create(actor string) (string, error) {
	if !opsActorRe.MatchString(actor) {
		return "", fmt.Errorf("%w: ops actor must be 1-64 of a-z 0-9 . _ - (starting with a letter or digit)", vaxpass.ErrInvalid)
	}
	key, hash, err := wire.NewSecret(f.rand, "vxo_")
	if err != nil {
		return "", err
	}
	if err := f.AddOpsKey(context.Background(), actor, hash, f.now().UTC()); err != nil {
		return "", err
	}
	return key, nil
}

// AddOpsKey implements wire.OpsKeyStore.
func (f *OpsKeyFile) AddOpsKey(_ context.Context, actor string, hash []byte, createdAt time.Time) error {
	if err := os.MkdirAll(filepath.Dir(f.path), 0o750); err != nil {
		return fmt.Errorf("ops key: %w", err)
	}
	// Read, add, write atomically; if another writer changed the file meanwhile, again.
	for attempt := 0; ; attempt++ {
		before, _ := os.ReadFile(f.path)
		doc, err := readOpsKeys(f.path)
		if err != nil {
			return err
		}
		doc.Keys = append(doc.Keys, OpsKeyRecord{Actor: actor, SHA256: hex.EncodeToString(hash), CreatedAt: createdAt})
		data, err := json.MarshalIndent(doc, "", "  ")
		if err != nil {
			return err
		}
		now, _ := os.ReadFile(f.path)
		if !bytes.Equal(before, now) && attempt < 5 {
			continue
		}
		if err := opsWriteFile(f.path, append(data, '\n'), 0o600); err != nil {
			return fmt.Errorf("ops key: %w", err)
		}
		return nil
	}
}

// opsWriteFile writes path atomically: a synced temporary file renamed over it.
func opsWriteFile(path string, data []byte, mode fs.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
