package share_test

import (
	"slices"
	"testing"

	"github.com/amishare/amishare/internal/testing/fixture"
	"github.com/amishare/amishare/internal/testing/world"
	"github.com/amishare/amishare/pkg/amitag"
	"github.com/amishare/amishare/pkg/app"
	"github.com/amishare/amishare/pkg/share"
	"github.com/amishare/amishare/pkg/share/rules"
)

// TestCleanupOrganizationKeys: an image shared with an OU and an account is
// deregistered. Cleanup finds its snapshots by their record, unshares them
// and drops the OU and the account from the key, keeping the account another
// image on the same key is shared with; a dry run plans it and changes nothing.
func TestCleanupOrganizationKeys(t *testing.T) {
	e := newEnv(t, orgConfig)
	k := e.Key(t)
	gone, gsnaps := e.EncryptedImage(t, "ou-ab12-11111111 "+acctA, k)
	other, osnaps := e.EncryptedImage(t, acctB, k)
	for _, id := range []string{gone, other} {
		if res := e.reconcile(t, id); res.Status != rules.StatusShared {
			t.Fatalf("%s: status %q (%s), want shared", id, res.Status, res.Message)
		}
	}
	wantKey := func(want ...string) {
		t.Helper()
		if got := e.KeyGrantees(t, k); !slices.Equal(got, want) {
			t.Errorf("key grantees: got %v, want %v", got, want)
		}
	}
	wantKey(acctA, acctB, "o-a1b2c3d4e5/ou-ab12-11111111")
	tags, err := e.Fixture.SnapshotTags(e.Ctx, gsnaps[0])
	if err != nil || tags[amitag.Image] != gone {
		t.Fatalf("record on %s: got %v %v, want %s = %s", gsnaps[0], tags, err, amitag.Image, gone)
	}
	e.DeregisterImage(t, gone)

	e.Calls.Reset()
	res, err := e.engine.Cleanup(e.Ctx, gone, share.Options{DryRun: true})
	if err != nil || res.Outcome != share.OutcomePlanned || len(res.Changes) == 0 {
		t.Fatalf("dry run: got %+v, %v; want planned changes", res, err)
	}
	if m := e.Calls.Mutating(); len(m) != 0 {
		t.Errorf("dry run: modifying calls %v, want none", m)
	}
	wantKey(acctA, acctB, "o-a1b2c3d4e5/ou-ab12-11111111")

	res, err = e.engine.Cleanup(e.Ctx, gone, share.Options{})
	if err != nil || res.Outcome != share.OutcomeCleaned {
		t.Fatalf("cleanup: got %+v, %v; want cleaned", res, err)
	}
	e.WantShared(t, other, osnaps, acctB)
	if p := e.SnapshotPerms(t, gsnaps[0]); len(p.Accounts) != 0 || p.Public {
		t.Errorf("snapshot of the gone image: got %+v, want no permission", p)
	}
	wantKey(acctB)
	// The audit names the OU by its ARN (from the configuration: the image
	// that held it is gone).
	var ouRemoved bool
	for _, c := range res.Changes {
		if c.KeyARN == k && c.Action == "remove" && c.OrganizationalUnitARN != "" {
			ouRemoved = c.OrganizationalUnitARN == ouWork
			if !ouRemoved {
				t.Errorf("key change %+v: organizationalUnitArn is not the OU's ARN %s", c, ouWork)
			}
		}
	}
	if !ouRemoved {
		t.Errorf("changes %+v: want the OU removed from the key", res.Changes)
	}
	if tags, err := e.Fixture.SnapshotTags(e.Ctx, gsnaps[0]); err != nil || tags[amitag.Image] != "" {
		t.Errorf("record after cleanup: got %v %v, want none", tags, err)
	}
}

