package share

import (
	"context"
	"fmt"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/amishare/amishare/pkg/amitag"
	"github.com/amishare/amishare/pkg/awserr"
	"github.com/amishare/amishare/pkg/config"
	"github.com/amishare/amishare/pkg/kmspolicy"
)

// describeImage returns the image if this account owns it, nil if there is no such image.
func (e *Engine) describeImage(ctx context.Context, imageID string) (*ec2types.Image, error) {
	out, err := e.EC2.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{imageID}, Owners: []string{"self"}})
	if err != nil {
		if awserr.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("describing image %s: %w", imageID, err)
	}
	for i := range out.Images {
		if aws.ToString(out.Images[i].ImageId) == imageID {
			return &out.Images[i], nil
		}
	}
	return nil, nil
}

// readState reads who may use the image, each snapshot and each key now.
// Calls: DescribeImageAttribute, one DescribeSnapshots for all snapshots,
// DescribeSnapshotAttribute per snapshot, and per distinct key DescribeKey
// plus GetKeyPolicy (policy mode) or ListGrants (grant mode).
func (e *Engine) readState(ctx context.Context, img *ec2types.Image, mode config.KMSMode) (State, error) {
	id := aws.ToString(img.ImageId)
	st := State{ImageID: id, Owner: aws.ToString(img.OwnerId)}
	attr, err := e.EC2.DescribeImageAttribute(ctx, &ec2.DescribeImageAttributeInput{
		ImageId: aws.String(id), Attribute: ec2types.ImageAttributeNameLaunchPermission,
	})
	if err != nil {
		return st, fmt.Errorf("reading launch permissions of %s: %w", id, err)
	}
	for _, lp := range attr.LaunchPermissions {
		switch {
		case lp.Group == ec2types.PermissionGroupAll:
			st.Image.Public = true
		case lp.UserId != nil:
			st.Image.Accounts = append(st.Image.Accounts, *lp.UserId)
		case lp.OrganizationArn != nil:
			st.Image.Organizations = append(st.Image.Organizations, *lp.OrganizationArn)
		case lp.OrganizationalUnitArn != nil:
			st.Image.OrganizationalUnits = append(st.Image.OrganizationalUnits, *lp.OrganizationalUnitArn)
		}
	}
	slices.Sort(st.Image.Accounts)
	slices.Sort(st.Image.Organizations)
	slices.Sort(st.Image.OrganizationalUnits)

	snaps, err := e.describeSnapshots(ctx, snapshotIDs(img))
	if err != nil {
		return st, fmt.Errorf("reading snapshots of %s: %w", id, err)
	}
	var keyIDs []string
	for _, s := range snaps {
		ss := SnapshotState{ID: aws.ToString(s.SnapshotId), Owner: aws.ToString(s.OwnerId), Encrypted: aws.ToBool(s.Encrypted), KeyARN: aws.ToString(s.KmsKeyId)}
		if ss.Perms, err = e.snapshotPerms(ctx, ss.ID); err != nil {
			return st, err
		}
		st.Snapshots = append(st.Snapshots, ss)
		if ss.KeyARN != "" && !slices.Contains(keyIDs, ss.KeyARN) {
			keyIDs = append(keyIDs, ss.KeyARN)
		}
	}
	for _, keyID := range keyIDs {
		k, err := e.readKey(ctx, keyID, st.Owner, mode)
		if err != nil {
			return st, err
		}
		st.Keys = append(st.Keys, k)
	}
	return st, nil
}

func snapshotIDs(img *ec2types.Image) []string {
	var ids []string
	for _, m := range img.BlockDeviceMappings {
		if m.Ebs != nil && m.Ebs.SnapshotId != nil && !slices.Contains(ids, *m.Ebs.SnapshotId) {
			ids = append(ids, *m.Ebs.SnapshotId)
		}
	}
	return ids
}

// describeSnapshots reads the snapshots in one batched call (paged if AWS pages it).
func (e *Engine) describeSnapshots(ctx context.Context, ids []string) ([]ec2types.Snapshot, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	var out []ec2types.Snapshot
	p := ec2.NewDescribeSnapshotsPaginator(e.EC2, &ec2.DescribeSnapshotsInput{SnapshotIds: ids})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		out = append(out, page.Snapshots...)
	}
	// Keep the image's mapping order, whatever order the API answered in.
	slices.SortStableFunc(out, func(a, b ec2types.Snapshot) int {
		return slices.Index(ids, aws.ToString(a.SnapshotId)) - slices.Index(ids, aws.ToString(b.SnapshotId))
	})
	return out, nil
}

