package share_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/amishare/amishare/internal/testing/fixture"
	"github.com/amishare/amishare/internal/testing/world"
	"github.com/amishare/amishare/pkg/amitag"
	"github.com/amishare/amishare/pkg/share"
	"github.com/amishare/amishare/pkg/share/rules"
)

const (
	golden = "/amishare/images/golden/al2023"
	// paramConfig declares golden for images named golden-al2023-*.
	paramConfig = `{"allowedAccounts":["111122223333","444455556666"],"parameters":{"/amishare/images/golden/al2023":"golden-al2023-*"}}`
	jan         = "2024-01-10T10:00:00.000Z"
	feb         = "2024-02-10T10:00:00.000Z"
	mar         = "2024-03-10T10:00:00.000Z"
)

// goldenImage registers an image named golden-al2023-SUFFIX, created at
// date, tagged with tags (the parameter golden and the accounts A unless
// tags say otherwise).
func goldenImage(t *testing.T, e *env, suffix, date string, tags map[string]string) string {
	t.Helper()
	all := map[string]string{amitag.Accounts: acctA, amitag.Parameter: golden}
	for k, v := range tags {
		all[k] = v
	}
	id, _, err := e.Fixture.RegisterImage(e.Ctx, "golden-al2023-"+suffix, []fixture.Disk{{}}, all)
	if err != nil {
		t.Fatal(err)
	}
	e.SetCreated(t, id, date)
	return id
}

func (e *env) wantParameter(t *testing.T, want string) {
	t.Helper()
	if got := e.Owner().Parameter(t, e.World, golden); got != want {
		t.Errorf("parameter %s names %q, want %q", golden, got, want)
	}
}

func TestParameterNamesTheNewestImage(t *testing.T) {
	e := newEnv(t, paramConfig)
	older := goldenImage(t, e, "jan", jan, nil)
	res := e.reconcile(t, older)
	e.wantParameter(t, older)
	if res.Consumers == nil || len(res.Consumers.Parameters) != 1 || res.Consumers.Parameters[0].To != older {
		t.Errorf("consumers = %+v, want the parameter created naming %s", res.Consumers, older)
	}
	info := e.Owner().ParameterInfo(t, e.World, golden)
	if info.Type != "String" || info.DataType != "aws:ec2:image" || info.Tier != "Standard" || info.Policies != 0 {
		t.Errorf("parameter stored as %+v, want String, aws:ec2:image, Standard, no policy", info)
	}

	// A newer image takes it over, also when the older one is handled first.
	newer := goldenImage(t, e, "feb", feb, nil)
	e.reconcile(t, older)
	e.wantParameter(t, newer)
	e.reconcile(t, newer)
	// The older one handled again does not take it back, and writes nothing.
	res = e.reconcile(t, older)
	e.wantParameter(t, newer)
	if n := e.Calls.Count("PutParameter"); n != 0 || res.Consumers != nil {
		t.Errorf("reconciling the older image again: %d PutParameter, consumers %+v; want none", n, res.Consumers)
	}
	newest := goldenImage(t, e, "mar", mar, nil)
	e.reconcile(t, newest)
	e.wantParameter(t, newest)
	for _, id := range []string{older, newer, newest} {
		e.WantStatus(t, id, rules.StatusShared, "shared with 1 account(s)")
	}
}