// TestDeregisteredEventCleansUp: the snapshots recorded for a deregistered
// image lose every create-volume permission, except what another managed
// image using the same snapshot needs; its key keeps only what other
// images need. Snapshots amishare never shared are not touched.
func TestDeregisteredEventCleansUp(t *testing.T) {
	w := world.New(t, testConfig)
	key := w.Key(t)
	gone, gsnaps := w.Image(t, []fixture.Disk{{KeyID: key}, {KeyID: key}}, map[string]string{amitag.Accounts: acctA + " " + acctB})
	// Another image shares the gone image's second snapshot.
	other, err := w.Fixture.RegisterImageFromSnapshots(w.Ctx, "other", gsnaps[1:], map[string]string{amitag.Accounts: acctB})
	if err != nil {
		t.Fatal(err)
	}
	// An unmanaged image whose snapshot was shared by hand, then deregistered too.
	manual, msnaps := w.PlainImage(t, 1, nil)
	w.ShareSnapshot(t, msnaps[0], []string{outsider}, nil)
	h := w.Handler(t, app.Options{})
	for _, id := range []string{gone, other} {
		if _, err := w.Handle(t, h, world.SampleEvent(t, "ami-available.json", id)); err != nil {
			t.Fatal(err)
		}
	}
	if got := w.KeyAccounts(t, key); !slices.Equal(got, []string{acctA, acctB}) {
		t.Fatalf("key before: got %v, want A and B", got)
	}
	for _, id := range []string{gone, manual} {
		w.DeregisterImage(t, id)
	}

	w.Logs.Reset()
	sum, err := w.Handle(t, h, world.SampleEvent(t, "ami-deregistered.json", gone))
	if err != nil {
		t.Fatalf("Handle(deregistered): %v", err)
	}
	if len(sum.Images) != 1 || sum.Images[0].Outcome != share.OutcomeCleaned {
		t.Fatalf("result: got %+v, want one cleaned image", sum.Images)
	}
	if p := w.SnapshotPerms(t, gsnaps[0]); len(p.Accounts) != 0 || p.Public {
		t.Errorf("snapshot only the gone image used: got %v, want no permission", p.Accounts)
	}
	if p := w.SnapshotPerms(t, gsnaps[1]); !slices.Equal(p.Accounts, []string{acctB}) {
		t.Errorf("snapshot the other image uses: got %v, want its target %s", p.Accounts, acctB)
	}
	if got := w.KeyAccounts(t, key); !slices.Equal(got, []string{acctB}) {
		t.Errorf("key after: got %v, want only %s (the other image needs it)", got, acctB)
	}
	// The record of the snapshot only the gone image used is removed; the
	// shared snapshot's names the image still behind it, whose deregistration
	// then revokes what is left.
	if got := w.SnapshotRecord(t, gsnaps[0]); got != "" {
		t.Errorf("record on %s: got %q, want it removed once cleaned", gsnaps[0], got)
	}
	if got := w.SnapshotRecord(t, gsnaps[1]); got != other {
		t.Errorf("record on the shared snapshot %s: got %q, want %s (the image still behind it)", gsnaps[1], got, other)
	}
	w.WantShared(t, other, gsnaps[1:], acctB)
	// Every revocation is in the audit log.
	removed := 0
	for _, l := range w.LinesWithMsg(t, "permission changed") {
		if l.Str("imageId") == gone && l.Str("snapshotId") != "" && l.Str("action") == "remove" {
			removed++
		}
	}
	if removed != 3 { // A and B from snapshot 1, A from snapshot 2
		t.Errorf("audit lines for snapshot removals: got %d, want 3\n%s", removed, w.Logs)
	}
	// The event counts the snapshots it unshared, as a sweep does.
	if n := len(w.LinesWithMsg(t, "metrics")); n != 1 {
		t.Fatalf(`"metrics" log lines: got %d, want 1`, n)
	}
	world.WantMetrics(t, w.Metrics(t, world.EventMetrics...), map[string]int{"SnapshotsCleaned": 2, "AccountsRemoved": 0, "Errors": 0})

	// A second delivery, and the event of an image amishare never shared, change nothing.
	for _, id := range []string{gone, manual} {
		sum, err := w.Handle(t, h, world.SampleEvent(t, "ami-deregistered.json", id))
		if err != nil || len(sum.Images) != 1 || sum.Images[0].Outcome != share.OutcomeGone {
			t.Errorf("deregistered %s again: got %+v, %v; want gone", id, sum.Images, err)
		}
		if got := w.Calls.Mutating(); len(got) != 0 {
			t.Errorf("modifying calls: got %v, want none", got)
		}
	}
	if p := w.SnapshotPerms(t, msnaps[0]); !slices.Equal(p.Accounts, []string{outsider}) {
		t.Errorf("snapshot amishare never shared: got %v, want the hand share kept", p.Accounts)
	}
}
