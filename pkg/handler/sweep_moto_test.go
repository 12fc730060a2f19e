package handler_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/amishare/amishare/internal/testing/faultinject"
	"github.com/amishare/amishare/internal/testing/fixture"
	"github.com/amishare/amishare/internal/testing/moto"
	"github.com/amishare/amishare/pkg/amitag"
	"github.com/amishare/amishare/pkg/app"
	"github.com/amishare/amishare/pkg/event"
	"github.com/amishare/amishare/pkg/handler"
	"github.com/amishare/amishare/pkg/share"
	"github.com/amishare/amishare/pkg/sweep"
)

// fastConfig is testConfig with a sweep rate that never waits in tests.
const fastConfig = `{"allowedAccounts":["111122223333","444455556666"],"groups":{"prod":["777788889999","222233334444"]},"sweepRate":1000}`

// sweepNow delivers the sample scheduled event and returns its one sweep summary.
func (w *world) sweepNow(t *testing.T, h *handler.Handler) sweep.Summary {
	t.Helper()
	sum, err := w.handle(t, h, sampleEvent(t, "scheduled-sweep.json", sampleImage))
	if err != nil {
		t.Fatalf("Handle(scheduled event): %v", err)
	}
	if sum.Kind != event.KindScheduled || len(sum.Sweeps) != 1 {
		t.Fatalf("summary: got kind %q and %d sweeps, want %q and 1", sum.Kind, len(sum.Sweeps), event.KindScheduled)
	}
	return sum.Sweeps[0]
}

// sweepMetrics returns the last EMF line of the log, checking it declares the sweep's metrics.
func sweepMetrics(t *testing.T, w *world) logLine {
	t.Helper()
	lines := w.linesWithMsg(t, "metrics")
	if len(lines) == 0 {
		t.Fatal("no metrics line")
	}
	l := lines[len(lines)-1]
	emf, _ := l["_aws"].(map[string]any)
	cwm, _ := emf["CloudWatchMetrics"].([]any)
	if len(cwm) != 1 {
		t.Fatalf("_aws.CloudWatchMetrics: got %v, want one directive", emf["CloudWatchMetrics"])
	}
	dir, _ := cwm[0].(map[string]any)
	var names []string
	for _, d := range dir["Metrics"].([]any) {
		name, _ := d.(map[string]any)["Name"].(string)
		names = append(names, name)
		if _, ok := l[name].(float64); !ok {
			t.Errorf("metric %q: got %v at the root, want a number", name, l[name])
		}
	}
	if want := []string{"ImagesChecked", "DriftRepaired", "SnapshotsCleaned", "SweepSeconds", "Errors"}; !slices.Equal(names, want) {
		t.Errorf("sweep metric names: got %v, want %v", names, want)
	}
	return l
}

func (w *world) snapshotTag(t *testing.T, snap string) string {
	t.Helper()
	tags, err := w.fx.SnapshotTags(w.ctx, snap)
	if err != nil {
		t.Fatal(err)
	}
	return tags[amitag.Image]
}

