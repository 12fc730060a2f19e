package moto

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

const orgARN = "arn:aws:organizations::210987654321:organization/o-a1b2c3d4e5"

// sharedImage registers an image shared with an account and an organization.
func sharedImage(t *testing.T, c *ec2.Client) string {
	t.Helper()
	ctx := context.Background()
	snap := createSnapshot(t, c, 1, false, "")
	out, err := c.RegisterImage(ctx, &ec2.RegisterImageInput{
		Name: aws.String(t.Name()), RootDeviceName: aws.String("/dev/sda"),
		BlockDeviceMappings: []ec2types.BlockDeviceMapping{{DeviceName: aws.String("/dev/sda"), Ebs: &ec2types.EbsBlockDevice{SnapshotId: aws.String(snap)}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(out.ImageId)
	if _, err := c.ModifyImageAttribute(ctx, &ec2.ModifyImageAttributeInput{ImageId: aws.String(id), LaunchPermission: &ec2types.LaunchPermissionModifications{
		Add: []ec2types.LaunchPermission{{UserId: aws.String("111122223333")}, {OrganizationArn: aws.String(orgARN)}, {Group: ec2types.PermissionGroupAll}},
	}}); err != nil {
		t.Fatal(err)
	}
	return id
}

func launchPermissions(t *testing.T, c *ec2.Client, id string) []ec2types.LaunchPermission {
	t.Helper()
	out, err := c.DescribeImageAttribute(context.Background(), &ec2.DescribeImageAttributeInput{ImageId: aws.String(id), Attribute: ec2types.ImageAttributeNameLaunchPermission})
	if err != nil {
		t.Fatal(err)
	}
	return out.LaunchPermissions
}

func TestResetImageAttribute(t *testing.T) {
	c, _ := clients(t)
	ctx := context.Background()
	id := sharedImage(t, c)
	if _, err := c.ResetImageAttribute(ctx, &ec2.ResetImageAttributeInput{ImageId: aws.String(id), Attribute: ec2types.ResetImageAttributeNameLaunchPermission}); err != nil {
		t.Fatalf("ResetImageAttribute: %v", err)
	}
	if lp := launchPermissions(t, c, id); len(lp) != 0 {
		t.Errorf("after a reset: got %+v, want no launch permission", lp)
	}
	if _, err := c.ResetImageAttribute(ctx, &ec2.ResetImageAttributeInput{ImageId: aws.String("ami-0123456789abcdef0"), Attribute: ec2types.ResetImageAttributeNameLaunchPermission}); err == nil {
		t.Errorf("ResetImageAttribute of an unknown image: got no error")
	}

	t.Run("switch: a reset that keeps organizations", func(t *testing.T) {
		c, _ := clients(t) // resets moto, every switch off
		if err := ForTest(t).Switch("reset-keeps-organizations", true); err != nil {
			t.Fatal(err)
		}
		id := sharedImage(t, c)
		if _, err := c.ResetImageAttribute(ctx, &ec2.ResetImageAttributeInput{ImageId: aws.String(id), Attribute: ec2types.ResetImageAttributeNameLaunchPermission}); err != nil {
			t.Fatal(err)
		}
		lp := launchPermissions(t, c, id)
		if len(lp) != 1 || aws.ToString(lp[0].OrganizationArn) != orgARN {
			t.Errorf("got %+v, want only the organization left", lp)
		}
	})
}

func TestDisableAndEnableImage(t *testing.T) {
	c, _ := clients(t)
	ctx := context.Background()
	id := sharedImage(t, c)
	if _, err := c.DisableImage(ctx, &ec2.DisableImageInput{ImageId: aws.String(id)}); err != nil {
		t.Fatalf("DisableImage: %v", err)
	}
	if lp := launchPermissions(t, c, id); len(lp) != 0 {
		t.Errorf("disabled: got launch permissions %+v, want none", lp)
	}
	out, err := c.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{"self"}, ImageIds: []string{id}})
	if err != nil || len(out.Images) != 0 {
		t.Errorf("DescribeImages without IncludeDisabled: got %d images (%v), want none", len(out.Images), err)
	}
	out, err = c.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{"self"}, ImageIds: []string{id}, IncludeDisabled: aws.Bool(true)})
	if err != nil || len(out.Images) != 1 || out.Images[0].State != ec2types.ImageStateDisabled {
		t.Fatalf("DescribeImages with IncludeDisabled: got %+v (%v), want the disabled image", out, err)
	}
	if _, err := c.EnableImage(ctx, &ec2.EnableImageInput{ImageId: aws.String(id)}); err != nil {
		t.Fatalf("EnableImage: %v", err)
	}
	if img := describeImage(t, c, id); img.State != ec2types.ImageStateAvailable {
		t.Errorf("enabled: got state %s, want available", img.State)
	}
	if lp := launchPermissions(t, c, id); len(lp) != 0 {
		t.Errorf("enabled: got launch permissions %+v, want none restored", lp)
	}
}

func TestDeleteTagsWithoutTagsDeletesEvery(t *testing.T) {
	c, _ := clients(t)
	ctx := context.Background()
	id := sharedImage(t, c)
	if _, err := c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{id}, Tags: []ec2types.Tag{
		{Key: aws.String("amishare:accounts"), Value: aws.String("111122223333")}, {Key: aws.String("Name"), Value: aws.String("x")}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteTags(ctx, &ec2.DeleteTagsInput{Resources: []string{id}}); err != nil {
		t.Fatal(err)
	}
	if tags := describeImage(t, c, id).Tags; len(tags) != 0 {
		t.Errorf("after DeleteTags without tags: got %v, want none", tags)
	}
}
