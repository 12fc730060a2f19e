package sweep_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/amishare/amishare/internal/testing/faultinject"
	"github.com/amishare/amishare/internal/testing/fixture"
	"github.com/amishare/amishare/internal/testing/world"
	"github.com/amishare/amishare/pkg/amitag"
	"github.com/amishare/amishare/pkg/app"
	"github.com/amishare/amishare/pkg/event"
	"github.com/amishare/amishare/pkg/handler"
	"github.com/amishare/amishare/pkg/share"
	"github.com/amishare/amishare/pkg/sweep"
)

const (
	acctA    = "111122223333" // allowed
	acctB    = "444455556666" // allowed
	outsider = "999999999999" // in no list
	// fastConfig allows A and B, and group prod = 777788889999 and
	// 222233334444, with a sweep rate that never waits in tests.
	fastConfig = `{"allowedAccounts":["111122223333","444455556666"],"groups":{"prod":["777788889999","222233334444"]},"sweepRate":1000}`
)

// sweepNow delivers the sample scheduled event and returns its one sweep summary.
func sweepNow(t *testing.T, w *world.World, h *handler.Handler) sweep.Summary {
	t.Helper()
	sum, err := w.Handle(t, h, world.SampleEvent(t, "scheduled-sweep.json", world.SampleImage))
	if err != nil {
		t.Fatalf("Handle(scheduled event): %v", err)
	}
	if sum.Kind != event.KindScheduled || len(sum.Sweeps) != 1 {
		t.Fatalf("summary: got kind %q and %d sweeps, want %q and 1", sum.Kind, len(sum.Sweeps), event.KindScheduled)
	}
	return sum.Sweeps[0]
}

// sweepMetrics returns the last EMF line of the log, checking it declares the sweep's metrics.
func sweepMetrics(t *testing.T, w *world.World) world.LogLine {
	t.Helper()
	return w.Metrics(t, world.SweepMetrics...)
}

