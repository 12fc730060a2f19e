// Package awsfixture seeds and inspects a local AWS emulator for amishare's
// tests and demo: configuration parameters, KMS keys, AMIs with several
// (optionally encrypted) snapshots, tags, and the permissions that result.
// It uses the real SDK clients, as an operator's tooling would.
package awsfixture

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/amishare/amishare/internal/testing/moto"
	"github.com/amishare/amishare/pkg/awsid"
	"github.com/amishare/amishare/pkg/kmspolicy"
)

// Fixture holds the clients it seeds and inspects with.
type Fixture struct {
	EC2 *ec2.Client
	KMS *kms.Client
	SSM *ssm.Client
}

// New builds a Fixture from an SDK configuration (pointed at the emulator).
func New(cfg aws.Config) *Fixture {
	return &Fixture{EC2: ec2.NewFromConfig(cfg), KMS: kms.NewFromConfig(cfg), SSM: ssm.NewFromConfig(cfg)}
}

// PutConfig writes the amishare configuration document to the named SSM parameter.
func (f *Fixture) PutConfig(ctx context.Context, name, doc string) error {
	_, err := f.SSM.PutParameter(ctx, &ssm.PutParameterInput{
		Name: aws.String(name), Value: aws.String(doc), Type: ssmtypes.ParameterTypeString, Overwrite: aws.Bool(true),
	})
	if err != nil {
		return fmt.Errorf("putting parameter %s: %w", name, err)
	}
	return nil
}

// CreateKey creates a customer-managed symmetric key and returns its ARN.
func (f *Fixture) CreateKey(ctx context.Context, description string) (string, error) {
	out, err := f.KMS.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String(description)})
	if err != nil {
		return "", fmt.Errorf("creating key: %w", err)
	}
	return aws.ToString(out.KeyMetadata.Arn), nil
}

// Disk describes one EBS volume behind an image. KeyID empty with
// Encrypted true uses the account's default EBS key (alias/aws/ebs).
type Disk struct {
	Encrypted bool
	KeyID     string
	SizeGiB   int32
}

// RegisterImage creates one snapshot per disk and registers an available
// AMI backed by them, tagged with tags. It returns the image and snapshot ids.
func (f *Fixture) RegisterImage(ctx context.Context, name string, disks []Disk, tags map[string]string) (string, []string, error) {
	var snapIDs []string
	var mappings []ec2types.BlockDeviceMapping
	for i, d := range disks {
		size := d.SizeGiB
		if size == 0 {
			size = 8
		}
		vin := &ec2.CreateVolumeInput{AvailabilityZone: aws.String("us-east-1a"), Size: aws.Int32(size)}
		if d.Encrypted || d.KeyID != "" {
			vin.Encrypted = aws.Bool(true)
			if d.KeyID != "" {
				vin.KmsKeyId = aws.String(d.KeyID)
			}
		}
		vol, err := f.EC2.CreateVolume(ctx, vin)
		if err != nil {
			return "", nil, fmt.Errorf("creating volume: %w", err)
		}
		snap, err := f.EC2.CreateSnapshot(ctx, &ec2.CreateSnapshotInput{VolumeId: vol.VolumeId, Description: aws.String(name)})
		if err != nil {
			return "", nil, fmt.Errorf("creating snapshot: %w", err)
		}
		snapIDs = append(snapIDs, aws.ToString(snap.SnapshotId))
		mappings = append(mappings, ec2types.BlockDeviceMapping{
			DeviceName: aws.String(fmt.Sprintf("/dev/sd%c", 'a'+i)),
			Ebs:        &ec2types.EbsBlockDevice{SnapshotId: snap.SnapshotId, VolumeSize: aws.Int32(size), DeleteOnTermination: aws.Bool(true)},
		})
	}
	out, err := f.EC2.RegisterImage(ctx, &ec2.RegisterImageInput{
		Name: aws.String(name), RootDeviceName: aws.String("/dev/sda"), BlockDeviceMappings: mappings,
		Architecture: ec2types.ArchitectureValuesArm64, VirtualizationType: aws.String("hvm"),
	})
	if err != nil {
		return "", nil, fmt.Errorf("registering image: %w", err)
	}
	id := aws.ToString(out.ImageId)
	if len(tags) > 0 {
		if err := f.Tag(ctx, id, tags); err != nil {
			return "", nil, err
		}
	}
	return id, snapIDs, nil
}

