package awsops

import (
	"context"
	"encoding/hex"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// SwapRun implements reprocess.RunStore: doc replaces the run's state if the stored state
// is prev, in one conditional UpdateItem (vaxpass.ErrConflict otherwise). Both must fit
// in the run item (runDocPart): the states swapped -- those of runs cut into parts --
// hold no batch and are a few KB.
func (st *Store) SwapRun(ctx context.Context, runID string, prev, doc []byte) error {
	if err := checkRunID(runID); err != nil {
		return fmt.Errorf("awsops: swap run: %w", err)
	}
	if len(prev) > runDocPart || len(doc) > runDocPart {
		return fmt.Errorf("awsops: swap run %s: %w: states of %d and %d bytes, more than %d", runID, vaxpass.ErrInvalid, len(prev), len(doc), runDocPart)
	}
	hid := hex.EncodeToString([]byte(runID))
	// The version rises as with SaveRun, so a save that read the run before this swap
	// reads it again (commitRun's condition) instead of writing over it unseen.
	st.runMeta.Delete(hid)
	_, err := st.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(st.table), Key: key(pkReprocess, hid),
		UpdateExpression:         aws.String("SET #d = :doc, #v = #v + :one"),
		ConditionExpression:      aws.String("#d = :prev"),
		ExpressionAttributeNames: map[string]string{"#d": attrDoc, "#v": attrVer},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":doc": &types.AttributeValueMemberB{Value: append([]byte{}, doc...)}, ":prev": &types.AttributeValueMemberB{Value: append([]byte{}, prev...)},
			":one": num(1),
		},
	})
	if isConflict(err) {
		return fmt.Errorf("awsops: swap run %s: %w: the run's state changed", runID, vaxpass.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("awsops: swap run %s: %w", runID, err)
	}
	return nil
}
