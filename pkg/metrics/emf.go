// Package metrics publishes amishare's CloudWatch metrics in the embedded
// metric format: one JSON log line that CloudWatch Logs turns into metrics,
// so no metrics SDK and no API call is needed. Every metric set amishare
// emits (an event's counts, a sweep's, the block public access states) goes
// through Emit.
package metrics

import (
	"context"
	"log/slog"
	"time"
)

// Namespace is the CloudWatch namespace of amishare's metrics.
const Namespace = "amishare"

// Units used by amishare's metrics.
const (
	Count   = "Count"
	Seconds = "Seconds"
)

// Metric is one value of one metric.
type Metric struct {
	Name  string
	Unit  string
	Value float64
}

// Emit writes one "metrics" log line holding ms in the embedded metric
// format (no dimensions). It writes nothing when ms is empty.
func Emit(ctx context.Context, log *slog.Logger, ms ...Metric) {
	if len(ms) == 0 {
		return
	}
	defs := make([]map[string]string, len(ms))
	attrs := make([]any, 0, len(ms)+1)
	attrs = append(attrs, slog.Any("_aws", map[string]any{
		"Timestamp": time.Now().UnixMilli(),
		"CloudWatchMetrics": []map[string]any{{
			"Namespace":  Namespace,
			"Dimensions": [][]string{{}},
			"Metrics":    defs,
		}},
	}))
	for i, m := range ms {
		defs[i] = map[string]string{"Name": m.Name, "Unit": m.Unit}
		attrs = append(attrs, slog.Float64(m.Name, m.Value))
	}
	log.InfoContext(ctx, "metrics", attrs...)
}

// Counted is a count metric.
func Counted(name string, n int) Metric { return Metric{Name: name, Unit: Count, Value: float64(n)} }
