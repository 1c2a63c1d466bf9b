package awsops

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/vaxpass/vaxpass/shared/domain/access"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// Access keys: two items each, written and revoked together (one transaction).
//
//	key by hash   pk "KEY#"+hex(SHA-256)  sk "KEY"   role S, subject S, created_at S, revoked_at S
//	key list      pk "KEYS"               sk key ID  hash S (hex), role S, subject S, created_at S, revoked_at S
//
// Authentication reads the first (one GetItem per request, strongly consistent, so that a
// revocation holds at once); each key is its own partition, so a busy API spreads its
// reads instead of heating one partition. The list (read by operators only) names every
// key by ID for list, rotate and revoke. Ops keys of before the roles (pk "OPSKEY", see
// opskeys.go) are read as keys of role ops whose subject is their actor.
const (
	pkKeyByHash  = "KEY#"
	skKeyByHash  = "KEY"
	pkKeyList    = "KEYS"
	attrRole     = "role"
	attrSubject  = "subject"
	attrKeyHash  = "hash"
	revokeFields = "SET #r = :at"
)

var _ interface {
	KeyByHash(ctx context.Context, hash []byte) (access.Key, error)
	AddKey(ctx context.Context, k access.Key) error
	ListKeys(ctx context.Context) ([]access.Key, error)
	RevokeKey(ctx context.Context, id string, at time.Time) (access.Key, error)
} = (*Store)(nil)

// KeyByHash returns the access key whose SHA-256 is hash: vaxpass.ErrNotFound when none,
// a revoked key with RevokedAt set. A key of the current layout costs one GetItem; only
// an unknown hash also reads the old ops keys.
func (st *Store) KeyByHash(ctx context.Context, hash []byte) (access.Key, error) {
	if len(hash) != sha256.Size {
		return access.Key{}, fmt.Errorf("awsops: access key: %w", vaxpass.ErrNotFound)
	}
	h := hex.EncodeToString(hash)
	out, err := st.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(st.table), Key: key(pkKeyByHash+h, skKeyByHash), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return access.Key{}, fmt.Errorf("awsops: access key: %w", err)
	}
	if out.Item != nil {
		k, err := decodeAccessKey(out.Item, h)
		if err != nil {
			return access.Key{}, fmt.Errorf("awsops: access key: %w", err)
		}
		return k, nil
	}
	out, err = st.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(st.table), Key: key(pkOpsKey, h), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return access.Key{}, fmt.Errorf("awsops: access key: %w", err)
	}
	if out.Item == nil {
		return access.Key{}, fmt.Errorf("awsops: access key: %w", vaxpass.ErrNotFound)
	}
	k, err := decodeLegacyOpsKey(out.Item)
	if err != nil {
		return access.Key{}, fmt.Errorf("awsops: access key: %w", err)
	}
	return k, nil
}

// AddKey stores k (its ID is derived from its hash; CreatedAt zero is now):
// vaxpass.ErrConflict when its hash, or its ID, is stored already.
func (st *Store) AddKey(ctx context.Context, k access.Key) error {
	if err := errors.Join(access.CheckSubject(k.Role, k.Subject), checkOpsKeyHash(k.Hash)); err != nil {
		return fmt.Errorf("awsops: add access key: %w: %w", vaxpass.ErrInvalid, err)
	}
	if !k.RevokedAt.IsZero() {
		return fmt.Errorf("awsops: add access key: %w: a new key cannot be revoked", vaxpass.ErrInvalid)
	}
	if k.CreatedAt.IsZero() {
		k.CreatedAt = st.now()
	}
	h := hex.EncodeToString(k.Hash)
	created := k.CreatedAt.UTC().Format(time.RFC3339Nano)
	byHash := key(pkKeyByHash+h, skKeyByHash)
	byHash[attrRole], byHash[attrSubject], byHash[attrCreatedAt] = s(string(k.Role)), s(k.Subject), s(created)
	listed := key(pkKeyList, access.IDOf(k.Hash))
	listed[attrKeyHash], listed[attrRole], listed[attrSubject], listed[attrCreatedAt] = s(h), s(string(k.Role)), s(k.Subject), s(created)
	absent := aws.String("attribute_not_exists(#pk)")
	names := map[string]string{"#pk": attrPK}
	// The SDK sets a client request token that its retries reuse: a retried add is not a
	// conflict with itself.
	_, err := st.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		{Put: &types.Put{TableName: aws.String(st.table), Item: byHash, ConditionExpression: absent, ExpressionAttributeNames: names}},
		{Put: &types.Put{TableName: aws.String(st.table), Item: listed, ConditionExpression: absent, ExpressionAttributeNames: names}},
	}})
	if conditionFailed(err) {
		return fmt.Errorf("awsops: add access key %s: %w: the key (or its ID) is stored already", access.IDOf(k.Hash), vaxpass.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("awsops: add access key %s: %w", access.IDOf(k.Hash), err)
	}
	return nil
}

