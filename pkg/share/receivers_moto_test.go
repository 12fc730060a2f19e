package share_test

import (
	"maps"
	"strings"
	"testing"

	"github.com/amishare/amishare/pkg/amitag"
	"github.com/amishare/amishare/pkg/share"
	"github.com/amishare/amishare/pkg/share/rules"
)

// receiverConfig: A is a receiver, B an allowed account that is not; the
// golden parameter; the tag keys team and os mirrored.
const receiverConfig = `{"allowedAccounts":["111122223333","444455556666"],"receivers":["111122223333"],
	"allowedOrganizationalUnits":["arn:aws:organizations::210987654321:ou/o-a1b2c3d4e5/ou-ab12-11111111"],
	"parameters":{"/amishare/images/golden/al2023":"golden-al2023-*"},"mirrorTags":["team","os"]}`

func TestReceiversGetTheirOwnParameters(t *testing.T) {
	e := newEnv(t, receiverConfig)
	a := e.Receiver(t, acctA)
	b := e.As(acctB)
	both := goldenImage(t, e, "jan", jan, map[string]string{amitag.Accounts: acctA + " " + acctB})
	res := e.reconcile(t, both)
	if got := a.Parameter(t, e.World, golden); got != both {
		t.Errorf("receiver %s: parameter %q, want %s", acctA, got, both)
	}
	if got := b.Parameter(t, e.World, golden); got != "" {
		t.Errorf("non-receiver %s: parameter %q, want none (only receivers are ever assumed into)", acctB, got)
	}
	if n := e.Calls.Count("AssumeRole"); n != 1 {
		t.Errorf("AssumeRole calls %d, want 1 (the receiver only)", n)
	}
	if res.Consumers == nil || len(res.Consumers.Unreachable) != 0 {
		t.Errorf("consumers %+v, want none unreachable", res.Consumers)
	}

	// A newer image shared only with B: the owner's parameter moves, A's stays.
	onlyB := goldenImage(t, e, "feb", feb, map[string]string{amitag.Accounts: acctB})
	e.reconcile(t, onlyB)
	e.wantParameter(t, onlyB)
	if got := a.Parameter(t, e.World, golden); got != both {
		t.Errorf("receiver %s after an image shared only with %s: %q, want %s", acctA, acctB, got, both)
	}
	// A newer one shared with A takes A's over.
	newer := goldenImage(t, e, "mar", mar, nil)
	e.reconcile(t, newer)
	if got := a.Parameter(t, e.World, golden); got != newer {
		t.Errorf("receiver %s: %q, want the newer %s", acctA, got, newer)
	}

	// A loses the newest image: its parameter falls back to the newest it can still use.
	e.Tag(t, newer, map[string]string{amitag.Accounts: acctB})
	res = e.reconcile(t, newer)
	if got := a.Parameter(t, e.World, golden); got != both {
		t.Errorf("receiver %s after losing %s: %q, want %s", acctA, newer, got, both)
	}
	if res.Consumers.Rollbacks() != 1 {
		t.Errorf("consumers %+v, want A's parameter rolled back", res.Consumers)
	}
	// And when it has none left, deleted.
	e.Tag(t, both, map[string]string{amitag.Accounts: acctB})
	e.reconcile(t, both)
	if got := a.Parameter(t, e.World, golden); got != "" {
		t.Errorf("receiver %s with no image left: %q, want the parameter deleted", acctA, got)
	}
}

