package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/amishare/amishare/internal/testing/moto"
	"github.com/amishare/amishare/internal/testing/world"
	"github.com/amishare/amishare/pkg/amitag"
	"github.com/amishare/amishare/pkg/report"
)

// The built binary against moto, as an operator runs it.

// TestBinaryPlanApply: plan prints terraform's habit (+ target and what),
// --detailed-exitcode says there are changes; apply says who acts where
// before it changes anything, then what it did; a second apply and plan
// find nothing to do. Flags may follow the image id.
func TestBinaryPlanApply(t *testing.T) {
	w := world.New(t, testConfig)
	id, snaps := w.PlainImage(t, 1, map[string]string{amitag.Accounts: acctA + " " + acctB})

	r := runBinary(t, "", nil, "plan", id)
	wantLines := []string{
		id + " (us-east-1) status shared: shared with 2 account(s)",
		"  + " + acctA + "  create-volume permission " + snaps[0],
		"  + " + acctB + "  create-volume permission " + snaps[0],
		"  + " + acctA + "  launch permission",
		"  + " + acctB + "  launch permission",
		"Plan: 4 to add, 0 to remove.",
	}
	if r.code != 0 || r.stdout != strings.Join(wantLines, "\n")+"\n" {
		t.Errorf("plan: got %s\nwant stdout\n%s", r, strings.Join(wantLines, "\n"))
	}
	if r := runBinary(t, "", nil, "plan", id, "--detailed-exitcode"); r.code != exitChanges {
		t.Errorf("plan --detailed-exitcode with changes: got %s; want exit 2", r)
	}
	w.WantShared(t, id, snaps)

	r = runBinary(t, "", nil, "apply", id)
	if r.code != 0 || !strings.HasPrefix(r.stderr, "Acting as arn:aws:sts::"+moto.AccountID+":user/moto in account "+moto.AccountID+", region us-east-1.\n") {
		t.Errorf("apply: got %s; want who acts where first on stderr", r)
	}
	if !strings.HasSuffix(r.stdout, "Applied: 4 added, 0 removed.\n") {
		t.Errorf("apply stdout: got %q, want it to end with the count", r.stdout)
	}
	w.WantShared(t, id, snaps, acctA, acctB)

	for _, args := range [][]string{{"apply", id}, {"plan", id, "--detailed-exitcode"}} {
		r := runBinary(t, "", nil, args...)
		if want := id + " (us-east-1) status shared: shared with 2 account(s)\nNo changes.\n"; r.code != 0 || r.stdout != want {
			t.Errorf("%s in sync: got %s; want exit 0 and %q", args[0], r, want)
		}
	}

	r = runBinary(t, "", nil, "plan", id, "-o", "json")
	var rep report.Image
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || r.code != 0 || rep.ImageID != id || rep.Status != "shared" || len(rep.Changes) != 0 || !rep.DryRun {
		t.Errorf("plan -o json in sync: got %s (%v)", r, err)
	}
}

// TestBinaryImageNotFound: an image that does not exist here is an error
// that says so.
func TestBinaryImageNotFound(t *testing.T) {
	world.New(t, testConfig)
	for _, cmd := range []string{"plan", "apply"} {
		r := runBinary(t, "", nil, cmd, "ami-0123456789abcdef0")
		want := "amishare: image ami-0123456789abcdef0 does not exist in us-east-1"
		if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, want) {
			t.Errorf("%s: got %s; want exit 1 and %q", cmd, r, want)
		}
	}
}

