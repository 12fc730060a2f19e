package main

import (
	"fmt"
	"testing"
	"time"

	"github.com/amishare/amishare/internal/testing/burst"
	"github.com/amishare/amishare/internal/testing/throttle"
	"github.com/amishare/amishare/pkg/app"
)

// ec2Bucket is the throttle of issue 17: 200 tokens per mutating EC2 action,
// refilled at 5 per second, answering RequestLimitExceeded as EC2 does.
var ec2Bucket = throttle.Bucket{Capacity: 200, Refill: 5}

// BenchmarkBurst tags a fleet at once: N images, one Tag Change event
// each, delivered at once to Lambda as template.yaml configures it
// (reserved concurrency, timeout; see internal/testing/burst) against moto
// behind EC2-like token buckets. It reports failed invocations, images
// shared, the time from the delivery to the last invocation's end (s)
// against the least time the buckets allow (bound-s) and issue 17's budget
// of three times that plus a minute (budget-s), the throttled requests and
// amishare's AWS calls per event. `make bench` runs it once per size.
func BenchmarkBurst(b *testing.B) {
	limits := burst.TemplateLimits(b)
	for _, n := range []int{100, 300, 1000} {
		b.Run(fmt.Sprintf("events=%d", n), func(b *testing.B) {
			var total burst.Report
			for range b.N {
				r := burst.Run(b, burst.Options{Events: n, Bucket: ec2Bucket, Limits: limits})
				b.Logf("%d events, concurrency %d, timeout %s: %d failed invocations %v, %d of %d shared, %.0f s (bound %.0f s), %d throttled, %d calls, %d containers",
					n, limits.Concurrency, limits.Timeout, r.Failed, r.Errors, r.Shared, n, r.Elapsed.Seconds(), r.Bound.Seconds(), r.Throttled, r.Calls, r.Containers)
				if r.Failed > 0 || r.Shared != n {
					b.Errorf("%d failed invocations and %d of %d images shared; want none failed, all shared", r.Failed, r.Shared, n)
				}
				total.Failed += r.Failed
				total.Shared += r.Shared
				total.Elapsed += r.Elapsed
				total.Bound += r.Bound
				total.Throttled += r.Throttled
				total.Calls += r.Calls
			}
			runs := float64(b.N)
			b.ReportMetric(float64(total.Failed)/runs, "failed")
			b.ReportMetric(float64(total.Shared)/runs, "shared")
			b.ReportMetric(total.Elapsed.Seconds()/runs, "s")
			b.ReportMetric(total.Bound.Seconds()/runs, "bound-s")
			b.ReportMetric(3*total.Bound.Seconds()/runs+60, "budget-s")
			b.ReportMetric(float64(total.Throttled)/runs, "throttled")
			b.ReportMetric(float64(total.Calls)/runs/float64(n), "calls/event")
		})
	}
}

// TestBurstHarness is a small run of BenchmarkBurst's harness, to keep it
// working: 30 images at once behind buckets of 10 (so that EC2 throttles),
// under the template's concurrency and timeout. Every invocation succeeds
// and every image ends shared; how long it takes is the benchmark's
// business, not this test's.
func TestBurstHarness(t *testing.T) {
	const n = 30
	r := burst.Run(t, burst.Options{Events: n, Bucket: throttle.Bucket{Capacity: 10, Refill: 5},
		App: app.Options{MaxBackoff: time.Second}})
	if r.Failed != 0 || r.Shared != n {
		t.Errorf("%d failed invocations %v, %d of %d images shared; want none failed, all shared", r.Failed, r.Errors, r.Shared, n)
	}
	if r.Throttled == 0 {
		t.Errorf("no request throttled: buckets of 10 should throttle %d images' calls", n)
	}
	if r.Containers > r.Limits.Concurrency {
		t.Errorf("%d containers, want at most the reserved concurrency %d", r.Containers, r.Limits.Concurrency)
	}
}
