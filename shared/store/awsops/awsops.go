// Package awsops keeps the ops records on DynamoDB, in one table: renewal runs
// (renewal.Runs), reprocessing runs and their change journals (reprocess.RunStore), the
// revocation list (revocation.Store), the audit trail (audit.Appender, audit.Reader) and
// the API keys of every role (access_keys.go, with their lifecycle). It is the AWS twin of the embedded
// backend's RenewalRuns, Store (runs), RevocationList, AuditLog and ops key file: a change
// and the audit entry recording it are written in one transaction (TransactWriteItems),
// and at most one renewal run is unfinished at a time.
//
// # Table
//
//	pk S (HASH), sk S (RANGE); BillingMode PAY_PER_REQUEST
//
//	renewal run        pk "RUN#"+id              sk "RUN"          version N, finished BOOL, doc S (JSON)
//	renewal run slice  pk "RUN#"+id              sk "SLICE#"+index (4 digits)   version N, doc S (JSON)
//	unfinished marker  pk "RENEWAL"              sk "UNFINISHED"   run_id S
//	audit entry        pk "AUDIT#"+YYYY-MM-DD (UTC day of At)
//	                   sk At (RFC 3339, fixed width) + "#" + ID     doc S (JSON)
//	audit day          pk "AUDITDAYS"            sk YYYY-MM-DD     (the day has entries)
//	reprocess run      pk "REPROCESS"            sk hex(run ID)    ver N; doc B, or parts N + gen N
//	run state part     pk "RPDOC#"+hex(run ID)   sk gen (16 hex) + "#" + part (3 digits)   d B
//	run journal state  pk "RPSEQ#"+hex(run ID)   sk "SEQ"          alloc N, done N, gaps NS
//	run change         pk "RPCHG#"+hex(run ID)   sk hex(unit ID) + "." + seq (16 hex)      o B
//	revocation         pk "REVOKED"              sk hex(UCI hash)  doc S (JSON of revocation.Entry)
//	revocation count   pk "REVCOUNT"             sk "COUNT"        n N
//	access key         pk "KEY#"+hex(SHA-256)    sk "KEY"          role S, subject S, created_at S, revoked_at S
//	access key list    pk "KEYS"                 sk key ID (12 hex) hash S, role S, subject S, created_at S, revoked_at S
//	old ops key        pk "OPSKEY"               sk hex(SHA-256 of the key)
//	                                             actor S, created_at S, revoked_at S (read as role ops)
//
// Audit entries are spread over one partition per day; the audit days list the days that
// have entries, so a query walks only those (each process writes a day once). IDs are
// At, fixed width, then a per-process increasing sequence and random bits: they sort by
// At, and entries of the same At by the order they were appended in.
//
// Reprocessing run and unit IDs are stored hex-encoded: the keys then sort in the IDs'
// byte order, as the embedded store's do, whatever bytes the IDs hold, and "." (below
// every hex digit) ends a unit ID inside the change key. A run's state is inline up to
// 350,000 bytes and otherwise in parts written with the run item in one transaction
// (state up to 2,800,000 bytes). A SaveRun with changes is made atomic without putting
// thousands of items in one transaction: it allocates a sequence number (alloc), writes
// each change as a new item tagged with it, then commits -- the run item and the journal
// state, one transaction -- by raising done to it (numbers allocated in between and not
// committed go into gaps). A reader sees a change only when its number is committed
// (<= done, not in gaps), and for a unit the committed change of the highest number: a
// save that fails before its commit leaves items nobody sees.
//
// Hot partitions: a renewal run's RUN# partition takes two writes per batch of 100
// certificates of each slice (~20/s at 1,000 renewals/s); REPROCESS takes a write per batch of a run, REVOKED/REVCOUNT one per
// revocation, KEY# a read per API request but one partition per key, AUDITDAYS a write per day and process: all
// far below a partition's 1,000 WCU/s and 3,000 RCU/s.
package awsops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/vaxpass/vaxpass/shared/stage/audit"
	"github.com/vaxpass/vaxpass/shared/stage/renewal"
	"github.com/vaxpass/vaxpass/shared/stage/reprocess"
	"github.com/vaxpass/vaxpass/shared/stage/revocation"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// The ports the store implements.
