package awsops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/vaxpass/vaxpass/shared/stage/audit"
	"github.com/vaxpass/vaxpass/shared/stage/revocation"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

const (
	pkRevoked  = "REVOKED"
	pkRevCount = "REVCOUNT"
	skRevCount = "COUNT"
	attrCount  = "n"
)

// AddRevocation implements revocation.Store: the entry, the count and the audit note in
// one transaction, conditional on the UCI hash not being listed (added false and nothing
// written when it is).
func (st *Store) AddRevocation(ctx context.Context, e revocation.Entry, note *audit.Entry) (bool, error) {
	if e.UCI == (revocation.Hash{}) {
		return false, fmt.Errorf("awsops: add revocation: %w: empty UCI hash", vaxpass.ErrInvalid)
	}
	doc, err := json.Marshal(e)
	if err != nil {
		return false, fmt.Errorf("awsops: add revocation: %w", err)
	}
	it := key(pkRevoked, e.UCI.String())
	it[attrDoc] = s(string(doc))
	items := []types.TransactWriteItem{
		{Put: &types.Put{
			TableName: aws.String(st.table), Item: it,
			ConditionExpression: aws.String("attribute_not_exists(#pk)"), ExpressionAttributeNames: map[string]string{"#pk": attrPK},
		}},
		{Update: &types.Update{
			TableName: aws.String(st.table), Key: key(pkRevCount, skRevCount),
			UpdateExpression:          aws.String("ADD #n :one"),
			ExpressionAttributeNames:  map[string]string{"#n": attrCount},
			ExpressionAttributeValues: map[string]types.AttributeValue{":one": num(1)},
		}},
	}
	if note != nil {
		n := *note
		ni, err := st.auditItem(&n)
		if err != nil {
			return false, fmt.Errorf("awsops: add revocation: audit note: %w", err)
		}
		if err := st.markAuditDays(ctx, n); err != nil {
			return false, fmt.Errorf("awsops: add revocation: %w", err)
		}
		items = append(items, auditPut(st.table, ni))
	}
	_, err = st.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
	if err != nil {
		var canceled *types.TransactionCanceledException
		if errors.As(err, &canceled) && len(canceled.CancellationReasons) > 0 &&
			aws.ToString(canceled.CancellationReasons[0].Code) == "ConditionalCheckFailed" {
			return false, nil
		}
		return false, fmt.Errorf("awsops: add revocation: %w", err)
	}
	return true, nil
}

// RevocationByUCI implements revocation.Store.
func (st *Store) RevocationByUCI(ctx context.Context, h revocation.Hash) (revocation.Entry, bool, error) {
	out, err := st.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(st.table), Key: key(pkRevoked, h.String()), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return revocation.Entry{}, false, fmt.Errorf("awsops: revocation by UCI: %w", err)
	}
	if out.Item == nil {
		return revocation.Entry{}, false, nil
	}
	e, err := decodeRevocation(out.Item)
	if err != nil {
		return e, false, fmt.Errorf("awsops: revocation by UCI: %w", err)
	}
	return e, true, nil
}

// Revocations implements revocation.Store: entries in UCI hash order (the hex sort keys
// sort as the bytes do) after after, at most limit.
func (st *Store) Revocations(ctx context.Context, after *revocation.Hash, limit int) ([]revocation.Entry, error) {
	if err := checkLimit(limit); err != nil {
		return nil, fmt.Errorf("awsops: revocations: %w", err)
	}
	in := rangeQuery(st.table, pkRevoked, "", "", false)
	if after != nil {
		in.KeyConditionExpression = aws.String("#pk = :pk AND #sk > :after")
		in.ExpressionAttributeNames["#sk"] = attrSK
		in.ExpressionAttributeValues[":after"] = s(after.String())
	}
	var out []revocation.Entry
	err := st.queryAll(ctx, in, func(it map[string]types.AttributeValue) (bool, error) {
		e, err := decodeRevocation(it)
		if err != nil {
			return false, err
		}
		out = append(out, e)
		return len(out) < limit, nil
	}, func() int32 { return int32(min(limit-len(out), 1000)) })
	if err != nil {
		return nil, fmt.Errorf("awsops: revocations: %w", err)
	}
	return out, nil
}

// RevocationCount implements revocation.Store.
func (st *Store) RevocationCount(ctx context.Context) (int, error) {
	out, err := st.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(st.table), Key: key(pkRevCount, skRevCount), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return 0, fmt.Errorf("awsops: revocation count: %w", err)
	}
	n, err := numAttr(out.Item, attrCount)
	if err != nil {
		return 0, fmt.Errorf("awsops: revocation count: %w", err)
	}
	return int(n), nil
}

func decodeRevocation(it map[string]types.AttributeValue) (revocation.Entry, error) {
	var e revocation.Entry
	doc, ok := it[attrDoc].(*types.AttributeValueMemberS)
	if !ok {
		return e, fmt.Errorf("%w: revocation without doc", ErrCorrupt)
	}
	if err := json.Unmarshal([]byte(doc.Value), &e); err != nil {
		return e, fmt.Errorf("%w: revocation entry: %w", ErrCorrupt, err)
	}
	return e, nil
}
