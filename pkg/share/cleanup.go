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

// Cleanup revokes what amishare shared for an image that is gone
// (deregistered) or no longer managed (every amishare tag deleted): every
// launch permission of an image that still exists (by a reset), every
// create-volume permission on the snapshots recorded for it (amishare:image),
// then the accounts, organizations and OUs on their keys that no other
// managed image still needs. A snapshot another managed image also uses
// keeps that image's targets. Snapshots are never deleted, and snapshots
// without the record (amishare never shared them) are never touched. A
// managed image is not cleaned up: its reconcile decides.
func (e *Engine) Cleanup(ctx context.Context, imageID string, opts Options) (Result, error) {
	res := Result{ImageID: imageID}
	r := e.read()
	img, err := r.image(ctx, "", imageID)
	if err != nil {
		res.Outcome = OutcomeFailed
		return res, err
	}
	exists := img != nil && img.State != ec2types.ImageStateDeregistered
	if exists && isManaged(img) {
		res.Outcome, res.Reason = OutcomeSkipped, fmt.Sprintf("image still exists (%s) and is managed: its reconcile decides", img.State)
		return res, nil
	}
	snaps, err := r.recordedSnapshots(ctx, imageID)
	if err != nil {
		res.Outcome = OutcomeFailed
		return res, err
	}
	if res, err = e.Release(ctx, imageID, exists, snaps, opts); err != nil || res.Outcome != OutcomeGone {
		return res, err
	}
	return e.forgetUnrecorded(ctx, res, imageID, opts)
}

// forgetUnrecorded takes an image that is gone or unmanaged, and whose
// snapshots record nothing (it was never shared by account id), out of
// this account's parameters: it may have fed one.
func (e *Engine) forgetUnrecorded(ctx context.Context, res Result, imageID string, opts Options) (Result, error) {
	var r Result
	cfg, invalid, err := e.begin(ctx, &r, opts)
	switch {
	case err != nil:
		res.Outcome = OutcomeFailed
		return res, err
	case invalid != nil || len(cfg.Parameters) == 0:
		return res, nil
	}
	res.DryRun = r.DryRun
	if err := e.forget(ctx, cfg, imageID, false, nil, &res); err != nil {
		res.Outcome = OutcomeFailed
		return res, err
	}
	return res, nil
}

// release is the reconcile of an image without amishare's tags: if its
// snapshots record it, it was managed and everything amishare gave is
// revoked (Release); otherwise it is none of amishare's business.
func (e *Engine) release(ctx context.Context, img *ec2types.Image, opts Options) (Result, error) {
	imageID := aws.ToString(img.ImageId)
	res := Result{ImageID: imageID, Outcome: OutcomeUnmanaged, Reason: "no " + amitag.Accounts + " or " + amitag.Status + " tag"}
	snaps, err := e.read().snapshots(ctx, snapshotIDs(img))
	if err != nil {
		res.Outcome = OutcomeFailed
		return res, fmt.Errorf("reading the snapshots of %s: %w", imageID, err)
	}
	snaps = recordedFor(imageID, snaps)
	if len(snaps) == 0 {
		return e.forgetUnrecorded(ctx, res, imageID, opts)
	}
	return e.Release(ctx, imageID, true, snaps, opts)
}

// recordedFor keeps the snapshots whose record names imageID: never touch
// a snapshot recorded for another image only.
func recordedFor(imageID string, snaps []ec2types.Snapshot) []ec2types.Snapshot {
	return slices.DeleteFunc(slices.Clone(snaps), func(s ec2types.Snapshot) bool {
		return !slices.Contains(amitag.RecordImages(tagMap(s.Tags)[amitag.Image]), imageID)
	})
}

