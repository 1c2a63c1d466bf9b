package embedded

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	bolt "go.etcd.io/bbolt"

	"github.com/vaxpass/vaxpass/shared/domain/dose"
	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/stage/matching"
	"github.com/vaxpass/vaxpass/shared/store/doseitem"
	"github.com/vaxpass/vaxpass/shared/store/embedded/feed"
	"github.com/vaxpass/vaxpass/shared/store/embedded/queue"
	"github.com/vaxpass/vaxpass/shared/testkit/storetest"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

var storeTestNow = time.Date(2021, 9, 1, 8, 0, 0, 0, time.UTC)

func openTestStore(t testing.TB, dir string) (*DB, *Store) {
	t.Helper()
	db, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	s, err := OpenStore(db, StoreOptions{Now: func() time.Time { return storeTestNow }})
	if err != nil {
		db.Close()
		t.Fatal(err)
	}
	return db, s
}

// The contract suite on a fresh database file per test; after each test every index is
// checked against the records it indexes.
func TestStoreContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Store {
		db, s := openTestStore(t, t.TempDir())
		t.Cleanup(func() {
			checkStoreConsistent(t, db)
			db.Close()
		})
		return s
	})
}

// checkStoreConsistent recomputes every index and counter from the records and compares
// them with what is stored.
func checkStoreConsistent(t *testing.T, db *DB) {
	t.Helper()
	err := db.bolt.View(func(tx *bolt.Tx) error {
		want := map[string]map[string]bool{}
		add := func(bucket []byte, key []byte) {
			if key == nil {
				return
			}
			if want[string(bucket)] == nil {
				want[string(bucket)] = map[string]bool{}
			}
			want[string(bucket)][string(key)] = true
		}
		for _, b := range [][]byte{storeBucketDoseStatus, storeBucketDosePerson, storeBucketDoseSignPending, storeBucketCertExpiry, storeBucketCertActive, storeBucketFacilityKeys} {
			want[string(b)] = map[string]bool{}
		}
		err := tx.Bucket(storeBucketDoses).ForEach(func(k, v []byte) error {
			var d vaxpass.Dose
			if err := doseitem.FromDoc(string(v), &d); err != nil {
				return err
			}
			if !bytes.Equal(k, storeKey(d.FacilityID, d.SourceID)) {
				return fmt.Errorf("dose %s/%s stored under key %q", d.FacilityID, d.SourceID, k)
			}
			status, person, pending := storeDoseIndexKeys(&d)
			add(storeBucketDoseStatus, status)
			add(storeBucketDosePerson, person)
			add(storeBucketDoseSignPending, pending)
			return nil
		})
		if err != nil {
			return err
		}
		counts := map[string]int64{}
		err = tx.Bucket(storeBucketCerts).ForEach(func(k, v []byte) error {
			c, err := storeDecodeCert(v)
			if err != nil {
				return err
			}
			if !bytes.Equal(k, storeCertKey(c.UVCI)) {
				return fmt.Errorf("certificate stored under key %q", k)
			}
			counts[c.Status]++
			if c.Status == vaxpass.CertIssued {
				add(storeBucketCertExpiry, append(storeTimeKey(c.ExpiresAt), k...))
				if want[string(storeBucketCertActive)][c.PersonID+"\x00"] {
					return fmt.Errorf("two issued certificates for one person")
				}
				add(storeBucketCertActive, []byte(c.PersonID+"\x00"))
			}
			return nil
		})
		if err != nil {
			return err
		}
		err = tx.Bucket(storeBucketFacilities).ForEach(func(k, v []byte) error {
			var f vaxpass.Facility
			if err := json.Unmarshal(v, &f); err != nil {
				return err
			}
			if len(f.APIKeyHash) > 0 {
				add(storeBucketFacilityKeys, f.APIKeyHash)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for name, keys := range want {
			got := map[string]bool{}
			err := tx.Bucket([]byte(name)).ForEach(func(k, v []byte) error {
				switch name {
				case string(storeBucketCertActive):
					// person -> UVCI: the UVCI must be the person's issued certificate.
					c, found, err := storeGetCert(tx, v)
					if err != nil || !found || c.Status != vaxpass.CertIssued || c.PersonID != string(k) {
						return fmt.Errorf("active pointer of a person to %q is wrong (found %v, err %v)", v, found, err)
					}
					k = append(bytes.Clone(k), 0)
				case string(storeBucketFacilityKeys):
					f, err := storeGetFacility(tx, v)
					if err != nil || !bytes.Equal(f.APIKeyHash, k) {
						return fmt.Errorf("API key index points to facility %q wrongly: %v", v, err)
					}
				}
				got[string(k)] = true
				return nil
			})
			if err != nil {
				return err
			}
			for k := range keys {
				if !got[k] {
					return fmt.Errorf("index %s lacks %q", name, k)
				}
			}
			for k := range got {
				if !keys[k] {
					return fmt.Errorf("index %s has a stale entry %q", name, k)
				}
			}
		}
		meta := tx.Bucket(storeBucketMeta)
		for _, st := range []string{vaxpass.CertIssued, vaxpass.CertRevoked} {
			if n := storeReadCounter(meta, storeCertCounter(st)); n != counts[st] {
				return fmt.Errorf("counter of %s certificates is %d, %d stored", st, n, counts[st])
			}
		}
		return nil
	})
	if err != nil {
		t.Errorf("store inconsistent: %v", err)
	}
}

func testDose(facilityID, sourceID string) vaxpass.Dose {
	return vaxpass.Dose{
		FacilityID: facilityID,
		Record: dose.Record{SourceID: sourceID, FullName: "Phạm Thị Hoa", DOB: "1985-03-04", Gender: dose.Female,
			IDNumber: "079185001234", Nationality: "VN", Vaccine: "ASTRAZENECA", DoseNumber: 1, VaccinatedOn: "2021-07-01"},
		Match:      match.Result{Status: match.Pending, Reasons: []string{}},
		ReceivedAt: storeTestNow, UpdatedAt: storeTestNow, Version: 1,
	}
}

// Data written before a restart is there after it, and the change feed continues its
// sequence instead of starting over.
func TestStoreRestart(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	db, s := openTestStore(t, dir)
	d := testDose("f1", "a1")
	if _, err := s.PutNew(ctx, []vaxpass.Dose{d}); err != nil {
		t.Fatal(err)
	}
	m := d
	matching.Apply(&m, match.Result{Status: match.Verified, Reasons: []string{}}, storeTestNow)
	if err := s.SaveMatch(ctx, m); err != nil {
		t.Fatal(err)
	}
	m.Version++
	fac := vaxpass.Facility{ID: "f1", Name: "Trạm Y tế", APIKeyHash: []byte("0123456789abcdef0123456789abcdef"), CreatedAt: storeTestNow}
	if err := s.AddFacility(ctx, fac); err != nil {
		t.Fatal(err)
	}
	cert := vaxpass.Certificate{UVCI: "URN:UVCI:01:VN:RESTART#1", PersonID: m.PersonID, HC1: "HC1:X", Status: vaxpass.CertIssued,
		IssuedAt: storeTestNow, ExpiresAt: storeTestNow.AddDate(1, 0, 0), Version: 1}
	if err := s.ReplaceCertificate(ctx, cert, nil); err != nil {
		t.Fatal(err)
	}
	before, err := s.ChangeEvents(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db, s = openTestStore(t, dir)
	defer db.Close()
	got, err := s.GetDose(ctx, d.Key())
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != m.Version || got.PersonID != m.PersonID || got.Match.Status != match.Verified {
		t.Errorf("dose after restart: version %d, status %s", got.Version, got.Match.Status)
	}
	if ps, err := s.SignPendingPersons(ctx, "f1", "", 10); err != nil || len(ps) != 1 {
		t.Errorf("sign-pending after restart: %d people, %v", len(ps), err)
	}
	if f, err := s.FacilityByKeyHash(ctx, fac.APIKeyHash); err != nil || f.ID != "f1" {
		t.Errorf("facility after restart: %v", err)
	}
	if c, err := s.ActiveCertificate(ctx, m.PersonID); err != nil || c.UVCI != cert.UVCI {
		t.Errorf("certificate after restart: %v", err)
	}
	after, err := s.ChangeEvents(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) || len(after) != 2 {
		t.Fatalf("%d events after restart, %d before, want 2", len(after), len(before))
	}
	if _, err := s.PutNew(ctx, []vaxpass.Dose{testDose("f1", "a2")}); err != nil {
		t.Fatal(err)
	}
	after, err = s.ChangeEvents(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if last := after[len(after)-1].Change.SequenceNumber; last <= before[len(before)-1].Change.SequenceNumber {
		t.Errorf("sequence number %s after restart does not follow %s", last, before[len(before)-1].Change.SequenceNumber)
	}
	checkStoreConsistent(t, db)
}

// The store's feed drives a stream-handler-shaped matcher to a fixed point: INSERT events
// are matched and written back; the MODIFY events of those writes need no new match.
func TestStoreFeedDrivesMatcher(t *testing.T) {
	ctx := t.Context()
	db, s := openTestStore(t, t.TempDir())
	defer db.Close()
	writes := 0
	handler := func(ctx context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
		var batch []vaxpass.Dose
		for _, r := range ev.Records {
			d, err := doseitem.FromImage(r.Change.NewImage)
			if err != nil {
				return events.DynamoDBEventResponse{}, err
			}
			if !d.NeedsMatch() {
				continue
			}
			matching.Apply(&d, match.Result{Status: match.NoID, Reasons: []string{}}, storeTestNow)
			batch = append(batch, d)
		}
		errs, err := s.SaveMatchBatch(ctx, batch)
		if err != nil {
			return events.DynamoDBEventResponse{}, err
		}
		for _, e := range errs {
			if e != nil {
				return events.DynamoDBEventResponse{}, e
			}
		}
		writes += len(batch)
		return events.DynamoDBEventResponse{}, nil
	}
	pump, err := feed.NewPump(s.DoseFeed(), "matcher", handler, feed.PumpConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var doses []vaxpass.Dose
	for i := range 250 {
		doses = append(doses, testDose("f1", fmt.Sprintf("s%03d", i)))
	}
	if _, err := s.PutNew(ctx, doses); err != nil {
		t.Fatal(err)
	}
	for range 20 {
		res, err := pump.RunOnce(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if res.Received == 0 {
			break
		}
	}
	if writes != 250 {
		t.Errorf("%d match writes, want 250 (one per dose)", writes)
	}
	got, err := s.ListByStatus(ctx, "f1", match.NoID, "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 250 {
		t.Errorf("%d doses matched", len(got))
	}
}

func TestStoreInvalidArguments(t *testing.T) {
	ctx := t.Context()
	db, s := openTestStore(t, t.TempDir())
	defer db.Close()
	for name, err := range map[string]error{
		"ListByStatus without facility":  second(s.ListByStatus(ctx, "", match.Pending, "", 10)),
		"ListByStatus limit 0":           second(s.ListByStatus(ctx, "f1", match.Pending, "", 0)),
		"SignPendingPersons limit -1":    second(s.SignPendingPersons(ctx, "f1", "", -1)),
		"PersonDoses without person":     second(s.PersonDoses(ctx, "")),
		"GetDose NUL":                    second(s.GetDose(ctx, vaxpass.DoseKey{FacilityID: "f\x00", SourceID: "x"})),
		"MarkSigned zero time":           s.MarkSigned(ctx, []vaxpass.Dose{testDose("f1", "a")}, time.Time{}),
		"PutFacilitySignature no person": s.PutFacilitySignature(ctx, vaxpass.FacilitySignature{FacilityID: "f1"}),
		"RevokeCertificate no reason":    s.RevokeCertificate(ctx, vaxpass.Certificate{UVCI: "X"}, " ", storeTestNow),
		"ListCertificates limit 0":       third(s.ListCertificates(ctx, "", 0)),
	} {
		if !errors.Is(err, vaxpass.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	errs, err := s.SaveMatchBatch(ctx, []vaxpass.Dose{{FacilityID: "f1"}})
	if err != nil || !errors.Is(errs[0], vaxpass.ErrInvalid) {
		t.Errorf("SaveMatchBatch of a dose without source_id: %v, %v", errs, err)
	}
}

func second[T any](_ T, err error) error { return err }

func third[T, U any](_ T, _ U, err error) error { return err }

func TestStoreTimeKeyOrder(t *testing.T) {
	times := []time.Time{
		time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC), time.Unix(-1, 0), time.Unix(0, 0), time.Unix(0, 1),
		storeTestNow, storeTestNow.Add(time.Nanosecond), time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	keys := make([][]byte, len(times))
	for i, tm := range times {
		keys[i] = storeTimeKey(tm)
	}
	if !sort.SliceIsSorted(keys, func(i, j int) bool { return bytes.Compare(keys[i], keys[j]) < 0 }) {
		t.Error("time keys do not sort in time order")
	}
}

func TestFullDiskIsUnavailable(t *testing.T) {
	for _, errno := range []syscall.Errno{syscall.ENOSPC, syscall.EDQUOT, syscall.EROFS} {
		if err := unavailable(fmt.Errorf("write: %w", errno)); !errors.Is(err, vaxpass.ErrUnavailable) || !errors.Is(err, errno) {
			t.Errorf("%v: %v", errno, err)
		}
	}
	if err := unavailable(syscall.EIO); errors.Is(err, vaxpass.ErrUnavailable) {
		t.Errorf("EIO is not a full disk: %v", err)
	}
}

// A write refused for want of storage is told to the pump driving the handler (through
// the call's context), so that neither pump counts the failure: here with the retry
// and receive limits at their lowest, a refused write twice, then success.
func TestStoreTellsPumpsOfUnavailableStorage(t *testing.T) {
	db, s := openTestStore(t, t.TempDir())
	defer db.Close()
	ctx := context.Background()
	full := func(*bolt.Tx) error { return fmt.Errorf("write: %w", syscall.ENOSPC) }
	// write is a handler's store write: refused on the first two calls (one through
	// storeUpdate, one through storeBatch), then a success.
	write := func(ctx context.Context, call int) error {
		switch call {
		case 1:
			return s.storeUpdate(ctx, full)
		case 2:
			return s.storeBatch(ctx, full)
		}
		return s.storeUpdate(ctx, func(*bolt.Tx) error { return nil })
	}

	f, err := feed.Open(db.Bolt(), "test-feed", feed.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Bolt().Update(func(tx *bolt.Tx) error {
		key := map[string]events.DynamoDBAttributeValue{"source_id": events.NewStringAttribute("s1")}
		_, err := f.Append(tx, feed.Change{EventName: feed.Insert, Keys: key, NewImage: key})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	feedCalls := 0
	fp, err := feed.NewPump(f, "test", func(ctx context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
		feedCalls++
		var resp events.DynamoDBEventResponse
		if err := write(ctx, feedCalls); err != nil {
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.DynamoDBBatchItemFailure{ItemIdentifier: ev.Records[0].Change.SequenceNumber})
		}
		return resp, nil
	}, feed.PumpConfig{MaxRetries: feed.NoRetries})
	if err != nil {
		t.Fatal(err)
	}
	for try := 1; try <= 3; try++ {
		res, err := fp.RunOnce(ctx)
		if err != nil || res.DeadLettered != 0 || res.Unavailable != (try < 3) {
			t.Fatalf("feed pump, try %d: %+v, %v; want the refused tries retried uncounted", try, res, err)
		}
	}
	if st, err := f.Stats(ctx); err != nil || st.Consumers["test"] != (feed.ConsumerStats{Checkpoint: 1}) {
		t.Fatalf("feed consumer = %+v, %v", st.Consumers["test"], err)
	}

	q, err := queue.Open(db.Bolt(), "test-queue", queue.Config{MaxReceiveCount: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := q.Send(ctx, []byte("m"), queue.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	queueCalls := 0
	qp, err := queue.NewPump(q, func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		queueCalls++
		var resp events.SQSEventResponse
		if err := write(ctx, queueCalls); err != nil {
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: ev.Records[0].MessageId})
		}
		return resp, nil
	}, queue.PumpConfig{RetryBaseDelay: time.Nanosecond, RetryMaxDelay: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	for try := 1; try <= 3; try++ {
		time.Sleep(time.Millisecond) // the release's delay
		res, err := qp.RunOnce(ctx)
		want := queue.BatchResult{Received: 1, Failed: 1, Unavailable: 1}
		if try == 3 {
			want = queue.BatchResult{Received: 1, Deleted: 1}
		}
		if err != nil || res != want {
			t.Fatalf("queue pump, try %d: %+v, %v; want the refused tries released uncounted", try, res, err)
		}
	}
	if c, err := q.Counts(ctx); err != nil || c != (queue.Counts{}) {
		t.Fatalf("queue counts = %+v, %v; want the message deleted, none dead", c, err)
	}

	// Without a pump the error is passed on all the same.
	if err := s.storeUpdate(ctx, full); !errors.Is(err, vaxpass.ErrUnavailable) {
		t.Fatalf("refused write without a watch: %v", err)
	}
}

// Central signing's writes from many goroutines share commits (storeBatch); each write
// still succeeds or fails on its own condition.
func TestConcurrentReplaceCertificate(t *testing.T) {
	db, s := openTestStore(t, t.TempDir())
	defer db.Close()
	ctx := context.Background()
	const people = 40
	var wg sync.WaitGroup
	errs := make([][2]error, people)
	for p := range people {
		for w := range 2 { // two workers race to issue each person's first certificate
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := vaxpass.Certificate{UVCI: fmt.Sprintf("URN:UVCI:01:VN:P%02dW%d", p, w), PersonID: fmt.Sprintf("person-%02d", p),
					Status: vaxpass.CertIssued, IssuedAt: storeTestNow, ExpiresAt: storeTestNow.AddDate(1, 0, 0), Version: 1}
				errs[p][w] = s.ReplaceCertificate(ctx, c, nil)
			}()
		}
	}
	wg.Wait()
	for p := range people {
		won := 0
		for w := range 2 {
			switch err := errs[p][w]; {
			case err == nil:
				won++
			case !errors.Is(err, vaxpass.ErrConflict):
				t.Fatalf("person %d worker %d: %v", p, w, err)
			}
		}
		if won != 1 {
			t.Fatalf("person %d: %d workers issued a first certificate, want exactly 1", p, won)
		}
		c, err := s.ActiveCertificate(ctx, fmt.Sprintf("person-%02d", p))
		if err != nil || !strings.HasPrefix(c.UVCI, fmt.Sprintf("URN:UVCI:01:VN:P%02dW", p)) {
			t.Fatalf("person %d active: %+v, %v", p, c.UVCI, err)
		}
	}
	checkStoreConsistent(t, db)
}
