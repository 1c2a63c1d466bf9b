package matching_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/domain/dose"
	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/stage/matching"
	"github.com/vaxpass/vaxpass/shared/store/embedded"
	"github.com/vaxpass/vaxpass/shared/tool/registry"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

func TestMatchWritesOnceAndRematchesCorrections(t *testing.T) {
	ctx := context.Background()
	db, err := embedded.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	st, err := embedded.OpenStore(db, embedded.StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	reg := registry.NewMemory(1)
	if _, err := reg.Add(match.Person{IDNumber: "001088012345", FullName: "Nguyễn Văn An", DOB: "1988-03-14", Gender: "male"}); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
	svc := &matching.Service{Doses: st, Matcher: &match.Matcher{Registry: reg}, Now: func() time.Time { return now }}

	d := vaxpass.Dose{FacilityID: "site", Record: dose.Record{SourceID: "s1", FullName: "NGUYEN VAN  AN", DOB: "1988",
		Gender: "male", IDNumber: "001 088 012 345", Vaccine: "PFIZER", DoseNumber: 1, VaccinatedOn: "2021-06-01"},
		Match: match.Result{Status: match.Pending}, Version: 1}
	if _, err := st.PutNew(ctx, []vaxpass.Dose{d}); err != nil {
		t.Fatal(err)
	}
	if out, err := svc.MatchDose(ctx, d); err != nil || out != matching.Matched {
		t.Fatalf("first match: %v, %v", out, err)
	}
	got, _ := st.GetDose(ctx, d.Key())
	if got.Match.Status != match.Verified || got.PersonID != "001088012345" || got.Match.Corrected["full_name"] != "Nguyễn Văn An" {
		t.Fatalf("stored %+v person %q", got.Match, got.PersonID)
	}
	// The change event of the matcher's own write (and any re-delivery) writes nothing.
	if out, err := svc.MatchDose(ctx, got); err != nil || out != matching.Unchanged {
		t.Fatalf("own write re-delivered: %v, %v", out, err)
	}
	// An old image delivered after a newer write loses the conditional write.
	if out, err := svc.MatchDose(ctx, d); err != nil || out != matching.Superseded {
		t.Fatalf("stale image: %v, %v", out, err)
	}
	// A correction of the name (a genuinely different one) is matched again.
	got.FullName = "Trần Văn An"
	got.SignedAt = now
	if err := st.UpdateDose(ctx, got); err != nil {
		t.Fatal(err)
	}
	got, _ = st.GetDose(ctx, d.Key())
	if out, err := svc.MatchDose(ctx, got); err != nil || out != matching.Matched {
		t.Fatalf("corrected record: %v, %v", out, err)
	}
	got, _ = st.GetDose(ctx, d.Key())
	if got.Match.Status != match.Mismatch || !slices.Equal(got.Match.Reasons, []string{"NAME"}) || got.PersonID != "" || !got.SignedAt.IsZero() {
		t.Fatalf("after correction %+v person %q signed %v; want MISMATCH/NAME, no person, signature cleared", got.Match, got.PersonID, got.SignedAt)
	}
}

func TestMatchDosesSavesABatchTogether(t *testing.T) {
	ctx := context.Background()
	db, err := embedded.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	st, _ := embedded.OpenStore(db, embedded.StoreOptions{})
	reg := registry.NewMemory(1)
	reg.Add(match.Person{IDNumber: "001088012345", FullName: "Nguyễn Văn An", DOB: "1988-03-14", Gender: "male"})
	svc := &matching.Service{Doses: st, Matcher: &match.Matcher{Registry: reg}, Now: time.Now}
	var ds []vaxpass.Dose
	for _, id := range []string{"001088012345", "", "079088999999"} {
		ds = append(ds, vaxpass.Dose{FacilityID: "site", Record: dose.Record{SourceID: "s" + id, FullName: "Nguyễn Văn An", DOB: "1988-03-14",
			Gender: "male", IDNumber: id, Vaccine: "PFIZER", DoseNumber: 1, VaccinatedOn: "2021-06-01"}, Match: match.Result{Status: match.Pending}, Version: 1})
	}
	if _, err := st.PutNew(ctx, ds); err != nil {
		t.Fatal(err)
	}
	outs, errs := svc.MatchDoses(ctx, ds)
	want := []match.Status{match.Verified, match.NoID, match.NotFound}
	for i := range ds {
		got, _ := st.GetDose(ctx, ds[i].Key())
		if errs[i] != nil || outs[i] != matching.Matched || got.Match.Status != want[i] {
			t.Errorf("dose %d: %v %v stored %s, want %s", i, outs[i], errs[i], got.Match.Status, want[i])
		}
	}
	// The same images again (a re-delivered batch): each loses its conditional write.
	outs, _ = svc.MatchDoses(ctx, ds)
	for i, o := range outs {
		if o != matching.Superseded {
			t.Errorf("re-delivered dose %d: %v", i, o)
		}
	}
}
