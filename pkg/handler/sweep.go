package handler

import (
	"context"
	"errors"
	"log/slog"

	"github.com/amishare/amishare/pkg/event"
	"github.com/amishare/amishare/pkg/metrics"
	"github.com/amishare/amishare/pkg/share"
	"github.com/amishare/amishare/pkg/sweep"
)

// KindSweep marks the decisions of a sweep an operator started (the CLI's sweep).
const KindSweep event.Kind = "sweep"

// Sweep runs a whole sweep now, outside any event (the CLI), logging each
// decision and the metrics as the Lambda does.
func (h *Handler) Sweep(ctx context.Context) (sweep.Summary, error) {
	return h.runSweep(ctx, event.Trigger{Kind: KindSweep}, nil)
}

// sweep runs the sweep a scheduled event asks for, or resumes the sweep
// each continuation message names.
func (h *Handler) sweep(ctx context.Context, trig event.Trigger, sum Summary) (Summary, error) {
	if trig.Kind == event.KindScheduled {
		s, err := h.runSweep(ctx, trig, nil)
		sum.Sweeps = append(sum.Sweeps, s)
		if err != nil {
			sum.Error = err.Error()
		}
		return sum, err
	}
	var errs []error
	for _, body := range trig.Resume {
		cur, err := sweep.ParseContinuation(body)
		if err != nil {
			h.logger().ErrorContext(ctx, "event rejected", "eventId", trig.ID, "error", err.Error())
			errs = append(errs, err)
			continue
		}
		s, err := h.runSweep(ctx, trig, &cur)
		sum.Sweeps = append(sum.Sweeps, s)
		if err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		sum.Error = err.Error()
		return sum, err
	}
	return sum, nil
}

func (h *Handler) runSweep(ctx context.Context, trig event.Trigger, resume *sweep.Cursor) (sweep.Summary, error) {
	log := h.logger()
	if h.Sweeper == nil {
		return sweep.Summary{}, errors.New("sweep: not configured")
	}
	s, err := h.Sweeper.Run(ctx, sweep.RunOptions{
		Resume: resume,
		DryRun: h.DryRun,
		OnResult: func(ctx context.Context, res share.Result, err error) {
			logDecision(ctx, log, trig, res, err)
		},
	})
	attrs := []any{"eventId", trig.ID, "kind", string(trig.Kind), "sweepId", s.SweepID,
		"managedImages", s.ManagedImages, "imagesChecked", s.ImagesChecked, "driftRepaired", s.DriftRepaired,
		"goneImages", s.GoneImages, "snapshotsCleaned", s.SnapshotsCleaned, "errors", s.Errors,
		"calls", s.Calls, "seconds", s.Seconds}
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
	)
}
