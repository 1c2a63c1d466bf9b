package awsops_test

import (
	"context"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/vaxpass/vaxpass/shared/domain/access"
	"github.com/vaxpass/vaxpass/shared/store/awsops"
	"github.com/vaxpass/vaxpass/shared/testkit/storetest"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// TestAccessKeysContract: the access keys behave as the embedded backend's do.
func TestAccessKeysContract(t *testing.T) {
	storetest.RunAccessKeys(t, func(t *testing.T) (storetest.AccessKeys, func() storetest.AccessKeys) {
		st, client, table := openTable(t)
		return st, func() storetest.AccessKeys {
			other, err := awsops.New(client, table, time.Now)
			if err != nil {
				t.Fatal(err)
			}
			return other
		}
	})
}

func openTable(t *testing.T) (*awsops.Store, *dynamodb.Client, string) {
	t.Helper()
	st, _, _, client, table := openHooked(t)
	return st, client, table
}

// TestOldOpsKeys: an ops key stored before the roles (pk OPSKEY, attribute actor)
// authenticates as a key of role ops, is listed and is revoked by its ID.
func TestOldOpsKeys(t *testing.T) {
	st, client, table := openTable(t)
	ctx := context.Background()
	old := access.Hash("vxo_old-alice")
	item := map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: "OPSKEY"}, "sk": &types.AttributeValueMemberS{Value: hexOf(old)},
		"actor": &types.AttributeValueMemberS{Value: "alice"}, "created_at": &types.AttributeValueMemberS{Value: t0.Format(time.RFC3339Nano)},
	}
	if _, err := client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: item}); err != nil {
		t.Fatal(err)
	}
	if actor, ok, err := st.OpsKeyValid(ctx, old); err != nil || !ok || actor != "alice" {
		t.Fatalf("OpsKeyValid(old key) = %q, %v, %v", actor, ok, err)
	}
	k, err := st.KeyByHash(ctx, old)
	want := access.Key{ID: access.IDOf(old), Role: access.Ops, Subject: "alice", Hash: old, CreatedAt: t0}
	if err != nil || k.ID != want.ID || k.Role != want.Role || k.Subject != want.Subject || !k.CreatedAt.Equal(t0) || k.Revoked() {
		t.Fatalf("KeyByHash(old key) = %+v, %v; want %+v", k, err, want)
	}
	// A new ops key through the old port is an access key of role ops.
	if err := st.AddOpsKey(ctx, "bob", access.Hash("vxo_bob"), t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := st.AddOpsKey(ctx, "bob", access.Hash("vxo_bob"), t0.Add(time.Minute)); !errors.Is(err, vaxpass.ErrConflict) {
		t.Errorf("AddOpsKey again = %v, want ErrConflict", err)
	}
	if err := st.AddKey(ctx, access.Key{Role: access.Clerk, Subject: "00004", Hash: access.Hash("vxc_clerk"), CreatedAt: t0.Add(2 * time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := st.OpsKeyValid(ctx, access.Hash("vxc_clerk")); ok || err != nil {
		t.Errorf("OpsKeyValid(a clerk key) = %v, %v; want refused", ok, err)
	}
	list, err := st.ListKeys(ctx)
	if err != nil || len(list) != 3 || list[0].ID != want.ID || list[1].Subject != "bob" || list[2].Role != access.Clerk {
		t.Fatalf("ListKeys = %+v, %v", list, err)
	}
	rk, err := st.RevokeKey(ctx, strings.ToUpper(want.ID), t0.Add(time.Hour))
	if err != nil || !rk.RevokedAt.Equal(t0.Add(time.Hour)) || rk.Subject != "alice" {
		t.Fatalf("RevokeKey(old key) = %+v, %v", rk, err)
	}
	if _, ok, err := st.OpsKeyValid(ctx, old); ok || err != nil {
		t.Errorf("OpsKeyValid(revoked old key) = %v, %v; want refused", ok, err)
	}
	if k, err := st.KeyByHash(ctx, old); err != nil || !k.RevokedAt.Equal(t0.Add(time.Hour)) {
		t.Errorf("KeyByHash(revoked old key) = %+v, %v", k, err)
	}
	if rk, err := st.RevokeKey(ctx, want.ID, t0.Add(2*time.Hour)); err != nil || !rk.RevokedAt.Equal(t0.Add(time.Hour)) {
		t.Errorf("RevokeKey(old key) again = %+v, %v; want it unchanged", rk, err)
	}
	// The table holds hashes only: no key, nor its prefix, is in any attribute.
	out, err := client.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(table)})
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range out.Items {
		for name, v := range it {
			if sv, ok := v.(*types.AttributeValueMemberS); ok && strings.Contains(sv.Value, "vx") && strings.Contains(sv.Value, "_") {
				t.Errorf("item attribute %s holds a key: %q", name, sv.Value)
			}
		}
	}
}

func hexOf(b []byte) string { return hex.EncodeToString(b) }
