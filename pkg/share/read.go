package share

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/amishare/amishare/pkg/amitag"
	"github.com/amishare/amishare/pkg/awserr"
	"github.com/amishare/amishare/pkg/awsid"
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
// With a cache, snapshots and keys come from it (read once per sweep).
func (e *Engine) readState(ctx context.Context, img *ec2types.Image, mode config.KMSMode, cache *Cache) (State, error) {
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

	snaps, err := e.describeSnapshots(ctx, snapshotIDs(img), cache)
	if err != nil {
		return st, fmt.Errorf("reading snapshots of %s: %w", id, err)
	}
	if err := e.readSnapshotsAndKeys(ctx, &st, snaps, mode, cache); err != nil {
		return st, err
	}
	return st, nil
}

// readSnapshotsAndKeys adds to st each snapshot's create-volume permissions
// (one DescribeSnapshotAttribute each) and each distinct key behind them.
func (e *Engine) readSnapshotsAndKeys(ctx context.Context, st *State, snaps []ec2types.Snapshot, mode config.KMSMode, cache *Cache) error {
	var keyIDs []string
	for _, s := range snaps {
		ss := SnapshotState{ID: aws.ToString(s.SnapshotId), Owner: aws.ToString(s.OwnerId), Encrypted: aws.ToBool(s.Encrypted), KeyARN: aws.ToString(s.KmsKeyId)}
		ss.Image = tagMap(s.Tags)[amitag.Image]
		var err error
		if ss.Perms, err = e.snapshotPerms(ctx, ss.ID); err != nil {
			return err
		}
		st.Snapshots = append(st.Snapshots, ss)
		if ss.KeyARN != "" && !slices.Contains(keyIDs, ss.KeyARN) {
			keyIDs = append(keyIDs, ss.KeyARN)
		}
	}
	for _, keyID := range keyIDs {
		k, err := cache.key(keyID, func() (KeyState, error) { return e.readKey(ctx, keyID, st.Owner, mode) })
		if err != nil {
			return err
		}
		st.Keys = append(st.Keys, k)
	}
	return nil
}

// refreshKeys re-reads, bypassing the cache, every key of the image that
// amishare may write (customer-managed, of the image's account), and
// recomputes what other images need on them.
func (e *Engine) refreshKeys(ctx context.Context, in *Input, cfg *config.Config, cache *Cache) error {
	for i, k := range in.State.Keys {
		if !writable(k, in.State.Owner) {
			continue
		}
		fresh, err := e.readKey(ctx, k.ARN, in.State.Owner, cfg.KMS)
		if err != nil {
			return err
		}
		in.State.Keys[i] = fresh
		cache.forgetKey(k.ARN)
	}
	in.Keep, in.KeepSnapshots = nil, nil
	return e.addNeeds(ctx, cfg, in, cache)
}

// loadConfig returns the sweep's configuration when there is one, else reads it.
func (e *Engine) loadConfig(ctx context.Context, cache *Cache) (*config.Config, error) {
	if cache != nil && cache.Config != nil {
		return cache.Config, nil
	}
	return e.Config.Load(ctx)
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

// snapshotBatch is how many snapshot ids one DescribeSnapshots names.
const snapshotBatch = 200

// describeSnapshots reads the snapshots in batched calls (paged if AWS pages
// them), or from the cache when a sweep has read them already.
func (e *Engine) describeSnapshots(ctx context.Context, ids []string, cache *Cache) ([]ec2types.Snapshot, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	out, missing := cache.snapshots(ids)
	for chunk := range slices.Chunk(missing, snapshotBatch) {
		p := ec2.NewDescribeSnapshotsPaginator(e.EC2, &ec2.DescribeSnapshotsInput{SnapshotIds: chunk})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return nil, err
			}
			out = append(out, page.Snapshots...)
			cache.putSnapshots(page.Snapshots)
		}
	}
	// Keep the caller's order, whatever order the API answered in.
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
	if owner := awsid.AccountOf(keyID); owner != "" && imageOwner != "" && owner != imageOwner {
		return KeyState{ARN: keyID, Owner: owner}, nil
	}
	info, err := kmspolicy.Describe(ctx, e.KMS, keyID)
	if awserr.IsAccessDenied(err) {
		return KeyState{ARN: keyID, Owner: awsid.AccountOf(keyID), Denied: true}, nil
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
			if awsid.IsAccountID(g) {
				k.Accounts = append(k.Accounts, g)
			} else {
				k.Organizations = append(k.Organizations, g)
			}
		}
		// An edit that adds and removes no one changes only statements of
		// ours that are not as amishare writes them.
		_, changed, err := kmspolicy.Edit(k.Policy, nil, nil, awsid.PartitionOf(k.ARN))
		k.Stale = err == nil && changed
	case config.ModeGrant:
		if k.Accounts, err = kmspolicy.GrantAccounts(ctx, e.KMS, k.ARN); err != nil {
			return k, fmt.Errorf("listing grants of key %s: %w", k.ARN, err)
		}
	}
	return k, nil
}

