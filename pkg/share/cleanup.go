package share

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/amishare/amishare/pkg/amitag"
	"github.com/amishare/amishare/pkg/awserr"
)

// Cleanup revokes what amishare shared for an image that is gone
// (deregistered): every create-volume permission on the snapshots recorded
// for it (tag amishare:image), then the accounts on their keys that no other
// managed image still needs. A snapshot another managed image also uses
// keeps that image's targets. Snapshots are never deleted, and snapshots
// without the record (amishare never shared them) are never touched.
func (e *Engine) Cleanup(ctx context.Context, imageID string, opts Options) (Result, error) {
	res := Result{ImageID: imageID}
	states, err := e.ImageStates(ctx, []string{imageID})
	if err != nil {
		res.Outcome = OutcomeFailed
		return res, err
	}
	if st, ok := states[imageID]; ok && st != ec2types.ImageStateDeregistered {
		res.Outcome, res.Reason = OutcomeSkipped, fmt.Sprintf("image still exists (%s): nothing to clean up", st)
		return res, nil
	}
	snaps, err := e.RecordedSnapshots(ctx, imageID)
	if err != nil {
		res.Outcome = OutcomeFailed
		return res, err
	}
	return e.CleanupSnapshots(ctx, imageID, snaps, opts)
}

// ImageStates returns the state of each of ids that names an image of this
// account (a deregistered image while EC2 still lists it, and a disabled
// one: it is not gone). A filter, unlike ImageIds, answers an unknown id
// with nothing rather than an error.
func (e *Engine) ImageStates(ctx context.Context, ids []string) (map[string]ec2types.ImageState, error) {
	states := map[string]ec2types.ImageState{}
	for chunk := range slices.Chunk(ids, filterValues) {
		out, err := e.EC2.DescribeImages(ctx, &ec2.DescribeImagesInput{
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

// filterValues is the most values one EC2 filter takes.
const filterValues = 200

// RecordedSnapshots lists this account's snapshots recorded for imageID
// (tag amishare:image) or, when imageID is "", every recorded snapshot, in
// one paged DescribeSnapshots.
func (e *Engine) RecordedSnapshots(ctx context.Context, imageID string) ([]ec2types.Snapshot, error) {
	filter := ec2types.Filter{Name: aws.String("tag:" + amitag.Image), Values: []string{imageID}}
	what := "the snapshots recorded for " + imageID
	if imageID == "" {
		filter = ec2types.Filter{Name: aws.String("tag-key"), Values: []string{amitag.Image}}
		what = "the recorded snapshots"
	}
	var out []ec2types.Snapshot
	p := ec2.NewDescribeSnapshotsPaginator(e.EC2, &ec2.DescribeSnapshotsInput{
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

// CleanupSnapshots is Cleanup for snapshots already found (a sweep lists
// every recorded snapshot at once). It decides with Decide, as a reconcile
// does, for an image that wants no target any more; then it removes the
// record from the snapshots, so a cleaned image costs nothing afterwards.
func (e *Engine) CleanupSnapshots(ctx context.Context, imageID string, snaps []ec2types.Snapshot, opts Options) (Result, error) {
	res := Result{ImageID: imageID}
	snaps = slices.DeleteFunc(slices.Clone(snaps), func(s ec2types.Snapshot) bool {
		return tagMap(s.Tags)[amitag.Image] != imageID // never touch a snapshot recorded for another image
	})
	if len(snaps) == 0 {
		res.Outcome, res.Reason = OutcomeGone, "no snapshot is recorded for this image"
		return res, nil
	}
	cfg, err := e.loadConfig(ctx, opts.Cache)
	if err != nil {
		if awserr.IsTransient(err) {
			res.Outcome = OutcomeFailed
			return res, err
		}
		// Without a configuration no one can tell what other images still
		// need: revoke nothing; the record stays for the next sweep.
		res.Outcome, res.Status, res.DryRun = OutcomeBlocked, StatusError, opts.DryRun
		res.Reason = err.Error()
		e.logger().WarnContext(ctx, "deregistered image not cleaned up", "imageId", imageID, "reason", res.Reason)
		return res, nil
	}
	res.DryRun = opts.DryRun || cfg.DryRun
	st := State{ImageID: imageID, Owner: aws.ToString(snaps[0].OwnerId)}
	if err := e.readSnapshotsAndKeys(ctx, &st, snaps, cfg.KMS, opts.Cache); err != nil {
		res.Outcome = OutcomeFailed
		return res, err
	}
	d, unlock, err := e.decide(ctx, cfg, Input{State: st, KMS: cfg.KMS, AllowPublic: cfg.AllowPublic, Known: cfg.OrganizationTargets()}, opts.Cache)
	defer unlock()
	if err != nil {
		res.Outcome = OutcomeFailed
		return res, err
	}
	if len(d.Blocked) > 0 { // cannot happen without targets; never act on a blocked plan
		res.Outcome, res.Reason = OutcomeBlocked, fmt.Sprint(d.Blocked)
		return res, errors.New(res.Reason)
	}
	res.Plan = &d.Plan
	if res.DryRun {
		e.planOnly(ctx, &res, d.Plan)
		return res, nil
	}
	if err := e.apply(ctx, d.Plan, cfg.KMS, opts.Cache, &res); err != nil {
		var notDelegated *KeyNotDelegatedError
		if errors.As(err, &notDelegated) {
			// The snapshots are unshared; the key is not amishare's to edit.
			// The record stays, so the next sweep tries the key again.
			res.Outcome, res.Status, res.Reason = OutcomeBlocked, StatusError, notDelegated.Reason()
			e.logger().WarnContext(ctx, "key not delegated to amishare", "imageId", imageID,
				"keyArn", notDelegated.KeyARN, "tag", amitag.KeyManaged+"="+amitag.KeyManagedValue, "error", notDelegated.Err.Error())
			return res, nil
		}
		res.Outcome = OutcomeFailed
		return res, err
	}
	var ids []string
	for _, s := range st.Snapshots {
		ids = append(ids, s.ID)
	}
	if _, err := e.EC2.DeleteTags(ctx, &ec2.DeleteTagsInput{
		Resources: ids,
		Tags:      []ec2types.Tag{{Key: aws.String(amitag.Image), Value: aws.String(imageID)}},
	}); err != nil {
		res.Outcome = OutcomeFailed
		return res, fmt.Errorf("removing %s from the snapshots of %s: %w", amitag.Image, imageID, err)
	}
	opts.Cache.forgetSnapshots(ids)
	e.logger().InfoContext(ctx, "snapshots released", "imageId", imageID, "snapshotIds", ids, "tag", amitag.Image)
	res.Outcome, res.Reason = OutcomeCleaned, "image is gone; its snapshots keep only what other managed images need"
	return res, nil
}

// Prefetch reads the snapshots of images into the cache in batched
// DescribeSnapshots calls, so that reconciling them reads none. A batch
// naming a snapshot that no longer exists fails as a whole: its images then
// read their own snapshots, and only they fail.
func (e *Engine) Prefetch(ctx context.Context, cache *Cache, images []ec2types.Image) error {
	var ids []string
	for i := range images {
		ids = append(ids, snapshotIDs(&images[i])...)
	}
	_, missing := cache.snapshots(ids)
	for chunk := range slices.Chunk(missing, snapshotBatch) {
		if _, err := e.describeSnapshots(ctx, chunk, cache); err != nil && !awserr.IsNotFound(err) {
			return fmt.Errorf("reading snapshots: %w", err)
		}
	}
	return nil
}
