package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/amishare/amishare/internal/testing/fixture"
	"github.com/amishare/amishare/internal/testing/world"
	"github.com/amishare/amishare/pkg/amitag"
	"github.com/amishare/amishare/pkg/report"
)

const (
	golden = "/amishare/images/golden/al2023"
	// consumerConfig: A is a receiver; golden names the newest image named
	// golden-al2023-*; the tag key team is mirrored.
	consumerConfig = `{"allowedAccounts":["111122223333","444455556666"],"receivers":["111122223333"],
		"parameters":{"/amishare/images/golden/al2023":"golden-al2023-*"},"mirrorTags":["team"]}`
)

// goldenImage registers an image named golden-al2023-SUFFIX, created at
// date, shared with A, feeding golden, tagged team = platform.
func goldenImage(t *testing.T, w *world.World, suffix, date string) (string, []string) {
	t.Helper()
	id, snaps, err := w.Fixture.RegisterImage(w.Ctx, "golden-al2023-"+suffix, []fixture.Disk{{}}, map[string]string{
		amitag.Accounts: acctA, amitag.Parameter: golden, "team": "platform"})
	if err != nil {
		t.Fatal(err)
	}
	w.SetCreated(t, id, date)
	return id, snaps
}

// TestBinaryConsumers: plan and apply show the other side of the share
// (the parameter moving to the image, here and in the receiver, the tag
// mirrored there) the way they show permissions, and count it; a parameter
// that must roll back is a change of its own: plan --detailed-exitcode
// exits 2 for it alone, and -o json carries it.
func TestBinaryConsumers(t *testing.T) {
	w := world.New(t, consumerConfig)
	a := w.Receiver(t, acctA)
	jan, _ := goldenImage(t, w, "jan", "2024-01-10T10:00:00.000Z")
	if r := runBinary(t, "", nil, "apply", jan); r.code != 0 {
		t.Fatalf("apply %s: %s", jan, r)
	}
	feb, snaps := goldenImage(t, w, "feb", "2024-02-10T10:00:00.000Z")

	r := runBinary(t, "", nil, "plan", feb, "--detailed-exitcode", "--log-level", "warn")
	want := strings.Join([]string{
		feb + " (us-east-1) status shared: shared with 1 account(s)",
		"  + " + acctA + "  create-volume permission " + snaps[0],
		"  + " + acctA + "  launch permission",
		"  ~ this account  parameter " + golden + " = " + jan + " -> " + feb,
		"  ~ " + acctA + "  parameter " + golden + " = " + jan + " -> " + feb,
		"  ~ " + acctA + "  mirrored tag team = platform",
		"Plan: 2 to add, 0 to remove, 2 parameters to set, 1 mirrored tag to set.",
	}, "\n") + "\n"
	if r.code != exitChanges || r.stdout != want || r.stderr != "" {
		t.Errorf("plan: got %s\nwant exit 2 and stdout\n%s", r, want)
	}
	if got := w.Owner().Parameter(t, w, golden); got != jan {
		t.Fatalf("after plan, %s names %q, want %s still", golden, got, jan)
	}

	r = runBinary(t, "", nil, "apply", feb, "--log-level", "warn")
	if want := "Applied: 2 added, 0 removed, 2 parameters set, 1 mirrored tag set.\n"; r.code != 0 || !strings.HasSuffix(r.stdout, want) ||
		!strings.Contains(r.stdout, "\n  ~ "+acctA+"  parameter "+golden+" = "+jan+" -> "+feb+"\n") {
		t.Errorf("apply: got %s; want the receiver's parameter moved and %q", r, want)
	}
	for _, acct := range []*world.Account{w.Owner(), a} {
		if got := acct.Parameter(t, w, golden); got != feb {
			t.Errorf("after apply, %s's %s names %q, want %s", acct.ID, golden, got, feb)
		}
	}
	if r := runBinary(t, "", nil, "plan", feb, "--detailed-exitcode"); r.code != 0 || !strings.HasSuffix(r.stdout, "\nNo changes.\n") {
		t.Errorf("plan in sync: got %s; want exit 0, no changes", r)
	}

	// feb no longer feeds the parameter: both roll back to jan, and that
	// alone is a change.
	w.Untag(t, feb, amitag.Parameter)
	r = runBinary(t, "", nil, "plan", feb, "--detailed-exitcode", "--log-level", "warn")
	want = strings.Join([]string{
		feb + " (us-east-1) status shared: shared with 1 account(s)",
		"  ~ this account  parameter " + golden + " = " + feb + " -> " + jan + " (rollback)",
		"  ~ " + acctA + "  parameter " + golden + " = " + feb + " -> " + jan + " (rollback)",
		"Plan: 0 to add, 0 to remove, 2 parameters to set.",
	}, "\n") + "\n"
	if r.code != exitChanges || r.stdout != want {
		t.Errorf("plan of a rollback: got %s\nwant exit 2 and stdout\n%s", r, want)
	}

	r = runBinary(t, "", nil, "plan", feb, "-o", "json")
	var rep report.Image
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || r.code != 0 {
		t.Fatalf("plan -o json: got %s (%v)", r, err)
	}
	wantParams := []report.Parameter{
		{Action: "put", Account: "", Name: golden, From: feb, To: jan, Rollback: true},
		{Action: "put", Account: acctA, Name: golden, From: feb, To: jan, Rollback: true},
	}
	if len(rep.Parameters) != len(wantParams) || rep.Parameters[0] != wantParams[0] || rep.Parameters[1] != wantParams[1] || len(rep.Changes) != 0 {
		t.Errorf("plan -o json: parameters %+v, changes %+v; want %+v and no change", rep.Parameters, rep.Changes, wantParams)
	}
	for _, field := range []string{`"parameters": [`, `"mirroredTags": []`, `"autoScalingGrants": []`, `"unreachable": []`, `"notes": []`} {
		if !strings.Contains(r.stdout, field) {
			t.Errorf("plan -o json: no %s in\n%s", field, r.stdout)
		}
	}

	r = runBinary(t, "", nil, "apply", feb, "--log-level", "warn")
	if want := "Applied: 0 added, 0 removed, 2 parameters set.\n"; r.code != 0 || !strings.HasSuffix(r.stdout, want) {
		t.Errorf("apply of a rollback: got %s; want %q", r, want)
	}
	for _, acct := range []*world.Account{w.Owner(), a} {
		if got := acct.Parameter(t, w, golden); got != jan {
			t.Errorf("after the rollback, %s's %s names %q, want %s", acct.ID, golden, got, jan)
		}
	}
}