// otherNeeds finds what other managed images using a key or a snapshot are
// still meant to be shared with; that stays. For each of keys: accounts,
// organizations and OUs, as the key statements name them; for each of
// snaps: accounts (create-volume permission names only accounts). It reads
// the other managed images' tags, not their permissions: a target stays
// while any other image's tag names it. A sweep passes its own list of
// managed images in the cache.
func (e *Engine) otherNeeds(ctx context.Context, cfg *config.Config, imageID string, keys, snaps []string, cache *Cache) (keyNeeds, snapNeeds map[string][]string, err error) {
	managed, err := e.managedImages(ctx, cache)
	if err != nil {
		return nil, nil, err
	}
	var images []ec2types.Image
	for _, img := range managed {
		if aws.ToString(img.ImageId) != imageID && img.State == ec2types.ImageStateAvailable {
			images = append(images, img)
		}
	}
	keyOf := map[string]string{}
	if len(keys) > 0 {
		var ids []string
		for i := range images {
			ids = append(ids, snapshotIDs(&images[i])...)
		}
		described, err := e.describeSnapshots(ctx, ids, cache)
		if err != nil {
			return nil, nil, fmt.Errorf("reading snapshots of managed images: %w", err)
		}
		for _, s := range described {
			keyOf[aws.ToString(s.SnapshotId)] = aws.ToString(s.KmsKeyId)
		}
	}
	keyNeeds, snapNeeds = map[string][]string{}, map[string][]string{}
	for i := range images {
		targets := amitag.ResolveAccounts(tagMap(images[i].Tags)[amitag.Accounts], cfg)
		grantees := keyGrantees(targets)
		for _, sid := range snapshotIDs(&images[i]) {
			if slices.Contains(snaps, sid) {
				snapNeeds[sid] = union(snapNeeds[sid], targets.Accounts)
			}
			if k := keyOf[sid]; k != "" && slices.Contains(keys, k) {
				keyNeeds[k] = union(keyNeeds[k], grantees)
			}
		}
	}
	return keyNeeds, snapNeeds, nil
}

// managedImages returns the sweep's list of managed images when there is
// one, else lists them.
func (e *Engine) managedImages(ctx context.Context, cache *Cache) ([]ec2types.Image, error) {
	if cache != nil && cache.Managed != nil {
		return cache.Managed, nil
	}
	return e.ManagedImages(ctx)
}

// ManagedImages lists the managed images this account owns (tag
// amishare:accounts or amishare:status; the filter's values are ORed, so
// one listing), disabled ones included, sorted by id.
func (e *Engine) ManagedImages(ctx context.Context) ([]ec2types.Image, error) {
	var images []ec2types.Image
	p := ec2.NewDescribeImagesPaginator(e.EC2, &ec2.DescribeImagesInput{
		Owners:          []string{"self"},
		Filters:         []ec2types.Filter{{Name: aws.String("tag-key"), Values: []string{amitag.Accounts, amitag.Status}}},
		MaxResults:      aws.Int32(1000),
		IncludeDisabled: aws.Bool(true),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("listing managed images: %w", err)
		}
		images = append(images, page.Images...)
	}
	slices.SortFunc(images, func(a, b ec2types.Image) int {
		return strings.Compare(aws.ToString(a.ImageId), aws.ToString(b.ImageId))
	})
	return slices.CompactFunc(images, func(a, b ec2types.Image) bool { return aws.ToString(a.ImageId) == aws.ToString(b.ImageId) }), nil
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
