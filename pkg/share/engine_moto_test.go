package share_test

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/amishare/amishare/internal/testing/world"
	"github.com/amishare/amishare/pkg/amitag"
	"github.com/amishare/amishare/pkg/app"
	"github.com/amishare/amishare/pkg/share"
	"github.com/amishare/amishare/pkg/share/rules"
)

const (
	acctA    = "111122223333"
	acctB    = "444455556666"
	acctC    = "777788889999"
	acctD    = "222233334444"
	outsider = "999999999999" // in no list
	param    = "/amishare/config"
	// The test configuration: A and B allowed, group prod = C and D.
	testConfig = `{"allowedAccounts":["111122223333","444455556666"],"groups":{"prod":["777788889999","222233334444"]}}`
)

// env is one test's world and the engine the app builds there.
type env struct {
	*world.World
	engine *share.Engine
}

func newEnv(t testing.TB, configDoc string) *env {
	t.Helper()
	w := world.New(t, configDoc)
	return &env{World: w, engine: w.Engine(t, app.Options{})}
}

// reconcile runs the engine on id with a fresh call log.
func (e *env) reconcile(t testing.TB, id string) share.Result {
	t.Helper()
	e.Calls.Reset()
	res, err := e.engine.Reconcile(e.Ctx, id, share.Options{})
	if err != nil {
		t.Fatalf("Reconcile(%s): %v", id, err)
	}
	return res
}

func TestShareRevokeAndIdempotence(t *testing.T) {
	e := newEnv(t, testConfig)
	id, snaps := e.PlainImage(t, 3, map[string]string{amitag.Accounts: acctA + " " + acctB})

	res := e.reconcile(t, id)
	if res.Outcome != share.OutcomeApplied || res.Status != rules.StatusShared {
		t.Fatalf("outcome %q status %q, want applied shared", res.Outcome, res.Status)
	}
	e.WantShared(t, id, snaps, acctA, acctB)
	e.WantStatus(t, id, rules.StatusShared, "shared with 2 account(s)")
	// The record on the snapshots (one call), the snapshots, then the image:
	// one call per snapshot, one for the image, then the status tags.
	want := []string{"CreateTags", "ModifySnapshotAttribute", "ModifySnapshotAttribute", "ModifySnapshotAttribute", "ModifyImageAttribute", "CreateTags"}
	if got := e.Calls.Mutating(); !slices.Equal(got, want) {
		t.Errorf("modifying calls = %v, want %v", got, want)
	}
	// Reads: the image, the configuration (the app records every client's
	// calls, SSM's too), its launch permissions, the snapshots in one batch,
	// each snapshot's permissions.
	wantAll := []string{"DescribeImages", "GetParameter", "DescribeImageAttribute", "DescribeSnapshots",
		"DescribeSnapshotAttribute", "DescribeSnapshotAttribute", "DescribeSnapshotAttribute"}
	wantAll = append(wantAll, want...)
	if got := e.Calls.Calls(); !slices.Equal(got, wantAll) {
		t.Errorf("calls = %v, want %v", got, wantAll)
	}

	// A second run on the unchanged image changes nothing and writes no tag.
	res = e.reconcile(t, id)
	if got := e.Calls.Mutating(); len(got) != 0 || res.TagsWritten || len(res.Changes) != 0 {
		t.Errorf("second run: modifying calls %v, tags written %v, changes %v; want none", got, res.TagsWritten, res.Changes)
	}

	// Dropping B revokes it: the image first, then each snapshot.
	e.Tag(t, id, map[string]string{amitag.Accounts: acctA})
	e.reconcile(t, id)
	e.WantShared(t, id, snaps, acctA)
	want = []string{"ModifyImageAttribute", "ModifySnapshotAttribute", "ModifySnapshotAttribute", "ModifySnapshotAttribute", "CreateTags"}
	if got := e.Calls.Mutating(); !slices.Equal(got, want) {
		t.Errorf("revoke calls = %v, want %v", got, want)
	}

	// Removing the tag revokes everything; the status tag keeps the image managed.
	e.Untag(t, id, amitag.Accounts)
	res = e.reconcile(t, id)
	e.WantShared(t, id, snaps)
	e.WantStatus(t, id, rules.StatusUnshared, "not shared")
	if res.Status != rules.StatusUnshared {
		t.Errorf("status = %q, want unshared", res.Status)
	}
}

