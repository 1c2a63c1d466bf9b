// Package awsbudget shares the account's KMS Sign quota between every Lambda instance of
// the stack (central signing, facility signing fan-out, renewal fan-out): at most
// PerSecond tokens are granted in any wall-clock second, whichever process asks, and bulk
// work leaves the last Reserve of them to interactive issuance for the first half of every
// second (BorrowAfter), so a facility's call always finds room within a second, and takes
// what interactive work left of them after that, so a quiet system's bulk work runs at
// the whole quota. A
// per-process token bucket (awskms.TokenBucket) cannot do that: N instances would each
// take the whole quota.
//
// # Items
//
// The counters live in the ops table (shared/store/awsops), one item per second and
// shard, expired by DynamoDB's TTL a few minutes after their second:
//
//	budget window  pk "KMSBUDGET#" + unix second (12 digits) + "#" + shard (3 digits)
//	               sk "WINDOW"        n N (tokens granted in that second), ttl N (epoch s)
//
// A lease is one conditional UpdateItem: ADD n :k if attribute_not_exists(n) OR
// n <= limit-k. A full window fails the condition; the taker then sleeps to the next
// second (plus a little jitter, so that the instances do not all write at the boundary)
// and tries again. A refused lease returns the item (ReturnValuesOnConditionCheckFailure
// ALL_OLD), so a batched lease takes what room is left instead of losing it.
//
// # Partitions
//
// Every write of a second goes to that second's items, and one item (one key) takes at
// most 1,000 WCU/s; a refused conditional write costs a WCU too. With one token per
// lease (Lambda instances with one signing at a time) a quota of 3,000/s would need 3,000
// writes/s on one item. The quota is therefore split into shards of at most ShardTokens
// (500) tokens per second, each its own item and partition key: at most ~500 grants plus
// the refusals of one second per item. A taker starts at a random shard and tries the
// others before it sleeps, so a window counts as full only when every shard is. The key
// is per second (not pk "KMSBUDGET" with the second as sort key) so that consecutive
// seconds do not share a partition either. Class limits are split the same way: shard i
// holds PerSecond/S (+1 for the first PerSecond%S shards) tokens, of which Reserve/S (+1)
// are kept for interactive work.
//
// # Batching
//
// For(class) adapts the budget to awskms.Budget (one token per Wait). Concurrent Waits of
// one process share leases: one goroutine per class leases as many tokens as there are
// waiters (at most LeaseCap) in one UpdateItem and hands them out first come first served.
// A waiter that leaves before its token arrives gives it to the next waiter; tokens
// nobody takes stay usable by the process until their second ends.
//
// # Clock
//
// Windows are wall-clock seconds (time.Now().Unix()). Lambda hosts keep their clocks
// within milliseconds of each other (Amazon Time Sync, NTP), so the instances agree on
// the windows. A grant is used only in the second it was granted for: a token that
// arrives within Guard (10 ms) of its second's end, or later, is dropped (Stats.Void) and
// the taker asks again, so no more than PerSecond tokens are returned in any second. A
// KMS request made right after a grant at the end of a second may still reach KMS in the
// next one: run PerSecond a little below the quota if KMS throttles at the boundary (the
// signers retry throttled calls anyway).
//
// DynamoDB throttling and transient errors are retried with backoff (beyond the SDK's own
// retries). A lease whose response was lost may have been counted without being granted:
// that loses capacity, it never exceeds the limit, so no awsretry.Watch is needed.
package awsbudget

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/vaxpass/vaxpass/shared/store/awskms"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// API is the part of the DynamoDB client the budget uses.
type API interface {
	UpdateItem(ctx context.Context, params *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
}

// Class is the priority of a taker.
type Class int

const (
	// Interactive work (a facility's signing call) may take every token of a second.
	Interactive Class = iota
	// Bulk work (backlog, renewal, reprocessing) leaves Reserve tokens of each second to
	// interactive work until BorrowAfter into the second.
	Bulk
)

func (c Class) String() string {
	switch c {
	case Interactive:
		return "interactive"
	case Bulk:
		return "bulk"
	}
	return "class(" + strconv.Itoa(int(c)) + ")"
}

// Tuning.
const (
	// ShardTokens is the most tokens per second one item (shard) holds when Config.Shards
	// is 0: its grants and refusals stay well below an item's 1,000 WCU/s.
	ShardTokens = 500
	// LeaseCap is the most tokens one batched lease takes.
	LeaseCap = 25
	// BorrowAfter: from this far into a second on, bulk work may take the part of the
	// reserve interactive work has not taken (limitsOf).
	BorrowAfter = 500 * time.Millisecond
	// Guard: a token arriving this close to its second's end (or later) is not used.
	Guard = 10 * time.Millisecond
	// jitter is the most added to a sleep to the next second.
	jitter = 20 * time.Millisecond
	// expireAfter is how long a window item lives after its second (TTL).
	expireAfter = 5 * time.Minute
	// callTimeout bounds one UpdateItem of a batched lease (its waiters may have no deadline).
	callTimeout = 10 * time.Second
	// Backoff of DynamoDB throttling and transient errors.
	maxAttempts = 6
	backoffBase = 25 * time.Millisecond
	backoffMax  = time.Second
)

// Key values and attribute names.
const (
	pkPrefix = "KMSBUDGET#"
	skWindow = "WINDOW"
	attrPK   = "pk"
	attrSK   = "sk"
	attrN    = "n"
	attrTTL  = "ttl"
)

// Config configures a Budget.
type Config struct {
	// Table is the ops table (pk S, sk S; TTL on ttl).
	Table string
	// PerSecond is the quota shared by every instance: tokens per wall-clock second.
	PerSecond int
	// Reserve is the part of PerSecond bulk work leaves to interactive work; 0: the
	// default, max(1, PerSecond/10) but at most PerSecond-1.
	Reserve int
	// Shards splits each second's tokens over this many items; 0: ceil(PerSecond /
	// ShardTokens). Every instance must use the same PerSecond, Reserve and Shards.
	Shards int
	// Now and Sleep default to time.Now and a timer sleep (tests replace them).
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
}

// Stats counts what a Budget did since New.
type Stats struct {
	Leases  uint64 // UpdateItems that granted tokens
	Tokens  uint64 // tokens granted by them
	Denials uint64 // UpdateItems refused: the shard's window was full for the class
	Sleeps  uint64 // times a taker slept to the next second: every shard was full
	Void    uint64 // tokens granted but not used: too late in their second, or no waiter left
	Retries uint64 // UpdateItems retried after DynamoDB throttling or a transient error
}

// Budget is the shared budget. It is safe for concurrent use.
type Budget struct {
	client API
	table  string
	q      int
	limits [2][]int // per class, per shard: the most tokens of a second
	now    func() time.Time
	sleep  func(ctx context.Context, d time.Duration) error
	groups [2]*group

	leases, tokens, denials, sleeps, void, retries atomic.Uint64
}

// New validates cfg and returns the budget.
func New(client API, cfg Config) (*Budget, error) {
	if client == nil {
		return nil, fmt.Errorf("%w: awsbudget: no DynamoDB client", vaxpass.ErrInvalid)
	}
	if cfg.Table == "" {
		return nil, fmt.Errorf("%w: awsbudget: no table", vaxpass.ErrInvalid)
	}
	q := cfg.PerSecond
	if q < 1 {
		return nil, fmt.Errorf("%w: awsbudget: %d tokens per second, want at least 1", vaxpass.ErrInvalid, q)
	}
	reserve := cfg.Reserve
	switch {
	case reserve < 0 || reserve >= q && reserve != 0:
		return nil, fmt.Errorf("%w: awsbudget: reserve %d, want 0 (default) or 1 to %d (below %d per second)", vaxpass.ErrInvalid, reserve, q-1, q)
	case reserve == 0:
		reserve = min(max(1, q/10), q-1)
	}
	shards := cfg.Shards
	switch {
	case shards < 0 || shards > q:
		return nil, fmt.Errorf("%w: awsbudget: %d shards, want 0 (default) or 1 to %d (one token each at least)", vaxpass.ErrInvalid, shards, q)
	case shards == 0:
		shards = (q + ShardTokens - 1) / ShardTokens
	}
	b := &Budget{client: client, table: cfg.Table, q: q, now: cfg.Now, sleep: cfg.Sleep}
	if b.now == nil {
		b.now = time.Now
	}
	if b.sleep == nil {
		b.sleep = sleepCtx
	}
	for i := range shards {
		all := q/shards + btoi(i < q%shards)
		kept := reserve/shards + btoi(i < reserve%shards)
		b.limits[Interactive] = append(b.limits[Interactive], all)
		b.limits[Bulk] = append(b.limits[Bulk], all-kept)
	}
	for c := range b.groups {
		b.groups[c] = &group{b: b, class: Class(c)}
	}
	return b, nil
}

// Stats returns the counters.
func (b *Budget) Stats() Stats {
	return Stats{
		Leases: b.leases.Load(), Tokens: b.tokens.Load(), Denials: b.denials.Load(),
		Sleeps: b.sleeps.Load(), Void: b.void.Load(), Retries: b.retries.Load(),
	}
}

// MaxTake is the most tokens one Take of the class may ask (the class's share of its
// largest shard).
func (b *Budget) MaxTake(class Class) int {
	if !class.valid() {
		return 0
	}
	most := 0
	for _, l := range b.limits[class] {
		most = max(most, l)
	}
	return most
}

// Take blocks until n tokens of one second are granted to the caller (all or nothing),
// or ctx is done (ctx.Err()). It returns within the second the tokens were granted for.
// n above MaxTake(class) is ErrInvalid.
func (b *Budget) Take(ctx context.Context, class Class, n int) error {
	if !class.valid() {
		return fmt.Errorf("%w: awsbudget: unknown %v", vaxpass.ErrInvalid, class)
	}
	if n < 1 || n > b.MaxTake(class) {
		return fmt.Errorf("%w: awsbudget: take %d %v tokens, want 1 to %d", vaxpass.ErrInvalid, n, class, b.MaxTake(class))
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		win, ok := b.window()
		if !ok {
			if err := b.sleepToNext(ctx); err != nil {
				return err
			}
			continue
		}
		got, err := b.lease(ctx, class, win, n, n)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		if got == 0 {
			if err := b.sleepToNext(ctx); err != nil {
				return err
			}
			continue
		}
		if !b.current(win) {
			b.void.Add(uint64(got))
			continue
		}
		return nil
	}
}

// For returns the class's awskms.Budget: each Wait takes one token, concurrent Waits
// share leases.
func (b *Budget) For(class Class) awskms.Budget {
	if !class.valid() {
		return invalidClass{class}
	}
	return b.groups[class]
}

func (c Class) valid() bool { return c == Interactive || c == Bulk }

// invalidClass is the Budget of a class that does not exist: every Wait fails.
type invalidClass struct{ c Class }

func (i invalidClass) Wait(context.Context) error {
	return fmt.Errorf("%w: awsbudget: unknown %v", vaxpass.ErrInvalid, i.c)
}

// window returns the current second and whether a token granted for it now is usable.
func (b *Budget) window() (int64, bool) {
	now := b.now()
	return now.Unix(), usable(now, now.Unix())
}

// current reports whether tokens of second win may still be used.
func (b *Budget) current(win int64) bool { return usable(b.now(), win) }

func usable(now time.Time, win int64) bool {
	return now.Unix() == win && now.Before(time.Unix(win+1, 0).Add(-Guard))
}

// sleepToNext sleeps to the start of the next second plus jitter.
func (b *Budget) sleepToNext(ctx context.Context) error {
	b.sleeps.Add(1)
	now := b.now()
	d := time.Unix(now.Unix()+1, 0).Sub(now) + rand.N(jitter)
	return b.sleep(ctx, d)
}

// lease takes between least and want tokens of second win, trying every shard that can
// hold least from a random one on. It returns how many it got: 0 when the window is full.
func (b *Budget) lease(ctx context.Context, class Class, win int64, want, least int) (int, error) {
	limits := b.limitsOf(class, win)
	start := rand.IntN(len(limits))
	for i := range limits {
		shard := (start + i) % len(limits)
		k := min(want, limits[shard])
		for k >= least {
			granted, used, err := b.add(ctx, win, shard, k, limits[shard])
			if err != nil {
				return 0, fmt.Errorf("awsbudget: lease %d %v tokens: %w", k, class, err)
			}
			if granted {
				b.leases.Add(1)
				b.tokens.Add(uint64(k))
				return k, nil
			}
			b.denials.Add(1)
			room := limits[shard] - used // what is left, if another lease was faster
			if room >= k {
				break // cannot be (n only grows): do not spin on it
			}
			k = room
		}
	}
	return 0, nil
}

// limitsOf is the class's limit per shard for second win: bulk work leaves the reserve to
// interactive work until the second is BorrowAfter old, and may then take what of it is
// left (a reserve nobody used by then would be lost: a quiet system's backlog and
// renewal run at the whole quota, not 90 % of it). Interactive work arriving later in
// the second finds its reserve at the start of the next one.
func (b *Budget) limitsOf(class Class, win int64) []int {
	if class == Bulk && !b.now().Before(time.Unix(win, 0).Add(BorrowAfter)) {
		return b.limits[Interactive]
	}
	return b.limits[class]
}

// add is the conditional UpdateItem of k tokens on a shard of second win whose class
// limit is limit. Refused, it returns the tokens already granted in the shard.
func (b *Budget) add(ctx context.Context, win int64, shard, k, limit int) (bool, int, error) {
	in := &dynamodb.UpdateItemInput{
		TableName: aws.String(b.table),
		Key: map[string]types.AttributeValue{
			attrPK: &types.AttributeValueMemberS{Value: fmt.Sprintf("%s%012d#%03d", pkPrefix, win, shard)},
			attrSK: &types.AttributeValueMemberS{Value: skWindow},
		},
		UpdateExpression:         aws.String("ADD #n :k SET #ttl = :ttl"),
		ConditionExpression:      aws.String("attribute_not_exists(#n) OR #n <= :max"),
		ExpressionAttributeNames: map[string]string{"#n": attrN, "#ttl": attrTTL},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":k":   &types.AttributeValueMemberN{Value: strconv.Itoa(k)},
			":max": &types.AttributeValueMemberN{Value: strconv.Itoa(limit - k)},
			":ttl": &types.AttributeValueMemberN{Value: strconv.FormatInt(time.Unix(win, 0).Add(expireAfter).Unix(), 10)},
		},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}
	for attempt := 1; ; attempt++ {
		_, err := b.client.UpdateItem(ctx, in)
		var refused *types.ConditionalCheckFailedException
		switch {
		case err == nil:
			return true, 0, nil
		case errors.As(err, &refused):
			used, perr := counted(refused.Item)
			if perr != nil {
				return false, 0, perr
			}
			return false, used, nil
		case ctx.Err() != nil:
			return false, 0, ctx.Err()
		case attempt < maxAttempts && transient(err):
			b.retries.Add(1)
			d := min(backoffMax, backoffBase<<(attempt-1))
			if err := b.sleep(ctx, rand.N(d)+1); err != nil {
				return false, 0, err
			}
		default:
			return false, 0, err
		}
	}
}

