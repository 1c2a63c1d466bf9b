package awsbudget

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// fakeDB is the ops table as the budget uses it: one conditional counter per key.
type fakeDB struct {
	mu       sync.Mutex
	n        map[string]int // pk -> tokens granted
	ttl      map[string]string
	calls    int
	maxK     int
	failures []error                             // returned by the next calls, in order
	hook     func(ctx context.Context, call int) // runs before a call is applied (unlocked)
}

func newFakeDB() *fakeDB { return &fakeDB{n: map[string]int{}, ttl: map[string]string{}} }

func (f *fakeDB) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	f.mu.Lock()
	f.calls++
	call, hook := f.calls, f.hook
	f.mu.Unlock()
	if hook != nil {
		hook(ctx, call)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.failures) > 0 {
		err := f.failures[0]
		f.failures = f.failures[1:]
		return nil, err
	}
	if got := *in.TableName; got != "ops" {
		return nil, fmt.Errorf("table %q", got)
	}
	pk := in.Key[attrPK].(*types.AttributeValueMemberS).Value
	if sk := in.Key[attrSK].(*types.AttributeValueMemberS).Value; sk != skWindow {
		return nil, fmt.Errorf("sk %q", sk)
	}
	k := num(in.ExpressionAttributeValues[":k"])
	most := num(in.ExpressionAttributeValues[":max"])
	f.maxK = max(f.maxK, k)
	n, exists := f.n[pk]
	if exists && n > most {
		return nil, &types.ConditionalCheckFailedException{Item: map[string]types.AttributeValue{attrN: &types.AttributeValueMemberN{Value: strconv.Itoa(n)}}}
	}
	f.n[pk] = n + k
	f.ttl[pk] = in.ExpressionAttributeValues[":ttl"].(*types.AttributeValueMemberN).Value
	return &dynamodb.UpdateItemOutput{}, nil
}

func num(v types.AttributeValue) int {
	n, err := strconv.Atoi(v.(*types.AttributeValueMemberN).Value)
	if err != nil {
		panic(err)
	}
	return n
}

// perWindow sums the granted tokens per second, and returns the largest shard count.
func (f *fakeDB) perWindow() (map[int64]int, map[string]int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	sums := map[int64]int{}
	shards := map[string]int{}
	for pk, n := range f.n {
		parts := strings.Split(strings.TrimPrefix(pk, pkPrefix), "#")
		win, err := strconv.ParseInt(parts[0], 10, 64)
		if err != nil || len(parts) != 2 || len(parts[0]) != 12 || len(parts[1]) != 3 {
			panic("bad key " + pk)
		}
		sums[win] += n
		shards[pk] = n
	}
	return sums, shards
}

func (f *fakeDB) count(win int64) int {
	sums, _ := f.perWindow()
	return sums[win]
}

func (f *fakeDB) callCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// fakeClock stands still but for sleeps, which move it on to their end.
type fakeClock struct {
	mu     sync.Mutex
	t      time.Time
	sleeps int
}

var t0 = time.Unix(1_700_000_000, int64(100*time.Millisecond))

func newClock() *fakeClock { return &fakeClock{t: t0} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	c.sleeps++
	c.t = c.t.Add(d)
	c.mu.Unlock()
	runtime.Gosched()
	return nil
}

func (c *fakeClock) sleepCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sleeps
}

