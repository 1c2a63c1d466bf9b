package awsops_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/vaxpass/vaxpass/shared/domain/dcc"
	"github.com/vaxpass/vaxpass/shared/domain/uvci"
	"github.com/vaxpass/vaxpass/shared/domain/vaccine"
	"github.com/vaxpass/vaxpass/shared/hc1/hcert"
	"github.com/vaxpass/vaxpass/shared/hc1/trust"
	"github.com/vaxpass/vaxpass/shared/stage/audit"
	"github.com/vaxpass/vaxpass/shared/stage/renewal"
	"github.com/vaxpass/vaxpass/shared/stage/signing"
	"github.com/vaxpass/vaxpass/shared/store/awsddb"
	"github.com/vaxpass/vaxpass/shared/store/awsops"
	"github.com/vaxpass/vaxpass/shared/testkit/awstest"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

var t0 = time.Date(2022, 3, 1, 9, 0, 0, 0, time.UTC)

func open(t *testing.T) (*awsops.Store, *dynamodb.Client) {
	t.Helper()
	client := dynamodb.NewFromConfig(awstest.Config(t))
	name := awstest.UniqueName(t, "ops")
	if err := awsops.CreateTable(context.Background(), client, name); err != nil {
		t.Fatal(err)
	}
	awstest.DeleteTablesAtCleanup(t, client, name)
	st, err := awsops.New(client, name, func() time.Time { return t0 })
	if err != nil {
		t.Fatal(err)
	}
	return st, client
}

