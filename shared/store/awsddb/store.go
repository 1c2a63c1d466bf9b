// Package awsddb is the DynamoDB store: the same ports and semantics as the embedded
// store (shared/store/embedded), checked by the same contract suite (shared/testkit/storetest). It
// implements ingest.DoseWriter, matching.MatchWriter, signing.FacilityStore,
// signing.CentralStore, lookup.CertReader, api.Facilities, api.DoseReader and
// api.CertReader, plus the ops and renewal operations of storetest.Store.
//
// # Tables
//
// Three tables, names injected (Tables); schemas on CreateTables.
//
// Doses: one item per dose in the doseitem layout (key and index attributes at the top,
// the dose as JSON in "doc"), so the table's stream (NEW_IMAGE) is read by the
// stream handler with doseitem.FromImage, unchanged. Indexes: by_person (PersonDoses),
// by_status (ListByStatus, worklists) and the sparse sign_pending (SignPendingPersons:
// only verified, unsigned doses carry the attribute).
//
// Certificates: a single table with generic keys pk/sk holding these kinds of items:
//
//	certificate        pk "CERT#"+UVCI (upper case)  sk "CERT"
//	                   uvci, list_shard, status, version (N), person_id, expires_at, doc;
//	                   exp_month, exp_key while issued (sparse index by_expiry)
//	active pointer     pk "PERSON#"+person_id        sk "ACTIVE"
//	                   uvci, version (N), doc: a copy of the person's issued certificate, so
//	                   the citizen lookup is one GetItem; written in the same transaction
//	                   as the certificate item, so the two never differ
//	facility signature pk "PERSON#"+person_id        sk "SIG#"+facility_id
//	                   signed_at, doc
//	shard registry     pk "SHARDS#LIST" / "SHARDS#EXPIRY", sk the shard (see below)
//	dashboard counters pk "STATS#"+NN, and pk "PERSON#"+person_id sk "STATS" (stats.go)
//
// Listing every certificate by UVCI (ListCertificates) reads the index by_uvci, whose
// partition is list_shard, the first 16 characters of the upper-case UVCI ("URN:UVCI:01:VN:"
// and the first random character: ~32 partitions). Truncation keeps order, so reading the
// shards in order, each by uvci, is the UVCI order. Renewal's worklist
// (CertificatesExpiringBefore) reads by_expiry, partitioned by month of expiry and one of
// 16 shards of the UVCI's hash (exp_month "2027-12#a": a month's new certificates write
// to 16 partitions, and a renewal slice reads one; items written before the shards have
// the month alone and are read as a 17th partition of it), sorted by exp_key = expiry
// (fixed-width UTC text) + "#" + UVCI. Which shards exist is kept in the
// shard registry items (written once per shard, before the first certificate in it), so
// listing never guesses a range of months or characters.
//
// Facilities: pk id, "facility#"+ID for the facility and "apikey#"+hex(SHA-256 of the key)
// for the API key index (a copy of the facility, so authentication is one GetItem). Both
// are written in one transaction, conditional on neither existing: IDs and keys are
// unique.
//
// # Semantics and where they differ from the embedded store
//
// Single-item writes are conditional (attribute_not_exists for new items, version = :v
// for updates); ReplaceCertificate, RevokeCertificate, MarkSigned and AddFacility are
// TransactWriteItems, all or nothing. PutNew is not one transaction for the batch
// (BatchWriteItem is not conditional, and a transaction fails whole on the first
// duplicate, which re-sent uploads make common): it runs one transaction per distinct
// dose (the conditional Put and the dashboard's counters), Options.Concurrency at a time;
// created[i] is exact. If a write fails for another reason than a duplicate, PutNew
// returns the error and the doses written before it stay (a retry reports them as
// duplicates); the embedded store writes all or nothing. SaveMatchBatch likewise writes
// per dose (distinct keys in parallel, repeats of a key in order).
//
// Every write that changes what the dashboard counts carries its counter updates in its
// own transaction (stats.go): a new dose, a dose whose status, facility or province
// changes (SaveMatch and UpdateDose then read the stored dose first), certificate writes
// and a facility's first signature for a person. A transaction canceled by a concurrent
// one (TransactionConflict) is rebuilt and retried; only a record's own failed condition
// answers ErrConflict or a duplicate.
//
// The SDK retries a request whose response was lost; a conditional PutItem that had
// succeeded then fails its own condition. The dose writes that are single PutItems (a
// SaveMatch that moves no counter) detect that case (retry.go) and report success, so
// SaveMatch stays exact; transactions are made idempotent by the SDK's
// ClientRequestToken, so a transactional write's retry reports the first outcome.
//
// Reads of one item are strongly consistent. Index queries (ListByStatus, PersonDoses,
// SignPendingPersons, CertificatesExpiringBefore, ListCertificates) are eventually
// consistent on AWS (global secondary indexes); every use tolerates that: a write seen late
// by a worklist is seen by the next run, and every write after such a read is conditional
// on the version read. The emulator answers index queries from the table itself.
//
// Counting (CertificateCounts) scans the index by_uvci: it reads every certificate, an ops
// operation, not a request path. The dashboard reads its counters instead (StatCounters;
// RebuildStats recounts them from the records, for tables written before they existed).
package awsddb

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// API is the part of the DynamoDB client the store uses (*dynamodb.Client implements it).
type API interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, opts ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	Scan(ctx context.Context, in *dynamodb.ScanInput, opts ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
	TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, opts ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
}

