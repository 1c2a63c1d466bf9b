package awsops_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/vaxpass/vaxpass/shared/edge/httpapi"
	"github.com/vaxpass/vaxpass/shared/stage/signing"
	"github.com/vaxpass/vaxpass/shared/store/awsops"
	"github.com/vaxpass/vaxpass/shared/testkit/awstest"
	"github.com/vaxpass/vaxpass/shared/testkit/storetest"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

var _ httpapi.OpsKeys = (*awsops.Store)(nil)

// TestOpsContract: the ops records behave as the embedded backend's do.
func TestOpsContract(t *testing.T) {
	storetest.RunOps(t, func(t *testing.T) storetest.Ops {
		st, _ := open(t)
		return storetest.Ops{Runs: st, Revocations: st, Audit: st}
	})
}

// hookedAPI lets a test fail or hold the store's writes.
type hookedAPI struct {
	awsops.API
	mu       sync.Mutex
	transact func(in *dynamodb.TransactWriteItemsInput) error
	batch    func(n int) error // n: BatchWriteItem calls so far, this one included
	batches  int
}

func (h *hookedAPI) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, opts ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	h.mu.Lock()
	hook := h.transact
	h.mu.Unlock()
	if hook != nil {
		if err := hook(in); err != nil {
			return nil, err
		}
	}
	return h.API.TransactWriteItems(ctx, in, opts...)
}

func (h *hookedAPI) BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	h.mu.Lock()
	h.batches++
	n, hook := h.batches, h.batch
	h.mu.Unlock()
	if hook != nil {
		if err := hook(n); err != nil {
			return nil, err
		}
	}
	return h.API.BatchWriteItem(ctx, in, opts...)
}

func (h *hookedAPI) set(transact func(*dynamodb.TransactWriteItemsInput) error, batch func(int) error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.transact, h.batch, h.batches = transact, batch, 0
}

// openHooked opens a store over a fresh table whose client the test can interfere with,
// and a second, plain store over the same table (another process).
func openHooked(t *testing.T) (*awsops.Store, *hookedAPI, *awsops.Store, *dynamodb.Client, string) {
	t.Helper()
	client := dynamodb.NewFromConfig(awstest.Config(t))
	name := awstest.UniqueName(t, "ops")
	if err := awsops.CreateTable(t.Context(), client, name); err != nil {
		t.Fatal(err)
	}
	awstest.DeleteTablesAtCleanup(t, client, name)
	h := &hookedAPI{API: client}
	st, err := awsops.New(h, name, func() time.Time { return t0 })
	if err != nil {
		t.Fatal(err)
	}
	other, err := awsops.New(client, name, func() time.Time { return t0 })
	if err != nil {
		t.Fatal(err)
	}
	return st, h, other, client, name
}

var errInjected = errors.New("injected failure")

func changesOf(t *testing.T, st *awsops.Store, run string) map[string]string {
	t.Helper()
	ids, outs, err := st.RunChanges(t.Context(), run, "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for i, id := range ids {
		m[id] = outs[i]
	}
	return m
}

func sameMap(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %v, want %v", what, got, want)
		return
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %v, want %v", what, got, want)
			return
		}
	}
}

// TestSaveRunAllOrNothing: a save that fails at any step leaves the run as it was -- its
// state and every unit's outcome -- and the saves after it are whole.
func TestSaveRunAllOrNothing(t *testing.T) {
	ctx := context.Background()
	many := map[string]string{}
	for i := range 120 {
		many[fmt.Sprintf("f/%03d", i)] = "verified"
	}
	tests := []struct {
		name     string
		transact func(*dynamodb.TransactWriteItemsInput) error
		batch    func(int) error
		changes  map[string]string
	}{
		{"commit fails", func(*dynamodb.TransactWriteItemsInput) error { return errInjected }, nil, map[string]string{"f/a": "2", "f/b": "2"}},
		{"first change write fails", nil, func(int) error { return errInjected }, map[string]string{"f/a": "2", "f/b": "2"}},
		{"a later change write fails", nil, func(n int) error {
			if n >= 3 {
				return errInjected
			}
			return nil
		}, many},
		{"commit of many fails", func(*dynamodb.TransactWriteItemsInput) error { return errInjected }, nil, many},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st, h, other, _, _ := openHooked(t)
			if err := st.SaveRun(ctx, "rp-1", []byte(`{"v":1}`), map[string]string{"f/a": "1"}); err != nil {
				t.Fatal(err)
			}
			h.set(tc.transact, tc.batch)
			if err := st.SaveRun(ctx, "rp-1", []byte(`{"v":2}`), tc.changes); !errors.Is(err, errInjected) {
				t.Fatalf("the failing save: %v", err)
			}
			h.set(nil, nil)
			for _, s := range []*awsops.Store{st, other} {
				doc, err := s.LoadRun(ctx, "rp-1")
				if err != nil || string(doc) != `{"v":1}` {
					t.Errorf("state after the failed save: %s, %v", doc, err)
				}
				sameMap(t, "changes after the failed save", changesOf(t, s, "rp-1"), map[string]string{"f/a": "1"})
			}
			// The next saves, through either process, commit whole; the failed save's items
			// stay unseen.
			if err := other.SaveRun(ctx, "rp-1", []byte(`{"v":3}`), map[string]string{"f/c": "3"}); err != nil {
				t.Fatal(err)
			}
			if err := st.SaveRun(ctx, "rp-1", []byte(`{"v":4}`), map[string]string{"f/d": "4"}); err != nil {
				t.Fatal(err)
			}
			sameMap(t, "changes after the next saves", changesOf(t, st, "rp-1"), map[string]string{"f/a": "1", "f/c": "3", "f/d": "4"})
			if doc, err := other.LoadRun(ctx, "rp-1"); err != nil || string(doc) != `{"v":4}` {
				t.Errorf("state after the next saves: %s, %v", doc, err)
			}
		})
	}
}

