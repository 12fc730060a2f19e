package share

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/amishare/amishare/pkg/amitag"
	"github.com/amishare/amishare/pkg/awserr"
	"github.com/amishare/amishare/pkg/config"
	"github.com/amishare/amishare/pkg/kmspolicy"
)

// apply carries out the plan in its safe order (see Plan), recording and
// logging each change as soon as AWS has accepted it. The snapshots are
// recorded (tagged amishare:image) after the removals and before anything
// is added: a snapshot is never shared without the record that finds it
// again once the image is gone.
func (e *Engine) apply(ctx context.Context, p Plan, mode config.KMSMode, cache *Cache, res *Result) error {
	if err := e.modifyImage(ctx, p.ImageID, nil, p.Image.Remove, p.Image.MakePrivate, res); err != nil {
		return err
	}
	for _, s := range p.Snapshots {
		if err := e.modifySnapshot(ctx, p.ImageID, s.SnapshotID, ec2types.OperationTypeRemove, s.Remove, s.MakePrivate, res); err != nil {
			return err
		}
	}
	if err := e.recordSnapshots(ctx, p.ImageID, p.Record, cache); err != nil {
		return err
	}
	for _, k := range p.Keys {
		err := e.modifyKey(ctx, p.ImageID, k, mode, res)
		cache.forgetKey(k.KeyARN)
		if err != nil {
			return err
		}
	}
	for _, s := range p.Snapshots {
		if err := e.modifySnapshot(ctx, p.ImageID, s.SnapshotID, ec2types.OperationTypeAdd, s.Add, false, res); err != nil {
			return err
		}
	}
	return e.modifyImage(ctx, p.ImageID, p.Image.Add, nil, false, res)
}

func (e *Engine) record(ctx context.Context, res *Result, c Change) {
	res.Changes = append(res.Changes, c)
	e.audit(ctx, "permission changed", c)
}

// modifyImage makes one ModifyImageAttribute call for either additions or
// removals, accounts, organizations and OUs together.
func (e *Engine) modifyImage(ctx context.Context, imageID string, add, remove []string, makePrivate bool, res *Result) error {
	var mods ec2types.LaunchPermissionModifications
	for _, a := range add {
		mods.Add = append(mods.Add, launchPermission(a))
	}
	for _, a := range remove {
		mods.Remove = append(mods.Remove, launchPermission(a))
	}
	if makePrivate {
		mods.Remove = append(mods.Remove, ec2types.LaunchPermission{Group: ec2types.PermissionGroupAll})
	}
	if len(mods.Add) == 0 && len(mods.Remove) == 0 {
		return nil
	}
	if _, err := e.EC2.ModifyImageAttribute(ctx, &ec2.ModifyImageAttributeInput{ImageId: aws.String(imageID), LaunchPermission: &mods}); err != nil {
		return fmt.Errorf("changing launch permissions of %s: %w", imageID, err)
	}
	for _, a := range add {
		e.record(ctx, res, withTarget(Change{ImageID: imageID, Action: "add"}, a))
	}
	for _, a := range remove {
		e.record(ctx, res, withTarget(Change{ImageID: imageID, Action: "remove"}, a))
	}
	if makePrivate {
		e.record(ctx, res, Change{ImageID: imageID, Account: publicGroup, Action: "remove"})
	}
	return nil
}

// modifySnapshot makes one ModifySnapshotAttribute call in the OperationType +
// UserIds form (valid on AWS, and the only form the local emulator applies).
func (e *Engine) modifySnapshot(ctx context.Context, imageID, snapshotID string, op ec2types.OperationType, accounts []string, makePrivate bool, res *Result) error {
	if len(accounts) == 0 && !makePrivate {
		return nil
	}
	in := &ec2.ModifySnapshotAttributeInput{
		SnapshotId:    aws.String(snapshotID),
		Attribute:     ec2types.SnapshotAttributeNameCreateVolumePermission,
		OperationType: op,
		UserIds:       accounts,
	}
	if makePrivate {
		in.GroupNames = []string{publicGroup}
	}
	if _, err := e.EC2.ModifySnapshotAttribute(ctx, in); err != nil {
		return fmt.Errorf("changing create-volume permissions of %s: %w", snapshotID, err)
	}
	for _, a := range accounts {
		e.record(ctx, res, Change{ImageID: imageID, SnapshotID: snapshotID, Account: a, Action: string(op)})
	}
	if makePrivate {
		e.record(ctx, res, Change{ImageID: imageID, SnapshotID: snapshotID, Account: publicGroup, Action: "remove"})
	}
	return nil
}