// dayEntries reads the audit entries of t's UTC day through audit.Reader.
func dayEntries(t *testing.T, st *awsops.Store, day time.Time) []audit.Entry {
	t.Helper()
	from := day.UTC().Truncate(24 * time.Hour)
	var out []audit.Entry
	err := audit.All(t.Context(), st, audit.Query{From: from, To: from.Add(24 * time.Hour), Limit: 100}, func(e audit.Entry) error {
		out = append(out, e)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func note(run string) audit.Entry {
	return audit.Entry{Actor: "test", Action: audit.ActionRenewal, RunID: run, UVCIs: []string{"URN:UVCI:01:VN:ABC"}}
}

// TestRunsLifecycle: the renewal.Runs contract as the embedded store keeps it.
func TestRunsLifecycle(t *testing.T) {
	st, _ := open(t)
	ctx := context.Background()
	if _, found, err := st.UnfinishedRenewalRun(ctx); found || err != nil {
		t.Fatalf("empty table: found %v, err %v", found, err)
	}
	run := renewal.Run{ID: "run1", Actor: "test", Window: 24 * time.Hour, StartedAt: t0}
	if err := st.SaveRenewalRun(ctx, &run, note("run1")); err != nil {
		t.Fatal(err)
	}
	if run.Version != 1 {
		t.Fatalf("version after the first save = %d, want 1", run.Version)
	}
	got, found, err := st.UnfinishedRenewalRun(ctx)
	if err != nil || !found || got.ID != "run1" || got.Version != 1 || !got.StartedAt.Equal(t0) {
		t.Fatalf("unfinished run = %+v (found %v, err %v)", got, found, err)
	}

	other := renewal.Run{ID: "run2", Actor: "test"}
	if err := st.SaveRenewalRun(ctx, &other); !errors.Is(err, vaxpass.ErrConflict) {
		t.Fatalf("a second run while one is unfinished: %v, want ErrConflict", err)
	}
	stale := run
	stale.Version = 0
	if err := st.SaveRenewalRun(ctx, &stale); !errors.Is(err, vaxpass.ErrConflict) {
		t.Fatalf("saving run1 as new again: %v, want ErrConflict", err)
	}

	run.Counts.Renewed = 5
	run.Cuts = []time.Time{t0.Add(time.Hour)}
	if err := st.SaveRenewalRun(ctx, &run); err != nil {
		t.Fatal(err)
	}
	old := run
	old.Version = 1
	if err := st.SaveRenewalRun(ctx, &old); !errors.Is(err, vaxpass.ErrConflict) {
		t.Fatalf("saving from a stale version: %v, want ErrConflict", err)
	}
	// A failed transaction wrote none of its notes.
	if err := st.SaveRenewalRun(ctx, &old, note("run1"), note("run1")); !errors.Is(err, vaxpass.ErrConflict) {
		t.Fatal(err)
	}

	run.FinishedAt = t0.Add(time.Minute)
	if err := st.SaveRenewalRun(ctx, &run, note("run1")); err != nil {
		t.Fatal(err)
	}
	if _, found, err := st.UnfinishedRenewalRun(ctx); found || err != nil {
		t.Fatalf("after finishing: found %v, err %v", found, err)
	}
	stored, err := st.RenewalRun(ctx, "run1")
	if err != nil || stored.Counts.Renewed != 5 || len(stored.Cuts) != 1 || !stored.Cuts[0].Equal(t0.Add(time.Hour)) || stored.Version != 3 {
		t.Fatalf("stored run = %+v, %v", stored, err)
	}
	if err := st.SaveRenewalRun(ctx, &other); err != nil {
		t.Fatalf("a new run after the first finished: %v", err)
	}
	entries := dayEntries(t, st, t0)
	if len(entries) != 2 {
		t.Fatalf("audit entries = %d, want 2 (the failed save wrote none)", len(entries))
	}
	for _, e := range entries {
		if e.ID == "" || e.RunID != "run1" || !e.At.Equal(t0) {
			t.Errorf("audit entry %+v", e)
		}
	}
	if err := st.Append(ctx, audit.Entry{Actor: "", Action: "x"}); !errors.Is(err, audit.ErrInvalid) {
		t.Errorf("an invalid audit entry: %v, want audit.ErrInvalid", err)
	}
}

// TestRenewalOverDynamoDB runs the renewal use case on the DynamoDB stores: a certificate
// expiring within the window is renewed in place (same UVCI), once, and audited.
func TestRenewalOverDynamoDB(t *testing.T) {
	st, client := open(t)
	ctx := context.Background()
	tables := awsddb.Tables{Doses: awstest.UniqueName(t, "d"), Certificates: awstest.UniqueName(t, "c"), Facilities: awstest.UniqueName(t, "f")}
	if err := awsddb.CreateTables(ctx, client, tables); err != nil {
		t.Fatal(err)
	}
	awstest.DeleteTablesAtCleanup(t, client, tables.Doses, tables.Certificates, tables.Facilities)
	certs, err := awsddb.New(client, tables, awsddb.Options{})
	if err != nil {
		t.Fatal(err)
	}

	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	nb := time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)
	csca, err := trust.CreateCSCA(key, trust.CSCAOptions{NotBefore: nb, NotAfter: nb.AddDate(6, 0, 0)})
	if err != nil {
		t.Fatal(err)
	}
	dsc, err := trust.CreateDSC(&key.PublicKey, csca, key, trust.DSCOptions{NotBefore: nb, NotAfter: nb.AddDate(5, 0, 0)})
	if err != nil {
		t.Fatal(err)
	}
	signer, err := hcert.NewSoftwareSigner(key, trust.KID(dsc.Raw))
	if err != nil {
		t.Fatal(err)
	}
	v, _ := vaccine.Lookup("PFIZER")
	ci, _ := uvci.New(rand.Reader)
	doc, err := dcc.Build(dcc.Person{FullName: "Nguyễn Văn An", DOB: "1990-01-02"}, vaccine.CertifiedDose{Vaccine: v, DoseNumber: 2, SeriesDoses: 2, VaccinatedOn: "2021-08-01"}, ci)
	if err != nil {
		t.Fatal(err)
	}
	hc1, exp, kid, err := (&signing.HC1Sealer{Signer: signer, DSC: dsc}).Seal(ctx, doc, t0)
	if err != nil {
		t.Fatal(err)
	}
	c := vaxpass.Certificate{UVCI: ci, PersonID: "001090012345", HC1: hc1, Status: vaxpass.CertIssued, IssuedAt: t0, ExpiresAt: exp, KID: kid, ContentHash: "h", Version: 1}
	if err := certs.ReplaceCertificate(ctx, c, nil); err != nil {
		t.Fatal(err)
	}

	now := exp.Add(-5 * 24 * time.Hour)
	svc := &renewal.Service{
		Certs: certs, Runs: st, Sealer: &renewal.HC1Resealer{Signer: signer, DSC: dsc},
		Now: func() time.Time { return now }, Rand: rand.Reader,
	}
	sum, err := svc.Run(ctx, "test", 30*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	got, err := certs.ActiveCertificate(ctx, c.PersonID)
	if err != nil {
		t.Fatal(err)
	}
	if got.UVCI != ci || got.HC1 == hc1 || !got.IssuedAt.Equal(now.Truncate(time.Second)) || !got.ExpiresAt.After(exp) {
		t.Fatalf("after renewal: uvci %s iat %s exp %s (summary %+v)", got.UVCI, got.IssuedAt, got.ExpiresAt, sum)
	}
	if _, found, _ := st.UnfinishedRenewalRun(ctx); found {
		t.Errorf("the run is still unfinished")
	}
	again, err := svc.Run(ctx, "test", 30*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	after, _ := certs.ActiveCertificate(ctx, c.PersonID)
	if after.Version != got.Version {
		t.Errorf("a second run renewed again (summary %+v)", again)
	}
	if entries := dayEntries(t, st, now); len(entries) == 0 {
		t.Errorf("no audit entries of the run")
	}
}

// TestRenewalSlices: a run's slices are stored next to it, each conditional on its
// version, with their audit notes in the same transaction, and read back by run.
func TestRenewalSlices(t *testing.T) {
	st, _ := open(t)
	ctx := context.Background()
	if _, err := st.RenewalSlice(ctx, "run1", 0); !errors.Is(err, vaxpass.ErrNotFound) {
		t.Fatalf("unknown slice: %v", err)
	}
	run := renewal.Run{ID: "run1", Actor: "test", Window: 24 * time.Hour, StartedAt: t0}
	if err := st.SaveRenewalRun(ctx, &run); err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{11, 0, 2} {
		sl := renewal.Slice{RunID: "run1", Index: i, UpdatedAt: t0}
		if err := st.SaveRenewalSlice(ctx, &sl); err != nil || sl.Version != 1 {
			t.Fatalf("create slice %d: %v", i, err)
		}
	}
	dup := renewal.Slice{RunID: "run1", Index: 2}
	if err := st.SaveRenewalSlice(ctx, &dup); !errors.Is(err, vaxpass.ErrConflict) {
		t.Fatalf("second create: %v", err)
	}
	sl, err := st.RenewalSlice(ctx, "run1", 2)
	if err != nil || sl.Version != 1 || sl.Index != 2 {
		t.Fatal(sl, err)
	}
	stale := sl
	sl.Cursor, sl.Pending, sl.Counts.Renewed, sl.Done = "c1", []string{"U1"}, 3, true
	if err := st.SaveRenewalSlice(ctx, &sl, note("run1")); err != nil || sl.Version != 2 {
		t.Fatalf("save with a note: %v", err)
	}
	if err := st.SaveRenewalSlice(ctx, &stale); !errors.Is(err, vaxpass.ErrConflict) {
		t.Fatalf("stale save: %v", err)
	}
	if err := st.SaveRenewalSlice(ctx, &stale, note("run1")); !errors.Is(err, vaxpass.ErrConflict) {
		t.Fatalf("stale save with a note: %v", err)
	}
	all, err := st.RenewalSlices(ctx, "run1")
	if err != nil || len(all) != 3 || all[0].Index != 0 || all[1].Index != 2 || all[2].Index != 11 {
		t.Fatalf("slices: %+v %v", all, err)
	}
	if all[1].Cursor != "c1" || all[1].Pending[0] != "U1" || all[1].Counts.Renewed != 3 || !all[1].Done || !all[1].UpdatedAt.Equal(t0) {
		t.Errorf("slice 2 read back: %+v", all[1])
	}
	// The run item is not a slice, and the run is unchanged by its slices' saves.
	if got, err := st.RenewalRun(ctx, "run1"); err != nil || got.Version != 1 {
		t.Errorf("run after slice saves: %+v %v", got, err)
	}
	if n := len(dayEntries(t, st, t0)); n != 1 {
		t.Errorf("audit entries = %d, want 1 (the failed save wrote none)", n)
	}
}