func newBudget(t *testing.T, db API, clk *fakeClock, cfg Config) *Budget {
	t.Helper()
	cfg.Table = "ops"
	cfg.Now, cfg.Sleep = clk.Now, clk.Sleep
	b, err := New(db, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestConfigInvalid(t *testing.T) {
	db := newFakeDB()
	for _, tc := range []struct {
		name   string
		client API
		cfg    Config
		want   string
	}{
		{"no client", nil, Config{Table: "ops", PerSecond: 10}, "client"},
		{"no table", db, Config{PerSecond: 10}, "table"},
		{"zero rate", db, Config{Table: "ops"}, "per second"},
		{"negative rate", db, Config{Table: "ops", PerSecond: -5}, "per second"},
		{"negative reserve", db, Config{Table: "ops", PerSecond: 10, Reserve: -1}, "reserve"},
		{"reserve the whole quota", db, Config{Table: "ops", PerSecond: 10, Reserve: 10}, "reserve"},
		{"negative shards", db, Config{Table: "ops", PerSecond: 10, Shards: -1}, "shards"},
		{"more shards than tokens", db, Config{Table: "ops", PerSecond: 10, Shards: 11}, "shards"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.client, tc.cfg)
			if !errors.Is(err, vaxpass.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New: %v, want ErrInvalid about %q", err, tc.want)
			}
		})
	}
	for _, q := range []int{1, 2, 9, 10, 300, 3000} {
		if _, err := New(db, Config{Table: "ops", PerSecond: q}); err != nil {
			t.Errorf("New with %d/s and defaults: %v", q, err)
		}
	}
}

func TestTakeInvalid(t *testing.T) {
	b := newBudget(t, newFakeDB(), newClock(), Config{PerSecond: 20}) // reserve 2
	ctx := t.Context()
	for _, tc := range []struct {
		class Class
		n     int
	}{{Interactive, 0}, {Interactive, 21}, {Bulk, 19}, {Bulk, -1}, {Class(7), 1}} {
		if err := b.Take(ctx, tc.class, tc.n); !errors.Is(err, vaxpass.ErrInvalid) {
			t.Errorf("Take(%v, %d): %v, want ErrInvalid", tc.class, tc.n, err)
		}
	}
	if err := b.For(Class(7)).Wait(ctx); !errors.Is(err, vaxpass.ErrInvalid) {
		t.Errorf("Wait of an unknown class: %v, want ErrInvalid", err)
	}
	if got := b.MaxTake(Bulk); got != 18 {
		t.Errorf("MaxTake(Bulk) = %d, want 18", got)
	}
}

// TestClassLimits: bulk stops at Q-Reserve in a second, interactive goes on to Q.
func TestClassLimits(t *testing.T) {
	db, clk := newFakeDB(), newClock()
	b := newBudget(t, db, clk, Config{PerSecond: 20}) // reserve 2
	ctx := t.Context()
	w0 := t0.Unix()
	for i := range 18 {
		if err := b.Take(ctx, Bulk, 1); err != nil {
			t.Fatal(err)
		}
		if clk.sleepCount() != 0 {
			t.Fatalf("bulk take %d slept", i+1)
		}
	}
	bulk := b.For(Bulk)
	done := make(chan error, 1)
	go func() { done <- bulk.Wait(ctx) }()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if clk.sleepCount() == 0 || db.count(w0) != 18 || db.count(w0+1) != 1 {
		t.Fatalf("the 19th bulk token: %d sleeps, %d tokens in the first second and %d in the next, want it in the next", clk.sleepCount(), db.count(w0), db.count(w0+1))
	}

	// Second w0+1 holds 1 bulk token: interactive takes all the rest, bulk only 17 more.
	clk.set(time.Unix(w0+1, 0).Add(100 * time.Millisecond))
	sleeps := clk.sleepCount()
	if err := b.Take(ctx, Bulk, 17); err != nil {
		t.Fatal(err)
	}
	if err := b.Take(ctx, Interactive, 2); err != nil {
		t.Fatal(err)
	}
	if clk.sleepCount() != sleeps {
		t.Fatalf("interactive did not find the reserve: it slept")
	}
	if err := b.For(Interactive).Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if clk.sleepCount() == sleeps || db.count(w0+1) != 20 || db.count(w0+2) != 1 {
		t.Errorf("interactive beyond the quota: %d tokens in second 1, %d in second 2", db.count(w0+1), db.count(w0+2))
	}
	db.mu.Lock()
	for pk, ttl := range db.ttl {
		win, _ := strconv.ParseInt(pk[len(pkPrefix):len(pkPrefix)+12], 10, 64)
		if ttl != strconv.FormatInt(win+300, 10) {
			t.Errorf("%s: ttl %s, want %d", pk, ttl, win+300)
		}
	}
	db.mu.Unlock()
}

