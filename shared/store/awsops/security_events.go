package awsops

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/vaxpass/vaxpass/shared/stage/security"
)

var _ security.Store = (*Store)(nil)

// Security event counts (security.Store, stats.SecurityCounters):
//
//	day's counts       pk "SECEVENTS#"+YYYY-MM-DD (Vietnam day)   sk "COUNTS"   k_<kind> N
//	all-time counts    pk "SECEVENTS#TOTAL"                       sk "COUNTS"   k_<kind> N
//
// Both are added to in one transaction. Each process batches its events (one write per
// second at most, security.Recorder), so even an attack answered by many instances stays
// far below a partition's 1,000 writes a second.
const (
	pkSecEvents    = "SECEVENTS#"
	skSecEvents    = "COUNTS"
	secEventsTotal = "TOTAL"
	attrKind       = "k_"
)

// AddSecurityEvents implements security.Store.
func (st *Store) AddSecurityEvents(ctx context.Context, day string, counts map[string]int64) error {
	if len(counts) == 0 {
		return nil
	}
	var adds []string
	names := map[string]string{}
	values := map[string]types.AttributeValue{}
	for i, kind := range slices.Sorted(maps.Keys(counts)) {
		n, v := "#k"+strconv.Itoa(i), ":v"+strconv.Itoa(i)
		names[n], values[v] = attrKind+kind, num(counts[kind])
		adds = append(adds, n+" "+v)
	}
	expr := aws.String("ADD " + strings.Join(adds, ", "))
	update := func(pk string) types.TransactWriteItem {
		return types.TransactWriteItem{Update: &types.Update{
			TableName: aws.String(st.table), Key: key(pk, skSecEvents),
			UpdateExpression: expr, ExpressionAttributeNames: names, ExpressionAttributeValues: values,
		}}
	}
	_, err := st.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		update(pkSecEvents + day), update(pkSecEvents + secEventsTotal),
	}})
	if err != nil {
		return fmt.Errorf("awsops: count security events: %w", err)
	}
	return nil
}

// SecurityCounts implements stats.SecurityCounters: the counts by kind of day and in all.
func (st *Store) SecurityCounts(ctx context.Context, day string) (today, total map[string]int64, err error) {
	if today, err = st.securityCounts(ctx, day); err != nil {
		return nil, nil, err
	}
	if total, err = st.securityCounts(ctx, secEventsTotal); err != nil {
		return nil, nil, err
	}
	return today, total, nil
}

func (st *Store) securityCounts(ctx context.Context, which string) (map[string]int64, error) {
	out, err := st.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(st.table), Key: key(pkSecEvents+which, skSecEvents)})
	if err != nil {
		return nil, fmt.Errorf("awsops: security events %s: %w", which, err)
	}
	counts := map[string]int64{}
	for name := range out.Item {
		kind, ok := strings.CutPrefix(name, attrKind)
		if !ok {
			continue
		}
		n, err := numAttr(out.Item, name)
		if err != nil {
			return nil, fmt.Errorf("awsops: security events %s: %w", which, err)
		}
		counts[kind] = n
	}
	return counts, nil
}
