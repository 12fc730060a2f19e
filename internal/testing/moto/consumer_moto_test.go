package moto

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go/middleware"
)

const (
	receiver = "111122223333"
	stranger = "444455556666"
)

// accounts reaches moto (started or reset once per test) as any account.
type accounts struct {
	srv *Server
	cfg aws.Config
}

func newAccounts(t *testing.T) accounts {
	t.Helper()
	srv := ForTest(t)
	cfg, err := srv.AWSConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	cfg.Retryer = func() aws.Retryer { return aws.NopRetryer{} }
	return accounts{srv: srv, cfg: cfg}
}

// as returns an SDK configuration for moto acting as account (the owner,
// moto's default account, for "").
func (a accounts) as(account string) aws.Config {
	cfg := a.cfg.Copy()
	if account != "" {
		cfg.APIOptions = append(append([]func(*middleware.Stack) error(nil), cfg.APIOptions...), AsAccount(account))
	}
	return cfg
}

// imageSharedWithReceiver registers an image of the owner, tagged team=owners, and
// shares it with the receiver.
func imageSharedWithReceiver(t *testing.T, owner *ec2.Client) string {
	t.Helper()
	ctx := context.Background()
	out, err := owner.RegisterImage(ctx, &ec2.RegisterImageInput{Name: aws.String(strings.ReplaceAll(t.Name(), "/", "-"))})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(out.ImageId)
	if _, err := owner.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{id}, Tags: []ec2types.Tag{{Key: aws.String("team"), Value: aws.String("owners")}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := owner.ModifyImageAttribute(ctx, &ec2.ModifyImageAttributeInput{ImageId: aws.String(id),
		LaunchPermission: &ec2types.LaunchPermissionModifications{Add: []ec2types.LaunchPermission{{UserId: aws.String(receiver)}}}}); err != nil {
		t.Fatal(err)
	}
	return id
}

// TestSharedImageVisibleWithItsOwnTags (patch 15).
func TestSharedImageVisibleWithItsOwnTags(t *testing.T) {
	a, ctx := newAccounts(t), context.Background()
	owner := ec2.NewFromConfig(a.as(""))
	recv, other := ec2.NewFromConfig(a.as(receiver)), ec2.NewFromConfig(a.as(stranger))
	id := imageSharedWithReceiver(t, owner)

	tagsSeen := func(c *ec2.Client, in *ec2.DescribeImagesInput) map[string]string {
		t.Helper()
		out, err := c.DescribeImages(ctx, in)
		if err != nil {
			t.Fatalf("DescribeImages: %v", err)
		}
		if len(out.Images) != 1 || aws.ToString(out.Images[0].ImageId) != id {
			t.Fatalf("DescribeImages: got %d images, want %s", len(out.Images), id)
		}
		m := map[string]string{}
		for _, tag := range out.Images[0].Tags {
			m[aws.ToString(tag.Key)] = aws.ToString(tag.Value)
		}
		return m
	}
	if got := tagsSeen(recv, &ec2.DescribeImagesInput{ImageIds: []string{id}}); len(got) != 0 {
		t.Errorf("the receiver sees the owner's tags %v; want none (tags are private to each account)", got)
	}
	if _, err := recv.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{id}, Tags: []ec2types.Tag{{Key: aws.String("team"), Value: aws.String("receivers")}}}); err != nil {
		t.Fatalf("the receiver tags the image shared with it: %v", err)
	}
	if got := tagsSeen(recv, &ec2.DescribeImagesInput{Owners: []string{AccountID}}); got["team"] != "receivers" {
		t.Errorf("the receiver's own tags %v, want team=receivers", got)
	}
	if got := tagsSeen(recv, &ec2.DescribeImagesInput{ExecutableUsers: []string{"self"}}); got["team"] != "receivers" {
		t.Errorf("ExecutableUsers self: tags %v, want team=receivers", got)
	}
	if got := tagsSeen(owner, &ec2.DescribeImagesInput{ImageIds: []string{id}}); got["team"] != "owners" {
		t.Errorf("the owner's tags %v, want team=owners: the receiver's tag is its own", got)
	}
	if out, err := recv.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{"self"}}); err != nil || len(out.Images) != 0 {
		t.Errorf("the receiver's own images: %d, %v; want none", len(out.Images), err)
	}
	_, err := other.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{id}})
	wantCode(t, "an account the image is not shared with", err, "InvalidAMIID.NotFound")
	_, err = other.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{id}, Tags: []ec2types.Tag{{Key: aws.String("team"), Value: aws.String("x")}}})
	wantCode(t, "tagging an image not shared with it", err, "InvalidAMIID.NotFound")

	if _, err := owner.ModifyImageAttribute(ctx, &ec2.ModifyImageAttributeInput{ImageId: aws.String(id),
		LaunchPermission: &ec2types.LaunchPermissionModifications{Remove: []ec2types.LaunchPermission{{UserId: aws.String(receiver)}}}}); err != nil {
		t.Fatal(err)
	}
	_, err = recv.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{id}})
	wantCode(t, "the receiver after the share is revoked", err, "InvalidAMIID.NotFound")
}

