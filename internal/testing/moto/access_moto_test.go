package moto

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"
)

func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != code {
		t.Errorf("%s: got %v, want %s", what, err, code)
	}
}

// TestForeignKeyIsAccessDenied (patch 7): every KMS call naming another
// account's key is denied, also when a key of this account has the same id.
func TestForeignKeyIsAccessDenied(t *testing.T) {
	_, kmsc := clients(t)
	ctx := context.Background()
	own := createKey(t, kmsc)
	foreign := strings.Replace(aws.ToString(own.Arn), ":"+AccountID+":", ":999988887777:", 1)
	_, err := kmsc.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(foreign)})
	wantCode(t, "DescribeKey", err, "AccessDeniedException")
	_, err = kmsc.GetKeyPolicy(ctx, &kms.GetKeyPolicyInput{KeyId: aws.String(foreign)})
	wantCode(t, "GetKeyPolicy", err, "AccessDeniedException")
	_, err = kmsc.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: aws.String(foreign), GranteePrincipal: aws.String("arn:aws:iam::111122223333:root"),
		Operations: []kmstypes.GrantOperation{kmstypes.GrantOperationDecrypt}})
	wantCode(t, "CreateGrant", err, "AccessDeniedException")
	if _, err := kmsc.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: own.Arn}); err != nil {
		t.Errorf("DescribeKey on this account's key: %v", err)
	}
}

// TestDelegatedKeysOnly (patch 8): on request, key writes need the tag
// amishare:managed=true; reads do not; Reset turns it off.
func TestDelegatedKeysOnly(t *testing.T) {
	_, kmsc := clients(t)
	s := ForTest(t)
	ctx := context.Background()
	key := createKey(t, kmsc)
	grant := func() error {
		_, err := kmsc.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: key.Arn, GranteePrincipal: aws.String("arn:aws:iam::111122223333:root"),
			Operations: []kmstypes.GrantOperation{kmstypes.GrantOperationDecrypt}})
		return err
	}
	if err := s.SetDelegatedKeysOnly(true); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "CreateGrant on an untagged key", grant(), "AccessDeniedException")
	out, err := kmsc.GetKeyPolicy(ctx, &kms.GetKeyPolicyInput{KeyId: key.Arn})
	if err != nil {
		t.Fatalf("GetKeyPolicy on an untagged key: %v", err)
	}
	_, err = kmsc.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: key.Arn, Policy: out.Policy})
	wantCode(t, "PutKeyPolicy on an untagged key", err, "AccessDeniedException")

	if _, err := kmsc.TagResource(ctx, &kms.TagResourceInput{KeyId: key.KeyId,
		Tags: []kmstypes.Tag{{TagKey: aws.String("amishare:managed"), TagValue: aws.String("true")}}}); err != nil {
		t.Fatal(err)
	}
	if err := grant(); err != nil {
		t.Errorf("CreateGrant on a tagged key: %v", err)
	}

	if err := s.Reset(); err != nil {
		t.Fatal(err)
	}
	key = createKey(t, kmsc)
	if err := grant(); err != nil {
		t.Errorf("CreateGrant after Reset (delegated keys only must be off): %v", err)
	}
}

// TestBlockPublicAccessStates (patch 9): both states exist, start unblocked,
// follow Enable/Disable, and Reset clears them.
func TestBlockPublicAccessStates(t *testing.T) {
	ec2c, _ := clients(t)
	ctx := context.Background()
	states := func() (string, string) {
		t.Helper()
		img, err := ec2c.GetImageBlockPublicAccessState(ctx, &ec2.GetImageBlockPublicAccessStateInput{})
		if err != nil {
			t.Fatal(err)
		}
		snap, err := ec2c.GetSnapshotBlockPublicAccessState(ctx, &ec2.GetSnapshotBlockPublicAccessStateInput{})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(img.ImageBlockPublicAccessState), string(snap.State)
	}
	if i, s := states(); i != "unblocked" || s != "unblocked" {
		t.Errorf("initial states %s %s, want unblocked unblocked", i, s)
	}
	if _, err := ec2c.EnableImageBlockPublicAccess(ctx, &ec2.EnableImageBlockPublicAccessInput{
		ImageBlockPublicAccessState: ec2types.ImageBlockPublicAccessEnabledStateBlockNewSharing}); err != nil {
		t.Fatal(err)
	}
	if _, err := ec2c.EnableSnapshotBlockPublicAccess(ctx, &ec2.EnableSnapshotBlockPublicAccessInput{
		State: ec2types.SnapshotBlockPublicAccessStateBlockNewSharing}); err != nil {
		t.Fatal(err)
	}
	if i, s := states(); i != "block-new-sharing" || s != "block-new-sharing" {
		t.Errorf("states after enabling %s %s, want block-new-sharing block-new-sharing", i, s)
	}
	if _, err := ec2c.DisableSnapshotBlockPublicAccess(ctx, &ec2.DisableSnapshotBlockPublicAccessInput{}); err != nil {
		t.Fatal(err)
	}
	if _, s := states(); s != "unblocked" {
		t.Errorf("snapshot state after disabling %s, want unblocked", s)
	}
	if err := ForTest(t).Reset(); err != nil {
		t.Fatal(err)
	}
	if i, _ := states(); i != "unblocked" {
		t.Errorf("image state after Reset %s, want unblocked", i)
	}
}
