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
	"github.com/amishare/amishare/pkg/kmsgrant"
	"github.com/amishare/amishare/pkg/kmspolicy"
	"github.com/amishare/amishare/pkg/share/rules"
)

// reader makes every AWS read of the engine, through the sweep's cache when
// there is one. It changes nothing.
type reader struct {
	ec2     EC2API
	kms     KMSAPI
	config  ConfigSource
	cache   *Cache // nil outside a sweep: every read is made
	fresh   bool   // list managed images afresh even in a sweep
	region  string
	regions RegionalEC2
}

// ec2In returns the EC2 client for region (the engine's own for "").
func ec2In(own EC2API, home string, regions RegionalEC2, region string) EC2API {
	if region == home || region == "" || regions == nil {
		return own
	}
	return regions.EC2(region)
}

// loadConfig returns the sweep's configuration when there is one, else reads it.
func (r reader) loadConfig(ctx context.Context) (*config.Config, error) {
	if r.cache != nil && r.cache.Config != nil {
		return r.cache.Config, nil
	}
	return r.config.Load(ctx)
}

// image returns the image of region ("" is the engine's) if this account
// owns it, nil if there is no such image.
func (r reader) image(ctx context.Context, region, imageID string) (*ec2types.Image, error) {
	out, err := ec2In(r.ec2, r.region, r.regions, region).DescribeImages(ctx, &ec2.DescribeImagesInput{
		ImageIds: []string{imageID}, Owners: []string{"self"}, IncludeDisabled: aws.Bool(true),
	})
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

// state reads who may use the image, each snapshot and each key now.
// Calls: DescribeImageAttribute, one DescribeSnapshots for all snapshots,
// DescribeSnapshotAttribute per snapshot, and per distinct key DescribeKey,
// GetKeyPolicy and, in grant mode (or a sweep), ListGrants. In a sweep,
// snapshots and keys come from the cache.
//
// Only a failure to read the image's own launch permissions is an error: a
// snapshot or key that cannot be read (a transient error) is marked Unread,
// with the reason in State.Unread, so that the rules decide nothing about
// it while the image still loses what its tag no longer names.
func (r reader) state(ctx context.Context, img *ec2types.Image, mode config.KMSMode) (rules.State, error) {
	id := aws.ToString(img.ImageId)
	st := rules.State{ImageID: id, Owner: aws.ToString(img.OwnerId), Disabled: img.State == ec2types.ImageStateDisabled}
	attr, err := r.ec2.DescribeImageAttribute(ctx, &ec2.DescribeImageAttributeInput{
		ImageId: aws.String(id), Attribute: ec2types.ImageAttributeNameLaunchPermission,
	})
	if err != nil {
		return st, fmt.Errorf("reading launch permissions of %s: %w", id, err)
	}
	st.Image = launchPerms(attr.LaunchPermissions)
	ids := snapshotIDs(img)
	snaps, err := r.snapshots(ctx, ids)
	if err != nil {
		for _, sid := range ids {
			st.Snapshots = append(st.Snapshots, rules.SnapshotState{ID: sid, Unread: true})
		}
		st.Unread = append(st.Unread, fmt.Sprintf("could not read the snapshots of %s (will be retried): %v", id, err))
		return st, nil
	}
	r.snapshotsAndKeys(ctx, &st, snaps, mode)
	return st, nil
}

// launchPerms reads EC2's launch permissions.
func launchPerms(lps []ec2types.LaunchPermission) rules.Perms {
	var p rules.Perms
	for _, lp := range lps {
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
	return p
}

// launchPermissions reads the image's launch permissions (after a reset).
func (r reader) launchPermissions(ctx context.Context, imageID string) (rules.Perms, error) {
	attr, err := r.ec2.DescribeImageAttribute(ctx, &ec2.DescribeImageAttributeInput{
		ImageId: aws.String(imageID), Attribute: ec2types.ImageAttributeNameLaunchPermission,
	})
	if err != nil {
		return rules.Perms{}, fmt.Errorf("reading launch permissions of %s: %w", imageID, err)
	}
	return launchPerms(attr.LaunchPermissions), nil
}

// snapshotsAndKeys adds to st each snapshot's create-volume permissions
// (one DescribeSnapshotAttribute each) and each distinct key behind them,
// marking what cannot be read.
func (r reader) snapshotsAndKeys(ctx context.Context, st *rules.State, snaps []ec2types.Snapshot, mode config.KMSMode) {
	var keyIDs []string
	for _, s := range snaps {
		ss := rules.SnapshotState{ID: aws.ToString(s.SnapshotId), Owner: aws.ToString(s.OwnerId), Encrypted: aws.ToBool(s.Encrypted), KeyARN: aws.ToString(s.KmsKeyId)}
		ss.Images = amitag.RecordImages(tagMap(s.Tags)[amitag.Image])
		var err error
		if ss.Perms, err = r.snapshotPerms(ctx, ss.ID); err != nil {
			ss.Unread = true
			st.Unread = append(st.Unread, fmt.Sprintf("%v (will be retried)", err))
		}
		st.Snapshots = append(st.Snapshots, ss)
		if ss.KeyARN != "" && !slices.Contains(keyIDs, ss.KeyARN) {
			keyIDs = append(keyIDs, ss.KeyARN)
		}
	}
	for _, keyID := range keyIDs {
		k, err := r.cache.key(keyID, func() (rules.KeyState, error) { return r.key(ctx, keyID, st.Owner, mode) })
		if err != nil {
			k = rules.KeyState{ARN: keyID, Owner: awsid.AccountOf(keyID), Manager: rules.ManagerCustomer, Unread: true}
			if k.Owner == "" {
				k.Owner = st.Owner
			}
			st.Unread = append(st.Unread, fmt.Sprintf("%v (will be retried)", err))
		}
		st.Keys = append(st.Keys, k)
	}
}

// freshKeys re-reads, bypassing the cache, every key of st that amishare may
// write (customer-managed, of the image's account).
func (r reader) freshKeys(ctx context.Context, st *rules.State, mode config.KMSMode) error {
	for i, k := range st.Keys {
		if !k.Writable(st.Owner) || k.Unread {
			continue
		}
		fresh, err := r.key(ctx, k.ARN, st.Owner, mode)
		if err != nil {
			return err
		}
		if k.GrantsRead && !fresh.GrantsRead {
			if fresh.Grants, err = kmsgrant.Accounts(ctx, r.kms, k.ARN); err != nil {
				return err
			}
			fresh.GrantsRead = true
		}
		st.Keys[i] = fresh
		r.cache.forgetKey(k.ARN)
	}
	return nil
}

// grants reads amishare's grants on each key of st amishare may touch whose
// grants were not read yet (the mode is not grant, outside a sweep): a key
// left with grants by grant mode loses them when an account leaves.
func (r reader) grants(ctx context.Context, st *rules.State) {
	for i, k := range st.Keys {
		if !k.Writable(st.Owner) || k.Unread || k.GrantsRead {
			continue
		}
		grants, err := kmsgrant.Accounts(ctx, r.kms, k.ARN)
		if err != nil {
			st.Keys[i].Unread = true
			st.Unread = append(st.Unread, fmt.Sprintf("%v (will be retried)", err))
			continue
		}
		st.Keys[i].Grants, st.Keys[i].GrantsRead = grants, true
	}
}

// snapshotIDs lists the snapshots behind the image's block device mappings.
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

// snapshots reads the snapshots in batched calls (paged if AWS pages
// them), or from the cache when a sweep has read them already.
func (r reader) snapshots(ctx context.Context, ids []string) ([]ec2types.Snapshot, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	out, missing := r.cache.snapshots(ids)
	for chunk := range slices.Chunk(missing, snapshotBatch) {
		p := ec2.NewDescribeSnapshotsPaginator(r.ec2, &ec2.DescribeSnapshotsInput{SnapshotIds: chunk})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return nil, err
			}
			out = append(out, page.Snapshots...)
			r.cache.putSnapshots(page.Snapshots)
		}
	}
	// Keep the caller's order, whatever order the API answered in.
	slices.SortStableFunc(out, func(a, b ec2types.Snapshot) int {
		return slices.Index(ids, aws.ToString(a.SnapshotId)) - slices.Index(ids, aws.ToString(b.SnapshotId))
	})
	return out, nil
}

