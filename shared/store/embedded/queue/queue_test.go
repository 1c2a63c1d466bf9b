package queue

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// fakeClock is the injected clock of the tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock {
	return &fakeClock{t: time.Date(2024, 3, 1, 8, 0, 0, 0, time.UTC)}
}

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

func openQueue(t testing.TB, db *bolt.DB, name string, cfg Config) *Queue {
	t.Helper()
	q, err := Open(db, name, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func mustSend(t testing.TB, q *Queue, bodies ...string) []string {
	t.Helper()
	out := make([]Outgoing, len(bodies))
	for i, b := range bodies {
		out[i] = Outgoing{Body: []byte(b)}
	}
	res, err := q.SendBatch(context.Background(), out)
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, len(res))
	for i, r := range res {
		ids[i] = r.ID
	}
	return ids
}

func mustReceive(t testing.TB, q *Queue, max int, vt time.Duration) []Message {
	t.Helper()
	msgs, err := q.ReceiveBatch(context.Background(), max, vt)
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

func mustCounts(t testing.TB, q *Queue) Counts {
	t.Helper()
	c, err := q.Counts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func bodies(msgs []Message) string {
	s := make([]string, len(msgs))
	for i, m := range msgs {
		s[i] = string(m.Body)
	}
	return strings.Join(s, ",")
}

func TestSendReceiveDelete(t *testing.T) {
	clock := newClock()
	q := openQueue(t, openDB(t, t.TempDir()), "signing", Config{Now: clock.Now})
	ctx := context.Background()
	ids := mustSend(t, q, "a", "b", "c")
	clock.Advance(time.Second)

	msgs := mustReceive(t, q, 10, 30*time.Second)
	if got := bodies(msgs); got != "a,b,c" {
		t.Fatalf("bodies = %q, want a,b,c in send order", got)
	}
	for i, m := range msgs {
		if m.ID != ids[i] || m.ReceiveCount != 1 || !m.SentAt.Equal(clock.Now().Add(-time.Second)) || !m.FirstReceivedAt.Equal(clock.Now()) {
			t.Errorf("message %d = %+v", i, m)
		}
	}
	if c := mustCounts(t, q); c != (Counts{InFlight: 3}) {
		t.Fatalf("counts after receive = %+v", c)
	}
	if again := mustReceive(t, q, 10, 30*time.Second); len(again) != 0 {
		t.Fatalf("in-flight messages received again: %q", bodies(again))
	}
	for _, m := range msgs {
		if err := q.Delete(ctx, m.ReceiptHandle); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.Delete(ctx, msgs[0].ReceiptHandle); !errors.Is(err, ErrStaleReceipt) {
		t.Fatalf("second delete: err = %v, want ErrStaleReceipt", err)
	}
	clock.Advance(time.Hour)
	if c := mustCounts(t, q); c != (Counts{}) {
		t.Fatalf("counts after delete = %+v", c)
	}
	if again := mustReceive(t, q, 10, 30*time.Second); len(again) != 0 {
		t.Fatalf("deleted messages came back: %q", bodies(again))
	}
}

func TestReceiveBatchHonoursMax(t *testing.T) {
	clock := newClock()
	q := openQueue(t, openDB(t, t.TempDir()), "q", Config{Now: clock.Now})
	mustSend(t, q, "1", "2", "3", "4", "5")
	if got := bodies(mustReceive(t, q, 2, time.Minute)); got != "1,2" {
		t.Fatalf("first batch = %q", got)
	}
	if got := bodies(mustReceive(t, q, 2, time.Minute)); got != "3,4" {
		t.Fatalf("second batch = %q", got)
	}
	if got := bodies(mustReceive(t, q, 2, time.Minute)); got != "5" {
		t.Fatalf("third batch = %q", got)
	}
}

func TestVisibilityTimeoutRedelivery(t *testing.T) {
	clock := newClock()
	q := openQueue(t, openDB(t, t.TempDir()), "q", Config{Now: clock.Now})
	ctx := context.Background()
	mustSend(t, q, "job")
	first := mustReceive(t, q, 1, 30*time.Second)

	clock.Advance(30*time.Second - time.Nanosecond)
	if msgs := mustReceive(t, q, 1, 30*time.Second); len(msgs) != 0 {
		t.Fatal("message visible before its visibility timeout ran out")
	}
	clock.Advance(time.Nanosecond)
	second := mustReceive(t, q, 1, 30*time.Second)
	if len(second) != 1 || second[0].ID != first[0].ID || second[0].ReceiveCount != 2 {
		t.Fatalf("redelivery = %+v", second)
	}
	if second[0].ReceiptHandle == first[0].ReceiptHandle {
		t.Fatal("redelivery reused the receipt handle")
	}
	if !second[0].FirstReceivedAt.Equal(first[0].FirstReceivedAt) {
		t.Error("FirstReceivedAt changed on redelivery")
	}
	// The first receiver finishes late: its delete must not remove the new delivery.
	if err := q.Delete(ctx, first[0].ReceiptHandle); !errors.Is(err, ErrStaleReceipt) {
		t.Fatalf("stale delete: err = %v, want ErrStaleReceipt", err)
	}
	if err := q.ChangeVisibility(ctx, first[0].ReceiptHandle, 0); !errors.Is(err, ErrStaleReceipt) {
		t.Fatalf("stale change visibility: err = %v, want ErrStaleReceipt", err)
	}
	if c := mustCounts(t, q); c.InFlight != 1 {
		t.Fatalf("counts after stale delete = %+v", c)
	}
	if err := q.Delete(ctx, second[0].ReceiptHandle); err != nil {
		t.Fatal(err)
	}
	if c := mustCounts(t, q); c != (Counts{}) {
		t.Fatalf("counts = %+v", c)
	}
}

func TestLatestReceiptDeletesAfterTimeout(t *testing.T) {
	// SQS: the latest delivery's handle still works when the timeout ran out but
	// nobody received the message again.
	clock := newClock()
	q := openQueue(t, openDB(t, t.TempDir()), "q", Config{Now: clock.Now})
	mustSend(t, q, "slow")
	m := mustReceive(t, q, 1, time.Second)
	clock.Advance(time.Minute)
	if err := q.Delete(context.Background(), m[0].ReceiptHandle); err != nil {
		t.Fatal(err)
	}
	if msgs := mustReceive(t, q, 1, time.Second); len(msgs) != 0 {
		t.Fatal("deleted message delivered")
	}
}

func TestZeroVisibilityTimeoutNeverRepeatsInOneBatch(t *testing.T) {
	clock := newClock()
	q := openQueue(t, openDB(t, t.TempDir()), "q", Config{Now: clock.Now})
	mustSend(t, q, "a", "b")
	if got := bodies(mustReceive(t, q, 10, 0)); got != "a,b" {
		t.Fatalf("batch = %q", got)
	}
	// Visible again at once, as in SQS.
	again := mustReceive(t, q, 10, 0)
	if got := bodies(again); got != "a,b" || again[0].ReceiveCount != 2 {
		t.Fatalf("second batch = %q (%+v)", got, again)
	}
}

func TestChangeVisibility(t *testing.T) {
	clock := newClock()
	q := openQueue(t, openDB(t, t.TempDir()), "q", Config{Now: clock.Now})
	ctx := context.Background()
	mustSend(t, q, "a")
	m := mustReceive(t, q, 1, time.Hour)

	if err := q.ChangeVisibility(ctx, m[0].ReceiptHandle, 0); err != nil {
		t.Fatal(err)
	}
	m = mustReceive(t, q, 1, time.Second)
	if len(m) != 1 || m[0].ReceiveCount != 2 {
		t.Fatalf("after visibility 0: %+v", m)
	}
	// Extend a slow job's visibility.
	if err := q.ChangeVisibility(ctx, m[0].ReceiptHandle, 10*time.Minute); err != nil {
		t.Fatal(err)
	}
	clock.Advance(5 * time.Minute)
	if got := mustReceive(t, q, 1, time.Second); len(got) != 0 {
		t.Fatal("visible before the extended timeout")
	}
	if c := mustCounts(t, q); c.InFlight != 1 {
		t.Fatalf("counts = %+v", c)
	}
	clock.Advance(5 * time.Minute)
	if got := mustReceive(t, q, 1, time.Second); len(got) != 1 {
		t.Fatal("not visible after the extended timeout")
	}
	if err := q.ChangeVisibility(ctx, m[0].ReceiptHandle, MaxVisibilityTimeout+time.Second); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("too long: err = %v", err)
	}
}

func TestDelay(t *testing.T) {
	clock := newClock()
	q := openQueue(t, openDB(t, t.TempDir()), "q", Config{Now: clock.Now})
	ctx := context.Background()
	if _, err := q.Send(ctx, []byte("later"), SendOptions{Delay: 10 * time.Second}); err != nil {
		t.Fatal(err)
	}
	mustSend(t, q, "now")
	if c := mustCounts(t, q); c != (Counts{Visible: 1, Delayed: 1}) {
		t.Fatalf("counts = %+v", c)
	}
	if got := bodies(mustReceive(t, q, 10, time.Minute)); got != "now" {
		t.Fatalf("before delay: %q", got)
	}
	clock.Advance(10 * time.Second)
	if got := bodies(mustReceive(t, q, 10, time.Minute)); got != "later" {
		t.Fatalf("after delay: %q", got)
	}
}

func TestDedup(t *testing.T) {
	ctx := context.Background()
	t.Run("same id never enqueues twice", func(t *testing.T) {
		clock := newClock()
		q := openQueue(t, openDB(t, t.TempDir()), "q", Config{Now: clock.Now})
		first, err := q.Send(ctx, []byte("sign person 1"), SendOptions{DedupID: "person-1"})
		if err != nil || first.Duplicate {
			t.Fatalf("first send = %+v, %v", first, err)
		}
		m := mustReceive(t, q, 1, time.Minute)
		if m[0].DedupID != "person-1" {
			t.Fatalf("DedupID = %q", m[0].DedupID)
		}
		if err := q.Delete(ctx, m[0].ReceiptHandle); err != nil {
			t.Fatal(err)
		}
		clock.Advance(365 * 24 * time.Hour)
		again, err := q.Send(ctx, []byte("sign person 1 again"), SendOptions{DedupID: "person-1"})
		if err != nil {
			t.Fatal(err)
		}
		if !again.Duplicate || again.ID != first.ID {
			t.Fatalf("resend = %+v, want duplicate of %s", again, first.ID)
		}
		if c := mustCounts(t, q); c != (Counts{}) {
			t.Fatalf("duplicate enqueued: %+v", c)
		}
	})
	t.Run("within one batch", func(t *testing.T) {
		q := openQueue(t, openDB(t, t.TempDir()), "q", Config{})
		res, err := q.SendBatch(ctx, []Outgoing{
			{Body: []byte("x"), SendOptions: SendOptions{DedupID: "k"}},
			{Body: []byte("y"), SendOptions: SendOptions{DedupID: "k"}},
			{Body: []byte("z")},
			{Body: []byte("z")}, // no dedup id: both enqueue
		})
		if err != nil {
			t.Fatal(err)
		}
		if res[0].Duplicate || !res[1].Duplicate || res[1].ID != res[0].ID || res[2].Duplicate || res[3].Duplicate || res[2].ID == res[3].ID {
			t.Fatalf("results = %+v", res)
		}
		if got := bodies(mustReceive(t, q, 10, time.Minute)); got != "x,z,z" {
			t.Fatalf("bodies = %q", got)
		}
	})
	t.Run("window expires", func(t *testing.T) {
		clock := newClock()
		q := openQueue(t, openDB(t, t.TempDir()), "q", Config{Now: clock.Now, DedupWindow: 5 * time.Minute})
		a, _ := q.Send(ctx, []byte("a"), SendOptions{DedupID: "k"})
		clock.Advance(5*time.Minute - time.Nanosecond)
		if dup, _ := q.Send(ctx, []byte("b"), SendOptions{DedupID: "k"}); !dup.Duplicate {
			t.Fatal("deduplicated only within the window")
		}
		clock.Advance(time.Nanosecond)
		b, err := q.Send(ctx, []byte("c"), SendOptions{DedupID: "k"})
		if err != nil || b.Duplicate || b.ID == a.ID {
			t.Fatalf("after the window: %+v, %v", b, err)
		}
		// The new entry has its own window, not cut short by the old one's expiry.
		clock.Advance(time.Minute)
		if dup, _ := q.Send(ctx, []byte("d"), SendOptions{DedupID: "k"}); !dup.Duplicate || dup.ID != b.ID {
			t.Fatalf("renewed window: %+v", dup)
		}
		clock.Advance(time.Hour)
		if _, err := q.Send(ctx, []byte("e"), SendOptions{DedupID: "other"}); err != nil {
			t.Fatal(err)
		}
		if n := dedupEntries(t, q); n != 1 {
			t.Fatalf("%d dedup entries left, want the expired one trimmed", n)
		}
	})
}

func dedupEntries(t *testing.T, q *Queue) int {
	n := 0
	err := q.view(context.Background(), "test", func(b buckets) error {
		n = b.dedup.Stats().KeyN
		if e := b.dedupExp.Stats().KeyN; e != n {
			return fmt.Errorf("dedup has %d entries, its expiry index %d", n, e)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestDeadLetterAfterMaxReceives(t *testing.T) {
	clock := newClock()
	q := openQueue(t, openDB(t, t.TempDir()), "q", Config{Now: clock.Now, MaxReceiveCount: 3})
	ctx := context.Background()
	mustSend(t, q, "poison")
	var last Message
	for i := 1; i <= 3; i++ {
		m := mustReceive(t, q, 1, time.Second)
		if len(m) != 1 || string(m[0].Body) != "poison" || m[0].ReceiveCount != i {
			t.Fatalf("receive %d = %+v", i, m)
		}
		last = m[0]
		clock.Advance(time.Second)
	}
	mustSend(t, q, "fine")
	// The fourth receive moves poison to the dead letters and hands out the next one.
	m := mustReceive(t, q, 1, time.Minute)
	if got := bodies(m); got != "fine" {
		t.Fatalf("after max receives: %q", got)
	}
	if c := mustCounts(t, q); c != (Counts{InFlight: 1, Dead: 1}) {
		t.Fatalf("counts = %+v", c)
	}
	if err := q.Delete(ctx, last.ReceiptHandle); !errors.Is(err, ErrStaleReceipt) {
		t.Fatalf("delete of a dead letter's receipt: %v", err)
	}
	dead, err := q.ListDead(ctx, "", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(dead) != 1 || dead[0].ID != last.ID || string(dead[0].Body) != "poison" || dead[0].ReceiveCount != 3 || !dead[0].DeadAt.Equal(clock.Now()) {
		t.Fatalf("dead letters = %+v", dead)
	}

	n, err := q.Redrive(ctx, []string{dead[0].ID})
	if err != nil || n != 1 {
		t.Fatalf("redrive = %d, %v", n, err)
	}
	m = mustReceive(t, q, 1, time.Second)
	if len(m) != 1 || m[0].ID != last.ID || m[0].ReceiveCount != 1 {
		t.Fatalf("redriven message = %+v", m)
	}
	if err := q.Delete(ctx, last.ReceiptHandle); !errors.Is(err, ErrStaleReceipt) {
		t.Fatalf("pre-death receipt after redrive: %v", err)
	}
	if c := mustCounts(t, q); c.Dead != 0 || c.InFlight != 2 {
		t.Fatalf("counts = %+v", c)
	}
	if _, err := q.Redrive(ctx, []string{dead[0].ID}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("redrive of a live message: %v", err)
	}
}

func TestDeadLetterPagingRedriveAllDeleteDead(t *testing.T) {
	clock := newClock()
	q := openQueue(t, openDB(t, t.TempDir()), "q", Config{Now: clock.Now, MaxReceiveCount: 1})
	ctx := context.Background()
	const n = 25
	for i := range n {
		mustSend(t, q, fmt.Sprint(i))
	}
	mustReceive(t, q, n, time.Second)
	clock.Advance(time.Second)
	if got := mustReceive(t, q, n, time.Second); len(got) != 0 {
		t.Fatalf("received %d messages past their receive count", len(got))
	}
	var all []DeadMessage
	after := ""
	for {
		page, err := q.ListDead(ctx, after, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		all = append(all, page...)
		after = page[len(page)-1].ID
	}
	if len(all) != n {
		t.Fatalf("listed %d dead letters, want %d", len(all), n)
	}
	for i, d := range all {
		if string(d.Body) != fmt.Sprint(i) {
			t.Fatalf("dead letter %d = %q: not in send order", i, d.Body)
		}
	}
	removed, err := q.DeleteDead(ctx, []string{all[0].ID, all[1].ID, all[0].ID})
	if err != nil || removed != 2 {
		t.Fatalf("delete dead = %d, %v", removed, err)
	}
	moved, err := q.RedriveAll(ctx)
	if err != nil || moved != n-2 {
		t.Fatalf("redrive all = %d, %v", moved, err)
	}
	if c := mustCounts(t, q); c != (Counts{Visible: n - 2}) {
		t.Fatalf("counts = %+v", c)
	}
}

func TestRestartLosesNothing(t *testing.T) {
	dir := t.TempDir()
	clock := newClock()
	cfg := Config{Now: clock.Now, MaxReceiveCount: 5}
	ctx := context.Background()

	db := openDB(t, dir)
	q := openQueue(t, db, "q", cfg)
	for i := range 100 {
		mustSend(t, q, fmt.Sprint(i))
	}
	if _, err := q.Send(ctx, []byte("delayed"), SendOptions{Delay: time.Minute, DedupID: "d1"}); err != nil {
		t.Fatal(err)
	}
	// A worker receives ten messages and dies before deleting them.
	abandoned := mustReceive(t, q, 10, 30*time.Second)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = openDB(t, dir)
	q = openQueue(t, db, "q", cfg)
	if c := mustCounts(t, q); c != (Counts{Visible: 90, InFlight: 10, Delayed: 1}) {
		t.Fatalf("counts after restart = %+v", c)
	}
	if dup, err := q.Send(ctx, []byte("delayed"), SendOptions{DedupID: "d1"}); err != nil || !dup.Duplicate {
		t.Fatalf("dedup forgotten across restart: %+v %v", dup, err)
	}
	clock.Advance(time.Minute)
	seen := map[string]int{}
	for {
		msgs := mustReceive(t, q, 7, time.Minute)
		if len(msgs) == 0 {
			break
		}
		for _, m := range msgs {
			seen[string(m.Body)] = m.ReceiveCount
			if err := q.Delete(ctx, m.ReceiptHandle); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(seen) != 101 {
		t.Fatalf("received %d distinct messages after restart, want 101", len(seen))
	}
	for _, m := range abandoned {
		if seen[string(m.Body)] != 2 {
			t.Errorf("abandoned message %q: receive count %d, want 2", m.Body, seen[string(m.Body)])
		}
	}
	for _, m := range abandoned {
		if err := q.Delete(ctx, m.ReceiptHandle); !errors.Is(err, ErrStaleReceipt) {
			t.Errorf("pre-crash receipt: %v", err)
		}
	}
}

func TestOrderRoughlyFIFOAcrossRedelivery(t *testing.T) {
	clock := newClock()
	q := openQueue(t, openDB(t, t.TempDir()), "q", Config{Now: clock.Now})
	mustSend(t, q, "old")
	mustReceive(t, q, 1, time.Second) // abandoned
	clock.Advance(500 * time.Millisecond)
	mustSend(t, q, "newer")
	clock.Advance(time.Second)
	mustSend(t, q, "newest")
	// "old" became visible (t+1s) after "newer" was sent (t+0.5s): order by visibility.
	if got := bodies(mustReceive(t, q, 10, time.Second)); got != "newer,old,newest" {
		t.Fatalf("order = %q", got)
	}
}

func TestQueuesAreSeparate(t *testing.T) {
	db := openDB(t, t.TempDir())
	a := openQueue(t, db, "a", Config{})
	b := openQueue(t, db, "b", Config{})
	mustSend(t, a, "for a")
	m := mustReceive(t, a, 1, time.Minute)
	if got := mustReceive(t, b, 10, time.Minute); len(got) != 0 {
		t.Fatal("queue b received queue a's message")
	}
	if err := b.Delete(context.Background(), m[0].ReceiptHandle); !errors.Is(err, ErrBadReceipt) {
		t.Fatalf("a's receipt on b: %v", err)
	}
	names, err := Names(db)
	if err != nil || strings.Join(names, ",") != "a,b" {
		t.Fatalf("Names = %v, %v", names, err)
	}
}

func TestValidation(t *testing.T) {
	db := openDB(t, t.TempDir())
	q := openQueue(t, db, "q", Config{})
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"", ErrInvalidName},
		{strings.Repeat("a", MaxNameLength+1), ErrInvalidName},
		{"has space", ErrInvalidName},
		{"dots.fifo", ErrInvalidName},
	} {
		if _, err := Open(db, tc.name, Config{}); !errors.Is(err, tc.err) {
			t.Errorf("Open(%q): err = %v, want %v", tc.name, err, tc.err)
		}
	}
	if _, err := Open(db, "ok", Config{MaxReceiveCount: -1}); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("negative MaxReceiveCount: %v", err)
	}

	for _, tc := range []struct {
		desc  string
		msg   Outgoing
		field string
	}{
		{"empty body", Outgoing{Body: nil}, "body"},
		{"body too large", Outgoing{Body: []byte(strings.Repeat("x", MaxBodyBytes+1))}, "body"},
		{"body not UTF-8", Outgoing{Body: []byte{0xff, 0xfe}}, "body"},
		{"dedup id too long", Outgoing{Body: []byte("x"), SendOptions: SendOptions{DedupID: strings.Repeat("d", MaxDedupIDLength+1)}}, "dedup id"},
		{"dedup id with space", Outgoing{Body: []byte("x"), SendOptions: SendOptions{DedupID: "a b"}}, "dedup id"},
		{"negative delay", Outgoing{Body: []byte("x"), SendOptions: SendOptions{Delay: -time.Second}}, "delay"},
		{"delay too long", Outgoing{Body: []byte("x"), SendOptions: SendOptions{Delay: MaxDelay + time.Second}}, "delay"},
	} {
		_, err := q.SendBatch(ctx, []Outgoing{{Body: []byte("good")}, tc.msg})
		if !errors.Is(err, ErrInvalidMessage) || !strings.Contains(err.Error(), "message 1: ") || !strings.Contains(err.Error(), tc.field+":") {
			t.Errorf("%s: err = %v, want ErrInvalidMessage naming message 1's %s", tc.desc, err, tc.field)
		}
	}
	if c := mustCounts(t, q); c != (Counts{}) {
		t.Fatalf("a batch with an invalid message sent something: %+v", c)
	}
	// The largest allowed body and a 128-character dedup id are fine.
	if _, err := q.Send(ctx, []byte(strings.Repeat("é", MaxBodyBytes/2)), SendOptions{DedupID: strings.Repeat("~", MaxDedupIDLength), Delay: MaxDelay}); err != nil {
		t.Fatalf("limits: %v", err)
	}

	for _, tc := range []struct {
		max int
		vt  time.Duration
	}{{0, time.Second}, {MaxReceiveBatch + 1, time.Second}, {1, -time.Second}, {1, MaxVisibilityTimeout + 1}} {
		if _, err := q.ReceiveBatch(ctx, tc.max, tc.vt); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("ReceiveBatch(%d, %v): err = %v", tc.max, tc.vt, err)
		}
	}
	for _, r := range []string{"", "zz", strings.Repeat("0", receiptLen), strings.Repeat("G", receiptLen), strings.ToUpper(q.formatReceipt(1, 1))} {
		if err := q.Delete(ctx, r); !errors.Is(err, ErrBadReceipt) {
			t.Errorf("Delete(%q): err = %v, want ErrBadReceipt", r, err)
		}
	}
	for _, id := range []string{"1", "000000000000000G", "000000000000000A"} {
		if _, err := q.Redrive(ctx, []string{id}); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("Redrive(%q): err = %v", id, err)
		}
	}
	if _, err := q.ListDead(ctx, "", 0); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("ListDead limit 0: %v", err)
	}
}

func TestCancelledContext(t *testing.T) {
	q := openQueue(t, openDB(t, t.TempDir()), "q", Config{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := q.Send(ctx, []byte("x"), SendOptions{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Send: %v", err)
	}
	if _, err := q.ReceiveBatch(ctx, 1, time.Second); !errors.Is(err, context.Canceled) {
		t.Fatalf("ReceiveBatch: %v", err)
	}
}

func TestConcurrentSendersAndReceivers(t *testing.T) {
	q := openQueue(t, openDB(t, t.TempDir()), "q", Config{})
	ctx := context.Background()
	const senders, perSender, receivers = 4, 150, 4
	total := senders * perSender

	var sendWG sync.WaitGroup
	for s := range senders {
		sendWG.Add(1)
		go func() {
			defer sendWG.Done()
			for i := 0; i < perSender; {
				if s%2 == 0 { // half send one by one, half in batches
					if _, err := q.Send(ctx, []byte(fmt.Sprintf("%d-%d", s, i)), SendOptions{}); err != nil {
						t.Error(err)
						return
					}
					i++
					continue
				}
				batch := make([]Outgoing, 0, 10)
				for ; i < perSender && len(batch) < 10; i++ {
					batch = append(batch, Outgoing{Body: []byte(fmt.Sprintf("%d-%d", s, i))})
				}
				if _, err := q.SendBatch(ctx, batch); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}

	var (
		mu   sync.Mutex
		seen = map[string]int{}
	)
	var recvWG sync.WaitGroup
	for range receivers {
		recvWG.Add(1)
		go func() {
			defer recvWG.Done()
			for {
				msgs, err := q.ReceiveBatch(ctx, 8, time.Hour)
				if err != nil {
					t.Error(err)
					return
				}
				receipts := make([]string, len(msgs))
				mu.Lock()
				for i, m := range msgs {
					seen[string(m.Body)]++
					receipts[i] = m.ReceiptHandle
				}
				n := len(seen)
				mu.Unlock()
				if errs, err := q.DeleteBatch(ctx, receipts); err != nil {
					t.Error(err)
					return
				} else {
					for _, e := range errs {
						if e != nil {
							t.Error(e)
						}
					}
				}
				if n == total {
					return
				}
				if len(msgs) == 0 {
					time.Sleep(time.Millisecond)
				}
			}
		}()
	}
	sendWG.Wait()
	recvWG.Wait() // a lost message keeps the receivers looking until the test times out
	if len(seen) != total {
		t.Fatalf("received %d distinct messages, want %d", len(seen), total)
	}
	for body, n := range seen {
		if n != 1 {
			t.Errorf("%s received %d times", body, n)
		}
	}
	if c := mustCounts(t, q); c != (Counts{}) {
		t.Fatalf("counts = %+v", c)
	}
}

func TestDeleteAndReceive(t *testing.T) {
	clock := newClock()
	q := openQueue(t, openDB(t, t.TempDir()), "q", Config{Now: clock.Now})
	ctx := context.Background()
	mustSend(t, q, "1", "2", "3", "4")
	first := mustReceive(t, q, 2, time.Minute)
	errs, next, err := q.DeleteAndReceive(ctx, []string{first[0].ReceiptHandle, first[1].ReceiptHandle, "bad"}, 10, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if errs[0] != nil || errs[1] != nil || !errors.Is(errs[2], ErrBadReceipt) {
		t.Fatalf("delete errors = %v", errs)
	}
	if got := bodies(next); got != "3,4" {
		t.Fatalf("next batch = %q", got)
	}
	if c := mustCounts(t, q); c != (Counts{InFlight: 2}) {
		t.Fatalf("counts = %+v", c)
	}
	// Deleting the last ones commits even though nothing is left to receive.
	errs, next, err = q.DeleteAndReceive(ctx, []string{next[0].ReceiptHandle, next[1].ReceiptHandle}, 10, time.Minute)
	if err != nil || errs[0] != nil || errs[1] != nil || len(next) != 0 {
		t.Fatalf("DeleteAndReceive = %v, %v, %v", errs, next, err)
	}
	clock.Advance(time.Hour)
	if c := mustCounts(t, q); c != (Counts{}) {
		t.Fatalf("counts = %+v", c)
	}
}
