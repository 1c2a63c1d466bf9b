package awsddb

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// Item keys of the Facilities table (see the package doc).
const (
	idFacility   = "facility#"
	idAPIKey     = "apikey#"
	kindFacility = "facility"
	kindAPIKey   = "apikey"
)

// maxAPIKeyHash bounds the stored hash (SHA-256 is 32 bytes; the key is an identifier).
const maxAPIKeyHash = 64

func facilityItem(id, kind string, doc []byte) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrID: sAttr(id), attrKind: sAttr(kind), attrDoc: sAttr(string(doc))}
}

// AddFacility registers a facility: vaxpass.ErrConflict when its ID, or its API key hash,
// is already registered. The facility and its API key index item are written in one
// transaction.
func (s *Store) AddFacility(ctx context.Context, f vaxpass.Facility) error {
	if err := checkPart("id", f.ID, true); err != nil {
		return fmt.Errorf("awsddb: add facility: %w", err)
	}
	if len(f.APIKeyHash) > maxAPIKeyHash {
		return fmt.Errorf("awsddb: add facility %s: %w: API key hash of %d bytes", f.ID, vaxpass.ErrInvalid, len(f.APIKeyHash))
	}
	doc, err := json.Marshal(f)
	if err != nil {
		return fmt.Errorf("awsddb: add facility %s: %w", f.ID, err)
	}
	cond := func(item map[string]types.AttributeValue) types.TransactWriteItem {
		return types.TransactWriteItem{Put: &types.Put{
			TableName: aws.String(s.tables.Facilities), Item: item,
			ConditionExpression:      aws.String("attribute_not_exists(#id)"),
			ExpressionAttributeNames: map[string]string{"#id": attrID},
		}}
	}
	items := []types.TransactWriteItem{cond(facilityItem(idFacility+f.ID, kindFacility, doc))}
	what := []string{"facility ID already registered"}
	if len(f.APIKeyHash) > 0 {
		items = append(items, cond(facilityItem(idAPIKey+hex.EncodeToString(f.APIKeyHash), kindAPIKey, doc)))
		what = append(what, "API key already registered")
	}
	_, err = s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
	if desc, ok := transactConflict(err, what); ok {
		err = fmt.Errorf("%w: %s", vaxpass.ErrConflict, desc)
	}
	if err != nil {
		return fmt.Errorf("awsddb: add facility %s: %w", f.ID, err)
	}
	return nil
}

// FacilityByKeyHash implements api.Facilities: the facility whose APIKeyHash is hash, or
// vaxpass.ErrNotFound (one GetItem of the key's index item).
func (s *Store) FacilityByKeyHash(ctx context.Context, hash []byte) (vaxpass.Facility, error) {
	if len(hash) == 0 || len(hash) > maxAPIKeyHash {
		return vaxpass.Facility{}, fmt.Errorf("awsddb: facility by API key: %w", vaxpass.ErrNotFound)
	}
	f, err := s.getFacility(ctx, idAPIKey+hex.EncodeToString(hash))
	if err != nil {
		return vaxpass.Facility{}, fmt.Errorf("awsddb: facility by API key: %w", err)
	}
	return f, nil
}

// GetFacility returns the facility with ID id, or vaxpass.ErrNotFound.
func (s *Store) GetFacility(ctx context.Context, id string) (vaxpass.Facility, error) {
	if id == "" || checkPart("id", id, true) != nil {
		return vaxpass.Facility{}, fmt.Errorf("awsddb: get facility %s: %w", id, vaxpass.ErrNotFound)
	}
	f, err := s.getFacility(ctx, idFacility+id)
	if err != nil {
		return vaxpass.Facility{}, fmt.Errorf("awsddb: get facility %s: %w", id, err)
	}
	return f, nil
}

func (s *Store) getFacility(ctx context.Context, id string) (vaxpass.Facility, error) {
	var f vaxpass.Facility
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(s.tables.Facilities), Key: map[string]types.AttributeValue{attrID: sAttr(id)},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return f, err
	}
	if len(out.Item) == 0 {
		return f, vaxpass.ErrNotFound
	}
	if err := json.Unmarshal([]byte(str(out.Item, attrDoc)), &f); err != nil {
		return f, fmt.Errorf("%w: facility: %w", ErrCorrupt, err)
	}
	return f, nil
}

// ListFacilities returns every facility in ID order (a scan: facilities number in the
// thousands).
func (s *Store) ListFacilities(ctx context.Context) ([]vaxpass.Facility, error) {
	out := []vaxpass.Facility{}
	err := s.scanAll(ctx, &dynamodb.ScanInput{
		TableName:                 aws.String(s.tables.Facilities),
		FilterExpression:          aws.String("#k = :k"),
		ExpressionAttributeNames:  map[string]string{"#k": attrKind},
		ExpressionAttributeValues: map[string]types.AttributeValue{":k": sAttr(kindFacility)},
		ConsistentRead:            aws.Bool(true),
	}, func(item map[string]types.AttributeValue) error {
		if !strings.HasPrefix(str(item, attrID), idFacility) {
			return fmt.Errorf("%w: facility item %q", ErrCorrupt, str(item, attrID))
		}
		var f vaxpass.Facility
		if err := json.Unmarshal([]byte(str(item, attrDoc)), &f); err != nil {
			return fmt.Errorf("%w: facility: %w", ErrCorrupt, err)
		}
		out = append(out, f)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("awsddb: list facilities: %w", err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}
