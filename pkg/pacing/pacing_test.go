package pacing

import (
	"testing"
	"time"
)

// TestLimiterSpacing: the limiter lets calls through evenly, 1.05/sweepRate
// apart, on a clock the test holds: never more than sweepRate in any
// one-second window, and not much slower than sweepRate either.
func TestLimiterSpacing(t *testing.T) {
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

// TestLimiterSetRate: a rate read from the configuration after the first
// call applies to the calls that follow; a rate below 1 means 1.
func TestLimiterSetRate(t *testing.T) {
	l := NewLimiter(1000)
	start := time.Now() // SetRate reads the clock
	l.lim.AllowN(start, 1)
	l.SetRate(2)
	now := time.Now()
	r := l.lim.ReserveN(now, 1)
	// The bucket refilled at the old rate between the first call and
	// SetRate, for however long that took here.
	want := time.Duration(float64(time.Second) * slack / 2)
	early := time.Duration(float64(now.Sub(start)) * 1000 / slack * float64(want) / float64(time.Second))
	if got := r.DelayFrom(now); got > want || got < want-early-time.Millisecond {
		t.Errorf("after SetRate(2): next call waits %s, want %s (less at most %s)", got, want, early)
	}
	if got := limit(0); got != limit(1) {
		t.Errorf("limit(0) = %v, want limit(1) = %v", got, limit(1))
	}
}
