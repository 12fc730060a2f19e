package sweep_test

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/smithy-go/middleware"

	"github.com/amishare/amishare/internal/testing/faultinject"
	"github.com/amishare/amishare/internal/testing/fixture"
	"github.com/amishare/amishare/internal/testing/world"
	"github.com/amishare/amishare/pkg/amitag"
	"github.com/amishare/amishare/pkg/app"
	"github.com/amishare/amishare/pkg/event"
	"github.com/amishare/amishare/pkg/handler"
	"github.com/amishare/amishare/pkg/sweep"
)

// leaseWorld is a world with the stack's sweep queue and lease table, and
// managed images to sweep.
type leaseWorld struct {
	*world.World
	queueURL, table string
	ids             []string
	q               *sqs.Client
	ddb             *dynamodb.Client
}

func newLeaseWorld(t *testing.T, rate, images int) *leaseWorld {
	t.Helper()
	w := world.New(t, strings.Replace(fastConfig, `"sweepRate":1000`, `"sweepRate":`+strconv.Itoa(rate), 1))
	lw := &leaseWorld{World: w, queueURL: w.SweepQueue(t), table: w.SweepLease(t), q: sqs.NewFromConfig(w.AWS), ddb: dynamodb.NewFromConfig(w.AWS)}
	lw.ids, _ = w.Images(t, "lease", images, map[string]string{amitag.Accounts: acctA})
	return lw
}

// handler is one container's handler; margin > 0 gives its sweeps a tiny
// time budget (invoke passes the deadline).
func (lw *leaseWorld) handler(t *testing.T, opts app.Options) *handler.Handler {
	t.Helper()
	opts.SweepQueueURL, opts.SweepLeaseTable = lw.queueURL, lw.table
	return lw.Handler(t, opts)
}

// invoke delivers raw to h, with a deadline d from now when d > 0.
func invoke(t *testing.T, h *handler.Handler, raw []byte, d time.Duration) (handler.Summary, error) {
	t.Helper()
	ctx := context.Background()
	if d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	return h.Handle(ctx, raw)
}

func scheduled(t *testing.T) []byte {
	return world.SampleEvent(t, "scheduled-sweep.json", world.SampleImage)
}

// message takes the one continuation waiting in the queue (as the event
// source mapping does) and returns its body and receipt handle.
func (lw *leaseWorld) message(t *testing.T) (body string, receipt *string) {
	t.Helper()
	out, err := lw.q.ReceiveMessage(lw.Ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(lw.queueURL), MaxNumberOfMessages: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Messages) != 1 {
		t.Fatalf("continuations in the queue: got %d, want 1", len(out.Messages))
	}
	return aws.ToString(out.Messages[0].Body), out.Messages[0].ReceiptHandle
}

func (lw *leaseWorld) deleteMessage(t *testing.T, receipt *string) {
	t.Helper()
	if _, err := lw.q.DeleteMessage(lw.Ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(lw.queueURL), ReceiptHandle: receipt}); err != nil {
		t.Fatal(err)
	}
}

// lease returns the lease item's string attributes (nil when there is none).
func (lw *leaseWorld) lease(t *testing.T) map[string]string {
	t.Helper()
	out, err := lw.ddb.GetItem(lw.Ctx, &dynamodb.GetItemInput{TableName: aws.String(lw.table), ConsistentRead: aws.Bool(true),
		Key: map[string]ddbtypes.AttributeValue{sweep.LeaseKeyAttribute: &ddbtypes.AttributeValueMemberS{Value: sweep.LeaseKey}}})
	if err != nil {
		t.Fatal(err)
	}
	if out.Item == nil {
		return nil
	}
	m := map[string]string{}
	for k, v := range out.Item {
		switch v := v.(type) {
		case *ddbtypes.AttributeValueMemberS:
			m[k] = v.Value
		case *ddbtypes.AttributeValueMemberN:
			m[k] = v.Value
		}
	}
	return m
}

// ec2Calls counts the EC2 calls in calls (the lease's own calls are
// DynamoDB's).
func ec2Calls(calls []string) int {
	n := 0
	for _, c := range calls {
		if !strings.HasSuffix(c, "Item") {
			n++
		}
	}
	return n
}