func (r reader) snapshotPerms(ctx context.Context, snapshotID string) (rules.Perms, error) {
	out, err := r.ec2.DescribeSnapshotAttribute(ctx, &ec2.DescribeSnapshotAttributeInput{
		SnapshotId: aws.String(snapshotID), Attribute: ec2types.SnapshotAttributeNameCreateVolumePermission,
	})
	if err != nil {
		return rules.Perms{}, fmt.Errorf("reading create-volume permissions of %s: %w", snapshotID, err)
	}
	var p rules.Perms
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

// key describes a key and, when amishare may manage it, reads which
// accounts amishare currently lets use it.
//
// A key whose ARN names another account is foreign without any call: the
// role may use only keys of its own account, so DescribeKey would be denied
// (and even if allowed, only the owner can change who uses the key). A key
// for which DescribeKey is denied is not usable by amishare either (another
// account's key named without its ARN, or a key policy that does not let
// this account's IAM in). Both are returned with Denied or a foreign Owner,
// and the rules block the image with a message instead of failing the
// event, which no retry could fix.
func (r reader) key(ctx context.Context, keyID, imageOwner string, mode config.KMSMode) (rules.KeyState, error) {
	if owner := awsid.AccountOf(keyID); owner != "" && imageOwner != "" && owner != imageOwner {
		return rules.KeyState{ARN: keyID, Owner: owner}, nil
	}
	info, err := kmspolicy.Describe(ctx, r.kms, keyID)
	if awserr.IsAccessDenied(err) {
		return rules.KeyState{ARN: keyID, Owner: awsid.AccountOf(keyID), Denied: true}, nil
	}
	if err != nil {
		return rules.KeyState{}, err
	}
	k := rules.KeyState{ARN: info.ARN, Owner: info.Owner, Manager: info.Manager}
	if !k.Writable(imageOwner) {
		return k, nil
	}
	if k.Policy, err = kmspolicy.GetPolicy(ctx, r.kms, k.ARN); err != nil {
		return k, err
	}
	statements, err := kmspolicy.Grantees(k.Policy)
	if err != nil {
		return k, fmt.Errorf("parsing policy of key %s: %w", k.ARN, err)
	}
	if mode != config.ModePolicy {
		k.Statements = statements
	} else {
		for _, g := range statements {
			if awsid.IsAccountID(g) {
				k.Accounts = append(k.Accounts, g)
			} else {
				k.Organizations = append(k.Organizations, g)
			}
		}
		// An edit that adds and removes no one changes only statements of
		// ours that are not as amishare writes them.
		_, changed, err := kmspolicy.Edit(k.Policy, nil, nil, kmspolicy.KeyOf(k.ARN))
		k.Stale = err == nil && changed
	}
	if mode == config.ModeGrant || r.cache != nil {
		grants, err := kmsgrant.Accounts(ctx, r.kms, k.ARN)
		if err != nil {
			return k, err
		}
		if mode == config.ModeGrant {
			k.Accounts = grants
		} else {
			k.Grants, k.GrantsRead = grants, true
		}
	}
	return k, nil
}

// managedImages returns the sweep's list of managed images when there is
// one, else lists them.
func (r reader) managedImages(ctx context.Context) ([]ec2types.Image, error) {
	if r.cache != nil && r.cache.Managed != nil && !r.fresh {
		return r.cache.Managed, nil
	}
	return r.listManagedImages(ctx)
}

// listManagedImages lists the managed images this account owns (tag
// amishare:accounts or amishare:status; the filter's values are ORed, so
// one listing), disabled ones included, sorted by id.
func (r reader) listManagedImages(ctx context.Context) ([]ec2types.Image, error) {
	var images []ec2types.Image
	p := ec2.NewDescribeImagesPaginator(r.ec2, &ec2.DescribeImagesInput{
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

// filterValues is the most values one EC2 filter takes.
const filterValues = 200

// imageStates returns the state of each of ids that names an image of this
// account (a deregistered image while EC2 still lists it, and a disabled
// one: it is not gone). A filter, unlike ImageIds, answers an unknown id
// with nothing rather than an error.
func (r reader) imageStates(ctx context.Context, ids []string) (map[string]ec2types.ImageState, error) {
	states := map[string]ec2types.ImageState{}
	for chunk := range slices.Chunk(ids, filterValues) {
		out, err := r.ec2.DescribeImages(ctx, &ec2.DescribeImagesInput{
			Owners:          []string{"self"},
			Filters:         []ec2types.Filter{{Name: aws.String("image-id"), Values: chunk}},
			IncludeDisabled: aws.Bool(true),
		})
		if err != nil {
			return nil, fmt.Errorf("describing images %s: %w", strings.Join(chunk, " "), err)
		}
		for _, img := range out.Images {
			states[aws.ToString(img.ImageId)] = img.State
		}
	}
	return states, nil
}

// recordedSnapshots lists this account's snapshots recorded for imageID
// (tag amishare:image) or, when imageID is "", every recorded snapshot, in
// one paged DescribeSnapshots.
func (r reader) recordedSnapshots(ctx context.Context, imageID string) ([]ec2types.Snapshot, error) {
	// The record may name several images: a wildcard finds imageID among
	// them (EC2 filters take * and ?); recordedFor keeps exact matches.
	filter := ec2types.Filter{Name: aws.String("tag:" + amitag.Image), Values: []string{"*" + imageID + "*"}}
	what := "the snapshots recorded for " + imageID
	if imageID == "" {
		filter = ec2types.Filter{Name: aws.String("tag-key"), Values: []string{amitag.Image}}
		what = "the recorded snapshots"
	}
	var out []ec2types.Snapshot
	p := ec2.NewDescribeSnapshotsPaginator(r.ec2, &ec2.DescribeSnapshotsInput{
		OwnerIds: []string{"self"}, Filters: []ec2types.Filter{filter}, MaxResults: aws.Int32(1000),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("finding %s: %w", what, err)
		}
		out = append(out, page.Snapshots...)
	}
	return out, nil
}

// copies lists the images in region whose amishare:source names source.
func (r reader) copies(ctx context.Context, region, source string) ([]rules.FoundCopy, error) {
	var out []rules.FoundCopy
	p := ec2.NewDescribeImagesPaginator(ec2In(r.ec2, r.region, r.regions, region), &ec2.DescribeImagesInput{
		Owners:  []string{"self"},
		Filters: []ec2types.Filter{{Name: aws.String("tag:" + amitag.Source), Values: []string{source}}},
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("finding copies of %s in %s: %w", source, region, err)
		}
		for _, img := range page.Images {
			tags := tagMap(img.Tags)
			if tags[amitag.Source] != source {
				continue
			}
			accounts, has := tags[amitag.Accounts]
			c := rules.FoundCopy{
				ImageID: aws.ToString(img.ImageId), Region: region, State: string(img.State),
				Accounts: accounts, HasAccounts: has, Created: aws.ToString(img.CreationDate),
			}
			if img.StateReason != nil {
				c.Reason = aws.ToString(img.StateReason.Message)
			}
			out = append(out, c)
		}
	}
	return out, nil
}

// isManaged reports whether the image carries amishare:accounts or
// amishare:status. The role enforces the same rule for ModifyImageAttribute
// and CreateTags (aws:ResourceTag conditions in template.yaml); snapshots
// carry no amishare tag, so IAM cannot tie them to a managed image and only
// this check (with snapshotIDs of the image's own mappings) does.
func isManaged(img *ec2types.Image) bool {
	for _, t := range img.Tags {
		if k := aws.ToString(t.Key); k == amitag.Accounts || k == amitag.Status {
			return true
		}
	}
	return false
}

func tagMap(tags []ec2types.Tag) map[string]string {
	m := make(map[string]string, len(tags))
	for _, t := range tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

// The reads a sweep makes through the engine, besides its reconciles.

// ManagedImages lists the managed images this account owns in the engine's
// region (tag amishare:accounts or amishare:status), disabled ones
// included, sorted by id.
func (e *Engine) ManagedImages(ctx context.Context) ([]ec2types.Image, error) {
	return e.read().listManagedImages(ctx)
}

// ImageStates returns the state of each of ids that names an image of this
// account; ids of images that are gone are left out.
func (e *Engine) ImageStates(ctx context.Context, ids []string) (map[string]ec2types.ImageState, error) {
	return e.read().imageStates(ctx, ids)
}

// RecordedSnapshots lists this account's snapshots recorded for imageID
// (tag amishare:image), or every recorded snapshot when imageID is "".
func (e *Engine) RecordedSnapshots(ctx context.Context, imageID string) ([]ec2types.Snapshot, error) {
	return e.read().recordedSnapshots(ctx, imageID)
}

// LoadConfig returns the configuration (the sweep's, with a cache).
func (e *Engine) LoadConfig(ctx context.Context) (*config.Config, error) {
	return e.read().loadConfig(ctx)
}

// Prefetch reads the snapshots of images into the engine's cache in
// batched DescribeSnapshots calls, so that reconciling them reads none. A
// batch naming a snapshot that no longer exists fails as a whole: its
// images then read their own snapshots, and only they fail. Without a
// cache it reads nothing.
func (e *Engine) Prefetch(ctx context.Context, images []ec2types.Image) error {
	if e.cache == nil {
		return nil
	}
	var ids []string
	for i := range images {
		ids = append(ids, snapshotIDs(&images[i])...)
	}
	_, missing := e.cache.snapshots(ids)
	for chunk := range slices.Chunk(missing, snapshotBatch) {
		if _, err := e.read().snapshots(ctx, chunk); err != nil && !awserr.IsNotFound(err) {
			return fmt.Errorf("reading snapshots: %w", err)
		}
	}
	return nil
}
