package awsregistry_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/store/awsregistry"
	"github.com/vaxpass/vaxpass/shared/tool/registry"
)

// fakeDB is a registry table in memory whose BatchWriteItem answers as scripted: each
// call takes the next step, which may refuse the call (err) or leave its last `leave`
// writes unprocessed; without steps left every write is applied.
type fakeDB struct {
	mu     sync.Mutex
	table  string
	items  map[string]map[string]types.AttributeValue
	steps  []step
	calls  [][]string // the IDs of each call, in order
	writes int        // puts applied
}

type step struct {
	err   error
	leave int
}

func newFakeDB(steps ...step) *fakeDB {
	return &fakeDB{table: "registry", items: map[string]map[string]types.AttributeValue{}, steps: steps}
}

func (f *fakeDB) GetItem(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	return nil, errors.New("not used")
}

func (f *fakeDB) Query(context.Context, *dynamodb.QueryInput, ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	return nil, errors.New("not used")
}

func (f *fakeDB) BatchWriteItem(_ context.Context, in *dynamodb.BatchWriteItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	reqs := in.RequestItems[f.table]
	if len(in.RequestItems) != 1 || len(reqs) == 0 || len(reqs) > 25 {
		return nil, fmt.Errorf("bad request: %d tables, %d writes", len(in.RequestItems), len(reqs))
	}
	var ids []string
	seen := map[string]bool{}
	for _, r := range reqs {
		id := r.PutRequest.Item["id"].(*types.AttributeValueMemberS).Value
		if seen[id] {
			return nil, &smithy.GenericAPIError{Code: "ValidationException", Message: "duplicate key", Fault: smithy.FaultClient}
		}
		seen[id] = true
		ids = append(ids, id)
	}
	f.calls = append(f.calls, ids)
	var st step
	if len(f.steps) > 0 {
		st, f.steps = f.steps[0], f.steps[1:]
	}
	if st.err != nil {
		return nil, st.err
	}
	leave := min(st.leave, len(reqs))
	for _, r := range reqs[:len(reqs)-leave] {
		f.items[r.PutRequest.Item["id"].(*types.AttributeValueMemberS).Value] = r.PutRequest.Item
		f.writes++
	}
	out := &dynamodb.BatchWriteItemOutput{}
	if leave > 0 {
		out.UnprocessedItems = map[string][]types.WriteRequest{f.table: reqs[len(reqs)-leave:]}
	}
	return out, nil
}

// people returns n valid people with distinct ID numbers, from first on.
func people(first, n int) []match.Person {
	out := make([]match.Person, n)
	for i := range out {
		out[i] = match.Person{IDNumber: fmt.Sprintf("001088%06d", first+i), FullName: "Nguyễn Văn An", DOB: "1988-04-02", Gender: "male"}
	}
	return out
}

func fastRetries(t *testing.T, stall time.Duration) {
	t.Helper()
	oldStall, oldBackoff := awsregistry.MaxStall, awsregistry.MaxBackoff
	awsregistry.MaxStall, awsregistry.MaxBackoff = stall, time.Millisecond
	t.Cleanup(func() { awsregistry.MaxStall, awsregistry.MaxBackoff = oldStall, oldBackoff })
}

func throttle(code string) error {
	return &smithy.GenericAPIError{Code: code, Message: "slow down", Fault: smithy.FaultClient}
}

// Unprocessed writes and throttled calls are sent again, only them, until all are written.
func TestPutRetriesUnprocessedAndThrottled(t *testing.T) {
	fastRetries(t, time.Minute)
	db := newFakeDB(
		step{leave: 10},
		step{err: throttle("ProvisionedThroughputExceededException")},
		step{leave: 3},
		step{err: &ratelimit.QuotaExceededError{Available: 0, Requested: 5}},
		step{err: throttle("ThrottlingException")},
	)
	reg, err := awsregistry.New(db, db.table)
	if err != nil {
		t.Fatal(err)
	}
	batch := people(1, 25)
	retries, err := reg.Put(context.Background(), batch)
	if err != nil {
		t.Fatal(err)
	}
	if retries != 5 || len(db.calls) != 6 {
		t.Errorf("%d retries in %d calls, want 5 in 6", retries, len(db.calls))
	}
	sizes := []int{}
	for _, c := range db.calls {
		sizes = append(sizes, len(c))
	}
	// 25, then the 10 left over (refused once), then the 3 left of those (refused twice).
	if fmt.Sprint(sizes) != "[25 10 10 3 3 3]" {
		t.Errorf("call sizes %v", sizes)
	}
	if db.writes != 25 || len(db.items) != 25 {
		t.Errorf("%d puts applied, %d items; want each of the 25 once", db.writes, len(db.items))
	}
	for _, p := range batch {
		if db.items[p.IDNumber] == nil {
			t.Errorf("%s not written", p.IDNumber)
		}
	}
}

