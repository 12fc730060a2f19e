package share

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/amishare/amishare/pkg/amitag"
	"github.com/amishare/amishare/pkg/awserr"
	"github.com/amishare/amishare/pkg/config"
	"github.com/amishare/amishare/pkg/kmsgrant"
	"github.com/amishare/amishare/pkg/kmspolicy"
	"github.com/amishare/amishare/pkg/share/rules"
)

// writer makes every AWS write of the engine, recording each permission
// change in res and logging it (the audit trail) as soon as AWS has
// accepted it.
type writer struct {
	ec2     EC2API
	kms     KMSAPI
	cache   *Cache
	log     *slog.Logger
	region  string
	regions RegionalEC2
	res     *Result
	// delegatedOnly: write only keys tagged amishare:managed = true (the
	// configuration's delegatedKeysOnly; apply sets it).
	delegatedOnly bool
}

// apply carries out the plan in its safe order (see rules.Plan). The
// snapshots are recorded (tagged amishare:image) after the removals and
// before anything is added: a snapshot is never shared without the record
// that finds it again once the image is gone.
func (w writer) apply(ctx context.Context, p rules.Plan, cfg *config.Config) error {
	mode := cfg.KMS
	w.delegatedOnly = cfg.DelegatedKeysOnly
	if p.ResetImage {
		if err := w.resetLaunchPermissions(ctx, p.ImageID, p.Image); err != nil {
			return err
		}
	} else if err := w.launchPermissions(ctx, p.ImageID, nil, p.Image.Remove, p.Image.MakePrivate); err != nil {
		return err
	}
	for _, s := range p.Snapshots {
		if err := w.volumePermissions(ctx, p.ImageID, s.SnapshotID, ec2types.OperationTypeRemove, s.Remove, s.MakePrivate); err != nil {
			return err
		}
	}
	for _, r := range p.Record {
		if err := w.recordSnapshots(ctx, p.ImageID, r); err != nil {
			return err
		}
	}
	for _, k := range p.Keys {
		err := w.key(ctx, p.ImageID, k, mode)
		w.cache.forgetKey(k.KeyARN)
		if err != nil {
			return err
		}
	}
	for _, s := range p.Snapshots {
		if err := w.volumePermissions(ctx, p.ImageID, s.SnapshotID, ec2types.OperationTypeAdd, s.Add, false); err != nil {
			return err
		}
	}
	return w.launchPermissions(ctx, p.ImageID, p.Image.Add, nil, false)
}

// changed records and logs one permission change AWS has accepted.
func (w writer) changed(ctx context.Context, c rules.Change) {
	w.res.Changes = append(w.res.Changes, c)
	audit(ctx, w.log, "permission changed", c)
}

// launchPermissions makes one ModifyImageAttribute call for either
// additions or removals, accounts, organizations and OUs together.
func (w writer) launchPermissions(ctx context.Context, imageID string, add, remove []string, makePrivate bool) error {
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
	if _, err := w.ec2.ModifyImageAttribute(ctx, &ec2.ModifyImageAttributeInput{ImageId: aws.String(imageID), LaunchPermission: &mods}); err != nil {
		return fmt.Errorf("changing launch permissions of %s: %w", imageID, err)
	}
	for _, a := range add {
		w.changed(ctx, rules.Change{ImageID: imageID, Action: rules.ActionAdd}.For(a))
	}
	for _, a := range remove {
		w.changed(ctx, rules.Change{ImageID: imageID, Action: rules.ActionRemove}.For(a))
	}
	if makePrivate {
		w.changed(ctx, rules.Change{ImageID: imageID, Account: rules.PublicGroup, Action: rules.ActionRemove})
	}
	return nil
}

// resetLaunchPermissions removes every launch permission of an image that
// carries no amishare tag any more (the role may not modify it, only reset
// it, which can never share anything) and reads them back: AWS does not
// document that a reset removes organization and OU permissions, so what
// is left is reported as an error. The rules reset only an image whose
// every permission is one amishare could have granted.
func (w writer) resetLaunchPermissions(ctx context.Context, imageID string, removed rules.Diff) error {
	if _, err := w.ec2.ResetImageAttribute(ctx, &ec2.ResetImageAttributeInput{
		ImageId: aws.String(imageID), Attribute: ec2types.ResetImageAttributeNameLaunchPermission,
	}); err != nil {
		return fmt.Errorf("resetting launch permissions of %s: %w", imageID, err)
	}
	for _, a := range removed.Remove {
		w.changed(ctx, rules.Change{ImageID: imageID, Action: rules.ActionRemove}.For(a))
	}
	left, err := reader{ec2: w.ec2}.launchPermissions(ctx, imageID)
	if err != nil {
		return err
	}
	if t := left.Targets(); len(t) > 0 || left.Public {
		w.log.ErrorContext(ctx, "launch permissions left after a reset", "imageId", imageID, "left", t, "public", left.Public)
		w.res.Unrevoked = append(w.res.Unrevoked, t...)
		return fmt.Errorf("resetting launch permissions of %s left %v", imageID, t)
	}
	return nil
}

