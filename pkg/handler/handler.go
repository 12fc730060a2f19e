// Package handler is amishare's entry point for one event: decode it,
// reconcile each image it names, log each decision once, and emit metrics.
// The Lambda and the operator CLI run exactly this code.
package handler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/amishare/amishare/pkg/awserr"
	"github.com/amishare/amishare/pkg/event"
	"github.com/amishare/amishare/pkg/share"
	"github.com/amishare/amishare/pkg/sweep"
	"github.com/amishare/amishare/pkg/throttling"
)

// Reconciler reconciles one image, records a failed copy on its source, or
// cleans up after an image that is gone (*share.Engine in production).
type Reconciler interface {
	Reconcile(ctx context.Context, imageID string, opts share.Options) (share.Result, error)
	CopyFailed(ctx context.Context, imageID string, opts share.Options) (share.Result, error)
	Cleanup(ctx context.Context, imageID string, opts share.Options) (share.Result, error)
}

var _ Reconciler = (*share.Engine)(nil)

// EventMargin is kept free at the end of an event's invocation (one with
// a deadline): its calls stop retrying throttling that long before the
// deadline.
const EventMargin = 5 * time.Second

// Handler handles EventBridge events.
type Handler struct {
	// Engines gives the engine acting in a region ("" is the function's
	// own): an event is handled in the region its envelope names, whatever
	// region the function runs in, once the configuration allows that region
	// (an error wrapping *share.RegionNotAllowedError otherwise).
	Engines func(ctx context.Context, region string) (Reconciler, error)
	// Sweeper runs the scheduled sweep and its continuations (in the
	// function's own region).
	Sweeper Sweeper
	Log     *slog.Logger
	// DryRun forces a dry run whatever the configuration says (the CLI's --dry-run).
	DryRun bool
}

// Sweeper runs one invocation of a sweep (*sweep.Sweeper in production).
type Sweeper interface {
	Run(ctx context.Context, ro sweep.RunOptions) (sweep.Summary, error)
}

var _ Sweeper = (*sweep.Sweeper)(nil)

// Summary is what one event led to; the Lambda returns it and the CLI prints it.
type Summary struct {
	EventID    string         `json:"eventId,omitempty"`
	Kind       event.Kind     `json:"kind"`
	DetailType string         `json:"detailType,omitempty"`
	Ignored    string         `json:"ignored,omitempty"`
	Images     []share.Result `json:"images,omitempty"`
	// Sweeps holds what each sweep run of the event did.
	Sweeps []sweep.Summary `json:"sweeps,omitempty"`
	Error  string          `json:"error,omitempty"`
}

// Handle decodes one EventBridge envelope and reconciles the images it names.
// It returns an error when the input is not a valid event or when an AWS
// call failed for an image (so Lambda retries the event, then sends it to the
// dead-letter queue); the summary then says what was done before.
func (h *Handler) Handle(ctx context.Context, raw json.RawMessage) (Summary, error) {
	log := h.logger()
	ev, err := event.Decode(raw)
	if err != nil {
		log.ErrorContext(ctx, "event rejected", "error", err.Error())
		return Summary{Kind: event.KindOther, Error: err.Error()}, err
	}
	sum := Summary{EventID: ev.ID, Kind: ev.Kind, DetailType: ev.DetailType, Ignored: ev.Ignored}
	if ev.Ignored != "" {
		log.InfoContext(ctx, "event ignored", "eventId", ev.ID, "kind", string(ev.Kind), "reason", ev.Ignored)
		return sum, nil
	}
	switch w := ev.Work.(type) {
	case event.Sweep:
		return h.sweep(ctx, ev, nil, sum)
	case event.Resume:
		return h.sweep(ctx, ev, w.Bodies, sum)
	}
	// The event's calls retry throttling until EventMargin before the
	// invocation's deadline: the failure is then logged and returned (Lambda
	// retries the event) rather than cut off by the timeout.
	if d, ok := ctx.Deadline(); ok && time.Until(d) > 2*EventMargin {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, d.Add(-EventMargin))
		defer cancel()
	}
	engine, err := h.Engines(ctx, ev.Region)
	if err != nil && !awserr.IsTransient(err) {
		// Not allowed there, or no valid configuration to say whether it is:
		// nothing changes.
		sum.Ignored = err.Error()
		log.WarnContext(ctx, "event ignored", "eventId", ev.ID, "kind", string(ev.Kind), "region", ev.Region, "reason", sum.Ignored)
		return sum, nil
	}
	if err != nil {
		log.ErrorContext(ctx, "event failed", "eventId", ev.ID, "kind", string(ev.Kind), "region", ev.Region, "error", err.Error())
		sum.Error = err.Error()
		return sum, err
	}
	opts := share.Options{DryRun: h.DryRun}
	var throttled throttling.Counter
	ctx = throttling.WithCounter(ctx, &throttled)
	var errs []error
	each := func(ids []string, do func(context.Context, string, share.Options) (share.Result, error)) {
		for _, id := range ids {
			res, err := do(ctx, id, opts)
			sum.Images = append(sum.Images, res)
			logDecision(ctx, log, ev, res, err)
			if err != nil {
				errs = append(errs, fmt.Errorf("image %s: %w", id, err))
			}
		}
	}
	switch w := ev.Work.(type) {
	case event.Reconcile:
		opts.TagChange = w.TagChange
		each(w.ImageIDs, engine.Reconcile)
	case event.CopyFailed:
		each([]string{w.ImageID}, engine.CopyFailed)
	case event.Cleanup:
		each(w.ImageIDs, engine.Cleanup)
	default:
		return sum, fmt.Errorf("event %s: no work of type %T", ev.ID, ev.Work)
	}
	emitMetrics(ctx, log, sum.Images, throttled.Count())
	if err := errors.Join(errs...); err != nil {
		sum.Error = err.Error()
		return sum, err
	}
	return sum, nil
}