// TestBinaryApplyDeregistered: apply on a deregistered image revokes what
// amishare shared for it, as its deregistered event does; plan shows it first.
func TestBinaryApplyDeregistered(t *testing.T) {
	w := world.New(t, testConfig)
	id, snaps := w.PlainImage(t, 2, map[string]string{amitag.Accounts: acctA})
	if r := runBinary(t, "", nil, "apply", id); r.code != 0 {
		t.Fatalf("apply: %s", r)
	}
	w.DeregisterImage(t, id)
	r := runBinary(t, "", nil, "plan", id)
	if r.code != 0 || !strings.Contains(r.stdout, "  - "+acctA+"  create-volume permission "+snaps[0]) || !strings.HasSuffix(r.stdout, "Plan: 0 to add, 2 to remove.\n") {
		t.Errorf("plan: got %s; want the 2 snapshots' permissions removed", r)
	}
	r = runBinary(t, "", nil, "apply", id)
	if r.code != 0 || !strings.HasSuffix(r.stdout, "Applied: 0 added, 2 removed.\n") {
		t.Errorf("apply: got %s; want the 2 snapshots' permissions removed", r)
	}
	for _, s := range snaps {
		if p := w.SnapshotPerms(t, s); len(p.Accounts) != 0 {
			t.Errorf("snapshot %s: shared with %v, want nobody", s, p.Accounts)
		}
	}
	// Nothing is recorded any more: the image is gone.
	if r := runBinary(t, "", nil, "apply", id); r.code != 1 || !strings.Contains(r.stderr, "does not exist") {
		t.Errorf("apply again: got %s; want it not found", r)
	}
}

// TestBinaryStatus: every managed image with name, status, targets and
// copies; --drift adds what a sweep would change; -o json.
func TestBinaryStatus(t *testing.T) {
	w := world.New(t, testConfig)
	inSync, _ := w.PlainImage(t, 1, map[string]string{amitag.Accounts: acctA})
	drifted, _ := w.PlainImage(t, 1, map[string]string{amitag.Accounts: acctB + " 999999999999"})
	w.PlainImage(t, 1, nil) // unmanaged: not listed
	for _, id := range []string{inSync, drifted} {
		if r := runBinary(t, "", nil, "apply", id); r.code != 0 {
			t.Fatalf("apply %s: %s", id, r)
		}
	}
	w.ShareImage(t, drifted, ec2types.LaunchPermission{UserId: aws.String(acctC)}) // by hand

	r := runBinary(t, "", nil, "status", "--drift")
	if r.code != 0 {
		t.Fatalf("status --drift: %s", r)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) < 3 || !strings.HasPrefix(lines[0], "IMAGE") || !strings.Contains(lines[0], "DRIFT") {
		t.Fatalf("status --drift: got\n%s\nwant a table of 2 images", r.stdout)
	}
	for _, want := range [][]string{
		{inSync, "TestBinaryStatus", "shared", acctA, "in sync"},
		{drifted, "partial", acctB + " (1 refused)", "+0 -1"},
	} {
		if !slices.ContainsFunc(lines[1:3], func(l string) bool {
			return !slices.ContainsFunc(want, func(s string) bool { return !strings.Contains(l, s) })
		}) {
			t.Errorf("status --drift: no line with %q in\n%s", want, r.stdout)
		}
	}
	if !strings.Contains(r.stdout, drifted+" would change:\n  - "+acctC+"  launch permission\n") {
		t.Errorf("status --drift does not detail the drift:\n%s", r.stdout)
	}

	r = runBinary(t, "", nil, "status", drifted, "-o", "json", "--drift")
	var rep statusReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || r.code != 0 || len(rep.Images) != 1 {
		t.Fatalf("status -o json: got %s (%v)", r, err)
	}
	st := rep.Images[0]
	if st.ImageID != drifted || st.Status != "partial" || st.Accounts != acctB+" 999999999999" || !slices.Equal(st.Targets, []string{acctB}) ||
		len(st.Refused) != 1 || st.Drift == nil || st.Drift.InSync || len(st.Drift.Changes) != 1 || st.Drift.Changes[0].Target != acctC {
		t.Errorf("status -o json: got %+v", rep)
	}
	if got := w.ImagePerms(t, drifted).Accounts; !slices.Equal(got, []string{acctB, acctC}) {
		t.Errorf("status changed the image: %v", got)
	}
	if r := runBinary(t, "", nil, "status", "ami-0123456789abcdef0"); r.code != 1 || !strings.Contains(r.stderr, "not managed in us-east-1") {
		t.Errorf("status of an unknown image: got %s; want exit 1", r)
	}
}

