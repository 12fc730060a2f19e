package share_test

import (
	"fmt"
	"testing"

	"github.com/amishare/amishare/internal/testing/fixture"
	"github.com/amishare/amishare/pkg/amitag"
	"github.com/amishare/amishare/pkg/app"
	"github.com/amishare/amishare/pkg/share"
	"github.com/amishare/amishare/pkg/share/rules"
)

// firstShareBudget is the most AWS calls a first share may cost: the image,
// the configuration, the launch permissions, the snapshots (one batch), the
// snapshots' record (amishare:image, one CreateTags), the status tags and the
// image's share (7), two calls per snapshot (read and
// share its permissions) and five per customer-managed key (DescribeKey, the
// policy read for planning, the read right before the write, the write, the
// read-back).
func firstShareBudget(snapshots, keys int) int { return 7 + 2*snapshots + 5*keys }

// prepareFirstShare registers an image with one snapshot per disk, each of
// keys encrypting at least one; run reconciles it with an engine whose
// configuration is read afresh, counting every call (SSM included).
func prepareFirstShare(tb testing.TB, e *env, snapshots, keys int) (run func() (calls, getPolicy int)) {
	tb.Helper()
	var keyARNs []string
	for range keys {
		k := e.Key(tb)
		keyARNs = append(keyARNs, k)
	}
	disks := make([]fixture.Disk, snapshots)
	for i := range disks {
		if keys > 0 {
			disks[i].KeyID = keyARNs[i%keys]
		}
	}
	id, _ := e.Image(tb, disks, map[string]string{amitag.Accounts: acctA + " " + acctB})
	eng := e.Engine(tb, app.Options{}) // a new app: the configuration is read afresh
	return func() (int, int) {
		e.Calls.Reset()
		res, err := eng.Reconcile(e.Ctx, id, share.Options{})
		if err != nil || res.Status != rules.StatusShared {
			tb.Fatalf("reconcile: %v (status %q %s)", err, res.Status, res.Message)
		}
		return len(e.Calls.Calls()), e.Calls.Count("GetKeyPolicy")
	}
}

func TestFirstShareCallBudget(t *testing.T) {
	for _, c := range []struct{ snapshots, keys int }{{1, 0}, {3, 2}, {4, 4}} {
		t.Run(fmt.Sprintf("S=%d,K=%d", c.snapshots, c.keys), func(t *testing.T) {
			e := newEnv(t, testConfig)
			calls, gets := prepareFirstShare(t, e, c.snapshots, c.keys)()
			if budget := firstShareBudget(c.snapshots, c.keys); calls > budget {
				t.Errorf("first share made %d calls, budget 7+2S+5K = %d: %v", calls, budget, e.Calls.Calls())
			}
			// Per key: one policy read for planning, one right before the
			// write (nothing between them), one after it.
			if gets != 3*c.keys {
				t.Errorf("GetKeyPolicy calls = %d, want %d", gets, 3*c.keys)
			}
		})
	}
}