// TestSaveRunLateCommit: a save numbered before another but committed after it (held
// between its change writes and its commit) still commits its changes, and its state is
// the run's last.
func TestSaveRunLateCommit(t *testing.T) {
	ctx := context.Background()
	st, h, other, _, _ := openHooked(t)
	if err := st.SaveRun(ctx, "rp-1", []byte(`{"v":0}`), nil); err != nil {
		t.Fatal(err)
	}
	held, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	h.set(func(*dynamodb.TransactWriteItemsInput) error {
		once.Do(func() { close(held); <-release })
		return nil
	}, nil)
	done := make(chan error, 1)
	go func() { done <- st.SaveRun(ctx, "rp-1", []byte(`{"v":"late"}`), map[string]string{"f/late": "1"}) }()
	<-held
	if err := other.SaveRun(ctx, "rp-1", []byte(`{"v":"early"}`), map[string]string{"f/early": "2"}); err != nil {
		t.Fatal(err)
	}
	// Before the late commit, only the early save's change is seen.
	sameMap(t, "before the late commit", changesOf(t, other, "rp-1"), map[string]string{"f/early": "2"})
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("late save: %v", err)
	}
	sameMap(t, "after the late commit", changesOf(t, other, "rp-1"), map[string]string{"f/early": "2", "f/late": "1"})
	if doc, err := other.LoadRun(ctx, "rp-1"); err != nil || string(doc) != `{"v":"late"}` {
		t.Errorf("state: %s, %v", doc, err)
	}
}

// TestRunStateParts: a large state is kept in parts that the next state replaces: no
// part outlives its state.
func TestRunStateParts(t *testing.T) {
	ctx := context.Background()
	st, _, other, client, table := openHooked(t)
	parts := func() int {
		p := dynamodb.NewQueryPaginator(client, &dynamodb.QueryInput{
			TableName: aws.String(table), KeyConditionExpression: aws.String("pk = :pk"), ConsistentRead: aws.Bool(true),
			ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: "RPDOC#" + fmt.Sprintf("%x", "rp-1")}},
		})
		n := 0
		for p.HasMorePages() {
			out, err := p.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			n += len(out.Items)
		}
		return n
	}
	big := []byte(strings.Repeat("0123456789", 100_000)) // 1 MB: three parts
	steps := []struct {
		name  string
		by    *awsops.Store
		doc   []byte
		parts int
	}{
		{"large", st, big, 3},
		{"larger, by another process", other, append(big, big...), 6},
		{"small", st, []byte(`{}`), 0},
		{"large again", st, big, 3},
		{"at the limit", other, make([]byte, awsops.MaxRunDocBytes), 8},
		{"at the limit again", st, make([]byte, awsops.MaxRunDocBytes), 8},
	}
	for _, step := range steps {
		if err := step.by.SaveRun(ctx, "rp-1", step.doc, nil); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if n := parts(); n != step.parts {
			t.Errorf("%s: %d part items, want %d", step.name, n, step.parts)
		}
		if doc, err := st.LoadRun(ctx, "rp-1"); err != nil || string(doc) != string(step.doc) {
			t.Errorf("%s: LoadRun %d bytes, %v", step.name, len(doc), err)
		}
	}
	if err := st.SaveRun(ctx, "rp-1", make([]byte, awsops.MaxRunDocBytes+1), nil); !errors.Is(err, vaxpass.ErrInvalid) {
		t.Errorf("a state over the limit: %v, want ErrInvalid", err)
	}
}

func keyHash(key string) []byte {
	sum := sha256.Sum256([]byte(key))
	return sum[:]
}

// TestCreateTable: creating the table again is no error (a rerun, or the SDK retrying a
// create whose answer it lost); a table of that name with other keys is.
func TestCreateTable(t *testing.T) {
	ctx := context.Background()
	_, _, _, client, table := openHooked(t)
	if err := awsops.CreateTable(ctx, client, table); err != nil {
		t.Errorf("CreateTable of an existing ops table: %v", err)
	}
	other := awstest.UniqueName(t, "other")
	_, err := client.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName: aws.String(other), BillingMode: types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("pk"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("pk"), KeyType: types.KeyTypeHash}},
	})
	if err != nil {
		t.Fatal(err)
	}
	awstest.DeleteTablesAtCleanup(t, client, other)
	if err := awsops.CreateTable(ctx, client, other); !errors.Is(err, awsops.ErrConfig) {
		t.Errorf("CreateTable over a table with other keys: %v, want ErrConfig", err)
	}
}

// TestSigningRunsContract: facility signing runs as the embedded backend keeps them.
func TestSigningRunsContract(t *testing.T) {
	storetest.RunSigningRuns(t, func(t *testing.T) signing.RunStore {
		st, _ := open(t)
		return st
	})
}
