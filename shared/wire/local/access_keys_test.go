package local_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/domain/access"
	"github.com/vaxpass/vaxpass/shared/testkit/storetest"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
	"github.com/vaxpass/vaxpass/shared/wire/local"
)

// TestAccessKeysContract: the key file behaves as the DynamoDB store does, a second
// instance over the same directory standing for another process.
func TestAccessKeysContract(t *testing.T) {
	storetest.RunAccessKeys(t, func(t *testing.T) (storetest.AccessKeys, func() storetest.AccessKeys) {
		dir := t.TempDir()
		return local.NewAccessKeyFile(dir, time.Now, nil), func() storetest.AccessKeys {
			return local.NewAccessKeyFile(dir, time.Now, nil)
		}
	})
}

// TestOpsKeyFile: the ops keys of before the roles -- Create, OpsKeyValid -- over the
// access key file; the key itself is in no file, which is its owner's only.
func TestOpsKeyFile(t *testing.T) {
	dir := t.TempDir()
	f := local.NewOpsKeyFile(dir, time.Now, bytes.NewReader(bytes.Repeat([]byte{7}, 64)))
	ctx := context.Background()
	if _, ok, err := f.OpsKeyValid(ctx, make([]byte, 32)); ok || err != nil {
		t.Fatalf("no key file: %v %v", ok, err)
	}
	key, err := f.Create("ops-anna")
	if err != nil {
		t.Fatal(err)
	}
	other := local.NewOpsKeyFile(dir, time.Now, bytes.NewReader(bytes.Repeat([]byte{9}, 64)))
	key2, err := other.Create("ops-bob")
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{key: "ops-anna", key2: "ops-bob", "vxo_nope": ""} {
		actor, ok, err := f.OpsKeyValid(ctx, access.Hash(k))
		if err != nil || ok != (want != "") || actor != want {
			t.Errorf("OpsKeyValid(%s) = %q %v %v, want %q", k, actor, ok, err, want)
		}
	}
	// A key of another role is no ops key.
	if err := f.AddKey(ctx, access.Key{Role: access.Officer, Subject: "police", Hash: access.Hash("vxr_x")}); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := f.OpsKeyValid(ctx, access.Hash("vxr_x")); ok || err != nil {
		t.Errorf("OpsKeyValid(an officer key) = %v, %v", ok, err)
	}
	path := filepath.Join(dir, local.AccessKeysFile)
	b, _ := os.ReadFile(path)
	if bytes.Contains(b, []byte(key)) || bytes.Contains(b, []byte(key2)) {
		t.Error("a key itself is in the file")
	}
	for _, name := range []string{local.AccessKeysFile, ".access-keys.lock"} {
		if st, err := os.Stat(filepath.Join(dir, name)); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, mode %v; want 0600", name, err, st.Mode().Perm())
		}
	}
	for _, bad := range []string{"", "Ops", "a b", strings.Repeat("a", 65), "-x"} {
		if _, err := f.Create(bad); !errors.Is(err, vaxpass.ErrInvalid) {
			t.Errorf("Create(%q) = %v", bad, err)
		}
	}
	os.WriteFile(path, []byte("{broken"), 0o600)
	if _, _, err := f.OpsKeyValid(ctx, access.Hash(key)); err == nil {
		t.Error("a broken key file is not an error")
	}
}

// TestOldOpsKeyFile: an ops-keys.json of before the roles keeps working (its keys are of
// role ops, their subject the actor) and is folded into the access key file by the first
// write, a revocation included.
func TestOldOpsKeyFile(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	old := access.Hash("vxo_old")
	doc := map[string]any{"keys": []map[string]any{{"actor": "anna", "sha256": hexOf(old), "created_at": t0}}}
	b, _ := json.Marshal(doc)
	if err := os.WriteFile(filepath.Join(dir, local.OpsKeysFile), b, 0o600); err != nil {
		t.Fatal(err)
	}
	f := local.NewAccessKeyFile(dir, time.Now, nil)
	k, err := f.KeyByHash(ctx, old)
	if err != nil || k.Role != access.Ops || k.Subject != "anna" || !k.CreatedAt.Equal(t0) || k.ID != access.IDOf(old) {
		t.Fatalf("KeyByHash(old key) = %+v, %v", k, err)
	}
	if actor, ok, err := f.OpsKeyValid(ctx, old); !ok || err != nil || actor != "anna" {
		t.Fatalf("OpsKeyValid(old key) = %q, %v, %v", actor, ok, err)
	}
	rk, err := f.RevokeKey(ctx, k.ID, t0.Add(time.Hour))
	if err != nil || !rk.RevokedAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("RevokeKey(old key) = %+v, %v", rk, err)
	}
	if _, err := os.Stat(filepath.Join(dir, local.OpsKeysFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the old file is still there after a write: %v", err)
	}
	if _, ok, _ := f.OpsKeyValid(ctx, old); ok {
		t.Error("a revoked old key still opens the ops routes")
	}
	list, err := local.NewAccessKeyFile(dir, time.Now, nil).ListKeys(ctx)
	if err != nil || len(list) != 1 || list[0].Subject != "anna" || list[0].Role != access.Ops || !list[0].Revoked() {
		t.Errorf("ListKeys after folding = %+v, %v", list, err)
	}
}

