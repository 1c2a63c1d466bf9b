package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/domain/dose"
	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/stage/ingest"
	"github.com/vaxpass/vaxpass/shared/stage/reprocess"
	"github.com/vaxpass/vaxpass/shared/stage/signing"
	"github.com/vaxpass/vaxpass/shared/tool/synth"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
	"github.com/vaxpass/vaxpass/shared/wire/local"
)

func TestFacilityKeyRotateRevokeCLI(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	if code, _, stderr := runCLI("", "facility", "add", "--data", data, "--id", "F1", "--name", "Trạm Y tế 1"); code != 0 {
		t.Fatalf("facility add: exit %d: %s", code, stderr)
	}
	change := func(verb string) map[string]any {
		t.Helper()
		code, stdout, stderr := runCLI("", "facility", "key", verb, "--data", data, "--id", "F1", "--actor", "anna")
		if code != 0 {
			t.Fatalf("facility key %s: exit %d: %s", verb, code, stderr)
		}
		var out map[string]any
		if err := json.Unmarshal([]byte(stdout), &out); err != nil || strings.Count(stdout, "\n") != 1 {
			t.Fatalf("facility key %s: stdout %q: %v", verb, stdout, err)
		}
		if verb == "revoke" && !strings.Contains(stderr, "reprocess --stage facility-sign --facility F1") {
			t.Errorf("revoke does not tell how to sign the refused people again: %s", stderr)
		}
		return out
	}
	rot := change("rotate")
	if rot["facility_id"] != "F1" || rot["revoked"] != false || rot["key_id"] == rot["former_key_id"] {
		t.Errorf("rotate: %v", rot)
	}
	rev := change("revoke")
	if rev["revoked"] != true || rev["former_key_id"] != rot["key_id"] {
		t.Errorf("revoke: %v, want the rotated key %v revoked", rev, rot["key_id"])
	}

	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"facility", "key"}, 2, "usage: vaxpass facility key"},
		{[]string{"facility", "key", "delete", "--id", "F1"}, 2, "usage: vaxpass facility key"},
		{[]string{"facility", "key", "rotate", "--data", data}, 2, "--id is required"},
		{[]string{"facility", "key", "rotate", "--data", data, "--id", "F9"}, 1, `no facility "F9"`},
	} {
		code, stdout, stderr := runCLI("", tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.want) || stdout != "" {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", tc.args, code, stderr, tc.code, tc.want)
		}
	}
}

// Nobody is lost by a revocation: people signed with a key that is revoked before central
// signing saw their signature are refused there (dead-lettered), and the facility-sign
// reprocessing the revocation names signs them again with the new key.
func TestRevokedFacilityKeyPeopleSignedAgain(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	gen, data := filepath.Join(dir, "gen"), filepath.Join(dir, "data")
	for _, args := range [][]string{
		{"registry", "generate", "--people", "300", "--seed", "7", "--out", gen},
		{"registry", "load", filepath.Join(gen, synth.RegistryFile), "--data", data},
	} {
		if code, _, stderr := runCLI("", args...); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, stderr)
		}
	}
	f, err := os.Open(filepath.Join(gen, synth.RecordsFile))
	if err != nil {
		t.Fatal(err)
	}
	byFacility := map[string][]ingest.Item{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r dose.Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		fid, _, _ := strings.Cut(r.SourceID, "-")
		byFacility[fid] = append(byFacility[fid], ingest.Item{Record: r})
	}
	f.Close()

	l, err := local.OpenLocal(local.Options{DataDir: data, MaxReceiveCount: 1, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	in := &ingest.Service{Doses: l.Store, Now: time.Now}
	for fid, items := range byFacility {
		if _, err := l.Sys.AddFacility(ctx, fid, "Cơ sở "+fid); err != nil {
			t.Fatal(err)
		}
		for len(items) > 0 {
			n := min(len(items), ingest.MaxBatch)
			if _, err := in.Submit(ctx, fid, items[:n]); err != nil {
				t.Fatal(err)
			}
			items = items[n:]
		}
	}
	if _, err := l.NewReprocessor(nil).Run(ctx, reprocess.Selector{Stage: reprocess.StageMatch, Filter: reprocess.Filter{Statuses: []match.Status{match.Pending}}}, reprocess.Options{}); err != nil {
		t.Fatal(err)
	}
	// Every facility signs; the signatures wait in the central queue.
	if err := l.SignAllFacilities(ctx); err != nil {
		t.Fatal(err)
	}
	// The facility with the most people signed has its key revoked before central signing.
	signedBy := map[string]map[string]bool{}
	for fid := range byFacility {
		doses, _, err := l.Store.ScanDoses(ctx, []match.Status{match.Verified}, []string{fid}, vaxpass.DoseKey{}, 10_000)
		if err != nil {
			t.Fatal(err)
		}
		signedBy[fid] = map[string]bool{}
		for _, d := range doses {
			if !d.SignedAt.IsZero() {
				signedBy[fid][d.PersonID] = true
			}
		}
	}
	victim := ""
	for fid, people := range signedBy {
		if victim == "" || len(people) > len(signedBy[victim]) {
			victim = fid
		}
	}
	if len(signedBy[victim]) == 0 {
		t.Fatal("no facility signed anyone")
	}
	rev, err := l.Sys.RevokeFacilityKey(ctx, victim)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.DrainCentralQueue(ctx); err != nil {
		t.Fatal(err)
	}
	dead, err := l.ListDead(ctx, "central", "", 10_000)
	if err != nil {
		t.Fatal(err)
	}
	if len(dead) == 0 {
		t.Fatal("no signature by the revoked key was refused")
	}
	if _, err := l.NewReprocessor(nil).Run(ctx, reprocess.Selector{Stage: reprocess.StageFacilitySign, Filter: reprocess.Filter{Facilities: []string{victim}}}, reprocess.Options{}); err != nil {
		t.Fatal(err)
	}
	if err := l.DrainCentralQueue(ctx); err != nil {
		t.Fatal(err)
	}
	fac, err := l.Store.GetFacility(ctx, victim)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := x509.ParsePKIXPublicKey(fac.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	for person := range signedBy[victim] {
		sigs, err := l.Store.FacilitySignatures(ctx, person)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, sg := range sigs {
			if sg.FacilityID != victim {
				continue
			}
			if _, err := signing.SignedOf(sg).Verify(pub.(*ecdsa.PublicKey)); err == nil {
				found = true
			}
		}
		if !found {
			t.Errorf("person signed by %s before its key %s was revoked has no signature by the new key", victim, rev.FormerKeyID)
		}
	}
	t.Logf("%d people of %s signed again after the revocation; %d messages dead-lettered", len(signedBy[victim]), victim, len(dead))
}
