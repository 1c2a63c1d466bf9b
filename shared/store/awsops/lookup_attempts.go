package awsops

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/vaxpass/vaxpass/shared/stage/lookup"
)

var _ lookup.AttemptStore = (*Store)(nil)

// Failed lookups per identity (lookup.AttemptStore), shared by every instance of the
// public function:
//
//	failed lookups     pk "LOOKUPFAIL#"+key          sk "N"   b<bucket> N (one per bucket), ttl N
//
// key is the limiter's keyed hash of the ID number, never the number. One item per
// identity, so a count and its check are one atomic UpdateItem (ADD, ReturnValues
// ALL_NEW); buckets that have left the window are removed by the same update (the 12
// before the window; older ones, left by an identity idle for hours while TTL had not
// deleted its item yet, are ignored when read). TTL deletes an identity an hour after
// its last failure. An identity under attack is one hot item: a read per lookup (an
// attacker's lookups of a locked identity cost only that read) and a write per counted
// attempt, far below a partition's limits at the per-client rate.
const (
	pkLookupFail   = "LOOKUPFAIL#"
	skLookupFail   = "N"
	attrBucket     = "b"
	attrTTL        = "ttl"
	staleRemovable = 12
)

// FailedAttempts implements lookup.AttemptStore.
func (st *Store) FailedAttempts(ctx context.Context, key string, from int64) (map[int64]int, error) {
	// Eventually consistent: this read only spares a locked identity's writes; the
	// count that decides is the UpdateItem's.
	out, err := st.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(st.table), Key: st.attemptKey(key)})
	if err != nil {
		return nil, fmt.Errorf("awsops: failed lookups: %w", err)
	}
	return bucketsOf(out.Item, from)
}

// AddFailedAttempt implements lookup.AttemptStore.
func (st *Store) AddFailedAttempt(ctx context.Context, key string, bucket int64, delta int, from int64, expires time.Time) (map[int64]int, error) {
	names := map[string]string{"#b": bucketAttr(bucket), "#ttl": attrTTL}
	remove := make([]string, 0, staleRemovable)
	for i := int64(1); i <= staleRemovable; i++ {
		if from-i == bucket {
			continue
		}
		n := "#r" + strconv.FormatInt(i, 10)
		names[n] = bucketAttr(from - i)
		remove = append(remove, n)
	}
	expr := "ADD #b :d SET #ttl = :ttl"
	if len(remove) > 0 {
		expr += " REMOVE " + strings.Join(remove, ", ")
	}
	out, err := st.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(st.table), Key: st.attemptKey(key),
		UpdateExpression:         aws.String(expr),
		ExpressionAttributeNames: names,
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":d": num(int64(delta)), ":ttl": num(expires.Unix()),
		},
		ReturnValues: types.ReturnValueAllNew,
	})
	if err != nil {
		return nil, fmt.Errorf("awsops: count failed lookup: %w", err)
	}
	return bucketsOf(out.Attributes, from)
}

func (st *Store) attemptKey(key string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrPK: s(pkLookupFail + key), attrSK: s(skLookupFail)}
}

func bucketAttr(b int64) string { return attrBucket + strconv.FormatInt(b, 10) }

// bucketsOf reads the bucket counts from `from` on out of an item.
func bucketsOf(item map[string]types.AttributeValue, from int64) (map[int64]int, error) {
	out := map[int64]int{}
	for name, v := range item {
		if !strings.HasPrefix(name, attrBucket) {
			continue
		}
		b, err := strconv.ParseInt(name[len(attrBucket):], 10, 64)
		if err != nil || b < from {
			continue
		}
		n, ok := v.(*types.AttributeValueMemberN)
		if !ok {
			return nil, fmt.Errorf("%w: failed lookups: %s is not a number", ErrCorrupt, name)
		}
		c, err := strconv.Atoi(n.Value)
		if err != nil {
			return nil, fmt.Errorf("%w: failed lookups: %s: %w", ErrCorrupt, name, err)
		}
		out[b] = c
	}
	return out, nil
}