// TestBinaryConfigValidate: the function's parser, every problem listed,
// exit 1 when invalid; no AWS needed.
func TestBinaryConfigValidate(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(good, []byte(`{"allowedAccounts":["111122223333"],"groups":{"prod":["444455556666"]},"delegatedKeysOnly":true}`), 0o600)
	os.WriteFile(bad, []byte(`{"allowedAccounts":["1111"],"sweepRate":0,"dryRun":1.5,"colour":"blue"}`), 0o600)

	r := runBinary(t, "", nil, "config", "validate", good)
	if want := good + ": valid. 1 account, 0 organizations, 0 OUs, 1 group allowed; kms policy; sweepRate 10; delegatedKeysOnly true; dryRun false.\n"; r.code != 0 || r.stdout != want {
		t.Errorf("valid: got %s; want %q", r, want)
	}
	r = runBinary(t, "", nil, "config", "validate", bad)
	want := bad + ": not valid, 4 problems:\n" +
		"  - dryRun: 1.5 is not true or false\n" +
		"  - unknown field \"colour\"\n" +
		"  - sweepRate: 0 is not between 1 and 1000 calls per second\n" +
		"  - allowedAccounts: \"1111\" is not a 12-digit account id\n"
	if r.code != 1 || r.stdout != want || r.stderr != "" {
		t.Errorf("invalid: got %s\nwant stdout %q", r, want)
	}
	doc, _ := os.ReadFile(bad)
	r = runBinary(t, string(doc), nil, "config", "validate", "-", "-o", "json")
	var rep configReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || r.code != 1 || rep.Valid || len(rep.Problems) != 4 || rep.File != "-" {
		t.Errorf("invalid on stdin, -o json: got %s (%v)", r, err)
	}
}

// TestBinaryConfigShow reads the deployed configuration.
func TestBinaryConfigShow(t *testing.T) {
	w := world.New(t, `{"allowedAccounts":["111122223333"],"kms":"grant"}`)
	r := runBinary(t, "", nil, "config", "show", "-o", "json")
	var rep configReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || r.code != 0 || !rep.Valid || rep.Parameter != world.Param ||
		rep.Region != "us-east-1" || rep.Version != 1 || rep.Config == nil || rep.Config.KMS != "grant" || rep.Config.SweepRate != 10 {
		t.Errorf("config show -o json: got %s (%v)", r, err)
	}
	w.PutConfig(t, `{"allowedAccounts":["1"],"kms":"yes"}`)
	r = runBinary(t, "", nil, "config", "show")
	if r.code != 1 || !strings.HasPrefix(r.stdout, "SSM parameter "+world.Param+" in us-east-1: not valid, 2 problems:\n") {
		t.Errorf("config show of an invalid document: got %s", r)
	}
}

// TestBinaryKeysPrune: statements policy mode left, once the mode is grant,
// are listed by a dry run and removed by prune.
func TestBinaryKeysPrune(t *testing.T) {
	w := world.New(t, testConfig)
	key := w.Key(t)
	id, _ := w.EncryptedImage(t, acctA, key)
	if r := runBinary(t, "", nil, "apply", id); r.code != 0 {
		t.Fatalf("apply: %s", r)
	}
	w.PutConfig(t, `{"allowedAccounts":["111122223333"],"kms":"grant"}`)
	r := runBinary(t, "", nil, "keys", "prune", "--dry-run", key)
	if want := key + " planned\n  - " + acctA + "  key statement\nPlan: 1 to remove.\n"; r.code != 0 || r.stdout != want {
		t.Errorf("prune --dry-run: got %s; want %q", r, want)
	}
	if got := w.KeyGrantees(t, key); !slices.Equal(got, []string{acctA}) {
		t.Fatalf("key after a dry run: %v, want [%s]", got, acctA)
	}
	r = runBinary(t, "", nil, "keys", "prune", key, "-o", "json")
	var reps []pruneReport
	if err := json.Unmarshal([]byte(r.stdout), &reps); err != nil || r.code != 0 || len(reps) != 1 || reps[0].Outcome != "applied" || len(reps[0].Changes) != 1 {
		t.Errorf("prune: got %s (%v)", r, err)
	}
	if got := w.KeyGrantees(t, key); len(got) != 0 {
		t.Errorf("key after prune: %v, want none of amishare's statements", got)
	}
	// In policy mode amishare keeps its statements: refused, exit 1.
	w.PutConfig(t, testConfig)
	if r := runBinary(t, "", nil, "keys", "prune", key); r.code != 1 || !strings.Contains(r.stdout, `"kms": "policy"`) {
		t.Errorf("prune in policy mode: got %s; want it refused", r)
	}
}

