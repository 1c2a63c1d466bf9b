package cloud

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"math/big"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/vaxpass/vaxpass/shared/testkit/awstest"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// recordFacilities is a facility record per ID, changed by the test.
type recordFacilities struct {
	mu sync.Mutex
	f  map[string]vaxpass.Facility
}

func (r *recordFacilities) GetFacility(_ context.Context, id string) (vaxpass.Facility, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f, ok := r.f[id]
	if !ok {
		return f, vaxpass.ErrNotFound
	}
	return f, nil
}

func (r *recordFacilities) setKey(id, keyID string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.f[id] = vaxpass.Facility{ID: id, KeyID: keyID}
}

func signsWith(t *testing.T, k *KMSFacilityKeys, facilityID string, pub *ecdsa.PublicKey) bool {
	t.Helper()
	s, err := k.FacilitySigner(t.Context(), facilityID)
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("page head")
	sig, err := s.Sign(t.Context(), msg)
	if err != nil {
		t.Fatal(err)
	}
	d := sha256.Sum256(msg)
	return ecdsa.Verify(pub, d[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:]))
}

// A facility's KMS key rotates (a new key behind the alias, signers following the
// record at once even in an instance that signed before) and a revoked key is disabled
// and scheduled for deletion, so it can no longer sign.
func TestKMSFacilityKeyRotation(t *testing.T) {
	client := kms.NewFromConfig(awstest.Config(t))
	ctx := t.Context()
	recs := &recordFacilities{f: map[string]vaxpass.Facility{}}
	k := &KMSFacilityKeys{KMS: client, Facilities: recs, StackTag: awstest.UniqueName(t, "fk")}
	var created []string
	t.Cleanup(func() {
		for _, id := range created {
			client.ScheduleKeyDeletion(context.Background(), &kms.ScheduleKeyDeletionInput{KeyId: aws.String(id), PendingWindowInDays: aws.Int32(7)})
		}
	})

	first, err := k.EnsureFacilityKey(ctx, "F1")
	if err != nil {
		t.Fatal(err)
	}
	created = append(created, first)
	recs.setKey("F1", first)
	if cur, err := k.CurrentFacilityKey(ctx, "F1"); err != nil || cur != first {
		t.Fatalf("current key %q, %v; want %q", cur, err, first)
	}
	firstPub, err := k.PublicKeyOf(ctx, first)
	if err != nil {
		t.Fatal(err)
	}
	if !signsWith(t, k, "F1", firstPub) {
		t.Fatal("does not sign with the first key")
	}

	second, secondPub, err := k.NewFacilityKey(ctx, "F1")
	if err != nil {
		t.Fatal(err)
	}
	created = append(created, second)
	if second == first || secondPub.Equal(firstPub) {
		t.Fatal("the new key is the first one")
	}
	if cur, _ := k.CurrentFacilityKey(ctx, "F1"); cur != first {
		t.Errorf("a new key moved the alias before UseFacilityKey: %s", cur)
	}
	if err := k.UseFacilityKey(ctx, "F1", second); err != nil {
		t.Fatal(err)
	}
	if cur, err := k.CurrentFacilityKey(ctx, "F1"); err != nil || cur != second {
		t.Errorf("current key after use: %q, %v; want %q", cur, err, second)
	}
	// The record decides which key signs: this instance's cached signer of the first key
	// is left as soon as the record names the second.
	recs.setKey("F1", second)
	if !signsWith(t, k, "F1", secondPub) {
		t.Error("still signing with the first key after the record changed")
	}
	if again, err := k.EnsureFacilityKey(ctx, "F1"); err != nil || again != second {
		t.Errorf("EnsureFacilityKey after rotation: %s, %v; want the current key", again, err)
	}

	if err := k.DisableFacilityKey(ctx, "F1", first); err != nil {
		t.Fatal(err)
	}
	if err := k.DisableFacilityKey(ctx, "F1", first); err != nil {
		t.Errorf("disabling again: %v", err)
	}
	out, err := client.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(first)})
	if err != nil {
		t.Fatal(err)
	}
	if st := out.KeyMetadata.KeyState; st != kmstypes.KeyStatePendingDeletion && st != kmstypes.KeyStateDisabled {
		t.Errorf("revoked key state %s, want disabled or pending deletion", st)
	}
	if _, err := client.Sign(ctx, &kms.SignInput{KeyId: aws.String(first), Message: make([]byte, 32),
		MessageType: kmstypes.MessageTypeDigest, SigningAlgorithm: kmstypes.SigningAlgorithmSpecEcdsaSha256}); err == nil {
		t.Error("the revoked key still signs")
	}
}