// Options configure New.
type Options struct {
	// Concurrency bounds the parallel writes of PutNew and SaveMatchBatch (default 16).
	Concurrency int
	// StatsShards is how many counter items of a country or province row the dashboard's
	// counters spread their writes over (default 32); StatsFacilityShards the same for a
	// facility's row (default 8). Reads sum every shard, so either can change at any time.
	StatsShards, StatsFacilityShards int
}

// Store is the DynamoDB store. It is safe for concurrent use.
type Store struct {
	db          API
	tables      Tables
	concurrency int
	// statsShards, statsFacilityShards: Options.
	statsShards, statsFacilityShards int

	// shards remembers the shard registry entries known to exist (see the package doc).
	shards sync.Map
	// hints: person metrics items read with a person's signatures (stats_hint.go).
	hints statsHints
}

// New returns a store over existing tables (see CreateTables for their schemas).
func New(client API, tables Tables, opt Options) (*Store, error) {
	if client == nil {
		return nil, fmt.Errorf("%w: nil DynamoDB client", ErrConfig)
	}
	if err := tables.check(); err != nil {
		return nil, err
	}
	if opt.Concurrency <= 0 {
		opt.Concurrency = 16
	}
	if opt.StatsShards <= 0 {
		opt.StatsShards = defaultStatsShards
	}
	if opt.StatsFacilityShards <= 0 {
		opt.StatsFacilityShards = defaultStatsFacilityShards
	}
	return &Store{db: client, tables: tables, concurrency: opt.Concurrency,
		statsShards: opt.StatsShards, statsFacilityShards: opt.StatsFacilityShards}, nil
}

// maxKeyPart bounds one identifier used in a key (DynamoDB sort keys are at most 1024
// bytes, partition keys 2048); the embedded store has the same limit.
const maxKeyPart = 1024

// maxTransactItems is DynamoDB's limit of items in one TransactWriteItems.
const maxTransactItems = 100

// checkPart rejects an identifier that cannot be a key part: empty (when required), a NUL
// byte (refused by the embedded store's key layout too: same contract), or too long.
func checkPart(field, v string, required bool) error {
	switch {
	case v == "" && required:
		return fmt.Errorf("%w: %s is empty", vaxpass.ErrInvalid, field)
	case strings.IndexByte(v, 0) >= 0:
		return fmt.Errorf("%w: %s contains a NUL byte", vaxpass.ErrInvalid, field)
	case len(v) > maxKeyPart:
		return fmt.Errorf("%w: %s is %d bytes, more than %d", vaxpass.ErrInvalid, field, len(v), maxKeyPart)
	}
	return nil
}

func checkLimit(limit int) error {
	if limit < 1 {
		return fmt.Errorf("%w: limit %d: must be at least 1", vaxpass.ErrInvalid, limit)
	}
	return nil
}

// ErrCorrupt marks stored data that breaks the store's layout.
var ErrCorrupt = errors.New("awsddb: corrupt stored item")