// transient reports throttling, a server fault or a lost connection: worth another try.
// (Retrying a lease that was applied only over-counts: capacity lost, never exceeded.)
func transient(err error) bool {
	var api smithy.APIError
	if errors.As(err, &api) && api.ErrorFault() == smithy.FaultServer {
		return true
	}
	return retry.IsErrorRetryables(retry.DefaultRetryables).IsErrorRetryable(err) == aws.TrueTernary
}

// counted reads n from a refused window item (absent: no item, nothing counted).
func counted(item map[string]types.AttributeValue) (int, error) {
	v, ok := item[attrN]
	if !ok {
		return 0, nil
	}
	num, ok := v.(*types.AttributeValueMemberN)
	if !ok {
		return 0, fmt.Errorf("awsbudget: window item attribute %s is %T, not a number", attrN, v)
	}
	n, err := strconv.Atoi(num.Value)
	if err != nil {
		return 0, fmt.Errorf("awsbudget: window item attribute %s: %w", attrN, err)
	}
	return n, nil
}

// group batches the Waits of one class in this process.
type group struct {
	b     *Budget
	class Class

	mu       sync.Mutex
	waiters  []*waiter // first come first served; gone ones are skipped
	live     int       // waiters not gone
	leasing  bool      // the leasing goroutine runs
	stop     context.CancelFunc
	spare    int   // tokens of second spareWin nobody took yet
	spareWin int64 // the second of the spare tokens
}

