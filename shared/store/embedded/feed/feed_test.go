package feed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	bolt "go.etcd.io/bbolt"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Date(2024, 3, 1, 8, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func openDB(t testing.TB, dir string) *bolt.DB {
	t.Helper()
	db, err := bolt.Open(filepath.Join(dir, "vaxpass.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func openFeed(t testing.TB, db *bolt.DB, cfg Config) *Feed {
	t.Helper()
	f, err := Open(db, "doses", cfg)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

var recordsBucket = []byte("test.doses")

func str(s string) events.DynamoDBAttributeValue { return events.NewStringAttribute(s) }

// putDose writes a record and its change in one transaction, as the dose store does.
func putDose(t testing.TB, db *bolt.DB, f *Feed, sourceID, status string) uint64 {
	t.Helper()
	var seq uint64
	err := db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(recordsBucket)
		if err != nil {
			return err
		}
		c := Change{
			EventName: Insert,
			Keys:      map[string]events.DynamoDBAttributeValue{"source_id": str(sourceID)},
			NewImage:  map[string]events.DynamoDBAttributeValue{"source_id": str(sourceID), "status": str(status)},
		}
		if old := b.Get([]byte(sourceID)); old != nil {
			c.EventName = Modify
			c.OldImage = map[string]events.DynamoDBAttributeValue{"source_id": str(sourceID), "status": str(string(old))}
		}
		if err := b.Put([]byte(sourceID), []byte(status)); err != nil {
			return err
		}
		seq, err = f.Append(tx, c)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return seq
}

func putDoses(t testing.TB, db *bolt.DB, f *Feed, n int) {
	t.Helper()
	err := db.Update(func(tx *bolt.Tx) error {
		for i := range n {
			id := fmt.Sprintf("s%05d", i)
			if _, err := f.Append(tx, Change{
				EventName: Insert,
				Keys:      map[string]events.DynamoDBAttributeValue{"source_id": str(id)},
				NewImage:  map[string]events.DynamoDBAttributeValue{"source_id": str(id), "status": str("PENDING")},
			}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func seqOf(t testing.TB, r events.DynamoDBEventRecord) uint64 {
	t.Helper()
	s, err := ParseSequenceNumber(r.Change.SequenceNumber)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func stats(t testing.TB, f *Feed) Stats {
	t.Helper()
	st, err := f.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestAppendCommitsWithTheRecord(t *testing.T) {
	clock := newClock()
	db := openDB(t, t.TempDir())
	f := openFeed(t, db, Config{Now: clock.Now, Table: "Doses"})

	if seq := putDose(t, db, f, "a1", "PENDING"); seq != 1 {
		t.Fatalf("first sequence number = %d", seq)
	}
	// A write that fails after appending rolls its change back with it.
	boom := errors.New("conditional put failed")
	err := db.Update(func(tx *bolt.Tx) error {
		if _, err := f.Append(tx, Change{EventName: Insert,
			Keys:     map[string]events.DynamoDBAttributeValue{"source_id": str("a2")},
			NewImage: map[string]events.DynamoDBAttributeValue{"source_id": str("a2")}}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatal(err)
	}
	if seq := putDose(t, db, f, "a1", "VERIFIED"); seq != 2 {
		t.Fatalf("sequence after a rollback = %d, want 2 (no gap)", seq)
	}
	recs, err := f.Read(context.Background(), 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 {
		t.Fatalf("read %d events, want 2", len(recs))
	}
	ins, mod := recs[0], recs[1]
	if ins.EventName != "INSERT" || mod.EventName != "MODIFY" {
		t.Fatalf("event names %s, %s", ins.EventName, mod.EventName)
	}
	if got := mod.Change.OldImage["status"].String(); got != "PENDING" {
		t.Errorf("MODIFY OldImage status = %q", got)
	}
	if got := mod.Change.NewImage["status"].String(); got != "VERIFIED" {
		t.Errorf("MODIFY NewImage status = %q", got)
	}
	if got := mod.Change.Keys["source_id"].String(); got != "a1" {
		t.Errorf("Keys source_id = %q", got)
	}
	want := "arn:aws:dynamodb:local:000000000000:table/Doses/stream/2024-03-01T08:00:00.000"
	for i, r := range recs {
		if r.EventSourceArn != want || r.EventSource != "aws:dynamodb" || r.AWSRegion != "local" || r.EventVersion != "1.1" ||
			r.Change.StreamViewType != "NEW_AND_OLD_IMAGES" || !r.Change.ApproximateCreationDateTime.Equal(clock.Now()) ||
			r.Change.SizeBytes <= 0 || len(r.EventID) != 32 {
			t.Errorf("record %d = %+v", i, r)
		}
		if r.Change.SequenceNumber != fmt.Sprintf("%021d", i+1) {
			t.Errorf("record %d SequenceNumber = %q", i, r.Change.SequenceNumber)
		}
	}
	if ins.EventID == mod.EventID {
		t.Error("two events share an EventID")
	}
	// Lambda hands the event over as JSON: it must survive the trip.
	raw, err := json.Marshal(events.DynamoDBEvent{Records: recs})
	if err != nil {
		t.Fatal(err)
	}
	var back events.DynamoDBEvent
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.Records[1].Change.NewImage, mod.Change.NewImage) || back.Records[1].Change.SequenceNumber != mod.Change.SequenceNumber {
		t.Fatalf("JSON round trip changed the record: %s", raw)
	}
}

func TestStreamLabelKeptAcrossOpens(t *testing.T) {
	clock := newClock()
	dir := t.TempDir()
	db := openDB(t, dir)
	first := openFeed(t, db, Config{Now: clock.Now}).StreamARN()
	db.Close()
	clock.Advance(48 * time.Hour)
	second := openFeed(t, openDB(t, dir), Config{Now: clock.Now}).StreamARN()
	if first != second || !strings.HasSuffix(first, ":table/doses/stream/2024-03-01T08:00:00.000") {
		t.Fatalf("ARN %q then %q", first, second)
	}
}

func TestAppendValidation(t *testing.T) {
	db := openDB(t, t.TempDir())
	f := openFeed(t, db, Config{})
	keys := map[string]events.DynamoDBAttributeValue{"source_id": str("a1")}
	img := map[string]events.DynamoDBAttributeValue{"source_id": str("a1"), "n": events.NewNumberAttribute("1")}
	for _, tc := range []struct {
		desc  string
		c     Change
		field string
	}{
		{"unknown event name", Change{EventName: "UPSERT", Keys: keys, NewImage: img}, "EventName"},
		{"no keys", Change{EventName: Insert, NewImage: img}, "Keys"},
		{"empty keys", Change{EventName: Insert, Keys: map[string]events.DynamoDBAttributeValue{}, NewImage: img}, "Keys"},
		{"insert without new image", Change{EventName: Insert, Keys: keys}, "NewImage"},
		{"insert with old image", Change{EventName: Insert, Keys: keys, NewImage: img, OldImage: img}, "OldImage"},
		{"modify without old image", Change{EventName: Modify, Keys: keys, NewImage: img}, "OldImage"},
		{"modify without new image", Change{EventName: Modify, Keys: keys, OldImage: img}, "NewImage"},
		{"remove with new image", Change{EventName: Remove, Keys: keys, NewImage: img, OldImage: img}, "NewImage"},
		{"remove without old image", Change{EventName: Remove, Keys: keys}, "OldImage"},
		{"attribute without type", Change{EventName: Insert, Keys: keys, NewImage: map[string]events.DynamoDBAttributeValue{"x": {}}}, "NewImage"},
	} {
		err := db.Update(func(tx *bolt.Tx) error { _, err := f.Append(tx, tc.c); return err })
		if !errors.Is(err, ErrInvalidChange) || !strings.Contains(err.Error(), tc.field+":") {
			t.Errorf("%s: err = %v, want ErrInvalidChange naming %s", tc.desc, err, tc.field)
		}
	}
	rawKeys := json.RawMessage(`{"source_id":{"S":"a1"}}`)
	for _, tc := range []struct {
		desc  string
		c     RawChange
		field string
	}{
		{"not JSON", RawChange{EventName: Insert, Keys: rawKeys, NewImage: json.RawMessage(`{"a":`)}, "NewImage"},
		{"not an attribute map", RawChange{EventName: Insert, Keys: rawKeys, NewImage: json.RawMessage(`{"a":"plain"}`)}, "NewImage"},
		{"unknown attribute type", RawChange{EventName: Insert, Keys: rawKeys, NewImage: json.RawMessage(`{"a":{"Q":"1"}}`)}, "NewImage"},
		{"array", RawChange{EventName: Insert, Keys: json.RawMessage(`[1]`), NewImage: rawKeys}, "Keys"},
		{"trailing data", RawChange{EventName: Insert, Keys: rawKeys, NewImage: json.RawMessage(`{} {}`)}, "NewImage"},
		{"too large", RawChange{EventName: Insert, Keys: rawKeys, NewImage: json.RawMessage(`{"a":{"S":"` + strings.Repeat("x", MaxImageBytes) + `"}}`)}, "NewImage"},
		{"null keys", RawChange{EventName: Remove, Keys: json.RawMessage(`null`), OldImage: rawKeys}, "Keys"},
	} {
		err := db.Update(func(tx *bolt.Tx) error { _, err := f.AppendRaw(tx, tc.c); return err })
		if !errors.Is(err, ErrInvalidChange) || !strings.Contains(err.Error(), tc.field+":") {
			t.Errorf("%s: err = %v, want ErrInvalidChange naming %s", tc.desc, err, tc.field)
		}
	}
	err := db.View(func(tx *bolt.Tx) error {
		_, err := f.Append(tx, Change{EventName: Insert, Keys: keys, NewImage: img})
		return err
	})
	if !errors.Is(err, ErrReadOnlyTx) {
		t.Errorf("read-only tx: %v", err)
	}
	if st := stats(t, f); st.LastSeq != 0 || st.Retained != 0 {
		t.Fatalf("invalid changes were recorded: %+v", st)
	}
	// A valid raw change is kept as given.
	err = db.Update(func(tx *bolt.Tx) error {
		_, err := f.AppendRaw(tx, RawChange{EventName: Remove, Keys: rawKeys, OldImage: json.RawMessage(` {"source_id": {"S":"a1"}, "ok": {"BOOL": true}} `)})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	recs, err := f.Read(context.Background(), 0, 1)
	if err != nil || len(recs) != 1 || !recs[0].Change.OldImage["ok"].Boolean() || recs[0].Change.NewImage != nil {
		t.Fatalf("raw change read back as %+v, %v", recs, err)
	}
	for _, name := range []string{"", "with space", strings.Repeat("t", MaxNameLength+1)} {
		if _, err := Open(db, name, Config{}); !errors.Is(err, ErrInvalidName) {
			t.Errorf("Open(%q): %v", name, err)
		}
	}
}

func TestSequenceNumbers(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want uint64
		ok   bool
	}{
		{SequenceNumber(1), 1, true},
		{SequenceNumber(^uint64(0)), ^uint64(0), true},
		{"42", 42, true},
		{"", 0, false},
		{"-1", 0, false},
		{"1e3", 0, false},
		{" 1", 0, false},
		{"18446744073709551616", 0, false},
		{strings.Repeat("0", 41), 0, false},
	} {
		got, err := ParseSequenceNumber(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseSequenceNumber(%q) = %d, %v", tc.in, got, err)
		}
		if err != nil && !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("ParseSequenceNumber(%q): error %v is not ErrInvalidArgument", tc.in, err)
		}
	}
	if a, b := SequenceNumber(9), SequenceNumber(10); a >= b {
		t.Errorf("%q sorts after %q", a, b)
	}
}

func TestNewImageViewType(t *testing.T) {
	db := openDB(t, t.TempDir())
	f := openFeed(t, db, Config{ViewType: events.DynamoDBStreamViewTypeNewImage})
	keys := map[string]events.DynamoDBAttributeValue{"source_id": str("a1")}
	img := map[string]events.DynamoDBAttributeValue{"source_id": str("a1"), "n": events.NewNumberAttribute("1")}
	for _, tc := range []struct {
		desc  string
		c     Change
		field string
	}{
		{"modify with old image", Change{EventName: Modify, Keys: keys, NewImage: img, OldImage: img}, "OldImage"},
		{"modify without new image", Change{EventName: Modify, Keys: keys}, "NewImage"},
		{"remove with new image", Change{EventName: Remove, Keys: keys, NewImage: img}, "NewImage"},
		{"unknown event name", Change{EventName: "UPSERT", Keys: keys, NewImage: img}, "EventName"},
	} {
		err := db.Update(func(tx *bolt.Tx) error { _, err := f.Append(tx, tc.c); return err })
		if !errors.Is(err, ErrInvalidChange) || !strings.Contains(err.Error(), tc.field+":") {
			t.Errorf("%s: err = %v, want ErrInvalidChange naming %s", tc.desc, err, tc.field)
		}
	}
	err := db.Update(func(tx *bolt.Tx) error {
		for _, c := range []Change{{EventName: Insert, Keys: keys, NewImage: img}, {EventName: Modify, Keys: keys, NewImage: img}, {EventName: Remove, Keys: keys}} {
			if _, err := f.Append(tx, c); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	recs, err := f.Read(context.Background(), 0, 10)
	if err != nil || len(recs) != 3 {
		t.Fatalf("read %d records, %v", len(recs), err)
	}
	for _, r := range recs {
		if r.Change.StreamViewType != string(events.DynamoDBStreamViewTypeNewImage) || r.Change.OldImage != nil {
			t.Errorf("%s: view type %s, old image %v", r.EventName, r.Change.StreamViewType, r.Change.OldImage)
		}
	}
	if _, err := Open(db, "other", Config{ViewType: "KEYS_ONLY"}); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("Open with KEYS_ONLY: %v", err)
	}
}