func wantRefused(t *testing.T, what string, sum handler.Summary, err error, reason string) {
	t.Helper()
	if err != nil || len(sum.Sweeps) != 0 || !strings.Contains(sum.Ignored, reason) {
		t.Errorf("%s: got sweeps %+v, ignored %q, error %v; want it refused (%q), no error", what, sum.Sweeps, sum.Ignored, err, reason)
	}
}

// TestSweepOneAtATime: while a sweep is in progress (handed over to its
// continuation), the schedule's next event, in another container, starts
// no sweep; the continuation resumes it to the end; then a new sweep starts.
func TestSweepOneAtATime(t *testing.T) {
	lw := newLeaseWorld(t, 40, 6)
	const margin = time.Second
	first := lw.handler(t, app.Options{SweepMargin: margin, SweepWorkers: 1})
	sum, err := invoke(t, first, scheduled(t), margin+150*time.Millisecond)
	if err != nil || len(sum.Sweeps) != 1 || sum.Sweeps[0].Continuation == nil {
		t.Fatalf("first invocation: got %+v, %v; want a sweep handed over", sum, err)
	}
	sweepID, checked := sum.Sweeps[0].SweepID, sum.Sweeps[0].ImagesChecked
	if l := lw.lease(t); l["sweepId"] != sweepID || l["holder"] != "" || l["next"] != sum.Sweeps[0].Continuation.Body() {
		t.Errorf("lease after the hand-over: got %v, want sweep %s, no holder, its continuation next", l, sweepID)
	}

	other := lw.handler(t, app.Options{})
	lw.Calls.Reset()
	sum, err = invoke(t, other, scheduled(t), 0)
	wantRefused(t, "a scheduled sweep while one is in progress", sum, err, "sweep "+sweepID+" is in progress")
	if n := ec2Calls(lw.Calls.Calls()); n != 0 {
		t.Errorf("the refused sweep made %d EC2 calls, want none: %v", n, lw.Calls.Calls())
	}

	for range 20 {
		body, receipt := lw.message(t)
		sum, err := invoke(t, first, sqsRecord(body), margin+150*time.Millisecond)
		if err != nil || len(sum.Sweeps) != 1 || sum.Sweeps[0].SweepID != sweepID {
			t.Fatalf("continuation: got %+v, %v; want sweep %s resumed", sum, err, sweepID)
		}
		lw.deleteMessage(t, receipt)
		checked += sum.Sweeps[0].ImagesChecked
		if sum.Sweeps[0].Continuation == nil {
			break
		}
	}
	if checked != len(lw.ids) {
		t.Errorf("images checked over the continuations: got %d, want %d", checked, len(lw.ids))
	}
	if l := lw.lease(t); l != nil {
		t.Errorf("lease after the sweep is complete: got %v, want none", l)
	}
	sum, err = invoke(t, other, scheduled(t), 0)
	if err != nil || len(sum.Sweeps) != 1 || sum.Sweeps[0].ImagesChecked != len(lw.ids) || sum.Ignored != "" {
		t.Errorf("the next scheduled sweep: got %+v, %v; want it to run", sum, err)
	}
}

// TestSweepsStartedAtOnce: the scheduled event delivered to three
// containers at once (a forged or duplicated invocation) runs one sweep.
func TestSweepsStartedAtOnce(t *testing.T) {
	lw := newLeaseWorld(t, 5, 4)
	var wg sync.WaitGroup
	sums := make([]handler.Summary, 3)
	errs := make([]error, 3)
	hs := make([]*handler.Handler, 3)
	for i := range hs {
		hs[i] = lw.handler(t, app.Options{})
	}
	for i := range hs {
		wg.Go(func() { sums[i], errs[i] = invoke(t, hs[i], scheduled(t), 0) })
	}
	wg.Wait()
	ran, refused := 0, 0
	for i := range sums {
		if errs[i] != nil {
			t.Errorf("container %d: %v", i, errs[i])
		}
		switch {
		case len(sums[i].Sweeps) == 1 && sums[i].Sweeps[0].ImagesChecked == len(lw.ids):
			ran++
		case strings.Contains(sums[i].Ignored, "is in progress"):
			refused++
		}
	}
	if ran != 1 || refused != 2 {
		t.Errorf("got %d sweeps run and %d refused, want 1 and 2: %+v", ran, refused, sums)
	}
}

