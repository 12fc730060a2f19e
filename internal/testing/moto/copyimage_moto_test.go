package moto

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
)

// copyFixture registers, in us-east-1, an image backed by an encrypted and
// a plain snapshot, and returns clients of us-east-1 and eu-west-1.
func copyFixture(t *testing.T) (home, eu *ec2.Client, euKMS *kms.Client, src string, homeKey string) {
	t.Helper()
	home, homeKMS := clients(t)
	eu = ec2.New(home.Options(), func(o *ec2.Options) { o.Region = "eu-west-1" })
	euKMS = kms.New(homeKMS.Options(), func(o *kms.Options) { o.Region = "eu-west-1" })
	homeKey = aws.ToString(createKey(t, homeKMS).Arn)
	enc := createSnapshot(t, home, 8, true, homeKey)
	plain := createSnapshot(t, home, 4, false, "")
	out, err := home.RegisterImage(context.Background(), &ec2.RegisterImageInput{
		Name: aws.String("copy-source"), RootDeviceName: aws.String("/dev/sda"),
		BlockDeviceMappings: []ec2types.BlockDeviceMapping{
			{DeviceName: aws.String("/dev/sda"), Ebs: &ec2types.EbsBlockDevice{SnapshotId: aws.String(enc)}},
			{DeviceName: aws.String("/dev/sdb"), Ebs: &ec2types.EbsBlockDevice{SnapshotId: aws.String(plain)}},
		},
	})
	if err != nil {
		t.Fatalf("RegisterImage: %v", err)
	}
	src = aws.ToString(out.ImageId)
	_, err = home.CreateTags(context.Background(), &ec2.CreateTagsInput{Resources: []string{src},
		Tags: []ec2types.Tag{{Key: aws.String("team"), Value: aws.String("a")}, {Key: aws.String("amishare:regions"), Value: aws.String("eu-west-1")}}})
	if err != nil {
		t.Fatalf("CreateTags: %v", err)
	}
	return home, eu, euKMS, src, homeKey
}

// snapshotsOf returns each mapping's snapshot as DescribeSnapshots sees it.
func snapshotsOf(t *testing.T, c *ec2.Client, img ec2types.Image) []ec2types.Snapshot {
	t.Helper()
	var ids []string
	for _, m := range img.BlockDeviceMappings {
		if m.Ebs != nil && m.Ebs.SnapshotId != nil {
			ids = append(ids, *m.Ebs.SnapshotId)
		}
	}
	out, err := c.DescribeSnapshots(context.Background(), &ec2.DescribeSnapshotsInput{SnapshotIds: ids})
	if err != nil {
		t.Fatalf("DescribeSnapshots: %v", err)
	}
	return out.Snapshots
}

func TestCopyImageAcrossRegionsReencrypts(t *testing.T) {
	home, eu, euKMS, src, _ := copyFixture(t)
	ctx := context.Background()
	euKey := createKey(t, euKMS)
	in := &ec2.CopyImageInput{
		SourceImageId: aws.String(src), SourceRegion: aws.String("us-east-1"), Name: aws.String("copy"),
		Encrypted: aws.Bool(true), KmsKeyId: aws.String(aws.ToString(euKey.KeyId)), ClientToken: aws.String("token-1"),
		TagSpecifications: []ec2types.TagSpecification{
			{ResourceType: ec2types.ResourceTypeImage, Tags: []ec2types.Tag{{Key: aws.String("amishare:source"), Value: aws.String("us-east-1/" + src)}}},
			{ResourceType: ec2types.ResourceTypeSnapshot, Tags: []ec2types.Tag{{Key: aws.String("snap"), Value: aws.String("yes")}}},
		},
	}
	out, err := eu.CopyImage(ctx, in)
	if err != nil {
		t.Fatalf("CopyImage: %v", err)
	}
	again, err := eu.CopyImage(ctx, in)
	if err != nil {
		t.Fatalf("CopyImage again: %v", err)
	}
	if aws.ToString(again.ImageId) != aws.ToString(out.ImageId) {
		t.Errorf("same ClientToken: got %s then %s, want the same image", aws.ToString(out.ImageId), aws.ToString(again.ImageId))
	}
	img := describeImage(t, eu, aws.ToString(out.ImageId))
	if img.State != ec2types.ImageStateAvailable || len(img.BlockDeviceMappings) != 2 {
		t.Fatalf("copy: state %s, %d mappings; want available, 2 (the source's)", img.State, len(img.BlockDeviceMappings))
	}
	tags := map[string]string{}
	for _, tg := range img.Tags {
		tags[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
	}
	if len(tags) != 1 || tags["amishare:source"] != "us-east-1/"+src {
		t.Errorf("copy tags: got %v, want only amishare:source (CopyImageTags unset)", tags)
	}
	snaps := snapshotsOf(t, eu, img)
	if len(snaps) != 2 {
		t.Fatalf("copy snapshots in eu-west-1: got %d, want 2", len(snaps))
	}
	for _, s := range snaps {
		if !aws.ToBool(s.Encrypted) || aws.ToString(s.KmsKeyId) != aws.ToString(euKey.Arn) {
			t.Errorf("copy snapshot %s: encrypted %v key %s, want the eu key %s", aws.ToString(s.SnapshotId), aws.ToBool(s.Encrypted), aws.ToString(s.KmsKeyId), aws.ToString(euKey.Arn))
		}
		if len(s.Tags) != 1 || aws.ToString(s.Tags[0].Key) != "snap" {
			t.Errorf("copy snapshot tags: got %v, want the snapshot TagSpecification", s.Tags)
		}
	}
	// Nothing was copied into the source's region.
	if imgs, err := home.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{"self"}}); err != nil || len(imgs.Images) != 1 {
		t.Errorf("images in us-east-1: got %d (%v), want the source only", len(imgs.Images), err)
	}
}

