package app

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/amishare/amishare/pkg/metrics"
)

// BlockPublicAccessAPI is the part of *ec2.Client that reads the account's
// block public access states.
type BlockPublicAccessAPI interface {
	GetImageBlockPublicAccessState(ctx context.Context, params *ec2.GetImageBlockPublicAccessStateInput, optFns ...func(*ec2.Options)) (*ec2.GetImageBlockPublicAccessStateOutput, error)
	GetSnapshotBlockPublicAccessState(ctx context.Context, params *ec2.GetSnapshotBlockPublicAccessStateInput, optFns ...func(*ec2.Options)) (*ec2.GetSnapshotBlockPublicAccessStateOutput, error)
}

var _ BlockPublicAccessAPI = (*ec2.Client)(nil)

// Block public access states as EC2 reports them, and StateUnknown when a
// state could not be read.
const (
	StateUnblocked = "unblocked"
	StateUnknown   = "unknown"
)

// BlockPublicAccess is the account-level block public access of the region:
// for AMIs "unblocked" or "block-new-sharing", for snapshots "unblocked",
// "block-new-sharing" or "block-all-sharing".
type BlockPublicAccess struct {
	Image    string `json:"image"`
	Snapshot string `json:"snapshot"`
}

// ReportBlockPublicAccess reads both states once (the Lambda does it once
// per container, at start-up), logs them in one line, a warning when either
// is off or unreadable, and publishes them as metrics ImageBlockPublicAccess
// and SnapshotBlockPublicAccess (1 on, 0 off; left out when unreadable).
// They are amishare's second line against public AMIs and snapshots, after
// its own refusal of "all" and its role, so a missing permission or a
// failure here is reported, never fatal.
func ReportBlockPublicAccess(ctx context.Context, log *slog.Logger, api BlockPublicAccessAPI) BlockPublicAccess {
	st := BlockPublicAccess{Image: StateUnknown, Snapshot: StateUnknown}
	var errs []any
	if out, err := api.GetImageBlockPublicAccessState(ctx, &ec2.GetImageBlockPublicAccessStateInput{}); err != nil {
		errs = append(errs, "imageError", fmt.Sprintf("reading the image block public access state: %v", err))
	} else if out.ImageBlockPublicAccessState != nil {
		st.Image = *out.ImageBlockPublicAccessState
	}
	if out, err := api.GetSnapshotBlockPublicAccessState(ctx, &ec2.GetSnapshotBlockPublicAccessStateInput{}); err != nil {
		errs = append(errs, "snapshotError", fmt.Sprintf("reading the snapshot block public access state: %v", err))
	} else if out.State != "" {
		st.Snapshot = string(out.State)
	}

	attrs := append([]any{"imageBlockPublicAccess", st.Image, "snapshotBlockPublicAccess", st.Snapshot}, errs...)
	if st.Image == StateUnblocked || st.Snapshot == StateUnblocked || len(errs) > 0 {
		attrs = append(attrs, "advice", "turn on block public access for AMIs and for snapshots in this account and region (see README)")
		log.WarnContext(ctx, "block public access", attrs...)
	} else {
		log.InfoContext(ctx, "block public access", attrs...)
	}

	var ms []metrics.Metric
	for _, m := range []struct{ name, state string }{{"ImageBlockPublicAccess", st.Image}, {"SnapshotBlockPublicAccess", st.Snapshot}} {
		if m.state == StateUnknown {
			continue
		}
		on := 0
		if m.state != StateUnblocked {
			on = 1
		}
		ms = append(ms, metrics.Counted(m.name, on))
	}
	metrics.Emit(ctx, log, ms...)
	return st
}