// launchPermission is the EC2 launch permission for a target.
func launchPermission(target string) ec2types.LaunchPermission {
	switch rules.KindOf(target) {
	case rules.KindOrganization:
		return ec2types.LaunchPermission{OrganizationArn: aws.String(target)}
	case rules.KindOrganizationalUnit:
		return ec2types.LaunchPermission{OrganizationalUnitArn: aws.String(target)}
	}
	return ec2types.LaunchPermission{UserId: aws.String(target)}
}

// volumePermissions makes one ModifySnapshotAttribute call in the
// OperationType + UserIds form (valid on AWS, and the only form the local
// emulator applies).
func (w writer) volumePermissions(ctx context.Context, imageID, snapshotID string, op ec2types.OperationType, accounts []string, makePrivate bool) error {
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
		in.GroupNames = []string{rules.PublicGroup}
	}
	if _, err := w.ec2.ModifySnapshotAttribute(ctx, in); err != nil {
		if op == ec2types.OperationTypeAdd && awserr.IsAccessDenied(err) {
			return &SnapshotShareRefusedError{SnapshotID: snapshotID, Accounts: accounts, Err: err}
		}
		return fmt.Errorf("changing create-volume permissions of %s: %w", snapshotID, err)
	}
	for _, a := range accounts {
		w.changed(ctx, rules.Change{ImageID: imageID, SnapshotID: snapshotID, Account: a, Action: rules.Action(op)})
	}
	if makePrivate {
		w.changed(ctx, rules.Change{ImageID: imageID, SnapshotID: snapshotID, Account: rules.PublicGroup, Action: rules.ActionRemove})
	}
	return nil
}

// key changes who may use one key: its policy statements or its grants,
// per the mode; and in any mode, the grants grant mode left for accounts
// that no longer need the key.
func (w writer) key(ctx context.Context, imageID string, k rules.KeyDiff, mode config.KMSMode) error {
	if mode != config.ModeOff || len(k.RevokeGrants) > 0 {
		if err := w.checkDelegated(ctx, k.KeyARN); err != nil {
			return err
		}
	}
	added, removed := k.Add, k.Remove
	var err error
	switch mode {
	case config.ModePolicy:
		if len(k.Add)+len(k.Remove) > 0 || k.Restore {
			var wrote bool
			wrote, err = kmspolicy.EnsurePolicy(ctx, w.kms, k.KeyARN, k.Add, k.Remove)
			if wrote && k.Restore {
				w.log.InfoContext(ctx, "key statements restored", "imageId", imageID, "keyArn", k.KeyARN)
			}
			if err != nil {
				added, removed = nil, nil
			}
		}
	case config.ModeGrant:
		added, removed, err = kmsgrant.Ensure(ctx, w.kms, k.KeyARN, k.Add, k.Remove)
	default:
		added, removed = nil, nil
	}
	// Grants made or revoked before a refusal are logged all the same.
	w.keyChanged(ctx, imageID, k.KeyARN, added, removed)
	if err == nil && len(k.RevokeGrants) > 0 {
		var revoked []string
		_, revoked, err = kmsgrant.Ensure(ctx, w.kms, k.KeyARN, nil, k.RevokeGrants)
		w.keyChanged(ctx, imageID, k.KeyARN, nil, revoked)
	}
	if awserr.IsAccessDenied(err) {
		return &KeyNotDelegatedError{KeyARN: k.KeyARN, Err: err}
	}
	return err
}

func (w writer) keyChanged(ctx context.Context, imageID, keyARN string, added, removed []string) {
	for _, a := range added {
		w.changed(ctx, rules.Change{ImageID: imageID, KeyARN: keyARN, Action: rules.ActionAdd}.For(a))
	}
	for _, a := range removed {
		w.changed(ctx, rules.Change{ImageID: imageID, KeyARN: keyARN, Action: rules.ActionRemove}.For(a))
	}
}

// KeyNotDelegatedError means amishare may not write a key of this account:
// the configuration says delegatedKeysOnly and the key is not tagged
// amishare:managed = true, or IAM (or the key policy) refused the write
// (with the stack parameter DelegatedKeysOnly the role may change only keys
// so tagged). No retry can fix that, so the image is blocked with a message
// saying which tag to put on which key, and the event succeeds.
type KeyNotDelegatedError struct {
	KeyARN string
	Err    error
}

func (e *KeyNotDelegatedError) Error() string {
	return fmt.Sprintf("key %s is not delegated to amishare: tag the key %s = %s, or allow this function in its key policy: %v",
		e.KeyARN, amitag.KeyManaged, amitag.KeyManagedValue, e.Err)
}

