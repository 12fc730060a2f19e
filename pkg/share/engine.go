package share

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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

// Engine reconciles images. Build one per process (clients are reused
// across Lambda invocations); it is safe for concurrent use.
type Engine struct {
	EC2    EC2API
	KMS    kmspolicy.KMSAPI
	Config ConfigSource
	// Log receives the audit trail: one line per permission change, and the
	// statements a foreign key's owner must add. Defaults to slog.Default().
	Log *slog.Logger
	// Region is where the engine acts (its EC2 and KMS clients' region);
	// Regions gives other regions' EC2 clients, for copies (see Pool).
	Region  string
	Regions RegionalEC2
}

// Options adjust one reconcile.
type Options struct {
	// DryRun computes and logs the plan but makes no modifying call and writes no tag.
	// The configuration's dryRun has the same effect.
	DryRun bool
	// Cache, when set, shares reads between the reconciles of one sweep
	// (configuration, snapshots, keys, the list of managed images). Nil
	// means every reconcile reads for itself, as an event's does.
	Cache *Cache
}

// Outcome says what a reconcile did with an image.
type Outcome string

// Outcomes. Only OutcomeFailed comes with an error (the event should be retried).
const (
	OutcomeApplied   Outcome = "applied"   // the plan (possibly empty) was carried out
	OutcomePlanned   Outcome = "planned"   // dry run: the plan was computed, nothing changed
	OutcomeBlocked   Outcome = "blocked"   // nothing may change; status error says why
	OutcomeUnmanaged Outcome = "unmanaged" // no amishare tag: never touched
	OutcomeDeferred  Outcome = "deferred"  // still pending; the available event completes it
	OutcomeSkipped   Outcome = "skipped"   // failed, deregistered or disabled: nothing to share
	OutcomeGone      Outcome = "gone"      // no such image of this account
	OutcomeFailed    Outcome = "failed"    // an AWS call failed; retrying may complete it
	OutcomeCleaned   Outcome = "cleaned"   // the image is gone; what amishare shared for it was revoked
)

// Change is one permission change, as applied (or planned in a dry run). It
// names exactly one of Account, OrganizationArn and OrganizationalUnitArn.
type Change struct {
	ImageID    string `json:"imageId"`
	SnapshotID string `json:"snapshotId,omitempty"`
	KeyARN     string `json:"keyArn,omitempty"`
	Account    string `json:"account,omitempty"` // a 12-digit id, or "all" for public access
	// OrganizationArn and OrganizationalUnitArn name an organization or OU
	// (on a key whose statement amishare cannot map back to an ARN: the id
	// the statement holds).
	OrganizationArn       string `json:"organizationArn,omitempty"`
	OrganizationalUnitArn string `json:"organizationalUnitArn,omitempty"`
	Action                string `json:"action"` // add or remove
}

// Result reports one reconcile.
type Result struct {
	ImageID     string           `json:"imageId"`
	Outcome     Outcome          `json:"outcome"`
	Reason      string           `json:"reason,omitempty"`
	Status      Status           `json:"status,omitempty"`
	Message     string           `json:"message,omitempty"`
	Targets     []string         `json:"targets,omitempty"` // accounts, then organization and OU ARNs
	Refused     []amitag.Refusal `json:"refused,omitempty"`
	Plan        *Plan            `json:"plan,omitempty"`
	Changes     []Change         `json:"changes,omitempty"`
	TagsWritten bool             `json:"tagsWritten"`
	DryRun      bool             `json:"dryRun,omitempty"`
}

const publicGroup = "all"

// SnapshotsChanged counts the distinct snapshots whose permissions the
// result changed (or, in a dry run, planned to change).
func (r Result) SnapshotsChanged() int {
	var seen []string
	for _, c := range r.Changes {
		if c.SnapshotID != "" && !slices.Contains(seen, c.SnapshotID) {
			seen = append(seen, c.SnapshotID)
		}
	}
	return len(seen)
}

