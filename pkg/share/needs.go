package share

import (
	"context"
	"fmt"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/amishare/amishare/pkg/amitag"
	"github.com/amishare/amishare/pkg/config"
	"github.com/amishare/amishare/pkg/share/rules"
)

// What other images still need. A key or a snapshot can lie behind several
// managed images; an account, organization or OU leaves it only when no
// other managed image's tag still names it. This is the one place that
// works that out, for reconciles and cleanups alike.

// addNeeds fills in.Keep and in.KeepSnapshots when the image's keys or
// snapshots hold targets it no longer wants: those another managed image
// still needs stay. Nothing is read when nothing would be removed.
func (e *Engine) addNeeds(ctx context.Context, cfg *config.Config, in *rules.Input) error {
	keys, snaps := staleKeys(in.State, in.Targets), staleSnapshots(in.State, in.Targets.Accounts)
	if len(keys) == 0 && len(snaps) == 0 {
		return nil
	}
	var err error
	in.Keep, in.KeepSnapshots, err = e.otherNeeds(ctx, cfg, in.State.ImageID, keys, snaps)
	return err
}

// staleKeys lists the keys that grant accounts, organizations or OUs the
// image no longer wants.
func staleKeys(st rules.State, targets amitag.Targets) []string {
	desired := rules.KeyGrantees(targets)
	var keys []string
	for _, k := range st.Keys {
		if slices.ContainsFunc(k.Grantees(), func(g string) bool { return !slices.Contains(desired, g) }) {
			keys = append(keys, k.ARN)
		}
	}
	return keys
}

// staleSnapshots lists the snapshots shared with accounts the image no longer wants.
func staleSnapshots(st rules.State, desired []string) []string {
	var snaps []string
	for _, s := range st.Snapshots {
		if slices.ContainsFunc(s.Perms.Accounts, func(a string) bool { return !slices.Contains(desired, a) }) {
			snaps = append(snaps, s.ID)
		}
	}
	return snaps
}

// others returns the managed images other than imageID that may still
// need something (available or disabled), from the sweep's list or a
// fresh one.
func (e *Engine) others(ctx context.Context, imageID string) ([]ec2types.Image, error) {
	managed, err := e.read().managedImages(ctx)
	if err != nil {
		return nil, err
	}
	var images []ec2types.Image
	for _, img := range managed {
		if aws.ToString(img.ImageId) != imageID && (img.State == ec2types.ImageStateAvailable || img.State == ec2types.ImageStateDisabled) {
			images = append(images, img)
		}
	}
	return images, nil
}

// otherNeeds finds what other managed images using a key or a snapshot are
// still meant to be shared with; that stays. For each of keys: accounts,
// organizations and OUs, as the key statements name them; for each of
// snaps: accounts (create-volume permission names only accounts). It reads
// the other managed images' tags, not their permissions: a target stays
// while any other image's tag names it. A sweep uses its own list of
// managed images (the cache), except for an image it read again.
func (e *Engine) otherNeeds(ctx context.Context, cfg *config.Config, imageID string, keys, snaps []string) (keyNeeds, snapNeeds map[string][]string, err error) {
	images, err := e.others(ctx, imageID)
	if err != nil {
		return nil, nil, err
	}
	keyOf := map[string]string{}
	if len(keys) > 0 {
		var ids []string
		for i := range images {
			ids = append(ids, snapshotIDs(&images[i])...)
		}
		described, err := e.read().snapshots(ctx, ids)
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
		grantees := rules.KeyGrantees(targets)
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

// snapshotUsers lists, per snapshot of st, the other managed images behind
// it: the record names them once imageID is released.
func (e *Engine) snapshotUsers(ctx context.Context, imageID string, st rules.State) (map[string][]string, error) {
	images, err := e.others(ctx, imageID)
	if err != nil {
		return nil, err
	}
	users := map[string][]string{}
	for i := range images {
		for _, sid := range snapshotIDs(&images[i]) {
			if slices.ContainsFunc(st.Snapshots, func(s rules.SnapshotState) bool { return s.ID == sid }) {
				users[sid] = append(users[sid], aws.ToString(images[i].ImageId))
			}
		}
	}
	return users, nil
}

// union returns the sorted union of a and b, each element once.
func union(a, b []string) []string {
	out := slices.Concat(a, b)
	slices.Sort(out)
	return slices.Compact(out)
}