func (e *Engine) modifyKey(ctx context.Context, imageID string, k KeyDiff, mode config.KMSMode, res *Result) error {
	added, removed := k.Add, k.Remove
	switch mode {
	case config.ModePolicy:
		wrote, err := kmspolicy.EnsurePolicy(ctx, e.KMS, k.KeyARN, k.Policy, k.Add, k.Remove)
		if wrote && k.Restore {
			e.logger().InfoContext(ctx, "key statements restored", "imageId", imageID, "keyArn", k.KeyARN)
		}
		if err != nil {
			if awserr.IsAccessDenied(err) {
				return &KeyNotDelegatedError{KeyARN: k.KeyARN, Err: err}
			}
			return fmt.Errorf("updating policy of key %s: %w", k.KeyARN, err)
		}
	case config.ModeGrant:
		var err error
		if added, removed, err = kmspolicy.EnsureGrants(ctx, e.KMS, k.KeyARN, k.Add, k.Remove); err != nil {
			if awserr.IsAccessDenied(err) {
				err = &KeyNotDelegatedError{KeyARN: k.KeyARN, Err: err}
			} else {
				err = fmt.Errorf("updating grants of key %s: %w", k.KeyARN, err)
			}
			// Grants made or revoked before the refusal are logged all the same.
			e.recordKey(ctx, imageID, k.KeyARN, added, removed, res)
			return err
		}
	default:
		return nil
	}
	e.recordKey(ctx, imageID, k.KeyARN, added, removed, res)
	return nil
}

func (e *Engine) recordKey(ctx context.Context, imageID, keyARN string, added, removed []string, res *Result) {
	for _, a := range added {
		e.record(ctx, res, withTarget(Change{ImageID: imageID, KeyARN: keyARN, Action: "add"}, a))
	}
	for _, a := range removed {
		e.record(ctx, res, withTarget(Change{ImageID: imageID, KeyARN: keyARN, Action: "remove"}, a))
	}
}

// KeyNotDelegatedError means IAM (or the key policy) refused amishare a write
// to a key of this account: with the stack parameter DelegatedKeysOnly the
// role may change only keys tagged amishare:managed = true. No retry can fix
// that, so the image is blocked with a message saying which tag to put on
// which key, and the event succeeds.
type KeyNotDelegatedError struct {
	KeyARN string
	Err    error
}

func (e *KeyNotDelegatedError) Error() string {
	return fmt.Sprintf("key %s is not delegated to amishare (access denied): tag the key %s = %s, or allow this function in its key policy: %v",
		e.KeyARN, amitag.KeyManaged, amitag.KeyManagedValue, e.Err)
}

func (e *KeyNotDelegatedError) Unwrap() error { return e.Err }

// Reason is the short text for the image's amishare:message.
func (e *KeyNotDelegatedError) Reason() string {
	return fmt.Sprintf("key %s is not delegated to amishare: tag the key %s = %s", e.KeyARN, amitag.KeyManaged, amitag.KeyManagedValue)
}

// recordSnapshots tags the snapshots amishare:image = imageID, in one call.
func (e *Engine) recordSnapshots(ctx context.Context, imageID string, snaps []string, cache *Cache) error {
	if len(snaps) == 0 {
		return nil
	}
	_, err := e.EC2.CreateTags(ctx, &ec2.CreateTagsInput{
		Resources: snaps,
		Tags:      []ec2types.Tag{{Key: aws.String(amitag.Image), Value: aws.String(imageID)}},
	})
	if err != nil {
		return fmt.Errorf("recording %s on its snapshots: %w", amitag.Image, err)
	}
	cache.forgetSnapshots(snaps)
	e.logger().InfoContext(ctx, "snapshots recorded", "imageId", imageID, "snapshotIds", snaps, "tag", amitag.Image)
	return nil
}