// Tag sets tags on a resource.
func (f *Fixture) Tag(ctx context.Context, resourceID string, tags map[string]string) error {
	var ts []ec2types.Tag
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		ts = append(ts, ec2types.Tag{Key: aws.String(k), Value: aws.String(tags[k])})
	}
	if _, err := f.EC2.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{resourceID}, Tags: ts}); err != nil {
		return fmt.Errorf("tagging %s: %w", resourceID, err)
	}
	return nil
}

// Untag deletes tag keys from a resource.
func (f *Fixture) Untag(ctx context.Context, resourceID string, keys ...string) error {
	var ts []ec2types.Tag
	for _, k := range keys {
		ts = append(ts, ec2types.Tag{Key: aws.String(k)})
	}
	if _, err := f.EC2.DeleteTags(ctx, &ec2.DeleteTagsInput{Resources: []string{resourceID}, Tags: ts}); err != nil {
		return fmt.Errorf("untagging %s: %w", resourceID, err)
	}
	return nil
}

// Tags returns a resource's tags.
func (f *Fixture) Tags(ctx context.Context, imageID string) (map[string]string, error) {
	out, err := f.EC2.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{imageID}})
	if err != nil {
		return nil, fmt.Errorf("describing %s: %w", imageID, err)
	}
	if len(out.Images) != 1 {
		return nil, fmt.Errorf("describing %s: %d images", imageID, len(out.Images))
	}
	return tagMap(out.Images[0].Tags), nil
}

