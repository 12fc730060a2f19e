package handler

import (
	"context"
	"errors"
	"log/slog"
	"strings"

	"github.com/amishare/amishare/pkg/event"
	"github.com/amishare/amishare/pkg/metrics"
	"github.com/amishare/amishare/pkg/share"
	"github.com/amishare/amishare/pkg/sweep"
)

// Sweep runs a whole sweep now, outside any event (the CLI), logging each
// decision and the metrics as the Lambda does.
func (h *Handler) Sweep(ctx context.Context) (sweep.Summary, error) {
	return h.SweepWithProgress(ctx, nil)
}

// SweepWithProgress is Sweep telling onProgress, when set, how many images
// are done of how many (see sweep.RunOptions.OnProgress).
func (h *Handler) SweepWithProgress(ctx context.Context, onProgress func(done, total int)) (sweep.Summary, error) {
	return h.runSweep(ctx, event.Event{Kind: event.KindSweep}, nil, onProgress)
}

// sweep runs the sweep a scheduled event asks for (bodies nil), or resumes
// the sweep each continuation message names. A sweep refused (another one
// is in progress, or the continuation is not the sweep in progress's) is
// ignored with the reason: no retry would change it.
func (h *Handler) sweep(ctx context.Context, ev event.Event, bodies []string, sum Summary) (Summary, error) {
	var refusals []string
	run := func(resume *sweep.Cursor) error {
		s, err := h.runSweep(ctx, ev, resume, nil)
		if refused := (*sweep.RefusedError)(nil); errors.As(err, &refused) {
			refusals = append(refusals, refused.Error())
			return nil
		}
		sum.Sweeps = append(sum.Sweeps, s)
		return err
	}
	var errs []error
	if bodies == nil {
		errs = append(errs, run(nil))
	}
	for _, body := range bodies {
		cur, err := sweep.ParseContinuation(body)
		if err != nil {
			h.logger().ErrorContext(ctx, "event rejected", "eventId", ev.ID, "error", err.Error())
			errs = append(errs, err)
			continue
		}
		errs = append(errs, run(&cur))
	}
	sum.Ignored = strings.Join(refusals, "; ")
	if err := errors.Join(errs...); err != nil {
		sum.Error = err.Error()
		return sum, err
	}
	return sum, nil
}

func (h *Handler) runSweep(ctx context.Context, ev event.Event, resume *sweep.Cursor, onProgress func(done, total int)) (sweep.Summary, error) {
	log := h.logger()
	if h.Sweeper == nil {
		return sweep.Summary{}, errors.New("sweep: not configured")
	}
	s, err := h.Sweeper.Run(ctx, sweep.RunOptions{
		Resume: resume,
		DryRun: h.DryRun,
		OnResult: func(ctx context.Context, res share.Result, err error) {
			logDecision(ctx, log, ev, res, err)
		},
		OnProgress: onProgress,
	})
	if refused := (*sweep.RefusedError)(nil); errors.As(err, &refused) {
		log.WarnContext(ctx, "event ignored", "eventId", ev.ID, "kind", string(ev.Kind), "sweepId", s.SweepID, "reason", refused.Error())
		return s, err
	}
	attrs := []any{"eventId", ev.ID, "kind", string(ev.Kind), "sweepId", s.SweepID,
		"managedImages", s.ManagedImages, "imagesChecked", s.ImagesChecked, "driftRepaired", s.DriftRepaired,
		"goneImages", s.GoneImages, "snapshotsCleaned", s.SnapshotsCleaned, "errors", s.Errors,
		"calls", s.Calls, "throttled", s.Throttled, "seconds", s.Seconds}
	if s.Continuation != nil {
		attrs = append(attrs, "continuation", s.Continuation)
	}
	for _, f := range s.Failures {
		log.WarnContext(ctx, "sweep failure", "sweepId", s.SweepID, "imageId", f.ImageID, "error", f.Error)
	}
	if err != nil {
		log.ErrorContext(ctx, "sweep failed", append(attrs, "error", err.Error())...)
		s.Errors++
	} else {
		log.InfoContext(ctx, "sweep done", attrs...)
	}
	emitSweepMetrics(ctx, log, s)
	return s, err
}

// emitSweepMetrics publishes one sweep invocation's counts.
func emitSweepMetrics(ctx context.Context, log *slog.Logger, s sweep.Summary) {
	metrics.Emit(ctx, log,
		metrics.Counted("ImagesChecked", s.ImagesChecked),
		metrics.Counted("DriftRepaired", s.DriftRepaired),
		metrics.Counted("SnapshotsCleaned", s.SnapshotsCleaned),
		metrics.Metric{Name: "SweepSeconds", Unit: metrics.Seconds, Value: s.Seconds},
		metrics.Counted("Errors", s.Errors),
		metrics.Counted("Throttled", s.Throttled),
	)
}
