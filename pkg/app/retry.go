package app

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/smithy-go/middleware"

	"github.com/amishare/amishare/pkg/awserr"
)

// MaxAttempts is how often the SDK tries one call that fails with a
// retryable error other than throttling: a 5xx, a timeout, a dropped
// connection. Throttling has no attempt count (see newRetryer).
const MaxAttempts = 8

// CallBudget bounds what one call whose context has no deadline (the
// CLI's) may spend retrying throttling. An invocation's calls are bounded by
// its deadline instead.
const CallBudget = 5 * time.Minute

// newRetryer returns the retryer of one SDK client. It is the SDK's
// adaptive mode (after a throttle the client slows its own attempts down),
// with two changes for bursts, when hundreds of invocations share EC2's
// per-account token buckets:
//
//   - throttling is retried for as long as the call's context allows, not a
//     fixed number of times: what one call may wait in total is bounded by
//     the invocation's deadline (or CallBudget). Other retryable errors are
//     tried maxAttempts times.
//   - no retry quota (ratelimit.None). The SDK's default quota, 500 tokens
//     per client of which a throttled retry costs 5, lets a client retry
//     about 100 throttled attempts without a success in between; after
//     that every retryable error fails at once ("retry quota exceeded"),
//     which in a burst is exactly when retrying is needed. The adaptive
//     rate limit and the backoff (capped at maxBackoff, the SDK's 20 s when
//     0) pace the retries instead.
func newRetryer(maxAttempts int, maxBackoff time.Duration) aws.Retryer {
	adaptive := retry.NewAdaptiveMode(func(o *retry.AdaptiveModeOptions) {
		o.StandardOptions = append(o.StandardOptions, func(so *retry.StandardOptions) {
			so.RateLimiter = ratelimit.None
			if maxBackoff > 0 {
				so.MaxBackoff = maxBackoff
			}
		})
	})
	return &budgetRetryer{RetryerV2: adaptive, maxAttempts: maxAttempts}
}

// budgetRetryer retries throttling without an attempt count and everything
// else retryable maxAttempts times.
type budgetRetryer struct {
	aws.RetryerV2
	maxAttempts int
}

// MaxAttempts is 0, no count: RetryDelay ends the retries of errors other
// than throttling, the context those of throttling.
func (r *budgetRetryer) MaxAttempts() int { return 0 }

// RetryDelay is the adaptive retryer's delay, or, for an error other than
// throttling that has had its maxAttempts, the end of the retries: a
// *retry.MaxAttemptsError wrapping it, as the SDK's own count would give.
func (r *budgetRetryer) RetryDelay(attempt int, err error) (time.Duration, error) {
	if !awserr.IsThrottle(err) && attempt >= r.maxAttempts {
		return 0, &retry.MaxAttemptsError{Attempt: attempt, Err: err}
	}
	return r.RetryerV2.RetryDelay(attempt, err)
}

// callBudget gives a call whose context has no deadline one, CallBudget
// away, so that its throttling retries end. It runs first, in the
// initialize step, before the retries.
func callBudget(stack *middleware.Stack) error {
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("amishareCallBudget",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			if _, ok := ctx.Deadline(); !ok {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, CallBudget)
				defer cancel()
			}
			return next.HandleInitialize(ctx, in)
		}), middleware.Before)
}
