package share

import (
	"context"
	"errors"
	"strings"

	"github.com/amishare/amishare/pkg/amitag"
	"github.com/amishare/amishare/pkg/awserr"
	"github.com/amishare/amishare/pkg/config"
	"github.com/amishare/amishare/pkg/share/rules"
)

// What every use case shares: reading the configuration first, and
// recording how it ended (planned, blocked, failed).

// begin reads the configuration for a use case and sets res.DryRun. A
// transient failure fails res and returns err (the event is retried); a
// missing or invalid configuration is returned as invalid, and the use case
// then changes nothing: an operator's typo must not revoke a fleet.
func (e *Engine) begin(ctx context.Context, res *Result, opts Options) (cfg *config.Config, invalid, err error) {
	res.DryRun = opts.DryRun
	cfg, err = e.read().loadConfig(ctx)
	switch {
	case err == nil:
		res.DryRun = opts.DryRun || cfg.DryRun
		return cfg, nil, nil
	case awserr.IsTransient(err):
		res.Outcome = OutcomeFailed
		return nil, nil, err
	default:
		return nil, err, nil
	}
}

// notDelegated reports whether err is a key write IAM refused because the
// key is not delegated to amishare, and logs it once.
func (e *Engine) notDelegated(ctx context.Context, imageID string, err error) (*KeyNotDelegatedError, bool) {
	var nd *KeyNotDelegatedError
	if !errors.As(err, &nd) {
		return nil, false
	}
	e.logger().WarnContext(ctx, "key not delegated to amishare", "imageId", imageID,
		"keyArn", nd.KeyARN, "tag", amitag.KeyManaged+"="+amitag.KeyManagedValue, "error", nd.Err.Error())
	return nd, true
}

// planOnly records a dry run's plan in res, each change logged as planned.
func (e *Engine) planOnly(ctx context.Context, res *Result, p rules.Plan) {
	res.Outcome = OutcomePlanned
	res.Changes = p.Changes()
	for _, c := range res.Changes {
		audit(ctx, e.logger(), "planned permission change (dry run)", c)
	}
}

// block records that nothing may change on the image, and why, in its
// status tags (not in a dry run).
func (e *Engine) block(ctx context.Context, res Result, tags map[string]string, reasons []string) (Result, error) {
	res.Outcome, res.Status = OutcomeBlocked, rules.StatusError
	reason := strings.Join(reasons, "; ")
	res.Message = rules.TrimMessage(reason)
	e.logger().WarnContext(ctx, "image not shared", "imageId", res.ImageID, "reason", reason)
	if res.DryRun {
		return res, nil
	}
	var err error
	if res.TagsWritten, err = e.write(&res).status(ctx, "", res.ImageID, tags, rules.StatusError, res.Message); err != nil {
		res.Outcome = OutcomeFailed
		return res, err
	}
	return res, nil
}

// fail records a failed AWS call on the image, best effort, and returns the
// error so that the event is retried. Work already done stays done: every
// step is safe on its own, and the next run finishes the rest.
func (e *Engine) fail(ctx context.Context, res Result, tags map[string]string, err error) (Result, error) {
	res.Outcome, res.Status = OutcomeFailed, rules.StatusError
	res.Message = rules.TrimMessage("incomplete, will be retried: " + err.Error())
	if res.DryRun {
		return res, err
	}
	if written, tagErr := e.write(&res).status(ctx, "", res.ImageID, tags, rules.StatusError, res.Message); tagErr != nil {
		e.logger().WarnContext(ctx, "could not record the failure on the image", "imageId", res.ImageID, "error", tagErr.Error())
	} else {
		res.TagsWritten = written
	}
	return res, err
}
