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
	"github.com/vaxpass/vaxpass/shared/stage/renewal"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// skSlice prefixes a renewal run's slice items, next to the run item in its partition.
const skSlice = "SLICE#"

func sliceSK(index int) string { return fmt.Sprintf("%s%04d", skSlice, index) }

// RenewalSlice implements renewal.Runs (a strongly consistent read).
func (st *Store) RenewalSlice(ctx context.Context, runID string, index int) (renewal.Slice, error) {
	out, err := st.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(st.table), Key: key(pkRun+runID, sliceSK(index)), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return renewal.Slice{}, fmt.Errorf("awsops: renewal slice %s/%d: %w", runID, index, err)
	}
	if out.Item == nil {
		return renewal.Slice{}, fmt.Errorf("awsops: renewal slice %s/%d: %w", runID, index, vaxpass.ErrNotFound)
	}
	return sliceFrom(out.Item)
}

// RenewalSlices implements renewal.Runs: one strongly consistent query of the run's
// partition, so a worker that just stored its slice done sees it (the run is finished
// by a worker that sees every slice done).
func (st *Store) RenewalSlices(ctx context.Context, runID string) ([]renewal.Slice, error) {
	in := &dynamodb.QueryInput{
		TableName:                 aws.String(st.table),
		KeyConditionExpression:    aws.String("#pk = :pk AND begins_with(#sk, :sk)"),
		ExpressionAttributeNames:  map[string]string{"#pk": attrPK, "#sk": attrSK},
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": s(pkRun + runID), ":sk": s(skSlice)},
		ConsistentRead:            aws.Bool(true),
	}
	var out []renewal.Slice
	for {
		page, err := st.db.Query(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("awsops: renewal slices of %s: %w", runID, err)
		}
		for _, item := range page.Items {
			sl, err := sliceFrom(item)
			if err != nil {
				return nil, err
			}
			out = append(out, sl)
		}
		if len(page.LastEvaluatedKey) == 0 {
			return out, nil
		}
		in.ExclusiveStartKey = page.LastEvaluatedKey
	}
}

func sliceFrom(item map[string]types.AttributeValue) (renewal.Slice, error) {
	var sl renewal.Slice
	doc, ok := item[attrDoc].(*types.AttributeValueMemberS)
	if !ok {
		return sl, fmt.Errorf("%w: renewal slice without doc", ErrCorrupt)
	}
	if err := json.Unmarshal([]byte(doc.Value), &sl); err != nil {
		return sl, fmt.Errorf("%w: renewal slice: %w", ErrCorrupt, err)
	}
	return sl, nil
}

// SaveRenewalSlice implements renewal.Runs: the slice at Version+1, conditional on the
// stored version (a new slice, Version 0, on none being stored), with its notes appended
// to the audit trail, in one transaction; vaxpass.ErrConflict otherwise.
func (st *Store) SaveRenewalSlice(ctx context.Context, sl *renewal.Slice, notes ...audit.Entry) error {
	if sl.RunID == "" || sl.Index < 0 || sl.Index >= renewal.MaxSlices {
		return fmt.Errorf("awsops: save renewal slice: %w: run %q slice %d", vaxpass.ErrInvalid, sl.RunID, sl.Index)
	}
	if len(notes) > maxNotes {
		return fmt.Errorf("awsops: save renewal slice: %d audit notes, at most %d in one save", len(notes), maxNotes)
	}
	next := *sl
	next.Version = sl.Version + 1
	doc, err := json.Marshal(next)
	if err != nil {
		return fmt.Errorf("awsops: save renewal slice: %w", err)
	}
	put := st.versionedPut(pkRun+sl.RunID, sliceSK(sl.Index), sl.Version, doc)
	items := []types.TransactWriteItem{{Put: put}}
	for i := range notes {
		it, err := st.auditItem(&notes[i])
		if err != nil {
			return fmt.Errorf("awsops: save renewal slice: %w", err)
		}
		items = append(items, auditPut(st.table, it))
	}
	if err := st.markAuditDays(ctx, notes...); err != nil {
		return fmt.Errorf("awsops: save renewal slice: %w", err)
	}
	if len(items) == 1 {
		// No notes: a plain conditional put is cheaper than a transaction.
		_, err = st.db.PutItem(ctx, putItem(put))
		var failed *types.ConditionalCheckFailedException
		if errors.As(err, &failed) {
			return fmt.Errorf("awsops: save renewal slice %s/%d: %w: changed concurrently", sl.RunID, sl.Index, vaxpass.ErrConflict)
		}
	} else {
		_, err = st.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
		var canceled *types.TransactionCanceledException
		if errors.As(err, &canceled) {
			for _, r := range canceled.CancellationReasons {
				if aws.ToString(r.Code) == "ConditionalCheckFailed" {
					return fmt.Errorf("awsops: save renewal slice %s/%d: %w: changed concurrently", sl.RunID, sl.Index, vaxpass.ErrConflict)
				}
			}
		}
	}
	if err != nil {
		return fmt.Errorf("awsops: save renewal slice %s/%d: %w", sl.RunID, sl.Index, err)
	}
	sl.Version = next.Version
	return nil
}
