// Package awsregistry is the population registry on DynamoDB: what the matcher reads
// (match.Registry: a person by ID number, the people sharing a name key and birth year) and
// the bulk load of a registry extract. It is the AWS twin of the embedded backend's
// registry (shared/store/embedded) and passes the same checks (registry.Check on load).
//
// # Table
//
// One item per person, keyed by the normalised ID number:
//
//	id S (HASH)   full_name S   dob S (YYYY-MM-DD)   gender S   name_key S
//	name_year S   = YYYY "#" name_key, the key of the sparse-free index by_name
//
//	AttributeDefinitions id S, name_year S
//	KeySchema id HASH
//	GSI by_name: name_year HASH, id RANGE   Projection ALL
//	BillingMode PAY_PER_REQUEST
//
// A reload that changes a person's name or date of birth moves them in the index by itself
// (the index key is an attribute of the item), so no stale index entries exist.
package awsregistry

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/tool/registry"
)

// IndexByName is the index of people by birth year and name key.
const IndexByName = "by_name"

// Attribute names.
const (
	attrID       = "id"
	attrFullName = "full_name"
	attrDOB      = "dob"
	attrGender   = "gender"
	attrNameKey  = "name_key"
	attrNameYear = "name_year"
)

// batchSize is BatchWriteItem's limit.
const batchSize = 25

// Errors, one per failure class.
var (
	// ErrConfig: a missing client or table name.
	ErrConfig = errors.New("awsregistry: configuration")
	// ErrItem: a stored item that is not a registry person.
	ErrItem = errors.New("awsregistry: malformed item")
)

// API is the part of the DynamoDB client the registry uses (*dynamodb.Client implements it).
type API interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, opts ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error)
}

// Registry reads and loads the registry table. It implements match.Registry and is safe
// for concurrent use.
type Registry struct {
	db    API
	table string
	// CallTimeout bounds one Lookup or SameName: match.Registry carries no context, and a
	// matcher call must not hang past its Lambda's deadline (default 10s).
	CallTimeout time.Duration
}

// New returns the registry over an existing table (schema in the package doc).
func New(client API, table string) (*Registry, error) {
	if client == nil || table == "" {
		return nil, fmt.Errorf("%w: a DynamoDB client and the registry table name are required", ErrConfig)
	}
	return &Registry{db: client, table: table, CallTimeout: 10 * time.Second}, nil
}

func (r *Registry) callContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), r.CallTimeout)
}

// Lookup implements match.Registry.
func (r *Registry) Lookup(id string) (match.Person, bool, error) {
	if id == "" {
		return match.Person{}, false, nil
	}
	ctx, cancel := r.callContext()
	defer cancel()
	out, err := r.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(r.table),
		Key:       map[string]types.AttributeValue{attrID: &types.AttributeValueMemberS{Value: id}},
	})
	if err != nil {
		return match.Person{}, false, fmt.Errorf("awsregistry: lookup: %w", err)
	}
	if out.Item == nil {
		return match.Person{}, false, nil
	}
	p, err := personFrom(out.Item)
	if err != nil {
		return match.Person{}, false, err
	}
	return p, true, nil
}

