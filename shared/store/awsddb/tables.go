package awsddb

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/vaxpass/vaxpass/shared/store/doseitem"
)

// Tables names the three tables of the store (injected: the SAM template creates them in
// a real deployment, CreateTables in tests and for `--backend aws` bootstrapping).
type Tables struct {
	Doses        string
	Certificates string
	Facilities   string
}

func (n Tables) check() error {
	if n.Doses == "" || n.Certificates == "" || n.Facilities == "" {
		return fmt.Errorf("%w: every table name is required (doses %q, certificates %q, facilities %q)", ErrConfig, n.Doses, n.Certificates, n.Facilities)
	}
	return nil
}

// Index names.
const (
	IndexByPerson    = "by_person"    // Doses: person_id
	IndexByStatus    = "by_status"    // Doses: facility_status, source_id
	IndexSignPending = "sign_pending" // Doses: sign_pending, person_id (sparse, keys only)
	IndexByCommune   = "by_commune"   // Doses: commune_status, fac_src (sparse: records with a commune code)
	IndexByUVCI      = "by_uvci"      // Certificates: list_shard, uvci (certificate items only)
	IndexByExpiry    = "by_expiry"    // Certificates: exp_month, exp_key (issued certificates only)
)

// Attribute names of the Certificates and Facilities tables (the Doses table's are
// doseitem's).
const (
	attrPK        = "pk"
	attrSK        = "sk"
	attrUVCI      = "uvci"
	attrListShard = "list_shard"
	attrExpMonth  = "exp_month"
	attrExpKey    = "exp_key"
	attrStatus    = "status"
	attrVersion   = "version"
	attrPerson    = "person_id"
	attrExpiresAt = "expires_at"
	attrSignedAt  = "signed_at"
	attrDoc       = "doc"
	attrID        = "id"
	attrKind      = "kind"
)

// ErrConfig reports a store configured wrongly (missing names, a table whose schema is
// not the store's).
var ErrConfig = errors.New("awsddb: configuration")