func (e *KeyNotDelegatedError) Unwrap() error { return e.Err }

// Reason is the short text for the image's amishare:message.
func (e *KeyNotDelegatedError) Reason() string {
	return fmt.Sprintf("key %s is not delegated to amishare: tag the key %s = %s", e.KeyARN, amitag.KeyManaged, amitag.KeyManagedValue)
}

// SnapshotShareRefusedError means IAM refused to share a snapshot with
// accounts the configuration allows: the function's role lets snapshots be
// shared only with the stack's AllowedAccounts, and an account named only
// in a group (or a configuration written by hand) is not among them. No
// retry can fix that, so the image is blocked with a message saying what to
// add, and the event succeeds.
type SnapshotShareRefusedError struct {
	SnapshotID string
	Accounts   []string
	Err        error
}

func (e *SnapshotShareRefusedError) Error() string {
	return fmt.Sprintf("sharing snapshot %s with %s: %v", e.SnapshotID, strings.Join(e.Accounts, " "), e.Err)
}

func (e *SnapshotShareRefusedError) Unwrap() error { return e.Err }

// Reason is the short text for the image's amishare:message.
func (e *SnapshotShareRefusedError) Reason() string {
	return fmt.Sprintf("the role refused to share snapshots with %s: every account amishare shares with, group members included, must be in the stack's AllowedAccounts", strings.Join(e.Accounts, " "))
}

// errNotTagged is why a key is not delegated when its tags say so.
var errNotTagged = fmt.Errorf("the configuration says delegatedKeysOnly and the key is not tagged %s = %s", amitag.KeyManaged, amitag.KeyManagedValue)

// checkDelegated refuses, when the configuration says delegatedKeysOnly, a
// write to a key not tagged amishare:managed = true. The role refuses the
// function such a write; this refuses it to whoever runs the engine (an
// operator's CLI with wider credentials). A key whose tags cannot be read
// is not known to be delegated.
func (w writer) checkDelegated(ctx context.Context, keyARN string) error {
	if !w.delegatedOnly {
		return nil
	}
	pages := kms.NewListResourceTagsPaginator(w.kms, &kms.ListResourceTagsInput{KeyId: aws.String(keyARN)})
	for pages.HasMorePages() {
		out, err := pages.NextPage(ctx)
		if awserr.IsAccessDenied(err) {
			return &KeyNotDelegatedError{KeyARN: keyARN, Err: err}
		}
		if err != nil {
			return fmt.Errorf("reading the tags of key %s: %w", keyARN, err)
		}
		for _, t := range out.Tags {
			if aws.ToString(t.TagKey) == amitag.KeyManaged && aws.ToString(t.TagValue) == amitag.KeyManagedValue {
				return nil
			}
		}
	}
	return &KeyNotDelegatedError{KeyARN: keyARN, Err: errNotTagged}
}

// recordSnapshots sets the snapshots' record (amishare:image) to the
// set's value, which names imageID among the images amishare shared them
// for, in one call.
func (w writer) recordSnapshots(ctx context.Context, imageID string, r rules.RecordSet) error {
	_, err := w.ec2.CreateTags(ctx, &ec2.CreateTagsInput{
		Resources: r.SnapshotIDs,
		Tags:      []ec2types.Tag{{Key: aws.String(amitag.Image), Value: aws.String(r.Value)}},
	})
	if err != nil {
		return fmt.Errorf("recording %s on its snapshots: %w", amitag.Image, err)
	}
	w.cache.forgetSnapshots(r.SnapshotIDs)
	w.log.InfoContext(ctx, "snapshots recorded", "imageId", imageID, "snapshotIds", r.SnapshotIDs, "tag", amitag.Image, "value", r.Value)
	return nil
}

// releaseSnapshots takes imageID out of the snapshots' record once what
// amishare shared for it is revoked: the record then names the other
// managed images behind each snapshot, or is removed (one call per value).
func (w writer) releaseSnapshots(ctx context.Context, imageID string, sets []rules.RecordSet) error {
	for _, r := range sets {
		var err error
		if r.Value == "" {
			_, err = w.ec2.DeleteTags(ctx, &ec2.DeleteTagsInput{
				Resources: r.SnapshotIDs,
				Tags:      []ec2types.Tag{{Key: aws.String(amitag.Image)}},
			})
		} else {
			_, err = w.ec2.CreateTags(ctx, &ec2.CreateTagsInput{
				Resources: r.SnapshotIDs,
				Tags:      []ec2types.Tag{{Key: aws.String(amitag.Image), Value: aws.String(r.Value)}},
			})
		}
		if err != nil {
			return fmt.Errorf("taking %s out of the record %s on its snapshots: %w", imageID, amitag.Image, err)
		}
		w.cache.forgetSnapshots(r.SnapshotIDs)
		w.log.InfoContext(ctx, "snapshots released", "imageId", imageID, "snapshotIds", r.SnapshotIDs, "tag", amitag.Image, "value", r.Value)
	}
	return nil
}

