package share_test

import (
	"slices"
	"testing"

	"github.com/amishare/amishare/pkg/amitag"
	"github.com/amishare/amishare/pkg/share"
	"github.com/amishare/amishare/pkg/share/rules"
)

// TestCleanupOrganizationKeys: an image shared with an OU and an account is
// deregistered. Cleanup finds its snapshots by their record, unshares them
// and drops the OU and the account from the key, keeping the account another
// image on the same key is shared with; a dry run plans it and changes nothing.
func TestCleanupOrganizationKeys(t *testing.T) {
	e := newEnv(t, orgConfig)
	k := e.key(t)
	gone, gsnaps := e.encryptedImage(t, "ou-ab12-11111111 "+acctA, k)
	other, osnaps := e.encryptedImage(t, acctB, k)
	for _, id := range []string{gone, other} {
		if res := e.reconcile(t, id); res.Status != rules.StatusShared {
			t.Fatalf("%s: status %q (%s), want shared", id, res.Status, res.Message)
		}
	}
	wantKey := func(want ...string) {
		t.Helper()
		if got := e.keyGrantees(t, k); !slices.Equal(got, want) {
			t.Errorf("key grantees: got %v, want %v", got, want)
		}
	}
	wantKey(acctA, acctB, "o-a1b2c3d4e5/ou-ab12-11111111")
	tags, err := e.fx.SnapshotTags(e.ctx, gsnaps[0])
	if err != nil || tags[amitag.Image] != gone {
		t.Fatalf("record on %s: got %v %v, want %s = %s", gsnaps[0], tags, err, amitag.Image, gone)
	}
	if err := e.fx.DeregisterImage(e.ctx, gone); err != nil {
		t.Fatal(err)
	}

	e.calls.Reset()
	res, err := e.engine.Cleanup(e.ctx, gone, share.Options{DryRun: true})
	if err != nil || res.Outcome != share.OutcomePlanned || len(res.Changes) == 0 {
		t.Fatalf("dry run: got %+v, %v; want planned changes", res, err)
	}
	if m := e.calls.Mutating(); len(m) != 0 {
		t.Errorf("dry run: modifying calls %v, want none", m)
	}
	wantKey(acctA, acctB, "o-a1b2c3d4e5/ou-ab12-11111111")

	res, err = e.engine.Cleanup(e.ctx, gone, share.Options{})
	if err != nil || res.Outcome != share.OutcomeCleaned {
		t.Fatalf("cleanup: got %+v, %v; want cleaned", res, err)
	}
	e.wantShared(t, other, osnaps, acctB)
	if p, err := e.fx.VolumePermissions(e.ctx, gsnaps[0]); err != nil || len(p.Accounts) != 0 || p.Public {
		t.Errorf("snapshot of the gone image: got %+v %v, want no permission", p, err)
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
	if tags, err := e.fx.SnapshotTags(e.ctx, gsnaps[0]); err != nil || tags[amitag.Image] != "" {
		t.Errorf("record after cleanup: got %v %v, want none", tags, err)
	}
}
