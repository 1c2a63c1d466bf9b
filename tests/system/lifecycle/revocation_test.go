package lifecycle

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/stage/revocation"
	"github.com/vaxpass/vaxpass/shared/testkit/cli"
	"github.com/vaxpass/vaxpass/shared/testkit/server"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// Revocation by ops (API and CLI), the published list, verification against it, the ops
// credential and the audit trail's query and export.
func TestRevocationOpsAPIAndCLI(t *testing.T) {
	w := issue(t, 60, 7)
	var certs []vaxpass.Certificate
	for _, c := range w.certs {
		certs = append(certs, c)
	}
	if len(certs) < 3 {
		t.Fatalf("only %d certificates", len(certs))
	}
	sort.Slice(certs, func(i, j int) bool { return certs[i].UVCI < certs[j].UVCI })
	byAPI, byCLI, kept := certs[0], certs[1], certs[2]

	opsKey := strings.TrimSpace(cli.Must(t, "ops", "key", "--actor", "ops-anna", "--data", w.data).Stdout)
	if !strings.HasPrefix(opsKey, "vxo_") {
		t.Fatalf("ops key %q", opsKey)
	}
	if b, err := os.ReadFile(filepath.Join(w.data, "access-keys.json")); err != nil || !bytes.Contains(b, []byte(`"ops"`)) || bytes.Contains(b, []byte(opsKey)) {
		t.Fatalf("the key file (%v) must hold the ops key's hash, never the key", err)
	}

	srv := server.Spawn(t, w.data)
	revoke := func(key string, body any) (int, map[string]any) {
		code, b := call(t, srv, "POST", "/v1/ops/revocations", key, body)
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("answer %q: %v", b, err)
		}
		return code, m
	}
	errCode := func(m map[string]any) string {
		e, _ := m["error"].(map[string]any)
		s, _ := e["code"].(string)
		return s
	}
	valid := map[string]string{"uvci": byAPI.UVCI, "reason": "issued in error"}
	for _, key := range []string{"", "vxo_wrong"} {
		if code, m := revoke(key, valid); code != http.StatusUnauthorized || errCode(m) != "unauthorized" {
			t.Errorf("revoke with key %q: %d %v, want 401 unauthorized", key, code, m)
		}
	}
	// A facility's key is valid, of a role the ops routes do not take.
	if code, m := revoke(w.apiKey, valid); code != http.StatusForbidden || errCode(m) != "forbidden" {
		t.Errorf("revoke with the facility's key: %d %v, want 403 forbidden", code, m)
	}
	for name, tc := range map[string]struct {
		body any
		code int
	}{
		"no reason":    {map[string]string{"uvci": byAPI.UVCI}, 400},
		"not a UVCI":   {map[string]string{"uvci": "URN:UVCI:01:VN:X Y", "reason": "x"}, 400},
		"unknown UVCI": {map[string]string{"uvci": "URN:UVCI:01:VN:AAAAAAAAAAAAAAAAAAAAAAAAAA#" + checkChar(t, "URN:UVCI:01:VN:AAAAAAAAAAAAAAAAAAAAAAAAAA"), "reason": "x"}, 404},
		"extra field":  {map[string]string{"uvci": byAPI.UVCI, "reason": "x", "name": "x"}, 400},
	} {
		if code, m := revoke(opsKey, tc.body); code != tc.code {
			t.Errorf("%s: %d %v, want %d", name, code, m, tc.code)
		}
	}
	if code, m := revoke(opsKey, valid); code != 200 || m["outcome"] != revocation.Revoked {
		t.Fatalf("revoke: %d %v", code, m)
	}
	if code, m := revoke(opsKey, valid); code != 200 || m["outcome"] != revocation.AlreadyRevoked {
		t.Errorf("revoke again: %d %v", code, m)
	}

	// The public list: hashes only, cacheable, and it revokes.
	req, _ := http.NewRequest("GET", srv.URL+"/v1/revocations", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var list bytes.Buffer
	list.ReadFrom(resp.Body)
	resp.Body.Close()
	etag := resp.Header.Get("ETag")
	if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Cache-Control"), "public") || etag == "" {
		t.Fatalf("GET /v1/revocations: %d %v", resp.StatusCode, resp.Header)
	}
	if bytes.Contains(list.Bytes(), []byte(byAPI.UVCI)) || bytes.Contains(list.Bytes(), []byte("URN:UVCI")) {
		t.Fatal("the published list holds a plain UVCI")
	}
	set, err := revocation.Parse(list.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := set.Revoked(context.Background(), byAPI.UVCI); !ok {
		t.Error("the revoked UVCI is not on the published list")
	}
	if _, ok, _ := set.Revoked(context.Background(), kept.UVCI); ok {
		t.Error("a valid certificate is on the published list")
	}
	req.Header.Set("If-None-Match", etag)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusNotModified {
		t.Errorf("conditional GET: %v %v", resp.StatusCode, err)
	} else {
		resp.Body.Close()
	}
	for uvci, want := range map[string]bool{byAPI.UVCI: false, kept.UVCI: true} {
		hc1 := map[string]vaxpass.Certificate{byAPI.UVCI: byAPI, kept.UVCI: kept}[uvci].HC1
		code, b := call(t, srv, "POST", "/v1/verify", "", map[string]string{"hc1": hc1})
		var v verdict
		json.Unmarshal(b, &v)
		if code != 200 || v.Valid != want || (!want && v.Reason != "revoked") {
			t.Errorf("POST /v1/verify: %d %s", code, b)
		}
	}

	// The audit API.
	if code, _ := call(t, srv, "GET", "/v1/ops/audit", "", nil); code != http.StatusUnauthorized {
		t.Errorf("audit without a key: %d", code)
	}
	code, b := call(t, srv, "GET", "/v1/ops/audit?action=revocation", opsKey, nil)
	var page struct {
		Entries []struct {
			Actor  string   `json:"actor"`
			Reason string   `json:"reason"`
			UVCIs  []string `json:"uvcis"`
		} `json:"entries"`
	}
	if code != 200 || json.Unmarshal(b, &page) != nil || len(page.Entries) != 1 ||
		page.Entries[0].Actor != "ops-anna" || page.Entries[0].UVCIs[0] != byAPI.UVCI || page.Entries[0].Reason != "issued in error" {
		t.Errorf("GET /v1/ops/audit: %d %s", code, b)
	}
	if code, b := call(t, srv, "GET", "/v1/ops/audit?from=yesterday", opsKey, nil); code != 400 || !bytes.Contains(b, []byte(`"field":"from"`)) {
		t.Errorf("bad from: %d %s", code, b)
	}
	req, _ = http.NewRequest("GET", srv.URL+"/v1/ops/audit?format=csv&action=revocation&from="+time.Now().Add(-time.Hour).UTC().Format("2006-01-02"), nil)
	req.Header.Set("Authorization", "Bearer "+opsKey)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(resp.Body).ReadAll()
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") || len(rows) != 2 || rows[0][0] != "id" {
		t.Errorf("audit CSV: %d %v %q", resp.StatusCode, err, rows)
	}
	srv.Stop()

	// The CLI, with the server stopped.
	r := cli.Must(t, "revoke", byCLI.UVCI, "--reason", "fraud", "--data", w.data)
	var res revocation.Result
	if json.Unmarshal([]byte(r.Stdout), &res) != nil || res.Outcome != revocation.Revoked || res.UVCI != byCLI.UVCI {
		t.Fatalf("revoke: %s", r.Stdout)
	}
	if r := cli.Must(t, "revoke", "--data", w.data, "--reason", "fraud", strings.ToLower(byCLI.UVCI)); !strings.Contains(r.Stdout, revocation.AlreadyRevoked) {
		t.Errorf("revoke again: %s", r.Stdout)
	}
	for _, args := range [][]string{
		{"revoke", byCLI.UVCI, "--data", w.data},                                  // no reason: usage
		{"revoke", "--reason", "x", "--data", w.data},                             // no UVCI: usage
		{"revoke", "not-a-uvci", "--reason", "x", "--data", w.data},               // usage
		{"renew", "--within", "0d", "--data", w.data},                             // usage
		{"audit", "--format", "xml", "--data", w.data},                            // usage
		{"audit", "--from", "2025-02-01", "--to", "2025-01-01", "--data", w.data}, // usage
	} {
		if r := cli.Run(t, args...); r.Code != 2 {
			t.Errorf("vaxpass %v: exit %d, want 2 (%s)", args, r.Code, r.Stderr)
		}
	}

	for hc1, want := range map[string]int{byAPI.HC1: 1, byCLI.HC1: 1, kept.HC1: 0} {
		if v, code := verify(t, w.data, hc1); code != want || (want == 1 && v.Reason != "revoked") {
			t.Errorf("vaxpass verify: exit %d %+v, want exit %d", code, v, want)
		}
	}
	// --revocations names another list: an empty one revokes nothing; a broken one is an error.
	empty := filepath.Join(t.TempDir(), "empty.json")
	var buf bytes.Buffer
	revocation.Build("VN", time.Now(), nil).Encode(&buf)
	os.WriteFile(empty, buf.Bytes(), 0o600)
	if r := cli.Run(t, "verify", "--data", w.data, "--revocations", empty, byCLI.HC1); r.Code != 0 {
		t.Errorf("verify with an empty revocation list: exit %d %s", r.Code, r.Stdout)
	}
	broken := filepath.Join(t.TempDir(), "broken.json")
	os.WriteFile(broken, []byte(`{"format":"x"}`), 0o600)
	if r := cli.Run(t, "verify", "--data", w.data, "--revocations", broken, kept.HC1); r.Code != 1 || r.Stdout != "" {
		t.Errorf("verify with a broken revocation list: exit %d %q", r.Code, r.Stdout)
	}

	// Revoked certificates are never renewed.
	nextSecond(w.certs)
	sum := parseSummary(t, cli.Must(t, "renew", "--within", "400d", "--data", w.data).Stdout)
	if sum.Counts.Renewed != int64(len(certs)-2) {
		t.Errorf("renewal after two revocations: %+v, want %d renewed", sum.Counts, len(certs)-2)
	}

	r = cli.Must(t, "audit", "--action", "revocation", "--format", "csv", "--data", w.data)
	rows, err = csv.NewReader(strings.NewReader(r.Stdout)).ReadAll()
	if err != nil || len(rows) != 3 {
		t.Fatalf("audit --action revocation --format csv: %v %q", err, r.Stdout)
	}
	if !strings.HasPrefix(rows[2][2], "cli:") || rows[2][4] != "fraud" || rows[2][7] != byCLI.UVCI {
		t.Errorf("CLI revocation row %q", rows[2])
	}
}

func checkChar(t *testing.T, s string) string {
	t.Helper()
	c, err := uvciCheck(s)
	if err != nil {
		t.Fatal(err)
	}
	return string(c)
}
