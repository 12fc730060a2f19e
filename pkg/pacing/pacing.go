// Package pacing spaces AWS calls: a sweep's calls wait for its Limiter,
// through a Pacer installed on every SDK client by the composition root
// (pkg/app), so that whatever client the engine uses, a sweep's calls are
// paced. Calls without a limiter in their context (a single event's) pass at
// once.
package pacing

import (
	"cmp"
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/aws/smithy-go/middleware"
	"golang.org/x/time/rate"
)

// slack stretches the limiter's interval a little beyond 1/sweepRate: the
// limiter spaces calls evenly, so sweepRate+1 calls span at least 1.05 s and
// no one-second window can hold more than sweepRate of them, even when the
// network delivers two calls a few milliseconds closer than they were sent.
const slack = 1.05

// Limiter paces every AWS call of one sweep. A token bucket of burst 1
// (golang.org/x/time/rate) spaces the calls evenly instead of letting a
// burst through at the start of each second.
type Limiter struct {
	lim   *rate.Limiter
	calls atomic.Int64
	last  atomic.Int64 // when the last call was let through, in Unix nanoseconds
}

// NewLimiter returns a limiter allowing at most perSecond calls in any one-second window.
func NewLimiter(perSecond int) *Limiter {
	return &Limiter{lim: rate.NewLimiter(limit(perSecond), 1)}
}

// SetRate changes the rate (the sweep reads it from the configuration,
// with the first call made at the default rate). The new rate counts from
// the last call let through: the next call waits a full new interval after
// it. (Changed now, the bucket would keep what it gathered at the old rate
// since that call, and let the next one through sooner: after a
// configuration read at 10/s, a second call 120 ms later at a sweepRate of
// 5, and a one-second window with 6 calls.)
func (l *Limiter) SetRate(perSecond int) {
	at := time.Now()
	if last := l.last.Load(); last != 0 {
		at = time.Unix(0, last)
	}
	l.lim.SetLimitAt(at, limit(perSecond))
}

// Calls returns how many calls (attempts, retries included) the limiter let through.
func (l *Limiter) Calls() int { return int(l.calls.Load()) }

func limit(perSecond int) rate.Limit {
	if perSecond < 1 {
		perSecond = 1
	}
	return rate.Limit(float64(perSecond) / slack)
}

type limiterKey struct{}

// WithLimiter returns a context whose AWS calls wait for l (through Pacer.APIOption).
func WithLimiter(ctx context.Context, l *Limiter) context.Context {
	return context.WithValue(ctx, limiterKey{}, l)
}

// Pacer is the pacing middleware of one process's AWS clients (APIOption).
// A call whose context carries a sweep's Limiter waits for it; any other
// call (a single event's, the Lambda's start-up reads) passes at once and
// is noted, so that a sweep starting right after lets it out of its first
// one-second window (Quiet). Build one per process; the zero value is ready.
type Pacer struct {
	lastUnpaced atomic.Int64 // when the last unpaced call ended, in Unix nanoseconds
}

// APIOption installs the pacing on an SDK client's middleware stack. It sits
// in the finalize step after the retry middleware, so each attempt is paced
// and counted, retries included.
func (p *Pacer) APIOption(stack *middleware.Stack) error {
	return stack.Finalize.Add(middleware.FinalizeMiddlewareFunc("amisharePacing",
		func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
			l, ok := ctx.Value(limiterKey{}).(*Limiter)
			if !ok {
				defer func() { p.lastUnpaced.Store(time.Now().UnixNano()) }()
				return next.HandleFinalize(ctx, in)
			}
			if err := l.lim.Wait(ctx); err != nil {
				// The limiter refuses at once a wait that would end after
				// ctx's deadline: that is the deadline too.
				return middleware.FinalizeOutput{}, middleware.Metadata{}, fmt.Errorf("waiting for the sweep's rate limit: %w", cmp.Or(ctx.Err(), error(context.DeadlineExceeded)))
			}
			l.calls.Add(1)
			l.last.Store(time.Now().UnixNano())
			return next.HandleFinalize(ctx, in)
		}), middleware.After)
}

// Quiet waits until a second has passed since the last unpaced call, so
// that no one-second window holds those calls and a sweep's. A nil Pacer
// has seen no call.
func (p *Pacer) Quiet(ctx context.Context) error {
	if p == nil {
		return nil
	}
	last := p.lastUnpaced.Load()
	d := time.Until(time.Unix(0, last).Add(time.Second))
	if last == 0 || d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
