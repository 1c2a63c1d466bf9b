package public_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/vaxpass/vaxpass/shared/edge/apigw"
	"github.com/vaxpass/vaxpass/shared/stage/lookup"
	"github.com/vaxpass/vaxpass/shared/stage/security"
	"github.com/vaxpass/vaxpass/shared/wire/local"
)

// The embedded backend as wired: the lookup is limited per ID number, the per-client
// limit's refusals and the lock are security events, and the dashboard's numbers count
// them.
func TestLookupLimitsWired(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2022, 3, 1, 9, 2, 30, 0, time.UTC)
	l, err := local.OpenLocal(local.Options{
		DataDir: filepath.Join(t.TempDir(), "data"), FacilitySignEvery: -1,
		Now:        func() time.Time { mu.Lock(); defer mu.Unlock(); return now },
		LookupRate: apigw.RateLimit{Rate: 1, Burst: 2, MaxKeys: 1000},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ask := func(ip, dob string) events.APIGatewayV2HTTPResponse {
		body, _ := json.Marshal(lookup.Query{IDNumber: "001088012345", FullName: "Nguyễn Văn An", DOB: dob})
		req := events.APIGatewayV2HTTPRequest{RawPath: "/v1/passports/lookup", Body: string(body), Headers: map[string]string{"content-type": "application/json"}}
		req.RequestContext.HTTP.Method, req.RequestContext.HTTP.Path, req.RequestContext.HTTP.SourceIP = http.MethodPost, req.RawPath, ip
		resp, err := l.Router.Serve(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	// 40 wrong dates of birth, each from its own address (under the per-client limit):
	// 30 answered, then the ID number is locked, whatever the address.
	got := map[int]int{}
	for i := range 40 {
		got[ask(fmt.Sprintf("198.51.100.%d", i+1), "1988-03-15").StatusCode]++
	}
	if got[http.StatusNotFound] != 30 || got[http.StatusTooManyRequests] != 10 {
		t.Fatalf("answers %v, want 30 x 404, 10 x 429", got)
	}
	// One address over the per-client limit (burst 2): two reach the lookup (locked
	// still), the third is refused before it.
	for range 3 {
		ask("203.0.113.9", "1988")
	}
	snap, err := l.Reprocessing.Stats.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if c := snap.Security[security.IdentityLocked]; c.Today != 12 || c.Total != 12 {
		t.Fatalf("identity_locked %+v", c)
	}
	if c := snap.Security[security.RateLimited]; c.Today != 1 || c.Total != 1 {
		t.Fatalf("rate_limited %+v", c)
	}
}
