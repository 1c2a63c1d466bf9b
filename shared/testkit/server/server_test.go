package server_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/testkit/server"
	"github.com/vaxpass/vaxpass/shared/wire/local"
)

// worklistPending reads how many records of the key's facility wait for the matcher.
func worklistPending(t *testing.T, c *server.Client) int {
	t.Helper()
	var page struct{ Records []any }
	c.Expect(t, "GET", "/v1/worklist?status=PENDING", nil, http.StatusOK, &page)
	return len(page.Records)
}

func TestOpenServesTheSystem(t *testing.T) {
	sys := server.Open(t, server.Options{Demo: true, OpsActor: "kit-ops", Facility: "kit-site", NoSync: true,
		Options: local.Options{FacilitySignEvery: -1, PollInterval: 5 * time.Millisecond}})
	if sys.Demo.Dir == "" || !strings.HasPrefix(sys.FacilityKey, "vxp_") || sys.FacilityKey == sys.Demo.APIKey || sys.OpsKey == "" {
		t.Fatalf("demo %+v, facility key %q, ops key %q", sys.Demo, sys.FacilityKey, sys.OpsKey)
	}
	// The added facility's key is its own: its worklist is empty.
	if n := worklistPending(t, sys.Client(sys.FacilityKey)); n != 0 {
		t.Errorf("the new facility has %d records", n)
	}
	if !strings.HasPrefix(sys.Data, os.TempDir()) {
		t.Errorf("data directory %s: not a temporary one", sys.Data)
	}
	// The keys work: the demo facility's on its worklist, the ops key on the audit trail;
	// no key is refused.
	fac := sys.Client(sys.Demo.APIKey)
	worklistPending(t, fac)
	sys.Client(sys.OpsKey).Expect(t, "GET", "/v1/ops/audit", nil, http.StatusOK, nil)
	if r := sys.Client("").Call(t, "GET", "/v1/worklist?status=PENDING", nil); r.Status != http.StatusUnauthorized {
		t.Errorf("worklist without a key: %s", r)
	}
	// With the pumps running (Local.Run), an upload gets matched.
	body, err := os.ReadFile(filepath.Join(sys.Demo.Dir, "doses.json"))
	if err != nil {
		t.Fatal(err)
	}
	fac.Expect(t, "POST", "/v1/doses", jsonRaw(body), http.StatusOK, nil)
	deadline := time.Now().Add(time.Minute)
	for worklistPending(t, fac) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("the demo upload is not matched after a minute: no matcher runs")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Close releases the database: the data directory opens again.
	sys.Close()
	l, err := local.OpenLocal(local.Options{DataDir: sys.Data})
	if err != nil {
		t.Fatalf("reopen after Close: %v", err)
	}
	l.Close()
}

// jsonRaw sends bytes as they are through Client.Call.
type jsonRaw []byte

func (j jsonRaw) MarshalJSON() ([]byte, error) { return j, nil }

func TestOpenFrontOnly(t *testing.T) {
	sys := server.Open(t, server.Options{Demo: true, FrontOnly: true,
		Options: local.Options{FacilitySignEvery: -1, PollInterval: 5 * time.Millisecond}})
	fac := sys.Client(sys.FacilityKey)
	body, err := os.ReadFile(filepath.Join(sys.Demo.Dir, "doses.json"))
	if err != nil {
		t.Fatal(err)
	}
	fac.Expect(t, "POST", "/v1/doses", jsonRaw(body), http.StatusOK, nil)
	time.Sleep(200 * time.Millisecond)
	n := worklistPending(t, fac)
	if n == 0 {
		t.Fatal("records matched with the front alone: pumps run")
	}
	sys.Go("matcher", sys.Local.RunMatcher)
	deadline := time.Now().Add(time.Minute)
	for worklistPending(t, fac) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("not matched a minute after the matcher started")
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("%d records PENDING until the matcher started", n)
}

func TestSpawn(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the CLI and runs the server")
	}
	data := server.ScratchDir(t)
	p := server.Spawn(t, data, "--demo", "--sign-every", "0")
	key := p.DemoKey(t)
	c := p.Client(key)
	worklistPending(t, c)
	if !strings.Contains(p.Log(), "listening on") {
		t.Errorf("log: %s", p.Log())
	}
	p.Stop()
	if p.Running() || p.Err() != nil {
		t.Fatalf("after Stop: running %v, %v", p.Running(), p.Err())
	}
	if _, err := c.Send("GET", "/v1/trustlist", nil, ""); err == nil {
		t.Error("the stopped server still answers")
	}

	// Kill is a crash: the server restarts on the same data directory.
	p = server.Spawn(t, data)
	p.Kill()
	if p.Running() || p.Err() == nil || !strings.Contains(p.Err().Error(), "killed") {
		t.Fatalf("after Kill: running %v, %v", p.Running(), p.Err())
	}
	p = server.Spawn(t, data)
	worklistPending(t, p.Client(key))
}

func TestGoFailureStopsTheSystem(t *testing.T) {
	ft := &fakeT{T: t}
	sys := server.Open(ft, server.Options{FrontOnly: true})
	sys.Go("broken", func(ctx context.Context) error { return os.ErrInvalid })
	sys.Close()
	if !ft.failed || !strings.Contains(ft.msg, "broken: invalid argument") {
		t.Errorf("a failing background task: failed %v, %q", ft.failed, ft.msg)
	}
}

// fakeT records Errorf instead of failing the real test.
type fakeT struct {
	*testing.T
	failed bool
	msg    string
}

func (f *fakeT) Errorf(format string, args ...any) {
	f.failed = true
	f.msg += fmt.Sprintf(format, args...) + "\n"
}

func TestScratchDir(t *testing.T) {
	base := t.TempDir()
	t.Setenv(server.EnvTmpDir, base)
	d := server.ScratchDir(t)
	if filepath.Dir(d) != base {
		t.Errorf("ScratchDir %s, not under %s", d, base)
	}
}
