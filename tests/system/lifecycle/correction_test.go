package lifecycle

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/domain/dose"
	"github.com/vaxpass/vaxpass/shared/testkit/cli"
	"github.com/vaxpass/vaxpass/shared/testkit/server"
)

// Issue 6, acceptance 2: correcting a person's name re-issues; the old HC1 then fails
// `vaxpass verify` with "revoked" and the new one passes.
//
// The certificate carries the registry's name (the matcher's corrections), so a name
// correction changes the certificate when the registry changed: the person's name is
// corrected in the registry (a registry update), and the facility corrects its record to
// match (PATCH /v1/doses/{source_id}).
func TestCorrectionReissuesAndRevokesTheOld(t *testing.T) {
	w := issue(t, 60, 5)
	var pid string
	for p := range w.certs {
		if pid == "" || p < pid {
			pid = p
		}
	}
	old := w.certs[pid]
	var recs []dose.Record
	for _, r := range w.records {
		if r.IDNumber == pid {
			recs = append(recs, r)
		}
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].SourceID < recs[j].SourceID })
	oldName := recs[0].FullName
	words := strings.Fields(oldName)
	last := "Khoa"
	if words[len(words)-1] == last {
		last = "Minh"
	}
	newName := strings.Join(append(words[:len(words)-1:len(words)-1], last), " ")

	// The registry's correction.
	update := filepath.Join(t.TempDir(), "update.csv")
	row := []string{pid, newName, recs[0].DOB, recs[0].Gender}
	if err := os.WriteFile(update, []byte("id_number,full_name,dob,gender\n"+strings.Join(row, ",")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cli.Must(t, "registry", "load", update, "--data", w.data)

	srv := server.Spawn(t, w.data)
	sid := recs[len(recs)-1].SourceID
	code, body := call(t, srv, "PATCH", "/v1/doses/"+sid, w.apiKey, map[string]any{"full_name": newName})
	var ans struct {
		Status  string   `json:"status"`
		Changed []string `json:"changed"`
	}
	if code != 200 || json.Unmarshal(body, &ans) != nil || ans.Status != "corrected" || strings.Join(ans.Changed, ",") != "full_name" {
		t.Fatalf("PATCH: %d %s", code, body)
	}
	// Re-match, then the facility signs again (its daily run, or on demand).
	waitFor(t, "the corrected record to be matched and signed", func() bool {
		code, body := call(t, srv, "POST", "/v1/signatures", w.apiKey, nil)
		var r struct{ Signed int }
		return code == 200 && json.Unmarshal(body, &r) == nil && r.Signed == 1
	})
	var newUVCI string
	waitFor(t, "central signing to re-issue", func() bool {
		_, body := call(t, srv, "GET", "/v1/doses/"+sid, w.apiKey, nil)
		var v struct {
			Certificate *struct{ UVCI string } `json:"certificate"`
		}
		json.Unmarshal(body, &v)
		if v.Certificate != nil && v.Certificate.UVCI != old.UVCI {
			newUVCI = v.Certificate.UVCI
			return true
		}
		return false
	})

	// POST /v1/verify on the server: the old one is revoked, the new one valid.
	verifyAPI := func(hc1 string) verdict {
		code, body := call(t, srv, "POST", "/v1/verify", "", map[string]string{"hc1": hc1})
		var v verdict
		if code != 200 || json.Unmarshal(body, &v) != nil {
			t.Fatalf("POST /v1/verify: %d %s", code, body)
		}
		return v
	}
	if v := verifyAPI(old.HC1); v.Valid || v.Reason != "revoked" || v.Step != "revoked" {
		t.Errorf("POST /v1/verify of the old HC1: %+v, want reason revoked", v)
	}
	code, body = call(t, srv, "POST", "/v1/passports/lookup", "", map[string]string{"id_number": pid, "full_name": newName, "dob": recs[0].DOB})
	var look struct {
		UVCI string `json:"uvci"`
		HC1  string `json:"hc1"`
	}
	if code != 200 || json.Unmarshal(body, &look) != nil || look.UVCI != newUVCI {
		t.Fatalf("lookup with the corrected name: %d %s", code, body)
	}
	if v := verifyAPI(look.HC1); !v.Valid {
		t.Errorf("POST /v1/verify of the new HC1: %+v", v)
	}
	srv.Stop()

	// `vaxpass verify` with the published list beside the trust list.
	if _, err := os.Stat(filepath.Join(w.data, "revocations.json")); err != nil {
		t.Fatalf("no revocation list published: %v", err)
	}
	v, code := verify(t, w.data, old.HC1)
	if code != 1 || v.Valid || v.Reason != "revoked" {
		t.Errorf("vaxpass verify of the old HC1: exit %d %+v, want exit 1 reason revoked", code, v)
	}
	nv, code := verify(t, w.data, look.HC1)
	if code != 0 || !nv.Valid {
		t.Errorf("vaxpass verify of the new HC1: exit %d %+v", code, nv)
	}
	if nv.DCC.Nam == v.DCC.Nam || !strings.Contains(nv.DCC.Nam.GNT, strings.ToUpper(last)) {
		t.Errorf("new names %+v (old %+v): the correction is not in the certificate", nv.DCC.Nam, v.DCC.Nam)
	}
	certs := w.readCerts(t)
	if c := certs[pid]; c.UVCI != newUVCI || c.Replaces != old.UVCI {
		t.Errorf("stored certificate %s replaces %q, want %s replacing %s", c.UVCI, c.Replaces, newUVCI, old.UVCI)
	}

	// Audited, by ID only.
	trail := cli.Must(t, "audit", "--data", w.data, "--from", time.Now().Add(-time.Hour).Format(time.RFC3339)).Stdout
	var sawCorrection, sawSuperseded bool
	for _, line := range strings.Split(strings.TrimSpace(trail), "\n") {
		var e struct {
			Action string   `json:"action"`
			Reason string   `json:"reason"`
			Doses  []string `json:"doses"`
			UVCIs  []string `json:"uvcis"`
		}
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatal(err)
		}
		switch {
		case e.Action == "correction" && len(e.Doses) == 1 && e.Doses[0] == facilityID+"/"+sid:
			sawCorrection = true
		case e.Action == "revocation" && e.Reason == "superseded" && len(e.UVCIs) == 2 && e.UVCIs[0] == old.UVCI && e.UVCIs[1] == newUVCI:
			sawSuperseded = true
		}
	}
	if !sawCorrection || !sawSuperseded {
		t.Errorf("audit trail lacks the correction (%v) or the superseded certificate (%v):\n%s", sawCorrection, sawSuperseded, trail)
	}
	for _, personal := range []string{oldName, newName, recs[0].DOB, pid, "HC1:"} {
		if strings.Contains(trail, personal) {
			t.Errorf("the audit trail holds personal data %q", personal)
		}
	}
}
