package share

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/amishare/amishare/pkg/amitag"
	"github.com/amishare/amishare/pkg/awsid"
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
		return Result{ImageID: imageID, Outcome: OutcomeGone, Reason: "no such image owned by this account"}, nil
	}
	return e.ReconcileImage(ctx, img, opts)
}

// ReconcileImage is Reconcile for an image already described by
// DescribeImages (owned by this account): a sweep lists images a page at a
// time and reconciles each with exactly the rules of a single reconcile.
func (e *Engine) ReconcileImage(ctx context.Context, img *ec2types.Image, opts Options) (Result, error) {
	imageID := aws.ToString(img.ImageId)
	res := Result{ImageID: imageID}
	switch {
	case !isManaged(img):
		res.Outcome, res.Reason = OutcomeUnmanaged, "no "+amitag.Accounts+" or "+amitag.Status+" tag"
		return res, nil
	case img.State == ec2types.ImageStatePending:
		res.Outcome, res.Reason = OutcomeDeferred, "image is pending; its available event completes the share"
		return res, nil
	case img.State != ec2types.ImageStateAvailable:
		res.Outcome, res.Reason = OutcomeSkipped, fmt.Sprintf("image is %s", img.State)
		return res, nil
	}
	tags := tagMap(img.Tags)

	cfg, invalid, err := e.begin(ctx, &res, opts)
	switch {
	case err != nil:
		return res, err
	case invalid != nil:
		return e.block(ctx, res, tags, []string{invalid.Error()})
	}
	targets := amitag.ResolveAccounts(tags[amitag.Accounts], cfg)
	res.Targets, res.Refused = targets.All(), targets.Refused

	st, err := e.read().state(ctx, img, cfg.KMS)
	if err != nil {
		return e.fail(ctx, res, tags, err)
	}
	cw, err := e.planCopies(ctx, img, tags, st, cfg)
	if err != nil {
		return e.fail(ctx, res, tags, err)
	}
	if cw.Reencrypt {
		// Shared only through its re-encrypted copy, which carries the tag
		// (and reports its refused tokens); the source itself is unshared.
		targets = amitag.Targets{}
	}
	d, unlock, err := e.decide(ctx, cfg, rules.Input{Targets: targets, State: st, KMS: cfg.KMS, AllowPublic: cfg.AllowPublic, Known: cfg.OrganizationTargets()})
	defer unlock()
	if err != nil {
		return e.fail(ctx, res, tags, err)
	}
	res.Targets, res.Refused = d.Targets.All(), d.Targets.Refused
	if len(d.Blocked) > 0 {
		e.logForeignKeyStatements(ctx, st, d.Targets.All())
		return e.block(ctx, res, tags, d.Blocked)
	}
	res.Plan, res.Status, res.Message = &d.Plan, d.Status, d.Message
	res.Plan.Copies = cw.Steps
	if res.DryRun {
		e.planOnly(ctx, &res, d.Plan)
		e.logPlannedCopies(ctx, cw)
		res.Status, res.Message = cw.Summarize(res.Status, res.Message, true)
		return res, nil
	}
	w := e.write(&res)
	if err := w.apply(ctx, d.Plan, cfg.KMS); err != nil {
		if nd, ok := e.notDelegated(ctx, imageID, err); ok {
			// What was applied before the refusal (removals only: keys come
			// before any addition) stays, and is in res.Changes.
			return e.block(ctx, res, tags, []string{nd.Reason()})
		}
		return e.fail(ctx, res, tags, err)
	}
	if err := w.copySteps(ctx, cw); err != nil {
		return e.fail(ctx, res, tags, err)
	}
	res.Status, res.Message = cw.Summarize(d.Status, d.Message, false)
	res.Outcome = OutcomeApplied
	if res.TagsWritten, err = w.status(ctx, "", imageID, tags, res.Status, res.Message, e.copiesTag(ctx, cw)...); err != nil {
		res.Outcome = OutcomeFailed
		return res, err
	}
	return res, nil
}

// decide fills in what other managed images still need (see needs.go) and
// decides. In a sweep, when the plan writes a key, the image's keys are
// locked against the sweep's other workers and read afresh, not from the
// sweep's cache, and the decision is made again from them: the caller
// applies it, then calls unlock. KMS has no conditional write, so two
// workers editing one key policy from the same read would lose one edit.
func (e *Engine) decide(ctx context.Context, cfg *config.Config, in rules.Input) (d rules.Decision, unlock func(), err error) {
	unlock = func() {}
	if err := e.addNeeds(ctx, cfg, &in); err != nil {
		return rules.Decision{}, unlock, err
	}
	d = rules.Decide(in)
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
			"imageId", st.ImageID, "keyArn", k.ARN, "keyOwner", k.Owner, "statement", kmspolicy.Statement(desired, awsid.PartitionOf(k.ARN)))
	}
}
