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
