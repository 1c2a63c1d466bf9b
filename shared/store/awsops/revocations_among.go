package awsops

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/vaxpass/vaxpass/shared/stage/revocation"
)

// maxTransactGet is the most items one TransactGetItems reads.
const maxTransactGet = 100

// transactGetter is the part of the DynamoDB client RevocationsAmong reads with (a client
// without it is asked item by item).
type transactGetter interface {
	TransactGetItems(ctx context.Context, in *dynamodb.TransactGetItemsInput, opts ...func(*dynamodb.Options)) (*dynamodb.TransactGetItemsOutput, error)
}

// RevocationsAmong implements revocation.StoreAmong: which of hs are listed, 100 per
// request. TransactGetItems rather than BatchGetItem: it is authorized as GetItem per
// item (the policies the functions already have), reads consistently like
// RevocationByUCI, and has no unprocessed keys to retry; it costs 2 RCU per item, of
// items a few hundred bytes long.
func (st *Store) RevocationsAmong(ctx context.Context, hs []revocation.Hash) (map[revocation.Hash]bool, error) {
	out := map[revocation.Hash]bool{}
	tg, ok := st.db.(transactGetter)
	var uniq []revocation.Hash
	seen := map[revocation.Hash]bool{}
	for _, h := range hs {
		if !seen[h] { // a transaction may name an item once
			seen[h] = true
			uniq = append(uniq, h)
		}
	}
	for len(uniq) > 0 {
		n := min(len(uniq), maxTransactGet)
		chunk := uniq[:n]
		uniq = uniq[n:]
		if !ok {
			for _, h := range chunk {
				_, listed, err := st.RevocationByUCI(ctx, h)
				if err != nil {
					return nil, err
				}
				if listed {
					out[h] = true
				}
			}
			continue
		}
		if err := st.revocationsAmong(ctx, tg, chunk, out); err != nil {
			return nil, fmt.Errorf("awsops: revocations among: %w", err)
		}
	}
	return out, nil
}

func (st *Store) revocationsAmong(ctx context.Context, tg transactGetter, hs []revocation.Hash, out map[revocation.Hash]bool) error {
	in := &dynamodb.TransactGetItemsInput{TransactItems: make([]types.TransactGetItem, len(hs))}
	for i, h := range hs {
		in.TransactItems[i] = types.TransactGetItem{Get: &types.Get{
			TableName: aws.String(st.table), Key: key(pkRevoked, h.String()),
			// The key alone tells that it is listed.
			ProjectionExpression: aws.String("#sk"), ExpressionAttributeNames: map[string]string{"#sk": attrSK},
		}}
	}
	for attempt := 0; ; attempt++ {
		res, err := tg.TransactGetItems(ctx, in)
		var canceled *types.TransactionCanceledException
		if errors.As(err, &canceled) && attempt < 5 {
			// A revocation being added to one of the items (TransactionConflict): read
			// again after a jittered pause.
			t := time.NewTimer(time.Duration(rand.Int64N(int64(20*time.Millisecond<<attempt)) + 1))
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
			continue
		}
		if err != nil {
			return err
		}
		if len(res.Responses) != len(hs) {
			return fmt.Errorf("%w: %d responses to %d reads", ErrCorrupt, len(res.Responses), len(hs))
		}
		for i, r := range res.Responses {
			if len(r.Item) > 0 {
				out[hs[i]] = true
			}
		}
		return nil
	}
}
