package doseitem_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/vaxpass/vaxpass/shared/domain/dose"
	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/store/doseitem"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

func TestImageRoundTripThroughStreamJSON(t *testing.T) {
	d := vaxpass.Dose{FacilityID: "site", Record: dose.Record{SourceID: "s1", FullName: "Nguyễn Văn An", DOB: "1988", Gender: "male",
		IDNumber: "001088012345", Vaccine: "PFIZER", DoseNumber: 1, VaccinatedOn: "2021-06-01"},
		Match: match.Result{Status: match.Verified, Reasons: []string{}}, PersonID: "001088012345",
		UpdatedAt: time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC), Version: 3}
	d.MatchedDetails = vaxpass.DetailsHash(&d.Record)
	img, err := doseitem.Image(&d)
	if err != nil {
		t.Fatal(err)
	}
	// Through the JSON a Lambda receives.
	b, _ := json.Marshal(img)
	var back map[string]events.DynamoDBAttributeValue
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	got, err := doseitem.FromImage(back)
	if err != nil || got.FullName != d.FullName || got.Version != 3 || got.PersonID != d.PersonID {
		t.Fatalf("FromImage = %+v, %v", got, err)
	}
	if back[doseitem.AttrSignPending].String() != "site" || back[doseitem.AttrFacilityStatus].String() != "site#VERIFIED" || back[doseitem.AttrVersion].Number() != "3" {
		t.Fatalf("index attributes wrong: %s", b)
	}
	d.SignedAt = d.UpdatedAt
	img, _ = doseitem.Image(&d)
	if _, ok := img[doseitem.AttrSignPending]; ok {
		t.Fatal("signed dose still in the sparse sign_pending index")
	}
}

func TestFromImageRejectsOtherItems(t *testing.T) {
	for _, img := range []map[string]events.DynamoDBAttributeValue{
		{},
		{"doc": events.NewNumberAttribute("1")},
		{"doc": events.NewStringAttribute(`{"facility_id":"x"}`)},
		{"doc": events.NewStringAttribute(`[`)},
	} {
		if _, err := doseitem.FromImage(img); !errors.Is(err, doseitem.ErrImage) {
			t.Errorf("FromImage(%v) = %v", img, err)
		}
	}
}

func TestCommuneAttributes(t *testing.T) {
	d := vaxpass.Dose{FacilityID: "F-1", Record: dose.Record{SourceID: "s#1", CommuneCode: "00001"},
		Match: match.Result{Status: match.Mismatch}}
	a, err := doseitem.Attributes(&d)
	if err != nil {
		t.Fatal(err)
	}
	if a[doseitem.AttrCommuneStatus] != "00001#MISMATCH" || a[doseitem.AttrFacilitySource] != "F-1#s#1" {
		t.Fatalf("commune attributes = %q, %q", a[doseitem.AttrCommuneStatus], a[doseitem.AttrFacilitySource])
	}
	d.CommuneCode = ""
	a, _ = doseitem.Attributes(&d)
	if _, ok := a[doseitem.AttrCommuneStatus]; ok {
		t.Fatal("dose without a commune in the sparse by_commune index")
	}
	if _, ok := a[doseitem.AttrFacilitySource]; ok {
		t.Fatal("dose without a commune carries fac_src")
	}
	// The sort value's byte order is the (facility_id, source_id) order for facility IDs
	// of [A-Za-z0-9_-], one a prefix of the other included.
	keys := [][2]string{{"F", "z"}, {"F-", "a"}, {"F0", "a"}, {"FA", " "}, {"F_", "a"}, {"Fa", "a"}}
	for i := 1; i < len(keys); i++ {
		a, b := doseitem.FacilitySource(keys[i-1][0], keys[i-1][1]), doseitem.FacilitySource(keys[i][0], keys[i][1])
		if a >= b {
			t.Errorf("%q sorts at or after %q", a, b)
		}
	}
}
