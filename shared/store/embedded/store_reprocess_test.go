package embedded

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// reprocessTestDoses stores doses of three facilities in several statuses, in an order
// unlike the keys', and returns their keys in (facility, source_id) order with statuses.
func reprocessTestDoses(t *testing.T, s *Store) map[vaxpass.DoseKey]match.Status {
	t.Helper()
	statuses := []match.Status{match.Verified, match.NotFound, match.Pending, match.Mismatch}
	want := map[vaxpass.DoseKey]match.Status{}
	var doses []vaxpass.Dose
	for _, fac := range []string{"site-b", "site-a", "site-ab"} {
		for i := 29; i >= 0; i-- {
			st := statuses[(i*7+len(fac))%len(statuses)]
			d := vaxpass.Dose{FacilityID: fac, Match: match.Result{Status: st}, ReceivedAt: storeTestNow}
			d.SourceID = fmt.Sprintf("src-%03d", i)
			doses = append(doses, d)
			want[d.Key()] = st
		}
	}
	if _, err := s.PutNew(context.Background(), doses); err != nil {
		t.Fatal(err)
	}
	return want
}

func sortedKeys(m map[vaxpass.DoseKey]match.Status, keep func(vaxpass.DoseKey, match.Status) bool) []vaxpass.DoseKey {
	var keys []vaxpass.DoseKey
	for k, st := range m {
		if keep(k, st) {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(a, b vaxpass.DoseKey) int {
		if a.FacilityID != b.FacilityID {
			if a.FacilityID < b.FacilityID {
				return -1
			}
			return 1
		}
		if a.SourceID < b.SourceID {
			return -1
		}
		if a.SourceID > b.SourceID {
			return 1
		}
		return 0
	})
	return keys
}

// TestScanDosesWalksTheSelectionInKeyOrder pages through selections with page sizes that
// cut facilities and statuses in odd places: every selected dose comes once, in
// (facility, source_id) order, and CountDoses counts them.
func TestScanDosesWalksTheSelectionInKeyOrder(t *testing.T) {
	defer func(n int) { reprocessCountChunk = n }(reprocessCountChunk)
	reprocessCountChunk = 4 // counts cross read transactions
	ctx := context.Background()
	db, s := openTestStore(t, t.TempDir())
	defer db.Close()
	all := reprocessTestDoses(t, s)
	tests := []struct {
		name       string
		statuses   []match.Status
		facilities []string
	}{
		{"everything", nil, nil},
		{"one status", []match.Status{match.NotFound}, nil},
		{"two statuses", []match.Status{match.Mismatch, match.NotFound}, nil},
		{"facilities", nil, []string{"site-b", "site-a"}},
		{"status and facility", []match.Status{match.Verified, match.Pending}, []string{"site-ab"}},
		{"a status nobody has", []match.Status{match.NoID}, nil},
		{"a facility nobody has", nil, []string{"site-z"}},
	}
	for _, tt := range tests {
		want := sortedKeys(all, func(k vaxpass.DoseKey, st match.Status) bool {
			return (len(tt.statuses) == 0 || slices.Contains(tt.statuses, st)) &&
				(len(tt.facilities) == 0 || slices.Contains(tt.facilities, k.FacilityID))
		})
		n, err := s.CountDoses(ctx, tt.statuses, tt.facilities)
		if err != nil || n != int64(len(want)) {
			t.Errorf("%s: CountDoses = %d, %v; want %d", tt.name, n, err, len(want))
		}
		for _, limit := range []int{1, 7, 30, 31, 1000} {
			var got []vaxpass.DoseKey
			after := vaxpass.DoseKey{}
			for pages := 0; ; pages++ {
				if pages > len(all)+2 {
					t.Fatalf("%s/%d: the scan does not end", tt.name, limit)
				}
				page, done, err := s.ScanDoses(ctx, tt.statuses, tt.facilities, after, limit)
				if err != nil {
					t.Fatalf("%s/%d: %v", tt.name, limit, err)
				}
				if len(page) > limit {
					t.Fatalf("%s/%d: page of %d", tt.name, limit, len(page))
				}
				for _, d := range page {
					if d.Match.Status != all[d.Key()] {
						t.Errorf("%s: %v has status %s, stored %s", tt.name, d.Key(), d.Match.Status, all[d.Key()])
					}
					got = append(got, d.Key())
				}
				if done {
					break
				}
				if len(page) == 0 {
					t.Fatalf("%s/%d: an empty page that is not the end", tt.name, limit)
				}
				after = page[len(page)-1].Key()
			}
			if !slices.Equal(got, want) {
				t.Errorf("%s, pages of %d: got %d doses %v\nwant %d %v", tt.name, limit, len(got), got, len(want), want)
			}
		}
	}
}

// A dose that moves between two selected statuses behind the cursor is not seen again.
func TestScanDosesStatusChangeBehindTheCursor(t *testing.T) {
	ctx := context.Background()
	db, s := openTestStore(t, t.TempDir())
	defer db.Close()
	reprocessTestDoses(t, s)
	sel := []match.Status{match.NotFound, match.Verified}
	seen := map[vaxpass.DoseKey]int{}
	after := vaxpass.DoseKey{}
	for {
		page, done, err := s.ScanDoses(ctx, sel, nil, after, 5)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range page {
			seen[d.Key()]++
			if d.Match.Status == match.NotFound { // the re-match verifies it
				d.Match.Status = match.Verified
				if err := s.SaveMatch(ctx, d); err != nil {
					t.Fatal(err)
				}
			}
		}
		if done {
			break
		}
		after = page[len(page)-1].Key()
	}
	for k, n := range seen {
		if n != 1 {
			t.Errorf("%v seen %d times", k, n)
		}
	}
}

func TestScanDosesRejectsBadInput(t *testing.T) {
	db, s := openTestStore(t, t.TempDir())
	defer db.Close()
	ctx := context.Background()
	for name, call := range map[string]func() error{
		"limit 0": func() error { _, _, err := s.ScanDoses(ctx, nil, nil, vaxpass.DoseKey{}, 0); return err },
		"limit too large": func() error {
			_, _, err := s.ScanDoses(ctx, nil, nil, vaxpass.DoseKey{}, ReprocessMaxScan+1)
			return err
		},
		"NUL in facility":  func() error { _, _, err := s.ScanDoses(ctx, nil, []string{"a\x00b"}, vaxpass.DoseKey{}, 5); return err },
		"half a cursor":    func() error { _, _, err := s.ScanDoses(ctx, nil, nil, vaxpass.DoseKey{SourceID: "x"}, 5); return err },
		"empty status":     func() error { _, err := s.CountDoses(ctx, []match.Status{""}, nil); return err },
		"empty run id":     func() error { return s.SaveRun(ctx, "", []byte("{}"), nil) },
		"NUL in change id": func() error { return s.SaveRun(ctx, "r", []byte("{}"), map[string]string{"a\x00": "x"}) },
	} {
		if err := call(); !errors.Is(err, vaxpass.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
}

func TestRunStoreKeepsStateAndJournal(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, s := openTestStore(t, dir)
	if _, err := s.LoadRun(ctx, "rp-1"); !errors.Is(err, vaxpass.ErrNotFound) {
		t.Fatalf("LoadRun of nothing: %v", err)
	}
	if runs, err := s.ListRuns(ctx); err != nil || len(runs) != 0 {
		t.Fatalf("ListRuns = %v, %v", runs, err)
	}
	if err := s.SaveRun(ctx, "rp-2", []byte(`{"n":1}`), map[string]string{"f/b": "verified", "f/a": "issued URN:UVCI:01:VN:X"}); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveRun(ctx, "rp-1", []byte(`{"n":0}`), nil); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveRun(ctx, "rp-2", []byte(`{"n":2}`), map[string]string{"f/c": "mismatch"}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db, s = openTestStore(t, dir) // kept across a reopen
	defer db.Close()
	doc, err := s.LoadRun(ctx, "rp-2")
	if err != nil || string(doc) != `{"n":2}` {
		t.Errorf("LoadRun = %s, %v", doc, err)
	}
	runs, err := s.ListRuns(ctx)
	if err != nil || len(runs) != 2 || string(runs[0]) != `{"n":0}` {
		t.Errorf("ListRuns = %q, %v", runs, err)
	}
	ids, outs, err := s.RunChanges(ctx, "rp-2", "", 2)
	if err != nil || !slices.Equal(ids, []string{"f/a", "f/b"}) || outs[0] != "issued URN:UVCI:01:VN:X" {
		t.Errorf("RunChanges page 1 = %v %v %v", ids, outs, err)
	}
	ids, _, err = s.RunChanges(ctx, "rp-2", "f/b", 2)
	if err != nil || !slices.Equal(ids, []string{"f/c"}) {
		t.Errorf("RunChanges page 2 = %v %v", ids, err)
	}
	if ids, _, _ := s.RunChanges(ctx, "rp-1", "", 10); len(ids) != 0 {
		t.Errorf("another run's changes: %v", ids)
	}
}

func TestStatsScansEveryRecord(t *testing.T) {
	defer func(n int) { statsChunk = n }(statsChunk)
	statsChunk = 7 // scans cross read transactions
	ctx := context.Background()
	db, s := openTestStore(t, t.TempDir())
	defer db.Close()
	all := reprocessTestDoses(t, s)
	n := 0
	byStatus := map[match.Status]int{}
	err := s.EachDoseStat(ctx, func(fac string, st match.Status, id string) error {
		n++
		byStatus[st]++
		return nil
	})
	if err != nil || n != len(all) {
		t.Fatalf("EachDoseStat saw %d of %d: %v", n, len(all), err)
	}
	for st, c := range byStatus {
		if want := len(sortedKeys(all, func(_ vaxpass.DoseKey, s match.Status) bool { return s == st })); c != want {
			t.Errorf("%s: %d, want %d", st, c, want)
		}
	}
	stop := errors.New("stop")
	if err := s.EachDoseStat(ctx, func(string, match.Status, string) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("fn's error: %v", err)
	}

	// Certificates with their person's signing facilities.
	for i, person := range []string{"001090000001", "079090000002"} {
		c := vaxpass.Certificate{UVCI: fmt.Sprintf("URN:UVCI:01:VN:T%d", i), PersonID: person, Status: vaxpass.CertIssued,
			IssuedAt: storeTestNow, ExpiresAt: storeTestNow.AddDate(1, 0, 0)}
		if err := s.ReplaceCertificate(ctx, c, nil); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{"site-a", "site-b"}[:i+1] {
			if err := s.PutFacilitySignature(ctx, vaxpass.FacilitySignature{PersonID: person, FacilityID: f, SignedAt: storeTestNow}); err != nil {
				t.Fatal(err)
			}
		}
	}
	got := map[string][]string{}
	err = s.EachCertificateStat(ctx, func(person, status string, issued, expires time.Time, facs []string) error {
		if status != vaxpass.CertIssued || !issued.Equal(storeTestNow) || !expires.After(issued) {
			t.Errorf("certificate of %s: %s %v %v", person, status, issued, expires)
		}
		got[person] = slices.Clone(facs)
		return nil
	})
	if err != nil || !slices.Equal(got["001090000001"], []string{"site-a"}) || !slices.Equal(got["079090000002"], []string{"site-a", "site-b"}) {
		t.Errorf("EachCertificateStat = %v, %v", got, err)
	}
}