func TestMirroredTagsAreTheConfiguredOnesOnly(t *testing.T) {
	e := newEnv(t, receiverConfig)
	a := e.Receiver(t, acctA)
	id := goldenImage(t, e, "jan", jan, map[string]string{"team": "platform", "os": "al2023", "cost-center": "42"})
	e.reconcile(t, id)
	want := map[string]string{"team": "platform", "os": "al2023"}
	if got := a.ImageTags(t, e.World, id); !maps.Equal(got, want) {
		t.Errorf("receiver's tags %v, want exactly %v (no amishare tag, no unlisted key)", got, want)
	}
	// The owner never sees the receiver's tags as its own; its tags are untouched.
	if got := e.Tags(t, id)["cost-center"]; got != "42" {
		t.Errorf("owner's cost-center %q, want 42", got)
	}

	e.Tag(t, id, map[string]string{"team": "security"})
	e.Untag(t, id, "os")
	e.reconcile(t, id)
	want = map[string]string{"team": "security"}
	if got := a.ImageTags(t, e.World, id); !maps.Equal(got, want) {
		t.Errorf("receiver's tags after the owner's change %v, want %v", got, want)
	}
	// In sync: nothing written.
	e.reconcile(t, id)
	for _, c := range e.Calls.Mutating() {
		if c == "CreateTags" || c == "DeleteTags" {
			t.Errorf("%s made with the receiver in sync", c)
		}
	}
}

func TestUnreachableReceiverDoesNotBlockTheShare(t *testing.T) {
	e := newEnv(t, receiverConfig)
	id := goldenImage(t, e, "jan", jan, nil)
	res := e.reconcile(t, id) // A has no receiver role yet
	e.WantShared(t, id, nil, acctA)
	e.wantParameter(t, id)
	e.WantStatus(t, id, rules.StatusShared, "receiver "+acctA+" unreachable (AccessDenied), retried later")
	if res.Consumers == nil || len(res.Consumers.Unreachable) != 1 || res.Consumers.Unreachable[0].Account != acctA {
		t.Errorf("consumers %+v, want %s unreachable", res.Consumers, acctA)
	}

	a := e.Receiver(t, acctA)
	e.reconcile(t, id)
	if got := a.Parameter(t, e.World, golden); got != id {
		t.Errorf("receiver reached at the next reconcile: %q, want %s", got, id)
	}
	if msg := e.Tags(t, id)[amitag.Message]; strings.Contains(msg, "unreachable") {
		t.Errorf("message %q still says unreachable", msg)
	}
}

func TestOUSharesDoNotFeedReceivers(t *testing.T) {
	e := newEnv(t, receiverConfig)
	a := e.Receiver(t, acctA)
	id := goldenImage(t, e, "jan", jan, map[string]string{amitag.Accounts: "ou-ab12-11111111"})
	e.reconcile(t, id)
	e.wantParameter(t, id)
	if got := a.Parameter(t, e.World, golden); got != "" {
		t.Errorf("receiver %s (in the OU, for all amishare knows): %q, want none: an OU share never feeds a receiver", acctA, got)
	}
	if lines := e.LinesWithMsg(t, "organizations and OUs do not feed receivers"); len(lines) == 0 {
		t.Error("the log does not say that OU shares feed no receiver")
	}
}

// TestPlanMirrorsTagsOnAnImageNotSharedYet: a dry run of an image the
// receiver does not see yet (the plan shares it) plans every mirrored tag,
// and reports no failure.
func TestPlanMirrorsTagsOnAnImageNotSharedYet(t *testing.T) {
	e := newEnv(t, receiverConfig)
	a := e.Receiver(t, acctA)
	id := goldenImage(t, e, "jan", jan, map[string]string{"team": "platform"})
	res, err := e.engine.Reconcile(e.Ctx, id, share.Options{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	c := res.Consumers
	if c == nil || len(c.Tags) != 1 || c.Tags[0].Account != acctA || c.Tags[0].Error != "" || !maps.Equal(c.Tags[0].Set, map[string]string{"team": "platform"}) || len(c.Notes) != 0 {
		t.Errorf("consumers %+v, want team = platform planned in %s, and no note", c, acctA)
	}
	if got := a.ImageTags(t, e.World, id); got != nil {
		t.Errorf("a dry run shared the image with %s (its tags %v)", acctA, got)
	}
}