// Throttling that lets nothing through for MaxStall fails the put; a refusal that is not
// throttling fails it at once.
func TestPutGivesUp(t *testing.T) {
	fastRetries(t, 30*time.Millisecond)
	always := make([]step, 10_000)
	for i := range always {
		always[i] = step{leave: 25}
	}
	db := newFakeDB(always...)
	reg, _ := awsregistry.New(db, db.table)
	retries, err := reg.Put(context.Background(), people(1, 25))
	if err == nil || !strings.Contains(err.Error(), "25 of 25 writes refused") || retries == 0 {
		t.Fatalf("put throttled for good: %d retries, %v", retries, err)
	}

	invalid := &smithy.GenericAPIError{Code: "ValidationException", Message: "no", Fault: smithy.FaultClient}
	db = newFakeDB(step{err: invalid})
	reg, _ = awsregistry.New(db, db.table)
	if retries, err := reg.Put(context.Background(), people(1, 2)); !errors.As(err, new(smithy.APIError)) || retries != 0 || len(db.calls) != 1 {
		t.Fatalf("put refused: %d retries, %d calls, %v", retries, len(db.calls), err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	db = newFakeDB(step{leave: 1})
	reg, _ = awsregistry.New(db, db.table)
	if _, err := reg.Put(ctx, people(1, 2)); !errors.Is(err, context.Canceled) {
		t.Fatalf("put with its context ended while throttled: %v", err)
	}
}

// A batch is checked before anything is written; a repeated ID keeps its later person.
func TestPutChecksAndDeduplicates(t *testing.T) {
	db := newFakeDB()
	reg, _ := awsregistry.New(db, db.table)
	if _, err := reg.Put(context.Background(), people(1, 26)); err == nil {
		t.Error("a batch of 26 was accepted")
	}
	bad := people(1, 3)
	bad[2].DOB = "1988-02-30"
	if _, err := reg.Put(context.Background(), bad); !errors.Is(err, registry.ErrPerson) || len(db.calls) != 0 {
		t.Errorf("batch with an invalid person: %v, %d calls", err, len(db.calls))
	}
	twice := people(1, 3)
	later := twice[0]
	later.FullName = "Trần Thị Bích"
	twice = append(twice, later)
	if _, err := reg.Put(context.Background(), twice); err != nil {
		t.Fatal(err)
	}
	if len(db.calls) != 1 || len(db.calls[0]) != 3 {
		t.Fatalf("calls %v", db.calls)
	}
	if got := db.items[later.IDNumber]["full_name"].(*types.AttributeValueMemberS).Value; got != later.FullName {
		t.Errorf("repeated ID stored with the name %q, want the later line's", got)
	}
}

// The size DynamoDB bills: attribute names and values in bytes; under 1 KiB is one unit
// in the table and one in the index, a name at the length limit takes two each.
func TestItemSizeAndWriteUnits(t *testing.T) {
	p, err := registry.Check(people(1, 1)[0])
	if err != nil {
		t.Fatal(err)
	}
	names := len("id") + len("full_name") + len("dob") + len("gender") + len("name_key") + len("name_year")
	want := names + len(p.IDNumber) + len(p.FullName) + len(p.DOB) + len(p.Gender) + len(p.NameKey) + len("1988#") + len(p.NameKey)
	if got := awsregistry.ItemSize(p); got != want || got > 200 {
		t.Errorf("ItemSize = %d, want %d", got, want)
	}
	if u := awsregistry.WriteUnits(p); u != 2 {
		t.Errorf("WriteUnits = %d, want 2", u)
	}
	long := people(1, 1)[0]
	long.FullName = strings.Repeat("Ễ", registry.MaxNameRunes) // 3 bytes each in UTF-8
	if long, err = registry.Check(long); err != nil {
		t.Fatal(err)
	}
	if size, u := awsregistry.ItemSize(long), awsregistry.WriteUnits(long); size <= 1024 || u != 4 {
		t.Errorf("a %d-character name: ItemSize %d, WriteUnits %d, want over 1024 and 4", len([]rune(long.FullName)), size, u)
	}
}
