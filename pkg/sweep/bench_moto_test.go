package sweep_test

import (
	"testing"
	"time"

	"github.com/amishare/amishare/internal/testing/world"
	"github.com/amishare/amishare/pkg/amitag"
	"github.com/amishare/amishare/pkg/app"
)

// BenchmarkSweep sweeps 1,000 in-sync images (one snapshot each) against
// moto and reports what a sweep costs: AWS calls per image and images
// swept per second. The sweep rate is set high so that moto, not the
// limiter, sets the pace; at the default rate of 10 calls/s the time is
// calls/10 s.
func BenchmarkSweep(b *testing.B) {
	const n = 1000
	w := world.New(b, `{"allowedAccounts":["111122223333","444455556666"],"sweepRate":1000}`)
	ctx := w.Ctx
	w.Images(b, "bench", n, map[string]string{amitag.Accounts: "111122223333 444455556666"})
	calls := w.Calls
	h := w.Handler(b, app.Options{})
	if s, err := h.Sweep(ctx); err != nil || s.DriftRepaired != n { // share them all once
		b.Fatalf("first sweep: %+v, %v", s, err)
	}
	calls.Reset()
	var swept int
	start := time.Now()
	b.ResetTimer()
	for b.Loop() {
		s, err := h.Sweep(ctx)
		if err != nil || s.ImagesChecked != n || s.DriftRepaired != 0 {
			b.Fatalf("sweep: %+v, %v", s, err)
		}
		swept += s.ImagesChecked
	}
	b.StopTimer()
	if m := calls.Mutating(); len(m) != 0 {
		b.Fatalf("in-sync sweeps made modifying calls: %v", m[:min(len(m), 5)])
	}
	b.ReportMetric(float64(len(calls.Calls()))/float64(swept), "calls/image")
	b.ReportMetric(float64(swept)/time.Since(start).Seconds(), "images/s")
}