// TestImageParametersValidateAsynchronously (patch 14).
func TestImageParametersValidateAsynchronously(t *testing.T) {
	a, ctx := newAccounts(t), context.Background()
	owner := ec2.NewFromConfig(a.as(""))
	id := imageSharedWithReceiver(t, owner)
	unshared, err := owner.RegisterImage(ctx, &ec2.RegisterImageInput{Name: aws.String("unshared")})
	if err != nil {
		t.Fatal(err)
	}
	put := func(c *ssm.Client, name, value string) {
		t.Helper()
		out, err := c.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String(name), Value: aws.String(value), Type: ssmtypes.ParameterTypeString,
			DataType: aws.String("aws:ec2:image"), Tier: ssmtypes.ParameterTierStandard, Overwrite: aws.Bool(true)})
		if err != nil || out.Version == 0 {
			t.Fatalf("PutParameter %s=%s: %v (version %d); want success and a version whether or not it takes", name, value, err, out.Version)
		}
	}
	value := func(c *ssm.Client, name string) string {
		t.Helper()
		out, err := c.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name)})
		if err != nil {
			if strings.Contains(err.Error(), "ParameterNotFound") {
				return ""
			}
			t.Fatal(err)
		}
		return aws.ToString(out.Parameter.Value)
	}
	ownerSSM, recvSSM := ssm.NewFromConfig(a.as("")), ssm.NewFromConfig(a.as(receiver))
	put(ownerSSM, "/p/own", id)
	if got := value(ownerSSM, "/p/own"); got != id {
		t.Errorf("the owner's parameter: %q, want %s", got, id)
	}
	put(ownerSSM, "/p/own", "ami-0123456789abcdef0")
	if got := value(ownerSSM, "/p/own"); got != id {
		t.Errorf("after a write naming no image: %q, want it unchanged (%s)", got, id)
	}
	put(recvSSM, "/p/recv", aws.ToString(unshared.ImageId))
	if got := value(recvSSM, "/p/recv"); got != "" {
		t.Errorf("a receiver's parameter naming an image not shared with it: %q, want none", got)
	}
	put(recvSSM, "/p/recv", id)
	if got := value(recvSSM, "/p/recv"); got != id {
		t.Errorf("a receiver's parameter naming an image shared with it: %q, want %s", got, id)
	}
	if err := a.srv.Switch("ssm-image-validation-pending", true); err != nil {
		t.Fatal(err)
	}
	put(ownerSSM, "/p/own", aws.ToString(unshared.ImageId))
	if got := value(ownerSSM, "/p/own"); got != id {
		t.Errorf("while validation is pending: %q, want the old value %s", got, id)
	}
}

