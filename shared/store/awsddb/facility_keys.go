package awsddb

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// maxFacilityDoc keeps a facility's document well under DynamoDB's 400 KB item limit:
// each former key adds about 200 bytes, so thousands of rotations fit.
const maxFacilityDoc = 256 << 10

// UpdateFacilityKey stores f's signing key fields (KeyID, PublicKey, FormerKeys) in the
// facility's record, the other fields left as stored, conditional on the stored KeyID
// still being prevKeyID: vaxpass.ErrConflict when another rotation came first,
// vaxpass.ErrNotFound for an unknown facility. The record and its API key index item
// (which carries a copy of the document) are written in one transaction, each
// conditional on the document read, so a concurrent change of either is a conflict.
func (s *Store) UpdateFacilityKey(ctx context.Context, f vaxpass.Facility, prevKeyID string) error {
	if f.ID == "" || checkPart("id", f.ID, true) != nil {
		return fmt.Errorf("awsddb: update key of facility %s: %w", f.ID, vaxpass.ErrNotFound)
	}
	id := idFacility + f.ID
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(s.tables.Facilities), Key: map[string]types.AttributeValue{attrID: sAttr(id)},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return fmt.Errorf("awsddb: update key of facility %s: %w", f.ID, err)
	}
	if len(out.Item) == 0 {
		return fmt.Errorf("awsddb: update key of facility %s: %w", f.ID, vaxpass.ErrNotFound)
	}
	oldDoc := str(out.Item, attrDoc)
	var cur vaxpass.Facility
	if err := json.Unmarshal([]byte(oldDoc), &cur); err != nil {
		return fmt.Errorf("awsddb: update key of facility %s: %w: %w", f.ID, ErrCorrupt, err)
	}
	if cur.KeyID != prevKeyID {
		return fmt.Errorf("awsddb: update key of facility %s: %w: the facility's signing key changed meanwhile", f.ID, vaxpass.ErrConflict)
	}
	cur.KeyID, cur.PublicKey, cur.FormerKeys = f.KeyID, f.PublicKey, f.FormerKeys
	doc, err := json.Marshal(cur)
	if err != nil {
		return fmt.Errorf("awsddb: update key of facility %s: %w", f.ID, err)
	}
	if len(doc) > maxFacilityDoc {
		return fmt.Errorf("awsddb: update key of facility %s: %w: record of %d bytes (too many former keys)", f.ID, vaxpass.ErrInvalid, len(doc))
	}
	items := []types.TransactWriteItem{{Put: &types.Put{
		TableName: aws.String(s.tables.Facilities), Item: facilityItem(id, kindFacility, doc),
		ConditionExpression:       aws.String("#doc = :old"),
		ExpressionAttributeNames:  map[string]string{"#doc": attrDoc},
		ExpressionAttributeValues: map[string]types.AttributeValue{":old": sAttr(oldDoc)},
	}}}
	what := []string{"the facility's record changed meanwhile"}
	if len(cur.APIKeyHash) > 0 {
		items = append(items, types.TransactWriteItem{Put: &types.Put{
			TableName: aws.String(s.tables.Facilities), Item: facilityItem(idAPIKey+hex.EncodeToString(cur.APIKeyHash), kindAPIKey, doc),
			ConditionExpression:      aws.String("attribute_exists(#id)"),
			ExpressionAttributeNames: map[string]string{"#id": attrID},
		}})
		what = append(what, "the facility's API key index item is missing")
	}
	_, err = s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
	if desc, ok := transactConflict(err, what); ok {
		err = fmt.Errorf("%w: %s", vaxpass.ErrConflict, desc)
	}
	if err != nil {
		return fmt.Errorf("awsddb: update key of facility %s: %w", f.ID, err)
	}
	return nil
}