// Attribute value helpers.

func sAttr(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }

func nAttr(v int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(v, 10)}
}

// str reads a string attribute ("" when absent or of another type).
func str(item map[string]types.AttributeValue, name string) string {
	if v, ok := item[name].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

// num reads a number attribute as int64.
func num(item map[string]types.AttributeValue, name string) (int64, error) {
	v, ok := item[name].(*types.AttributeValueMemberN)
	if !ok {
		return 0, fmt.Errorf("%w: no number attribute %s", ErrCorrupt, name)
	}
	n, err := strconv.ParseInt(v.Value, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: attribute %s: %w", ErrCorrupt, name, err)
	}
	return n, nil
}

// Error classification.

func isConditionFailed(err error) bool {
	var e *types.ConditionalCheckFailedException
	return errors.As(err, &e)
}

// transactConflict reports whether a transaction was canceled by a failed condition or a
// concurrent transaction on one of its items (both: the caller lost a race), and
// describes which item when the reasons say so.
func transactConflict(err error, what []string) (string, bool) {
	var e *types.TransactionCanceledException
	if !errors.As(err, &e) {
		return "", false
	}
	for i, r := range e.CancellationReasons {
		switch aws.ToString(r.Code) {
		case "ConditionalCheckFailed", "TransactionConflict":
			desc := "item " + strconv.Itoa(i)
			if i < len(what) {
				desc = what[i]
			}
			return desc + ": " + aws.ToString(r.Code), true
		}
	}
	return "", false
}

// timeKey renders t as fixed-width UTC text whose byte order is time order (years 0 to
// 9999, nanoseconds).
func timeKey(t time.Time) (string, error) {
	u := t.UTC()
	if u.Year() < 0 || u.Year() > 9999 {
		return "", fmt.Errorf("%w: time %s is outside years 0-9999", vaxpass.ErrInvalid, t)
	}
	return u.Format(timeKeyLayout), nil
}

const timeKeyLayout = "2006-01-02T15:04:05.000000000Z"

// clampTimeKey is timeKey for a query bound: a bound outside the years 0-9999 is moved to
// the nearest end (every stored key lies within).
func clampTimeKey(t time.Time) string {
	u := t.UTC()
	switch {
	case u.Year() < 0:
		return "0000"
	case u.Year() > 9999:
		return "9999-12-31T23:59:59.999999999Z~"
	}
	return u.Format(timeKeyLayout)
}

// forEach runs fn(i) for i in [0, n), at most limit at once; it returns the first error
// (the others still finish: none is abandoned mid-write).
func forEach(ctx context.Context, n, limit int, fn func(ctx context.Context, i int) error) error {
	if limit > n {
		limit = n
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		next     int
	)
	take := func() (int, bool) {
		mu.Lock()
		defer mu.Unlock()
		if next >= n || firstErr != nil {
			return 0, false
		}
		next++
		return next - 1, true
	}
	for range limit {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i, ok := take()
				if !ok {
					return
				}
				if err := fn(ctx, i); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return firstErr
}

// queryAll runs a query page by page, calling each for every item until it returns false.
func (s *Store) queryAll(ctx context.Context, in *dynamodb.QueryInput, each func(item map[string]types.AttributeValue) (bool, error)) error {
	for {
		out, err := s.db.Query(ctx, in)
		if err != nil {
			return err
		}
		for _, item := range out.Items {
			more, err := each(item)
			if err != nil || !more {
				return err
			}
		}
		if len(out.LastEvaluatedKey) == 0 {
			return nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

// scanAll is queryAll for a scan.
func (s *Store) scanAll(ctx context.Context, in *dynamodb.ScanInput, each func(item map[string]types.AttributeValue) error) error {
	for {
		out, err := s.db.Scan(ctx, in)
		if err != nil {
			return err
		}
		for _, item := range out.Items {
			if err := each(item); err != nil {
				return err
			}
		}
		if len(out.LastEvaluatedKey) == 0 {
			return nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

// pageSize is the Limit of one query page when reading up to want items (DynamoDB caps a
// page at 1 MB anyway).
func pageSize(want int) *int32 {
	const most = 1000
	if want > most || want < 1 {
		want = most
	}
	return aws.Int32(int32(want))
}
