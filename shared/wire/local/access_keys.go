package local

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vaxpass/vaxpass/shared/domain/access"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
	"github.com/vaxpass/vaxpass/shared/wire"
)

// AccessKeysFile is the file of the data directory holding the API keys of every role:
// their SHA-256 (never the keys), role, subject and times. It is a plain file, not the
// database, so that `vaxpass key ...` works while a server holds the database, and the
// server sees a new or revoked key at its next request.
const AccessKeysFile = "access-keys.json"

// OpsKeysFile is the ops key file of before the roles: read (as keys of role ops whose
// subject is their actor) while AccessKeysFile does not exist, and folded into it by the
// first write.
const OpsKeysFile = "ops-keys.json"

// accessKeysLock is the lock file serialising writers, across processes (flock).
const accessKeysLock = ".access-keys.lock"

// maxAccessKeysFile bounds the key file (~5,000 keys).
const maxAccessKeysFile = 1 << 20

// racyWindow: a file modified this recently is re-read (and compared by content) on every
// lookup, whatever its size and time say: a file system's time stamps may be too coarse
// to tell two writes within one tick apart.
const racyWindow = 2 * time.Second

// accessKeyRecord is one key as stored. Actor is the subject of an ops key of the old
// file (whose records have no role).
type accessKeyRecord struct {
	Role      access.Role `json:"role,omitempty"`
	Subject   string      `json:"subject,omitempty"`
	Actor     string      `json:"actor,omitempty"`
	SHA256    string      `json:"sha256"`
	CreatedAt time.Time   `json:"created_at"`
	RevokedAt time.Time   `json:"revoked_at,omitzero"`
}

type accessKeysDoc struct {
	Keys []accessKeyRecord `json:"keys"`
}

// AccessKeyFile is the embedded backend's access key store (wire.AccessKeyStore, and
// wire.OpsKeyStore for the ops routes of before the roles) over <data>/access-keys.json.
// Lookups re-read the file whenever it may have changed, so a revocation by another
// process holds at the next request; writers take an flock and replace the file
// atomically.
type AccessKeyFile struct {
	dir  string
	now  func() time.Time
	rand io.Reader

	mu     sync.Mutex
	info   fs.FileInfo // of the file the cache was read from (nil: none)
	sum    [sha256.Size]byte
	byHash map[string]access.Key // by hex SHA-256
}

// OpsKeyFile is the ops keys' store of before the roles: the access key file.
type OpsKeyFile = AccessKeyFile

// NewAccessKeyFile returns the access keys of dataDir.
func NewAccessKeyFile(dataDir string, now func() time.Time, rand io.Reader) *AccessKeyFile {
	if now == nil {
		now = time.Now
	}
	return &AccessKeyFile{dir: dataDir, now: now, rand: rand}
}

// NewOpsKeyFile returns the access keys of dataDir (NewAccessKeyFile).
func NewOpsKeyFile(dataDir string, now func() time.Time, rand io.Reader) *OpsKeyFile {
	return NewAccessKeyFile(dataDir, now, rand)
}

var (
	_ wire.AccessKeyStore = (*AccessKeyFile)(nil)
	_ wire.OpsKeyStore    = (*AccessKeyFile)(nil)
)

// KeyByHash implements wire.AccessKeyStore.
func (f *AccessKeyFile) KeyByHash(_ context.Context, hash []byte) (access.Key, error) {
	keys, err := f.load()
	if err != nil {
		return access.Key{}, err
	}
	k, ok := keys[hex.EncodeToString(hash)]
	if !ok || len(hash) != sha256.Size {
		return access.Key{}, fmt.Errorf("access key: %w", vaxpass.ErrNotFound)
	}
	return k, nil
}

