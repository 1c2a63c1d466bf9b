package cloud

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
)

// kmsRotation is the KMS API a facility key's rotation and revocation use beyond
// KMSFacilityKeys.KMS (the SDK's client has it all).
type kmsRotation interface {
	UpdateAlias(ctx context.Context, in *kms.UpdateAliasInput, opts ...func(*kms.Options)) (*kms.UpdateAliasOutput, error)
	DisableKey(ctx context.Context, in *kms.DisableKeyInput, opts ...func(*kms.Options)) (*kms.DisableKeyOutput, error)
	ScheduleKeyDeletion(ctx context.Context, in *kms.ScheduleKeyDeletionInput, opts ...func(*kms.Options)) (*kms.ScheduleKeyDeletionOutput, error)
}

// RevokedKeyDeletionDays is the waiting period of a revoked facility key's deletion: the
// longest KMS allows, so a revocation by mistake can still be undone (CancelKeyDeletion,
// EnableKey). The key is disabled at once.
const RevokedKeyDeletionDays = 30

func (k *KMSFacilityKeys) rotation() (kmsRotation, error) {
	r, ok := k.KMS.(kmsRotation)
	if !ok {
		return nil, errors.New("the KMS client cannot update aliases or disable keys")
	}
	return r, nil
}

// NewFacilityKey implements wire.FacilityKeyRotator: a new KMS key tagged for the stack
// and the facility, not yet behind the facility's alias.
func (k *KMSFacilityKeys) NewFacilityKey(ctx context.Context, facilityID string) (string, *ecdsa.PublicKey, error) {
	out, err := k.KMS.CreateKey(ctx, &kms.CreateKeyInput{
		KeySpec:     kmstypes.KeySpecEccNistP256,
		KeyUsage:    kmstypes.KeyUsageTypeSignVerify,
		Description: aws.String(fmt.Sprintf("%s facility %s signing key", k.StackTag, facilityID)),
		Tags: []kmstypes.Tag{
			{TagKey: aws.String(TagStack), TagValue: aws.String(k.StackTag)},
			{TagKey: aws.String(TagUse), TagValue: aws.String(TagUseFacility)},
			{TagKey: aws.String("vaxpass:facility"), TagValue: aws.String(facilityID)},
		},
	})
	if err != nil {
		return "", nil, fmt.Errorf("create KMS key of facility %s: %w", facilityID, err)
	}
	arn := aws.ToString(out.KeyMetadata.Arn)
	pub, err := k.PublicKeyOf(ctx, arn)
	if err != nil {
		return "", nil, fmt.Errorf("public key of facility %s's new KMS key: %w", facilityID, err)
	}
	return arn, pub, nil
}

// CurrentFacilityKey implements wire.FacilityKeyRotator: the key behind the facility's
// alias ("" when it has none).
func (k *KMSFacilityKeys) CurrentFacilityKey(ctx context.Context, facilityID string) (string, error) {
	out, err := k.KMS.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(k.alias(facilityID))})
	var nf *kmstypes.NotFoundException
	switch {
	case errors.As(err, &nf):
		return "", nil
	case err != nil:
		return "", fmt.Errorf("describe KMS key of facility %s: %w", facilityID, err)
	}
	return aws.ToString(out.KeyMetadata.Arn), nil
}

// UseFacilityKey implements wire.FacilityKeyRotator: the facility's alias points to keyID.
// Signers read the key from the facility's record (KMSFacilityKeys.signer), so the alias
// is for operators and for EnsureFacilityKey.
func (k *KMSFacilityKeys) UseFacilityKey(ctx context.Context, facilityID, keyID string) error {
	r, err := k.rotation()
	if err != nil {
		return err
	}
	_, err = r.UpdateAlias(ctx, &kms.UpdateAliasInput{AliasName: aws.String(k.alias(facilityID)), TargetKeyId: aws.String(keyID)})
	var nf *kmstypes.NotFoundException
	if errors.As(err, &nf) {
		if cur, cerr := k.CurrentFacilityKey(ctx, facilityID); cerr == nil && cur == "" {
			_, err = k.KMS.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(k.alias(facilityID)), TargetKeyId: aws.String(keyID)})
		}
	}
	if err != nil {
		return fmt.Errorf("point the alias of facility %s to %s: %w", facilityID, keyID, err)
	}
	k.mu.Lock()
	delete(k.pubs, facilityID)
	k.mu.Unlock()
	return nil
}

// DisableFacilityKey implements wire.FacilityKeyRotator: the key is disabled at once (it
// can no longer sign) and its deletion scheduled after RevokedKeyDeletionDays. A key
// already pending deletion is left as it is.
func (k *KMSFacilityKeys) DisableFacilityKey(ctx context.Context, facilityID, keyID string) error {
	r, err := k.rotation()
	if err != nil {
		return err
	}
	var state *kmstypes.KMSInvalidStateException
	if _, err := r.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(keyID)}); err != nil && !errors.As(err, &state) {
		return fmt.Errorf("disable KMS key %s of facility %s: %w", keyID, facilityID, err)
	}
	_, err = r.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(keyID), PendingWindowInDays: aws.Int32(RevokedKeyDeletionDays)})
	if err != nil && !errors.As(err, &state) {
		return fmt.Errorf("schedule the deletion of KMS key %s of facility %s: %w", keyID, facilityID, err)
	}
	return nil
}