// asgConfig: A is a receiver whose Auto Scaling role gets grants.
const asgConfig = `{"allowedAccounts":["111122223333","444455556666"],"receivers":["111122223333"],"autoScalingGrants":true}`

// TestRunPlanWaitingGrant: a receiver without its Auto Scaling role yet:
// apply reports its grant waiting, and plan agrees (the same reads, as a
// dry run): the grant waits, which is no change (plan --detailed-exitcode
// exits 0); once the account has the role, the grant is a change.
func TestRunPlanWaitingGrant(t *testing.T) {
	w := world.New(t, asgConfig)
	hookHandler(t, w, nil)
	a := w.Receiver(t, acctA)
	key := w.Key(t)
	id, _ := w.EncryptedImage(t, acctA, key)
	if r := runCLI(t, "", "apply", id, "--log-level", "warn"); r.code != 0 {
		t.Fatalf("apply: %s", r)
	}

	w.Calls.Reset()
	r := runCLI(t, "", "plan", id, "--detailed-exitcode", "--log-level", "warn")
	want := strings.Join([]string{
		id + " (us-east-1) status shared: shared with 1 account(s)",
		"  ! " + acctA + "  Auto Scaling grant on key " + key + " waits for the account's Auto Scaling role",
		"  warning: " + acctA + " has no Auto Scaling role yet: its grant on " + key[strings.LastIndex(key, ":")+1:] + " follows, retried later",
		"No changes.",
	}, "\n") + "\n"
	if r.code != 0 || r.stdout != want {
		t.Errorf("plan with the grant waiting: got %s\nwant exit 0 and stdout\n%s", r, want)
	}
	for _, c := range w.Calls.Mutating() {
		if c != "AssumeRole" {
			t.Errorf("plan made %s", c)
		}
	}

	a.AutoScalingRole(t, w)
	r = runCLI(t, "", "plan", id, "--detailed-exitcode", "--log-level", "warn")
	want = "  + " + acctA + "  Auto Scaling grant on key " + key + "\nPlan: 0 to add, 0 to remove, 1 Auto Scaling grant to create.\n"
	if r.code != exitChanges || !strings.HasSuffix(r.stdout, want) {
		t.Errorf("plan with the role there: got %s\nwant exit 2 and stdout ending\n%s", r, want)
	}
}

