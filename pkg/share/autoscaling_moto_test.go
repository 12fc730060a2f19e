package share_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/amishare/amishare/internal/testing/iameval"
	"github.com/amishare/amishare/pkg/amitag"
	"github.com/amishare/amishare/pkg/app"
	"github.com/amishare/amishare/pkg/kmspolicy"
	"github.com/amishare/amishare/pkg/report"
	"github.com/amishare/amishare/pkg/share"
	"github.com/amishare/amishare/pkg/share/rules"
)

// asgConfig: A is a receiver, B an allowed account that is not; grants
// for the receivers' Auto Scaling roles (policy mode, the default).
const asgConfig = `{"allowedAccounts":["111122223333","444455556666"],"receivers":["111122223333"],"autoScalingGrants":true}`

func autoScalingRole(account string) string {
	return "arn:aws:iam::" + account + ":role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"
}

// asgGrants lists the key's grants for account's Auto Scaling role.
func (e *env) asgGrants(t *testing.T, key, account string) [][]string {
	t.Helper()
	out, err := e.Fixture.KMS.ListGrants(e.Ctx, &kms.ListGrantsInput{KeyId: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	var ops [][]string
	for _, g := range out.Grants {
		if aws.ToString(g.GranteePrincipal) == autoScalingRole(account) {
			var o []string
			for _, op := range g.Operations {
				o = append(o, string(op))
			}
			ops = append(ops, o)
		}
	}
	return ops
}

func TestAutoScalingGrantCreatedOnceScopedAndRevoked(t *testing.T) {
	e := newEnv(t, asgConfig)
	a := e.Receiver(t, acctA)
	a.AutoScalingRole(t, e.World)
	key := e.Key(t)
	id, _ := e.EncryptedImage(t, acctA+" "+acctB, key)
	res := e.reconcile(t, id)
	e.WantStatus(t, id, rules.StatusShared, "shared with 2 account(s)")

	// One grant, for A's Auto Scaling role, with exactly the guide's operations.
	grants := e.asgGrants(t, key, acctA)
	if len(grants) != 1 || !slices.Equal(grants[0], kmspolicy.AutoScalingOperations) {
		t.Fatalf("grants for %s's Auto Scaling role: %v, want one with %v", acctA, grants, kmspolicy.AutoScalingOperations)
	}
	if g := e.asgGrants(t, key, acctB); len(g) != 0 {
		t.Errorf("non-receiver %s got grants %v", acctB, g)
	}
	if res.Consumers == nil || !slices.ContainsFunc(res.Consumers.Grants, func(g share.GrantResult) bool { return g.Action == "create" && g.Account == acctA }) {
		t.Errorf("consumers %+v, want A's grant created", res.Consumers)
	}
	// The key policy lets A's receiver role create exactly that grant.
	policy := e.KeyPolicy(t, key)
	if got, _ := kmspolicy.AutoScalingGrantees(policy); !slices.Equal(got, []string{acctA}) {
		t.Errorf("Auto Scaling statements for %v, want [%s]", got, acctA)
	}
	role := "arn:aws:iam::" + acctA + ":role/amishare-receiver"
	for _, tc := range []struct {
		name             string
		principal, grant string
		ops              []string
		want             bool
	}{
		{"the receiver role, the guide's grant", role, autoScalingRole(acctA), kmspolicy.AutoScalingOperations, true},
		{"another principal of A", "arn:aws:iam::" + acctA + ":role/admin", autoScalingRole(acctA), kmspolicy.AutoScalingOperations, false},
		{"another grantee", role, "arn:aws:iam::" + acctA + ":root", kmspolicy.AutoScalingOperations, false},
		{"more operations", role, autoScalingRole(acctA), append(slices.Clone(kmspolicy.AutoScalingOperations), "RetireGrant"), false},
	} {
		q := iameval.Request{Action: "kms:CreateGrant", Resource: "*", Context: map[string][]string{
			"aws:PrincipalAccount": {acctA}, "aws:PrincipalArn": {tc.principal}, "kms:GranteePrincipal": {tc.grant}, "kms:GrantOperations": tc.ops}}
		// amishare's own statements (kms:GrantIsForAWSResource) never let a principal create a grant itself.
		q.Context["kms:GrantIsForAWSResource"] = []string{"false"}
		if ok, err := iameval.Allows(policy, q); err != nil || ok != tc.want {
			t.Errorf("%s: allowed %v (%v), want %v", tc.name, ok, err, tc.want)
		}
	}

	// Never twice.
	e.reconcile(t, id)
	if n := e.Calls.Count("CreateGrant"); n != 0 || len(e.asgGrants(t, key, acctA)) != 1 {
		t.Errorf("second reconcile: %d CreateGrant, grants %v; want none made and still one", n, e.asgGrants(t, key, acctA))
	}

	// Another image on the key still needs A: A leaving this one keeps both.
	other, _ := e.EncryptedImage(t, acctA, key)
	e.reconcile(t, other)
	e.Tag(t, id, map[string]string{amitag.Accounts: acctB})
	e.reconcile(t, id)
	if len(e.asgGrants(t, key, acctA)) != 1 {
		t.Errorf("A still needs the key through %s: grants %v, want one", other, e.asgGrants(t, key, acctA))
	}
	// No longer needed: revoked, with its statement.
	e.Tag(t, other, map[string]string{amitag.Accounts: acctB})
	e.reconcile(t, other)
	if g := e.asgGrants(t, key, acctA); len(g) != 0 {
		t.Errorf("A no longer needs the key: grants %v, want none", g)
	}
	if got, _ := kmspolicy.AutoScalingGrantees(e.KeyPolicy(t, key)); len(got) != 0 {
		t.Errorf("A no longer needs the key: Auto Scaling statements for %v, want none", got)
	}
}

func TestAutoScalingGrantWaitsForTheServiceLinkedRole(t *testing.T) {
	e := newEnv(t, asgConfig)
	a := e.Receiver(t, acctA)
	key := e.Key(t)
	id, _ := e.EncryptedImage(t, acctA, key)
	res := e.reconcile(t, id)
	if res.Status != rules.StatusShared || len(e.asgGrants(t, key, acctA)) != 0 {
		t.Errorf("status %q, grants %v; want shared and no grant yet", res.Status, e.asgGrants(t, key, acctA))
	}
	e.WantStatus(t, id, rules.StatusShared, acctA+" has no Auto Scaling role yet")

	a.AutoScalingRole(t, e.World)
	e.reconcile(t, id)
	if len(e.asgGrants(t, key, acctA)) != 1 {
		t.Errorf("after A's first Auto Scaling group: grants %v, want one", e.asgGrants(t, key, acctA))
	}
	if msg := e.Tags(t, id)[amitag.Message]; strings.Contains(msg, "Auto Scaling") {
		t.Errorf("message %q still says the grant waits", msg)
	}
}

func TestAutoScalingGrantsTurnedOff(t *testing.T) {
	e := newEnv(t, asgConfig)
	a := e.Receiver(t, acctA)
	a.AutoScalingRole(t, e.World)
	key := e.Key(t)
	id, _ := e.EncryptedImage(t, acctA, key)
	e.reconcile(t, id)
	e.PutConfig(t, `{"allowedAccounts":["111122223333","444455556666"],"receivers":["111122223333"]}`)
	e.engine = e.World.Engine(t, app.Options{})
	e.reconcile(t, id)
	if g := e.asgGrants(t, key, acctA); len(g) != 0 {
		t.Errorf("autoScalingGrants off: grants %v, want none", g)
	}
	if got, _ := kmspolicy.AutoScalingGrantees(e.KeyPolicy(t, key)); len(got) != 0 {
		t.Errorf("autoScalingGrants off: statements for %v, want none", got)
	}
	if got := e.KeyAccounts(t, key); !slices.Equal(got, []string{acctA}) {
		t.Errorf("the key's account statements %v, want A's kept", got)
	}
}

// TestAutoScalingHonoursDelegatedKeysOnly: with delegatedKeysOnly, the Auto
// Scaling statements and grants are written, like the share's own key
// statements, only on a key tagged amishare:managed = true. A key shared
// before the setting was turned on keeps its share, gains nothing, and the
// image says which tag is missing.
func TestAutoScalingHonoursDelegatedKeysOnly(t *testing.T) {
	e := newEnv(t, `{"allowedAccounts":["111122223333","444455556666"],"receivers":["111122223333"]}`)
	a := e.Receiver(t, acctA)
	a.AutoScalingRole(t, e.World)
	key := e.Key(t)
	id, _ := e.EncryptedImage(t, acctA, key)
	e.reconcile(t, id)
	before := e.KeyPolicy(t, key)

	e.PutConfig(t, `{"allowedAccounts":["111122223333","444455556666"],"receivers":["111122223333"],"autoScalingGrants":true,"delegatedKeysOnly":true}`)
	e.engine = e.World.Engine(t, app.Options{})
	res := e.reconcile(t, id)
	if got := e.KeyPolicy(t, key); got != before {
		t.Errorf("key policy of an undelegated key changed:\n%s\nwant\n%s", got, before)
	}
	if g := e.asgGrants(t, key, acctA); len(g) != 0 {
		t.Errorf("grants on an undelegated key: %v, want none", g)
	}
	if res.Consumers == nil || !slices.ContainsFunc(res.Consumers.Notes, func(n string) bool { return strings.Contains(n, "not delegated") }) {
		t.Errorf("consumers %+v, want a note that the key is not delegated", res.Consumers)
	}

	// Tagged, the key gets its statement and A its grant.
	if err := e.Fixture.TagKey(e.Ctx, key, map[string]string{amitag.KeyManaged: amitag.KeyManagedValue}); err != nil {
		t.Fatal(err)
	}
	e.reconcile(t, id)
	if got, _ := kmspolicy.AutoScalingGrantees(e.KeyPolicy(t, key)); !slices.Equal(got, []string{acctA}) {
		t.Errorf("Auto Scaling statements on the delegated key: %v, want [%s]", got, acctA)
	}
	if g := e.asgGrants(t, key, acctA); len(g) != 1 {
		t.Errorf("grants on the delegated key: %v, want one", g)
	}
}

// TestAutoScalingDryRunPlansWhatApplyCan: a dry run makes apply's reads
// (the receiver's session, its Auto Scaling role) and plans a grant that
// waits for the role as waiting, one for a receiver it cannot reach not at
// all (the receiver is unreachable): neither is a change, so
// plan --detailed-exitcode agrees with what apply would do. It writes
// nothing: opening the receiver's session (AssumeRole) is its only call
// that is not a read.
func TestAutoScalingDryRunPlansWhatApplyCan(t *testing.T) {
	e := newEnv(t, asgConfig)
	key := e.Key(t)
	id, _ := e.EncryptedImage(t, acctA, key)
	e.reconcile(t, id) // shared, the statement written; A has no receiver role yet

	plan := func(t *testing.T) (share.Result, report.Image) {
		t.Helper()
		e.Calls.Reset()
		res, err := e.engine.Reconcile(e.Ctx, id, share.Options{DryRun: true})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range e.Calls.Mutating() {
			if c != "AssumeRole" {
				t.Errorf("dry run made %s (calls %v)", c, e.Calls.Calls())
			}
		}
		return res, report.NewImage(res, "us-east-1")
	}

	t.Run("unreachable", func(t *testing.T) {
		res, img := plan(t)
		if img.HasChanges() || len(img.AutoScalingGrants) != 0 {
			t.Errorf("grants %+v, changes %v; want no grant planned for a receiver that cannot be reached", img.AutoScalingGrants, img.HasChanges())
		}
		if res.Consumers == nil || len(res.Consumers.Unreachable) != 1 || res.Consumers.Unreachable[0].Account != acctA {
			t.Errorf("consumers %+v, want %s unreachable", res.Consumers, acctA)
		}
	})

	a := e.Receiver(t, acctA)
	t.Run("waiting", func(t *testing.T) {
		res, img := plan(t)
		want := []report.AutoScalingGrant{{Action: report.GrantCreate, Account: acctA, KeyARN: key, Waiting: true}}
		if img.HasChanges() || !slices.Equal(img.AutoScalingGrants, want) {
			t.Errorf("grants %+v, changes %v; want %+v and no change", img.AutoScalingGrants, img.HasChanges(), want)
		}
		if e.Calls.Count("GetRole") != 1 {
			t.Errorf("calls %v, want the receiver's Auto Scaling role read once", e.Calls.Calls())
		}
		if !slices.ContainsFunc(res.Consumers.Notes, func(n string) bool { return strings.Contains(n, acctA+" has no Auto Scaling role yet") }) {
			t.Errorf("notes %q, want the grant said to wait", res.Consumers.Notes)
		}
		// Apply agrees: the grant waits.
		e.reconcile(t, id)
		if g := e.asgGrants(t, key, acctA); len(g) != 0 {
			t.Errorf("grants %v, want none yet", g)
		}
	})

	a.AutoScalingRole(t, e.World)
	t.Run("ready", func(t *testing.T) {
		_, img := plan(t)
		want := []report.AutoScalingGrant{{Action: report.GrantCreate, Account: acctA, KeyARN: key}}
		if !img.HasChanges() || !slices.Equal(img.AutoScalingGrants, want) {
			t.Errorf("grants %+v, changes %v; want %+v planned", img.AutoScalingGrants, img.HasChanges(), want)
		}
		if g := e.asgGrants(t, key, acctA); len(g) != 0 {
			t.Errorf("the dry run created grants %v", g)
		}
	})
}

// TestAutoScalingGrantRevokedWhenTheImageGoes: a receiver's Auto Scaling
// grant and its statement outlive neither a deregistered image nor one
// whose amishare tags are all deleted, and stay while another managed
// image on the key still needs the account.
func TestAutoScalingGrantRevokedWhenTheImageGoes(t *testing.T) {
	for _, tc := range []struct {
		name string
		end  func(e *env, id string)
	}{
		{"deregistered", func(e *env, id string) {
			e.DeregisterImage(t, id)
			if res, err := e.engine.Cleanup(e.Ctx, id, share.Options{}); err != nil || res.Outcome != share.OutcomeCleaned {
				t.Fatalf("Cleanup(%s): %+v, %v; want cleaned", id, res, err)
			}
		}},
		{"every amishare tag deleted", func(e *env, id string) {
			e.Untag(t, id, amitag.Accounts, amitag.Status, amitag.Message)
			if res := e.reconcile(t, id); res.Outcome != share.OutcomeCleaned {
				t.Fatalf("reconcile(%s): %+v; want released", id, res)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, asgConfig)
			e.Receiver(t, acctA).AutoScalingRole(t, e.World)
			key := e.Key(t)
			first, _ := e.EncryptedImage(t, acctA, key)
			second, _ := e.EncryptedImage(t, acctA, key)
			e.reconcile(t, first)
			e.reconcile(t, second)
			if g := e.asgGrants(t, key, acctA); len(g) != 1 {
				t.Fatalf("before: grants %v, want one", g)
			}

			tc.end(e, first)
			if g := e.asgGrants(t, key, acctA); len(g) != 1 {
				t.Errorf("%s still needs the key for A: grants %v, want one", second, g)
			}
			tc.end(e, second)
			if g := e.asgGrants(t, key, acctA); len(g) != 0 {
				t.Errorf("no image needs the key for A: grants %v, want none", g)
			}
			if got, _ := kmspolicy.AutoScalingGrantees(e.KeyPolicy(t, key)); len(got) != 0 {
				t.Errorf("no image needs the key for A: Auto Scaling statements for %v, want none", got)
			}
		})
	}
}

// TestAutoScalingGrantRevokedWhenNoLongerAReceiver: an account taken out of
// receivers keeps the image and the key (its tag still names it) but loses
// the grant and statement amishare made for its Auto Scaling role.
func TestAutoScalingGrantRevokedWhenNoLongerAReceiver(t *testing.T) {
	e := newEnv(t, asgConfig)
	e.Receiver(t, acctA).AutoScalingRole(t, e.World)
	key := e.Key(t)
	id, snaps := e.EncryptedImage(t, acctA, key)
	e.reconcile(t, id)
	if g := e.asgGrants(t, key, acctA); len(g) != 1 {
		t.Fatalf("before: grants %v, want one", g)
	}
	e.PutConfig(t, `{"allowedAccounts":["111122223333","444455556666"],"autoScalingGrants":true}`)
	e.engine = e.World.Engine(t, app.Options{})
	e.reconcile(t, id)
	if g := e.asgGrants(t, key, acctA); len(g) != 0 {
		t.Errorf("A is no longer a receiver: grants %v, want none", g)
	}
	if got, _ := kmspolicy.AutoScalingGrantees(e.KeyPolicy(t, key)); len(got) != 0 {
		t.Errorf("A is no longer a receiver: Auto Scaling statements for %v, want none", got)
	}
	e.WantShared(t, id, snaps, acctA)
	if got := e.KeyAccounts(t, key); !slices.Equal(got, []string{acctA}) {
		t.Errorf("the key's account statements %v, want A's kept", got)
	}
}
