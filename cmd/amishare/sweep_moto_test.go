package main

import (
	"slices"
	"testing"

	"github.com/amishare/amishare/internal/testing/world"
	"github.com/amishare/amishare/pkg/amitag"
	"github.com/amishare/amishare/pkg/event"
	"github.com/amishare/amishare/pkg/handler"
)

// sweepConfig is testConfig with a rate that does not slow the test down.
const sweepConfig = `{"allowedAccounts":["111122223333","444455556666","777788889999"],"sweepRate":1000}`

// TestRunSweepManyImages: `amishare sweep` shares 150+ images whose events
// were lost; a second sweep of the same, now in sync, makes no modifying
// call and costs at most 1 + S calls per image (S = 1 snapshot here) plus
// a few per page.
func TestRunSweepManyImages(t *testing.T) {
	const n = 150
	w := world.New(t, sweepConfig)
	hookHandler(t, w, nil)
	ids, snaps := w.Images(t, "many", n, map[string]string{amitag.Accounts: acctA + " " + acctB})

	r := runCLI(t, "", "sweep", "-o", "json")
	if r.code != 0 || r.err != nil {
		t.Fatalf("first sweep: got %s; want exit 0", r)
	}
	sum := decode[sweepReport](t, r)
	if sum.ManagedImages != n || sum.ImagesChecked != n || sum.DriftRepaired != n || sum.Errors != 0 {
		t.Errorf("first sweep: got %d managed, %d checked, %d repaired, %d errors; want %d, %d, %d, 0",
			sum.ManagedImages, sum.ImagesChecked, sum.DriftRepaired, sum.Errors, n, n, n)
	}
	// The summary lists at most 100 results and counts the rest.
	if len(sum.Changed) != 100 || sum.Omitted != n-100 {
		t.Errorf("first sweep: %d results listed, %d omitted; want 100 and %d", len(sum.Changed), sum.Omitted, n-100)
	}
	for _, i := range []int{0, n / 2, n - 1} {
		w.WantShared(t, ids[i], snaps[i:i+1], acctA, acctB)
		if got := w.Tags(t, ids[i])[amitag.Status]; got != "shared" {
			t.Errorf("%s status: got %q, want shared", ids[i], got)
		}
	}

	w.Calls.Reset()
	r = runCLI(t, "", "sweep", "-o", "json")
	if r.code != 0 || r.err != nil {
		t.Fatalf("second sweep: got %s; want exit 0", r)
	}
	sum = decode[sweepReport](t, r)
	if got := w.Calls.Mutating(); len(got) != 0 {
		t.Errorf("in-sync sweep: modifying calls %v, want none", got)
	}
	for op, want := range map[string]int{"DescribeImageAttribute": n, "DescribeSnapshotAttribute": n, "GetParameter": 1} {
		if got := w.Calls.Count(op); got != want {
			t.Errorf("%s calls: got %d, want %d", op, got, want)
		}
	}
	// 1 + S per image, plus per sweep: configuration, image list, recorded
	// snapshots, and one DescribeSnapshots per 200 snapshots (S = 1: per 200 images).
	budget := n*(1+1) + 3 + (n+199)/200
	if got := len(w.Calls.Calls()); got > budget {
		t.Errorf("in-sync sweep of %d images: %d calls, want at most %d", n, got, budget)
	}
	if sum.Calls != len(w.Calls.Calls()) {
		t.Errorf("summary calls: got %d, the client made %d", sum.Calls, len(w.Calls.Calls()))
	}
	if sum.DriftRepaired != 0 || sum.ImagesChecked != n || len(sum.Changed) != 0 {
		t.Errorf("in-sync sweep: got %d repaired, %d checked, %d changed; want 0, %d, 0", sum.DriftRepaired, sum.ImagesChecked, len(sum.Changed), n)
	}
}

// TestRunSweepDryRun: --dry-run plans the repair and the cleanup, changes nothing.
func TestRunSweepDryRun(t *testing.T) {
	w := world.New(t, sweepConfig)
	hookHandler(t, w, nil)
	lost, lsnaps := w.PlainImage(t, 2, map[string]string{amitag.Accounts: acctA})
	gone, gsnaps := w.PlainImage(t, 1, map[string]string{amitag.Accounts: acctB})
	if r := runCLI(t, "", "apply", gone); r.code != 0 {
		t.Fatalf("apply: %s", r)
	}
	w.DeregisterImage(t, gone)

	w.Calls.Reset()
	r := runCLI(t, "", "sweep", "--dry-run", "-o", "json")
	if r.code != 0 || r.err != nil {
		t.Fatalf("got %s; want exit 0", r)
	}
	if got := w.Calls.Mutating(); len(got) != 0 {
		t.Errorf("dry run: modifying calls %v, want none", got)
	}
	sum := decode[sweepReport](t, r)
	if !sum.DryRun || len(sum.Changed) != 2 {
		t.Fatalf("dry run summary: got %+v, want the planned repair and cleanup", sum)
	}
	var planned []string
	for _, res := range sum.Changed {
		planned = append(planned, res.ImageID)
		if res.Outcome != "planned" || len(res.Changes) == 0 {
			t.Errorf("%s: got outcome %q with %d changes, want planned changes", res.ImageID, res.Outcome, len(res.Changes))
		}
	}
	slices.Sort(planned)
	if want := []string{gone, lost}; !slices.Equal(planned, sortedIDs(want)) {
		t.Errorf("planned: got %v, want %v", planned, sortedIDs(want))
	}
	w.WantShared(t, lost, lsnaps)
	if p := w.SnapshotPerms(t, gsnaps[0]); !slices.Equal(p.Accounts, []string{acctB}) {
		t.Errorf("gone image's snapshot after a dry run: got %v, want still %s", p.Accounts, acctB)
	}
}

func sortedIDs(ids []string) []string {
	s := slices.Clone(ids)
	slices.Sort(s)
	return s
}

// TestRunHandleScheduledEvent: `amishare handle` with the sample scheduled
// event runs the same sweep.
func TestRunHandleScheduledEvent(t *testing.T) {
	w := world.New(t, sweepConfig)
	hookHandler(t, w, nil)
	id, snaps := w.PlainImage(t, 1, map[string]string{amitag.Accounts: acctC})
	r := runCLI(t, "", "handle", world.EventFile(t, "scheduled-sweep.json", world.SampleImage))
	if r.code != 0 || r.err != nil {
		t.Fatalf("got %s; want exit 0", r)
	}
	sum := decode[handler.Summary](t, r)
	if sum.Kind != event.KindScheduled || len(sum.Sweeps) != 1 || sum.Sweeps[0].ImagesChecked != 1 {
		t.Errorf("summary: got %+v, want one sweep of 1 image", sum)
	}
	w.WantShared(t, id, snaps, acctC)
	wantHumanLog(t, r.stderr, "INFO sweep done eventId=", "kind=scheduled sweepId=", "imagesChecked=1")
}