// receiverRole creates, as the receiver's administrator, a role the owner
// account may assume with a session name starting amishare-, and a key
// policy-free setup otherwise. It returns the role's ARN.
func receiverRole(t *testing.T, a accounts, name string) string {
	t.Helper()
	trust, _ := json.Marshal(map[string]any{"Version": "2012-10-17", "Statement": []any{map[string]any{
		"Effect": "Allow", "Principal": map[string]any{"AWS": "arn:aws:iam::" + AccountID + ":root"}, "Action": "sts:AssumeRole",
		"Condition": map[string]any{"StringLike": map[string]any{"sts:RoleSessionName": "amishare-*"}},
	}}})
	out, err := iam.NewFromConfig(a.as(receiver)).CreateRole(context.Background(), &iam.CreateRoleInput{
		RoleName: aws.String(name), AssumeRolePolicyDocument: aws.String(string(trust))})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.Role.Arn)
}

// assumed returns a configuration whose credentials are role's, assumed
// from the owner account with the session name.
func assumed(a accounts, role, session string) aws.Config {
	cfg := a.as("")
	cfg.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(sts.NewFromConfig(a.as("")), role,
		func(o *stscreds.AssumeRoleOptions) { o.RoleSessionName = session }))
	return cfg
}

// TestAssumeRoleNeedsTheRoleAndItsTrust (patch 16).
func TestAssumeRoleNeedsTheRoleAndItsTrust(t *testing.T) {
	a, ctx := newAccounts(t), context.Background()
	stsc := sts.NewFromConfig(a.as(""))
	assume := func(role, session string) error {
		_, err := stsc.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(role), RoleSessionName: aws.String(session)})
		return err
	}
	wantCode(t, "a role that does not exist", assume("arn:aws:iam::"+receiver+":role/missing", "amishare-x"), "AccessDenied")
	role := receiverRole(t, a, "amishare-receiver")
	wantCode(t, "a session name the trust policy refuses", assume(role, "someone-else"), "AccessDenied")
	if err := assume(role, "amishare-ami-0123456789abcdef0"); err != nil {
		t.Fatalf("AssumeRole allowed by the trust policy: %v", err)
	}
	out, err := sts.NewFromConfig(assumed(a, role, "amishare-x")).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil || aws.ToString(out.Account) != receiver {
		t.Errorf("GetCallerIdentity with the role's credentials: %v, account %s; want %s", err, aws.ToString(out.Account), receiver)
	}
	_, err = sts.NewFromConfig(a.as(stranger)).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(role), RoleSessionName: aws.String("amishare-x")})
	wantCode(t, "an account the trust policy does not name", err, "AccessDenied")
}

