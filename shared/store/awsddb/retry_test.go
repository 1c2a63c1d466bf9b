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
	"strconv"
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

// lossyDynamoDB answers GetItem, PutItem and TransactWriteItems over HTTP like DynamoDB
// for what the dose writes send: the two dose conditions, ADD updates of counters, the
// idempotency of a transaction's ClientRequestToken. It can lose a response after
// applying a write (the connection closes before the reply is read), refuse a request
// with throttling before applying it, or cancel a transaction for a concurrent one on a
// member: the failures the SDK or the store retry, which the emulator cannot produce on
// demand.
type lossyDynamoDB struct {
	mu       sync.Mutex
	items    map[string]json.RawMessage  // facility/source -> Item as sent
	counters map[string]map[string]int64 // pk/sk of a counter item -> attribute -> sum
	tokens   map[string]string           // ClientRequestToken -> request committed
	// loseNext and throttleNext act on the next write, once; conflictNext cancels the
	// next transaction for a concurrent one on its member conflictNext-1.
	loseNext, throttleNext bool
	conflictNext           int
	puts, transactions     int
	tokensSent             []string
}

type putRequest struct {
	TableName                 string
	Item                      map[string]json.RawMessage
	ConditionExpression       string
	ExpressionAttributeValues map[string]map[string]string
}

type updateRequest struct {
	TableName                 string
	Key                       map[string]struct{ S string }
	UpdateExpression          string
	ExpressionAttributeNames  map[string]string
	ExpressionAttributeValues map[string]struct{ N string }
}

type transactRequest struct {
	TransactItems []struct {
		Put    *putRequest
		Update *updateRequest
	}
	ClientRequestToken string
}

func (f *lossyDynamoDB) Do(req *http.Request) (*http.Response, error) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	switch op := req.Header.Get("X-Amz-Target"); {
	case strings.HasSuffix(op, ".GetItem"):
		var in struct{ Key map[string]struct{ S string } }
		if err := json.Unmarshal(body, &in); err != nil {
			return nil, err
		}
		stored, ok := f.items[in.Key["facility_id"].S+"/"+in.Key["source_id"].S]
		if !ok {
			return reply(200, `{}`), nil
		}
		return reply(200, `{"Item":`+string(stored)+`}`), nil
	case strings.HasSuffix(op, ".PutItem"):
		var in putRequest
		if err := json.Unmarshal(body, &in); err != nil {
			return nil, err
		}
		f.puts++
		if f.throttleNext {
			f.throttleNext = false
			return reply(400, `{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"Rate exceeded"}`), nil
		}
		ok, stored, err := f.check(&in)
		if err != nil {
			return nil, err
		}
		if !ok {
			failed := `{"__type":"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException","message":"The conditional request failed"`
			if stored != nil {
				failed += `,"Item":` + string(stored)
			}
			return reply(400, failed+"}"), nil
		}
		f.apply(&in)
		return f.answer(`{}`)
	case strings.HasSuffix(op, ".TransactWriteItems"):
		var in transactRequest
		if err := json.Unmarshal(body, &in); err != nil {
			return nil, err
		}
		f.transactions++
		f.tokensSent = append(f.tokensSent, in.ClientRequestToken)
		if f.throttleNext {
			f.throttleNext = false
			return reply(400, `{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"Rate exceeded"}`), nil
		}
		if done, ok := f.tokens[in.ClientRequestToken]; ok {
			if done != string(body) {
				return reply(400, `{"__type":"com.amazonaws.dynamodb.v20120810#IdempotentParameterMismatchException","message":"token reused"}`), nil
			}
			return reply(200, `{}`), nil // a repeat: the first outcome, nothing applied again
		}
		reasons := make([]string, len(in.TransactItems))
		canceled := false
		for i, m := range in.TransactItems {
			reasons[i] = `{"Code":"None"}`
			if f.conflictNext == i+1 {
				reasons[i] = `{"Code":"TransactionConflict","Message":"Transaction is ongoing for the item"}`
				canceled = true
				continue
			}
			if m.Put == nil {
				continue
			}
			ok, stored, err := f.check(m.Put)
			if err != nil {
				return nil, err
			}
			if !ok {
				canceled = true
				reasons[i] = `{"Code":"ConditionalCheckFailed","Message":"The conditional request failed"`
				if stored != nil {
					reasons[i] += `,"Item":` + string(stored)
				}
				reasons[i] += "}"
			}
		}
		f.conflictNext = 0
		if canceled {
			return reply(400, `{"__type":"com.amazonaws.dynamodb.v20120810#TransactionCanceledException","message":"Transaction cancelled","CancellationReasons":[`+strings.Join(reasons, ",")+`]}`), nil
		}
		for _, m := range in.TransactItems {
			if m.Put != nil {
				f.apply(m.Put)
			} else if err := f.add(m.Update); err != nil {
				return nil, err
			}
		}
		f.tokens[in.ClientRequestToken] = string(body)
		return f.answer(`{}`)
	default:
		return nil, fmt.Errorf("fake: unexpected operation %s", op)
	}
}