// TestBulkBorrowsTheUnusedReserve: from BorrowAfter into a second on, bulk work takes the
// part of the reserve interactive work has not used, never more than the quota; before
// it, it leaves the reserve alone.
func TestBulkBorrowsTheUnusedReserve(t *testing.T) {
	db, clk := newFakeDB(), newClock()
	b := newBudget(t, db, clk, Config{PerSecond: 20}) // reserve 2
	ctx := t.Context()
	w0 := t0.Unix()
	if err := b.Take(ctx, Bulk, 18); err != nil {
		t.Fatal(err)
	}
	if err := b.Take(ctx, Interactive, 1); err != nil {
		t.Fatal(err)
	}
	clk.set(time.Unix(w0, 0).Add(BorrowAfter - time.Millisecond))
	if err := b.Take(ctx, Bulk, 1); err != nil {
		t.Fatal(err)
	}
	if clk.sleepCount() == 0 || db.count(w0) != 19 {
		t.Fatalf("bulk took the reserve before %s into the second: %d tokens in it", BorrowAfter, db.count(w0))
	}
	// The next second: bulk 18, interactive 1, then half a second on bulk takes the last one.
	w1 := w0 + 1
	clk.set(time.Unix(w1, 0).Add(100 * time.Millisecond))
	if err := b.Take(ctx, Bulk, 17); err != nil { // 1 taken above after the sleep
		t.Fatal(err)
	}
	if err := b.Take(ctx, Interactive, 1); err != nil {
		t.Fatal(err)
	}
	sleeps := clk.sleepCount()
	clk.set(time.Unix(w1, 0).Add(BorrowAfter))
	if err := b.Take(ctx, Bulk, 1); err != nil {
		t.Fatal(err)
	}
	if clk.sleepCount() != sleeps || db.count(w1) != 20 {
		t.Fatalf("bulk did not borrow the unused reserve: %d tokens in the second, %d sleeps", db.count(w1), clk.sleepCount()-sleeps)
	}
	if err := b.Take(ctx, Bulk, 1); err != nil {
		t.Fatal(err)
	}
	if clk.sleepCount() == sleeps || db.count(w1) != 20 {
		t.Errorf("bulk went past the quota: %d tokens in the second", db.count(w1))
	}
}

// TestShards: a large quota is split over items; the classes' limits add up to the
// quota and the bulk share.
func TestShards(t *testing.T) {
	db, clk := newFakeDB(), newClock()
	b := newBudget(t, db, clk, Config{PerSecond: 1201}) // 3 shards: 401, 400, 400; reserve 120: 40 each
	ctx := t.Context()
	for _, n := range []int{361, 360, 360} {
		if err := b.Take(ctx, Bulk, n); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		if err := b.Take(ctx, Interactive, 40); err != nil {
			t.Fatal(err)
		}
	}
	if clk.sleepCount() != 0 {
		t.Fatalf("slept before the quota was used")
	}
	_, shards := db.perWindow()
	if len(shards) != 3 || db.count(t0.Unix()) != 1201 {
		t.Fatalf("%d tokens on %d items, want 1201 on 3: %v", db.count(t0.Unix()), len(shards), shards)
	}
	if err := b.Take(ctx, Interactive, 1); err != nil {
		t.Fatal(err)
	}
	if clk.sleepCount() == 0 || db.count(t0.Unix()) != 1201 {
		t.Errorf("a token beyond the quota in the same second")
	}
}