// conditionFailed reports whether err is a transaction cancelled by a condition.
func conditionFailed(err error) bool {
	var tce *types.TransactionCanceledException
	if !errors.As(err, &tce) {
		return false
	}
	for _, r := range tce.CancellationReasons {
		if aws.ToString(r.Code) == "ConditionalCheckFailed" {
			return true
		}
	}
	return false
}

// ListKeys lists every access key (the old ops keys included), revoked ones too, oldest
// first.
func (st *Store) ListKeys(ctx context.Context) ([]access.Key, error) {
	var keys []access.Key
	err := st.queryAll(ctx, rangeQuery(st.table, pkKeyList, "", "", false), func(it map[string]types.AttributeValue) (bool, error) {
		h, _ := it[attrKeyHash].(*types.AttributeValueMemberS)
		if h == nil {
			return false, fmt.Errorf("%w: access key list item without hash", ErrCorrupt)
		}
		k, err := decodeAccessKey(it, h.Value)
		keys = append(keys, k)
		return err == nil, err
	}, nil)
	if err != nil {
		return nil, fmt.Errorf("awsops: list access keys: %w", err)
	}
	err = st.queryAll(ctx, rangeQuery(st.table, pkOpsKey, "", "", false), func(it map[string]types.AttributeValue) (bool, error) {
		k, err := decodeLegacyOpsKey(it)
		keys = append(keys, k)
		return err == nil, err
	}, nil)
	if err != nil {
		return nil, fmt.Errorf("awsops: list access keys: %w", err)
	}
	slices.SortStableFunc(keys, func(a, b access.Key) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return keys, nil
}

// RevokeKey revokes the key of ID id (either case) at at, both of its items in one
// transaction: vaxpass.ErrNotFound when there is none; a revoked key is returned as it is.
func (st *Store) RevokeKey(ctx context.Context, id string, at time.Time) (access.Key, error) {
	id = strings.ToLower(id)
	if len(id) != access.IDLen || strings.Trim(id, "0123456789abcdef") != "" {
		return access.Key{}, fmt.Errorf("awsops: revoke access key: %w: a key ID is %d hex digits", vaxpass.ErrInvalid, access.IDLen)
	}
	if at.IsZero() {
		at = st.now()
	}
	out, err := st.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(st.table), Key: key(pkKeyList, id), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return access.Key{}, fmt.Errorf("awsops: revoke access key %s: %w", id, err)
	}
	if out.Item == nil {
		return st.revokeLegacyOpsKey(ctx, id, at)
	}
	h, _ := out.Item[attrKeyHash].(*types.AttributeValueMemberS)
	if h == nil {
		return access.Key{}, fmt.Errorf("awsops: revoke access key %s: %w: list item without hash", id, ErrCorrupt)
	}
	k, err := decodeAccessKey(out.Item, h.Value)
	if err != nil {
		return access.Key{}, fmt.Errorf("awsops: revoke access key %s: %w", id, err)
	}
	if k.Revoked() {
		return k, nil
	}
	at = at.UTC()
	update := func(pk, sk string) types.TransactWriteItem {
		return types.TransactWriteItem{Update: &types.Update{
			TableName: aws.String(st.table), Key: key(pk, sk),
			UpdateExpression:          aws.String(revokeFields),
			ConditionExpression:       aws.String("attribute_exists(#pk) AND attribute_not_exists(#r)"),
			ExpressionAttributeNames:  map[string]string{"#pk": attrPK, "#r": attrRevokedAt},
			ExpressionAttributeValues: map[string]types.AttributeValue{":at": s(at.Format(time.RFC3339Nano))},
		}}
	}
	_, err = st.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		update(pkKeyByHash+h.Value, skKeyByHash), update(pkKeyList, id),
	}})
	if conditionFailed(err) {
		// Revoked meanwhile (by another operator, or this call's own retry): as it is now.
		hash, _ := hex.DecodeString(h.Value)
		now, rerr := st.KeyByHash(ctx, hash)
		if rerr == nil && now.Revoked() {
			return now, nil
		}
		return access.Key{}, fmt.Errorf("awsops: revoke access key %s: %w: its items disagree", id, ErrCorrupt)
	}
	if err != nil {
		return access.Key{}, fmt.Errorf("awsops: revoke access key %s: %w", id, err)
	}
	k.RevokedAt = at
	return k, nil
}