// ListKeys implements wire.AccessKeyStore: oldest first.
func (f *AccessKeyFile) ListKeys(context.Context) ([]access.Key, error) {
	keys, err := f.load()
	if err != nil {
		return nil, err
	}
	out := make([]access.Key, 0, len(keys))
	for _, k := range keys {
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b access.Key) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

// AddKey implements wire.AccessKeyStore (k.ID is derived from k.Hash; CreatedAt zero is
// now).
func (f *AccessKeyFile) AddKey(_ context.Context, k access.Key) error {
	if err := access.CheckSubject(k.Role, k.Subject); err != nil {
		return fmt.Errorf("add access key: %w: %w", vaxpass.ErrInvalid, err)
	}
	if len(k.Hash) != sha256.Size {
		return fmt.Errorf("add access key: %w: key hash is %d bytes, want a SHA-256", vaxpass.ErrInvalid, len(k.Hash))
	}
	if !k.RevokedAt.IsZero() {
		return fmt.Errorf("add access key: %w: a new key cannot be revoked", vaxpass.ErrInvalid)
	}
	if k.CreatedAt.IsZero() {
		k.CreatedAt = f.now()
	}
	h, id := hex.EncodeToString(k.Hash), access.IDOf(k.Hash)
	return f.update(func(recs []accessKeyRecord) ([]accessKeyRecord, error) {
		for _, r := range recs {
			if r.SHA256 == h || strings.HasPrefix(r.SHA256, id) {
				return nil, fmt.Errorf("add access key %s: %w: the key (or its ID) is stored already", id, vaxpass.ErrConflict)
			}
		}
		return append(recs, accessKeyRecord{Role: k.Role, Subject: k.Subject, SHA256: h, CreatedAt: k.CreatedAt.UTC()}), nil
	})
}

// RevokeKey implements wire.AccessKeyStore.
func (f *AccessKeyFile) RevokeKey(_ context.Context, id string, at time.Time) (access.Key, error) {
	id = strings.ToLower(id)
	if len(id) != access.IDLen || strings.Trim(id, "0123456789abcdef") != "" {
		return access.Key{}, fmt.Errorf("revoke access key: %w: a key ID is %d hex digits", vaxpass.ErrInvalid, access.IDLen)
	}
	if at.IsZero() {
		at = f.now()
	}
	var out access.Key
	err := f.update(func(recs []accessKeyRecord) ([]accessKeyRecord, error) {
		i := -1
		for j, r := range recs {
			if strings.HasPrefix(r.SHA256, id) {
				if i >= 0 {
					return nil, fmt.Errorf("revoke access key %s: %w: several keys have that ID", id, vaxpass.ErrConflict)
				}
				i = j
			}
		}
		if i < 0 {
			return nil, fmt.Errorf("revoke access key %s: %w", id, vaxpass.ErrNotFound)
		}
		if recs[i].RevokedAt.IsZero() {
			recs[i].RevokedAt = at.UTC()
		}
		var err error
		out, err = recs[i].key()
		return recs, err
	})
	return out, err
}

// OpsKeyValid implements wire.OpsKeyStore: hash is a valid key of role ops.
func (f *AccessKeyFile) OpsKeyValid(ctx context.Context, hash []byte) (string, bool, error) {
	k, err := f.KeyByHash(ctx, hash)
	if errors.Is(err, vaxpass.ErrNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	if k.Role != access.Ops || k.Revoked() {
		return "", false, nil
	}
	return k.Subject, true, nil
}

// AddOpsKey implements wire.OpsKeyStore: a key of role ops.
func (f *AccessKeyFile) AddOpsKey(ctx context.Context, actor string, hash []byte, createdAt time.Time) error {
	return f.AddKey(ctx, access.Key{Role: access.Ops, Subject: actor, Hash: hash, CreatedAt: createdAt})
}

// Create makes a new ops key for actor and stores its hash; the key is returned once and
// never stored.
func (f *AccessKeyFile) Create(actor string) (string, error) {
	if err := access.CheckSubject(access.Ops, actor); err != nil {
		return "", fmt.Errorf("%w: %w", vaxpass.ErrInvalid, err)
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

func (r accessKeyRecord) key() (access.Key, error) {
	hash, err := hex.DecodeString(r.SHA256)
	if err != nil || len(hash) != sha256.Size {
		return access.Key{}, errors.New("a sha256 that is not 64 hex digits")
	}
	k := access.Key{ID: access.IDOf(hash), Role: r.Role, Subject: r.Subject, Hash: hash, CreatedAt: r.CreatedAt, RevokedAt: r.RevokedAt}
	if r.Role == "" { // an ops key of the old file
		k.Role, k.Subject = access.Ops, r.Actor
	}
	if err := access.CheckSubject(k.Role, k.Subject); err != nil {
		return access.Key{}, fmt.Errorf("key %s: %w", k.ID, err)
	}
	return k, nil
}

// load returns the keys by hex hash, re-reading the file unless it is the one read last
// (same file, size and modification time, and not modified within racyWindow).
func (f *AccessKeyFile) load() (map[string]access.Key, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var path string
	var b []byte
	var info fs.FileInfo
	for attempt := 0; info == nil; attempt++ {
		p, st, err := f.current()
		if err != nil {
			return nil, err
		}
		if st == nil {
			f.info, f.byHash = nil, map[string]access.Key{}
			return f.byHash, nil
		}
		if f.info != nil && os.SameFile(f.info, st) && f.info.Size() == st.Size() && f.info.ModTime().Equal(st.ModTime()) &&
			time.Since(st.ModTime()) > racyWindow {
			return f.byHash, nil
		}
		if b, info, err = readKeyFile(p); err != nil {
			return nil, err
		}
		// info nil: removed since the Stat (a writer folded the old file into the new):
		// look again.
		if info == nil && attempt == 3 {
			return nil, fmt.Errorf("access keys: %s: removed while read", p)
		}
		path = p
	}
	sum := sha256.Sum256(b)
	if f.info != nil && f.byHash != nil && sum == f.sum {
		f.info = info
		return f.byHash, nil
	}
	recs, err := decodeKeyFile(path, b)
	if err != nil {
		return nil, err
	}
	byHash := make(map[string]access.Key, len(recs))
	for _, r := range recs {
		k, err := r.key()
		if err != nil {
			return nil, fmt.Errorf("access keys: %s: %w", path, err)
		}
		byHash[hex.EncodeToString(k.Hash)] = k
	}
	f.info, f.sum, f.byHash = info, sum, byHash
	return byHash, nil
}

// current is the key file in use: AccessKeysFile, else OpsKeysFile; st nil when neither
// exists.
func (f *AccessKeyFile) current() (string, fs.FileInfo, error) {
	for _, name := range []string{AccessKeysFile, OpsKeysFile} {
		path := filepath.Join(f.dir, name)
		st, err := os.Stat(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return "", nil, fmt.Errorf("access keys: %w", err)
		}
		return path, st, nil
	}
	return "", nil, nil
}

// readKeyFile reads path and the FileInfo of what it read (nil, nil when it does not
// exist).
func readKeyFile(path string) ([]byte, fs.FileInfo, error) {
	fh, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("access keys: %w", err)
	}
	defer fh.Close()
	info, err := fh.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("access keys: %w", err)
	}
	b, err := io.ReadAll(io.LimitReader(fh, maxAccessKeysFile+1))
	if err != nil {
		return nil, nil, fmt.Errorf("access keys: %w", err)
	}
	if len(b) > maxAccessKeysFile {
		return nil, nil, fmt.Errorf("access keys: %s is larger than %d bytes", path, maxAccessKeysFile)
	}
	return b, info, nil
}

func decodeKeyFile(path string, b []byte) ([]accessKeyRecord, error) {
	var doc accessKeysDoc
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("access keys: %s: %w", path, err)
	}
	return doc.Keys, nil
}

// update changes the records under the writers' lock: it reads the file in use, applies
// fn and writes AccessKeysFile atomically (mode 0600), then removes the old ops key file,
// whose records it now holds.
func (f *AccessKeyFile) update(fn func([]accessKeyRecord) ([]accessKeyRecord, error)) error {
	if err := os.MkdirAll(f.dir, 0o700); err != nil {
		return fmt.Errorf("access keys: %w", err)
	}
	unlock, err := lockFile(filepath.Join(f.dir, accessKeysLock))
	if err != nil {
		return fmt.Errorf("access keys: lock: %w", err)
	}
	defer unlock()
	var recs []accessKeyRecord
	path, st, err := f.current()
	if err != nil {
		return err
	}
	if st != nil {
		b, _, err := readKeyFile(path)
		if err != nil {
			return err
		}
		if recs, err = decodeKeyFile(path, b); err != nil {
			return err
		}
		for i, r := range recs {
			if _, err := r.key(); err != nil {
				return fmt.Errorf("access keys: %s: %w", path, err)
			}
			if r.Role == "" {
				recs[i].Role, recs[i].Subject, recs[i].Actor = access.Ops, r.Actor, ""
			}
		}
	}
	if recs, err = fn(recs); err != nil {
		return err
	}
	data, err := json.MarshalIndent(accessKeysDoc{Keys: recs}, "", "  ")
	if err != nil {
		return err
	}
	if err := opsWriteFile(filepath.Join(f.dir, AccessKeysFile), append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("access keys: %w", err)
	}
	if err := os.Remove(filepath.Join(f.dir, OpsKeysFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("access keys: the old ops key file: %w", err)
	}
	return nil
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