// TestBinaryRoleARN: --role-arn acts as the function's role (assumed),
// once its trust policy names the operator (docs/cli.md); while it trusts
// only Lambda, as the stack deploys it, the CLI stops before changing
// anything and says why.
func TestBinaryRoleARN(t *testing.T) {
	w := world.New(t, testConfig)
	id, snaps := w.PlainImage(t, 1, map[string]string{amitag.Accounts: acctA})
	const name = "amishare-function-us-east-1"
	role := "arn:aws:iam::" + moto.AccountID + ":role/" + name
	trust := func(principal map[string]any) string {
		doc, _ := json.Marshal(map[string]any{"Version": "2012-10-17", "Statement": []any{map[string]any{
			"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"}}})
		return string(doc)
	}
	admin := w.As(moto.AccountID).IAM
	if _, err := admin.CreateRole(w.Ctx, &iam.CreateRoleInput{RoleName: aws.String(name),
		AssumeRolePolicyDocument: aws.String(trust(map[string]any{"Service": "lambda.amazonaws.com"}))}); err != nil {
		t.Fatal(err)
	}
	r := runBinary(t, "", nil, "apply", "--role-arn", role, id)
	if r.code != 1 || !strings.Contains(r.stderr, "sts:AssumeRole") || strings.Contains(r.stderr, "Acting as") {
		t.Errorf("apply --role-arn, the role trusting only Lambda: got %s; want exit 1 naming sts:AssumeRole", r)
	}
	if got := w.ImagePerms(t, id); len(got.Accounts) != 0 {
		t.Fatalf("image shared with %v by a refused --role-arn, want nothing changed", got.Accounts)
	}

	if _, err := admin.UpdateAssumeRolePolicy(w.Ctx, &iam.UpdateAssumeRolePolicyInput{RoleName: aws.String(name),
		PolicyDocument: aws.String(trust(map[string]any{"AWS": "arn:aws:iam::" + moto.AccountID + ":root"}))}); err != nil {
		t.Fatal(err)
	}
	r = runBinary(t, "", nil, "apply", "--role-arn", role, id)
	want := "Acting as arn:aws:sts::" + moto.AccountID + ":assumed-role/" + name + "/amishare-cli in account " + moto.AccountID + ", region us-east-1.\n"
	if r.code != 0 || !strings.HasPrefix(r.stderr, want) {
		t.Errorf("apply --role-arn: got %s; want stderr to start %q", r, want)
	}
	w.WantShared(t, id, snaps, acctA)
}

// TestBinaryLogs: human log lines by default, without the metrics blob;
// --log-format json brings back the Lambda's lines and its metrics.
func TestBinaryLogs(t *testing.T) {
	w := world.New(t, testConfig)
	id, _ := w.PlainImage(t, 1, map[string]string{amitag.Accounts: acctA})
	r := runBinary(t, "", nil, "plan", id)
	if !strings.Contains(r.stderr, "INFO image reconciled kind=operator imageId="+id+" outcome=planned") ||
		strings.Contains(r.stderr, "_aws") || strings.HasPrefix(r.stderr, "{") || strings.Contains(r.stderr, "\n{") || strings.Contains(r.stderr, "eventId") {
		t.Errorf("human logs: got\n%s", r.stderr)
	}
	r = runBinary(t, "", nil, "plan", id, "--log-format", "json")
	var decision, metrics bool
	for _, l := range strings.Split(strings.TrimSpace(r.stderr), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("--log-format json: line %q is not JSON", l)
		}
		decision = decision || m["msg"] == "image reconciled"
		_, emf := m["_aws"]
		metrics = metrics || (m["msg"] == "metrics" && emf)
	}
	if !decision || !metrics {
		t.Errorf("--log-format json: got\n%s\nwant the decision and the metrics", r.stderr)
	}
	// --log-level warn: no info line.
	if r := runBinary(t, "", nil, "plan", id, "--log-level", "warn"); r.stderr != "" {
		t.Errorf("--log-level warn: got stderr\n%s", r.stderr)
	}
}