// TestConcurrentLimits: three budgets (three Lambda instances) on one table never grant
// more than the class's limit in a second, and every token granted is either used,
// dropped as void, or still spare.
func TestConcurrentLimits(t *testing.T) {
	for _, tc := range []struct {
		name  string
		class func(i int) Class
		limit int
	}{
		// Bulk alone: 27 a second until BorrowAfter, then the unused reserve too (the
		// first half of a second is TestBulkBorrowsTheUnusedReserve's).
		{"bulk", func(int) Class { return Bulk }, 30},
		{"mixed", func(i int) Class { return Class(i % 2) }, 30},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db, clk := newFakeDB(), newClock()
			var budgets []*Budget
			for range 3 {
				budgets = append(budgets, newBudget(t, db, clk, Config{PerSecond: 30, Shards: 2})) // reserve 3
			}
			var used atomic.Int64
			var wg sync.WaitGroup
			for i, b := range budgets {
				for j := range 8 {
					wg.Go(func() {
						class := tc.class(i*8 + j)
						for k := range 40 {
							var err error
							if k%4 == 0 {
								err = b.Take(t.Context(), class, 1+k%3)
								if err == nil {
									used.Add(int64(1 + k%3))
								}
							} else if err = b.For(class).Wait(t.Context()); err == nil {
								used.Add(1)
							}
							if err != nil {
								t.Error(err)
								return
							}
						}
					})
				}
			}
			wg.Wait()
			sums, _ := db.perWindow()
			total := 0
			for win, n := range sums {
				total += n
				if n > tc.limit {
					t.Errorf("second %d: %d tokens, limit %d", win, n, tc.limit)
				}
			}
			var void, spare int
			for _, b := range budgets {
				void += int(b.Stats().Void)
				for _, g := range b.groups {
					g.mu.Lock()
					spare += g.spare
					g.mu.Unlock()
				}
			}
			if total != int(used.Load())+void+spare {
				t.Errorf("%d tokens granted, %d used + %d void + %d spare", total, used.Load(), void, spare)
			}
			t.Logf("%d tokens over %d seconds, %d UpdateItems, %d void", total, len(sums), db.callCount(), void)
		})
	}
}

// gatedDB holds its first UpdateItem until released.
func gatedDB() (*fakeDB, chan struct{}) {
	db, release := newFakeDB(), make(chan struct{})
	db.hook = func(ctx context.Context, call int) {
		if call == 1 {
			<-release
		}
	}
	return db, release
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func (g *group) liveCount() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.live
}

// TestBatching: concurrent Waits share leases of at most LeaseCap tokens, and no token
// is leased that no waiter takes.
func TestBatching(t *testing.T) {
	for _, tc := range []struct{ waiters, calls int }{{20, 2}, {60, 4}} { // 1 + ceil((waiters-1)/25)
		t.Run(strconv.Itoa(tc.waiters), func(t *testing.T) {
			db, release := gatedDB()
			b := newBudget(t, db, newClock(), Config{PerSecond: 100})
			w := b.For(Interactive)
			errs := make(chan error, tc.waiters)
			go func() { errs <- w.Wait(t.Context()) }()
			waitUntil(t, "the first lease", func() bool { return db.callCount() == 1 })
			for range tc.waiters - 1 {
				go func() { errs <- w.Wait(t.Context()) }()
			}
			waitUntil(t, "the waiters", func() bool { return b.groups[Interactive].liveCount() == tc.waiters })
			close(release)
			for range tc.waiters {
				if err := <-errs; err != nil {
					t.Fatal(err)
				}
			}
			if db.callCount() != tc.calls || db.maxK > LeaseCap || db.count(t0.Unix()) != tc.waiters {
				t.Errorf("%d waiters: %d UpdateItems (want %d), largest lease %d, %d tokens", tc.waiters, db.callCount(), tc.calls, db.maxK, db.count(t0.Unix()))
			}
			if s := b.Stats(); s.Leases != uint64(tc.calls) || s.Tokens != uint64(tc.waiters) {
				t.Errorf("stats %+v", s)
			}
		})
	}
}

