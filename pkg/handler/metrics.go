package handler

import (
	"context"
	"log/slog"

	"github.com/amishare/amishare/pkg/metrics"
	"github.com/amishare/amishare/pkg/share"
	"github.com/amishare/amishare/pkg/share/rules"
)

// Metrics are one invocation's counts, published through CloudWatch's
// embedded metric format: a JSON log line CloudWatch turns into metrics, so
// no metrics SDK or API call is needed.
type Metrics struct {
	ImagesShared    int
	AccountsAdded   int
	AccountsRemoved int
	TargetsRefused  int
	Errors          int
	// ImagesCopied counts the copies CopyImage started (amishare:regions,
	// re-encryption).
	ImagesCopied int
	// SnapshotsCleaned counts the snapshots of deregistered images whose
	// create-volume permissions were revoked (as a sweep's metric does).
	SnapshotsCleaned int
	// RevocationsBlocked counts images no longer managed whose launch
	// permissions amishare could not reset (one it could not have granted):
	// a person must look.
	RevocationsBlocked int
	// KeyPolicyNearLimit counts keys whose policy is near KMS's size limit;
	// LeftoverStatements, keys holding statements policy mode left.
	KeyPolicyNearLimit int
	LeftoverStatements int
	// ParameterRollbacks counts the parameters naming the newest image that
	// fell back to an older one (the newest deregistered, untagged, or no
	// longer shared with a receiver); ParametersPending, those written that
	// SSM had not taken yet; ReceiversUnreachable, the receivers whose role
	// could not be assumed or used.
	ParameterRollbacks   int
	ParametersPending    int
	ReceiversUnreachable int
	// Throttled counts the attempts AWS answered with throttling (and the
	// SDK retried): a burst shows here, without Errors.
	Throttled int
}

// Count tallies the results of one event. Only changes made count (also
// those of a blocked image, which still loses what its tag no longer
// names): a dry run or an unchanged image adds nothing but its refusals and
// errors.
// Organizations and OUs count with the accounts (AccountsAdded,
// AccountsRemoved): each is one launch permission on the image.
func Count(results []share.Result) Metrics {
	var m Metrics
	for _, r := range results {
		if r.Outcome == share.OutcomeFailed || r.Status == rules.StatusError {
			m.Errors++
		}
		m.TargetsRefused += len(r.Refused)
		if r.Outcome == share.OutcomeCleaned {
			m.SnapshotsCleaned += r.SnapshotsChanged()
		}
		if len(r.Unrevoked) > 0 {
			m.RevocationsBlocked++
		}
		m.KeyPolicyNearLimit += len(r.NearLimit)
		m.LeftoverStatements += len(r.Leftovers)
		if c := r.Consumers; c != nil {
			m.ReceiversUnreachable += len(c.Unreachable)
			if !r.DryRun {
				m.ParameterRollbacks += c.Rollbacks()
				m.ParametersPending += c.PendingParameters()
			}
		}
		if r.DryRun || r.Outcome == share.OutcomePlanned {
			continue // planned, not made
		}
		if r.Plan != nil {
			for _, c := range r.Plan.Copies {
				if c.Action == rules.CopyActionCopy && c.ImageID != "" {
					m.ImagesCopied++
				}
			}
		}
		added := 0
		for _, c := range r.Changes {
			if c.SnapshotID != "" || c.KeyARN != "" {
				continue // count targets once, on the image
			}
			switch c.Action {
			case rules.ActionAdd:
				added++
			case rules.ActionRemove:
				m.AccountsRemoved++
			}
		}
		m.AccountsAdded += added
		if added > 0 {
			m.ImagesShared++ // newly shared with at least one account
		}
	}
	return m
}

// emitMetrics publishes the counts of one event's results, and its
// throttled attempts (not a property of any result).
func emitMetrics(ctx context.Context, log *slog.Logger, results []share.Result, throttled int) {
	if len(results) == 0 {
		return
	}
	m := Count(results)
	m.Throttled = throttled
	metrics.Emit(ctx, log,
		metrics.Counted("ImagesShared", m.ImagesShared),
		metrics.Counted("AccountsAdded", m.AccountsAdded),
		metrics.Counted("AccountsRemoved", m.AccountsRemoved),
		metrics.Counted("TargetsRefused", m.TargetsRefused),
		metrics.Counted("Errors", m.Errors),
		metrics.Counted("ImagesCopied", m.ImagesCopied),
		metrics.Counted("SnapshotsCleaned", m.SnapshotsCleaned),
		metrics.Counted("RevocationsBlocked", m.RevocationsBlocked),
		metrics.Counted("KeyPolicyNearLimit", m.KeyPolicyNearLimit),
		metrics.Counted("LeftoverStatements", m.LeftoverStatements),
		metrics.Counted("ParameterRollbacks", m.ParameterRollbacks),
		metrics.Counted("ParametersPending", m.ParametersPending),
		metrics.Counted("ReceiversUnreachable", m.ReceiversUnreachable),
		metrics.Counted("Throttled", m.Throttled),
	)
}
