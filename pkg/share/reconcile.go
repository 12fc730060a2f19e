package share

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/amishare/amishare/pkg/amitag"
	"github.com/amishare/amishare/pkg/config"
	"github.com/amishare/amishare/pkg/kmspolicy"
	"github.com/amishare/amishare/pkg/share/rules"
)

// Reconcile makes the image's sharing match its accounts tag. It returns an
// error only when an AWS call failed in a way a retry may fix; everything
// else (unmanaged, refused targets, a blocked image) is a Result.
func (e *Engine) Reconcile(ctx context.Context, imageID string, opts Options) (Result, error) {
	img, err := e.read().image(ctx, "", imageID)
	if err != nil {
		return Result{ImageID: imageID, Outcome: OutcomeFailed}, err
	}
	if img == nil {
		return Result{ImageID: imageID, Outcome: OutcomeGone, Reason: "no such image owned by this account in " + e.Region}, nil
	}
	return e.fresh().ReconcileImage(ctx, img, opts)
}

// fresh returns an engine like e that knows img was just read: in a sweep,
// what other images need is then read afresh too (see ReconcileImage).
func (e *Engine) fresh() *Engine {
	if e.freshReads {
		return e
	}
	c := *e
	c.freshReads = true
	return &c
}

// ReconcileImage is Reconcile for an image already described by
// DescribeImages (owned by this account): a sweep lists images a page at a
// time and reconciles each with exactly the rules of a single reconcile.
//
// In a sweep the image and its tags come from a listing made minutes
// earlier: before anything is written, the image is read again and decided
// afresh (an image in sync costs nothing more), so that an account an event
// revoked meanwhile is never shared again from the stale listing.
func (e *Engine) ReconcileImage(ctx context.Context, img *ec2types.Image, opts Options) (Result, error) {
	imageID := aws.ToString(img.ImageId)
	res := Result{ImageID: imageID}
	switch img.State {
	case ec2types.ImageStateAvailable, ec2types.ImageStateDisabled:
	case ec2types.ImageStatePending:
		res.Outcome, res.Reason = OutcomeDeferred, "image is pending; its available event completes the share"
		return res, nil
	default:
		res.Outcome, res.Reason = OutcomeSkipped, fmt.Sprintf("image is %s", img.State)
		return res, nil
	}
	if !isManaged(img) {
		return e.release(ctx, img, opts)
	}
	tags := tagMap(img.Tags)
	cfg, invalid, err := e.begin(ctx, &res, opts)
	switch {
	case err != nil:
		return res, err
	case invalid != nil:
		return e.block(ctx, res, tags, []string{invalid.Error()})
	}
	res.ConfigVersion = cfg.Version
	targets := amitag.ResolveAccounts(tags[amitag.Accounts], cfg)
	res.Targets, res.Refused = targets.All(), targets.Refused

	st, err := e.read().state(ctx, img, cfg.KMS)
	if err != nil {
		return e.fail(ctx, res, tags, err)
	}
	var cw *copyWork
	if !st.Disabled {
		if cw, err = e.planCopies(ctx, img, tags, st, cfg, opts); err != nil {
			return e.fail(ctx, res, tags, err)
		}
	} else {
		cw = &copyWork{}
	}
	if cw.Reencrypt {
		// Shared only through its re-encrypted copy, which carries the tag
		// (and reports its refused tokens); the source itself is unshared.
		targets = amitag.Targets{}
	}
	in := rules.Input{Targets: targets, State: st, KMS: cfg.KMS, AllowPublic: cfg.AllowPublic, Known: cfg.OrganizationTargets()}
	if refusal := rules.ParameterRefusal(cfg, tags[amitag.Parameter], aws.ToString(img.Name)); refusal != "" {
		in.Refusals = []string{refusal}
	}
	d, unlock, err := e.decide(ctx, cfg, in)
	defer unlock()
	if err != nil {
		return e.fail(ctx, res, tags, err)
	}
	if e.cache != nil && !e.freshReads && e.changes(ctx, d, cw, tags) {
		unlock()
		again, err := e.read().image(ctx, "", imageID)
		switch {
		case err != nil:
			return e.fail(ctx, res, tags, err)
		case again == nil:
			res.Outcome, res.Reason = OutcomeGone, "the image went away during the sweep"
			return res, nil
		}
		return e.fresh().ReconcileImage(ctx, again, opts)
	}
	res.Targets, res.Refused = d.Targets.All(), d.Targets.Refused
	res.Plan, res.Status, res.Message = &d.Plan, d.Status, d.Message
	res.Warnings, res.NearLimit, res.Leftovers = d.Warnings, d.NearLimit, d.Leftovers
	res.Plan.Copies = cw.Steps
	if len(d.Blocked) > 0 {
		e.logForeignKeyStatements(ctx, st, d.Targets.All())
		e.logger().WarnContext(ctx, "image not shared", "imageId", imageID, "reason", d.Message)
	}
	for _, l := range d.Leftovers {
		e.logger().WarnContext(ctx, "key holds statements policy mode left", "imageId", imageID, "keyArn", l.KeyARN,
			"grantees", l.Grantees, "statement", kmspolicy.Statement(l.Grantees, kmspolicy.KeyOf(l.KeyARN)), "remedy", "amishare keys prune "+l.KeyARN)
	}
	if len(d.Blocked) == 0 {
		res.Status, res.Message = cw.Summarize(d.Status, d.Message, res.DryRun)
	}
	if res.DryRun {
		e.planOnly(ctx, &res, d.Plan)
		e.logPlannedCopies(ctx, cw)
		if err := e.consumersOf(ctx, cfg, img, tags, st, d.Plan, &res); err != nil {
			return e.fail(ctx, res, tags, err)
		}
		if len(d.Blocked) > 0 {
			res.Outcome = OutcomeBlocked
		}
		return res, nil
	}
	w := e.write(&res)
	if err := w.apply(ctx, d.Plan, cfg); err != nil {
		if nd, ok := e.notDelegated(ctx, imageID, err); ok {
			// What was applied before the refusal (removals only: keys come
			// before any addition) stays, and is in res.Changes.
			return e.block(ctx, res, tags, []string{nd.Reason()})
		}
		if rf := (*SnapshotShareRefusedError)(nil); errors.As(err, &rf) {
			// Removals are made; the image itself was not shared (it comes last).
			e.logger().WarnContext(ctx, "snapshot share refused by IAM", "imageId", imageID, "snapshotId", rf.SnapshotID,
				"accounts", rf.Accounts, "error", rf.Err.Error())
			return e.block(ctx, res, tags, []string{rf.Reason()})
		}
		return e.fail(ctx, res, tags, err)
	}
	if len(st.Unread) > 0 {
		// Decided only from what was read; the rest waits for the retry.
		return e.fail(ctx, res, tags, errors.New(fmt.Sprint(st.Unread)))
	}
	if len(d.Blocked) > 0 {
		// The removals are made; nothing was added. The parameters naming
		// the image, and the receivers that lost it, follow.
		if err := e.consumersOf(ctx, cfg, img, tags, st, d.Plan, &res); err != nil {
			return e.fail(ctx, res, tags, err)
		}
		return e.block(ctx, res, tags, slices.Concat(d.Blocked, d.Warnings, res.Consumers.notes()))
	}
	if err := w.copySteps(ctx, cw); err != nil {
		return e.fail(ctx, res, tags, err)
	}
	res.Status, res.Message = cw.Summarize(d.Status, d.Message, false)
	if err := e.consumersOf(ctx, cfg, img, tags, st, d.Plan, &res); err != nil {
		return e.fail(ctx, res, tags, err)
	}
	res.Message = withNotes(res.Message, res.Consumers)
	res.Outcome = OutcomeApplied
	if res.TagsWritten, err = w.status(ctx, "", imageID, tags, res.Status, res.Message, e.copiesTag(ctx, cw)...); err != nil {
		res.Outcome = OutcomeFailed
		return res, err
	}
	return res, nil
}