// TestPartialLease: a batched lease takes the room left in a second instead of losing it.
func TestPartialLease(t *testing.T) {
	db, release := gatedDB()
	clk := newClock()
	b := newBudget(t, db, clk, Config{PerSecond: 10})
	w := b.For(Interactive)
	errs := make(chan error, 5)
	go func() { errs <- w.Wait(t.Context()) }()
	waitUntil(t, "the first lease", func() bool { return db.callCount() == 1 })
	db.mu.Lock()
	db.n[fmt.Sprintf("%s%012d#000", pkPrefix, t0.Unix())] = 7 // other instances took 7
	db.mu.Unlock()
	for range 4 {
		go func() { errs <- w.Wait(t.Context()) }()
	}
	waitUntil(t, "the waiters", func() bool { return b.groups[Interactive].liveCount() == 5 })
	close(release)
	for range 5 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	// The fake sleep is instant: a waiter woken late sees its token void and asks again.
	s := b.Stats()
	if db.count(t0.Unix()) != 10 || db.count(t0.Unix()+1) != 2+int(s.Void) {
		t.Errorf("%d tokens in the first second, %d in the next (%d void); want 10 and 2", db.count(t0.Unix()), db.count(t0.Unix()+1), s.Void)
	}
	if s.Denials == 0 {
		t.Errorf("stats %+v: no denial", s)
	}
}

