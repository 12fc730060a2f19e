package sweep_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/amishare/amishare/internal/testing/faultinject"
	"github.com/amishare/amishare/internal/testing/fixture"
	"github.com/amishare/amishare/internal/testing/throttle"
	"github.com/amishare/amishare/internal/testing/world"
	"github.com/amishare/amishare/pkg/amitag"
	"github.com/amishare/amishare/pkg/app"
)

// TestSweepSharesThrottledBuckets: a sweep whose modifying calls EC2
// throttles (small buckets, as when a burst of events has emptied them)
// still repairs every image, with no error: its throttled calls are
// retried, every attempt at the emulator's side of the wire went through
// the sweep's limiter (retries included), and the metrics show the
// throttling.
func TestSweepSharesThrottledBuckets(t *testing.T) {
	const rate = 20
	w := world.New(t, strings.Replace(fastConfig, `"sweepRate":1000`, fmt.Sprintf(`"sweepRate":%d`, rate), 1))
	ids, snaps := w.Images(t, "throttled", 10, map[string]string{amitag.Accounts: acctA})
	bucket, err := throttle.Start(w.Server.Endpoint, throttle.Bucket{Capacity: 3, Refill: 4}, throttle.Mutating)
	if err != nil {
		t.Fatal(err)
	}
	defer bucket.Close()
	rec, err := fixture.NewRecorder(bucket.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close()
	t.Setenv("AWS_ENDPOINT_URL", rec.Endpoint)

	w.Logs.Reset()
	s := sweepNow(t, w, w.Handler(t, app.Options{}))
	for i, id := range ids {
		w.WantShared(t, id, snaps[i:i+1], acctA)
	}
	if s.ImagesChecked != len(ids) || s.DriftRepaired != len(ids) || s.Errors != 0 || s.Deferred != 0 || s.Continuation != nil {
		t.Errorf("sweep: got %+v, want %d images repaired, no error, none deferred, complete", s, len(ids))
	}
	if bucket.Throttled() == 0 || s.Throttled != bucket.Throttled() {
		t.Errorf("throttled attempts: the sweep counted %d, the buckets refused %d; want the same, more than 0", s.Throttled, bucket.Throttled())
	}
	world.WantMetrics(t, sweepMetrics(t, w), map[string]int{"Errors": 0, "DriftRepaired": len(ids), "Throttled": s.Throttled})
	// Every attempt that reached the wire, throttled ones and their retries
	// included, went through the sweep's limiter (TestSweepRate checks the
	// limiter keeps sweepRate).
	if hits := len(rec.Hits()); hits != s.Calls || hits <= s.Throttled {
		t.Errorf("requests on the wire: %d; the sweep's limiter let %d through; want the same, more than the %d throttled", hits, s.Calls, s.Throttled)
	}
}

// TestSweepDefersThrottledImages: images AWS throttles until their time in
// the invocation runs out are left for the next invocation, not failed: the
// continuation resumes before the first of them, and the next invocation,
// unthrottled, shares them.
func TestSweepDefersThrottledImages(t *testing.T) {
	w := world.New(t, fastConfig)
	q := sqs.NewFromConfig(w.AWS)
	queueURL, lease := w.SweepQueue(t), w.SweepLease(t)
	ids, snaps := w.Images(t, "deferred", 3, map[string]string{amitag.Accounts: acctA})

	const margin = 3 * time.Second
	faults := faultinject.New(faultinject.Rule{Action: "ModifyImageAttribute", Kind: faultinject.Throttle})
	throttled := w.Handler(t, app.Options{HTTPClient: faults.Client(), SweepQueueURL: queueURL, SweepLeaseTable: lease, SweepMargin: margin})
	ctx, cancel := context.WithTimeout(w.Ctx, margin+time.Second)
	defer cancel()
	w.Logs.Reset()
	sum, err := throttled.Handle(ctx, world.SampleEvent(t, "scheduled-sweep.json", world.SampleImage))
	if err != nil {
		t.Fatalf("throttled invocation: got error %v, want the images deferred", err)
	}
	s := sum.Sweeps[0]
	if s.Errors != 0 || s.Deferred == 0 || s.ImagesChecked+s.Deferred != len(ids) || s.Continuation == nil || s.Continuation.After != "" {
		t.Fatalf("throttled invocation: got %+v, want every image deferred (none failed) and a continuation from the start", s)
	}
	if s.Throttled == 0 {
		t.Errorf("throttled invocation: no throttled attempt counted")
	}
	world.WantMetrics(t, sweepMetrics(t, w), map[string]int{"Errors": 0})
	if n := len(w.LinesWithMsg(t, "sweep: image left for the next invocation")); n != s.Deferred {
		t.Errorf("deferred images logged: got %d, want %d", n, s.Deferred)
	}

	msgs, err := q.ReceiveMessage(w.Ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(queueURL), MaxNumberOfMessages: 10})
	if err != nil || len(msgs.Messages) != 1 {
		t.Fatalf("continuations: got %d, %v; want 1", len(msgs.Messages), err)
	}
	next := w.Handler(t, app.Options{SweepQueueURL: queueURL, SweepLeaseTable: lease})
	sum, err = next.Handle(w.Ctx, sqsRecord(aws.ToString(msgs.Messages[0].Body)))
	if err != nil || sum.Sweeps[0].ImagesChecked != len(ids) || sum.Sweeps[0].Errors != 0 || sum.Sweeps[0].Continuation != nil {
		t.Fatalf("next invocation: got %+v, %v; want every image checked", sum.Sweeps, err)
	}
	for i, id := range ids {
		w.WantShared(t, id, snaps[i:i+1], acctA)
	}
}

// sqsRecord is Lambda's SQS event holding one message of the sweep's queue.
func sqsRecord(body string) []byte {
	b, _ := json.Marshal(map[string]any{"Records": []map[string]any{{
		"messageId": "m1", "receiptHandle": "r", "body": body, "eventSource": "aws:sqs",
		"eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:amishare-SweepQueue", "awsRegion": "us-east-1",
	}}})
	return b
}
