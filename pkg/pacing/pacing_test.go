package pacing

import (
	"testing"
	"time"
)

// TestSetRateWaitsANewInterval: after a call at the default rate, a lower
// rate set shortly after (the sweep's configuration read, then its
// sweepRate) makes the next call wait the new interval after the last call,
// not what was left of the old one. Times are given, not measured.
func TestSetRateWaitsANewInterval(t *testing.T) {
	for _, c := range []struct {
		name     string
		from, to int
		after    time.Duration // between the call and SetRate
	}{
		{"lower, soon after", 10, 5, 120 * time.Millisecond},
		{"lower, at once", 10, 5, 0},
		{"lower, long after", 10, 5, 3 * time.Second},
		{"much lower", 1000, 1, 50 * time.Millisecond},
		{"higher", 10, 1000, 20 * time.Millisecond},
	} {
		t.Run(c.name, func(t *testing.T) {
			l := NewLimiter(c.from)
			t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			if r := l.lim.ReserveN(t0, 1); r.DelayFrom(t0) != 0 { // the configuration read
				t.Fatalf("first call delayed %s", r.DelayFrom(t0))
			}
			set := t0.Add(c.after)
			l.setRateAt(set, c.to)
			next := l.lim.ReserveN(set, 1)
			at := set.Add(next.DelayFrom(set))
			interval := time.Duration(float64(time.Second) * slack / float64(c.to))
			if gap := at.Sub(t0); gap < interval {
				t.Errorf("next call %s after the last, want at least the new interval %s", gap, interval)
			}
			if wait := at.Sub(set); wait > 2*interval+time.Millisecond {
				t.Errorf("next call waits %s after SetRate, want at most two new intervals (%s)", wait, 2*interval)
			}
		})
	}
}