var (
	_ renewal.Runs       = (*Store)(nil)
	_ reprocess.RunStore = (*Store)(nil)
	_ revocation.Store   = (*Store)(nil)
	_ audit.Appender     = (*Store)(nil)
	_ audit.Reader       = (*Store)(nil)
)

// Key values and attribute names.
const (
	attrPK       = "pk"
	attrSK       = "sk"
	attrVersion  = "version"
	attrFinished = "finished"
	attrDoc      = "doc"
	attrRunID    = "run_id"

	pkRun        = "RUN#"
	skRun        = "RUN"
	pkRenewal    = "RENEWAL"
	skUnfinished = "UNFINISHED"
	pkAudit      = "AUDIT#"
)

// maxNotes keeps a save within TransactWriteItems' 100 items (run, marker, notes).
const maxNotes = 98

// Errors, one per failure class.
var (
	ErrConfig = errors.New("awsops: configuration")
	// ErrCorrupt: a stored item that cannot be read back.
	ErrCorrupt = errors.New("awsops: corrupt item")
)

// API is the part of the DynamoDB client the store uses (*dynamodb.Client implements it).
type API interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, opts ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error)
	TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, opts ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
}

// Store is the ops table. It implements renewal.Runs, reprocess.RunStore,
// revocation.Store, audit.Appender, audit.Reader and api.OpsKeys, and is safe for
// concurrent use.
type Store struct {
	db    API
	table string
	now   func() time.Time

	// auditSeq orders the IDs of entries appended with the same At (see newAuditID).
	auditSeq atomic.Uint64
	// auditDays holds the days this process has written to the audit days (string -> true).
	auditDays sync.Map
	// runMeta caches what the last commit of a run left (hex run ID -> runMeta), so that
	// the next save of the run need not read it first; a stale entry costs a retry.
	runMeta sync.Map
}

// New returns the store over an existing table (schema in the package doc); now stamps
// audit entries that come without a time and ops key revocations (nil: time.Now).
func New(client API, table string, now func() time.Time) (*Store, error) {
	if client == nil || table == "" {
		return nil, fmt.Errorf("%w: a DynamoDB client and the ops table name are required", ErrConfig)
	}
	if now == nil {
		now = time.Now
	}
	return &Store{db: client, table: table, now: now}, nil
}

func s(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }

func key(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrPK: s(pk), attrSK: s(sk)}
}

// UnfinishedRenewalRun implements renewal.Runs.
func (st *Store) UnfinishedRenewalRun(ctx context.Context) (renewal.Run, bool, error) {
	out, err := st.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(st.table), Key: key(pkRenewal, skUnfinished), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return renewal.Run{}, false, fmt.Errorf("awsops: unfinished renewal run: %w", err)
	}
	if out.Item == nil {
		return renewal.Run{}, false, nil
	}
	id, ok := out.Item[attrRunID].(*types.AttributeValueMemberS)
	if !ok || id.Value == "" {
		return renewal.Run{}, false, fmt.Errorf("%w: unfinished marker without run_id", ErrCorrupt)
	}
	run, err := st.RenewalRun(ctx, id.Value)
	if errors.Is(err, vaxpass.ErrNotFound) {
		return renewal.Run{}, false, fmt.Errorf("%w: unfinished renewal run %s is missing", ErrCorrupt, id.Value)
	}
	if err != nil {
		return renewal.Run{}, false, err
	}
	return run, true, nil
}