// Release revokes everything amishare gave for imageID, which is gone or
// exists without amishare's tags (exists), from the snapshots recorded for
// it (a sweep lists every recorded snapshot at once). It decides with the
// rules, as a reconcile does, for an image that wants no target any more;
// an image that still exists loses its launch permissions first, by a
// reset, and only when each is one amishare could have granted (otherwise
// nothing is changed, and an ERROR names what is left). Then it takes the
// image out of the snapshots' record, so a released image costs nothing
// afterwards.
func (e *Engine) Release(ctx context.Context, imageID string, exists bool, snaps []ec2types.Snapshot, opts Options) (Result, error) {
	res := Result{ImageID: imageID}
	snaps = recordedFor(imageID, snaps)
	if len(snaps) == 0 {
		res.Outcome, res.Reason = OutcomeGone, "no snapshot is recorded for this image"
		return res, nil
	}
	cfg, invalid, err := e.begin(ctx, &res, opts)
	switch {
	case err != nil:
		return res, err
	case invalid != nil:
		// Without a configuration no one can tell what other images still
		// need: revoke nothing; the record stays for the next sweep.
		res.Outcome, res.Status, res.Reason = OutcomeBlocked, rules.StatusError, invalid.Error()
		e.logger().WarnContext(ctx, "image not released", "imageId", imageID, "reason", res.Reason)
		return res, nil
	}
	r := e.read()
	if exists && e.cache != nil {
		// The sweep found the image unmanaged minutes ago: read it again
		// before revoking anything, as a reconcile does before it writes.
		img, err := r.image(ctx, "", imageID)
		if err != nil {
			res.Outcome = OutcomeFailed
			return res, err
		}
		if img != nil && isManaged(img) {
			res.Outcome, res.Reason = OutcomeSkipped, "the image is managed again: its reconcile decides"
			return res, nil
		}
		exists = img != nil && img.State != ec2types.ImageStateDeregistered
	}
	st := rules.State{ImageID: imageID, Owner: aws.ToString(snaps[0].OwnerId)}
	if exists {
		if st.Image, err = r.launchPermissions(ctx, imageID); err != nil {
			res.Outcome = OutcomeFailed
			return res, err
		}
	}
	r.snapshotsAndKeys(ctx, &st, snaps, cfg.KMS)
	if cfg.KMS != config.ModeGrant {
		r.grants(ctx, &st)
	}
	in := rules.Input{State: st, KMS: cfg.KMS, AllowPublic: cfg.AllowPublic, Known: cfg.OrganizationTargets(), Release: true, Allowed: cfg.Allowed}
	users, err := e.snapshotUsers(ctx, imageID, st)
	if err != nil {
		res.Outcome = OutcomeFailed
		return res, err
	}
	d, unlock, err := e.decide(ctx, cfg, in)
	defer unlock()
	if err != nil {
		res.Outcome = OutcomeFailed
		return res, err
	}
	res.Plan = &d.Plan
	if len(d.Unrevoked) > 0 {
		// Launch permissions amishare never gave: change nothing.
		res.Outcome, res.Reason, res.Unrevoked = OutcomeBlocked, d.Message, d.Unrevoked
		e.logger().ErrorContext(ctx, "image not released", "imageId", imageID, "left", res.Unrevoked, "reason", d.Message)
		return res, nil
	}
	if res.DryRun {
		e.planOnly(ctx, &res, d.Plan)
		if err := e.forget(ctx, cfg, imageID, true, keysAfter(st, d.Plan, cfg.KMS), &res); err != nil {
			res.Outcome = OutcomeFailed
			return res, err
		}
		return res, nil
	}
	w := e.write(&res)
	if err := w.apply(ctx, d.Plan, cfg); err != nil {
		if nd, ok := e.notDelegated(ctx, imageID, err); ok {
			// What could be revoked is; the key is not amishare's to edit.
			// The record stays, so the next sweep tries the key again.
			res.Outcome, res.Status, res.Reason = OutcomeBlocked, rules.StatusError, nd.Reason()
			return res, nil
		}
		res.Outcome = OutcomeFailed
		return res, err
	}
	if len(st.Unread) > 0 {
		// Something could not be read: what it was about stays, and so does
		// the record, for the next try.
		res.Outcome = OutcomeFailed
		return res, fmt.Errorf("releasing %s: %v", imageID, st.Unread)
	}
	// Out of the parameters before the record goes: the record is what
	// leads a retry back to the receivers.
	if err := e.forget(ctx, cfg, imageID, true, keysAfter(st, d.Plan, cfg.KMS), &res); err != nil {
		res.Outcome = OutcomeFailed
		return res, err
	}
	if err := w.releaseSnapshots(ctx, imageID, unrecord(imageID, st, users)); err != nil {
		res.Outcome = OutcomeFailed
		return res, err
	}
	res.Outcome, res.Reason = OutcomeCleaned, "no longer managed or gone: what amishare gave is revoked; its snapshots keep only what other managed images need"
	return res, nil
}

// unrecord computes the snapshots' record without imageID: the other images
// it names, and the other managed images found behind each snapshot (a
// record written before it named them all). An empty value removes it.
func unrecord(imageID string, st rules.State, users map[string][]string) []rules.RecordSet {
	var sets []rules.RecordSet
	for _, s := range st.Snapshots {
		ids := slices.DeleteFunc(slices.Concat(s.Images, users[s.ID]), func(id string) bool { return id == imageID })
		value, _ := amitag.RecordValue(ids)
		i := slices.IndexFunc(sets, func(r rules.RecordSet) bool { return r.Value == value })
		if i < 0 {
			sets = append(sets, rules.RecordSet{Value: value})
			i = len(sets) - 1
		}
		sets[i].SnapshotIDs = append(sets[i].SnapshotIDs, s.ID)
	}
	return sets
}