// Reconcile makes the image's sharing match its accounts tag. It returns an
// error only when an AWS call failed in a way a retry may fix; everything
// else (unmanaged, refused targets, a blocked image) is a Result.
func (e *Engine) Reconcile(ctx context.Context, imageID string, opts Options) (Result, error) {
	img, err := e.describeImage(ctx, imageID)
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

	cfg, err := e.loadConfig(ctx, opts.Cache)
	if err != nil {
		if awserr.IsTransient(err) {
			res.Outcome = OutcomeFailed
			return res, err
		}
		// Missing or invalid configuration: share nothing, revoke nothing.
		res.DryRun = opts.DryRun
		return e.block(ctx, res, tags, []string{err.Error()})
	}
	res.DryRun = opts.DryRun || cfg.DryRun
	targets := amitag.ResolveAccounts(tags[amitag.Accounts], cfg)
	res.Targets, res.Refused = targets.All(), targets.Refused

	st, err := e.readState(ctx, img, cfg.KMS, opts.Cache)
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
	d, unlock, err := e.decide(ctx, cfg, Input{Targets: targets, State: st, KMS: cfg.KMS, AllowPublic: cfg.AllowPublic, Known: cfg.OrganizationTargets()}, opts.Cache)
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
		res.Status, res.Message = cw.summarize(res.Status, res.Message, true)
		return res, nil
	}
	if err := e.apply(ctx, d.Plan, cfg.KMS, opts.Cache, &res); err != nil {
		var notDelegated *KeyNotDelegatedError
		if errors.As(err, &notDelegated) {
			// What was applied before the refusal (removals only: keys come
			// before any addition) stays, and is in res.Changes.
			e.logger().WarnContext(ctx, "key not delegated to amishare", "imageId", imageID,
				"keyArn", notDelegated.KeyARN, "tag", amitag.KeyManaged+"="+amitag.KeyManagedValue, "error", notDelegated.Err.Error())
			return e.block(ctx, res, tags, []string{notDelegated.Reason()})
		}
		return e.fail(ctx, res, tags, err)
	}
	if err := e.applyCopies(ctx, cw); err != nil {
		return e.fail(ctx, res, tags, err)
	}
	res.Status, res.Message = cw.summarize(d.Status, d.Message, false)
	res.Outcome = OutcomeApplied
	if res.TagsWritten, err = e.writeStatus(ctx, imageID, tags, res.Status, res.Message, e.copiesTag(ctx, cw)...); err != nil {
		res.Outcome = OutcomeFailed
		return res, err
	}
	return res, nil
}

// decide fills in what other managed images still need (see addNeeds) and
// decides. In a sweep, when the plan writes a key, the image's keys are
// locked against the sweep's other workers and read afresh, not from the
// sweep's cache, and the decision is made again from them: the caller
// applies it, then calls unlock. KMS has no conditional write, so two
// workers editing one key policy from the same read would lose one edit.
func (e *Engine) decide(ctx context.Context, cfg *config.Config, in Input, cache *Cache) (d Decision, unlock func(), err error) {
	unlock = func() {}
	if err := e.addNeeds(ctx, cfg, &in, cache); err != nil {
		return Decision{}, unlock, err
	}
	d = Decide(in)
	if cache == nil || len(d.Plan.Keys) == 0 {
		return d, unlock, nil
	}
	var arns []string
	for _, k := range in.State.Keys {
		if writable(k, in.State.Owner) {
			arns = append(arns, k.ARN)
		}
	}
	unlock = cache.lockKeys(arns)
	if err := e.refreshKeys(ctx, &in, cfg, cache); err != nil {
		unlock()
		return Decision{}, func() {}, err
	}
	return Decide(in), unlock, nil
}

// planOnly records a dry run's plan in res, each change logged as planned.
func (e *Engine) planOnly(ctx context.Context, res *Result, p Plan) {
	res.Outcome = OutcomePlanned
	res.Changes = planChanges(p)
	for _, c := range res.Changes {
		e.audit(ctx, "planned permission change (dry run)", c)
	}
}

// block records that nothing may change on the image, and why.
func (e *Engine) block(ctx context.Context, res Result, tags map[string]string, reasons []string) (Result, error) {
	res.Outcome, res.Status = OutcomeBlocked, StatusError
	reason := strings.Join(reasons, "; ")
	res.Message = trimMessage(reason)
	e.logger().WarnContext(ctx, "image not shared", "imageId", res.ImageID, "reason", reason)
	if res.DryRun {
		return res, nil
	}
	var err error
	if res.TagsWritten, err = e.writeStatus(ctx, res.ImageID, tags, StatusError, res.Message); err != nil {
		res.Outcome = OutcomeFailed
		return res, err
	}
	return res, nil
}

// fail records a failed AWS call on the image, best effort, and returns the
// error so that the event is retried. Work already done stays done: every
// step is safe on its own, and the next run finishes the rest.
func (e *Engine) fail(ctx context.Context, res Result, tags map[string]string, err error) (Result, error) {
	res.Outcome, res.Status = OutcomeFailed, StatusError
	res.Message = trimMessage("incomplete, will be retried: " + err.Error())
	if res.DryRun {
		return res, err
	}
	if written, tagErr := e.writeStatus(ctx, res.ImageID, tags, StatusError, res.Message); tagErr != nil {
		e.logger().WarnContext(ctx, "could not record the failure on the image", "imageId", res.ImageID, "error", tagErr.Error())
	} else {
		res.TagsWritten = written
	}
	return res, err
}