// TestForeignKeyObeysItsKeyPolicy (patch 7): a call by key ARN from another
// account reaches the key when its policy allows the caller, for exactly
// what it allows.
func TestForeignKeyObeysItsKeyPolicy(t *testing.T) {
	a, ctx := newAccounts(t), context.Background()
	ownerKMS := kms.NewFromConfig(a.as(""))
	key := createKey(t, ownerKMS)
	role := receiverRole(t, a, "amishare-receiver")
	slr := "arn:aws:iam::" + receiver + ":role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"
	ops := []kmstypes.GrantOperation{kmstypes.GrantOperationDecrypt, kmstypes.GrantOperationDescribeKey, kmstypes.GrantOperationCreateGrant}
	policy, _ := json.Marshal(map[string]any{"Version": "2012-10-17", "Statement": []any{
		map[string]any{"Sid": "owner", "Effect": "Allow", "Principal": map[string]any{"AWS": "arn:aws:iam::" + AccountID + ":root"}, "Action": "kms:*", "Resource": "*"},
		map[string]any{"Sid": "asg", "Effect": "Allow", "Principal": map[string]any{"AWS": "arn:aws:iam::" + receiver + ":root"}, "Action": "kms:CreateGrant", "Resource": "*",
			"Condition": map[string]any{
				"ArnEquals":                 map[string]any{"aws:PrincipalArn": role},
				"StringEquals":              map[string]any{"kms:GranteePrincipal": slr},
				"ForAllValues:StringEquals": map[string]any{"kms:GrantOperations": []string{"Decrypt", "DescribeKey", "CreateGrant"}},
			}},
	}})
	if _, err := ownerKMS.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: key.Arn, Policy: aws.String(string(policy))}); err != nil {
		t.Fatal(err)
	}
	viaRole := kms.NewFromConfig(assumed(a, role, "amishare-test"))
	grant := func(c *kms.Client, grantee string, ops []kmstypes.GrantOperation) error {
		_, err := c.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: key.Arn, GranteePrincipal: aws.String(grantee), Operations: ops, Name: aws.String("asg")})
		return err
	}
	if err := grant(viaRole, slr, ops); err != nil {
		t.Fatalf("the grant the key policy allows: %v", err)
	}
	wantCode(t, "another grantee", grant(viaRole, "arn:aws:iam::"+receiver+":root", ops), "AccessDeniedException")
	wantCode(t, "another operation", grant(viaRole, slr, append(ops, kmstypes.GrantOperationEncrypt)), "AccessDeniedException")
	wantCode(t, "the receiver account's other principals", grant(kms.NewFromConfig(a.as(receiver)), slr, ops), "AccessDeniedException")
	_, err := viaRole.GetKeyPolicy(ctx, &kms.GetKeyPolicyInput{KeyId: key.Arn})
	wantCode(t, "GetKeyPolicy, which KMS never allows across accounts", err, "AccessDeniedException")

	out, err := ownerKMS.ListGrants(ctx, &kms.ListGrantsInput{KeyId: key.Arn})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Grants) != 1 || aws.ToString(out.Grants[0].GranteePrincipal) != slr {
		t.Errorf("the owner sees grants %+v, want the one grant for %s", out.Grants, slr)
	}
}

// TestSetCreationDate (patch 17).
func TestSetCreationDate(t *testing.T) {
	a, ctx := newAccounts(t), context.Background()
	owner := ec2.NewFromConfig(a.as(""))
	out, err := owner.RegisterImage(ctx, &ec2.RegisterImageInput{Name: aws.String("dated")})
	if err != nil {
		t.Fatal(err)
	}
	const date = "2024-02-10T10:00:00.000Z"
	if err := a.srv.SetCreationDate(aws.ToString(out.ImageId), date); err != nil {
		t.Fatal(err)
	}
	imgs, err := owner.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{aws.ToString(out.ImageId)}})
	if err != nil || len(imgs.Images) != 1 || aws.ToString(imgs.Images[0].CreationDate) != date {
		t.Errorf("CreationDate: %v %+v, want %s", err, imgs, date)
	}
	if err := a.srv.SetCreationDate("ami-0123456789abcdef0", date); err == nil {
		t.Error("setting the date of an image that does not exist: want an error")
	}
}

// TestTagKeyFilterMatchesAnyTag (patch 18).
func TestTagKeyFilterMatchesAnyTag(t *testing.T) {
	a, ctx := newAccounts(t), context.Background()
	ec2c := ec2.NewFromConfig(a.as(""))
	tagged := func(tags ...string) string {
		out, err := ec2c.RegisterImage(ctx, &ec2.RegisterImageInput{Name: aws.String("img-" + strings.Join(tags, "-"))})
		if err != nil {
			t.Fatal(err)
		}
		var ts []ec2types.Tag
		for _, k := range tags {
			ts = append(ts, ec2types.Tag{Key: aws.String(k), Value: aws.String("v")})
		}
		if _, err := ec2c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{aws.ToString(out.ImageId)}, Tags: ts}); err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.ImageId)
	}
	want := []string{tagged("amishare:accounts"), tagged("amishare:status", "Name", "team"), tagged("amishare:accounts", "amishare:status", "amishare:parameter")}
	tagged("Name")
	out, err := ec2c.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{"self"},
		Filters: []ec2types.Filter{{Name: aws.String("tag-key"), Values: []string{"amishare:accounts", "amishare:status"}}}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, img := range out.Images {
		got = append(got, aws.ToString(img.ImageId))
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("tag-key filter: got %v, want %v (any tag key among the values)", got, want)
	}
}
