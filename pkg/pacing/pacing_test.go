package pacing

import (
	"testing"
	"time"
)

// TestSetRateCountsFromTheLastCall: after a call at the default rate, a
// lower rate set shortly after (the sweep's configuration read, then its
// sweepRate) makes the next call wait the new interval after that call, not
// what was left of the old one. Times are given, not measured.
func TestSetRateCountsFromTheLastCall(t *testing.T) {
	for _, c := range []struct {
		name     string
		from, to int
		after    time.Duration // when the next call asks, after the last
	}{
		{"lower, soon after", 10, 5, 120 * time.Millisecond},
		{"lower, at once", 10, 5, 0},
		{"lower, long after", 10, 5, 3 * time.Second},
		{"much lower", 1000, 1, 50 * time.Millisecond},
		{"higher", 10, 1000, 20 * time.Millisecond},
	} {
		t.Run(c.name, func(t *testing.T) {
			l := NewLimiter(c.from)
			t0 := time.Now().Add(-time.Hour) // SetRate reads the clock: the test's times are in the past
			if r := l.lim.ReserveN(t0, 1); r.DelayFrom(t0) != 0 {
				t.Fatalf("first call delayed %s", r.DelayFrom(t0))
			}
			l.last.Store(t0.UnixNano()) // as the middleware notes the call it let through
			l.SetRate(c.to)
			set := t0.Add(c.after)
			next := l.lim.ReserveN(set, 1)
			at := set.Add(next.DelayFrom(set))
			interval := time.Duration(float64(time.Second) * slack / float64(c.to))
			if gap := at.Sub(t0); gap < interval-time.Microsecond || gap > max(interval, c.after)+time.Microsecond {
				t.Errorf("next call %s after the last, want the new interval %s (or at once, when that has passed)", gap, interval)
			}
		})
	}
}

// TestLimiterSpacing: the limiter lets calls through evenly, 1.05/sweepRate
// apart, on a clock the test holds: never more than sweepRate in any
// one-second window, and not much slower than sweepRate either.
func TestLimiterSpacing(t *testing.T) {
	if got := limit(0); got != limit(1) {
		t.Errorf("limit(0) = %v, want limit(1) = %v", got, limit(1))
	}
	for _, perSecond := range []int{1, 5, 20, 1000} {
		l := NewLimiter(perSecond)
		start := time.Unix(1_700_000_000, 0)
		l.lim.AllowN(start, 1) // the first call passes at once
		var at []time.Time
		at = append(at, start)
		for range 3 * perSecond {
			r := l.lim.ReserveN(start, 1)
			if !r.OK() {
				t.Fatalf("rate %d: reservation refused", perSecond)
			}
			at = append(at, start.Add(r.DelayFrom(start)))
		}
		want := time.Duration(float64(time.Second) * slack / float64(perSecond))
		for i := 1; i < len(at); i++ {
			if gap := at[i].Sub(at[i-1]); gap < want-time.Microsecond || gap > want+time.Microsecond {
				t.Fatalf("rate %d: call %d came %s after the one before, want %s", perSecond, i, gap, want)
			}
		}
		for i := perSecond; i < len(at); i++ {
			if window := at[i].Sub(at[i-perSecond]); window <= time.Second {
				t.Fatalf("rate %d: calls %d..%d fall within %s, want more than one second", perSecond, i-perSecond, i, window)
			}
		}
	}
}