// Invoke makes Handler a lambda.Handler: it receives the payload as raw
// bytes, so that input that is not JSON reaches Decode and gets its clear
// error, instead of failing inside the Lambda library before Handle runs.
func (h *Handler) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	sum, err := h.Handle(ctx, payload)
	if err != nil {
		return nil, err
	}
	return json.Marshal(sum)
}

// Reconcile reconciles one image of region ("" is the function's own)
// outside any event (the CLI's plan and apply), logging the decision and
// the metrics exactly as Handle does for an event's images. The
// configuration is still read in the function's own region. An image that
// is gone or deregistered is cleaned up, as its deregistered event would
// be: what amishare shared for it (its recorded snapshots) is revoked; it
// stays gone when nothing is recorded for it.
func (h *Handler) Reconcile(ctx context.Context, region, imageID string) (share.Result, error) {
	log := h.logger()
	engine, err := h.Engines(ctx, region)
	if err != nil {
		return share.Result{ImageID: imageID, Outcome: share.OutcomeFailed}, err
	}
	opts := share.Options{DryRun: h.DryRun}
	var throttled throttling.Counter
	tctx := throttling.WithCounter(ctx, &throttled)
	res, err := engine.Reconcile(tctx, imageID, opts)
	if err == nil && (res.Outcome == share.OutcomeGone || res.Outcome == share.OutcomeSkipped) {
		// Cleanup skips an image that still exists and is managed (pending,
		// failed): the reconcile's word stands then, as it does when no
		// snapshot is recorded for the image.
		if cl, cerr := engine.Cleanup(tctx, imageID, opts); cerr != nil || (cl.Outcome != share.OutcomeSkipped && cl.Outcome != share.OutcomeGone) {
			res, err = cl, cerr
		}
	}
	logDecision(ctx, log, event.Event{Kind: event.KindOperator, Region: region}, res, err)
	emitMetrics(ctx, log, []share.Result{res}, throttled.Count())
	return res, err
}

func (h *Handler) logger() *slog.Logger {
	if h.Log != nil {
		return h.Log
	}
	return slog.Default()
}

// logDecision writes the one line that says what happened to an image.
func logDecision(ctx context.Context, log *slog.Logger, ev event.Event, res share.Result, err error) {
	attrs := []any{
		"eventId", ev.ID, "kind", string(ev.Kind), "region", ev.Region, "imageId", res.ImageID,
		"outcome", string(res.Outcome), "changes", len(res.Changes), "tagsWritten", res.TagsWritten,
	}
	if res.Status != "" {
		attrs = append(attrs, "status", string(res.Status), "statusMessage", res.Message)
	}
	if res.Reason != "" {
		attrs = append(attrs, "reason", res.Reason)
	}
	if len(res.Targets) > 0 {
		attrs = append(attrs, "targets", res.Targets)
	}
	if res.ConfigVersion > 0 {
		attrs = append(attrs, "configVersion", res.ConfigVersion)
	}
	if len(res.Warnings) > 0 {
		attrs = append(attrs, "warnings", res.Warnings)
	}
	for _, r := range res.Refused {
		log.WarnContext(ctx, "target refused", "imageId", res.ImageID, "token", r.Token, "reason", r.Reason)
	}
	if res.DryRun {
		attrs = append(attrs, "dryRun", true)
		if res.Plan != nil {
			attrs = append(attrs, "plan", res.Plan)
		}
	}
	if err != nil {
		log.ErrorContext(ctx, "image reconcile failed", append(attrs, "error", err.Error())...)
		return
	}
	if len(res.Unrevoked) > 0 {
		log.ErrorContext(ctx, "access not revoked", append(attrs, "unrevoked", res.Unrevoked)...)
		return
	}
	log.InfoContext(ctx, "image reconciled", attrs...)
}