func TestParameterFallsBackAndIsDeleted(t *testing.T) {
	e := newEnv(t, paramConfig)
	jan := goldenImage(t, e, "jan", jan, nil)
	feb := goldenImage(t, e, "feb", feb, nil)
	mar := goldenImage(t, e, "mar", mar, nil)
	e.reconcile(t, mar)
	e.wantParameter(t, mar)

	// Untagged: back to the newest left, a rollback.
	e.Untag(t, mar, amitag.Parameter)
	res := e.reconcile(t, mar)
	e.wantParameter(t, feb)
	if res.Consumers == nil || res.Consumers.Rollbacks() != 1 {
		t.Errorf("consumers %+v, want one rollback", res.Consumers)
	}
	if lines := e.LinesWithMsg(t, "parameter rolled back"); len(lines) != 1 || lines[0].Str("from") != mar || lines[0].Str("to") != feb {
		t.Errorf("rollback log lines %v, want one from %s to %s", lines, mar, feb)
	}

	// Deregistered: its cleanup rolls back.
	e.DeregisterImage(t, feb)
	e.Calls.Reset()
	if _, err := e.engine.Cleanup(e.Ctx, feb, share.Options{}); err != nil {
		t.Fatal(err)
	}
	e.wantParameter(t, jan)

	// The last one no longer managed: deleted.
	e.Untag(t, jan, amitag.Accounts, amitag.Status)
	res = e.reconcile(t, jan)
	e.wantParameter(t, "")
	if res.Consumers == nil || len(res.Consumers.Parameters) != 1 || res.Consumers.Parameters[0].Action != rules.ParameterDelete {
		t.Errorf("consumers %+v, want the parameter deleted", res.Consumers)
	}
}

