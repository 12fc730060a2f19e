package share

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/amishare/amishare/pkg/amitag"
	"github.com/amishare/amishare/pkg/share/rules"
)

// Cleanup revokes what amishare shared for an image that is gone
// (deregistered): every create-volume permission on the snapshots recorded
// for it (tag amishare:image), then the accounts on their keys that no other
// managed image still needs. A snapshot another managed image also uses
// keeps that image's targets. Snapshots are never deleted, and snapshots
// without the record (amishare never shared them) are never touched.
func (e *Engine) Cleanup(ctx context.Context, imageID string, opts Options) (Result, error) {
	res := Result{ImageID: imageID}
	r := e.read()
	states, err := r.imageStates(ctx, []string{imageID})
	if err != nil {
		res.Outcome = OutcomeFailed
		return res, err
	}
	if st, ok := states[imageID]; ok && st != ec2types.ImageStateDeregistered {
		res.Outcome, res.Reason = OutcomeSkipped, fmt.Sprintf("image still exists (%s): nothing to clean up", st)
		return res, nil
	}
	snaps, err := r.recordedSnapshots(ctx, imageID)
	if err != nil {
		res.Outcome = OutcomeFailed
		return res, err
	}
	return e.CleanupSnapshots(ctx, imageID, snaps, opts)
}

// CleanupSnapshots is Cleanup for snapshots already found (a sweep lists
// every recorded snapshot at once). It decides with the rules, as a
// reconcile does, for an image that wants no target any more; then it
// removes the record from the snapshots, so a cleaned image costs nothing
// afterwards.
func (e *Engine) CleanupSnapshots(ctx context.Context, imageID string, snaps []ec2types.Snapshot, opts Options) (Result, error) {
	res := Result{ImageID: imageID}
	snaps = slices.DeleteFunc(slices.Clone(snaps), func(s ec2types.Snapshot) bool {
		return tagMap(s.Tags)[amitag.Image] != imageID // never touch a snapshot recorded for another image
	})
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
		e.logger().WarnContext(ctx, "deregistered image not cleaned up", "imageId", imageID, "reason", res.Reason)
		return res, nil
	}
	st := rules.State{ImageID: imageID, Owner: aws.ToString(snaps[0].OwnerId)}
	if err := e.read().snapshotsAndKeys(ctx, &st, snaps, cfg.KMS); err != nil {
		res.Outcome = OutcomeFailed
		return res, err
	}
	d, unlock, err := e.decide(ctx, cfg, rules.Input{State: st, KMS: cfg.KMS, AllowPublic: cfg.AllowPublic, Known: cfg.OrganizationTargets()})
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
	w := e.write(&res)
	if err := w.apply(ctx, d.Plan, cfg.KMS); err != nil {
		if nd, ok := e.notDelegated(ctx, imageID, err); ok {
			// The snapshots are unshared; the key is not amishare's to edit.
			// The record stays, so the next sweep tries the key again.
			res.Outcome, res.Status, res.Reason = OutcomeBlocked, rules.StatusError, nd.Reason()
			return res, nil
		}
		res.Outcome = OutcomeFailed
		return res, err
	}
	var ids []string
	for _, s := range st.Snapshots {
		ids = append(ids, s.ID)
	}
	if err := w.releaseSnapshots(ctx, imageID, ids); err != nil {
		res.Outcome = OutcomeFailed
		return res, err
	}
	res.Outcome, res.Reason = OutcomeCleaned, "image is gone; its snapshots keep only what other managed images need"
	return res, nil
}
