package awsddb_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/vaxpass/vaxpass/shared/store/awsddb"
	"github.com/vaxpass/vaxpass/shared/testkit/awstest"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// getCounter counts the GetItem calls by the sort key read.
type getCounter struct {
	*dynamodb.Client
	mu   sync.Mutex
	gets map[string]int
}

func (g *getCounter) GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	g.mu.Lock()
	if sk, ok := in.Key["sk"].(*ddbtypes.AttributeValueMemberS); ok {
		g.gets[sk.Value]++
	}
	g.mu.Unlock()
	return g.Client.GetItem(ctx, in, opts...)
}

func (g *getCounter) take() map[string]int {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := g.gets
	g.gets = map[string]int{}
	return out
}

// A renewal in place reads nothing before its transaction when the dashboard's row
// counters do not move (its expiry stays on the same day), and the person's metrics
// when they do; a prev that is not the stored certificate is refused.
func TestRenewalInPlaceReads(t *testing.T) {
	client := dynamodb.NewFromConfig(awstest.Config(t))
	_, names := openStore(t, client, awsddb.Options{})
	counter := &getCounter{Client: client, gets: map[string]int{}}
	s, err := awsddb.New(counter, names, awsddb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	iat := time.Date(2022, 3, 1, 2, 0, 0, 0, time.UTC)
	c := vaxpass.Certificate{UVCI: "URN:UVCI:01:VN:READS1#X", PersonID: "079190000003", HC1: "HC1:A", Status: vaxpass.CertIssued,
		IssuedAt: iat, ExpiresAt: iat.AddDate(1, 0, 0), KID: "k", Version: 1}
	if err := s.ReplaceCertificate(ctx, c, nil); err != nil {
		t.Fatal(err)
	}
	renew := func(prev vaxpass.Certificate, at time.Time) (vaxpass.Certificate, map[string]int) {
		t.Helper()
		counter.take()
		next := prev
		next.HC1, next.IssuedAt, next.ExpiresAt = "HC1:"+at.Format(time.RFC3339), at, at.AddDate(1, 0, 0)
		if err := s.ReplaceCertificate(ctx, next, &prev); err != nil {
			t.Fatal(err)
		}
		next.Version = prev.Version + 1
		return next, counter.take()
	}
	c, gets := renew(c, iat.Add(time.Minute))
	if len(gets) != 0 {
		t.Errorf("renewal on the same expiry day read %v, want nothing", gets)
	}
	c, gets = renew(c, iat.Add(48*time.Hour))
	if gets["STATS"] != 1 || len(gets) != 1 {
		t.Errorf("renewal to another expiry day read %v, want the person's metrics once", gets)
	}

	// A prev at the stored version that says another expiry is not the stored one.
	wrong := c
	wrong.ExpiresAt = wrong.ExpiresAt.Add(-24 * time.Hour)
	next := c
	next.IssuedAt, next.ExpiresAt = c.IssuedAt.Add(time.Hour), c.ExpiresAt.Add(time.Hour)
	if err := s.ReplaceCertificate(ctx, next, &wrong); !errors.Is(err, vaxpass.ErrConflict) {
		t.Errorf("renewing from a prev with another expiry: %v, want ErrConflict", err)
	}
	got, err := s.CertificateByUVCI(ctx, c.UVCI)
	if err != nil || got.Version != c.Version || !strings.HasPrefix(got.HC1, "HC1:2022-03-03") {
		t.Errorf("stored %+v, %v", got, err)
	}
}