// SameName implements match.Registry: one query of the index by_name, paged, in ID order.
func (r *Registry) SameName(nameKey string, birthYear int, visit func(match.Person) bool) error {
	if nameKey == "" || birthYear < 0 || birthYear > 9999 {
		return nil
	}
	ctx, cancel := r.callContext()
	defer cancel()
	in := &dynamodb.QueryInput{
		TableName:                 aws.String(r.table),
		IndexName:                 aws.String(IndexByName),
		KeyConditionExpression:    aws.String("#k = :k"),
		ExpressionAttributeNames:  map[string]string{"#k": attrNameYear},
		ExpressionAttributeValues: map[string]types.AttributeValue{":k": &types.AttributeValueMemberS{Value: nameYear(nameKey, birthYear)}},
	}
	for {
		out, err := r.db.Query(ctx, in)
		if err != nil {
			return fmt.Errorf("awsregistry: same-name query: %w", err)
		}
		for _, item := range out.Items {
			p, err := personFrom(item)
			if err != nil {
				return err
			}
			if !visit(p) {
				return nil
			}
		}
		if len(out.LastEvaluatedKey) == 0 {
			return nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

// Load writes people, each replacing whoever held its ID number before, 25 per
// BatchWriteItem, retrying what DynamoDB leaves unprocessed (throttling) with backoff.
// People not in the input are kept. Each person goes through registry.Check first; an
// invalid one ends the load with an error wrapping registry.ErrPerson (the batches before
// it stay written; loading is idempotent, so fixing the input and loading again is safe).
// Within one batch a repeated ID keeps its last line, as in the embedded registry.
func (r *Registry) Load(ctx context.Context, people iter.Seq[match.Person]) (loaded int, err error) {
	batch := make([]match.Person, 0, batchSize)
	n := 0
	for p := range people {
		n++
		checked, err := registry.Check(p)
		if err != nil {
			return loaded, fmt.Errorf("awsregistry: load: person %d: %w", n, err)
		}
		// BatchWriteItem refuses two writes of one key in a request: the later one wins.
		if i := indexOf(batch, checked.IDNumber); i >= 0 {
			batch[i] = checked
			continue
		}
		batch = append(batch, checked)
		if len(batch) == batchSize {
			if err := r.write(ctx, batch); err != nil {
				return loaded, err
			}
			loaded += len(batch)
			batch = batch[:0]
		}
	}
	if len(batch) > 0 {
		if err := r.write(ctx, batch); err != nil {
			return loaded, err
		}
		loaded += len(batch)
	}
	return loaded, nil
}

func indexOf(batch []match.Person, id string) int {
	for i := range batch {
		if batch[i].IDNumber == id {
			return i
		}
	}
	return -1
}

// maxWriteAttempts bounds the retries of unprocessed items (throttling).
const maxWriteAttempts = 8

func (r *Registry) write(ctx context.Context, batch []match.Person) error {
	reqs := make([]types.WriteRequest, len(batch))
	for i, p := range batch {
		reqs[i] = types.WriteRequest{PutRequest: &types.PutRequest{Item: itemOf(p)}}
	}
	pending := map[string][]types.WriteRequest{r.table: reqs}
	backoff := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		out, err := r.db.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: pending})
		if err != nil {
			return fmt.Errorf("awsregistry: load: write batch: %w", err)
		}
		if len(out.UnprocessedItems[r.table]) == 0 {
			return nil
		}
		if attempt == maxWriteAttempts {
			return fmt.Errorf("awsregistry: load: %d writes still unprocessed after %d attempts (throttled)", len(out.UnprocessedItems[r.table]), attempt)
		}
		pending = out.UnprocessedItems
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

func nameYear(nameKey string, year int) string {
	return fmt.Sprintf("%04d#%s", year, nameKey)
}

func itemOf(p match.Person) map[string]types.AttributeValue {
	year, _ := strconv.Atoi(p.DOB[:4]) // registry.Check guarantees YYYY-MM-DD
	s := func(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
	return map[string]types.AttributeValue{
		attrID: s(p.IDNumber), attrFullName: s(p.FullName), attrDOB: s(p.DOB), attrGender: s(p.Gender),
		attrNameKey: s(p.NameKey), attrNameYear: s(nameYear(p.NameKey, year)),
	}
}

func personFrom(item map[string]types.AttributeValue) (match.Person, error) {
	get := func(name string) (string, error) {
		v, ok := item[name].(*types.AttributeValueMemberS)
		if !ok || v.Value == "" {
			return "", fmt.Errorf("%w: no %q string attribute", ErrItem, name)
		}
		return v.Value, nil
	}
	var p match.Person
	var err error
	for _, f := range []struct {
		name string
		dst  *string
	}{{attrID, &p.IDNumber}, {attrFullName, &p.FullName}, {attrDOB, &p.DOB}, {attrGender, &p.Gender}, {attrNameKey, &p.NameKey}} {
		if *f.dst, err = get(f.name); err != nil {
			return match.Person{}, err
		}
	}
	return p, nil
}

// CreateTable creates the registry table with the schema of the package doc (on-demand
// capacity) and waits until it is active: for tests and for bootstrapping an account
// without the SAM template.
func CreateTable(ctx context.Context, client *dynamodb.Client, table string) error {
	s := func(n string) types.AttributeDefinition {
		return types.AttributeDefinition{AttributeName: aws.String(n), AttributeType: types.ScalarAttributeTypeS}
	}
	_, err := client.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String(table),
		BillingMode:          types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{s(attrID), s(attrNameYear)},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String(attrID), KeyType: types.KeyTypeHash}},
		GlobalSecondaryIndexes: []types.GlobalSecondaryIndex{{
			IndexName: aws.String(IndexByName),
			KeySchema: []types.KeySchemaElement{
				{AttributeName: aws.String(attrNameYear), KeyType: types.KeyTypeHash},
				{AttributeName: aws.String(attrID), KeyType: types.KeyTypeRange},
			},
			Projection: &types.Projection{ProjectionType: types.ProjectionTypeAll},
		}},
	})
	if err != nil {
		return fmt.Errorf("awsregistry: create table %s: %w", table, err)
	}
	if err := dynamodb.NewTableExistsWaiter(client).Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)}, 2*time.Minute); err != nil {
		return fmt.Errorf("awsregistry: wait for table %s: %w", table, err)
	}
	return nil
}
