package awsfixture

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go/middleware"
)

// CallsDirEnv names the environment variable of a directory where every
// CallLog also appends each call it sees, with its service and input, one
// JSON object per line (a file per test process). `make test` sets it and
// then checks that the function's role allows every call the suite made
// (internal/stack TestRecordedCallsAllowed), so a new AWS call without its
// IAM permission fails in CI, not in production.
const CallsDirEnv = "AMISHARE_CALLS_DIR"

// RecordedCall is one line of the files under CallsDirEnv.
type RecordedCall struct {
	Service   string          `json:"service"` // the SDK's service id: EC2, KMS, SSM, ...
	Operation string          `json:"operation"`
	Region    string          `json:"region,omitempty"` // the region the call was sent to
	Input     json.RawMessage `json:"input"`
}

var recording struct {
	once sync.Once
	mu   sync.Mutex
	f    *os.File
	err  error
}

// record appends one call to this process's file under CallsDirEnv, when set.
// A failure to record panics: a silently incomplete record would let the
// permission check pass for calls it never saw.
func record(service, operation, region string, input any) {
	dir := os.Getenv(CallsDirEnv)
	if dir == "" {
		return
	}
	recording.once.Do(func() {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			recording.err = err
			return
		}
		recording.f, recording.err = os.OpenFile(filepath.Join(dir, fmt.Sprintf("calls-%d.jsonl", os.Getpid())),
			os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	})
	if recording.err != nil {
		panic(fmt.Sprintf("awsfixture: recording calls in %s: %v", dir, recording.err))
	}
	in, err := json.Marshal(input)
	if err != nil {
		in = []byte("null")
	}
	line, _ := json.Marshal(RecordedCall{Service: service, Operation: operation, Region: region, Input: in})
	recording.mu.Lock()
	defer recording.mu.Unlock()
	if _, err := recording.f.Write(append(line, '\n')); err != nil {
		panic(fmt.Sprintf("awsfixture: recording calls in %s: %v", dir, err))
	}
}

// CallLog records the AWS API operations a client makes, once per call
// (retries are not counted twice): API calls are amishare's real cost. Only
// amishare's own clients carry it (never the fixture's), so with CallsDirEnv
// set it also records exactly the calls the function's role must allow.
type CallLog struct {
	mu    sync.Mutex
	calls []string
}

// APIOption installs the recorder on a client's middleware stack
// (append it to the client's Options.APIOptions).
func (l *CallLog) APIOption(stack *middleware.Stack) error {
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("amishareCallLog",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (out middleware.InitializeOutput, metadata middleware.Metadata, err error) {
			op := awsmiddleware.GetOperationName(ctx)
			l.mu.Lock()
			l.calls = append(l.calls, op)
			l.mu.Unlock()
			record(awsmiddleware.GetServiceID(ctx), op, awsmiddleware.GetRegion(ctx), in.Parameters)
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