func TestCopyImageRules(t *testing.T) {
	home, eu, _, src, homeKey := copyFixture(t)
	ctx := context.Background()
	copyTo := func(c *ec2.Client, in ec2.CopyImageInput) (ec2types.Image, error) {
		in.SourceImageId, in.SourceRegion, in.Name = aws.String(src), aws.String("us-east-1"), aws.String("copy "+t.Name())
		out, err := c.CopyImage(ctx, &in)
		if err != nil {
			return ec2types.Image{}, err
		}
		return describeImage(t, c, aws.ToString(out.ImageId)), nil
	}

	t.Run("KmsKeyId without Encrypted", func(t *testing.T) {
		_, err := copyTo(eu, ec2.CopyImageInput{KmsKeyId: aws.String("alias/x")})
		if got := apiErrorCode(err); got != "InvalidParameterCombination" {
			t.Errorf("got %v, want InvalidParameterCombination", err)
		}
	})
	t.Run("unknown key: the copy fails later", func(t *testing.T) {
		img, err := copyTo(eu, ec2.CopyImageInput{Encrypted: aws.Bool(true), KmsKeyId: aws.String("arn:aws:kms:eu-west-1:123456789012:key/00000000-0000-4000-8000-000000000000")})
		if err != nil {
			t.Fatalf("CopyImage: %v", err)
		}
		if img.State != ec2types.ImageStateFailed || img.StateReason == nil {
			t.Errorf("state %s reason %v, want failed with a reason", img.State, img.StateReason)
		}
	})
	t.Run("bad tag resource type", func(t *testing.T) {
		_, err := copyTo(eu, ec2.CopyImageInput{TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeInstance,
			Tags: []ec2types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}}}})
		if got := apiErrorCode(err); got != "InvalidParameterValue" {
			t.Errorf("got %v, want InvalidParameterValue", err)
		}
	})
	t.Run("CopyImageTags copies user tags", func(t *testing.T) {
		img, err := copyTo(eu, ec2.CopyImageInput{CopyImageTags: aws.Bool(true)})
		if err != nil {
			t.Fatalf("CopyImage: %v", err)
		}
		if len(img.Tags) != 2 {
			t.Errorf("tags: got %v, want the source's two", img.Tags)
		}
	})
	t.Run("no encryption asked: encrypted stays encrypted", func(t *testing.T) {
		img, err := copyTo(eu, ec2.CopyImageInput{})
		if err != nil {
			t.Fatalf("CopyImage: %v", err)
		}
		snaps := snapshotsOf(t, eu, img)
		enc := 0
		for _, s := range snaps {
			if aws.ToBool(s.Encrypted) {
				enc++
				if aws.ToString(s.KmsKeyId) == homeKey {
					t.Errorf("cross-region copy kept the us-east-1 key %s", homeKey)
				}
			}
		}
		if len(snaps) != 2 || enc != 1 {
			t.Errorf("snapshots: got %d, %d encrypted; want 2, 1", len(snaps), enc)
		}
	})
	t.Run("same region keeps the key", func(t *testing.T) {
		img, err := copyTo(home, ec2.CopyImageInput{})
		if err != nil {
			t.Fatalf("CopyImage: %v", err)
		}
		found := false
		for _, s := range snapshotsOf(t, home, img) {
			found = found || aws.ToString(s.KmsKeyId) == homeKey
		}
		if !found {
			t.Errorf("same-region copy lost the source key")
		}
	})
}