func TestCancel(t *testing.T) {
	db := newFakeDB()
	clk := newClock()
	b, err := New(db, Config{Table: "ops", PerSecond: 10, Now: clk.Now, Sleep: func(ctx context.Context, d time.Duration) error {
		<-ctx.Done() // the next second never comes
		return ctx.Err()
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Take(t.Context(), Interactive, 10); err != nil {
		t.Fatal(err)
	}
	for name, take := range map[string]func(context.Context) error{
		"Take": func(ctx context.Context) error { return b.Take(ctx, Bulk, 1) },
		"Wait": b.For(Bulk).Wait,
	} {
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
		err := take(ctx)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s on a full second: %v, want the context's error", name, err)
		}
	}
	g := b.groups[Bulk]
	waitUntil(t, "the leaser to stop", func() bool {
		g.mu.Lock()
		defer g.mu.Unlock()
		return !g.leasing
	})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := b.For(Interactive).Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Wait with a canceled context: %v", err)
	}
	if db.count(t0.Unix()) != 10 {
		t.Errorf("%d tokens granted, want 10", db.count(t0.Unix()))
	}
}

// TestLeftWaiterToken: a token leased for a waiter that left goes to the next waiter.
func TestLeftWaiterToken(t *testing.T) {
	db := newFakeDB()
	leased := make(chan struct{})
	proceed := make(chan struct{})
	db.hook = func(ctx context.Context, call int) {
		if call == 1 {
			close(leased)
			<-proceed
		}
	}
	b := newBudget(t, db, newClock(), Config{PerSecond: 10})
	w := b.For(Interactive)
	ctx, cancel := context.WithCancel(t.Context())
	errs := make(chan error, 1)
	go func() { errs <- w.Wait(ctx) }()
	<-leased
	// The lease is in flight; the waiter leaves, another one comes.
	second := make(chan error, 1)
	go func() { second <- w.Wait(t.Context()) }()
	waitUntil(t, "the second waiter", func() bool { return b.groups[Interactive].liveCount() == 2 })
	cancel()
	if err := <-errs; !errors.Is(err, context.Canceled) {
		t.Fatalf("first waiter: %v", err)
	}
	close(proceed)
	if err := <-second; err != nil {
		t.Fatal(err)
	}
	if db.count(t0.Unix()) != 1 {
		t.Errorf("%d tokens leased for one waiter", db.count(t0.Unix()))
	}
}

func TestRetries(t *testing.T) {
	db := newFakeDB()
	db.failures = []error{
		&types.ProvisionedThroughputExceededException{Message: new("slow down")},
		&smithy.GenericAPIError{Code: "ThrottlingException", Fault: smithy.FaultClient},
		&smithy.GenericAPIError{Code: "InternalServerError", Fault: smithy.FaultServer},
	}
	b := newBudget(t, db, newClock(), Config{PerSecond: 10})
	if err := b.Take(t.Context(), Interactive, 1); err != nil {
		t.Fatal(err)
	}
	if s := b.Stats(); s.Retries != 3 || s.Tokens != 1 {
		t.Errorf("stats %+v, want 3 retries and 1 token", s)
	}

	gone := &types.ResourceNotFoundException{Message: new("no table")}
	db.failures = []error{gone, gone}
	if err := b.Take(t.Context(), Interactive, 1); !errors.As(err, new(*types.ResourceNotFoundException)) || errors.Is(err, vaxpass.ErrInvalid) {
		t.Errorf("Take on a missing table: %v", err)
	}
	if err := b.For(Bulk).Wait(t.Context()); !errors.As(err, new(*types.ResourceNotFoundException)) {
		t.Errorf("Wait on a missing table: %v", err)
	}

	throttled := &types.ProvisionedThroughputExceededException{Message: new("slow down")}
	db.failures = nil
	for range maxAttempts {
		db.failures = append(db.failures, throttled)
	}
	if err := b.Take(t.Context(), Interactive, 1); !errors.As(err, new(*types.ProvisionedThroughputExceededException)) {
		t.Errorf("Take throttled %d times: %v", maxAttempts, err)
	}
}

// TestLateGrant: tokens that arrive at the very end of their second are not used there.
func TestLateGrant(t *testing.T) {
	for name, take := range map[string]func(b *Budget) error{
		"Take": func(b *Budget) error { return b.Take(t.Context(), Bulk, 1) },
		"Wait": func(b *Budget) error { return b.For(Bulk).Wait(t.Context()) },
	} {
		t.Run(name, func(t *testing.T) {
			db, clk := newFakeDB(), newClock()
			db.hook = func(ctx context.Context, call int) {
				if call == 1 {
					clk.set(time.Unix(t0.Unix()+1, 0).Add(-Guard / 2))
				}
			}
			b := newBudget(t, db, clk, Config{PerSecond: 10})
			if err := take(b); err != nil {
				t.Fatal(err)
			}
			if s := b.Stats(); s.Void != 1 || db.count(t0.Unix()) != 1 || db.count(t0.Unix()+1) != 1 {
				t.Errorf("stats %+v; %d tokens in the first second, %d in the next", s, db.count(t0.Unix()), db.count(t0.Unix()+1))
			}
			if now := clk.Now(); now.Unix() != t0.Unix()+1 {
				t.Errorf("returned at %v, want in the next second", now)
			}
		})
	}
}

// TestSpareToken: a token leased for a waiter that left after the lease was sent serves
// the next Wait of the same second without another UpdateItem.
func TestSpareToken(t *testing.T) {
	db := newFakeDB()
	gates := []chan struct{}{make(chan struct{}), make(chan struct{})}
	db.hook = func(ctx context.Context, call int) {
		if call <= len(gates) {
			<-gates[call-1]
		}
	}
	b := newBudget(t, db, newClock(), Config{PerSecond: 10})
	w := b.For(Interactive)
	g := b.groups[Interactive]
	errs := make(chan error, 3)
	go func() { errs <- w.Wait(t.Context()) }() // A: leased alone
	waitUntil(t, "the first lease", func() bool { return db.callCount() == 1 })
	ctx, cancel := context.WithCancel(t.Context())
	left := make(chan error, 1)
	go func() { left <- w.Wait(ctx) }() // B: leaves during the second lease
	waitUntil(t, "B", func() bool { return g.liveCount() == 2 })
	go func() { errs <- w.Wait(t.Context()) }() // C
	waitUntil(t, "C", func() bool { return g.liveCount() == 3 })
	close(gates[0])
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the second lease", func() bool { return db.callCount() == 2 })
	cancel()
	if err := <-left; !errors.Is(err, context.Canceled) {
		t.Fatalf("B: %v", err)
	}
	close(gates[1])
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	if err := w.Wait(t.Context()); err != nil { // D: B's token
		t.Fatal(err)
	}
	if db.callCount() != 2 || db.count(t0.Unix()) != 3 {
		t.Errorf("%d UpdateItems, %d tokens for 3 waiters served; want 2 and 3", db.callCount(), db.count(t0.Unix()))
	}
}
