package deployed

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/vaxpass/vaxpass/shared/domain/facilitysig"
	"github.com/vaxpass/vaxpass/shared/stage/audit"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
	"github.com/vaxpass/vaxpass/shared/wire"
)

// TestDeployedFacilityKeyRevoke rotates and revokes a facility's KMS signing key on the
// deployed stack: central signing (the Lambda) keeps accepting what the former key signed
// after a rotation, accepts the new key's signatures at once, and refuses (dead-letters)
// what a revoked key signed; the revoked KMS key can no longer sign.
func TestDeployedFacilityKeyRevoke(t *testing.T) {
	s := openStack(t)
	ctx := audit.WithActor(context.Background(), "cli:e2e")
	var b [4]byte
	rand.Read(b[:])
	fid := "e2e-fk-" + hex.EncodeToString(b[:])
	if _, err := s.sys.Sys.AddFacility(ctx, fid, "Trạm Y tế khoá"); err != nil {
		t.Fatal(err)
	}
	n := 0
	sign := func() vaxpass.FacilitySignature {
		t.Helper()
		n++
		signer, err := s.sys.Keys.FacilitySigner(ctx, fid)
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now().UTC()
		person := fmt.Sprintf("0019%08x", uint32(b[0])<<24|uint32(b[1])<<16|uint32(n))
		c := facilitysig.Content{PersonID: person, FacilityID: fid, FullName: "NGUYEN VAN KHOA", DOB: "1980-01-02",
			Gender: "M", Nationality: "VN", SignedAt: now,
			Doses: []facilitysig.Dose{{SourceID: fmt.Sprintf("fk-%d", n), Vaccine: "PFIZER", DoseNumber: 1, VaccinatedOn: "2021-08-01"}}}
		payload, sig, err := facilitysig.Sign(ctx, signer, c)
		if err != nil {
			t.Fatal(err)
		}
		return vaxpass.FacilitySignature{PersonID: person, FacilityID: fid, Payload: payload, Signature: sig, SignedAt: now}
	}
	send := func(sig vaxpass.FacilitySignature) {
		t.Helper()
		if err := s.sys.Queue.SendSignature(ctx, sig); err != nil {
			t.Fatal(err)
		}
	}
	stored := func(sig vaxpass.FacilitySignature) bool {
		t.Helper()
		sigs, err := s.sys.Store.FacilitySignatures(ctx, sig.PersonID)
		if err != nil {
			t.Fatal(err)
		}
		for _, sg := range sigs {
			if sg.FacilityID == fid && string(sg.Signature) == string(sig.Signature) {
				return true
			}
		}
		return false
	}
	waitStored := func(what string, sigs ...vaxpass.FacilitySignature) {
		t.Helper()
		eventually(t, what, func() (bool, string) {
			for i, sg := range sigs {
				if !stored(sg) {
					return false, fmt.Sprintf("signature %d of %d not stored", i+1, len(sigs))
				}
			}
			return true, ""
		})
	}

	first := sign()
	send(first)
	waitStored("the first key's signature stored", first)
	beforeRotation := sign()

	rot, err := s.sys.Sys.RotateFacilityKey(ctx, fid)
	if err != nil {
		t.Fatal(err)
	}
	second := sign()
	send(second)
	send(beforeRotation)
	waitStored("the new key's and the former key's signatures stored after a rotation", second, beforeRotation)
	beforeRevocation := sign()

	rev, err := s.sys.Sys.RevokeFacilityKey(ctx, fid)
	if err != nil {
		t.Fatal(err)
	}
	if rev.FormerKeyID != rot.KeyID {
		t.Fatalf("revoked %s, want the rotated key %s", rev.FormerKeyID, rot.KeyID)
	}
	// Central signing instances re-read a facility's keys within FacilityKeyTTL.
	time.Sleep(wire.FacilityKeyTTL + time.Second)
	client := sqs.NewFromConfig(s.cfg)
	dlq := s.outputs["CentralDeadLetterQueueUrl"]
	depth := func() int {
		out, err := client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(dlq), AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages}})
		if err != nil {
			t.Fatal(err)
		}
		var d int
		fmt.Sscan(out.Attributes[string(sqstypes.QueueAttributeNameApproximateNumberOfMessages)], &d)
		return d
	}
	before := depth()
	send(beforeRevocation)
	third := sign()
	send(third)
	waitStored("the current key's signature stored after the revocation", third)
	eventually(t, "the revoked key's signature dead-lettered", func() (bool, string) {
		d := depth()
		return d > before, fmt.Sprintf("%d dead letters, %d before", d, before)
	})
	if stored(beforeRevocation) {
		t.Error("central signing stored a signature made with the revoked key")
	}
	if _, err := kms.NewFromConfig(s.cfg).Sign(ctx, &kms.SignInput{KeyId: aws.String(rev.FormerKeyID), Message: []byte("revoked"),
		MessageType: kmstypes.MessageTypeRaw, SigningAlgorithm: kmstypes.SigningAlgorithmSpecEcdsaSha256}); err == nil {
		t.Error("the revoked KMS key still signs")
	}
}
