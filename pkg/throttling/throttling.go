// Package throttling counts the AWS calls AWS throttled (EC2's
// RequestLimitExceeded, KMS's ThrottlingException, ...), per invocation,
// through a middleware the composition root (pkg/app) installs on every SDK
// client. The count is the Throttled metric: many throttled calls and no
// error is a burst the retries absorbed; errors are a fault.
package throttling

import (
	"context"
	"sync/atomic"

	"github.com/aws/smithy-go/middleware"

	"github.com/amishare/amishare/pkg/awserr"
)

// Counter counts the throttled attempts of the calls made with a context
// that carries it (WithCounter). The zero value is ready; it is safe for
// concurrent use.
type Counter struct {
	n atomic.Int64
}

// Count returns how many attempts AWS answered with throttling so far.
func (c *Counter) Count() int {
	if c == nil {
		return 0
	}
	return int(c.n.Load())
}

type counterKey struct{}

// WithCounter returns a context whose AWS calls' throttled attempts c counts
// (through APIOption). It replaces any counter ctx already carries: a sweep
// counts its own calls.
func WithCounter(ctx context.Context, c *Counter) context.Context {
	return context.WithValue(ctx, counterKey{}, c)
}

// APIOption installs the counting on an SDK client's middleware stack. It
// sits in the finalize step after the retry middleware, so each attempt is
// seen: a call throttled twice and then answered counts 2.
func APIOption(stack *middleware.Stack) error {
	return stack.Finalize.Add(middleware.FinalizeMiddlewareFunc("amishareThrottling",
		func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
			out, md, err := next.HandleFinalize(ctx, in)
			if err != nil && awserr.IsThrottle(err) {
				if c, ok := ctx.Value(counterKey{}).(*Counter); ok {
					c.n.Add(1)
				}
			}
			return out, md, err
		}), middleware.After)
}
