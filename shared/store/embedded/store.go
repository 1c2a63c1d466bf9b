package embedded

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aws/aws-lambda-go/events"
	bolt "go.etcd.io/bbolt"

	"github.com/vaxpass/vaxpass/shared/store/embedded/feed"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// Store is the embedded backend's dose, certificate and facility store, in the same bbolt
// file as the registry. Every write of a dose appends its change (a DynamoDB-stream-shaped
// INSERT or MODIFY event, see shared/store/doseitem) to the doses change feed in the same
// transaction, so a write and its event commit together. It is safe for concurrent use;
// bbolt runs one write transaction at a time, which is what makes the conditional writes
// (idempotent puts, version checks) atomic.
//
// It implements ingest.DoseWriter, matching.MatchWriter, signing.FacilityStore,
// signing.CentralStore, lookup.CertReader, api.Facilities, api.DoseReader and
// api.CertReader, and passes the contract suite shared/testkit/storetest.
type Store struct {
	db   *DB
	feed *feed.Feed
	// batchWriters counts storeBatch writes in flight.
	batchWriters atomic.Int64
}

// StoreOptions configure OpenStore.
type StoreOptions struct {
	// DoseTable is the table name the doses change feed shows in its stream ARN
	// (default DefaultDoseTable).
	DoseTable string
	// Now is the clock of change events; nil means time.Now.
	Now func() time.Time
}

// DoseStreamViewType is the doses change feed's view type, as the doses table's stream in
// template.yaml: the matcher reads new images only, so old ones are not written.
const DoseStreamViewType = events.DynamoDBStreamViewTypeNewImage

// DoseFeedName is the name of the doses change feed inside the database file.
const DoseFeedName = "doses"

// DefaultDoseTable is the doses table name the change events carry by default.
const DefaultDoseTable = "Doses"

// Buckets of the store. Keys joining several parts separate them with a NUL byte, which
// no key part may contain (checked on write); the last part of a key may contain anything.
var (
	// storeBucketDoses: facility 0 source_id -> JSON of vaxpass.Dose (the doseitem "doc").
	storeBucketDoses = []byte("doses")
	// storeBucketDoseStatus: facility 0 status 0 source_id -> empty (ListByStatus).
	storeBucketDoseStatus = []byte("doses_by_status")
	// storeBucketDosePerson: person 0 facility 0 source_id -> empty (PersonDoses).
	storeBucketDosePerson = []byte("doses_by_person")
	// storeBucketDoseSignPending: facility 0 person 0 source_id -> empty, while the dose
	// is SignPending and has a person (SignPendingPersons).
	storeBucketDoseSignPending = []byte("doses_sign_pending")
	// storeBucketDoseCommune: commune 0 status 0 facility 0 source_id -> empty, while the
	// record has a commune code (ListByCommune; built once for older databases, see
	// storeCommuneBackfill).
	storeBucketDoseCommune = []byte("doses_by_commune")

	// storeBucketFacilities: facility ID -> JSON of vaxpass.Facility.
	storeBucketFacilities = []byte("facilities")
	// storeBucketFacilityKeys: API key hash -> facility ID.
	storeBucketFacilityKeys = []byte("facilities_by_key")

	// storeBucketCerts: upper-case UVCI -> JSON of vaxpass.Certificate.
	storeBucketCerts = []byte("certs")
	// storeBucketCertActive: person -> upper-case UVCI of their certificate in status issued.
	storeBucketCertActive = []byte("certs_active")
	// storeBucketCertExpiry: expiry (8 bytes, see storeTimeKey) | upper-case UVCI -> empty,
	// for every certificate in status issued (the renewal job's worklist).
	storeBucketCertExpiry = []byte("certs_by_expiry")
	// storeBucketFacilitySigs: person 0 facility -> JSON of vaxpass.FacilitySignature.
	storeBucketFacilitySigs = []byte("facility_signatures")
	// storeBucketMeta: counters of the store (certificates by stored status).
	storeBucketMeta = []byte("store_meta")

	storeBuckets = [][]byte{
		storeBucketDoses, storeBucketDoseStatus, storeBucketDosePerson, storeBucketDoseSignPending, storeBucketDoseCommune,
		storeBucketFacilities, storeBucketFacilityKeys,
		storeBucketCerts, storeBucketCertActive, storeBucketCertExpiry, storeBucketFacilitySigs,
		storeBucketMeta,
	}
)

// storeMaxKeyPart bounds one part of a key; bbolt keys are at most 32 KB and ours are
// identifiers.
const storeMaxKeyPart = 1024

// OpenStore opens the store in db: it creates its buckets and opens the doses change feed
// (DoseFeed) when they do not exist yet.
func OpenStore(db *DB, opt StoreOptions) (*Store, error) {
	table := opt.DoseTable
	if table == "" {
		table = DefaultDoseTable
	}
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		for _, name := range storeBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("bucket %s: %w", name, err)
			}
		}
		return storeCommuneStart(tx)
	})
	if err == nil {
		err = storeCommuneBackfill(db.bolt)
	}
	if err != nil {
		return nil, fmt.Errorf("embedded: open store: %w", classify(err))
	}
	f, err := feed.Open(db.bolt, DoseFeedName, feed.Config{Table: table, Now: opt.Now, ViewType: DoseStreamViewType})
	if err != nil {
		return nil, fmt.Errorf("embedded: open store: %w", err)
	}
	return &Store{db: db, feed: f}, nil
}

// DoseFeed is the doses change feed: a feed.Pump on it drives the stream handler (the
// matcher) as DynamoDB Streams would.
func (s *Store) DoseFeed() *feed.Feed { return s.feed }