// status writes the status and message tags (and any extra tag) on the image
// of region ("" is the engine's), when they differ from tags, in one
// CreateTags call, and updates tags. It reports whether it wrote.
func (w writer) status(ctx context.Context, region, imageID string, tags map[string]string, status rules.Status, msg string, extra ...ec2types.Tag) (bool, error) {
	if tags[amitag.Status] == string(status) && tags[amitag.Message] == msg && len(extra) == 0 {
		return false, nil
	}
	_, err := ec2In(w.ec2, w.region, w.regions, region).CreateTags(ctx, &ec2.CreateTagsInput{
		Resources: []string{imageID},
		Tags: append([]ec2types.Tag{
			{Key: aws.String(amitag.Status), Value: aws.String(string(status))},
			{Key: aws.String(amitag.Message), Value: aws.String(msg)},
		}, extra...),
	})
	if err != nil {
		return false, fmt.Errorf("writing status tags on %s: %w", imageID, err)
	}
	tags[amitag.Status], tags[amitag.Message] = string(status), msg
	return true, nil
}

// copySteps makes the planned copies and sets the copies' accounts tags,
// logging each as it is done.
func (w writer) copySteps(ctx context.Context, cw *copyWork) error {
	for i := range cw.Steps {
		s := &cw.Steps[i]
		client := ec2In(w.ec2, w.region, w.regions, s.Region)
		switch s.Action {
		case rules.CopyActionCopy:
			in := &ec2.CopyImageInput{
				SourceImageId: aws.String(cw.sourceID),
				SourceRegion:  aws.String(w.region),
				Name:          aws.String(s.Name),
				Description:   aws.String(cw.desc),
				ClientToken:   aws.String(s.Token),
				// The source's own tags (amishare:regions among them) are never
				// copied: a copy is never copied again.
				CopyImageTags: aws.Bool(false),
				TagSpecifications: []ec2types.TagSpecification{{
					ResourceType: ec2types.ResourceTypeImage,
					Tags: []ec2types.Tag{
						{Key: aws.String(amitag.Accounts), Value: aws.String(s.Accounts)},
						{Key: aws.String(amitag.Source), Value: aws.String(cw.source)},
					},
				}},
			}
			if s.KMSKeyID != "" {
				in.Encrypted, in.KmsKeyId = aws.Bool(true), aws.String(s.KMSKeyID)
			}
			out, err := client.CopyImage(ctx, in)
			if err != nil {
				return fmt.Errorf("copying %s to %s: %w", cw.source, s.Region, err)
			}
			s.ImageID = aws.ToString(out.ImageId)
			cw.Copies[s.Region] = s.ImageID
			attrs := []any{"imageId", cw.sourceID, "copyImageId", s.ImageID, "region", s.Region, "clientToken", s.Token}
			if s.KMSKeyID != "" {
				attrs = append(attrs, "kmsKeyId", s.KMSKeyID)
			}
			if s.RetryOf != "" {
				attrs = append(attrs, "retryOf", s.RetryOf)
			}
			w.log.InfoContext(ctx, "image copied", attrs...)
		case rules.CopyActionSetAccounts:
			_, err := client.CreateTags(ctx, &ec2.CreateTagsInput{
				Resources: []string{s.ImageID},
				Tags:      []ec2types.Tag{{Key: aws.String(amitag.Accounts), Value: aws.String(s.Accounts)}},
			})
			if err != nil {
				return fmt.Errorf("setting the accounts tag of copy %s in %s: %w", s.ImageID, s.Region, err)
			}
			w.log.InfoContext(ctx, "copy accounts tag set", "imageId", cw.sourceID,
				"copyImageId", s.ImageID, "region", s.Region, "accounts", s.Accounts)
		}
	}
	return nil
}

// audit logs one permission change, applied or planned: the audit trail.
func audit(ctx context.Context, log *slog.Logger, msg string, c rules.Change) {
	attrs := []any{"imageId", c.ImageID}
	if c.SnapshotID != "" {
		attrs = append(attrs, "snapshotId", c.SnapshotID)
	}
	if c.KeyARN != "" {
		attrs = append(attrs, "keyArn", c.KeyARN)
	}
	switch {
	case c.OrganizationARN != "":
		attrs = append(attrs, "organizationArn", c.OrganizationARN)
	case c.OrganizationalUnitARN != "":
		attrs = append(attrs, "organizationalUnitArn", c.OrganizationalUnitARN)
	default:
		attrs = append(attrs, "account", c.Account)
	}
	attrs = append(attrs, "action", string(c.Action))
	log.InfoContext(ctx, msg, attrs...)
}
