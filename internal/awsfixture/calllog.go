package awsfixture

import (
	"context"
	"strings"
	"sync"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go/middleware"
)

// CallLog records the AWS API operations a client makes, once per call
// (retries are not counted twice): API calls are amishare's real cost.
type CallLog struct {
	mu    sync.Mutex
	calls []string
}

// APIOption installs the recorder on a client's middleware stack
// (append it to the client's Options.APIOptions).
func (l *CallLog) APIOption(stack *middleware.Stack) error {
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("amishareCallLog",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (out middleware.InitializeOutput, metadata middleware.Metadata, err error) {
			l.mu.Lock()
			l.calls = append(l.calls, awsmiddleware.GetOperationName(ctx))
			l.mu.Unlock()
			return next.HandleInitialize(ctx, in)
		}), middleware.Before)
}

// Calls returns the operations recorded since the last Reset, in order.
func (l *CallLog) Calls() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.calls...)
}

// Reset forgets the calls recorded so far.
func (l *CallLog) Reset() {
	l.mu.Lock()
	l.calls = nil
	l.mu.Unlock()
}

// Count returns how many calls of op were recorded.
func (l *CallLog) Count(op string) int {
	n := 0
	for _, c := range l.Calls() {
		if c == op {
			n++
		}
	}
	return n
}

// Mutating returns the recorded calls that change something (not Describe, Get or List).
func (l *CallLog) Mutating() []string {
	var out []string
	for _, c := range l.Calls() {
		if !strings.HasPrefix(c, "Describe") && !strings.HasPrefix(c, "Get") && !strings.HasPrefix(c, "List") {
			out = append(out, c)
		}
	}
	return out
}
