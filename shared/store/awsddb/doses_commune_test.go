package awsddb_test

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/vaxpass/vaxpass/shared/domain/dose"
	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/store/awsddb"
	"github.com/vaxpass/vaxpass/shared/store/doseitem"
	"github.com/vaxpass/vaxpass/shared/testkit/awstest"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// Items written before the by_commune index existed get its attributes from
// BackfillCommuneIndex; a second run finds nothing to do.
func TestBackfillCommuneIndex(t *testing.T) {
	ctx := t.Context()
	client := dynamodb.NewFromConfig(awstest.Config(t))
	s, names := openStore(t, client, awsddb.Options{})
	at := time.Date(2021, 9, 1, 8, 0, 0, 0, time.UTC)
	var ds []vaxpass.Dose
	for i, src := range []string{"a", "b", "c", "d", "e", "f", "g"} {
		d := vaxpass.Dose{FacilityID: []string{"f1", "f2"}[i%2], Record: dose.Record{SourceID: src, FullName: "Phạm Thị Hoa",
			DOB: "1985-03-04", Gender: dose.Female, Vaccine: "PFIZER", DoseNumber: 1, VaccinatedOn: "2021-07-01"},
			Match: match.Result{Status: match.Pending, Reasons: []string{}}, ReceivedAt: at, UpdatedAt: at, Version: 1}
		if i != 3 {
			d.CommuneCode = "00001"
		}
		ds = append(ds, d)
	}
	if _, err := s.PutNew(ctx, ds); err != nil {
		t.Fatal(err)
	}
	// As an older version wrote them: without the index attributes.
	out, err := client.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(names.Doses)})
	if err != nil {
		t.Fatal(err)
	}
	for _, item := range out.Items {
		delete(item, doseitem.AttrCommuneStatus)
		delete(item, doseitem.AttrFacilitySource)
		if _, err := client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(names.Doses), Item: item}); err != nil {
			t.Fatal(err)
		}
	}
	list := func() []vaxpass.DoseKey {
		t.Helper()
		got, err := s.ListByCommune(ctx, "00001", match.Pending, vaxpass.DoseKey{}, 100)
		if err != nil {
			t.Fatal(err)
		}
		var keys []vaxpass.DoseKey
		for _, d := range got {
			keys = append(keys, d.Key())
		}
		return keys
	}
	if got := list(); len(got) != 0 {
		t.Fatalf("listed before the backfill: %v", got)
	}
	n, err := s.BackfillCommuneIndex(ctx)
	if err != nil || n != 6 {
		t.Fatalf("BackfillCommuneIndex = %d, %v; want 6", n, err)
	}
	got := list()
	want := []vaxpass.DoseKey{{FacilityID: "f1", SourceID: "a"}, {FacilityID: "f1", SourceID: "c"}, {FacilityID: "f1", SourceID: "e"},
		{FacilityID: "f1", SourceID: "g"}, {FacilityID: "f2", SourceID: "b"}, {FacilityID: "f2", SourceID: "f"}}
	if len(got) != len(want) {
		t.Fatalf("after the backfill: %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("after the backfill: %v, want %v", got, want)
		}
	}
	// The doses are unchanged (same version: a writer holding one still succeeds).
	d, err := s.GetDose(ctx, ds[0].Key())
	if err != nil || d.Version != 1 {
		t.Fatalf("GetDose after the backfill = version %d, %v", d.Version, err)
	}
	if n, err := s.BackfillCommuneIndex(ctx); err != nil || n != 0 {
		t.Fatalf("second BackfillCommuneIndex = %d, %v; want 0", n, err)
	}
}