func unshareSnapshot(t *testing.T, w *world.World, snap string, accounts ...string) {
	t.Helper()
	_, err := w.Fixture.EC2.ModifySnapshotAttribute(w.Ctx, &ec2.ModifySnapshotAttributeInput{
		SnapshotId: aws.String(snap), Attribute: ec2types.SnapshotAttributeNameCreateVolumePermission,
		OperationType: ec2types.OperationTypeRemove, UserIds: accounts,
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestHandleSweepSamples delivers the sweep's sample events and the
// deregistered sample for an image that still exists.
func TestHandleSweepSamples(t *testing.T) {
	w := world.New(t, fastConfig)
	id, snaps := w.PlainImage(t, 2, map[string]string{amitag.Accounts: acctA})
	h := w.Handler(t, app.Options{})

	// The continuation sample names a sweep no lease says is in progress
	// (this handler has no lease at all, as the CLI): it is refused, not an
	// error, and makes no call.
	sum, err := w.Handle(t, h, world.SampleEvent(t, "sqs-sweep-continuation.json", id))
	if err != nil || sum.Kind != event.KindSweepContinuation || len(sum.Sweeps) != 0 || !strings.Contains(sum.Ignored, "no sweep lease") {
		t.Fatalf("continuation: got %+v, %v; want it refused", sum, err)
	}
	if calls := w.Calls.Calls(); len(calls) != 0 {
		t.Errorf("refused continuation made calls %v, want none", calls)
	}
	w.WantShared(t, id, snaps)

	// A deregistered event for an image that exists changes nothing.
	sum, err = w.Handle(t, h, world.SampleEvent(t, "ami-deregistered.json", id))
	if err != nil || len(sum.Images) != 1 || sum.Images[0].Outcome != share.OutcomeSkipped {
		t.Fatalf("deregistered event for a live image: got %+v, %v; want one skipped image", sum.Images, err)
	}
	if got := w.Calls.Mutating(); len(got) != 0 {
		t.Errorf("modifying calls: got %v, want none", got)
	}

	s := sweepNow(t, w, h)
	if s.ImagesChecked != 1 || s.DriftRepaired != 1 || s.Continuation != nil {
		t.Errorf("scheduled sweep: got %+v, want 1 image checked and repaired, complete", s)
	}
	w.WantShared(t, id, snaps, acctA)
}

// TestSweepRepairsDrift: one scheduled sweep puts every managed image back
// to what its tag says and leaves unmanaged images alone; a second finds
// nothing to do.
func TestSweepRepairsDrift(t *testing.T) {
	w := world.New(t, fastConfig)
	h := w.Handler(t, app.Options{})

	// Drifted: shared by an event, then changed by hand.
	drifted, dsnaps := w.PlainImage(t, 2, map[string]string{amitag.Accounts: acctA})
	if _, err := w.Handle(t, h, world.SampleEvent(t, "ami-available.json", drifted)); err != nil {
		t.Fatal(err)
	}
	w.ShareImage(t, drifted, ec2types.LaunchPermission{UserId: aws.String(acctB)})
	w.ShareSnapshot(t, dsnaps[0], []string{acctB}, nil)
	unshareSnapshot(t, w, dsnaps[1], acctA)
	// Lost: its event never arrived.
	lost, lsnaps := w.PlainImage(t, 2, map[string]string{amitag.Accounts: acctA + " " + acctB})
	// Unmanaged, shared by hand.
	unmanaged, usnaps := w.PlainImage(t, 1, nil)
	w.ShareImage(t, unmanaged, ec2types.LaunchPermission{UserId: aws.String(outsider)})
	w.ShareSnapshot(t, usnaps[0], []string{outsider}, nil)
	// Absurd tags: every token refused.
	absurd, asnaps := w.PlainImage(t, 1, map[string]string{amitag.Accounts: "all " + strings.Repeat("9", 200) + " \u202e1111-2222-3333"})

	w.Logs.Reset()
	s := sweepNow(t, w, h)

	w.WantShared(t, drifted, dsnaps, acctA)
	w.WantShared(t, lost, lsnaps, acctA, acctB)
	w.WantStatus(t, lost, "shared", "shared with 2 account(s)")
	for _, snap := range lsnaps {
		if got := w.SnapshotRecord(t, snap); got != lost {
			t.Errorf("%s on %s: got %q, want %q", amitag.Image, snap, got, lost)
		}
	}
	if p := w.ImagePerms(t, unmanaged); !slices.Equal(p.Accounts, []string{outsider}) {
		t.Errorf("unmanaged image: got %v, want the hand share kept", p.Accounts)
	}
	if p := w.SnapshotPerms(t, usnaps[0]); !slices.Equal(p.Accounts, []string{outsider}) {
		t.Errorf("unmanaged snapshot: got %v, want the hand share kept", p.Accounts)
	}
	if tags := w.Tags(t, unmanaged); len(tags) != 0 {
		t.Errorf("unmanaged image tags: got %v, want none", tags)
	}
	if got := w.SnapshotRecord(t, usnaps[0]); got != "" {
		t.Errorf("unmanaged snapshot recorded as %q, want no record", got)
	}
	w.WantStatus(t, absurd, "error", "every target was refused")
	w.WantShared(t, absurd, asnaps)

	if s.ManagedImages != 3 || s.ImagesChecked != 3 || s.DriftRepaired != 2 || s.Errors != 1 || s.Continuation != nil {
		t.Errorf("summary: got %+v, want 3 managed and checked, 2 repaired, 1 error, complete", s)
	}
	if len(s.Failures) != 1 || s.Failures[0].ImageID != absurd {
		t.Errorf("failures: got %+v, want the absurd image", s.Failures)
	}
	world.WantMetrics(t, sweepMetrics(t, w), map[string]int{"ImagesChecked": 3, "DriftRepaired": 2, "SnapshotsCleaned": 0, "Errors": 1})
	var logged []string
	for _, l := range w.LinesWithMsg(t, "image reconciled") {
		if l.Str("kind") != string(event.KindScheduled) {
			t.Errorf("decision logged with kind %q, want %q", l.Str("kind"), event.KindScheduled)
		}
		logged = append(logged, l.Str("imageId"))
	}
	slices.Sort(logged)
	if want := sorted(drifted, lost, absurd); !slices.Equal(logged, want) {
		t.Errorf("decisions logged for %v, want %v", logged, want)
	}
	if len(w.LinesWithMsg(t, "sweep done")) != 1 {
		t.Errorf(`"sweep done" log lines: got %d, want 1`, len(w.LinesWithMsg(t, "sweep done")))
	}

	// In sync now: the next sweep modifies nothing (the absurd image's status is already written).
	s = sweepNow(t, w, h)
	if got := w.Calls.Mutating(); len(got) != 0 {
		t.Errorf("second sweep: modifying calls %v, want none", got)
	}
	if s.DriftRepaired != 0 || s.ImagesChecked != 3 {
		t.Errorf("second sweep: got %+v, want 3 checked, none repaired", s)
	}
}

func sorted(ids ...string) []string {
	s := slices.Clone(ids)
	slices.Sort(s)
	return s
}

// TestSweepSurvivesUnreadableKey: a key the function cannot read fails its
// image, which is logged and counted; every other image is swept.
func TestSweepSurvivesUnreadableKey(t *testing.T) {
	w := world.New(t, fastConfig)
	key := w.Key(t)
	enc, esnaps := w.Image(t, []fixture.Disk{{KeyID: key}}, map[string]string{amitag.Accounts: acctA})
	p1, p1snaps := w.PlainImage(t, 1, map[string]string{amitag.Accounts: acctA})
	p2, p2snaps := w.PlainImage(t, 1, map[string]string{amitag.Accounts: acctB})
	faults := faultinject.New(faultinject.Rule{Action: "DescribeKey", Kind: faultinject.ServerError})
	h := w.Handler(t, app.Options{HTTPClient: faults.Client(), MaxAttempts: 2})

	s := sweepNow(t, w, h)
	w.WantShared(t, p1, p1snaps, acctA)
	w.WantShared(t, p2, p2snaps, acctB)
	w.WantShared(t, enc, esnaps)
	w.WantStatus(t, enc, "error", "will be retried")
	if s.ImagesChecked != 3 || s.Errors != 1 || len(s.Failures) != 1 || s.Failures[0].ImageID != enc {
		t.Errorf("summary: got %+v, want 3 checked and the encrypted image failed", s)
	}
	// The key was tried once for the whole sweep (2 attempts), not per retry of every image.
	if got := faults.Injected("DescribeKey"); got != 2 {
		t.Errorf("DescribeKey attempts: got %d, want 2", got)
	}
	world.WantMetrics(t, sweepMetrics(t, w), map[string]int{"ImagesChecked": 3, "Errors": 1, "DriftRepaired": 2})
	found := false
	for _, l := range w.LinesWithMsg(t, "image reconcile failed") {
		found = found || l.Str("imageId") == enc
	}
	if !found {
		t.Errorf("no failed decision logged for %s", enc)
	}
}

// TestSweepCleansDeregisteredWithoutEvent: an image deregistered while
// events were lost is found by its record and cleaned by the sweep; so is
// an image that exists but lost every amishare tag at once (its events lost
// too): everything amishare gave it is revoked, its launch permissions by a
// reset.
func TestSweepCleansDeregisteredWithoutEvent(t *testing.T) {
	w := world.New(t, fastConfig)
	h := w.Handler(t, app.Options{})
	gone, gsnaps := w.PlainImage(t, 2, map[string]string{amitag.Accounts: acctA})
	released, rsnaps := w.PlainImage(t, 1, map[string]string{amitag.Accounts: acctB})
	keep, ksnaps := w.PlainImage(t, 1, map[string]string{amitag.Accounts: acctB})
	sweepNow(t, w, h)
	w.DeregisterImage(t, gone)
	// No longer managed: every amishare tag deleted at once.
	w.Untag(t, released, amitag.Accounts, amitag.Status, amitag.Message)
	// A snapshot shared by hand whose amishare:image names no image id:
	// amishare never wrote that record, so it never touches the snapshot.
	_, hsnaps := w.PlainImage(t, 1, nil)
	w.ShareSnapshot(t, hsnaps[0], []string{outsider}, nil)
	w.Tag(t, hsnaps[0], map[string]string{amitag.Image: "golden image"})

	w.Logs.Reset()
	s := sweepNow(t, w, h)
	if s.GoneImages != 2 || s.SnapshotsCleaned != 3 || s.ImagesChecked != 1 || s.Errors != 0 {
		t.Errorf("summary: got %+v, want 2 images released, 3 snapshots cleaned, 1 image checked", s)
	}
	for _, snap := range gsnaps {
		if p := w.SnapshotPerms(t, snap); len(p.Accounts) != 0 {
			t.Errorf("snapshot %s of the gone image: got %v, want no permission", snap, p.Accounts)
		}
	}
	w.WantShared(t, released, rsnaps)
	if got := w.SnapshotRecord(t, rsnaps[0]); got != "" {
		t.Errorf("record of the released image's snapshot: got %q, want it removed", got)
	}
	w.WantShared(t, keep, ksnaps, acctB)
	if p := w.SnapshotPerms(t, hsnaps[0]); !slices.Equal(p.Accounts, []string{outsider}) {
		t.Errorf("snapshot whose record names no image: got %v, want the hand share kept", p.Accounts)
	}
	if got := w.SnapshotRecord(t, hsnaps[0]); got != "golden image" {
		t.Errorf("its %s: got %q, want it left as it was", amitag.Image, got)
	}
	world.WantMetrics(t, sweepMetrics(t, w), map[string]int{"SnapshotsCleaned": 3, "ImagesChecked": 1, "DriftRepaired": 0})

	s = sweepNow(t, w, h)
	if s.GoneImages != 0 || len(w.Calls.Mutating()) != 0 {
		t.Errorf("next sweep: got %d gone images and calls %v, want nothing to do", s.GoneImages, w.Calls.Mutating())
	}
}

// TestSweepProgress: the sweep tells its progress after each image, gone
// ones included, against a total that does not move.
func TestSweepProgress(t *testing.T) {
	w := world.New(t, fastConfig)
	h := w.Handler(t, app.Options{})
	gone, _ := w.PlainImage(t, 1, map[string]string{amitag.Accounts: acctA})
	w.PlainImage(t, 1, map[string]string{amitag.Accounts: acctB})
	w.PlainImage(t, 1, map[string]string{amitag.Accounts: acctB})
	sweepNow(t, w, h)
	w.DeregisterImage(t, gone)

	var mu sync.Mutex
	var done []int
	s, err := h.SweepWithProgress(w.Ctx, func(d, total int) {
		mu.Lock()
		defer mu.Unlock()
		done = append(done, d)
		if total != 3 {
			t.Errorf("progress %d: total %d, want 3 (1 gone, 2 managed)", d, total)
		}
	})
	if err != nil || s.GoneImages != 1 || s.ImagesChecked != 2 {
		t.Fatalf("sweep: %+v, %v", s, err)
	}
	slices.Sort(done)
	if !slices.Equal(done, []int{1, 2, 3}) {
		t.Errorf("progress: got %v, want 1, 2, 3", done)
	}
}

// TestSweepContinuation gives each invocation a tiny time budget: the sweep
// hands over through the stack's SQS queue (moto's) until it is done, and
// every image is done exactly once.
func TestSweepContinuation(t *testing.T) {
	w := world.New(t, strings.Replace(fastConfig, `"sweepRate":1000`, `"sweepRate":40`, 1))
	q := sqs.NewFromConfig(w.AWS)
	queueURL, lease := w.SweepQueue(t), w.SweepLease(t)
	ids, snaps := w.Images(t, "cont", 9, map[string]string{amitag.Accounts: acctA})
	gone, gsnaps := w.PlainImage(t, 1, map[string]string{amitag.Accounts: acctB})
	setup := w.Handler(t, app.Options{})
	if _, err := w.Handle(t, setup, world.SampleEvent(t, "ami-available.json", gone)); err != nil {
		t.Fatal(err)
	}
	w.DeregisterImage(t, gone)

	const margin = time.Second
	h := w.Handler(t, app.Options{SweepQueueURL: queueURL, SweepLeaseTable: lease, SweepMargin: margin, SweepWorkers: 2})
	invoke := func(raw []byte) handler.Summary {
		t.Helper()
		ctx, cancel := context.WithTimeout(w.Ctx, margin+150*time.Millisecond)
		defer cancel()
		sum, err := h.Handle(ctx, raw)
		if err != nil {
			t.Fatalf("invocation: %v", err)
		}
		return sum
	}
	w.Logs.Reset()
	sums := []handler.Summary{invoke(world.SampleEvent(t, "scheduled-sweep.json", world.SampleImage))}
	for len(sums) < 40 {
		msgs, err := q.ReceiveMessage(w.Ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(queueURL), MaxNumberOfMessages: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs.Messages) == 0 {
			break
		}
		if len(msgs.Messages) != 1 {
			t.Fatalf("queue holds %d continuations, want 1", len(msgs.Messages))
		}
		m := msgs.Messages[0]
		rec, _ := json.Marshal(map[string]any{"Records": []map[string]any{{
			"messageId": aws.ToString(m.MessageId), "receiptHandle": aws.ToString(m.ReceiptHandle), "body": aws.ToString(m.Body),
			"eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:sweep", "awsRegion": "us-east-1",
		}}})
		sums = append(sums, invoke(rec))
		// Lambda deletes the message once the invocation succeeded.
		if _, err := q.DeleteMessage(w.Ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(queueURL), ReceiptHandle: m.ReceiptHandle}); err != nil {
			t.Fatal(err)
		}
	}
	if len(sums) < 3 {
		t.Fatalf("the sweep took %d invocation(s); a budget this small should need several", len(sums))
	}
	last := sums[len(sums)-1]
	if last.Kind != event.KindSweepContinuation || last.Sweeps[0].Continuation != nil {
		t.Errorf("last invocation: got kind %q continuation %+v, want a continuation that finished", last.Kind, last.Sweeps[0].Continuation)
	}
	sweepID := sums[0].Sweeps[0].SweepID
	checked, cleaned := 0, 0
	for i, s := range sums {
		if s.Sweeps[0].SweepID != sweepID {
			t.Errorf("invocation %d: sweep id %q, want %q", i, s.Sweeps[0].SweepID, sweepID)
		}
		checked += s.Sweeps[0].ImagesChecked
		cleaned += s.Sweeps[0].GoneImages
	}
	if checked != len(ids) || cleaned != 1 {
		t.Errorf("over %d invocations: %d images checked and %d gone cleaned, want %d and 1", len(sums), checked, cleaned, len(ids))
	}
	// Each image decided exactly once.
	seen := map[string]int{}
	for _, l := range w.LinesWithMsg(t, "image reconciled") {
		seen[l.Str("imageId")]++
	}
	for _, id := range append(slices.Clone(ids), gone) {
		if seen[id] != 1 {
			t.Errorf("%s decided %d times, want once", id, seen[id])
		}
	}
	for i, id := range ids {
		w.WantShared(t, id, snaps[i:i+1], acctA)
	}
	if p := w.SnapshotPerms(t, gsnaps[0]); len(p.Accounts) != 0 {
		t.Errorf("gone image's snapshot: got %v, want no permission", p.Accounts)
	}
	t.Logf("%d invocations", len(sums))
}

// TestSweepRate measures, at the emulator's side of the wire, the calls of
// a sweep at a low sweepRate: no one-second window holds more than
// sweepRate calls, and the sweep runs at that rate, not far below. The
// handler is built as the Lambda's cold start builds it (it reads the
// account's block public access states, two calls), and sweeps at once:
// the windows count those calls too.
func TestSweepRate(t *testing.T) {
	const rate = 5
	w := world.New(t, fastConfig)
	srv := w.Server
	ids, snaps := w.Images(t, "rate", 6, map[string]string{amitag.Accounts: acctA})
	sweepNow(t, w, w.Handler(t, app.Options{})) // bring them in sync, fast
	w.PutConfig(t, strings.Replace(fastConfig, `"sweepRate":1000`, fmt.Sprintf(`"sweepRate":%d`, rate), 1))

	rec, err := fixture.NewRecorder(srv.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close()
	t.Setenv("AWS_ENDPOINT_URL", rec.Endpoint)
	h := w.Handler(t, app.Options{ReportBlockPublicAccess: true})
	s := sweepNow(t, w, h)
	hits := rec.Hits()
	for i, id := range ids {
		w.WantShared(t, id, snaps[i:i+1], acctA)
	}
	if len(hits) < 3*rate || len(hits) != s.Calls+2 {
		t.Fatalf("calls: the emulator saw %d, the sweep counted %d; want the sweep's and the 2 of the start, at least %d", len(hits), s.Calls, 3*rate)
	}
	most := fixture.MaxInWindow(hits, time.Second)
	if most > rate {
		t.Errorf("a one-second window holds %d calls, want at most sweepRate = %d", most, rate)
	}
	// How evenly the limiter spaces calls, and that it is not slower than
	// the rate, is proven on a clock the test holds (pkg/pacing): here, on
	// the wall clock of a loaded machine, only the bound that keeps AWS's
	// buckets safe is checked.
	hits = hits[2:] // the sweep's own
	span := hits[len(hits)-1].At.Sub(hits[0].At)
	t.Logf("%d calls in %s, at most %d in one second", len(hits), span, most)
}

// TestSweepImagesOnOneKey: images on one customer-managed key, each shared
// with its own account, are reconciled at once by the sweep's workers;
// their key policy writes must not undo each other: the key ends up
// granting every account (KMS has no conditional write).
func TestSweepImagesOnOneKey(t *testing.T) {
	var accounts []string
	for i := range 12 {
		accounts = append(accounts, fmt.Sprintf("1000000000%02d", i))
	}
	w := world.New(t, `{"allowedAccounts":["`+strings.Join(accounts, `","`)+`"],"sweepRate":1000}`)
	key := w.Key(t)
	for _, a := range accounts {
		w.Image(t, []fixture.Disk{{KeyID: key}}, map[string]string{amitag.Accounts: a})
	}
	s := sweepNow(t, w, w.Handler(t, app.Options{SweepWorkers: len(accounts)}))
	if s.DriftRepaired != len(accounts) || s.Errors != 0 {
		t.Errorf("sweep: got %+v, want %d images shared", s, len(accounts))
	}
	if got, want := w.KeyAccounts(t, key), sorted(accounts...); !slices.Equal(got, want) {
		t.Errorf("key grants %v after one sweep, want %v", got, want)
	}
}
