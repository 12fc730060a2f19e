package awsfixture

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// RegisterImages registers n available images named prefix-0, prefix-1, …,
// each backed by its own unencrypted snapshot of one shared volume, and
// tags them all with tags in one call: the cheap way to seed many images.
// It returns the image ids and, for each, its snapshot id.
func (f *Fixture) RegisterImages(ctx context.Context, prefix string, n int, tags map[string]string) (ids, snaps []string, err error) {
	vol, err := f.EC2.CreateVolume(ctx, &ec2.CreateVolumeInput{AvailabilityZone: aws.String("us-east-1a"), Size: aws.Int32(8)})
	if err != nil {
		return nil, nil, fmt.Errorf("creating volume: %w", err)
	}
	for i := range n {
		snap, err := f.EC2.CreateSnapshot(ctx, &ec2.CreateSnapshotInput{VolumeId: vol.VolumeId})
		if err != nil {
			return nil, nil, fmt.Errorf("creating snapshot: %w", err)
		}
		id, err := f.RegisterImageFromSnapshots(ctx, fmt.Sprintf("%s-%d", prefix, i), []string{aws.ToString(snap.SnapshotId)}, nil)
		if err != nil {
			return nil, nil, err
		}
		ids, snaps = append(ids, id), append(snaps, aws.ToString(snap.SnapshotId))
	}
	if len(tags) > 0 && n > 0 {
		var ts []ec2types.Tag
		for _, k := range slices.Sorted(maps.Keys(tags)) {
			ts = append(ts, ec2types.Tag{Key: aws.String(k), Value: aws.String(tags[k])})
		}
		if _, err := f.EC2.CreateTags(ctx, &ec2.CreateTagsInput{Resources: ids, Tags: ts}); err != nil {
			return nil, nil, fmt.Errorf("tagging %d images: %w", n, err)
		}
	}
	return ids, snaps, nil
}

// RegisterImageFromSnapshots registers an available image backed by
// existing snapshots (two images may share one), tagged with tags.
func (f *Fixture) RegisterImageFromSnapshots(ctx context.Context, name string, snapIDs []string, tags map[string]string) (string, error) {
	var mappings []ec2types.BlockDeviceMapping
	for i, s := range snapIDs {
		mappings = append(mappings, ec2types.BlockDeviceMapping{
			DeviceName: aws.String(fmt.Sprintf("/dev/sd%c", 'a'+i)),
			Ebs:        &ec2types.EbsBlockDevice{SnapshotId: aws.String(s), DeleteOnTermination: aws.Bool(true)},
		})
	}
	out, err := f.EC2.RegisterImage(ctx, &ec2.RegisterImageInput{
		Name: aws.String(name), RootDeviceName: aws.String("/dev/sda"), BlockDeviceMappings: mappings,
		Architecture: ec2types.ArchitectureValuesArm64, VirtualizationType: aws.String("hvm"),
	})
	if err != nil {
		return "", fmt.Errorf("registering image: %w", err)
	}
	id := aws.ToString(out.ImageId)
	if len(tags) > 0 {
		if err := f.Tag(ctx, id, tags); err != nil {
			return "", err
		}
	}
	return id, nil
}

// DeregisterImage deregisters an image; its snapshots stay.
func (f *Fixture) DeregisterImage(ctx context.Context, imageID string) error {
	if _, err := f.EC2.DeregisterImage(ctx, &ec2.DeregisterImageInput{ImageId: aws.String(imageID)}); err != nil {
		return fmt.Errorf("deregistering %s: %w", imageID, err)
	}
	return nil
}

// SnapshotTags returns a snapshot's tags.
func (f *Fixture) SnapshotTags(ctx context.Context, snapshotID string) (map[string]string, error) {
	out, err := f.EC2.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{snapshotID}})
	if err != nil {
		return nil, fmt.Errorf("describing %s: %w", snapshotID, err)
	}
	if len(out.Snapshots) != 1 {
		return nil, fmt.Errorf("describing %s: %d snapshots", snapshotID, len(out.Snapshots))
	}
	return tagMap(out.Snapshots[0].Tags), nil
}
