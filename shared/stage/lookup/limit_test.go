package lookup_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/vaxpass/vaxpass/shared/domain/vnname"
	"github.com/vaxpass/vaxpass/shared/edge/apigw"
	"github.com/vaxpass/vaxpass/shared/edge/httpapi"
	"github.com/vaxpass/vaxpass/shared/stage/lookup"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

const (
	victimID = "001088012345"
	otherID  = "079090001234"
)

// limitClock is a clock the test moves; 09:02:30 is inside a bucket, not at its edge.
type limitClock struct {
	mu sync.Mutex
	t  time.Time
}

func newLimitClock() *limitClock {
	return &limitClock{t: time.Date(2022, 3, 1, 9, 2, 30, 0, time.UTC)}
}

func (c *limitClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *limitClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type kindCount struct {
	mu sync.Mutex
	n  map[string]int
}

func (k *kindCount) SecurityEvent(_ context.Context, kind, route string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.n == nil {
		k.n = map[string]int{}
	}
	k.n[kind+" "+route]++
}

func (k *kindCount) get(key string) int { k.mu.Lock(); defer k.mu.Unlock(); return k.n[key] }

// limitedAPI is the public API's lookup route over store with the per-identity limit.
func limitedAPI(store lookup.AttemptStore, clock *limitClock, ev *kindCount) *apigw.Router {
	certs := certs{
		victimID: {UVCI: "URN:UVCI:01:VN:ABC#1", PersonID: victimID, NameKey: vnname.Key("Nguyễn Văn An"), DOB: "1988-03-14"},
		otherID:  {UVCI: "URN:UVCI:01:VN:DEF#2", PersonID: otherID, NameKey: vnname.Key("Trần Thị Bình"), DOB: "1990-07-01"},
	}
	r := apigw.NewRouter()
	(&httpapi.Public{
		Lookup: lookup.Limited{Service: &lookup.Service{Certs: certs}, Limit: &lookup.Limiter{Store: store, Secret: []byte("test secret"), Now: clock.Now}},
		Now:    clock.Now, Events: ev,
	}).Routes(r)
	return r
}

func lookupReq(t *testing.T, r *apigw.Router, id, name, dob string) events.APIGatewayV2HTTPResponse {
	t.Helper()
	body, _ := json.Marshal(lookup.Query{IDNumber: id, FullName: name, DOB: dob})
	req := events.APIGatewayV2HTTPRequest{RawPath: "/v1/passports/lookup", Body: string(body), Headers: map[string]string{"content-type": "application/json"}}
	req.RequestContext.HTTP.Method = http.MethodPost
	req.RequestContext.HTTP.Path = req.RawPath
	resp, err := r.Serve(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// TestLookupLimitPerIdentity is the acceptance test of the limit: 100 wrong-DOB lookups of one ID
// number, a minute apart: at most 30 are answered in any 60 minutes, the others refused
// with 429 too_many_attempts; a right DOB while locked is refused alike; another ID
// number is unaffected.
func TestLookupLimitPerIdentity(t *testing.T) {
	clock := newLimitClock()
	ev := &kindCount{}
	r := limitedAPI(lookup.NewMemoryAttempts(0, clock.Now), clock, ev)
	limitScenario(t, r, clock)
	if got := ev.get("identity_locked POST /v1/passports/lookup"); got == 0 {
		t.Error("no identity_locked event recorded")
	}
}

func limitScenario(t *testing.T, r *apigw.Router, clock *limitClock) {
	t.Helper()
	start := clock.Now()
	var answered []time.Time
	locked := 0
	for i := range 100 {
		if i == 40 {
			// Locked: the right details are refused too, without being looked at...
			if resp := lookupReq(t, r, victimID, "Nguyễn Văn An", "1988-03-14"); resp.StatusCode != http.StatusTooManyRequests {
				t.Fatalf("right details while locked: %d %s", resp.StatusCode, resp.Body)
			}
			// ...and another ID number is not locked.
			if resp := lookupReq(t, r, otherID, "Trần Thị Bình", "1990-07-02"); resp.StatusCode != http.StatusNotFound {
				t.Fatalf("other ID, wrong DOB: %d %s", resp.StatusCode, resp.Body)
			}
			if resp := lookupReq(t, r, otherID, "Trần Thị Bình", "1990-07-01"); resp.StatusCode != http.StatusOK {
				t.Fatalf("other ID, right details: %d %s", resp.StatusCode, resp.Body)
			}
		}
		resp := lookupReq(t, r, victimID, "Nguyễn Văn An", "1988-03-15")
		switch resp.StatusCode {
		case http.StatusNotFound:
			answered = append(answered, clock.Now())
		case http.StatusTooManyRequests:
			locked++
			var body apigw.ErrorBody
			if err := json.Unmarshal([]byte(resp.Body), &body); err != nil || body.Error.Code != "too_many_attempts" {
				t.Fatalf("429 body %s (%v)", resp.Body, err)
			}
			if s, err := strconv.Atoi(resp.Headers["Retry-After"]); err != nil || s < 1 || s > 65*60 {
				t.Fatalf("Retry-After %q", resp.Headers["Retry-After"])
			}
		default:
			t.Fatalf("lookup %d: %d %s", i, resp.StatusCode, resp.Body)
		}
		clock.Add(time.Minute)
	}
	// At most 30 answered in any 60 minutes (a window starting at each answer is the
	// worst case).
	for i, a := range answered {
		n := 0
		for _, b := range answered[i:] {
			if b.Sub(a) < time.Hour {
				n++
			}
		}
		if n > lookup.DefaultMaxFailures {
			t.Fatalf("%d wrong lookups answered in the hour from %s", n, a.Sub(start))
		}
	}
	// The first 30 are answered, the lock lifts as they age out (a slow attacker gets
	// about 30 an hour, never more).
	if len(answered) < 30 || answered[29].Sub(start) != 29*time.Minute {
		t.Fatalf("answered %d, the 30th at %v", len(answered), answered[min(29, len(answered)-1)].Sub(start))
	}
	if len(answered) <= 30 || len(answered)+locked != 100 {
		t.Fatalf("answered %d, locked %d: the lock never lifted", len(answered), locked)
	}
	t.Logf("100 wrong lookups a minute apart: %d answered, %d refused", len(answered), locked)
}

// Concurrent attempts cannot overrun the limit: each is counted before it is made.
func TestLookupLimitConcurrent(t *testing.T) {
	clock := newLimitClock()
	r := limitedAPI(lookup.NewMemoryAttempts(0, clock.Now), clock, &kindCount{})
	var wg sync.WaitGroup
	codes := make(chan int, 100)
	for range 100 {
		wg.Go(func() { codes <- lookupReq(t, r, victimID, "Nguyễn Văn An", "1988-03-15").StatusCode })
	}
	wg.Wait()
	close(codes)
	n := map[int]int{}
	for c := range codes {
		n[c]++
	}
	if n[http.StatusNotFound] != 30 || n[http.StatusTooManyRequests] != 70 {
		t.Fatalf("answers %v, want 30 x 404 and 70 x 429", n)
	}
}

// Successes do not count, and Retry-After is exact to the bucket: at it, one more
// attempt is made; a second before it, none.
func TestLookupLimitSuccessAndRetryAfter(t *testing.T) {
	clock := newLimitClock()
	r := limitedAPI(lookup.NewMemoryAttempts(0, clock.Now), clock, &kindCount{})
	for range 50 {
		if resp := lookupReq(t, r, victimID, "NGUYEN VAN AN", "14/03/1988"); resp.StatusCode != http.StatusOK {
			t.Fatalf("right details: %d %s", resp.StatusCode, resp.Body)
		}
	}
	for range 30 {
		if resp := lookupReq(t, r, victimID, "Nguyễn Văn An", "1988-03-15"); resp.StatusCode != http.StatusNotFound {
			t.Fatalf("wrong DOB: %d", resp.StatusCode)
		}
	}
	resp := lookupReq(t, r, victimID, "Nguyễn Văn An", "1988-03-15")
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("31st: %d", resp.StatusCode)
	}
	secs, _ := strconv.Atoi(resp.Headers["Retry-After"])
	// Counted at 09:02:30, in the bucket 09:00-09:05: it leaves the window at 10:05.
	if want := 62*60 + 30; secs != want {
		t.Fatalf("Retry-After %d s, want %d", secs, want)
	}
	clock.Add(time.Duration(secs-1) * time.Second)
	if resp := lookupReq(t, r, victimID, "Nguyễn Văn An", "1988-03-14"); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("a second early: %d", resp.StatusCode)
	}
	clock.Add(time.Second)
	if resp := lookupReq(t, r, victimID, "Nguyễn Văn An", "1988-03-14"); resp.StatusCode != http.StatusOK {
		t.Fatalf("at Retry-After: %d %s", resp.StatusCode, resp.Body)
	}
}

// The store key is a keyed hash of the normalized number: never the number, the same for
// every way of typing it, different under another secret.
func TestLimiterKey(t *testing.T) {
	a := &lookup.Limiter{Secret: []byte("one")}
	k := a.Key("001088012345")
	if k != a.Key(" 001.088.012.345 ") || len(k) != 32 {
		t.Fatalf("keys %q %q", k, a.Key(" 001.088.012.345 "))
	}
	for _, other := range []string{(&lookup.Limiter{Secret: []byte("two")}).Key("001088012345"), (&lookup.Limiter{}).Key("001088012345"), a.Key("001088012346")} {
		if other == k {
			t.Fatal("same key for another secret or number")
		}
	}
}

// failingStore fails every call.
type failingStore struct{}

var errStore = errors.New("store down")

func (failingStore) FailedAttempts(context.Context, string, int64) (map[int64]int, error) {
	return nil, errStore
}

func (failingStore) AddFailedAttempt(context.Context, string, int64, int, int64, time.Time) (map[int64]int, error) {
	return nil, errStore
}

// A store that cannot count refuses the lookup (an error, not an unlimited answer).
func TestLimiterStoreDown(t *testing.T) {
	lim := &lookup.Limiter{Store: failingStore{}}
	called := false
	err := lim.Guard(context.Background(), victimID, func(context.Context) error { called = true; return nil })
	if !errors.Is(err, errStore) || called {
		t.Fatalf("Guard = %v, attempt called %v", err, called)
	}
	if errors.Is(err, vaxpass.ErrNotFound) || errors.Is(err, lookup.ErrLocked) {
		t.Fatal("a store failure is neither not-found nor locked")
	}
}

// Memory stays bounded whatever the number of ID numbers tried, and expired counts go.
func TestMemoryAttemptsBounded(t *testing.T) {
	clock := newLimitClock()
	m := lookup.NewMemoryAttempts(100, clock.Now)
	lim := &lookup.Limiter{Store: m, Now: clock.Now}
	ctx := context.Background()
	for i := range 1000 {
		_ = lim.Guard(ctx, fmt.Sprintf("0010880%05d", i), func(context.Context) error { return vaxpass.ErrNotFound })
	}
	if m.Len() != 100 {
		t.Fatalf("%d keys held, cap 100", m.Len())
	}
	// The newest are kept: the last ID number tried still counts.
	if c, _ := m.FailedAttempts(ctx, lim.Key("001088000999"), 0); len(c) != 1 {
		t.Fatalf("last key's counts %v", c)
	}
	clock.Add(2 * time.Hour)
	for range 100 {
		_, _ = m.FailedAttempts(ctx, "x", 0)
	}
	if m.Len() != 0 {
		t.Fatalf("%d expired keys still held", m.Len())
	}
}
