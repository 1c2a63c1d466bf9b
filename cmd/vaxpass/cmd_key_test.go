package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/domain/access"
	"github.com/vaxpass/vaxpass/shared/store/awsstack"
	"github.com/vaxpass/vaxpass/shared/wire/local"
)

// listKeys runs `key list` and decodes its lines.
func listKeys(t *testing.T, dir string) []map[string]any {
	t.Helper()
	code, stdout, stderr := runCLI("", "key", "list", "--data", dir)
	if code != 0 || stderr != "" {
		t.Fatalf("key list: exit %d, stderr %q", code, stderr)
	}
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("key list line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

func keyOf(t *testing.T, list []map[string]any, id string) map[string]any {
	t.Helper()
	for _, m := range list {
		if m["id"] == id {
			return m
		}
	}
	t.Fatalf("key %s is not listed: %v", id, list)
	return nil
}

// The lifecycle on the embedded backend: add a key of each role, list, rotate, revoke;
// the key is printed once and is in no file; every change is audited.
func TestKeyCommandEmbedded(t *testing.T) {
	t.Setenv("USER", "anna")
	dir := t.TempDir()
	if code, _, stderr := runCLI("", "key", "add", "--role", "facility", "--subject", "F1", "--data", dir); code != 1 || !strings.Contains(stderr, "facility F1") || !strings.Contains(stderr, "not found") {
		t.Errorf("key add for an unregistered facility: exit %d, %q", code, stderr)
	}
	code, facKey, stderr := runCLI("", "facility", "add", "--id", "F1", "--name", "Trạm 1", "--data", dir)
	if code != 0 {
		t.Fatalf("facility add: exit %d, %s", code, stderr)
	}
	facKey = strings.TrimSpace(facKey)
	keys := map[access.Role]string{}
	for _, c := range []struct {
		role    access.Role
		subject string
		prefix  string
	}{{access.Facility, "F1", "vxp_"}, {access.Clerk, "00004", "vxc_"}, {access.Officer, "police.hn", "vxr_"}, {access.Ops, "bao", "vxo_"}} {
		code, stdout, stderr := runCLI("", "key", "add", "--role", string(c.role), "--subject", c.subject, "--data", dir)
		lines := strings.Split(strings.TrimSpace(stdout), "\n")
		if code != 0 || len(lines) != 1 || !strings.HasPrefix(lines[0], c.prefix) || len(lines[0]) < 40 {
			t.Fatalf("key add --role %s: exit %d, stdout %q, stderr %q", c.role, code, stdout, stderr)
		}
		keys[c.role] = lines[0]
	}
	list := listKeys(t, dir)
	if len(list) != 5 {
		t.Fatalf("key list: %d keys, want 5 (facility add's and four): %v", len(list), list)
	}
	if m := keyOf(t, list, access.IDOf(access.Hash(facKey))); m["role"] != "facility" || m["subject"] != "F1" || m["revoked_at"] != nil {
		t.Errorf("facility add's key: %v", m)
	}
	for role, k := range keys {
		m := keyOf(t, list, access.IDOf(access.Hash(k)))
		if m["role"] != string(role) || m["revoked_at"] != nil || m["created_at"] == nil || len(m) != 5 {
			t.Errorf("%s key listed as %v", role, m)
		}
	}
	// No file of the data directory holds a key; the key file is its owner's only.
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := os.ReadFile(path)
		for _, k := range append([]string{facKey}, keys[access.Clerk], keys[access.Officer], keys[access.Ops]) {
			if strings.Contains(string(b), k) {
				t.Errorf("%s holds a key", path)
			}
		}
		return nil
	})
	if st, err := os.Stat(filepath.Join(dir, local.AccessKeysFile)); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("key file: %v, mode %v", err, st.Mode().Perm())
	}

	// Rotate the clerk's key: a new one, same role and subject, the old one revoked.
	clerkID := access.IDOf(access.Hash(keys[access.Clerk]))
	code, stdout, stderr := runCLI("", "key", "rotate", strings.ToUpper(clerkID), "--data", dir)
	newClerk := strings.TrimSpace(stdout)
	if code != 0 || !strings.HasPrefix(newClerk, "vxc_") || newClerk == keys[access.Clerk] || !strings.Contains(stderr, clerkID) {
		t.Fatalf("key rotate: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	list = listKeys(t, dir)
	if m := keyOf(t, list, clerkID); m["revoked_at"] == nil {
		t.Errorf("rotated key not revoked: %v", m)
	}
	if m := keyOf(t, list, access.IDOf(access.Hash(newClerk))); m["role"] != "clerk" || m["subject"] != "00004" || m["revoked_at"] != nil {
		t.Errorf("new clerk key: %v", m)
	}
	f := local.NewAccessKeyFile(dir, time.Now, nil)
	if k, err := f.KeyByHash(context.Background(), access.Hash(keys[access.Clerk])); err != nil || !k.Revoked() {
		t.Errorf("the rotated key as stored: %+v, %v", k, err)
	}
	if code, _, stderr := runCLI("", "key", "rotate", clerkID, "--data", dir); code != 1 || !strings.Contains(stderr, "revoked") {
		t.Errorf("rotating a revoked key: exit %d, %q", code, stderr)
	}

	// Revoke the officer's key: printed as a list line, at once in the key file; again
	// changes nothing.
	officerID := access.IDOf(access.Hash(keys[access.Officer]))
	code, stdout, stderr = runCLI("", "key", "--data", dir, "revoke", officerID)
	if code != 2 {
		t.Errorf("flags before the subcommand: exit %d, %q; want a usage error", code, stderr)
	}
	code, stdout, stderr = runCLI("", "key", "revoke", "--data", dir, officerID)
	var revoked map[string]any
	if code != 0 || json.Unmarshal([]byte(stdout), &revoked) != nil || revoked["id"] != officerID || revoked["revoked_at"] == nil {
		t.Fatalf("key revoke: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if k, err := f.KeyByHash(context.Background(), access.Hash(keys[access.Officer])); err != nil || !k.Revoked() {
		t.Errorf("the revoked key as stored: %+v, %v", k, err)
	}
	if code, again, _ := runCLI("", "key", "revoke", officerID, "--data", dir); code != 0 || again != stdout {
		t.Errorf("revoking again: exit %d, %q; want the same line %q", code, again, stdout)
	}
	if code, _, stderr := runCLI("", "key", "revoke", "0123456789ab", "--data", dir); code != 1 || !strings.Contains(stderr, "0123456789ab") || !strings.Contains(stderr, "not found") {
		t.Errorf("revoking an unknown key: exit %d, %q", code, stderr)
	}

	// The audit trail: who, what, which key; never the key.
	code, stdout, stderr = runCLI("", "audit", "--data", dir)
	if code != 0 {
		t.Fatalf("audit: exit %d, %s", code, stderr)
	}
	for _, want := range []string{`"key_add"`, `"key_rotate"`, `"key_revoke"`, officerID, clerkID, "cli:anna", `"officer"`} {
		if !strings.Contains(stdout, want) {
			t.Errorf("audit trail lacks %s:\n%s", want, stdout)
		}
	}
	for _, k := range keys {
		if strings.Contains(stdout, k) {
			t.Error("the audit trail holds a key")
		}
	}
	// ops key is key add --role ops.
	code, stdout, _ = runCLI("", "ops", "key", "--actor", "chi", "--data", dir)
	if code != 0 {
		t.Fatalf("ops key: exit %d", code)
	}
	if m := keyOf(t, listKeys(t, dir), access.IDOf(access.Hash(strings.TrimSpace(stdout)))); m["role"] != "ops" || m["subject"] != "chi" {
		t.Errorf("ops key listed as %v", m)
	}
}

// While a server holds the database the key file still takes new keys and revocations,
// seen at once by the server's store.
func TestKeyCommandWhileServing(t *testing.T) {
	t.Setenv("USER", "anna")
	dir := t.TempDir()
	l, err := local.OpenLocal(local.Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	store := l.Sys.Ports().AccessKeys
	code, stdout, stderr := runCLI("", "key", "add", "--role", "officer", "--subject", "police", "--data", dir)
	if code != 0 || !strings.Contains(stderr, "audit trail is not written") {
		t.Fatalf("key add while serving: exit %d, stderr %q", code, stderr)
	}
	hash := access.Hash(strings.TrimSpace(stdout))
	if k, err := store.KeyByHash(context.Background(), hash); err != nil || k.Role != access.Officer || k.Revoked() {
		t.Fatalf("the server's store: %+v, %v", k, err)
	}
	if code, _, stderr := runCLI("", "key", "revoke", access.IDOf(hash), "--data", dir); code != 0 {
		t.Fatalf("key revoke while serving: exit %d, %s", code, stderr)
	}
	if k, err := store.KeyByHash(context.Background(), hash); err != nil || !k.Revoked() {
		t.Errorf("the server's store right after the revocation: %+v, %v; want it revoked", k, err)
	}
}

func TestKeyCommandUsage(t *testing.T) {
	t.Setenv("USER", "anna")
	t.Setenv(awsstack.EnvStack, "")
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"key"}, "usage: vaxpass key add"},
		{[]string{"key", "delete"}, `unknown subcommand "delete"`},
		{[]string{"key", "add", "--data", dir}, "--role and --subject are required"},
		{[]string{"key", "add", "--role", "admin", "--subject", "x", "--data", dir}, "must be one of facility, clerk, officer, ops"},
		{[]string{"key", "add", "--role", "clerk", "--subject", "Hà Nội", "--data", dir}, "commune code"},
		{[]string{"key", "add", "--role", "ops", "--subject", "Anna Le", "--data", dir}, "actor name"},
		{[]string{"key", "add", "--role", "ops", "--subject", "anna", "extra", "--data", dir}, `unexpected argument "extra"`},
		{[]string{"key", "list", "x", "--data", dir}, `unexpected argument "x"`},
		{[]string{"key", "rotate", "--data", dir}, "one key ID is required"},
		{[]string{"key", "revoke", "a", "b", "--data", dir}, "one key ID is required"},
		{[]string{"key", "revoke", "xyz", "--data", dir}, "must be 12 hex digits"},
		{[]string{"key", "rotate", "0123456789abcd", "--data", dir}, "must be 12 hex digits"},
		{[]string{"key", "list", "--nope"}, "flag provided but not defined: -nope"},
		{[]string{"key", "list", "--backend", "aws"}, "--stack NAME or set " + awsstack.EnvStack},
		{[]string{"key", "revoke", "0123456789ab", "--backend", "cloud"}, "--backend must be embedded or aws"},
	} {
		code, stdout, stderr := runCLI("", c.args...)
		if code != 2 || stdout != "" || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want 2 and %q", c.args, code, stdout, stderr, c.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "vaxpass.db")); err == nil {
		t.Error("a usage error opened the database")
	}
	if code, _, stderr := runCLI("", "key", "--help"); code != 0 || !strings.Contains(stderr, "officer") {
		t.Errorf("key --help: exit %d, %q", code, stderr)
	}
}

// With a stack name each key command goes to the stack: where nothing answers, it fails
// (1) naming the stack.
func TestKeyCommandReachesForTheStack(t *testing.T) {
	t.Setenv(awsstack.EnvStack, "vaxpass-test")
	t.Setenv("USER", "anna")
	t.Setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	t.Setenv("AWS_MAX_ATTEMPTS", "1")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	for _, args := range [][]string{
		{"key", "add", "--role", "clerk", "--subject", "00004"}, {"key", "list"},
		{"key", "rotate", "0123456789ab"}, {"key", "revoke", "0123456789ab"},
	} {
		code, stdout, stderr := runCLI("", append(args, "--backend", "aws")...)
		if code != 1 || !strings.Contains(stderr, `"vaxpass-test"`) || stdout != "" {
			t.Errorf("%v --backend aws: exit %d, stderr %q; want 1 naming the stack", args, code, stderr)
		}
	}
}