func TestAllowlistAndGroups(t *testing.T) {
	e := newEnv(t, testConfig)
	id, snaps := e.PlainImage(t, 2, map[string]string{amitag.Accounts: "prod, 999999999999 all 11112222333 " + acctA})
	res := e.reconcile(t, id)
	e.WantShared(t, id, snaps, acctA, acctD, acctC)
	e.WantStatus(t, id, rules.StatusPartial, `"999999999999" (account is not in the allowlist)`)
	e.WantStatus(t, id, rules.StatusPartial, `"all" (public sharing is never allowed)`)
	e.WantStatus(t, id, rules.StatusPartial, `"11112222333"`)
	if len(res.Refused) != 3 {
		t.Errorf("refused = %v, want 3 tokens", res.Refused)
	}
}

func TestUntaggedImageIsLeftAlone(t *testing.T) {
	e := newEnv(t, testConfig)
	id, snaps := e.PlainImage(t, 1, nil)
	e.ShareImage(t, id, ec2types.LaunchPermission{UserId: aws.String(acctC)})
	res := e.reconcile(t, id)
	if res.Outcome != share.OutcomeUnmanaged {
		t.Errorf("outcome = %q, want unmanaged", res.Outcome)
	}
	if got := e.Calls.Mutating(); len(got) != 0 {
		t.Errorf("modifying calls on an unmanaged image: %v", got)
	}
	p := e.ImagePerms(t, id)
	if !slices.Equal(p.Accounts, []string{acctC}) {
		t.Errorf("manual share changed: %v, want [%s]", p.Accounts, acctC)
	}
	if tags := e.Tags(t, id); tags[amitag.Status] != "" {
		t.Errorf("status tag written on an unmanaged image: %v", tags)
	}
	for _, s := range snaps {
		if p := e.SnapshotPerms(t, s); len(p.Accounts) != 0 {
			t.Errorf("snapshot %s of an unmanaged image shared with %v", s, p.Accounts)
		}
	}
}

func TestManagedImageLosesManualShares(t *testing.T) {
	e := newEnv(t, testConfig)
	id, snaps := e.PlainImage(t, 2, map[string]string{amitag.Accounts: acctA})
	e.ShareImage(t, id, ec2types.LaunchPermission{UserId: aws.String(acctC)})
	e.ShareSnapshot(t, snaps[1], []string{acctC}, nil)
	e.reconcile(t, id)
	e.WantShared(t, id, snaps, acctA)
}

func TestMissingConfigurationChangesNothing(t *testing.T) {
	e := newEnv(t, "")
	id, snaps := e.PlainImage(t, 2, map[string]string{amitag.Accounts: acctA})
	e.ShareImage(t, id, ec2types.LaunchPermission{UserId: aws.String(acctB)})
	res := e.reconcile(t, id)
	if res.Outcome != share.OutcomeBlocked {
		t.Errorf("outcome = %q, want blocked", res.Outcome)
	}
	e.WantStatus(t, id, rules.StatusError, "configuration is missing")
	if got := e.Calls.Mutating(); !slices.Equal(got, []string{"CreateTags"}) {
		t.Errorf("modifying calls = %v, want only the status tags", got)
	}
	p := e.ImagePerms(t, id)
	if !reflect.DeepEqual(p.Accounts, []string{acctB}) {
		t.Errorf("launch permissions = %v, want the manual share to stay [%s]", p.Accounts, acctB)
	}
	for _, s := range snaps {
		if p := e.SnapshotPerms(t, s); len(p.Accounts) != 0 {
			t.Errorf("snapshot %s shared with %v without configuration", s, p.Accounts)
		}
	}
}

func TestUnknownImageIsGone(t *testing.T) {
	e := newEnv(t, testConfig)
	res := e.reconcile(t, "ami-0123456789abcdef0")
	if res.Outcome != share.OutcomeGone {
		t.Errorf("outcome = %q, want gone", res.Outcome)
	}
}

func TestAuditLogHasOneLinePerChange(t *testing.T) {
	e := newEnv(t, testConfig)
	id, _ := e.PlainImage(t, 2, map[string]string{amitag.Accounts: acctA + " " + acctB})
	e.reconcile(t, id)
	lines := 0
	for _, l := range strings.Split(e.Logs.String(), "\n") {
		if strings.Contains(l, `"msg":"permission changed"`) {
			lines++
			for _, k := range []string{`"imageId":"` + id + `"`, `"account":"`, `"action":"add"`} {
				if !strings.Contains(l, k) {
					t.Errorf("audit line %s lacks %s", l, k)
				}
			}
		}
	}
	// 2 accounts × (image + 2 snapshots)
	if lines != 6 {
		t.Errorf("audit lines = %d, want 6:\n%s", lines, e.Logs)
	}
}