func (w *world) unshareSnapshot(t *testing.T, snap string, accounts ...string) {
	t.Helper()
	_, err := w.fx.EC2.ModifySnapshotAttribute(w.ctx, &ec2.ModifySnapshotAttributeInput{
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
	w := newWorld(t, fastConfig)
	id, snaps := w.plainImage(t, 2, map[string]string{amitag.Accounts: acctA})
	h := w.handler(t, app.Options{})

	// The continuation sample resumes after the sample image id: our
	// image's id replaces it, so there is nothing left to do.
	sum, err := w.handle(t, h, sampleEvent(t, "sqs-sweep-continuation.json", id))
	if err != nil || sum.Kind != event.KindSweepContinuation || len(sum.Sweeps) != 1 {
		t.Fatalf("continuation: got %+v, %v; want one sweep", sum, err)
	}
	if s := sum.Sweeps[0]; s.ImagesChecked != 0 || s.ResumedAt == nil || s.ResumedAt.After != id {
		t.Errorf("continuation: got %d images checked, resumed at %+v; want 0 after %s", s.ImagesChecked, s.ResumedAt, id)
	}
	w.wantShared(t, id, snaps)

	// A deregistered event for an image that exists changes nothing.
	sum, err = w.handle(t, h, sampleEvent(t, "ami-deregistered.json", id))
	if err != nil || len(sum.Images) != 1 || sum.Images[0].Outcome != share.OutcomeSkipped {
		t.Fatalf("deregistered event for a live image: got %+v, %v; want one skipped image", sum.Images, err)
	}
	if got := w.calls.Mutating(); len(got) != 0 {
		t.Errorf("modifying calls: got %v, want none", got)
	}

	s := w.sweepNow(t, h)
	if s.ImagesChecked != 1 || s.DriftRepaired != 1 || s.Continuation != nil {
		t.Errorf("scheduled sweep: got %+v, want 1 image checked and repaired, complete", s)
	}
	w.wantShared(t, id, snaps, acctA)
}

// TestSweepRepairsDrift: one scheduled sweep puts every managed image back
// to what its tag says and leaves unmanaged images alone; a second finds
// nothing to do.
func TestSweepRepairsDrift(t *testing.T) {
	w := newWorld(t, fastConfig)
	h := w.handler(t, app.Options{})

	// Drifted: shared by an event, then changed by hand.
	drifted, dsnaps := w.plainImage(t, 2, map[string]string{amitag.Accounts: acctA})
	if _, err := w.handle(t, h, sampleEvent(t, "ami-available.json", drifted)); err != nil {
		t.Fatal(err)
	}
	if err := w.fx.ShareImage(w.ctx, drifted, ec2types.LaunchPermission{UserId: aws.String(acctB)}); err != nil {
		t.Fatal(err)
	}
	if err := w.fx.ShareSnapshot(w.ctx, dsnaps[0], []string{acctB}, nil); err != nil {
		t.Fatal(err)
	}
	w.unshareSnapshot(t, dsnaps[1], acctA)
	// Lost: its event never arrived.
	lost, lsnaps := w.plainImage(t, 2, map[string]string{amitag.Accounts: acctA + " " + acctB})
	// Unmanaged, shared by hand.
	unmanaged, usnaps := w.plainImage(t, 1, nil)
	if err := w.fx.ShareImage(w.ctx, unmanaged, ec2types.LaunchPermission{UserId: aws.String(outsider)}); err != nil {
		t.Fatal(err)
	}
	if err := w.fx.ShareSnapshot(w.ctx, usnaps[0], []string{outsider}, nil); err != nil {
		t.Fatal(err)
	}
	// Absurd tags: every token refused.
	absurd, asnaps := w.plainImage(t, 1, map[string]string{amitag.Accounts: "all " + strings.Repeat("9", 200) + " \u202e1111-2222-3333"})

	w.logs.Reset()
	s := w.sweepNow(t, h)

	w.wantShared(t, drifted, dsnaps, acctA)
	w.wantShared(t, lost, lsnaps, acctA, acctB)
	w.wantStatus(t, lost, "shared", "shared with 2 account(s)")
	for _, snap := range lsnaps {
		if got := w.snapshotTag(t, snap); got != lost {
			t.Errorf("%s on %s: got %q, want %q", amitag.Image, snap, got, lost)
		}
	}
	if p := w.imagePerms(t, unmanaged); !slices.Equal(p.Accounts, []string{outsider}) {
		t.Errorf("unmanaged image: got %v, want the hand share kept", p.Accounts)
	}
	if p := w.snapshotPerms(t, usnaps[0]); !slices.Equal(p.Accounts, []string{outsider}) {
		t.Errorf("unmanaged snapshot: got %v, want the hand share kept", p.Accounts)
	}
	if tags := w.tags(t, unmanaged); len(tags) != 0 {
		t.Errorf("unmanaged image tags: got %v, want none", tags)
	}
	if got := w.snapshotTag(t, usnaps[0]); got != "" {
		t.Errorf("unmanaged snapshot recorded as %q, want no record", got)
	}
	w.wantStatus(t, absurd, "error", "every target was refused")
	w.wantShared(t, absurd, asnaps)

	if s.ManagedImages != 3 || s.ImagesChecked != 3 || s.DriftRepaired != 2 || s.Errors != 1 || s.Continuation != nil {
		t.Errorf("summary: got %+v, want 3 managed and checked, 2 repaired, 1 error, complete", s)
	}
	if len(s.Failures) != 1 || s.Failures[0].ImageID != absurd {
		t.Errorf("failures: got %+v, want the absurd image", s.Failures)
	}
	wantCounts(t, sweepMetrics(t, w), map[string]int{"ImagesChecked": 3, "DriftRepaired": 2, "SnapshotsCleaned": 0, "Errors": 1})
	var logged []string
	for _, l := range w.linesWithMsg(t, "image reconciled") {
		if l.str("kind") != string(event.KindScheduled) {
			t.Errorf("decision logged with kind %q, want %q", l.str("kind"), event.KindScheduled)
		}
		logged = append(logged, l.str("imageId"))
	}
	slices.Sort(logged)
	if want := sorted(drifted, lost, absurd); !slices.Equal(logged, want) {
		t.Errorf("decisions logged for %v, want %v", logged, want)
	}
	if len(w.linesWithMsg(t, "sweep done")) != 1 {
		t.Errorf(`"sweep done" log lines: got %d, want 1`, len(w.linesWithMsg(t, "sweep done")))
	}

	// In sync now: the next sweep modifies nothing (the absurd image's status is already written).
	s = w.sweepNow(t, h)
	if got := w.calls.Mutating(); len(got) != 0 {
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
	w := newWorld(t, fastConfig)
	key, err := w.fx.CreateKey(w.ctx, "unreadable")
	if err != nil {
		t.Fatal(err)
	}
	enc, esnaps := w.image(t, []fixture.Disk{{KeyID: key}}, map[string]string{amitag.Accounts: acctA})
	p1, p1snaps := w.plainImage(t, 1, map[string]string{amitag.Accounts: acctA})
	p2, p2snaps := w.plainImage(t, 1, map[string]string{amitag.Accounts: acctB})
	faults := faultinject.New(faultinject.Rule{Action: "DescribeKey", Kind: faultinject.ServerError})
	h := w.handler(t, app.Options{HTTPClient: faults.Client(), MaxAttempts: 2})

	s := w.sweepNow(t, h)
	w.wantShared(t, p1, p1snaps, acctA)
	w.wantShared(t, p2, p2snaps, acctB)
	w.wantShared(t, enc, esnaps)
	w.wantStatus(t, enc, "error", "will be retried")
	if s.ImagesChecked != 3 || s.Errors != 1 || len(s.Failures) != 1 || s.Failures[0].ImageID != enc {
		t.Errorf("summary: got %+v, want 3 checked and the encrypted image failed", s)
	}
	// The key was tried once for the whole sweep (2 attempts), not per retry of every image.
	if got := faults.Injected("DescribeKey"); got != 2 {
		t.Errorf("DescribeKey attempts: got %d, want 2", got)
	}
	wantCounts(t, sweepMetrics(t, w), map[string]int{"ImagesChecked": 3, "Errors": 1, "DriftRepaired": 2})
	found := false
	for _, l := range w.linesWithMsg(t, "image reconcile failed") {
		found = found || l.str("imageId") == enc
	}
	if !found {
		t.Errorf("no failed decision logged for %s", enc)
	}
}

// TestDeregisteredEventCleansUp: the snapshots recorded for a deregistered
// image lose every create-volume permission, except what another managed
// image using the same snapshot needs; its key keeps only what other
// images need. Snapshots amishare never shared are not touched.
func TestDeregisteredEventCleansUp(t *testing.T) {
	w := newWorld(t, fastConfig)
	key, err := w.fx.CreateKey(w.ctx, "shared key")
	if err != nil {
		t.Fatal(err)
	}
	gone, gsnaps := w.image(t, []fixture.Disk{{KeyID: key}, {KeyID: key}}, map[string]string{amitag.Accounts: acctA + " " + acctB})
	// Another image shares the gone image's second snapshot.
	other, err := w.fx.RegisterImageFromSnapshots(w.ctx, "other", gsnaps[1:], map[string]string{amitag.Accounts: acctB})
	if err != nil {
		t.Fatal(err)
	}
	// An unmanaged image whose snapshot was shared by hand, then deregistered too.
	manual, msnaps := w.plainImage(t, 1, nil)
	if err := w.fx.ShareSnapshot(w.ctx, msnaps[0], []string{outsider}, nil); err != nil {
		t.Fatal(err)
	}
	h := w.handler(t, app.Options{})
	for _, id := range []string{gone, other} {
		if _, err := w.handle(t, h, sampleEvent(t, "ami-available.json", id)); err != nil {
			t.Fatal(err)
		}
	}
	if got := w.keyAccounts(t, key); !slices.Equal(got, []string{acctA, acctB}) {
		t.Fatalf("key before: got %v, want A and B", got)
	}
	for _, id := range []string{gone, manual} {
		if err := w.fx.DeregisterImage(w.ctx, id); err != nil {
			t.Fatal(err)
		}
	}

	w.logs.Reset()
	sum, err := w.handle(t, h, sampleEvent(t, "ami-deregistered.json", gone))
	if err != nil {
		t.Fatalf("Handle(deregistered): %v", err)
	}
	if len(sum.Images) != 1 || sum.Images[0].Outcome != share.OutcomeCleaned {
		t.Fatalf("result: got %+v, want one cleaned image", sum.Images)
	}
	if p := w.snapshotPerms(t, gsnaps[0]); len(p.Accounts) != 0 || p.Public {
		t.Errorf("snapshot only the gone image used: got %v, want no permission", p.Accounts)
	}
	if p := w.snapshotPerms(t, gsnaps[1]); !slices.Equal(p.Accounts, []string{acctB}) {
		t.Errorf("snapshot the other image uses: got %v, want its target %s", p.Accounts, acctB)
	}
	if got := w.keyAccounts(t, key); !slices.Equal(got, []string{acctB}) {
		t.Errorf("key after: got %v, want only %s (the other image needs it)", got, acctB)
	}
	for _, snap := range gsnaps {
		if got := w.snapshotTag(t, snap); got != "" {
			t.Errorf("record on %s: got %q, want it removed once cleaned", snap, got)
		}
	}
	w.wantShared(t, other, gsnaps[1:], acctB)
	// Every revocation is in the audit log.
	removed := 0
	for _, l := range w.linesWithMsg(t, "permission changed") {
		if l.str("imageId") == gone && l.str("snapshotId") != "" && l.str("action") == "remove" {
			removed++
		}
	}
	if removed != 3 { // A and B from snapshot 1, A from snapshot 2
		t.Errorf("audit lines for snapshot removals: got %d, want 3\n%s", removed, w.logs)
	}
	// The event counts the snapshots it unshared, as a sweep does.
	wantCounts(t, metricsLine(t, w), map[string]int{"SnapshotsCleaned": 2, "AccountsRemoved": 0, "Errors": 0})

	// A second delivery, and the event of an image amishare never shared, change nothing.
	for _, id := range []string{gone, manual} {
		sum, err := w.handle(t, h, sampleEvent(t, "ami-deregistered.json", id))
		if err != nil || len(sum.Images) != 1 || sum.Images[0].Outcome != share.OutcomeGone {
			t.Errorf("deregistered %s again: got %+v, %v; want gone", id, sum.Images, err)
		}
		if got := w.calls.Mutating(); len(got) != 0 {
			t.Errorf("modifying calls: got %v, want none", got)
		}
	}
	if p := w.snapshotPerms(t, msnaps[0]); !slices.Equal(p.Accounts, []string{outsider}) {
		t.Errorf("snapshot amishare never shared: got %v, want the hand share kept", p.Accounts)
	}
}

// TestSweepCleansDeregisteredWithoutEvent: an image deregistered while
// events were lost is found by its record and cleaned by the sweep; an
// image that exists but is no longer managed keeps its snapshots' shares.
func TestSweepCleansDeregisteredWithoutEvent(t *testing.T) {
	w := newWorld(t, fastConfig)
	h := w.handler(t, app.Options{})
	gone, gsnaps := w.plainImage(t, 2, map[string]string{amitag.Accounts: acctA})
	released, rsnaps := w.plainImage(t, 1, map[string]string{amitag.Accounts: acctB})
	keep, ksnaps := w.plainImage(t, 1, map[string]string{amitag.Accounts: acctB})
	w.sweepNow(t, h)
	if err := w.fx.DeregisterImage(w.ctx, gone); err != nil {
		t.Fatal(err)
	}
	// No longer managed: both tags deleted; amishare leaves it as it is.
	if err := w.fx.Untag(w.ctx, released, amitag.Accounts, amitag.Status, amitag.Message); err != nil {
		t.Fatal(err)
	}
	// A snapshot shared by hand whose amishare:image names no image id:
	// amishare never wrote that record, so it never touches the snapshot.
	_, hsnaps := w.plainImage(t, 1, nil)
	if err := w.fx.ShareSnapshot(w.ctx, hsnaps[0], []string{outsider}, nil); err != nil {
		t.Fatal(err)
	}
	if err := w.fx.Tag(w.ctx, hsnaps[0], map[string]string{amitag.Image: "golden image"}); err != nil {
		t.Fatal(err)
	}

	w.logs.Reset()
	s := w.sweepNow(t, h)
	if s.GoneImages != 1 || s.SnapshotsCleaned != 2 || s.ImagesChecked != 1 || s.Errors != 0 {
		t.Errorf("summary: got %+v, want 1 gone image, 2 snapshots cleaned, 1 image checked", s)
	}
	for _, snap := range gsnaps {
		if p := w.snapshotPerms(t, snap); len(p.Accounts) != 0 {
			t.Errorf("snapshot %s of the gone image: got %v, want no permission", snap, p.Accounts)
		}
	}
	w.wantShared(t, released, rsnaps, acctB)
	w.wantShared(t, keep, ksnaps, acctB)
	if p := w.snapshotPerms(t, hsnaps[0]); !slices.Equal(p.Accounts, []string{outsider}) {
		t.Errorf("snapshot whose record names no image: got %v, want the hand share kept", p.Accounts)
	}
	if got := w.snapshotTag(t, hsnaps[0]); got != "golden image" {
		t.Errorf("its %s: got %q, want it left as it was", amitag.Image, got)
	}
	wantCounts(t, sweepMetrics(t, w), map[string]int{"SnapshotsCleaned": 2, "ImagesChecked": 1, "DriftRepaired": 0})

	s = w.sweepNow(t, h)
	if s.GoneImages != 0 || len(w.calls.Mutating()) != 0 {
		t.Errorf("next sweep: got %d gone images and calls %v, want nothing to do", s.GoneImages, w.calls.Mutating())
	}
}

// TestSweepContinuation gives each invocation a tiny time budget: the sweep
// hands over through the stack's SQS queue (moto's) until it is done, and
// every image is done exactly once.
func TestSweepContinuation(t *testing.T) {
	srv := moto.ForTest(t) // the same server newWorld resets and uses
	w := newWorld(t, strings.Replace(fastConfig, `"sweepRate":1000`, `"sweepRate":40`, 1))
	cfg, err := srv.AWSConfig(w.ctx)
	if err != nil {
		t.Fatal(err)
	}
	q := sqs.NewFromConfig(cfg)
	// The name internal/testing/stack gives the stack's SweepQueue, so that the
	// recorded SendMessage is checked against the role's statement for it.
	qout, err := q.CreateQueue(w.ctx, &sqs.CreateQueueInput{QueueName: aws.String("amishare-SweepQueue")})
	if err != nil {
		t.Fatal(err)
	}
	queueURL := aws.ToString(qout.QueueUrl)
	ids, snaps, err := w.fx.RegisterImages(w.ctx, "cont", 9, map[string]string{amitag.Accounts: acctA})
	if err != nil {
		t.Fatal(err)
	}
	gone, gsnaps := w.plainImage(t, 1, map[string]string{amitag.Accounts: acctB})
	setup := w.handler(t, app.Options{})
	if _, err := w.handle(t, setup, sampleEvent(t, "ami-available.json", gone)); err != nil {
		t.Fatal(err)
	}
	if err := w.fx.DeregisterImage(w.ctx, gone); err != nil {
		t.Fatal(err)
	}

	const margin = time.Second
	h := w.handler(t, app.Options{SweepQueueURL: queueURL, SweepMargin: margin, SweepWorkers: 2})
	invoke := func(raw []byte) handler.Summary {
		t.Helper()
		ctx, cancel := context.WithTimeout(w.ctx, margin+150*time.Millisecond)
		defer cancel()
		sum, err := h.Handle(ctx, raw)
		if err != nil {
			t.Fatalf("invocation: %v", err)
		}
		return sum
	}
	w.logs.Reset()
	sums := []handler.Summary{invoke(sampleEvent(t, "scheduled-sweep.json", sampleImage))}
	for len(sums) < 40 {
		msgs, err := q.ReceiveMessage(w.ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(queueURL), MaxNumberOfMessages: 10})
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
		if _, err := q.DeleteMessage(w.ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(queueURL), ReceiptHandle: m.ReceiptHandle}); err != nil {
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
	for _, l := range w.linesWithMsg(t, "image reconciled") {
		seen[l.str("imageId")]++
	}
	for _, id := range append(slices.Clone(ids), gone) {
		if seen[id] != 1 {
			t.Errorf("%s decided %d times, want once", id, seen[id])
		}
	}
	for i, id := range ids {
		w.wantShared(t, id, snaps[i:i+1], acctA)
	}
	if p := w.snapshotPerms(t, gsnaps[0]); len(p.Accounts) != 0 {
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
	srv := moto.ForTest(t) // the same server newWorld resets and uses
	w := newWorld(t, fastConfig)
	ids, snaps, err := w.fx.RegisterImages(w.ctx, "rate", 6, map[string]string{amitag.Accounts: acctA})
	if err != nil {
		t.Fatal(err)
	}
	w.sweepNow(t, w.handler(t, app.Options{})) // bring them in sync, fast
	w.putConfig(t, strings.Replace(fastConfig, `"sweepRate":1000`, fmt.Sprintf(`"sweepRate":%d`, rate), 1))

	rec, err := fixture.NewRecorder(srv.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close()
	t.Setenv("AWS_ENDPOINT_URL", rec.Endpoint)
	h := w.handler(t, app.Options{ReportBlockPublicAccess: true})
	s := w.sweepNow(t, h)
	hits := rec.Hits()
	for i, id := range ids {
		w.wantShared(t, id, snaps[i:i+1], acctA)
	}
	if len(hits) < 3*rate || len(hits) != s.Calls+2 {
		t.Fatalf("calls: the emulator saw %d, the sweep counted %d; want the sweep's and the 2 of the start, at least %d", len(hits), s.Calls, 3*rate)
	}
	most := fixture.MaxInWindow(hits, time.Second)
	if most > rate {
		t.Errorf("a one-second window holds %d calls, want at most sweepRate = %d", most, rate)
	}
	if most < rate-1 {
		t.Errorf("the busiest one-second window holds %d calls, want close to sweepRate = %d", most, rate)
	}
	// Close to the rate over the whole sweep, not only in its busiest second:
	// the limiter spaces calls 1.05/sweepRate apart (4.76 calls/s here).
	hits = hits[2:] // the sweep's own
	span := hits[len(hits)-1].At.Sub(hits[0].At)
	if avg := float64(len(hits)-1) / span.Seconds(); avg < 0.8*rate {
		t.Errorf("average rate: %.2f calls/s over %s, want close to sweepRate = %d", avg, span, rate)
	}
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
	w := newWorld(t, `{"allowedAccounts":["`+strings.Join(accounts, `","`)+`"],"sweepRate":1000}`)
	key, err := w.fx.CreateKey(w.ctx, "one key")
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range accounts {
		w.image(t, []fixture.Disk{{KeyID: key}}, map[string]string{amitag.Accounts: a})
	}
	s := w.sweepNow(t, w.handler(t, app.Options{SweepWorkers: len(accounts)}))
	if s.DriftRepaired != len(accounts) || s.Errors != 0 {
		t.Errorf("sweep: got %+v, want %d images shared", s, len(accounts))
	}
	if got, want := w.keyAccounts(t, key), sorted(accounts...); !slices.Equal(got, want) {
		t.Errorf("key grants %v after one sweep, want %v", got, want)
	}
}
