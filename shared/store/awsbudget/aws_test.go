package awsbudget_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/vaxpass/vaxpass/shared/store/awsbudget"
	"github.com/vaxpass/vaxpass/shared/store/awsops"
	"github.com/vaxpass/vaxpass/shared/testkit/awstest"
)

// TestSharedBudget: three budgets (three Lambda instances) on one ops table, eight
// signers each, never get more than the quota in a wall-clock second, and bulk never more
// than the quota less the reserve.
func TestSharedBudget(t *testing.T) {
	client := dynamodb.NewFromConfig(awstest.Config(t))
	table := awstest.UniqueName(t, "ops")
	if err := awsops.CreateTable(t.Context(), client, table); err != nil {
		t.Fatal(err)
	}
	awstest.DeleteTablesAtCleanup(t, client, table)

	const q, reserve, run = 50, 5, 4 * time.Second
	classes := []awsbudget.Class{awsbudget.Interactive, awsbudget.Bulk, awsbudget.Bulk}
	var budgets []*awsbudget.Budget
	for range classes {
		b, err := awsbudget.New(client, awsbudget.Config{Table: table, PerSecond: q})
		if err != nil {
			t.Fatal(err)
		}
		budgets = append(budgets, b)
	}

	ctx, cancel := context.WithTimeout(t.Context(), run)
	defer cancel()
	var mu sync.Mutex
	granted := map[int64][2]int{} // second -> tokens per class
	var wg sync.WaitGroup
	start := time.Now()
	for i, b := range budgets {
		budget := b.For(classes[i])
		for range 8 {
			wg.Go(func() {
				for {
					err := budget.Wait(ctx)
					at := time.Now()
					if err != nil {
						if ctx.Err() == nil || !errors.Is(err, ctx.Err()) {
							t.Error(err)
						}
						return
					}
					mu.Lock()
					g := granted[at.Unix()]
					g[classes[i]]++
					granted[at.Unix()] = g
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	end := time.Now()

	var secs []int64
	for s := range granted {
		secs = append(secs, s)
	}
	sort.Slice(secs, func(i, j int) bool { return secs[i] < secs[j] })
	total, full, fullTokens := 0, 0, 0
	for _, s := range secs {
		g := granted[s]
		n := g[awsbudget.Interactive] + g[awsbudget.Bulk]
		total += n
		t.Logf("second %d: %d interactive + %d bulk = %d", s, g[awsbudget.Interactive], g[awsbudget.Bulk], n)
		if n > q {
			t.Errorf("second %d: %d tokens returned, quota %d", s, n, q)
		}
		if g[awsbudget.Bulk] > q-reserve {
			t.Errorf("second %d: %d bulk tokens returned, limit %d", s, g[awsbudget.Bulk], q-reserve)
		}
		if s > start.Unix() && s < end.Unix() {
			full++
			fullTokens += n
		}
		// What the table counted for the second: the quota at most, too.
		out, err := client.GetItem(t.Context(), &dynamodb.GetItemInput{
			TableName: aws.String(table),
			Key: map[string]types.AttributeValue{
				"pk": &types.AttributeValueMemberS{Value: fmt.Sprintf("KMSBUDGET#%012d#000", s)},
				"sk": &types.AttributeValueMemberS{Value: "WINDOW"},
			},
			ConsistentRead: aws.Bool(true),
		})
		if err != nil {
			t.Fatal(err)
		}
		var counted int
		if v, ok := out.Item["n"].(*types.AttributeValueMemberN); ok {
			fmt.Sscan(v.Value, &counted)
		}
		if counted > q || counted < n {
			t.Errorf("second %d: table counts %d tokens, %d were returned, quota %d", s, counted, n, q)
		}
	}
	for i, b := range budgets {
		s := b.Stats()
		t.Logf("instance %d (%v): %+v, %.1f tokens per lease", i, classes[i], s, float64(s.Tokens)/max(1, float64(s.Leases)))
	}
	if full > 0 {
		t.Logf("%d tokens in %v; %.1f per full second over %d full seconds (quota %d)", total, end.Sub(start).Round(time.Millisecond), float64(fullTokens)/float64(full), full, q)
	}
	// A loose floor only (the emulator shares two cores): more than one second's quota in
	// four seconds.
	if total <= q {
		t.Errorf("%d tokens granted in %v: the budget hardly granted anything", total, run)
	}
}