func tagMap(tags []ec2types.Tag) map[string]string {
	m := make(map[string]string, len(tags))
	for _, t := range tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

// Perms is who may use a resource, as the owner sees it.
type Perms struct {
	Accounts            []string // sorted
	Organizations       []string // organization ARNs, sorted (images only)
	OrganizationalUnits []string // OU ARNs, sorted (images only)
	Public              bool
}

// LaunchPermissions reads an image's launch permissions.
func (f *Fixture) LaunchPermissions(ctx context.Context, imageID string) (Perms, error) {
	out, err := f.EC2.DescribeImageAttribute(ctx, &ec2.DescribeImageAttributeInput{
		ImageId: aws.String(imageID), Attribute: ec2types.ImageAttributeNameLaunchPermission,
	})
	if err != nil {
		return Perms{}, fmt.Errorf("reading launch permissions of %s: %w", imageID, err)
	}
	var p Perms
	for _, lp := range out.LaunchPermissions {
		switch {
		case lp.Group == ec2types.PermissionGroupAll:
			p.Public = true
		case lp.UserId != nil:
			p.Accounts = append(p.Accounts, *lp.UserId)
		case lp.OrganizationArn != nil:
			p.Organizations = append(p.Organizations, *lp.OrganizationArn)
		case lp.OrganizationalUnitArn != nil:
			p.OrganizationalUnits = append(p.OrganizationalUnits, *lp.OrganizationalUnitArn)
		}
	}
	slices.Sort(p.Accounts)
	slices.Sort(p.Organizations)
	slices.Sort(p.OrganizationalUnits)
	return p, nil
}

// VolumePermissions reads a snapshot's create-volume permissions.
func (f *Fixture) VolumePermissions(ctx context.Context, snapshotID string) (Perms, error) {
	out, err := f.EC2.DescribeSnapshotAttribute(ctx, &ec2.DescribeSnapshotAttributeInput{
		SnapshotId: aws.String(snapshotID), Attribute: ec2types.SnapshotAttributeNameCreateVolumePermission,
	})
	if err != nil {
		return Perms{}, fmt.Errorf("reading create-volume permissions of %s: %w", snapshotID, err)
	}
	var p Perms
	for _, cv := range out.CreateVolumePermissions {
		if cv.Group == ec2types.PermissionGroupAll {
			p.Public = true
		} else if cv.UserId != nil {
			p.Accounts = append(p.Accounts, *cv.UserId)
		}
	}
	slices.Sort(p.Accounts)
	return p, nil
}

// ShareImage grants launch permission by hand (as an operator might, outside amishare).
func (f *Fixture) ShareImage(ctx context.Context, imageID string, perm ec2types.LaunchPermission) error {
	_, err := f.EC2.ModifyImageAttribute(ctx, &ec2.ModifyImageAttributeInput{
		ImageId: aws.String(imageID), LaunchPermission: &ec2types.LaunchPermissionModifications{Add: []ec2types.LaunchPermission{perm}},
	})
	if err != nil {
		return fmt.Errorf("sharing %s by hand: %w", imageID, err)
	}
	return nil
}

// ShareSnapshot grants create-volume permission by hand; group "all" makes it public.
func (f *Fixture) ShareSnapshot(ctx context.Context, snapshotID string, userIDs, groups []string) error {
	_, err := f.EC2.ModifySnapshotAttribute(ctx, &ec2.ModifySnapshotAttributeInput{
		SnapshotId: aws.String(snapshotID), Attribute: ec2types.SnapshotAttributeNameCreateVolumePermission,
		OperationType: ec2types.OperationTypeAdd, UserIds: userIDs, GroupNames: groups,
	})
	if err != nil {
		return fmt.Errorf("sharing %s by hand: %w", snapshotID, err)
	}
	return nil
}

// ForeignKeyARN is the ARN of a KMS key of another account (account) that
// this account may not use: the patched moto answers AccessDeniedException for
// every call on it, as AWS does when the key policy does not allow the caller.
// A volume (and its snapshot) can still be encrypted with it.
func ForeignKeyARN(account string) string {
	return fmt.Sprintf("arn:aws:kms:%s:%s:key/0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0", moto.Region, account)
}

// TagKey sets tags on a KMS key (amishare:managed=true delegates it to amishare).
func (f *Fixture) TagKey(ctx context.Context, keyID string, tags map[string]string) error {
	var ts []kmstypes.Tag
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		ts = append(ts, kmstypes.Tag{TagKey: aws.String(k), TagValue: aws.String(tags[k])})
	}
	if _, err := f.KMS.TagResource(ctx, &kms.TagResourceInput{KeyId: aws.String(keyID), Tags: ts}); err != nil {
		return fmt.Errorf("tagging key %s: %w", keyID, err)
	}
	return nil
}

// KeyPolicy reads a key's policy.
func (f *Fixture) KeyPolicy(ctx context.Context, keyID string) (string, error) {
	out, err := f.KMS.GetKeyPolicy(ctx, &kms.GetKeyPolicyInput{KeyId: aws.String(keyID), PolicyName: aws.String("default")})
	if err != nil {
		return "", fmt.Errorf("reading policy of %s: %w", keyID, err)
	}
	return aws.ToString(out.Policy), nil
}

// SharedExactly checks, from the owner's side, that the image and each of
// snaps are shared with exactly accounts (sorted) and are not public. It
// returns one error naming every difference, or nil. It does not look at the
// image's organizations and OUs (see SharedWithOrganizations).
func (f *Fixture) SharedExactly(ctx context.Context, imageID string, snaps, accounts []string) error {
	var diffs []error
	check := func(what string, p Perms, err error) {
		switch {
		case err != nil:
			diffs = append(diffs, err)
		case !slices.Equal(p.Accounts, accounts) || p.Public:
			diffs = append(diffs, fmt.Errorf("%s: got %v public=%v, want %v public=false", what, p.Accounts, p.Public, accounts))
		}
	}
	p, err := f.LaunchPermissions(ctx, imageID)
	check("image "+imageID+" launch permissions", p, err)
	for _, s := range snaps {
		p, err := f.VolumePermissions(ctx, s)
		check("snapshot "+s+" create-volume permissions", p, err)
	}
	return errors.Join(diffs...)
}