// changes reports whether the decision changes anything: a permission, a
// copy, a record or a tag.
func (e *Engine) changes(ctx context.Context, d rules.Decision, cw *copyWork, tags map[string]string) bool {
	if !d.Plan.Empty() || len(cw.Steps) > 0 || e.copiesTag(ctx, cw) != nil {
		return true
	}
	status, msg := d.Status, d.Message
	if len(d.Blocked) == 0 {
		status, msg = cw.Summarize(d.Status, d.Message, false)
	}
	return tags[amitag.Status] != string(status) || tags[amitag.Message] != msg
}

// decide fills in what other managed images still need (see needs.go) and
// decides. When an account leaves the image while the mode is not grant,
// amishare's grants on the keys are read as well (grants left by grant
// mode go with the account), and the decision is made again.
//
// In a sweep, when the plan writes a key, the image's keys are locked
// against the sweep's other workers and read afresh, not from the sweep's
// cache, and the decision is made again from them: the caller applies it,
// then calls unlock. KMS has no conditional write, so two workers editing
// one key policy from the same read would lose one edit.
func (e *Engine) decide(ctx context.Context, cfg *config.Config, in rules.Input) (d rules.Decision, unlock func(), err error) {
	unlock = func() {}
	if err := e.addNeeds(ctx, cfg, &in); err != nil {
		return rules.Decision{}, unlock, err
	}
	d = rules.Decide(in)
	if cfg.KMS != config.ModeGrant && removesAccounts(d.Plan) && slices.ContainsFunc(in.State.Keys, func(k rules.KeyState) bool {
		return k.Writable(in.State.Owner) && !k.Unread && !k.GrantsRead
	}) {
		e.read().grants(ctx, &in.State)
		if err := e.addNeeds(ctx, cfg, &in); err != nil {
			return rules.Decision{}, unlock, err
		}
		d = rules.Decide(in)
	}
	if e.cache == nil || len(d.Plan.Keys) == 0 {
		return d, unlock, nil
	}
	var arns []string
	for _, k := range in.State.Keys {
		if k.Writable(in.State.Owner) {
			arns = append(arns, k.ARN)
		}
	}
	unlock = e.cache.lockKeys(arns)
	if err := e.read().freshKeys(ctx, &in.State, cfg.KMS); err != nil {
		unlock()
		return rules.Decision{}, func() {}, err
	}
	in.Keep, in.KeepSnapshots = nil, nil
	if err := e.addNeeds(ctx, cfg, &in); err != nil {
		unlock()
		return rules.Decision{}, func() {}, err
	}
	return rules.Decide(in), unlock, nil
}

