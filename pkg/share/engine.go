// Package share is the engine: for each use case (reconcile an image,
// record a failed copy, clean up after an image that is gone) it reads what
// AWS holds now (reader.go), lets the rules decide what must change
// (pkg/share/rules, pure), and applies that in a safe order with the fewest
// modifying calls (writer.go). The event handler, the CLI and the sweep all
// run these same use cases.
package share

import (
	"context"
	"log/slog"
	"slices"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/amishare/amishare/pkg/amitag"
	"github.com/amishare/amishare/pkg/config"
	"github.com/amishare/amishare/pkg/kmsgrant"
	"github.com/amishare/amishare/pkg/kmspolicy"
	"github.com/amishare/amishare/pkg/share/rules"
)

// EC2API is the part of *ec2.Client the engine uses.
type EC2API interface {
	DescribeImages(ctx context.Context, params *ec2.DescribeImagesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeImagesOutput, error)
	DescribeImageAttribute(ctx context.Context, params *ec2.DescribeImageAttributeInput, optFns ...func(*ec2.Options)) (*ec2.DescribeImageAttributeOutput, error)
	ModifyImageAttribute(ctx context.Context, params *ec2.ModifyImageAttributeInput, optFns ...func(*ec2.Options)) (*ec2.ModifyImageAttributeOutput, error)
	DescribeSnapshots(ctx context.Context, params *ec2.DescribeSnapshotsInput, optFns ...func(*ec2.Options)) (*ec2.DescribeSnapshotsOutput, error)
	DescribeSnapshotAttribute(ctx context.Context, params *ec2.DescribeSnapshotAttributeInput, optFns ...func(*ec2.Options)) (*ec2.DescribeSnapshotAttributeOutput, error)
	ModifySnapshotAttribute(ctx context.Context, params *ec2.ModifySnapshotAttributeInput, optFns ...func(*ec2.Options)) (*ec2.ModifySnapshotAttributeOutput, error)
	CreateTags(ctx context.Context, params *ec2.CreateTagsInput, optFns ...func(*ec2.Options)) (*ec2.CreateTagsOutput, error)
	CopyImage(ctx context.Context, params *ec2.CopyImageInput, optFns ...func(*ec2.Options)) (*ec2.CopyImageOutput, error)
	DeleteTags(ctx context.Context, params *ec2.DeleteTagsInput, optFns ...func(*ec2.Options)) (*ec2.DeleteTagsOutput, error)
	ResetImageAttribute(ctx context.Context, params *ec2.ResetImageAttributeInput, optFns ...func(*ec2.Options)) (*ec2.ResetImageAttributeOutput, error)
}

var _ EC2API = (*ec2.Client)(nil)

// KMSAPI is the part of *kms.Client the engine uses: key policies, grants,
// and a key's tags (whether it is delegated to amishare).
type KMSAPI interface {
	kmspolicy.API
	kmsgrant.API
	ListResourceTags(ctx context.Context, params *kms.ListResourceTagsInput, optFns ...func(*kms.Options)) (*kms.ListResourceTagsOutput, error)
}

var _ KMSAPI = (*kms.Client)(nil)

// ConfigSource gives the current configuration (*config.Loader in production).
type ConfigSource interface {
	Load(ctx context.Context) (*config.Config, error)
}

var _ ConfigSource = (*config.Loader)(nil)

// RegionalEC2 gives the EC2 client of any region: copies are made, found
// and tagged in their destination region.
type RegionalEC2 interface {
	EC2(region string) EC2API
}

// Engine runs amishare's use cases in one region. Build one per process and
// region (clients are reused across Lambda invocations; see Pool); it is
// safe for concurrent use.
type Engine struct {
	EC2    EC2API
	KMS    KMSAPI
	Config ConfigSource
	// Log receives the audit trail: one line per permission change, and the
	// statements a foreign key's owner must add. Defaults to slog.Default().
	Log *slog.Logger
	// Region is where the engine acts (its EC2 and KMS clients' region);
	// Regions gives other regions' EC2 clients, for copies (see Pool).
	Region  string
	Regions RegionalEC2
	// SSM keeps the parameters naming the newest image in this account and
	// region; Receivers opens sessions in the receivers (see consumers.go).
	// Without them no parameter is kept and no receiver reached.
	SSM       SSMAPI
	Receivers ReceiverOpener

	// cache, when set (WithCache), shares the reads of one sweep.
	cache *Cache
	// freshReads: the image was just read, so what other images need is
	// read afresh too, not taken from the sweep's listing (see fresh).
	freshReads bool
}

// WithCache returns an engine like e whose reads go through cache: the
// reconciles of one sweep read the configuration once, snapshots in
// batches, each key once and the list of managed images once. What they
// write is never decided from the cache (see Cache).
func (e *Engine) WithCache(cache *Cache) *Engine {
	c := *e
	c.cache = cache
	return &c
}

// Options adjust one use case.
type Options struct {
	// DryRun computes and logs the plan but makes no modifying call and writes no tag.
	// The configuration's dryRun has the same effect.
	DryRun bool
	// TagChange: a person changed the image's tags (a tag change event). A
	// copy that failed MaxCopyAttempts times is tried again only then.
	TagChange bool
}

// Outcome says what a use case did with an image.
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

// Result reports one use case on one image.
type Result struct {
	ImageID     string           `json:"imageId"`
	Outcome     Outcome          `json:"outcome"`
	Reason      string           `json:"reason,omitempty"`
	Status      rules.Status     `json:"status,omitempty"`
	Message     string           `json:"message,omitempty"`
	Targets     []string         `json:"targets,omitempty"` // accounts, then organization and OU ARNs
	Refused     []amitag.Refusal `json:"refused,omitempty"`
	Plan        *rules.Plan      `json:"plan,omitempty"`
	Changes     []rules.Change   `json:"changes,omitempty"`
	TagsWritten bool             `json:"tagsWritten"`
	DryRun      bool             `json:"dryRun,omitempty"`
	// Unrevoked lists launch permissions amishare could not take away from
	// an image that is no longer managed (see rules.Input.Release): they
	// need a person.
	Unrevoked []string `json:"unrevoked,omitempty"`
	// Warnings are worth an operator's attention but blocked nothing (see
	// rules.Decision).
	Warnings []string `json:"warnings,omitempty"`
	// NearLimit lists keys whose policy is near KMS's size limit;
	// Leftovers, keys holding statements policy mode left.
	NearLimit []string         `json:"nearLimit,omitempty"`
	Leftovers []rules.Leftover `json:"leftovers,omitempty"`
	// ConfigVersion is the version of the configuration parameter decided
	// with (0 when it could not be read).
	ConfigVersion int64 `json:"configVersion,omitempty"`
	// Consumers is what the accounts the image is shared with were given
	// (or, in a dry run, would be): parameters, mirrored tags, Auto
	// Scaling grants, and the receivers that could not be reached.
	Consumers *ConsumerReport `json:"consumers,omitempty"`
}

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

func (e *Engine) logger() *slog.Logger {
	if e.Log != nil {
		return e.Log
	}
	return slog.Default()
}

// read returns the engine's reader.
func (e *Engine) read() reader {
	return reader{ec2: e.EC2, kms: e.KMS, config: e.Config, cache: e.cache, fresh: e.freshReads, region: e.Region, regions: e.Regions}
}

// write returns the engine's writer, recording into res.
func (e *Engine) write(res *Result) writer {
	return writer{ec2: e.EC2, kms: e.KMS, cache: e.cache, log: e.logger(), region: e.Region, regions: e.Regions, res: res}
}