// TestForgedContinuations: a continuation is accepted only for the sweep in
// progress, only as the very continuation it handed over, and only while no
// invocation runs it; anything else is refused before any EC2 call.
func TestForgedContinuations(t *testing.T) {
	lw := newLeaseWorld(t, 40, 6)
	const margin = time.Second
	h := lw.handler(t, app.Options{SweepMargin: margin, SweepWorkers: 1})
	forged := func(id, after string) string {
		return sweep.Cursor{SweepID: id, Phase: sweep.PhaseImages, After: after}.Body()
	}
	// The forged deliveries' own calls (another sweep may run meanwhile).
	var calls fixture.CallLog
	receiver := lw.handler(t, app.Options{APIOptions: []func(*middleware.Stack) error{calls.APIOption}})
	deliver := func(what, body, reason string) {
		t.Helper()
		calls.Reset()
		sum, err := invoke(t, receiver, sqsRecord(body), 0)
		wantRefused(t, what, sum, err, reason)
		if n := ec2Calls(calls.Calls()); n != 0 {
			t.Errorf("%s: %d EC2 calls, want none: %v", what, n, calls.Calls())
		}
	}

	deliver("a made-up sweep, none in progress", forged("A1B2C3D4E5F6G7H8", ""), "no sweep is in progress")
	sum, err := invoke(t, h, scheduled(t), margin+150*time.Millisecond)
	if err != nil || len(sum.Sweeps) != 1 || sum.Sweeps[0].Continuation == nil {
		t.Fatalf("scheduled invocation: got %+v, %v; want a sweep handed over", sum, err)
	}
	s := sum.Sweeps[0]
	deliver("a made-up sweep", forged("A1B2C3D4E5F6G7H8", ""), "the sweep in progress is "+s.SweepID)
	deliver("the sweep in progress, from the start", forged(s.SweepID, ""), "not the continuation sweep "+s.SweepID+" handed over")
	other := *s.Continuation
	for _, id := range lw.ids {
		if id != other.After {
			other.After = id // another image than the sweep handed over at
			break
		}
	}
	deliver("the sweep in progress, elsewhere", other.Body(), "not the continuation sweep "+s.SweepID+" handed over")

	// The real continuation, delivered twice: the second arrives while the
	// first runs (the lease shows a holder), and once it handed over.
	body, receipt := lw.message(t)
	slow := lw.handler(t, app.Options{SweepMargin: 3 * margin, SweepWorkers: 1})
	lw.PutConfig(t, strings.Replace(fastConfig, `"sweepRate":1000`, `"sweepRate":4`, 1))
	var wg sync.WaitGroup
	var resumed handler.Summary
	var resumeErr error
	wg.Go(func() { resumed, resumeErr = invoke(t, slow, sqsRecord(body), 4*margin) })
	for deadline := time.Now().Add(10 * time.Second); lw.lease(t)["holder"] == ""; {
		if time.Now().After(deadline) {
			t.Fatal("the continuation never took the lease")
		}
		time.Sleep(20 * time.Millisecond)
	}
	deliver("the continuation while it runs", body, "running in another invocation")
	wg.Wait()
	if resumeErr != nil || len(resumed.Sweeps) != 1 || resumed.Sweeps[0].SweepID != s.SweepID {
		t.Fatalf("the continuation: got %+v, %v; want sweep %s resumed", resumed, resumeErr, s.SweepID)
	}
	lw.deleteMessage(t, receipt)
	if resumed.Sweeps[0].Continuation != nil {
		deliver("the continuation again, once handed over", body, "not the continuation sweep "+s.SweepID+" handed over")
	} else {
		deliver("the continuation again, once the sweep is done", body, "no sweep is in progress")
	}
}