// RenewalRun reads a run by ID (vaxpass.ErrNotFound if none).
func (st *Store) RenewalRun(ctx context.Context, id string) (renewal.Run, error) {
	var run renewal.Run
	out, err := st.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(st.table), Key: key(pkRun+id, skRun), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return run, fmt.Errorf("awsops: renewal run: %w", err)
	}
	if out.Item == nil {
		return run, fmt.Errorf("awsops: renewal run %s: %w", id, vaxpass.ErrNotFound)
	}
	doc, ok := out.Item[attrDoc].(*types.AttributeValueMemberS)
	if !ok {
		return run, fmt.Errorf("%w: renewal run %s without doc", ErrCorrupt, id)
	}
	if err := json.Unmarshal([]byte(doc.Value), &run); err != nil {
		return run, fmt.Errorf("%w: renewal run %s: %w", ErrCorrupt, id, err)
	}
	return run, nil
}

// SaveRenewalRun implements renewal.Runs: the run at Version+1, conditional on the stored
// version (a new run, Version 0, also on no other run being unfinished), with its notes
// appended to the audit trail, all in one transaction; vaxpass.ErrConflict otherwise.
func (st *Store) SaveRenewalRun(ctx context.Context, run *renewal.Run, notes ...audit.Entry) error {
	if run.ID == "" {
		return fmt.Errorf("awsops: save renewal run: %w: run without ID", vaxpass.ErrInvalid)
	}
	if len(notes) > maxNotes {
		return fmt.Errorf("awsops: save renewal run: %d audit notes, at most %d in one save", len(notes), maxNotes)
	}
	next := *run
	next.Version = run.Version + 1
	doc, err := json.Marshal(next)
	if err != nil {
		return fmt.Errorf("awsops: save renewal run: %w", err)
	}
	finished := !next.FinishedAt.IsZero()
	put := st.versionedPut(pkRun+run.ID, skRun, run.Version, doc)
	put.Item[attrFinished] = &types.AttributeValueMemberBOOL{Value: finished}
	items := []types.TransactWriteItem{{Put: put}}
	marker := key(pkRenewal, skUnfinished)
	switch {
	case run.Version == 0 && !finished:
		m := key(pkRenewal, skUnfinished)
		m[attrRunID] = s(run.ID)
		items = append(items, types.TransactWriteItem{Put: &types.Put{
			TableName: aws.String(st.table), Item: m,
			ConditionExpression: aws.String("attribute_not_exists(#pk)"), ExpressionAttributeNames: map[string]string{"#pk": attrPK},
		}})
	case run.Version == 0:
		items = append(items, types.TransactWriteItem{ConditionCheck: &types.ConditionCheck{
			TableName: aws.String(st.table), Key: marker,
			ConditionExpression: aws.String("attribute_not_exists(#pk)"), ExpressionAttributeNames: map[string]string{"#pk": attrPK},
		}})
	case finished:
		// The marker goes only if it names this run (or is gone already).
		items = append(items, types.TransactWriteItem{Delete: &types.Delete{
			TableName: aws.String(st.table), Key: marker,
			ConditionExpression:       aws.String("attribute_not_exists(#pk) OR #r = :r"),
			ExpressionAttributeNames:  map[string]string{"#pk": attrPK, "#r": attrRunID},
			ExpressionAttributeValues: map[string]types.AttributeValue{":r": s(run.ID)},
		}})
	}
	for i := range notes {
		it, err := st.auditItem(&notes[i])
		if err != nil {
			return fmt.Errorf("awsops: save renewal run: %w", err)
		}
		items = append(items, auditPut(st.table, it))
	}
	if err := st.markAuditDays(ctx, notes...); err != nil {
		return fmt.Errorf("awsops: save renewal run: %w", err)
	}
	_, err = st.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
	if err != nil {
		var canceled *types.TransactionCanceledException
		if errors.As(err, &canceled) {
			for _, r := range canceled.CancellationReasons {
				if aws.ToString(r.Code) == "ConditionalCheckFailed" {
					return fmt.Errorf("awsops: save renewal run %s: %w: changed concurrently, or another run is unfinished", run.ID, vaxpass.ErrConflict)
				}
			}
		}
		return fmt.Errorf("awsops: save renewal run %s: %w", run.ID, err)
	}
	run.Version = next.Version
	return nil
}

