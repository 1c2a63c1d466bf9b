package feed

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	bolt "go.etcd.io/bbolt"
)

func FuzzParseSequenceNumber(f *testing.F) {
	for _, s := range []string{SequenceNumber(1), SequenceNumber(^uint64(0)), "0", "", "-1", "99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseSequenceNumber(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidArgument) {
				t.Fatalf("error %v is not ErrInvalidArgument", err)
			}
			return
		}
		back, err := ParseSequenceNumber(SequenceNumber(n))
		if err != nil || back != n {
			t.Fatalf("%q -> %d -> %q -> %d, %v", s, n, SequenceNumber(n), back, err)
		}
	})
}

// FuzzAppendRaw: whatever a writer passes, AppendRaw either refuses it with
// ErrInvalidChange or stores something every consumer can read back unchanged.
func FuzzAppendRaw(f *testing.F) {
	f.Add("INSERT", `{"source_id":{"S":"a1"}}`, `{"source_id":{"S":"a1"},"n":{"N":"1"},"l":{"L":[{"BOOL":true},{"NULL":true}]}}`, ``)
	f.Add("MODIFY", `{"k":{"S":"x"}}`, `{"m":{"M":{"a":{"SS":["1","2"]}}}}`, `{"b":{"B":"AAEC"}}`)
	f.Add("REMOVE", `{"k":{"N":"7"}}`, ``, `{"k":{"N":"7"}}`)
	f.Add("INSERT", `{"k":{"S":1}}`, `{}`, `null`)
	db, err := bolt.Open(t0(f), 0o600, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { db.Close() })
	fd, err := Open(db, "fuzz", Config{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, name, keys, newImage, oldImage string) {
		c := RawChange{EventName: EventName(name), Keys: json.RawMessage(keys), NewImage: json.RawMessage(newImage), OldImage: json.RawMessage(oldImage)}
		var ev storedEvent
		var seq uint64
		err := db.Update(func(tx *bolt.Tx) error {
			var err error
			if seq, err = fd.AppendRaw(tx, c); err != nil {
				return err
			}
			b, _ := fd.buckets(tx)
			ev, err = decodeStored(b.events.Get(seqKey(seq)))
			return err
		})
		if err != nil {
			if !errors.Is(err, ErrInvalidChange) {
				t.Fatalf("error %v is not ErrInvalidChange", err)
			}
			return
		}
		r, err := fd.record(seq, ev)
		if err != nil {
			t.Fatalf("accepted change unreadable: %v", err)
		}
		var want map[string]events.DynamoDBAttributeValue
		if err := json.Unmarshal([]byte(keys), &want); err != nil || !reflect.DeepEqual(want, r.Change.Keys) {
			t.Fatalf("keys %s read back as %v", keys, r.Change.Keys)
		}
		if _, err := json.Marshal(events.DynamoDBEvent{Records: []events.DynamoDBEventRecord{r}}); err != nil {
			t.Fatalf("accepted change does not marshal: %v", err)
		}
	})
}

func t0(f *testing.F) string { return f.TempDir() + "/fuzz.db" }

// FuzzDecodeStored: the log is ours, but a damaged file must give ErrCorrupt, not a
// panic, and what decodes must encode back to the same bytes.
func FuzzDecodeStored(f *testing.F) {
	ev := storedEvent{Name: Modify, At: 42, Keys: json.RawMessage(`{"k":{"S":"v"}}`), NewImage: json.RawMessage(`{"a":{"N":"1"}}`), OldImage: json.RawMessage(`{"a":{"N":"0"}}`)}
	f.Add(ev.encode())
	f.Add(encodeDead(7, "boom", ev.encode()))
	f.Add([]byte{storedVersion, 9})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := decodeStored(b)
		if err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("error %v is not ErrCorrupt", err)
		}
		if err == nil && string(s.encode()) != string(b) {
			t.Fatalf("%x decodes to %+v, which encodes as %x", b, s, s.encode())
		}
		at, reason, s2, err := decodeDead(b)
		if err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("dead letter error %v is not ErrCorrupt", err)
		}
		if err == nil && string(encodeDead(at, reason, s2.encode())) != string(b) {
			t.Fatal("dead letter does not round-trip")
		}
	})
}
