// Package doseitem is the one item layout of a stored dose, shared by every store that
// emits a DynamoDB-stream-shaped change feed (the DynamoDB table itself and the embedded
// backend's feed): key and index attributes at the top level, the whole dose as JSON in
// "doc". The stream handler reads images back with FromImage.
package doseitem

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/aws/aws-lambda-go/events"

	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// Attribute names of the doses table.
const (
	AttrFacility       = "facility_id"     // partition key
	AttrSourceID       = "source_id"       // sort key
	AttrPerson         = "person_id"       // GSI by_person (absent until verified)
	AttrFacilityStatus = "facility_status" // GSI by_status: facility_id + "#" + status
	AttrSignPending    = "sign_pending"    // sparse GSI sign_pending: facility_id while verified and unsigned
	// AttrCommuneStatus and AttrFacilitySource are the keys of the sparse GSI by_commune
	// (a commune clerk's worklists), present only when the record has a commune code:
	// CommuneStatus and FacilitySource.
	AttrCommuneStatus  = "commune_status"
	AttrFacilitySource = "fac_src"
	AttrVersion        = "version"
	AttrDoc            = "doc"
	// AttrNeedsMatch is NeedsMatchValue while the dose waits for the matcher (absent
	// otherwise): the matcher's stream subscription keeps only those images (its
	// FilterCriteria in template.yaml), so its own writes and the signing marks never
	// invoke it.
	AttrNeedsMatch = "needs_match"
)

// NeedsMatchValue is AttrNeedsMatch's value.
const NeedsMatchValue = "1"

// ErrImage reports a stream image that is not a dose item.
var ErrImage = errors.New("not a dose item image")

// FacilityStatus is the by_status index value of a dose.
func FacilityStatus(facilityID string, status match.Status) string {
	return facilityID + "#" + string(status)
}

// CommuneStatus is the by_commune partition value of a dose: commune_code + "#" + status.
// Statuses never contain "#", so the last "#" ends the commune code and two distinct
// (commune, status) pairs never share a value.
func CommuneStatus(commune string, status match.Status) string {
	return commune + "#" + string(status)
}

// FacilitySource is the by_commune sort value of a dose: facility_id + "#" + source_id.
// Facility IDs are [A-Za-z0-9_-], every byte of which sorts after "#", so the byte order of
// these values is the (facility_id, source_id) order: "F#..." sorts before "F1#...".
func FacilitySource(facilityID, sourceID string) string {
	return facilityID + "#" + sourceID
}

// Attributes returns the item's attributes as strings (numbers marked by the caller via
// AttrVersion); the store adapters turn them into their own attribute types.
func Attributes(d *vaxpass.Dose) (map[string]string, error) {
	doc, err := json.Marshal(d)
	if err != nil {
		return nil, fmt.Errorf("encode dose: %w", err)
	}
	a := map[string]string{
		AttrFacility:       d.FacilityID,
		AttrSourceID:       d.SourceID,
		AttrFacilityStatus: FacilityStatus(d.FacilityID, d.Match.Status),
		AttrVersion:        strconv.FormatInt(d.Version, 10),
		AttrDoc:            string(doc),
	}
	if d.PersonID != "" {
		a[AttrPerson] = d.PersonID
	}
	if d.SignPending() {
		a[AttrSignPending] = d.FacilityID
	}
	if d.NeedsMatch() {
		a[AttrNeedsMatch] = NeedsMatchValue
	}
	if d.CommuneCode != "" {
		a[AttrCommuneStatus] = CommuneStatus(d.CommuneCode, d.Match.Status)
		a[AttrFacilitySource] = FacilitySource(d.FacilityID, d.SourceID)
	}
	return a, nil
}

// Image renders a dose as a stream image (events.DynamoDBAttributeValue map).
func Image(d *vaxpass.Dose) (map[string]events.DynamoDBAttributeValue, error) {
	a, err := Attributes(d)
	if err != nil {
		return nil, err
	}
	img := make(map[string]events.DynamoDBAttributeValue, len(a))
	for k, v := range a {
		if k == AttrVersion {
			img[k] = events.NewNumberAttribute(v)
		} else {
			img[k] = events.NewStringAttribute(v)
		}
	}
	return img, nil
}

// Keys renders the key attributes of a dose as a stream image's Keys.
func Keys(d *vaxpass.Dose) map[string]events.DynamoDBAttributeValue {
	return map[string]events.DynamoDBAttributeValue{
		AttrFacility: events.NewStringAttribute(d.FacilityID),
		AttrSourceID: events.NewStringAttribute(d.SourceID),
	}
}

// FromImage reads a dose back from a stream image.
func FromImage(img map[string]events.DynamoDBAttributeValue) (vaxpass.Dose, error) {
	var d vaxpass.Dose
	doc, ok := img[AttrDoc]
	if !ok || doc.DataType() != events.DataTypeString {
		return d, fmt.Errorf("%w: no %q string attribute", ErrImage, AttrDoc)
	}
	if err := FromDoc(doc.String(), &d); err != nil {
		return d, err
	}
	return d, nil
}

// FromDoc decodes the "doc" attribute.
func FromDoc(doc string, d *vaxpass.Dose) error {
	if err := json.Unmarshal([]byte(doc), d); err != nil {
		return fmt.Errorf("%w: %w", ErrImage, err)
	}
	if d.FacilityID == "" || d.SourceID == "" {
		return fmt.Errorf("%w: doc without facility_id or source_id", ErrImage)
	}
	return nil
}