type waiter struct {
	ch   chan grant // buffered: the leaser never blocks on it
	gone bool       // left (ctx done); guarded by group.mu
}

type grant struct {
	win int64
	err error
}

// Wait implements awskms.Budget: it takes one token.
func (g *group) Wait(ctx context.Context) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		g.mu.Lock()
		if g.takeSpare() {
			g.mu.Unlock()
			return nil
		}
		w := &waiter{ch: make(chan grant, 1)}
		g.waiters = append(g.waiters, w)
		g.live++
		if !g.leasing {
			g.leasing = true
			go g.run()
		}
		g.mu.Unlock()

		select {
		case gr := <-w.ch:
			if gr.err != nil {
				return gr.err
			}
			if g.b.current(gr.win) {
				return nil
			}
			g.b.void.Add(1) // came too late for its second: ask again
		case <-ctx.Done():
			g.mu.Lock()
			select {
			case gr := <-w.ch: // delivered meanwhile: the next waiter may use it
				if gr.err == nil {
					g.addSpare(gr.win, 1)
				}
			default:
				w.gone = true
				g.live--
				if g.live == 0 && g.stop != nil {
					g.stop() // nobody waits: end the lease in flight or its sleep
				}
			}
			g.mu.Unlock()
			return ctx.Err()
		}
	}
}

