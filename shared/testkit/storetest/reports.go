package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/stage/report"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// RunReports checks a report.Store: a report is stored once under its reference, read
// back as written, and listed in its facility's and its commune's lists (only there),
// oldest first, page by page.
func RunReports(t *testing.T, open func(t *testing.T) report.Store) {
	ctx := context.Background()
	st := open(t)
	at := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	mk := func(i int, fac, commune string) report.Report {
		return report.Report{
			Reference: fmt.Sprintf("REF%023d", i), IDNumber: "001088012345", FullName: "Nguyễn Thị Lan",
			DOB: "1988-03-15", Gender: "female", FacilityID: fac, CommuneCode: commune, Phone: "0912 345 678",
			Note: "tiêm ở trạm y tế", Status: report.Received, ReceivedAt: at.Add(time.Duration(i) * time.Second),
		}
	}
	if _, err := st.GetReport(ctx, "REF00000000000000000000000"); !errors.Is(err, vaxpass.ErrNotFound) {
		t.Fatalf("unknown reference: %v, want ErrNotFound", err)
	}
	// Stored out of order: lists are by received time, not by the order of writes.
	var want []report.Report
	for _, i := range []int{3, 1, 4, 2, 5} {
		r := mk(i, "site-a", "00001")
		if i == 5 {
			r = mk(i, "site-b", "00002")
		}
		if err := st.PutReport(ctx, r); err != nil {
			t.Fatalf("put report %d: %v", i, err)
		}
	}
	for i := 1; i <= 4; i++ {
		want = append(want, mk(i, "site-a", "00001"))
	}
	dup := mk(1, "site-c", "00003")
	if err := st.PutReport(ctx, dup); !errors.Is(err, vaxpass.ErrConflict) {
		t.Fatalf("a second report under a taken reference: %v, want ErrConflict", err)
	}
	got, err := st.GetReport(ctx, want[0].Reference)
	if err != nil || !reflect.DeepEqual(norm(got), norm(want[0])) {
		t.Fatalf("read back %+v, %v; want %+v", got, err, want[0])
	}
	for _, sc := range []report.Scope{{FacilityID: "site-a"}, {CommuneCode: "00001"}} {
		// Pages of 3 then 1, then an empty one.
		var all []report.Report
		after := ""
		for range 4 {
			page, err := st.ListReports(ctx, sc, after, 3)
			if err != nil {
				t.Fatalf("list %+v after %q: %v", sc, after, err)
			}
			if len(page) == 0 {
				break
			}
			all = append(all, page...)
			after = report.Cursor(page[len(page)-1])
		}
		if len(all) != len(want) {
			t.Fatalf("list %+v: %d reports, want %d", sc, len(all), len(want))
		}
		for i := range want {
			if !reflect.DeepEqual(norm(all[i]), norm(want[i])) {
				t.Errorf("list %+v [%d] = %+v, want %+v", sc, i, all[i], want[i])
			}
		}
	}
	for _, sc := range []report.Scope{{FacilityID: "site-b"}, {CommuneCode: "00002"}} {
		page, err := st.ListReports(ctx, sc, "", 10)
		if err != nil || len(page) != 1 || page[0].Reference != mk(5, "", "").Reference {
			t.Errorf("list %+v = %v, %v; want the one report of site-b", sc, page, err)
		}
	}
	for _, sc := range []report.Scope{{FacilityID: "site-c"}, {CommuneCode: "00003"}, {FacilityID: "site"}, {CommuneCode: "0000"}} {
		if page, err := st.ListReports(ctx, sc, "", 10); err != nil || len(page) != 0 {
			t.Errorf("list %+v = %v, %v; want none", sc, page, err)
		}
	}
	if _, err := st.ListReports(ctx, report.Scope{FacilityID: "site-a", CommuneCode: "00001"}, "", 10); !errors.Is(err, vaxpass.ErrInvalid) {
		t.Errorf("list with two scopes: %v, want ErrInvalid", err)
	}
}

// norm makes times comparable after a round trip through JSON.
func norm(r report.Report) report.Report {
	r.ReceivedAt = r.ReceivedAt.UTC()
	return r
}