func TestParameterRefusals(t *testing.T) {
	tests := []struct {
		name, imageName, parameter, want string
	}{
		{"undeclared", "golden-al2023-1", "/amishare/images/golden/other", "is not declared in the configuration"},
		{"the configuration parameter", "golden-al2023-1", world.Param, "is amishare's own configuration parameter"},
		{"outside the prefix", "golden-al2023-1", "/other/golden", "is outside the parameter prefix /amishare/images/"},
		{"trailing space", "golden-al2023-1", golden + " ", "holds whitespace"},
		{"a name the pattern refuses", "evil-al2023-1", golden, `is only for images named "golden-al2023-*", not "evil-al2023-1"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, paramConfig)
			legit := goldenImage(t, e, "jan", jan, nil)
			e.reconcile(t, legit)
			id, snaps, err := e.Fixture.RegisterImage(e.Ctx, tc.imageName, []fixture.Disk{{}}, map[string]string{amitag.Accounts: acctA, amitag.Parameter: tc.parameter})
			if err != nil {
				t.Fatal(err)
			}
			e.SetCreated(t, id, mar)
			res := e.reconcile(t, id)
			if res.Status != rules.StatusError || res.Outcome != share.OutcomeBlocked {
				t.Errorf("outcome %q status %q, want blocked error", res.Outcome, res.Status)
			}
			e.WantStatus(t, id, rules.StatusError, tc.want)
			e.WantShared(t, id, snaps)
			for _, c := range e.Calls.Calls() {
				if c == "PutParameter" || c == "DeleteParameter" {
					t.Errorf("%s made for a refused image", c)
				}
			}
			// The parameter still names the legitimate image, however new the refused one is.
			e.wantParameter(t, legit)
		})
	}
}

func TestParameterReadBackWhenSSMHasNotTakenIt(t *testing.T) {
	e := newEnv(t, paramConfig)
	id := goldenImage(t, e, "jan", jan, nil)
	if err := e.Server.Switch("ssm-image-validation-pending", true); err != nil {
		t.Fatal(err)
	}
	res := e.reconcile(t, id)
	if res.Consumers.PendingParameters() != 1 || res.Status != rules.StatusShared {
		t.Errorf("status %q consumers %+v, want shared and one parameter pending", res.Status, res.Consumers)
	}
	e.WantStatus(t, id, rules.StatusShared, "parameter "+golden+" not taken yet, retried later")
	e.wantParameter(t, "")
	if got := e.Calls.Calls(); !slices.Contains(got[slices.Index(got, "PutParameter")+1:], "GetParameter") {
		t.Errorf("calls %v: want the write read back", got)
	}

	// Taken at the next reconcile; the note goes.
	if err := e.Server.Switch("ssm-image-validation-pending", false); err != nil {
		t.Fatal(err)
	}
	res = e.reconcile(t, id)
	e.wantParameter(t, id)
	if res.Consumers.PendingParameters() != 0 || strings.Contains(e.Tags(t, id)[amitag.Message], "not taken") {
		t.Errorf("after validation: consumers %+v, message %q", res.Consumers, e.Tags(t, id)[amitag.Message])
	}
}

func TestParameterDryRunWritesNothing(t *testing.T) {
	e := newEnv(t, paramConfig)
	id := goldenImage(t, e, "jan", jan, nil)
	e.Calls.Reset()
	res, err := e.engine.Reconcile(e.Ctx, id, share.Options{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Consumers == nil || len(res.Consumers.Parameters) != 1 || res.Consumers.Parameters[0].To != id {
		t.Errorf("dry run consumers %+v, want the parameter planned", res.Consumers)
	}
	if got := e.Calls.Mutating(); len(got) != 0 {
		t.Errorf("dry run made %v", got)
	}
	e.wantParameter(t, "")
}

// TestDryRunSweepPlansAParameterOnce: in a sweep (its engine has a cache),
// a parameter an image's dry run plans to change is taken as changed by
// what follows, as apply's write would be: the sweep's last step does not
// plan it again, so a dry-run sweep counts what a sweep would change.
func TestDryRunSweepPlansAParameterOnce(t *testing.T) {
	e := newEnv(t, paramConfig)
	id := goldenImage(t, e, "jan", jan, nil)
	eng := e.engine.WithCache(&share.Cache{})
	res, err := eng.Reconcile(e.Ctx, id, share.Options{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Consumers.Changed(); len(got) != 1 || got[0].To != id {
		t.Fatalf("the image's dry run: parameters %+v, want %s planned", got, id)
	}
	rep, err := eng.SyncParameters(e.Ctx, share.Options{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := rep.Changed(); len(got) != 0 {
		t.Errorf("the sweep's last step, dry run: parameters %+v, want none (planned already)", got)
	}
	e.wantParameter(t, "")
}

func TestNoParametersNoCalls(t *testing.T) {
	e := newEnv(t, testConfig)
	id, _ := e.PlainImage(t, 1, map[string]string{amitag.Accounts: acctA, amitag.Parameter: golden})
	e.reconcile(t, id)
	for _, c := range e.Calls.Calls() {
		if c == "GetParameters" || c == "PutParameter" || c == "AssumeRole" {
			t.Errorf("%s made with no parameter declared and no receiver", c)
		}
	}
	e.WantStatus(t, id, rules.StatusError, "is not declared in the configuration")
}

// TestCopyIsAsOldAsItsSource: a copy amishare made counts with its
// source's CreationDate (the copy's own is when CopyImage ran), and with
// its own once the source is gone.
func TestCopyIsAsOldAsItsSource(t *testing.T) {
	e := newEnv(t, paramConfig)
	source, _, err := e.Fixture.RegisterImage(e.Ctx, "golden-al2023-source", []fixture.Disk{{}}, map[string]string{amitag.Accounts: acctA})
	if err != nil {
		t.Fatal(err)
	}
	e.SetCreated(t, source, jan)
	// A copy made in March of the January image, as amishare tags it
	// (re-encrypted in the same region, here registered by hand).
	cp, _, err := e.Fixture.RegisterImage(e.Ctx, "golden-al2023-source [copy of us-east-1/"+source+"]", []fixture.Disk{{}},
		map[string]string{amitag.Accounts: acctA, amitag.Source: "us-east-1/" + source, amitag.Parameter: golden})
	if err != nil {
		t.Fatal(err)
	}
	e.SetCreated(t, cp, mar)
	built := goldenImage(t, e, "feb", feb, nil)
	e.reconcile(t, cp)
	e.wantParameter(t, built)

	e.DeregisterImage(t, source)
	e.reconcile(t, cp)
	e.wantParameter(t, cp)
}