// ChangeEvents returns every retained event of the doses change feed, oldest first, as
// Lambda would deliver them (events consumed by every registered pump are trimmed). The
// contract suite reads it to check the events each write emits.
func (s *Store) ChangeEvents(ctx context.Context) ([]events.DynamoDBEventRecord, error) {
	var out []events.DynamoDBEventRecord
	after := uint64(0)
	for {
		batch, err := s.feed.Read(ctx, after, feed.MaxBatchSize)
		if err != nil {
			return nil, fmt.Errorf("embedded: change events: %w", err)
		}
		out = append(out, batch...)
		if len(batch) < feed.MaxBatchSize {
			return out, nil
		}
		if after, err = feed.ParseSequenceNumber(batch[len(batch)-1].Change.SequenceNumber); err != nil {
			return nil, fmt.Errorf("embedded: change events: %w", err)
		}
	}
}

// storeUpdate runs fn in a write transaction after checking ctx.
func (s *Store) storeUpdate(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return tellUnavailable(ctx, unavailable(s.db.bolt.Update(fn)))
}

// unavailable marks the errors of a disk that cannot take writes now as
// vaxpass.ErrUnavailable: the transaction was rolled back, and the edge answers 503.
func unavailable(err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) || errors.Is(err, syscall.EROFS) {
		return fmt.Errorf("%w: %w", vaxpass.ErrUnavailable, err)
	}
	return err
}

// tellUnavailable passes err on, first telling the watcher in ctx, if any, when err is
// vaxpass.ErrUnavailable.
func tellUnavailable(ctx context.Context, err error) error {
	if errors.Is(err, vaxpass.ErrUnavailable) {
		// The pumps' watcher (vaxpass.StorageWatcher): a write that waits for storage is
		// retried without counting towards dead-lettering.
		if w, ok := vaxpass.StorageWatcherFrom(ctx); ok {
			w.StorageUnavailable(err)
		}
	}
	return err
}

// storeBatch is storeUpdate for writes that many goroutines make at once (central
// signing's workers): when another such write is in flight, fn joins a bbolt batch, so
// their transactions share one commit (one fsync). A lone writer commits at once, without
// the batch's wait. fn may run more than once and must only touch the transaction.
func (s *Store) storeBatch(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	defer s.batchWriters.Add(-1)
	if s.batchWriters.Add(1) == 1 {
		return tellUnavailable(ctx, unavailable(s.db.bolt.Update(fn)))
	}
	return tellUnavailable(ctx, unavailable(s.db.bolt.Batch(fn)))
}

// storeView runs fn in a read transaction after checking ctx.
func (s *Store) storeView(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.bolt.View(fn)
}

// storeKey joins key parts with NUL separators into a fresh slice (bbolt keeps the
// slices given to Put until the transaction ends).
func storeKey(parts ...string) []byte {
	n := len(parts)
	for _, p := range parts {
		n += len(p)
	}
	k := make([]byte, 0, n)
	for i, p := range parts {
		if i > 0 {
			k = append(k, 0)
		}
		k = append(k, p...)
	}
	return k
}

// storePrefix is storeKey of parts followed by the separator: every key extending parts.
func storePrefix(parts ...string) []byte { return append(storeKey(parts...), 0) }

// storeCheckPart rejects a key part that would break the key layout.
func storeCheckPart(field, v string, required bool) error {
	switch {
	case v == "" && required:
		return fmt.Errorf("%w: %s is empty", vaxpass.ErrInvalid, field)
	case strings.IndexByte(v, 0) >= 0:
		return fmt.Errorf("%w: %s contains a NUL byte", vaxpass.ErrInvalid, field)
	case len(v) > storeMaxKeyPart:
		return fmt.Errorf("%w: %s is %d bytes, more than %d", vaxpass.ErrInvalid, field, len(v), storeMaxKeyPart)
	}
	return nil
}

// storeCheckLimit rejects a page size below 1.
func storeCheckLimit(limit int) error {
	if limit < 1 {
		return fmt.Errorf("%w: limit %d: must be at least 1", vaxpass.ErrInvalid, limit)
	}
	return nil
}

// storeSeekAfter positions c on the first key with prefix that sorts after prefix+after
// (on the first key with prefix when after is empty).
func storeSeekAfter(c *bolt.Cursor, prefix []byte, after string) (k, v []byte) {
	start := append(append([]byte(nil), prefix...), after...)
	k, v = c.Seek(start)
	if after != "" && bytes.Equal(k, start) {
		k, v = c.Next()
	}
	return k, v
}

// storeTimeKey encodes t as 8 bytes whose byte order is time order (the sign bit of the
// Unix nanoseconds flipped).
func storeTimeKey(t time.Time) []byte {
	return binary.BigEndian.AppendUint64(make([]byte, 0, 8), uint64(t.UnixNano())^(1<<63))
}

// storeCounter adds delta to the counter name in the meta bucket.
func storeCounter(tx *bolt.Tx, name string, delta int64) error {
	if delta == 0 {
		return nil
	}
	b := tx.Bucket(storeBucketMeta)
	n := storeReadCounter(b, name) + delta
	if n < 0 {
		n = 0
	}
	return b.Put([]byte(name), binary.BigEndian.AppendUint64(nil, uint64(n)))
}

func storeReadCounter(b *bolt.Bucket, name string) int64 {
	if v := b.Get([]byte(name)); len(v) == 8 {
		return int64(binary.BigEndian.Uint64(v))
	}
	return 0
}

// storeErrCorrupt marks stored data that breaks the store's layout.
var storeErrCorrupt = errors.New("corrupt store data")