func (e *Engine) logger() *slog.Logger {
	if e.Log != nil {
		return e.Log
	}
	return slog.Default()
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

// staleKeyAccounts lists the keys that grant accounts, organizations or OUs
// the image no longer wants.
func staleKeyAccounts(st State, targets amitag.Targets) []string {
	desired := keyGrantees(targets)
	var keys []string
	for _, k := range st.Keys {
		if len(minus(k.grantees(), desired)) > 0 {
			keys = append(keys, k.ARN)
		}
	}
	return keys
}

// staleSnapshotAccounts lists the snapshots shared with accounts the image no longer wants.
func staleSnapshotAccounts(st State, desired []string) []string {
	var snaps []string
	for _, s := range st.Snapshots {
		if len(minus(s.Perms.Accounts, desired)) > 0 {
			snaps = append(snaps, s.ID)
		}
	}
	return snaps
}

// addNeeds fills in.Keep and in.KeepSnapshots when the image's keys or
// snapshots hold accounts it no longer wants: those another managed image
// still needs stay. Nothing is read when nothing would be removed.
func (e *Engine) addNeeds(ctx context.Context, cfg *config.Config, in *Input, cache *Cache) error {
	keys := staleKeyAccounts(in.State, in.Targets)
	snaps := staleSnapshotAccounts(in.State, in.Targets.Accounts)
	if len(keys) == 0 && len(snaps) == 0 {
		return nil
	}
	var err error
	in.Keep, in.KeepSnapshots, err = e.otherNeeds(ctx, cfg, in.State.ImageID, keys, snaps, cache)
	return err
}

// writeStatus sets the status tags, and any extra tags (the list of
// copies), in one call when they differ from what the image has.
func (e *Engine) writeStatus(ctx context.Context, imageID string, tags map[string]string, status Status, msg string, extra ...ec2types.Tag) (bool, error) {
	if tags[amitag.Status] == string(status) && tags[amitag.Message] == msg && len(extra) == 0 {
		return false, nil
	}
	_, err := e.EC2.CreateTags(ctx, &ec2.CreateTagsInput{
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

func planChanges(p Plan) []Change {
	var out []Change
	add := func(c Change, action string, targets []string) {
		for _, a := range targets {
			c.Action = action
			out = append(out, withTarget(c, a))
		}
	}
	img := Change{ImageID: p.ImageID}
	add(img, "remove", p.Image.Remove)
	if p.Image.MakePrivate {
		add(img, "remove", []string{publicGroup})
	}
	for _, s := range p.Snapshots {
		c := Change{ImageID: p.ImageID, SnapshotID: s.SnapshotID}
		add(c, "remove", s.Remove)
		if s.MakePrivate {
			add(c, "remove", []string{publicGroup})
		}
	}
	for _, k := range p.Keys {
		c := Change{ImageID: p.ImageID, KeyARN: k.KeyARN}
		add(c, "add", k.Add)
		add(c, "remove", k.Remove)
	}
	for _, s := range p.Snapshots {
		add(Change{ImageID: p.ImageID, SnapshotID: s.SnapshotID}, "add", s.Add)
	}
	add(img, "add", p.Image.Add)
	return out
}

func (e *Engine) audit(ctx context.Context, msg string, c Change) {
	attrs := []any{"imageId", c.ImageID}
	if c.SnapshotID != "" {
		attrs = append(attrs, "snapshotId", c.SnapshotID)
	}
	if c.KeyARN != "" {
		attrs = append(attrs, "keyArn", c.KeyARN)
	}
	switch {
	case c.OrganizationArn != "":
		attrs = append(attrs, "organizationArn", c.OrganizationArn)
	case c.OrganizationalUnitArn != "":
		attrs = append(attrs, "organizationalUnitArn", c.OrganizationalUnitArn)
	default:
		attrs = append(attrs, "account", c.Account)
	}
	attrs = append(attrs, "action", c.Action)
	e.logger().InfoContext(ctx, msg, attrs...)
}

func (e *Engine) logForeignKeyStatements(ctx context.Context, st State, desired []string) {
	if len(desired) == 0 {
		return
	}
	for _, k := range st.Keys {
		// A key DescribeKey is denied on is as good as foreign: amishare
		// cannot change it, its owner must.
		msg := "key belongs to another account: its owner must add this statement to the key policy"
		switch {
		case k.Manager == managerAWS:
			continue
		case isForeign(k, st.Owner):
		case k.Denied:
			msg = "key refuses this account's IAM: its owner must add this statement to the key policy"
		default:
			continue
		}
		e.logger().WarnContext(ctx, msg,
			"imageId", st.ImageID, "keyArn", k.ARN, "keyOwner", k.Owner, "statement", kmspolicy.Statement(desired, awsid.PartitionOf(k.ARN)))
	}
}
