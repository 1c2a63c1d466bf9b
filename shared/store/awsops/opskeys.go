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
	"unicode"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/vaxpass/vaxpass/shared/stage/audit"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

const (
	pkOpsKey      = "OPSKEY"
	attrActor     = "actor"
	attrCreatedAt = "created_at"
	attrRevokedAt = "revoked_at"

	// FingerprintLen is how many hex digits of a key's SHA-256 name it (OpsKey.Fingerprint).
	FingerprintLen = 8
)

// OpsKey is an ops key as listed: never the key, nor its whole hash.
type OpsKey struct {
	Actor string `json:"actor"`
	// Fingerprint is the first FingerprintLen hex digits of the key's SHA-256.
	Fingerprint string    `json:"fingerprint"`
	CreatedAt   time.Time `json:"created_at"`
	// RevokedAt is zero while the key is valid.
	RevokedAt time.Time `json:"revoked_at,omitzero"`
}

// AddOpsKey stores the SHA-256 of a new ops key for actor (the key itself is never
// stored); createdAt zero is now. vaxpass.ErrConflict when that hash is stored already.
func (st *Store) AddOpsKey(ctx context.Context, actor string, sum []byte, createdAt time.Time) error {
	if err := errors.Join(checkOpsActor(actor), checkOpsKeyHash(sum)); err != nil {
		return fmt.Errorf("awsops: add ops key: %w", err)
	}
	if createdAt.IsZero() {
		createdAt = st.now()
	}
	created := createdAt.UTC().Format(time.RFC3339Nano)
	it := key(pkOpsKey, hex.EncodeToString(sum))
	it[attrActor] = s(actor)
	it[attrCreatedAt] = s(created)
	_, err := st.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(st.table), Item: it,
		ConditionExpression: aws.String("attribute_not_exists(#pk)"), ExpressionAttributeNames: map[string]string{"#pk": attrPK},
		// The item as stored, to tell an SDK retry of this very write from a taken hash.
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		old := ccf.Item
		if a, _ := old[attrActor].(*types.AttributeValueMemberS); a != nil && a.Value == actor {
			if c, _ := old[attrCreatedAt].(*types.AttributeValueMemberS); c != nil && c.Value == created {
				if _, revoked := old[attrRevokedAt]; !revoked {
					return nil
				}
			}
		}
		return fmt.Errorf("awsops: add ops key: %w: the key is stored already", vaxpass.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("awsops: add ops key: %w", err)
	}
	return nil
}

func checkOpsActor(actor string) error {
	if actor == "" || len(actor) > audit.MaxActor || !utf8.ValidString(actor) {
		return fmt.Errorf("%w: ops actor must be 1-%d bytes of UTF-8", vaxpass.ErrInvalid, audit.MaxActor)
	}
	for _, r := range actor {
		if !unicode.IsPrint(r) || unicode.IsSpace(r) {
			return fmt.Errorf("%w: ops actor holds a space or control character", vaxpass.ErrInvalid)
		}
	}
	return nil
}

func checkOpsKeyHash(sum []byte) error {
	if len(sum) != sha256.Size {
		return fmt.Errorf("%w: ops key hash is %d bytes, want a SHA-256 (%d)", vaxpass.ErrInvalid, len(sum), sha256.Size)
	}
	return nil
}

// OpsKeyValid implements api.OpsKeys: one read by hash, strongly consistent, so that a
// revoked key is refused at once.
func (st *Store) OpsKeyValid(ctx context.Context, sum []byte) (string, bool, error) {
	if len(sum) != sha256.Size {
		return "", false, nil
	}
	out, err := st.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(st.table), Key: key(pkOpsKey, hex.EncodeToString(sum)), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return "", false, fmt.Errorf("awsops: ops key: %w", err)
	}
	if out.Item == nil {
		return "", false, nil
	}
	k, err := decodeOpsKey(out.Item)
	if err != nil {
		return "", false, fmt.Errorf("awsops: ops key: %w", err)
	}
	if !k.RevokedAt.IsZero() {
		return "", false, nil
	}
	return k.Actor, true, nil
}