// check evaluates a dose write's condition; stored is the item stored, if any.
func (f *lossyDynamoDB) check(in *putRequest) (ok bool, stored json.RawMessage, err error) {
	if in.TableName != "d" {
		return false, nil, fmt.Errorf("fake: put to table %q", in.TableName)
	}
	stored, exists := f.items[doseKeyOf(in.Item)]
	switch {
	case strings.HasPrefix(in.ConditionExpression, "attribute_not_exists"):
		ok = !exists
	case in.ConditionExpression == "#v = :v":
		var old map[string]struct{ N string }
		_ = json.Unmarshal(stored, &old)
		ok = exists && old["version"].N == in.ExpressionAttributeValues[":v"]["N"]
	default:
		return false, nil, fmt.Errorf("fake: condition %q", in.ConditionExpression)
	}
	return ok, stored, nil
}

func doseKeyOf(item map[string]json.RawMessage) string {
	var fac, src struct{ S string }
	_ = json.Unmarshal(item["facility_id"], &fac)
	_ = json.Unmarshal(item["source_id"], &src)
	return fac.S + "/" + src.S
}

func (f *lossyDynamoDB) apply(in *putRequest) {
	item, _ := json.Marshal(in.Item)
	f.items[doseKeyOf(in.Item)] = item
}

// add applies an "ADD #a :a, ..." update of a counter item.
func (f *lossyDynamoDB) add(u *updateRequest) error {
	if u == nil || u.TableName != "c" || !strings.HasPrefix(u.UpdateExpression, "ADD ") {
		return fmt.Errorf("fake: unexpected update %+v", u)
	}
	key := u.Key["pk"].S + "/" + u.Key["sk"].S
	if f.counters[key] == nil {
		f.counters[key] = map[string]int64{}
	}
	for _, part := range strings.Split(strings.TrimPrefix(u.UpdateExpression, "ADD "), ", ") {
		name, value, _ := strings.Cut(part, " ")
		n, err := strconv.ParseInt(u.ExpressionAttributeValues[value].N, 10, 64)
		if err != nil {
			return err
		}
		f.counters[key][u.ExpressionAttributeNames[name]] += n
	}
	return nil
}

// answer replies to an applied write, or loses the reply when asked to.
func (f *lossyDynamoDB) answer(body string) (*http.Response, error) {
	if f.loseNext {
		f.loseNext = false
		return nil, &net.OpError{Op: "read", Net: "tcp", Err: net.ErrClosed}
	}
	return reply(200, body), nil
}

