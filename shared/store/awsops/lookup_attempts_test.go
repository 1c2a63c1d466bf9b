package awsops_test

import (
	"context"
	"encoding/json"
	"net/http"
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

type oneCert struct{ c vaxpass.Certificate }

func (o oneCert) ActiveCertificate(_ context.Context, id string) (vaxpass.Certificate, error) {
	if id == o.c.PersonID {
		return o.c, nil
	}
	return vaxpass.Certificate{}, vaxpass.ErrNotFound
}

func (o oneCert) CertificateByUVCI(context.Context, string) (vaxpass.Certificate, error) {
	return vaxpass.Certificate{}, vaxpass.ErrNotFound
}

// The per-identity limit through the lookup route, counted in the ops table: 100
// wrong-DOB lookups of one ID number a minute apart, at most 30 answered in any 60
// minutes; the right DOB refused alike while locked; another ID number unaffected; and
// concurrent attempts (several instances) never overrun it.
func TestLookupAttemptsLimit(t *testing.T) {
	st, _ := open(t)
	var mu sync.Mutex
	now := time.Date(2022, 3, 1, 9, 2, 30, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	const id, other = "001088012345", "079090001234"
	r := apigw.NewRouter()
	(&httpapi.Public{Lookup: lookup.Limited{
		Service: &lookup.Service{Certs: oneCert{vaxpass.Certificate{UVCI: "URN:UVCI:01:VN:ABC#1", PersonID: id, NameKey: vnname.Key("Nguyễn Văn An"), DOB: "1988-03-14"}}},
		Limit:   &lookup.Limiter{Store: st, Now: clock},
	}, Now: clock}).Routes(r)
	ask := func(id, dob string) int {
		body, _ := json.Marshal(lookup.Query{IDNumber: id, FullName: "Nguyễn Văn An", DOB: dob})
		req := events.APIGatewayV2HTTPRequest{RawPath: "/v1/passports/lookup", Body: string(body), Headers: map[string]string{"content-type": "application/json"}}
		req.RequestContext.HTTP.Method, req.RequestContext.HTTP.Path = http.MethodPost, req.RawPath
		resp, err := r.Serve(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode
	}
	start := now
	var answered []time.Time
	for i := range 100 {
		if i == 40 {
			if c := ask(id, "1988-03-14"); c != http.StatusTooManyRequests {
				t.Fatalf("right DOB while locked: %d", c)
			}
			if c := ask(other, "1990-01-01"); c != http.StatusNotFound {
				t.Fatalf("other ID: %d", c)
			}
		}
		switch c := ask(id, "1988-03-15"); c {
		case http.StatusNotFound:
			answered = append(answered, clock())
		case http.StatusTooManyRequests:
		default:
			t.Fatalf("lookup %d: %d", i, c)
		}
		mu.Lock()
		now = now.Add(time.Minute)
		mu.Unlock()
	}
	for i, a := range answered {
		n := 0
		for _, b := range answered[i:] {
			if b.Sub(a) < time.Hour {
				n++
			}
		}
		if n > 30 {
			t.Fatalf("%d answered in the hour from %v", n, a.Sub(start))
		}
	}
	if len(answered) <= 30 || answered[29].Sub(start) != 29*time.Minute {
		t.Fatalf("answered %d: want the first 30, then more as they age out", len(answered))
	}
	t.Logf("100 wrong lookups a minute apart: %d answered", len(answered))

	// Concurrent wrong lookups of a fresh ID number: exactly 30 answered.
	const fresh = "001088099999"
	var wg sync.WaitGroup
	codes := make(chan int, 60)
	for range 60 {
		wg.Go(func() { codes <- ask(fresh, "1988-03-15") })
	}
	wg.Wait()
	close(codes)
	got := map[int]int{}
	for c := range codes {
		got[c]++
	}
	if got[http.StatusNotFound] != 30 || got[http.StatusTooManyRequests] != 30 {
		t.Fatalf("concurrent answers %v, want 30 x 404, 30 x 429", got)
	}
}

// The item keeps only the buckets of the window: older ones are removed as it is
// updated.
func TestLookupAttemptsBuckets(t *testing.T) {
	st, _ := open(t)
	ctx := context.Background()
	exp := time.Unix(1_700_000_000, 0)
	for b := int64(100); b < 130; b++ {
		counts, err := st.AddFailedAttempt(ctx, "k", b, 1, b-12, exp)
		if err != nil {
			t.Fatal(err)
		}
		if len(counts) != min(13, int(b-99)) {
			t.Fatalf("bucket %d: counts %v", b, counts)
		}
	}
	counts, err := st.AddFailedAttempt(ctx, "k", 129, -1, 117, exp)
	if err != nil || counts[129] != 0 || len(counts) != 13 {
		t.Fatalf("take back: %v %v", counts, err)
	}
	// From 0: every bucket the item holds, the removed ones not among them.
	if all, err := st.FailedAttempts(ctx, "k", 0); err != nil || len(all) != 13 {
		t.Fatalf("item holds buckets %v (%v), want the 13 of the window", all, err)
	}
	read, err := st.FailedAttempts(ctx, "k", 120)
	if err != nil || len(read) != 10 || read[120] != 1 {
		t.Fatalf("read: %v %v", read, err)
	}
	if none, err := st.FailedAttempts(ctx, "other", 0); err != nil || len(none) != 0 {
		t.Fatalf("unknown key: %v %v", none, err)
	}
}
