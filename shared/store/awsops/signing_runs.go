package awsops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/vaxpass/vaxpass/shared/stage/signing"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// Facility signing runs (signing.RunStore):
//
//	signing run     pk "SIGNRUN#"+id              sk "RUN"      version N, doc S (JSON of signing.Run)
//	facility latest pk "SIGNRUNFAC#"+facility ID  sk "LATEST"   run_id S
//
// One partition per run: runs of many facilities are saved page by page in parallel.
const (
	pkSigningRun    = "SIGNRUN#"
	pkSigningLatest = "SIGNRUNFAC#"
	skSigningLatest = "LATEST"
)

// SaveSigningRun implements signing.RunStore: a conditional put on the stored version.
func (st *Store) SaveSigningRun(ctx context.Context, run *signing.Run) error {
	if run.ID == "" {
		return fmt.Errorf("awsops: save signing run: %w: run without ID", vaxpass.ErrInvalid)
	}
	next := *run
	next.Version = run.Version + 1
	doc, err := json.Marshal(next)
	if err != nil {
		return fmt.Errorf("awsops: save signing run: %w", err)
	}
	put := st.versionedPut(pkSigningRun+run.ID, skRun, run.Version, doc)
	if run.Version == 0 {
		// A new run and the facility's pointer to it, together.
		latest := key(pkSigningLatest+run.FacilityID, skSigningLatest)
		latest[attrRunID] = s(run.ID)
		_, err := st.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
			{Put: put}, {Put: &types.Put{TableName: put.TableName, Item: latest}},
		}})
		var tce *types.TransactionCanceledException
		if errors.As(err, &tce) {
			return fmt.Errorf("awsops: save signing run %s: %w: stored already", run.ID, vaxpass.ErrConflict)
		}
		if err != nil {
			return fmt.Errorf("awsops: save signing run %s: %w", run.ID, err)
		}
	} else if _, err := st.db.PutItem(ctx, putItem(put)); err != nil {
		var ccf *types.ConditionalCheckFailedException
		if errors.As(err, &ccf) {
			return fmt.Errorf("awsops: save signing run %s: %w: not at version %d", run.ID, vaxpass.ErrConflict, run.Version)
		}
		return fmt.Errorf("awsops: save signing run %s: %w", run.ID, err)
	}
	run.Version = next.Version
	return nil
}

// LatestSigningRun implements signing.RunStore.
func (st *Store) LatestSigningRun(ctx context.Context, facilityID string) (signing.Run, bool, error) {
	out, err := st.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(st.table), Key: key(pkSigningLatest+facilityID, skSigningLatest), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return signing.Run{}, false, fmt.Errorf("awsops: latest signing run: %w", err)
	}
	id, ok := out.Item[attrRunID].(*types.AttributeValueMemberS)
	if out.Item == nil || !ok {
		return signing.Run{}, false, nil
	}
	run, err := st.SigningRun(ctx, id.Value)
	return run, err == nil, err
}

// SigningRun implements signing.RunStore.
func (st *Store) SigningRun(ctx context.Context, id string) (signing.Run, error) {
	var run signing.Run
	if id == "" {
		return run, fmt.Errorf("awsops: signing run: %w", vaxpass.ErrNotFound)
	}
	out, err := st.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(st.table), Key: key(pkSigningRun+id, skRun), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return run, fmt.Errorf("awsops: signing run: %w", err)
	}
	if out.Item == nil {
		return run, fmt.Errorf("awsops: signing run %s: %w", id, vaxpass.ErrNotFound)
	}
	doc, ok := out.Item[attrDoc].(*types.AttributeValueMemberS)
	if !ok {
		return run, fmt.Errorf("%w: signing run %s without doc", ErrCorrupt, id)
	}
	if err := json.Unmarshal([]byte(doc.Value), &run); err != nil {
		return run, fmt.Errorf("%w: signing run %s: %w", ErrCorrupt, id, err)
	}
	return run, nil
}
