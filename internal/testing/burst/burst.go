// Package burst is test tooling: a fleet tagged at once. It seeds images in
// the world (moto), puts a token-bucket throttle in front of moto as EC2's
// per-account buckets are (internal/testing/throttle), and delivers one Tag
// Change event per image at once to Lambda as the stack configures it,
// modelled:
//
//   - at most the template's reserved concurrency of invocations run at once
//     (every event at once when none is reserved); the others wait in
//     Lambda's asynchronous queue, first in, first out, as throttled events
//     do (Lambda's own retry intervals, 1 s growing to 5 minutes, are left
//     out: the model is optimistic about Lambda, not about amishare);
//   - each invocation has the template's timeout as its deadline;
//   - each container builds its app once, as functions/amishare's main does
//     (cold start: the block public access states read), and handles one
//     event at a time;
//   - a failed invocation is counted, not retried (Lambda would retry it a
//     minute later: the thing a burst must not cause).
//
// Then it reads, from the owner's side, which images ended fully shared.
package burst

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/smithy-go/middleware"

	"github.com/amishare/amishare/internal/testing/fixture"
	"github.com/amishare/amishare/internal/testing/stack"
	"github.com/amishare/amishare/internal/testing/throttle"
	"github.com/amishare/amishare/internal/testing/world"
	"github.com/amishare/amishare/pkg/amitag"
	"github.com/amishare/amishare/pkg/app"
)

// The accounts every image of a burst is tagged with.
var Accounts = []string{"111122223333", "444455556666"}

// Config is the configuration document of a burst's world.
const Config = `{"allowedAccounts":["111122223333","444455556666"]}`

// Options of one burst.
type Options struct {
	// Events is how many images are tagged at once, one event each.
	Events int
	// Bucket is EC2's bucket of each mutating action.
	Bucket throttle.Bucket
	// Limits are Lambda's; zero means the template's (TemplateLimits).
	Limits stack.Limits
	// App tunes each container's app (tests shorten the SDK's backoff);
	// the zero value is the Lambda's.
	App app.Options
}

// Report is what one burst did.
type Report struct {
	Events int
	Limits stack.Limits
	// Failed counts invocations that returned an error (Lambda would count
	// them in Errors, log them, and retry).
	Failed int
	// Errors holds the first few invocation errors.
	Errors []string
	// Shared counts the images shared with exactly Accounts, image and
	// snapshot, from the owner's side.
	Shared int
	// Elapsed is from the delivery to the last invocation's end; Bound is
	// the least time EC2's buckets let the mutating calls made through
	// (throttle.Proxy.BoundTime).
	Elapsed, Bound time.Duration
	// Throttled counts the requests the buckets answered RequestLimitExceeded.
	Throttled int
	// Calls counts the AWS calls amishare made (each retried call once).
	Calls int
	// Containers counts the containers (apps) the invocations needed.
	Containers int
}

// TemplateLimits are the function's reserved concurrency and timeout as
// template.yaml's defaults set them.
func TemplateLimits(tb testing.TB) stack.Limits {
	tb.Helper()
	t, err := stack.Translate(stack.TemplatePath())
	if err != nil {
		tb.Fatal(err)
	}
	res, err := t.Resolve(nil)
	if err != nil {
		tb.Fatal(err)
	}
	l, err := stack.FunctionLimits(res, "AmishareFunction")
	if err != nil {
		tb.Fatal(err)
	}
	return l
}

// Run seeds the images of one burst in a new world, delivers their events at
// once and reports. The images are tagged amishare:accounts before the
// events are delivered, as a script tagging the fleet leaves them.
func Run(tb testing.TB, o Options) Report {
	tb.Helper()
	if o.Limits == (stack.Limits{}) {
		o.Limits = TemplateLimits(tb)
	}
	w := world.New(tb, Config)
	ids, snaps := w.Images(tb, "burst", o.Events, map[string]string{amitag.Accounts: Accounts[0] + " " + Accounts[1]})
	events := make([][]byte, len(ids))
	for i, id := range ids {
		events[i] = world.SampleEvent(tb, "tag-change.json", id)
	}

	proxy, err := throttle.Start(w.Server.Endpoint, o.Bucket, throttle.Mutating)
	if err != nil {
		tb.Fatal(err)
	}
	defer proxy.Close()
	// The apps reach moto through the buckets (the world's fixture, which
	// seeds and checks, does not).
	tb.Setenv("AWS_ENDPOINT_URL", proxy.Endpoint)

	var calls fixture.CallLog
	newApp := func() (*app.App, error) {
		opts := o.App
		if opts.Log == nil {
			opts.Log = slog.New(slog.NewJSONHandler(io.Discard, nil))
		}
		opts.ReportBlockPublicAccess = true
		opts.APIOptions = append([]func(*middleware.Stack) error{calls.APIOption}, opts.APIOptions...)
		return app.New(w.Ctx, opts)
	}
	r := Report{Events: o.Events, Limits: o.Limits}
	r.Failed, r.Errors, r.Containers, r.Elapsed = Deliver(w.Ctx, o.Limits, newApp, events)
	r.Bound, r.Throttled, r.Calls = proxy.BoundTime(), proxy.Throttled(), len(calls.Calls())
	for i, id := range ids {
		img, snap := w.ImagePerms(tb, id), w.SnapshotPerms(tb, snaps[i])
		if slices.Equal(img.Accounts, Accounts) && slices.Equal(snap.Accounts, Accounts) && !img.Public && !snap.Public {
			r.Shared++
		}
	}
	return r
}

// Deliver hands every event at once to Lambda as limits model it and
// returns the failed invocations, the first few errors, the containers
// started and the time until the last invocation ended.
func Deliver(ctx context.Context, limits stack.Limits, newApp func() (*app.App, error), events [][]byte) (failed int, errs []string, containers int, elapsed time.Duration) {
	queue := make(chan []byte, len(events)) // Lambda's asynchronous queue
	for _, e := range events {
		queue <- e
	}
	close(queue)
	concurrency := limits.Concurrency
	if concurrency == 0 {
		concurrency = len(events) // nothing reserved: every event at once
	}
	var mu sync.Mutex
	var nFailed atomic.Int64
	fail := func(err error) {
		nFailed.Add(1)
		mu.Lock()
		defer mu.Unlock()
		if len(errs) < 5 {
			errs = append(errs, err.Error())
		}
	}
	start := time.Now()
	var wg sync.WaitGroup
	var started atomic.Int64
	for range min(concurrency, len(events)) {
		wg.Go(func() {
			var a *app.App // the container, started by its first event
			for payload := range queue {
				if a == nil {
					var err error
					if a, err = newApp(); err != nil {
						fail(fmt.Errorf("container start: %w", err))
						continue
					}
					started.Add(1)
				}
				ictx, cancel := context.WithTimeout(ctx, limits.Timeout)
				_, err := a.Handler.Invoke(ictx, payload)
				cancel()
				if err != nil {
					fail(err)
				}
			}
		})
	}
	wg.Wait()
	return int(nFailed.Load()), errs, int(started.Load()), time.Since(start)
}
