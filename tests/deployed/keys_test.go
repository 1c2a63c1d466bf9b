package deployed

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/vaxpass/vaxpass/shared/domain/access"
)

// TestDeployedKeys: a key of each role made with the CLI (`vaxpass key add --backend aws`)
// opens its route; revoked with the CLI, the very next request with it gets 401, on every
// function (facility, ops). A rotated key gives way to its successor at once.
func TestDeployedKeys(t *testing.T) {
	s := openStack(t)
	run := s.operator(t, "keys-test")
	tag := randomTag()
	facility := "keys-" + tag
	run("facility", "add", "--id", facility, "--name", "Key test site")

	cases := []struct {
		role    access.Role
		subject string
		path    string
	}{
		{access.Facility, facility, "/v1/worklist?status=MISMATCH"},
		{access.Clerk, digits(tag), "/v1/worklist?status=MISMATCH"},
		{access.Officer, "officer-" + tag, "/v1/registry/records?status=MISMATCH&facility_id=" + facility},
		{access.Ops, "ops-" + tag, "/v1/stats"},
	}
	status := func(path, key string) int {
		t.Helper()
		return s.call(http.MethodGet, path, key, "", nil).status
	}
	for _, c := range cases {
		t.Run(string(c.role), func(t *testing.T) {
			key := strings.TrimSpace(run("key", "add", "--role", string(c.role), "--subject", c.subject))
			if strings.Contains(key, "\n") || len(key) < 40 {
				t.Fatalf("key add printed %q, want one key", key)
			}
			id := access.IDOf(access.Hash(key))
			if got := status(c.path, key); got != http.StatusOK {
				t.Fatalf("GET %s with a new %s key: %d, want 200", c.path, c.role, got)
			}
			revoked := run("key", "revoke", id)
			var line map[string]any
			if err := json.Unmarshal([]byte(revoked), &line); err != nil || line["id"] != id || line["revoked_at"] == nil {
				t.Fatalf("key revoke printed %q (%v)", revoked, err)
			}
			// The very next request: no cache anywhere may let it through.
			if got := status(c.path, key); got != http.StatusUnauthorized {
				t.Fatalf("GET %s with the %s key right after its revocation: %d, want 401", c.path, c.role, got)
			}
			listed := false
			for _, l := range strings.Split(strings.TrimSpace(run("key", "list")), "\n") {
				var m map[string]any
				if err := json.Unmarshal([]byte(l), &m); err != nil {
					t.Fatalf("key list line %q: %v", l, err)
				}
				if m["id"] == id {
					listed = m["revoked_at"] != nil && m["role"] == string(c.role) && m["subject"] == c.subject
				}
			}
			if !listed {
				t.Errorf("key list does not show %s as a revoked %s key of %s", id, c.role, c.subject)
			}
		})
	}

	t.Run("rotate", func(t *testing.T) {
		old := strings.TrimSpace(run("key", "add", "--role", "ops", "--subject", "rotate-"+tag))
		if got := status("/v1/stats", old); got != http.StatusOK {
			t.Fatalf("GET /v1/stats with a new ops key: %d", got)
		}
		fresh := strings.TrimSpace(run("key", "rotate", access.IDOf(access.Hash(old))))
		if got := status("/v1/stats", old); got != http.StatusUnauthorized {
			t.Errorf("GET /v1/stats with the rotated-out key: %d, want 401", got)
		}
		if got := status("/v1/stats", fresh); got != http.StatusOK {
			t.Errorf("GET /v1/stats with its successor: %d, want 200", got)
		}
	})
}

// digits is a five-digit commune code made of tag's hex digits.
func digits(tag string) string {
	var b strings.Builder
	for _, r := range tag {
		b.WriteByte('0' + byte(r)%10)
		if b.Len() == 5 {
			break
		}
	}
	for b.Len() < 5 {
		b.WriteByte('0')
	}
	return b.String()
}