// counter sums an attribute over every counter item of a row scope ("p:001", "f:f1").
func (f *lossyDynamoDB) counter(scope, attr string) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	var n int64
	for key, attrs := range f.counters {
		if strings.Contains(key, "/S#"+scope+"#") {
			n += attrs[attr]
		}
	}
	return n
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
	fake := &lossyDynamoDB{items: map[string]json.RawMessage{}, counters: map[string]map[string]int64{}, tokens: map[string]string{}}
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
// done, not as a duplicate or a conflict, and counted once; a write refused before it was
// applied is not mistaken for one.
func TestRetriedWrites(t *testing.T) {
	ctx := context.Background()
	t.Run("PutNew response lost", func(t *testing.T) {
		s, fake := lossyStore(t)
		fake.loseNext = true
		created, err := s.PutNew(ctx, []vaxpass.Dose{pendingDose("a1")})
		if err != nil || len(created) != 1 || !created[0] {
			t.Fatalf("created %v, %v; want [true]", created, err)
		}
		if fake.transactions != 2 || fake.tokensSent[0] != fake.tokensSent[1] {
			t.Errorf("%d transactions with tokens %q, want the SDK's retry with the same token", fake.transactions, fake.tokensSent)
		}
		created, err = s.PutNew(ctx, []vaxpass.Dose{pendingDose("a1")})
		if err != nil || created[0] {
			t.Errorf("the same dose sent again: created %v, %v; want a duplicate", created, err)
		}
		if n := fake.counter("f:f1", "d_PENDING"); n != 1 {
			t.Errorf("the dose is counted %d times", n)
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
		if n := fake.counter("p:001", "d_PENDING"); n != 1 {
			t.Errorf("the dose is counted %d times", n)
		}
	})
	t.Run("PutNew canceled by a concurrent transaction on a counter", func(t *testing.T) {
		s, fake := lossyStore(t)
		fake.conflictNext = 2
		created, err := s.PutNew(ctx, []vaxpass.Dose{pendingDose("a1")})
		if err != nil || !created[0] {
			t.Fatalf("created %v, %v; want [true] after a retry", created, err)
		}
		if fake.transactions != 2 || fake.tokensSent[0] == fake.tokensSent[1] {
			t.Errorf("%d transactions with tokens %q, want a second one of its own", fake.transactions, fake.tokensSent)
		}
		if n := fake.counter("f:f1", "d_PENDING"); n != 1 {
			t.Errorf("the dose is counted %d times", n)
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
		if p, nf := fake.counter("f:f1", "d_PENDING"), fake.counter("f:f1", "d_NOT_FOUND"); p != 0 || nf != 1 {
			t.Errorf("counted %d pending, %d not found; want 0, 1", p, nf)
		}
	})
	t.Run("SaveMatch without a status change, response lost", func(t *testing.T) {
		s, fake := lossyStore(t)
		d := pendingDose("a1")
		if _, err := s.PutNew(ctx, []vaxpass.Dose{d}); err != nil {
			t.Fatal(err)
		}
		d.Match.Reasons = []string{"registry unavailable"} // still pending: a plain PutItem
		fake.loseNext = true
		puts := fake.puts
		if err := s.SaveMatch(ctx, d); err != nil {
			t.Fatalf("SaveMatch with a lost response: %v", err)
		}
		if fake.puts != puts+2 {
			t.Errorf("%d PutItem requests, want 2 (the SDK's retry)", fake.puts-puts)
		}
		if err := s.SaveMatch(ctx, d); !errors.Is(err, vaxpass.ErrConflict) {
			t.Errorf("SaveMatch of the same read again: %v, want ErrConflict", err)
		}
	})
	t.Run("SaveMatch without a status change throttled, then stale", func(t *testing.T) {
		s, fake := lossyStore(t)
		d := pendingDose("a1")
		if _, err := s.PutNew(ctx, []vaxpass.Dose{d}); err != nil {
			t.Fatal(err)
		}
		fake.throttleNext = true
		puts := fake.puts
		if err := s.SaveMatch(ctx, d); err != nil {
			t.Fatalf("SaveMatch after throttling: %v", err)
		}
		if fake.puts != puts+2 {
			t.Errorf("%d PutItem requests, want 2 (refused, then the SDK's retry)", fake.puts-puts)
		}
		// Stale: refused, by the version read, whether or not it moves a counter.
		for _, st := range []match.Status{match.Pending, match.Verified} {
			d.Match.Status = st
			if err := s.SaveMatch(ctx, d); !errors.Is(err, vaxpass.ErrConflict) {
				t.Errorf("stale SaveMatch (%s): %v, want ErrConflict", st, err)
			}
		}
	})
	t.Run("SaveMatch canceled by a concurrent transaction on the dose", func(t *testing.T) {
		s, fake := lossyStore(t)
		d := pendingDose("a1")
		if _, err := s.PutNew(ctx, []vaxpass.Dose{d}); err != nil {
			t.Fatal(err)
		}
		d.Match = match.Result{Status: match.Verified, Reasons: []string{}}
		fake.conflictNext = 1
		if err := s.SaveMatch(ctx, d); err != nil {
			t.Fatalf("SaveMatch after a conflict: %v", err)
		}
		if n := fake.counter("p:001", "d_VERIFIED"); n != 1 {
			t.Errorf("counted %d verified", n)
		}
	})
}