// revokeLegacyOpsKey revokes the old ops key whose hash begins with id.
func (st *Store) revokeLegacyOpsKey(ctx context.Context, id string, at time.Time) (access.Key, error) {
	// The sort keys beginning with id: [id, id+"g") in hex.
	var found []map[string]types.AttributeValue
	err := st.queryAll(ctx, rangeQuery(st.table, pkOpsKey, id, id+"g", false), func(it map[string]types.AttributeValue) (bool, error) {
		found = append(found, it)
		return true, nil
	}, nil)
	if err != nil {
		return access.Key{}, fmt.Errorf("awsops: revoke access key %s: %w", id, err)
	}
	switch len(found) {
	case 0:
		return access.Key{}, fmt.Errorf("awsops: revoke access key %s: %w", id, vaxpass.ErrNotFound)
	case 1:
	default:
		return access.Key{}, fmt.Errorf("awsops: revoke access key %s: %w: %d keys have that ID", id, vaxpass.ErrConflict, len(found))
	}
	k, err := decodeLegacyOpsKey(found[0])
	if err != nil {
		return access.Key{}, fmt.Errorf("awsops: revoke access key %s: %w", id, err)
	}
	if k.Revoked() {
		return k, nil
	}
	at = at.UTC()
	_, err = st.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(st.table), Key: key(pkOpsKey, hex.EncodeToString(k.Hash)),
		UpdateExpression:          aws.String(revokeFields),
		ConditionExpression:       aws.String("attribute_exists(#pk) AND attribute_not_exists(#r)"),
		ExpressionAttributeNames:  map[string]string{"#pk": attrPK, "#r": attrRevokedAt},
		ExpressionAttributeValues: map[string]types.AttributeValue{":at": s(at.Format(time.RFC3339Nano))},
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return st.KeyByHash(ctx, k.Hash) // revoked meanwhile
	}
	if err != nil {
		return access.Key{}, fmt.Errorf("awsops: revoke access key %s: %w", id, err)
	}
	k.RevokedAt = at
	return k, nil
}

// decodeAccessKey reads either item of a key whose hash is h (hex).
func decodeAccessKey(it map[string]types.AttributeValue, h string) (access.Key, error) {
	var k access.Key
	hash, err := hex.DecodeString(h)
	if err != nil || len(hash) != sha256.Size {
		return k, fmt.Errorf("%w: access key hash", ErrCorrupt)
	}
	k.Hash, k.ID = hash, access.IDOf(hash)
	role, _ := it[attrRole].(*types.AttributeValueMemberS)
	subject, _ := it[attrSubject].(*types.AttributeValueMemberS)
	if role == nil || subject == nil {
		return k, fmt.Errorf("%w: access key %s: no role or subject", ErrCorrupt, k.ID)
	}
	k.Role, k.Subject = access.Role(role.Value), subject.Value
	if err := decodeKeyTimes(it, &k); err != nil {
		return k, err
	}
	return k, nil
}

// decodeLegacyOpsKey reads an ops key of before the roles: role ops, subject its actor.
func decodeLegacyOpsKey(it map[string]types.AttributeValue) (access.Key, error) {
	var k access.Key
	sk, _ := it[attrSK].(*types.AttributeValueMemberS)
	actor, _ := it[attrActor].(*types.AttributeValueMemberS)
	if sk == nil || actor == nil {
		return k, fmt.Errorf("%w: ops key item", ErrCorrupt)
	}
	hash, err := hex.DecodeString(sk.Value)
	if err != nil || len(hash) != sha256.Size {
		return k, fmt.Errorf("%w: ops key item", ErrCorrupt)
	}
	k.Hash, k.ID, k.Role, k.Subject = hash, access.IDOf(hash), access.Ops, actor.Value
	if err := decodeKeyTimes(it, &k); err != nil {
		return k, err
	}
	return k, nil
}

func decodeKeyTimes(it map[string]types.AttributeValue, k *access.Key) error {
	created, _ := it[attrCreatedAt].(*types.AttributeValueMemberS)
	if created == nil {
		return fmt.Errorf("%w: access key %s: no created_at", ErrCorrupt, k.ID)
	}
	var err error
	if k.CreatedAt, err = time.Parse(time.RFC3339Nano, created.Value); err != nil {
		return fmt.Errorf("%w: access key %s: created_at: %w", ErrCorrupt, k.ID, err)
	}
	if r, ok := it[attrRevokedAt].(*types.AttributeValueMemberS); ok {
		if k.RevokedAt, err = time.Parse(time.RFC3339Nano, r.Value); err != nil {
			return fmt.Errorf("%w: access key %s: revoked_at: %w", ErrCorrupt, k.ID, err)
		}
	}
	return nil
}