// versionedPut is the Put of a versioned document item (pk, sk): doc at version prev+1,
// conditional on the stored item being at prev (0: on none being stored).
func (st *Store) versionedPut(pk, sk string, prev int64, doc []byte) *types.Put {
	item := key(pk, sk)
	item[attrVersion] = &types.AttributeValueMemberN{Value: strconv.FormatInt(prev+1, 10)}
	item[attrDoc] = s(string(doc))
	put := &types.Put{TableName: aws.String(st.table), Item: item}
	if prev == 0 {
		put.ConditionExpression = aws.String("attribute_not_exists(#pk)")
		put.ExpressionAttributeNames = map[string]string{"#pk": attrPK}
	} else {
		put.ConditionExpression = aws.String("#v = :v")
		put.ExpressionAttributeNames = map[string]string{"#v": attrVersion}
		put.ExpressionAttributeValues = map[string]types.AttributeValue{":v": &types.AttributeValueMemberN{Value: strconv.FormatInt(prev, 10)}}
	}
	return put
}

// putItem is a Put outside a transaction: the same item and condition.
func putItem(p *types.Put) *dynamodb.PutItemInput {
	return &dynamodb.PutItemInput{TableName: p.TableName, Item: p.Item, ConditionExpression: p.ConditionExpression,
		ExpressionAttributeNames: p.ExpressionAttributeNames, ExpressionAttributeValues: p.ExpressionAttributeValues}
}

// CreateTable creates the ops table (schema in the package doc) and waits until it is
// active: for tests and for bootstrapping without the SAM template. A table of that name
// with the same keys is taken as created (a rerun, or the SDK retrying a create whose
// answer it lost); one with other keys is an error.
func CreateTable(ctx context.Context, client *dynamodb.Client, table string) error {
	_, err := client.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:   aws.String(table),
		BillingMode: types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String(attrPK), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String(attrSK), AttributeType: types.ScalarAttributeTypeS},
		},
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String(attrPK), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String(attrSK), KeyType: types.KeyTypeRange},
		},
	})
	var inUse *types.ResourceInUseException
	if errors.As(err, &inUse) {
		err = checkTableKeys(ctx, client, table)
	}
	if err != nil {
		return fmt.Errorf("awsops: create table %s: %w", table, err)
	}
	if err := dynamodb.NewTableExistsWaiter(client).Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)}, 2*time.Minute); err != nil {
		return fmt.Errorf("awsops: wait for table %s: %w", table, err)
	}
	return nil
}

// checkTableKeys accepts an existing table whose keys are the ops table's.
func checkTableKeys(ctx context.Context, client *dynamodb.Client, table string) error {
	out, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
	if err != nil {
		return fmt.Errorf("describe the existing table: %w", err)
	}
	kinds := map[string]types.ScalarAttributeType{}
	for _, d := range out.Table.AttributeDefinitions {
		kinds[aws.ToString(d.AttributeName)] = d.AttributeType
	}
	ks := out.Table.KeySchema
	if len(ks) != 2 || aws.ToString(ks[0].AttributeName) != attrPK || ks[0].KeyType != types.KeyTypeHash ||
		aws.ToString(ks[1].AttributeName) != attrSK || ks[1].KeyType != types.KeyTypeRange || kinds[attrPK] != types.ScalarAttributeTypeS || kinds[attrSK] != types.ScalarAttributeTypeS {
		return fmt.Errorf("%w: the table exists with other keys than pk S (HASH), sk S (RANGE)", ErrConfig)
	}
	return nil
}