// TestSweepLeaseOfADeadInvocation: a lease whose hold expired (its
// invocation timed out or crashed without releasing it) no longer stops a
// new sweep; one still held does.
func TestSweepLeaseOfADeadInvocation(t *testing.T) {
	lw := newLeaseWorld(t, 1000, 2)
	put := func(expires time.Time) {
		t.Helper()
		_, err := lw.ddb.PutItem(lw.Ctx, &dynamodb.PutItemInput{TableName: aws.String(lw.table), Item: map[string]ddbtypes.AttributeValue{
			sweep.LeaseKeyAttribute: &ddbtypes.AttributeValueMemberS{Value: sweep.LeaseKey},
			"sweepId":               &ddbtypes.AttributeValueMemberS{Value: "DEADDEADDEADDEAD"},
			"next":                  &ddbtypes.AttributeValueMemberS{Value: ""},
			"holder":                &ddbtypes.AttributeValueMemberS{Value: "gone"},
			"expires":               &ddbtypes.AttributeValueMemberN{Value: strconv.FormatInt(expires.UnixMilli(), 10)},
		}})
		if err != nil {
			t.Fatal(err)
		}
	}
	h := lw.handler(t, app.Options{})
	put(time.Now().Add(time.Minute))
	sum, err := invoke(t, h, scheduled(t), 0)
	wantRefused(t, "a sweep while a live one holds the lease", sum, err, "sweep DEADDEADDEADDEAD is in progress")
	put(time.Now().Add(-time.Second))
	sum, err = invoke(t, h, scheduled(t), 0)
	if err != nil || len(sum.Sweeps) != 1 || sum.Sweeps[0].ImagesChecked != len(lw.ids) {
		t.Errorf("a sweep after the lease expired: got %+v, %v; want it to run", sum, err)
	}
	if l := lw.lease(t); l != nil {
		t.Errorf("lease after the sweep: got %v, want none", l)
	}
}

// TestSweepLeaseAfterFailure: a sweep whose invocation fails does not keep
// the lease from what retries it: a new sweep's lease is deleted (the
// scheduled event's retry starts again); a resumed run hands it back to the
// continuation it ran, which SQS delivers again.
func TestSweepLeaseAfterFailure(t *testing.T) {
	lw := newLeaseWorld(t, 40, 6)
	const margin = time.Second
	broken := func() *handler.Handler {
		faults := faultinject.New(faultinject.Rule{Action: "GetParameter", Kind: faultinject.ServerError})
		return lw.handler(t, app.Options{HTTPClient: faults.Client(), MaxAttempts: 1, SweepMargin: margin})
	}
	if _, err := invoke(t, broken(), scheduled(t), 0); err == nil {
		t.Fatal("a sweep whose configuration cannot be read: got no error")
	}
	if l := lw.lease(t); l != nil {
		t.Errorf("lease after a new sweep failed: got %v, want none", l)
	}

	h := lw.handler(t, app.Options{SweepMargin: margin, SweepWorkers: 1})
	sum, err := invoke(t, h, scheduled(t), margin+150*time.Millisecond)
	if err != nil || len(sum.Sweeps) != 1 || sum.Sweeps[0].Continuation == nil {
		t.Fatalf("scheduled invocation: got %+v, %v; want a sweep handed over", sum, err)
	}
	body, receipt := lw.message(t)
	if _, err := invoke(t, broken(), sqsRecord(body), 0); err == nil {
		t.Fatal("a continuation whose configuration cannot be read: got no error")
	}
	if l := lw.lease(t); l["next"] != body || l["holder"] != "" {
		t.Errorf("lease after the resumed run failed: got %v, want it handed back to the continuation", l)
	}
	sum, err = invoke(t, h, sqsRecord(body), margin+150*time.Millisecond) // SQS delivers it again
	if err != nil || len(sum.Sweeps) != 1 || sum.Sweeps[0].SweepID != sum.Sweeps[0].ResumedAt.SweepID || sum.Kind != event.KindSweepContinuation {
		t.Errorf("the continuation delivered again: got %+v, %v; want it resumed", sum, err)
	}
	lw.deleteMessage(t, receipt)
}