// SharedWithOrganizations checks, from the owner's side, that the image's
// launch permissions name exactly the organization ARNs orgs and the OU ARNs
// ous (each sorted; nil for none).
func (f *Fixture) SharedWithOrganizations(ctx context.Context, imageID string, orgs, ous []string) error {
	p, err := f.LaunchPermissions(ctx, imageID)
	if err != nil {
		return err
	}
	if !slices.Equal(p.Organizations, orgs) || !slices.Equal(p.OrganizationalUnits, ous) {
		return fmt.Errorf("image %s: got organizations %v and OUs %v, want %v and %v", imageID, p.Organizations, p.OrganizationalUnits, orgs, ous)
	}
	return nil
}

// In returns a fixture on the same emulator acting in region (EC2 and KMS
// clients of that region; the configuration parameter stays where it is).
func (f *Fixture) In(region string) *Fixture {
	return &Fixture{
		EC2: ec2.New(f.EC2.Options(), func(o *ec2.Options) { o.Region = region }),
		KMS: kms.New(f.KMS.Options(), func(o *kms.Options) { o.Region = region }),
		SSM: f.SSM,
	}
}

// Image describes one image (any state) of this account.
func (f *Fixture) Image(ctx context.Context, imageID string) (ec2types.Image, error) {
	out, err := f.EC2.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{imageID}, Owners: []string{"self"}})
	if err != nil {
		return ec2types.Image{}, fmt.Errorf("describing %s: %w", imageID, err)
	}
	if len(out.Images) != 1 {
		return ec2types.Image{}, fmt.Errorf("describing %s: %d images", imageID, len(out.Images))
	}
	return out.Images[0], nil
}

// ImagesTagged lists this account's images whose tag key has value.
func (f *Fixture) ImagesTagged(ctx context.Context, key, value string) ([]ec2types.Image, error) {
	out, err := f.EC2.DescribeImages(ctx, &ec2.DescribeImagesInput{
		Owners:  []string{"self"},
		Filters: []ec2types.Filter{{Name: aws.String("tag:" + key), Values: []string{value}}},
	})
	if err != nil {
		return nil, fmt.Errorf("listing images tagged %s=%s: %w", key, value, err)
	}
	return out.Images, nil
}

// SnapshotKeys returns, for each snapshot behind the image, whether it is
// encrypted and its KMS key ARN, in mapping order.
func (f *Fixture) SnapshotKeys(ctx context.Context, img ec2types.Image) (snaps []string, keys []string, err error) {
	for _, m := range img.BlockDeviceMappings {
		if m.Ebs != nil && m.Ebs.SnapshotId != nil {
			snaps = append(snaps, *m.Ebs.SnapshotId)
		}
	}
	if len(snaps) == 0 {
		return nil, nil, nil
	}
	out, err := f.EC2.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: snaps})
	if err != nil {
		return nil, nil, fmt.Errorf("describing snapshots %v: %w", snaps, err)
	}
	byID := map[string]string{}
	for _, s := range out.Snapshots {
		k := ""
		if aws.ToBool(s.Encrypted) {
			k = aws.ToString(s.KmsKeyId)
			if k == "" {
				k = "encrypted, no key"
			}
		}
		byID[aws.ToString(s.SnapshotId)] = k
	}
	for _, s := range snaps {
		keys = append(keys, byID[s])
	}
	return snaps, keys, nil
}

// KeyAccounts returns the accounts amishare's statements in the key's
// policy grant, sorted.
func (f *Fixture) KeyAccounts(ctx context.Context, keyID string) ([]string, error) {
	policy, err := f.KeyPolicy(ctx, keyID)
	if err != nil {
		return nil, err
	}
	grantees, err := kmspolicy.Grantees(policy)
	if err != nil {
		return nil, fmt.Errorf("parsing the policy of %s: %w", keyID, err)
	}
	return slices.DeleteFunc(grantees, func(g string) bool { return !awsid.IsAccountID(g) }), nil
}