// TestBinarySweep: the human summary, and No changes. once in sync; no
// progress bar when stderr is not a terminal.
func TestBinarySweep(t *testing.T) {
	w := world.New(t, sweepConfig)
	ids, _ := w.Images(t, "sweep", 3, map[string]string{amitag.Accounts: acctA})
	r := runBinary(t, "", nil, "sweep")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "Sweep of us-east-1: 3 managed images checked, 3 repaired; 0 gone images released (0 snapshots); 0 errors; ") {
		t.Fatalf("sweep: got %s", r)
	}
	for _, id := range ids {
		if !strings.Contains(r.stdout, "\n"+id+" status shared: shared with 1 account(s)\n  + "+acctA+"  create-volume permission ") {
			t.Errorf("sweep stdout does not detail %s:\n%s", id, r.stdout)
		}
	}
	if strings.Contains(r.stderr, "\r") || strings.Contains(r.stderr, "images/s") {
		t.Errorf("a progress bar on a stderr that is not a terminal:\n%q", r.stderr)
	}
	r = runBinary(t, "", nil, "sweep", "--dry-run")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "Sweep plan (dry run) of us-east-1: 3 managed images checked, 0 would change;") || !strings.HasSuffix(r.stdout, "No changes.\n") {
		t.Errorf("sweep in sync: got %s", r)
	}
}

// TestBinaryHandleJSON: handle prints the Lambda's response, whatever -o says.
func TestBinaryHandleJSON(t *testing.T) {
	w := world.New(t, testConfig)
	id, _ := w.PlainImage(t, 1, map[string]string{amitag.Accounts: acctA})
	r := runBinary(t, "", nil, "handle", world.EventFile(t, "ami-available.json", id))
	var sum map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &sum); err != nil || r.code != 0 || sum["kind"] != "ami-state-change" {
		t.Errorf("handle: got %s (%v)", r, err)
	}
}

// runOnTerminal runs the built amishare with stdout and stderr on a
// pseudo-terminal (python3's pty module, which moto's tests need anyway)
// and returns what the terminal received.
func runOnTerminal(t *testing.T, env []string, args ...string) string {
	t.Helper()
	python := os.Getenv("AMISHARE_MOTO_PYTHON")
	if python == "" {
		python = "python3"
	}
	script := `import os, pty, sys
status = pty.spawn(sys.argv[1:])
sys.exit(os.waitstatus_to_exitcode(status))`
	cmd := exec.Command(python, append([]string{"-c", script, binary}, args...)...)
	cmd.Env = append(os.Environ(), append([]string{"COLUMNS=100", "LINES=40"}, env...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("amishare %s on a terminal: %v\n%q", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestBinaryTerminal: on a terminal the output is coloured unless NO_COLOR
// is set, and a sweep draws its progress (done/total, rate, time left).
func TestBinaryTerminal(t *testing.T) {
	w := world.New(t, sweepConfig)
	id, _ := w.PlainImage(t, 1, map[string]string{amitag.Accounts: acctA})
	out := runOnTerminal(t, []string{"NO_COLOR="}, "plan", id, "--log-level", "warn")
	if !strings.Contains(out, "\x1b[32m+\x1b[0m "+acctA) {
		t.Errorf("plan on a terminal: got %q, want a green +", out)
	}
	out = runOnTerminal(t, []string{"NO_COLOR=1"}, "plan", id, "--log-level", "warn")
	if strings.Contains(out, "\x1b[") || !strings.Contains(out, "+ "+acctA) {
		t.Errorf("plan on a terminal with NO_COLOR: got %q, want no colour", out)
	}
	w.Images(t, "many", 40, map[string]string{amitag.Accounts: acctA})
	out = runOnTerminal(t, []string{"NO_COLOR=1"}, "sweep", "--log-level", "warn")
	if !strings.Contains(out, "sweep") || !strings.Contains(out, "/41") || !strings.Contains(out, "images/s") {
		t.Errorf("sweep on a terminal: got %q, want a progress bar of 41 images", out)
	}
}