// ListOpsKeys lists every ops key, revoked ones included, oldest first.
func (st *Store) ListOpsKeys(ctx context.Context) ([]OpsKey, error) {
	keys, _, err := st.opsKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("awsops: list ops keys: %w", err)
	}
	return keys, nil
}

// opsKeys reads every key, oldest first, with the sort key of each.
func (st *Store) opsKeys(ctx context.Context) ([]OpsKey, []string, error) {
	type stored struct {
		k  OpsKey
		sk string
	}
	var all []stored
	err := st.queryAll(ctx, rangeQuery(st.table, pkOpsKey, "", "", false), func(it map[string]types.AttributeValue) (bool, error) {
		k, err := decodeOpsKey(it)
		if err != nil {
			return false, err
		}
		all = append(all, stored{k, it[attrSK].(*types.AttributeValueMemberS).Value})
		return true, nil
	}, nil)
	if err != nil {
		return nil, nil, err
	}
	slices.SortStableFunc(all, func(a, b stored) int {
		return cmp.Or(a.k.CreatedAt.Compare(b.k.CreatedAt), cmp.Compare(a.sk, b.sk))
	})
	keys := make([]OpsKey, len(all))
	sks := make([]string, len(all))
	for i, x := range all {
		keys[i], sks[i] = x.k, x.sk
	}
	return keys, sks, nil
}

// RevokeOpsKey revokes the valid keys whose fingerprint (either case) or actor is
// fingerprintOrActor, at once: n is how many it revoked (0 when none matched or all
// were revoked already).
func (st *Store) RevokeOpsKey(ctx context.Context, fingerprintOrActor string) (int, error) {
	if fingerprintOrActor == "" {
		return 0, fmt.Errorf("awsops: revoke ops key: %w: a fingerprint or an actor is required", vaxpass.ErrInvalid)
	}
	keys, sks, err := st.opsKeys(ctx)
	if err != nil {
		return 0, fmt.Errorf("awsops: revoke ops key: %w", err)
	}
	at := st.now().UTC().Format(time.RFC3339Nano)
	n := 0
	for i, k := range keys {
		if !k.RevokedAt.IsZero() || (k.Actor != fingerprintOrActor && !strings.EqualFold(k.Fingerprint, fingerprintOrActor)) {
			continue
		}
		_, err := st.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName: aws.String(st.table), Key: key(pkOpsKey, sks[i]),
			UpdateExpression:          aws.String("SET #r = :at"),
			ConditionExpression:       aws.String("attribute_exists(#pk) AND attribute_not_exists(#r)"),
			ExpressionAttributeNames:  map[string]string{"#pk": attrPK, "#r": attrRevokedAt},
			ExpressionAttributeValues: map[string]types.AttributeValue{":at": s(at)},
		})
		var ccf *types.ConditionalCheckFailedException
		if errors.As(err, &ccf) {
			continue // revoked meanwhile
		}
		if err != nil {
			return n, fmt.Errorf("awsops: revoke ops key %s: %w", k.Fingerprint, err)
		}
		n++
	}
	return n, nil
}

func decodeOpsKey(it map[string]types.AttributeValue) (OpsKey, error) {
	var k OpsKey
	sk, _ := it[attrSK].(*types.AttributeValueMemberS)
	actor, _ := it[attrActor].(*types.AttributeValueMemberS)
	created, _ := it[attrCreatedAt].(*types.AttributeValueMemberS)
	if sk == nil || len(sk.Value) != 2*sha256.Size || actor == nil || created == nil {
		return k, fmt.Errorf("%w: ops key item", ErrCorrupt)
	}
	k.Actor, k.Fingerprint = actor.Value, sk.Value[:FingerprintLen]
	var err error
	if k.CreatedAt, err = time.Parse(time.RFC3339Nano, created.Value); err != nil {
		return k, fmt.Errorf("%w: ops key %s: created_at: %w", ErrCorrupt, k.Fingerprint, err)
	}
	if r, ok := it[attrRevokedAt].(*types.AttributeValueMemberS); ok {
		if k.RevokedAt, err = time.Parse(time.RFC3339Nano, r.Value); err != nil {
			return k, fmt.Errorf("%w: ops key %s: revoked_at: %w", ErrCorrupt, k.Fingerprint, err)
		}
	}
	return k, nil
}
