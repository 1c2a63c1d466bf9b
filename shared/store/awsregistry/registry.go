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
//
// # Loading
//
// An item is about 130 bytes (ItemSize; a 200-character name with diacritics passes 1 KiB),
// so a person costs 2 write units (WriteUnits): 1 in the table, 1 in by_name. Put writes
// one batch of 25 and waits out throttling, so several writers can share a table that is
// still scaling up; the national load (100 million people) is the operator's parallel,
// resumable load over Put (shared/wire/cloud/admin, `vaxpass registry load --backend aws`);
// it writes into this live table rather than through S3 and ImportTable, which can only
// create a new table (the reasons are in shared/wire/cloud/admin/registry.go).
package awsregistry

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

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

// BatchSize is BatchWriteItem's limit: the most people Put takes.
const BatchSize = 25

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
// BatchWriteItem (see Put), one batch after the other. People not in the input are kept.
// Each person goes through registry.Check first; an invalid one ends the load with an
// error wrapping registry.ErrPerson (the batches before it stay written; loading is
// idempotent, so fixing the input and loading again is safe). Within one batch a repeated
// ID keeps its last line, as in the embedded registry. A national extract goes through
// the operator's parallel, resumable load instead (shared/wire/cloud/admin), which calls
// Put from several writers.
func (r *Registry) Load(ctx context.Context, people iter.Seq[match.Person]) (loaded int, err error) {
	batch := make([]match.Person, 0, BatchSize)
	n := 0
	for p := range people {
		n++
		checked, err := registry.Check(p)
		if err != nil {
			return loaded, fmt.Errorf("awsregistry: load: person %d: %w", n, err)
		}
		if i := indexOf(batch, checked.IDNumber); i >= 0 {
			batch[i] = checked // the later line wins, and takes no place of its own
			continue
		}
		batch = append(batch, checked)
		if len(batch) == BatchSize {
			if _, err := r.put(ctx, batch); err != nil {
				return loaded, err
			}
			loaded += len(batch)
			batch = batch[:0]
		}
	}
	if len(batch) > 0 {
		if _, err := r.put(ctx, batch); err != nil {
			return loaded, err
		}
		loaded += len(batch)
	}
	return loaded, nil
}

// Put writes at most BatchSize people with one BatchWriteItem, each replacing whoever held
// its ID number. Each goes through registry.Check first (an invalid one fails the batch,
// wrapping registry.ErrPerson, before anything is written). A repeated ID keeps its later
// person: BatchWriteItem refuses two writes of one key.
//
// Throttling is waited out, not failed: what DynamoDB leaves unprocessed, and a request it
// refuses as throttled (or the SDK's retry quota, drained by many throttled writers), is
// sent again after a backoff (exponential, full jitter, at most MaxBackoff) for as long as
// the table accepts some write within MaxStall; the SDK has already retried transient
// failures. retries counts the extra requests. A put is idempotent, so a request retried
// after a lost response is harmless.
func (r *Registry) Put(ctx context.Context, people []match.Person) (retries int, err error) {
	if len(people) > BatchSize {
		return 0, fmt.Errorf("awsregistry: put: %d people, at most %d per batch", len(people), BatchSize)
	}
	checked := make([]match.Person, len(people))
	for i, p := range people {
		if checked[i], err = registry.Check(p); err != nil {
			return 0, fmt.Errorf("awsregistry: put: person %d of the batch: %w", i+1, err)
		}
	}
	return r.put(ctx, checked)
}

func indexOf(batch []match.Person, id string) int {
	for i := range batch {
		if batch[i].IDNumber == id {
			return i
		}
	}
	return -1
}

// Retry bounds of Put; variables so that tests can shorten them.
var (
	// MaxStall is how long Put waits out throttling without a single write accepted before
	// it fails.
	MaxStall = 2 * time.Minute
	// MaxBackoff caps the wait between two attempts.
	MaxBackoff   = 5 * time.Second
	firstBackoff = 50 * time.Millisecond
)

// put writes checked people (at most BatchSize).
func (r *Registry) put(ctx context.Context, batch []match.Person) (retries int, err error) {
	reqs := make([]types.WriteRequest, 0, len(batch))
	ids := make([]match.Person, 0, len(batch))
	for _, p := range batch {
		// BatchWriteItem refuses two writes of one key in a request: the later one wins.
		if i := indexOf(ids, p.IDNumber); i >= 0 {
			reqs[i] = types.WriteRequest{PutRequest: &types.PutRequest{Item: itemOf(p)}}
			continue
		}
		ids = append(ids, p)
		reqs = append(reqs, types.WriteRequest{PutRequest: &types.PutRequest{Item: itemOf(p)}})
	}
	pending := map[string][]types.WriteRequest{r.table: reqs}
	left := len(reqs)
	backoff := firstBackoff
	progressAt := time.Now()
	for attempt := 1; ; attempt++ {
		out, err := r.db.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: pending})
		switch {
		case err != nil && !throttled(err):
			return retries, fmt.Errorf("awsregistry: write batch: %w", err)
		case err == nil:
			unprocessed := len(out.UnprocessedItems[r.table])
			if unprocessed == 0 {
				return retries, nil
			}
			if unprocessed < left {
				left, progressAt = unprocessed, time.Now()
			}
			pending = out.UnprocessedItems
		}
		if stalled := time.Since(progressAt); stalled >= MaxStall {
			cause := "unprocessed"
			if err != nil {
				cause = err.Error()
			}
			return retries, fmt.Errorf("awsregistry: write batch: %d of %d writes refused for %s (throttled: %s)", left, len(reqs), stalled.Round(time.Second), cause)
		}
		retries++
		// Full jitter: writers throttled together do not come back together.
		select {
		case <-ctx.Done():
			return retries, ctx.Err()
		case <-time.After(rand.N(backoff) + time.Millisecond):
		}
		backoff = min(2*backoff, MaxBackoff)
	}
}

// throttled reports a refusal for capacity: the table's (or an index's) throughput, the
// account's request rate, or the SDK's own retry quota drained by throttled calls.
func throttled(err error) bool {
	var quota *ratelimit.QuotaExceededError
	if errors.As(err, &quota) {
		return true
	}
	var api smithy.APIError
	if errors.As(err, &api) {
		switch api.ErrorCode() {
		case "ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded":
			return true
		}
	}
	return false
}

// ItemSize is the size DynamoDB bills for a checked person's item: the UTF-8 lengths of
// its attribute names and string values.
func ItemSize(p match.Person) int {
	n := 0
	for name, v := range itemOf(p) {
		n += len(name) + len(v.(*types.AttributeValueMemberS).Value)
	}
	return n
}

// WriteUnits is what writing a checked person costs: one write unit per started KiB of
// the item, in the table and again in the by_name index (it projects the whole item).
func WriteUnits(p match.Person) int {
	return 2 * ((ItemSize(p) + 1023) / 1024)
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