// TestRunStatusDriftConsumers: status --drift counts the other side of the
// share as plan does: a mirrored tag out of date in a receiver is drift,
// shown and in -o json; a grant waiting for the receiver's Auto Scaling
// role is not (apply would change nothing), by the rule of
// plan --detailed-exitcode.
func TestRunStatusDriftConsumers(t *testing.T) {
	w := world.New(t, `{"allowedAccounts":["111122223333","444455556666"],"receivers":["111122223333"],
		"parameters":{"/amishare/images/golden/al2023":"golden-al2023-*"},"mirrorTags":["team"],"autoScalingGrants":true}`)
	hookHandler(t, w, nil)
	a := w.Receiver(t, acctA)
	key := w.Key(t)
	id, _, err := w.Fixture.RegisterImage(w.Ctx, "golden-al2023-jan", []fixture.Disk{{KeyID: key}}, map[string]string{
		amitag.Accounts: acctA, amitag.Parameter: golden, "team": "platform"})
	if err != nil {
		t.Fatal(err)
	}
	if r := runCLI(t, "", "apply", id, "--log-level", "warn"); r.code != 0 {
		t.Fatalf("apply: %s", r)
	}
	if got := a.Parameter(t, w, golden); got != id {
		t.Fatalf("after apply, %s's %s names %q, want %s", acctA, golden, got, id)
	}

	// Only the grant waits: in sync.
	r := runCLI(t, "", "status", "--drift", id)
	if r.code != 0 || !strings.Contains(r.stdout, "in sync") || strings.Contains(r.stdout, "would change") {
		t.Errorf("status --drift with only a grant waiting: got %s; want in sync", r)
	}
	rep := decode[statusReport](t, runCLI(t, "", "status", "--drift", id, "-o", "json"))
	if d := rep.Images[0].Drift; d == nil || !d.InSync || len(d.AutoScalingGrants) != 1 || !d.AutoScalingGrants[0].Waiting {
		t.Errorf("status --drift -o json with only a grant waiting: drift %+v; want in sync, the grant waiting", d)
	}

	// The owner's team changes (no event): A's mirrored tag is out of date.
	w.Tag(t, id, map[string]string{"team": "security"})
	r = runCLI(t, "", "status", "--drift", id)
	if r.code != 0 || !strings.Contains(r.stdout, "+0 -0, 1 mirrored tag to set") {
		t.Errorf("status --drift with a mirrored tag out of date: got %s; want it counted in the DRIFT column", r)
	}
	want := id + " would change:\n" +
		"  ~ " + acctA + "  mirrored tag team = security\n" +
		"  ! " + acctA + "  Auto Scaling grant on key " + key + " waits for the account's Auto Scaling role\n"
	if !strings.Contains(r.stdout, want) {
		t.Errorf("status --drift: got %s\nwant it to hold\n%s", r, want)
	}
	rep = decode[statusReport](t, runCLI(t, "", "status", "--drift", id, "-o", "json"))
	d := rep.Images[0].Drift
	if d == nil || d.InSync || len(d.Changes) != 0 || len(d.MirroredTags) != 1 || d.MirroredTags[0].Account != acctA || d.MirroredTags[0].Set["team"] != "security" {
		t.Errorf("status --drift -o json with a mirrored tag out of date: drift %+v; want not in sync, A's tag team = security", d)
	}
	if got := a.ImageTags(t, w, id)["team"]; got != "platform" {
		t.Errorf("status changed A's tag: team = %q, want platform still", got)
	}
}