// removesAccounts reports whether the plan takes an account away from the
// image, a snapshot or a key: the moment its grants must go too.
func removesAccounts(p rules.Plan) bool {
	if slices.ContainsFunc(p.Image.Remove, func(t string) bool { return rules.KindOf(t) == rules.KindAccount }) {
		return true
	}
	for _, s := range p.Snapshots {
		if len(s.Remove) > 0 {
			return true
		}
	}
	for _, k := range p.Keys {
		if len(k.Remove) > 0 {
			return true
		}
	}
	return false
}

// logForeignKeyStatements logs, for each key of another account (or one
// that refuses this account's IAM), the statement its owner must add.
func (e *Engine) logForeignKeyStatements(ctx context.Context, st rules.State, desired []string) {
	if len(desired) == 0 {
		return
	}
	for _, k := range st.Keys {
		// A key DescribeKey is denied on is as good as foreign: amishare
		// cannot change it, its owner must.
		msg := "key belongs to another account: its owner must add this statement to the key policy"
		switch {
		case k.Manager == rules.ManagerAWS:
			continue
		case k.Foreign(st.Owner):
		case k.Denied:
			msg = "key refuses this account's IAM: its owner must add this statement to the key policy"
		default:
			continue
		}
		e.logger().WarnContext(ctx, msg,
			"imageId", st.ImageID, "keyArn", k.ARN, "keyOwner", k.Owner, "statement", kmspolicy.Statement(desired, kmspolicy.KeyOf(k.ARN)))
	}
}