func (e *Engine) snapshotPerms(ctx context.Context, snapshotID string) (Perms, error) {
	out, err := e.EC2.DescribeSnapshotAttribute(ctx, &ec2.DescribeSnapshotAttributeInput{
		SnapshotId: aws.String(snapshotID), Attribute: ec2types.SnapshotAttributeNameCreateVolumePermission,
	})
	if err != nil {
		return Perms{}, fmt.Errorf("reading create-volume permissions of %s: %w", snapshotID, err)
	}
	var p Perms
	for _, cv := range out.CreateVolumePermissions {
		switch {
		case cv.Group == ec2types.PermissionGroupAll:
			p.Public = true
		case cv.UserId != nil:
			p.Accounts = append(p.Accounts, *cv.UserId)
		}
	}
	slices.Sort(p.Accounts)
	return p, nil
}

// readKey describes a key and, when amishare may manage it, reads which
// accounts amishare currently lets use it.
//
// A key whose ARN names another account is foreign without any call: the
// role may use only keys of its own account, so DescribeKey would be denied
// (and even if allowed, only the owner can change who uses the key). A key
// for which DescribeKey is denied is not usable by amishare either (another
// account's key named without its ARN, or a key policy that does not let
// this account's IAM in). Both are returned with Denied or a foreign Owner,
// and Decide blocks the image with a message instead of failing the event,
// which no retry could fix.
func (e *Engine) readKey(ctx context.Context, keyID, imageOwner string, mode config.KMSMode) (KeyState, error) {
	if owner := kmspolicy.OwnerOf(keyID); owner != "" && imageOwner != "" && owner != imageOwner {
		return KeyState{ARN: keyID, Owner: owner}, nil
	}
	info, err := kmspolicy.Describe(ctx, e.KMS, keyID)
	if awserr.IsAccessDenied(err) {
		return KeyState{ARN: keyID, Owner: kmspolicy.OwnerOf(keyID), Denied: true}, nil
	}
	if err != nil {
		return KeyState{}, fmt.Errorf("describing key %s: %w", keyID, err)
	}
	k := KeyState{ARN: info.ARN, Owner: info.Owner, Manager: info.Manager}
	if k.Manager != managerCustomer || k.Owner != imageOwner {
		return k, nil
	}
	switch mode {
	case config.ModePolicy:
		if k.Policy, err = kmspolicy.GetPolicy(ctx, e.KMS, k.ARN); err != nil {
			return k, fmt.Errorf("reading policy of key %s: %w", k.ARN, err)
		}
		grantees, err := kmspolicy.Grantees(k.Policy)
		if err != nil {
			return k, fmt.Errorf("parsing policy of key %s: %w", k.ARN, err)
		}
		for _, g := range grantees {
			if amitag.IsAccountID(g) {
				k.Accounts = append(k.Accounts, g)
			} else {
				k.Organizations = append(k.Organizations, g)
			}
		}
	case config.ModeGrant:
		if k.Accounts, err = kmspolicy.GrantAccounts(ctx, e.KMS, k.ARN); err != nil {
			return k, fmt.Errorf("listing grants of key %s: %w", k.ARN, err)
		}
	}
	return k, nil
}

// keyNeeds finds, for each of keys, the accounts, organizations and OUs
// (as the key statements name them) that other managed images using that
// key are still meant to be shared with; those stay on the key. It reads the
// other managed images' tags, not their permissions: a target stays while
// any other image's tag names it.
func (e *Engine) keyNeeds(ctx context.Context, cfg *config.Config, imageID string, keys []string) (map[string][]string, error) {
	var images []ec2types.Image
	p := ec2.NewDescribeImagesPaginator(e.EC2, &ec2.DescribeImagesInput{
		Owners:  []string{"self"},
		Filters: []ec2types.Filter{{Name: aws.String("tag-key"), Values: []string{amitag.Accounts}}},
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("listing managed images: %w", err)
		}
		for _, img := range page.Images {
			if aws.ToString(img.ImageId) != imageID && img.State == ec2types.ImageStateAvailable {
				images = append(images, img)
			}
		}
	}
	var ids []string
	for i := range images {
		ids = append(ids, snapshotIDs(&images[i])...)
	}
	snaps, err := e.describeSnapshots(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("reading snapshots of managed images: %w", err)
	}
	keyOf := map[string]string{}
	for _, s := range snaps {
		keyOf[aws.ToString(s.SnapshotId)] = aws.ToString(s.KmsKeyId)
	}
	needs := map[string][]string{}
	for i := range images {
		accounts := keyGrantees(amitag.ResolveAccounts(tagMap(images[i].Tags)[amitag.Accounts], cfg))
		for _, sid := range snapshotIDs(&images[i]) {
			if k := keyOf[sid]; slices.Contains(keys, k) {
				needs[k] = union(needs[k], accounts)
			}
		}
	}
	return needs, nil
}

func union(a, b []string) []string {
	out := slices.Clone(a)
	for _, x := range b {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	slices.Sort(out)
	return out
}