// TestRunSweepParameters: a sweep counts the newest-image parameters it
// changes (or would), in its summary line and its -o json, even when no
// image's permissions change: a parameter left naming an image
// deregistered without an event is no "No changes.".
func TestRunSweepParameters(t *testing.T) {
	w := world.New(t, `{"allowedAccounts":["111122223333"],"receivers":["111122223333"],
		"parameters":{"/amishare/images/golden/al2023":"golden-al2023-*"},"sweepRate":1000}`)
	hookHandler(t, w, nil)
	a := w.Receiver(t, acctA)
	older, _ := goldenImage(t, w, "jan", "2024-01-10T10:00:00.000Z")
	// Shared with nobody (no snapshot record): only this account's parameter names it.
	newer, _, err := w.Fixture.RegisterImage(w.Ctx, "golden-al2023-feb", []fixture.Disk{{}}, map[string]string{amitag.Accounts: "", amitag.Parameter: golden})
	if err != nil {
		t.Fatal(err)
	}
	w.SetCreated(t, newer, "2024-02-10T10:00:00.000Z")
	if r := runCLI(t, "", "sweep", "--log-level", "warn"); r.code != 0 {
		t.Fatalf("first sweep: %s", r)
	}
	if got, got2 := w.Owner().Parameter(t, w, golden), a.Parameter(t, w, golden); got != newer || got2 != older {
		t.Fatalf("after the first sweep, %s names %q here and %q in %s; want %s and %s", golden, got, got2, acctA, newer, older)
	}

	w.DeregisterImage(t, newer) // no event
	r := runCLI(t, "", "sweep", "--dry-run", "--log-level", "warn")
	if want := "Sweep plan (dry run) of us-east-1: 1 managed image checked, 0 would change; 0 gone images would be released; 1 parameter would change; 0 errors; "; r.code != 0 ||
		!strings.HasPrefix(r.stdout, want) || strings.Contains(r.stdout, "No changes.") {
		t.Errorf("sweep --dry-run: got %s; want it to start %q, and changes", r, want)
	}
	if sum := decode[sweepReport](t, runCLI(t, "", "sweep", "--dry-run", "-o", "json", "--log-level", "warn")); sum.ParametersChanged != 1 {
		t.Errorf("sweep --dry-run -o json: parametersChanged %d, want 1", sum.ParametersChanged)
	}
	if got := w.Owner().Parameter(t, w, golden); got != newer {
		t.Fatalf("after the dry runs, %s names %q, want %s still", golden, got, newer)
	}

	r = runCLI(t, "", "sweep", "-o", "json", "--log-level", "warn")
	if sum := decode[sweepReport](t, r); r.code != 0 || sum.ParametersChanged != 1 || !strings.Contains(r.stdout, `"parametersChanged": 1`) {
		t.Errorf("sweep -o json: got %s; want parametersChanged 1", r)
	}
	if got := w.Owner().Parameter(t, w, golden); got != older {
		t.Errorf("after the sweep, %s names %q, want %s", golden, got, older)
	}
	r = runCLI(t, "", "sweep", "--log-level", "warn")
	if want := "Sweep of us-east-1: 1 managed image checked, 0 repaired; 0 gone images released (0 snapshots); 0 errors; "; r.code != 0 ||
		!strings.HasPrefix(r.stdout, want) || !strings.HasSuffix(r.stdout, "No changes.\n") {
		t.Errorf("sweep in sync: got %s; want it to start %q, and no changes", r, want)
	}
}
