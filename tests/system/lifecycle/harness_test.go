// Package lifecycle holds the acceptance tests of the certificate's life (issue 6, lines 1
// and 2) and of revocation and the audit trail: the real CLI and `vaxpass serve` on a
// fresh data directory with a generated registry, one facility, an upload, facility
// signing and central signing drained by the server.
//
// The server holds the database lock: the tests stop it before running CLI commands
// (renew, revoke, audit, registry load) on the same data directory, and read the store
// directly only while it is stopped.
//
// Size: VAXPASS_LIFECYCLE_PEOPLE (default 200) registry people, as many dose records.
package lifecycle

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/domain/dose"
	"github.com/vaxpass/vaxpass/shared/domain/uvci"
	"github.com/vaxpass/vaxpass/shared/store/embedded"
	"github.com/vaxpass/vaxpass/shared/testkit/cli"
	"github.com/vaxpass/vaxpass/shared/testkit/server"
	"github.com/vaxpass/vaxpass/shared/tool/synth"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

func envInt(t *testing.T, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive integer", name, s)
	}
	return n
}

// call makes one API request of srv as the holder of key ("" for none), body as JSON
// (nil: none).
func call(t *testing.T, srv *server.Process, method, path, key string, body any) (int, []byte) {
	t.Helper()
	r := srv.Client(key).Call(t, method, path, body)
	return r.Status, r.Body
}

// waitFor polls cond until it holds (a minute at most).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// world is a data directory with certificates issued through the whole pipeline.
type world struct {
	data, gen, apiKey string
	records           []dose.Record
	// certs are the issued certificates, by person.
	certs map[string]vaxpass.Certificate
}

const facilityID = "site-1"

// issue builds a world: a generated registry (clean records only: every vaccinated person
// is VERIFIED), a facility, an upload of every record, facility signing, and central
// signing drained by the server; the server is stopped at the end.
func issue(t *testing.T, people int, seed int) *world {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the CLI and runs the server")
	}
	w := &world{data: filepath.Join(t.TempDir(), "data"), gen: t.TempDir()}
	cli.Must(t, "registry", "generate", "--people", strconv.Itoa(people), "--seed", strconv.Itoa(seed),
		"--mix", "only,clean=1", "--out", w.gen)
	cli.Must(t, "registry", "load", filepath.Join(w.gen, synth.RegistryFile), "--data", w.data)
	w.apiKey = strings.TrimSpace(cli.Must(t, "facility", "add", "--id", facilityID, "--name", "Trạm Y tế", "--data", w.data).Stdout)

	f, err := os.Open(filepath.Join(w.gen, synth.RecordsFile))
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r dose.Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		w.records = append(w.records, r)
	}
	f.Close()

	srv := server.Spawn(t, w.data)
	for i := 0; i < len(w.records); i += 1000 {
		batch := w.records[i:min(i+1000, len(w.records))]
		code, body := call(t, srv, "POST", "/v1/doses", w.apiKey, map[string]any{"records": batch})
		if code != 200 {
			t.Fatalf("upload: %d %s", code, body)
		}
	}
	waitFor(t, "matching", func() bool {
		code, body := call(t, srv, "GET", "/v1/worklist?status=PENDING", w.apiKey, nil)
		var page struct{ Records []json.RawMessage }
		json.Unmarshal(body, &page)
		return code == 200 && len(page.Records) == 0
	})
	code, body := call(t, srv, "POST", "/v1/signatures", w.apiKey, nil)
	var signed struct{ Signed int }
	if code != 200 || json.Unmarshal(body, &signed) != nil || signed.Signed == 0 {
		t.Fatalf("facility signing: %d %s", code, body)
	}
	waitFor(t, "central signing", func() bool {
		return len(certificatesOf(t, srv, w)) == signed.Signed
	})
	srv.Stop()
	w.certs = w.readCerts(t)
	if len(w.certs) != signed.Signed {
		t.Fatalf("%d certificates stored, %d people signed", len(w.certs), signed.Signed)
	}
	return w
}

// certificatesOf asks the facility API which certificates its records have now.
func certificatesOf(t *testing.T, srv *server.Process, w *world) map[string]string {
	byUVCI := map[string]string{}
	for _, r := range w.records {
		code, body := call(t, srv, "GET", "/v1/doses/"+r.SourceID, w.apiKey, nil)
		if code != 200 {
			t.Fatalf("GET dose %s: %d %s", r.SourceID, code, body)
		}
		var v struct {
			Certificate *struct{ UVCI string } `json:"certificate"`
		}
		json.Unmarshal(body, &v)
		if v.Certificate != nil {
			byUVCI[v.Certificate.UVCI] = r.SourceID
		}
	}
	return byUVCI
}

// readCerts reads the active certificates from the store (the server must be stopped).
func (w *world) readCerts(t *testing.T) map[string]vaxpass.Certificate {
	t.Helper()
	db, err := embedded.Open(w.data)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	st, err := embedded.OpenStore(db, embedded.StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]vaxpass.Certificate{}
	cursor := ""
	for {
		page, next, err := st.ListCertificates(context.Background(), cursor, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range page {
			if c.Status == vaxpass.CertIssued {
				out[c.PersonID] = c
			}
		}
		if next == "" {
			return out
		}
		cursor = next
	}
}

// verdict is the part of `vaxpass verify`'s JSON the tests read.
type verdict struct {
	Valid     bool   `json:"valid"`
	Step      string `json:"step"`
	Reason    string `json:"reason"`
	ExpiresAt string `json:"expires_at"`
	IssuedAt  string `json:"issued_at"`
	DCC       struct {
		Nam struct {
			FNT string `json:"fnt"`
			GNT string `json:"gnt"`
		} `json:"nam"`
		V []struct {
			CI string `json:"ci"`
		} `json:"v"`
	} `json:"dcc"`
}

// verify runs `vaxpass verify` on an HC1 (from stdin) against the data directory's trust
// list (and revocation list, when present).
func verify(t *testing.T, data, hc1 string) (verdict, int) {
	t.Helper()
	r := cli.Runner{Stdin: hc1}.Run(t, "verify", "--data", data, "-")
	var v verdict
	if err := json.Unmarshal([]byte(r.Stdout), &v); err != nil {
		t.Fatalf("verify output %q (stderr %s): %v", r.Stdout, r.Stderr, err)
	}
	return v, r.Code
}

// uvciCheck is the UVCI check character of s.
func uvciCheck(s string) (byte, error) { return uvci.CheckChar(s) }

// nextSecond waits until the clock is past the second of the latest issue: iat has whole
// seconds, so a renewal run renews only certificates issued before its starting second (a
// certificate issued in that second could not get a later expiry).
func nextSecond(certs map[string]vaxpass.Certificate) {
	var last time.Time
	for _, c := range certs {
		if c.IssuedAt.After(last) {
			last = c.IssuedAt
		}
	}
	if d := time.Until(last.Truncate(time.Second).Add(time.Second)); d > 0 {
		time.Sleep(d)
	}
}
