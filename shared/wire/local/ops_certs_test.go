package local_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/stage/audit"
	"github.com/vaxpass/vaxpass/shared/stage/revocation"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
	"github.com/vaxpass/vaxpass/shared/wire"
	"github.com/vaxpass/vaxpass/shared/wire/local"
)

func openOps(t *testing.T) (*local.Local, *local.Ops) {
	t.Helper()
	l, _, ops := openOpsIn(t)
	return l, ops
}

func openOpsIn(t *testing.T) (*local.Local, string, *local.Ops) {
	t.Helper()
	dir := t.TempDir()
	l, err := local.OpenLocal(local.Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	ops, err := local.AttachOps(l)
	if err != nil {
		t.Fatal(err)
	}
	return l, dir, ops
}

func TestAttachOpsTwiceIsTheSame(t *testing.T) {
	l, ops := openOps(t)
	again, err := local.AttachOps(l) // would panic on re-registered routes if it attached twice
	if err != nil || again != ops {
		t.Fatalf("second AttachOps = %p, %v; want %p", again, err, ops)
	}
	if l.Verifier.Revocations == nil {
		t.Error("the verifier does not check the revocation list")
	}
	if _, ok := l.CentralSigning.Store.(*wire.SupersedeListing); !ok {
		t.Errorf("central signing store is %T", l.CentralSigning.Store)
	}
}

func TestSupersedeListingListsBeforeReplacing(t *testing.T) {
	l, dir, ops := openOpsIn(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	prev := vaxpass.Certificate{UVCI: "URN:UVCI:01:VN:AAAA#1", PersonID: "p", HC1: "HC1:x", Status: vaxpass.CertIssued, IssuedAt: now, ExpiresAt: now.AddDate(1, 0, 0), Version: 1}
	store := l.CentralSigning.Store
	if err := store.ReplaceCertificate(ctx, prev, nil); err != nil {
		t.Fatal(err)
	}
	renewed := prev
	renewed.HC1 = "HC1:y"
	if err := store.ReplaceCertificate(ctx, renewed, &prev); err != nil {
		t.Fatal(err)
	}
	if n, _ := ops.Revocations.RevocationCount(ctx); n != 0 {
		t.Fatal("a renewal (same UVCI) was listed")
	}
	renewed.Version = 2
	next := renewed
	next.UVCI = "URN:UVCI:01:VN:BBBB#2"
	if err := store.ReplaceCertificate(ctx, next, &renewed); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := (revocation.Lookup{List: ops.Revocations}).Revoked(ctx, prev.UVCI); !ok {
		t.Error("the superseded certificate is not listed")
	}
	if v := l.Verifier.Verify(ctx, "HC1:x"); v.Valid {
		t.Error("garbage verified")
	}
	// The file is written, and not rewritten when nothing changed.
	if err := ops.WriteRevocationsFile(ctx); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, local.RevocationsFile)
	st1, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	if err := ops.WriteRevocationsFile(ctx); err != nil {
		t.Fatal(err)
	}
	if st2, _ := os.Stat(path); !st2.ModTime().Equal(st1.ModTime()) {
		t.Error("an unchanged list was rewritten")
	}
	b, _ := os.ReadFile(path)
	set, err := revocation.Parse(b)
	if err != nil || set.Len() != 1 {
		t.Fatalf("published file: %v (%d entries)", err, set.Len())
	}
}

func sha(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

func TestCorrectionsEndpoint(t *testing.T) {
	l, ops := openOps(t)
	ctx := context.Background()
	key, err := l.AddFacility(ctx, "site-1", "Trạm")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(l.HTTPHandler())
	defer srv.Close()
	call := func(method, path, key string, body string) (int, string) {
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	rec := `{"source_id":"S1","full_name":"Nguyễn Văn An","dob":"1990-01-02","gender":"male","id_number":"079090012345","vaccine":"PFIZER","dose_number":1,"vaccinated_on":"2021-08-01"}`
	if code, body := call("POST", "/v1/doses", key, `{"records":[`+rec+`]}`); code != 200 || !strings.Contains(body, `"accepted":1`) {
		t.Fatalf("upload: %d %s", code, body)
	}
	tests := []struct {
		name, key, path, body string
		code                  int
		want                  string
	}{
		{"no key", "", "/v1/doses/S1", `{"full_name":"x"}`, 401, `"unauthorized"`},
		{"unknown record", key, "/v1/doses/S9", `{"full_name":"Nguyễn Văn Anh"}`, 404, `"not_found"`},
		{"empty body", key, "/v1/doses/S1", `{}`, 400, `"field":"body"`},
		{"unknown field", key, "/v1/doses/S1", `{"fullname":"x"}`, 400, `fullname`},
		{"bad dob", key, "/v1/doses/S1", `{"dob":"1990/01/02"}`, 400, `"field":"dob"`},
		{"change source_id", key, "/v1/doses/S1", `{"source_id":"S2"}`, 400, `"field":"source_id"`},
		{"same values", key, "/v1/doses/S1", `{"full_name":"  Nguyễn Văn An ","source_id":"S1"}`, 200, `"status":"unchanged"`},
		{"correction", key, "/v1/doses/S1", `{"full_name":"Nguyễn Văn Anh","gender":"male"}`, 200, `"changed":["full_name"]`},
		{"again", key, "/v1/doses/S1", `{"full_name":"Nguyễn Văn Anh"}`, 200, `"status":"unchanged"`},
	}
	for _, tc := range tests {
		code, body := call("PATCH", tc.path, tc.key, tc.body)
		if code != tc.code || !strings.Contains(body, tc.want) {
			t.Errorf("%s: %d %s, want %d with %s", tc.name, code, body, tc.code, tc.want)
		}
	}
	d, err := l.Store.GetDose(ctx, vaxpass.DoseKey{FacilityID: "site-1", SourceID: "S1"})
	if err != nil || d.FullName != "Nguyễn Văn Anh" || !d.NeedsMatch() {
		t.Errorf("stored dose %+v %v: want the corrected name, due for a re-match", d.Record, err)
	}
	page, _, err := ops.Audit.Entries(ctx, audit.Query{Action: audit.ActionCorrection, Limit: 10})
	if err != nil || len(page) != 1 || page[0].Actor != "facility:site-1" || page[0].Doses[0] != "site-1/S1" || page[0].Params["fields"] != "full_name" {
		t.Fatalf("audit %+v %v", page, err)
	}
	if js, _ := json.Marshal(page); bytes.Contains(js, []byte("Anh")) || bytes.Contains(js, []byte("1990")) {
		t.Errorf("the audit entry holds personal data: %s", js)
	}
}
