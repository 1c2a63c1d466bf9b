package queue

import (
	"errors"
	"testing"
)

// FuzzParseReceipt: receipt handles come back from handlers; parsing must never panic
// and must accept only the handles formatReceipt makes.
func FuzzParseReceipt(f *testing.F) {
	q := &Queue{name: "q", tag: nameTag("q")}
	other := &Queue{name: "other", tag: nameTag("other")}
	for _, seed := range []string{
		q.formatReceipt(1, 1),
		q.formatReceipt(^uint64(0), ^uint64(0)),
		other.formatReceipt(7, 9),
		q.formatReceipt(1, 0),
		"", "zz",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, token, err := q.parseReceipt(s)
		if err != nil {
			if !errors.Is(err, ErrBadReceipt) {
				t.Fatalf("parseReceipt(%q): error %v is not ErrBadReceipt", s, err)
			}
			return
		}
		if got := q.formatReceipt(id, token); got != s {
			t.Fatalf("parseReceipt(%q) = %d, %d, which formats as %q", s, id, token, got)
		}
	})
}

// FuzzDecodeRecords: stored records are ours, but a damaged file must give ErrCorrupt,
// not a panic.
func FuzzDecodeRecords(f *testing.F) {
	f.Add(meta{visibleAt: 5, sentAt: 1, token: 3, receiveCount: 2}.encode())
	f.Add(deadRecord{sentAt: 1, deadAt: 2, receiveCount: 3, dedupID: "d", body: []byte("body")}.encode())
	f.Add(encodeBody("dedup", []byte("x")))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, err := range []error{
			func() error { _, err := decodeMeta(b); return err }(),
			func() error { _, err := decodeDead(b); return err }(),
			func() error { _, _, err := decodeBody(b); return err }(),
			func() error { _, _, err := decodeDedupValue(b); return err }(),
		} {
			if err != nil && !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v is not ErrCorrupt", err)
			}
		}
		if m, err := decodeMeta(b); err == nil && string(m.encode()) != string(b) {
			t.Fatal("meta does not round-trip")
		}
		if d, err := decodeDead(b); err == nil && string(d.encode()) != string(b) {
			t.Fatal("dead letter does not round-trip")
		}
	})
}
