package awsddb_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/vaxpass/vaxpass/shared/domain/dose"
	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/store/awsddb"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// lossyDynamoDB answers PutItem over HTTP like DynamoDB for the two conditions the dose
// writes use, and can lose a response after applying the write (the connection closes
// before the reply is read) or refuse a request with throttling before applying it:
// the failures the SDK retries, which the emulator cannot produce on demand.
type lossyDynamoDB struct {
	mu    sync.Mutex
	items map[string]json.RawMessage // facility/source -> Item as sent
	// loseNext and throttleNext act on the next PutItem, once.
	loseNext, throttleNext bool
	puts                   int
}

type putRequest struct {
	Item                      map[string]json.RawMessage
	ConditionExpression       string
	ExpressionAttributeValues map[string]map[string]string
}

func (f *lossyDynamoDB) Do(req *http.Request) (*http.Response, error) {
	if !strings.HasSuffix(req.Header.Get("X-Amz-Target"), ".PutItem") {
		return nil, fmt.Errorf("fake: unexpected operation %s", req.Header.Get("X-Amz-Target"))
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, err
	}
	var in putRequest
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, err
	}
	var fac, src struct{ S string }
	_ = json.Unmarshal(in.Item["facility_id"], &fac)
	_ = json.Unmarshal(in.Item["source_id"], &src)
	key := fac.S + "/" + src.S
	item, _ := json.Marshal(in.Item)

	f.mu.Lock()
	defer f.mu.Unlock()
	f.puts++
	if f.throttleNext {
		f.throttleNext = false
		return reply(400, `{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"Rate exceeded"}`), nil
	}
	stored, exists := f.items[key]
	ok := false
	switch {
	case strings.HasPrefix(in.ConditionExpression, "attribute_not_exists"):
		ok = !exists
	case in.ConditionExpression == "#v = :v":
		var old map[string]struct{ N string }
		_ = json.Unmarshal(stored, &old)
		ok = exists && old["version"].N == in.ExpressionAttributeValues[":v"]["N"]
	default:
		return nil, fmt.Errorf("fake: condition %q", in.ConditionExpression)
	}
	if !ok {
		failed := `{"__type":"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException","message":"The conditional request failed"`
		if exists {
			failed += `,"Item":` + string(stored)
		}
		return reply(400, failed+"}"), nil
	}
	f.items[key] = item
	if f.loseNext {
		f.loseNext = false
		return nil, &net.OpError{Op: "read", Net: "tcp", Err: net.ErrClosed}
	}
	return reply(200, `{}`), nil
}

func reply(status int, body string) *http.Response {
	return &http.Response{
		StatusCode: status, Status: http.StatusText(status),
		Header: http.Header{"Content-Type": {"application/x-amz-json-1.0"}},
		Body:   io.NopCloser(bytes.NewReader([]byte(body))), ContentLength: int64(len(body)),
	}
}

type noBackoff struct{}

func (noBackoff) BackoffDelay(int, error) (time.Duration, error) { return 0, nil }

func lossyStore(t *testing.T) (*awsddb.Store, *lossyDynamoDB) {
	t.Helper()
	fake := &lossyDynamoDB{items: map[string]json.RawMessage{}}
	client := dynamodb.New(dynamodb.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String("http://dynamodb.fake"),
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
		HTTPClient:   fake,
		Retryer: retry.NewStandard(func(o *retry.StandardOptions) {
			o.Backoff = noBackoff{}
			o.RateLimiter = ratelimit.None
		}),
	})
	s, err := awsddb.New(client, awsddb.Tables{Doses: "d", Certificates: "c", Facilities: "f"}, awsddb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s, fake
}

func pendingDose(sourceID string) vaxpass.Dose {
	at := time.Date(2021, 9, 1, 8, 0, 0, 0, time.UTC)
	return vaxpass.Dose{
		FacilityID: "f1",
		Record: dose.Record{SourceID: sourceID, FullName: "Nguyễn Văn An", DOB: "1990-01-02", Gender: dose.Male,
			IDNumber: "001090012345", Nationality: "VN", Vaccine: "PFIZER", DoseNumber: 1, VaccinatedOn: "2021-08-01"},
		Match:      match.Result{Status: match.Pending, Reasons: []string{}},
		ReceivedAt: at, UpdatedAt: at, Version: 1,
	}
}

// TestRetriedWrites: a write whose response was lost after it was applied is reported as
// done, not as a duplicate or a conflict; a write refused before it was applied is not
// mistaken for one.
func TestRetriedWrites(t *testing.T) {
	ctx := context.Background()
	t.Run("PutNew response lost", func(t *testing.T) {
		s, fake := lossyStore(t)
		fake.loseNext = true
		created, err := s.PutNew(ctx, []vaxpass.Dose{pendingDose("a1")})
		if err != nil || len(created) != 1 || !created[0] {
			t.Fatalf("created %v, %v; want [true]", created, err)
		}
		if fake.puts != 2 {
			t.Errorf("%d PutItem requests, want 2 (the SDK's retry)", fake.puts)
		}
		created, err = s.PutNew(ctx, []vaxpass.Dose{pendingDose("a1")})
		if err != nil || created[0] {
			t.Errorf("the same dose sent again: created %v, %v; want a duplicate", created, err)
		}
	})
	t.Run("PutNew throttled, then a duplicate", func(t *testing.T) {
		s, fake := lossyStore(t)
		if _, err := s.PutNew(ctx, []vaxpass.Dose{pendingDose("a1")}); err != nil {
			t.Fatal(err)
		}
		fake.throttleNext = true
		created, err := s.PutNew(ctx, []vaxpass.Dose{pendingDose("a1")})
		if err != nil || created[0] {
			t.Errorf("created %v, %v; want a duplicate (the throttled attempt wrote nothing)", created, err)
		}
	})
	t.Run("SaveMatch response lost", func(t *testing.T) {
		s, fake := lossyStore(t)
		d := pendingDose("a1")
		if _, err := s.PutNew(ctx, []vaxpass.Dose{d}); err != nil {
			t.Fatal(err)
		}
		d.Match = match.Result{Status: match.NotFound, Reasons: []string{}}
		fake.loseNext = true
		if err := s.SaveMatch(ctx, d); err != nil {
			t.Fatalf("SaveMatch with a lost response: %v", err)
		}
		// The same read saved again is a conflict: the version moved on.
		if err := s.SaveMatch(ctx, d); !errors.Is(err, vaxpass.ErrConflict) {
			t.Errorf("SaveMatch of the same read again: %v, want ErrConflict", err)
		}
	})
	t.Run("SaveMatch throttled, then stale", func(t *testing.T) {
		s, fake := lossyStore(t)
		d := pendingDose("a1")
		if _, err := s.PutNew(ctx, []vaxpass.Dose{d}); err != nil {
			t.Fatal(err)
		}
		if err := s.SaveMatch(ctx, d); err != nil {
			t.Fatal(err)
		}
		fake.throttleNext = true
		if err := s.SaveMatch(ctx, d); !errors.Is(err, vaxpass.ErrConflict) {
			t.Errorf("stale SaveMatch after throttling: %v, want ErrConflict", err)
		}
	})
}