// takeSpare takes a spare token usable now. g.mu is held.
func (g *group) takeSpare() bool {
	if g.spare == 0 {
		return false
	}
	if !g.b.current(g.spareWin) {
		g.b.void.Add(uint64(g.spare))
		g.spare = 0
		return false
	}
	g.spare--
	return true
}

// addSpare keeps n tokens of second win for the next waiters. g.mu is held.
func (g *group) addSpare(win int64, n int) {
	if g.spareWin != win {
		g.b.void.Add(uint64(g.spare))
		g.spare, g.spareWin = 0, win
	}
	g.spare += n
}

// run leases tokens for the waiters until none is left.
func (g *group) run() {
	for {
		g.mu.Lock()
		for g.live > 0 && g.takeSpare() {
			g.deliver(grant{win: g.spareWin}, 1)
		}
		want := min(g.live, LeaseCap)
		if want == 0 {
			g.leasing, g.stop, g.waiters = false, nil, nil
			g.mu.Unlock()
			return
		}
		ctx, stop := context.WithTimeout(context.Background(), callTimeout)
		g.stop = stop
		g.mu.Unlock()

		win, got, err := g.leaseOnce(ctx, want)

		g.mu.Lock()
		g.stop = nil
		stopped := errors.Is(ctx.Err(), context.Canceled)
		stop()
		switch {
		case err != nil && stopped:
			// every waiter left (new ones may have come since): look again
		case err != nil:
			g.deliver(grant{err: err}, g.live) // every waiter would meet the same error
		case got > 0:
			if left := got - g.deliver(grant{win: win}, got); left > 0 {
				g.addSpare(win, left) // their waiters left meanwhile
			}
		}
		g.mu.Unlock()
	}
}

// leaseOnce leases up to want tokens of the current second, or sleeps to the next one
// when it is full or nearly over (then it returns 0 tokens).
func (g *group) leaseOnce(ctx context.Context, want int) (int64, int, error) {
	win, ok := g.b.window()
	if ok {
		got, err := g.b.lease(ctx, g.class, win, want, 1)
		if err != nil || got > 0 {
			return win, got, err
		}
	}
	return win, 0, g.b.sleepToNext(ctx)
}

// deliver hands gr to up to n waiters (first come first served) and returns to how many.
// g.mu is held.
func (g *group) deliver(gr grant, n int) int {
	done := 0
	for done < n && len(g.waiters) > 0 {
		w := g.waiters[0]
		g.waiters[0] = nil
		g.waiters = g.waiters[1:]
		if w.gone {
			continue
		}
		w.ch <- gr
		g.live--
		done++
	}
	return done
}

// sleepCtx sleeps for d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