// CreateTables creates the three tables with the schemas below (on-demand capacity) and
// waits until they are active. A table that exists already is kept when its key schema
// and indexes are the store's, and is an ErrConfig error otherwise.
//
// The schemas, for the SAM template (keep them identical):
//
//	Doses:        AttributeDefinitions facility_id S, source_id S, person_id S,
//	              facility_status S, sign_pending S, commune_status S, fac_src S
//	              KeySchema facility_id HASH, source_id RANGE
//	              GSI by_person:    person_id HASH                          Projection ALL
//	              GSI by_status:    facility_status HASH, source_id RANGE   Projection ALL
//	              GSI sign_pending: sign_pending HASH, person_id RANGE      Projection KEYS_ONLY
//	              GSI by_commune:   commune_status HASH, fac_src RANGE      Projection ALL
//	              StreamSpecification StreamViewType NEW_IMAGE
//	Certificates: AttributeDefinitions pk S, sk S, list_shard S, uvci S, exp_month S, exp_key S
//	              KeySchema pk HASH, sk RANGE
//	              GSI by_uvci:   list_shard HASH, uvci RANGE                Projection ALL
//	              GSI by_expiry: exp_month HASH, exp_key RANGE              Projection ALL
//	Facilities:   AttributeDefinitions id S
//	              KeySchema id HASH
//	BillingMode PAY_PER_REQUEST for all three.
//
// The equivalent template excerpt:
//
//	DosesTable:
//	  Type: AWS::DynamoDB::Table
//	  Properties:
//	    BillingMode: PAY_PER_REQUEST
//	    AttributeDefinitions:
//	      - { AttributeName: facility_id, AttributeType: S }
//	      - { AttributeName: source_id, AttributeType: S }
//	      - { AttributeName: person_id, AttributeType: S }
//	      - { AttributeName: facility_status, AttributeType: S }
//	      - { AttributeName: sign_pending, AttributeType: S }
//	      - { AttributeName: commune_status, AttributeType: S }
//	      - { AttributeName: fac_src, AttributeType: S }
//	    KeySchema:
//	      - { AttributeName: facility_id, KeyType: HASH }
//	      - { AttributeName: source_id, KeyType: RANGE }
//	    GlobalSecondaryIndexes:
//	      - IndexName: by_person
//	        KeySchema: [{ AttributeName: person_id, KeyType: HASH }]
//	        Projection: { ProjectionType: ALL }
//	      - IndexName: by_status
//	        KeySchema: [{ AttributeName: facility_status, KeyType: HASH }, { AttributeName: source_id, KeyType: RANGE }]
//	        Projection: { ProjectionType: ALL }
//	      - IndexName: sign_pending
//	        KeySchema: [{ AttributeName: sign_pending, KeyType: HASH }, { AttributeName: person_id, KeyType: RANGE }]
//	        Projection: { ProjectionType: KEYS_ONLY }
//	      - IndexName: by_commune
//	        KeySchema: [{ AttributeName: commune_status, KeyType: HASH }, { AttributeName: fac_src, KeyType: RANGE }]
//	        Projection: { ProjectionType: ALL }
//	    StreamSpecification: { StreamViewType: NEW_IMAGE }
//	CertificatesTable:
//	  Type: AWS::DynamoDB::Table
//	  Properties:
//	    BillingMode: PAY_PER_REQUEST
//	    AttributeDefinitions:
//	      - { AttributeName: pk, AttributeType: S }
//	      - { AttributeName: sk, AttributeType: S }
//	      - { AttributeName: list_shard, AttributeType: S }
//	      - { AttributeName: uvci, AttributeType: S }
//	      - { AttributeName: exp_month, AttributeType: S }
//	      - { AttributeName: exp_key, AttributeType: S }
//	    KeySchema:
//	      - { AttributeName: pk, KeyType: HASH }
//	      - { AttributeName: sk, KeyType: RANGE }
//	    GlobalSecondaryIndexes:
//	      - IndexName: by_uvci
//	        KeySchema: [{ AttributeName: list_shard, KeyType: HASH }, { AttributeName: uvci, KeyType: RANGE }]
//	        Projection: { ProjectionType: ALL }
//	      - IndexName: by_expiry
//	        KeySchema: [{ AttributeName: exp_month, KeyType: HASH }, { AttributeName: exp_key, KeyType: RANGE }]
//	        Projection: { ProjectionType: ALL }
//	FacilitiesTable:
//	  Type: AWS::DynamoDB::Table
//	  Properties:
//	    BillingMode: PAY_PER_REQUEST
//	    AttributeDefinitions: [{ AttributeName: id, AttributeType: S }]
//	    KeySchema: [{ AttributeName: id, KeyType: HASH }]
func CreateTables(ctx context.Context, client *dynamodb.Client, names Tables) error {
	if err := names.check(); err != nil {
		return err
	}
	for _, in := range tableSchemas(names) {
		if err := createTable(ctx, client, in); err != nil {
			return err
		}
	}
	w := dynamodb.NewTableExistsWaiter(client)
	for _, name := range []string{names.Doses, names.Certificates, names.Facilities} {
		if err := w.Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)}, 5*time.Minute); err != nil {
			return fmt.Errorf("awsddb: wait for table %s: %w", name, err)
		}
	}
	return nil
}

func createTable(ctx context.Context, client *dynamodb.Client, in *dynamodb.CreateTableInput) error {
	_, err := client.CreateTable(ctx, in)
	var inUse *types.ResourceInUseException
	if err == nil || !errors.As(err, &inUse) {
		if err != nil {
			return fmt.Errorf("awsddb: create table %s: %w", aws.ToString(in.TableName), err)
		}
		return nil
	}
	out, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: in.TableName})
	if err != nil {
		return fmt.Errorf("awsddb: describe existing table %s: %w", aws.ToString(in.TableName), err)
	}
	return checkSchema(in, out.Table)
}

// checkSchema compares an existing table's keys and index names with the store's.
func checkSchema(want *dynamodb.CreateTableInput, got *types.TableDescription) error {
	name := aws.ToString(want.TableName)
	if !sameKeys(want.KeySchema, got.KeySchema) {
		return fmt.Errorf("%w: table %s exists with another key schema", ErrConfig, name)
	}
	var have []string
	for _, g := range got.GlobalSecondaryIndexes {
		have = append(have, aws.ToString(g.IndexName))
	}
	for _, g := range want.GlobalSecondaryIndexes {
		i := slices.IndexFunc(got.GlobalSecondaryIndexes, func(d types.GlobalSecondaryIndexDescription) bool {
			return aws.ToString(d.IndexName) == aws.ToString(g.IndexName)
		})
		if i < 0 || !sameKeys(g.KeySchema, got.GlobalSecondaryIndexes[i].KeySchema) {
			return fmt.Errorf("%w: table %s exists without index %s as the store needs it (has %v)", ErrConfig, name, aws.ToString(g.IndexName), have)
		}
	}
	return nil
}