// TestAccessKeyFileTwoProcesses: writers in two processes at once (the CLI while the
// server runs) lose no key: the flock serialises them.
func TestAccessKeyFileTwoProcesses(t *testing.T) {
	if os.Getenv("VAXPASS_KEYFILE_WRITER") != "" {
		dir, prefix := os.Getenv("VAXPASS_KEYFILE_WRITER"), os.Getenv("VAXPASS_KEYFILE_PREFIX")
		f := local.NewAccessKeyFile(dir, time.Now, nil)
		for i := range 40 {
			if err := f.AddKey(context.Background(), access.Key{Role: access.Ops, Subject: "w", Hash: access.Hash(prefix + string(rune('A'+i)))}); err != nil {
				t.Fatal(err)
			}
		}
		return
	}
	dir := t.TempDir()
	var cmds []*exec.Cmd
	for _, prefix := range []string{"one-", "two-"} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestAccessKeyFileTwoProcesses$", "-test.count=1")
		cmd.Env = append(os.Environ(), "VAXPASS_KEYFILE_WRITER="+dir, "VAXPASS_KEYFILE_PREFIX="+prefix)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("writer %s: %s", prefix, out.String())
			}
		})
		cmds = append(cmds, cmd)
	}
	for _, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Errorf("writer: %v", err)
		}
	}
	list, err := local.NewAccessKeyFile(dir, time.Now, nil).ListKeys(context.Background())
	if err != nil || len(list) != 80 {
		t.Fatalf("ListKeys = %d keys, %v; want 80", len(list), err)
	}
}

func hexOf(b []byte) string { return hex.EncodeToString(b) }

// A replaced key file is seen even when its size and modification time equal the old
// one's (a coarse file system clock, a copy that kept the time): it is another file.
func TestAccessKeyFileSeesAReplacementOfEqualSizeAndTime(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	path := filepath.Join(dir, local.AccessKeysFile)
	old := time.Now().Add(-time.Hour).Truncate(time.Second)
	write := func(subject string) {
		t.Helper()
		doc := map[string]any{"keys": []map[string]any{{"role": "ops", "subject": subject, "sha256": hexOf(access.Hash("vxo_k")), "created_at": old}}}
		b, _ := json.Marshal(doc)
		tmp := path + ".new"
		if err := os.WriteFile(tmp, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(tmp, old, old); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	write("anna")
	f := local.NewAccessKeyFile(dir, time.Now, nil)
	if k, err := f.KeyByHash(ctx, access.Hash("vxo_k")); err != nil || k.Subject != "anna" {
		t.Fatalf("KeyByHash = %+v, %v", k, err)
	}
	write("bobo") // same size, same time
	if k, err := f.KeyByHash(ctx, access.Hash("vxo_k")); err != nil || k.Subject != "bobo" {
		t.Errorf("KeyByHash after the replacement = %+v, %v; want subject bobo", k, err)
	}
}

// BenchmarkAccessKeyFileKeyByHash: a request's key lookup over a key file of 2,000 keys
// written more than racyWindow ago (a stat and a map read), and right after a write (the
// file read and hashed again on every lookup).
func BenchmarkAccessKeyFileKeyByHash(b *testing.B) {
	for _, fresh := range []bool{false, true} {
		b.Run(map[bool]string{false: "stable", true: "just-written"}[fresh], func(b *testing.B) {
			dir := b.TempDir()
			recs := make([]map[string]any, 2000)
			for i := range recs {
				recs[i] = map[string]any{"role": "facility", "subject": "F" + strconv.Itoa(i), "sha256": hexOf(access.Hash("k" + strconv.Itoa(i))), "created_at": time.Now()}
			}
			data, _ := json.Marshal(map[string]any{"keys": recs})
			path := filepath.Join(dir, local.AccessKeysFile)
			if err := os.WriteFile(path, data, 0o600); err != nil {
				b.Fatal(err)
			}
			if !fresh {
				old := time.Now().Add(-time.Hour)
				os.Chtimes(path, old, old)
			}
			f := local.NewAccessKeyFile(dir, time.Now, nil)
			hash := access.Hash("k1234")
			ctx := context.Background()
			b.ResetTimer()
			for b.Loop() {
				if _, err := f.KeyByHash(ctx, hash); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