func sameKeys(a, b []types.KeySchemaElement) bool {
	return slices.EqualFunc(a, b, func(x, y types.KeySchemaElement) bool {
		return aws.ToString(x.AttributeName) == aws.ToString(y.AttributeName) && x.KeyType == y.KeyType
	})
}

// tableSchemas are the CreateTable inputs of the three tables (documented on CreateTables).
func tableSchemas(names Tables) []*dynamodb.CreateTableInput {
	s := func(n string) types.AttributeDefinition {
		return types.AttributeDefinition{AttributeName: aws.String(n), AttributeType: types.ScalarAttributeTypeS}
	}
	hash := func(n string) types.KeySchemaElement {
		return types.KeySchemaElement{AttributeName: aws.String(n), KeyType: types.KeyTypeHash}
	}
	rng := func(n string) types.KeySchemaElement {
		return types.KeySchemaElement{AttributeName: aws.String(n), KeyType: types.KeyTypeRange}
	}
	gsi := func(name string, p types.ProjectionType, keys ...types.KeySchemaElement) types.GlobalSecondaryIndex {
		return types.GlobalSecondaryIndex{IndexName: aws.String(name), KeySchema: keys, Projection: &types.Projection{ProjectionType: p}}
	}
	return []*dynamodb.CreateTableInput{
		{
			TableName:   aws.String(names.Doses),
			BillingMode: types.BillingModePayPerRequest,
			AttributeDefinitions: []types.AttributeDefinition{
				s(doseitem.AttrFacility), s(doseitem.AttrSourceID), s(doseitem.AttrPerson),
				s(doseitem.AttrFacilityStatus), s(doseitem.AttrSignPending),
				s(doseitem.AttrCommuneStatus), s(doseitem.AttrFacilitySource),
			},
			KeySchema: []types.KeySchemaElement{hash(doseitem.AttrFacility), rng(doseitem.AttrSourceID)},
			GlobalSecondaryIndexes: []types.GlobalSecondaryIndex{
				gsi(IndexByPerson, types.ProjectionTypeAll, hash(doseitem.AttrPerson)),
				gsi(IndexByStatus, types.ProjectionTypeAll, hash(doseitem.AttrFacilityStatus), rng(doseitem.AttrSourceID)),
				gsi(IndexSignPending, types.ProjectionTypeKeysOnly, hash(doseitem.AttrSignPending), rng(doseitem.AttrPerson)),
				gsi(IndexByCommune, types.ProjectionTypeAll, hash(doseitem.AttrCommuneStatus), rng(doseitem.AttrFacilitySource)),
			},
			StreamSpecification: &types.StreamSpecification{StreamEnabled: aws.Bool(true), StreamViewType: types.StreamViewTypeNewImage},
		},
		{
			TableName:            aws.String(names.Certificates),
			BillingMode:          types.BillingModePayPerRequest,
			AttributeDefinitions: []types.AttributeDefinition{s(attrPK), s(attrSK), s(attrListShard), s(attrUVCI), s(attrExpMonth), s(attrExpKey)},
			KeySchema:            []types.KeySchemaElement{hash(attrPK), rng(attrSK)},
			GlobalSecondaryIndexes: []types.GlobalSecondaryIndex{
				gsi(IndexByUVCI, types.ProjectionTypeAll, hash(attrListShard), rng(attrUVCI)),
				gsi(IndexByExpiry, types.ProjectionTypeAll, hash(attrExpMonth), rng(attrExpKey)),
			},
		},
		{
			TableName:            aws.String(names.Facilities),
			BillingMode:          types.BillingModePayPerRequest,
			AttributeDefinitions: []types.AttributeDefinition{s(attrID)},
			KeySchema:            []types.KeySchemaElement{hash(attrID)},
		},
	}
}
