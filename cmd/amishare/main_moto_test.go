package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/amishare/amishare/internal/testing/faultinject"
	"github.com/amishare/amishare/internal/testing/fixture"
	"github.com/amishare/amishare/internal/testing/moto"
	"github.com/amishare/amishare/internal/testing/world"
	"github.com/amishare/amishare/pkg/amitag"
	"github.com/amishare/amishare/pkg/app"
	"github.com/amishare/amishare/pkg/event"
	"github.com/amishare/amishare/pkg/handler"
	"github.com/amishare/amishare/pkg/report"
	"github.com/amishare/amishare/pkg/share"
	"github.com/amishare/amishare/pkg/share/rules"
)

func TestRunHandle(t *testing.T) {
	tests := []struct {
		name string
		args func(path string) []string
		// stdin: the event is given on stdin instead of as a file.
		stdin bool
	}{
		{"file", func(path string) []string { return []string{"handle", path} }, false},
		{"stdin", func(string) []string { return []string{"handle", "-"} }, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := world.New(t, testConfig)
			hookHandler(t, w, nil)
			id, snaps := w.PlainImage(t, 2, map[string]string{amitag.Accounts: acctA + "," + acctB})
			path := world.EventFile(t, "ami-available.json", id)
			stdin := ""
			if tc.stdin {
				b, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				stdin = string(b)
			}
			r := runCLI(t, stdin, tc.args(path)...)
			if r.code != 0 || r.err != nil {
				t.Fatalf("got %s; want exit 0", r)
			}
			sum := decode[handler.Summary](t, r)
			if sum.Kind != event.KindAMIState || len(sum.Images) != 1 || sum.Images[0].ImageID != id || sum.Images[0].Status != rules.StatusShared {
				t.Errorf("summary: got %+v, want %s shared", sum, id)
			}
			w.WantShared(t, id, snaps, acctA, acctB)
			wantHumanLog(t, r.stderr, "INFO image reconciled eventId=", "kind=ami-state-change region=us-east-1 imageId="+id+" outcome=applied")
		})
	}
}

func TestRunHandleDryRun(t *testing.T) {
	w := world.New(t, testConfig)
	hookHandler(t, w, nil)
	id, snaps := w.PlainImage(t, 2, map[string]string{amitag.Accounts: acctA})
	r := runCLI(t, "", "handle", "--dry-run", world.EventFile(t, "tag-change.json", id))
	if r.code != 0 || r.err != nil {
		t.Fatalf("got %s; want exit 0", r)
	}
	sum := decode[handler.Summary](t, r)
	if len(sum.Images) != 1 || sum.Images[0].Outcome != share.OutcomePlanned || len(sum.Images[0].Changes) != 3 {
		t.Errorf("summary: got %+v, want one planned image with 3 changes", sum.Images)
	}
	if got := w.Calls.Mutating(); len(got) != 0 {
		t.Errorf("modifying calls: got %v, want none", got)
	}
	w.WantShared(t, id, snaps)
}

func TestRunHandleBadInput(t *testing.T) {
	dir := t.TempDir()
	invalid := filepath.Join(dir, "invalid.json")
	if err := os.WriteFile(invalid, []byte(`{"detail-type": "EC2 AMI State Change", `), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "no-such-event.json")
	tests := []struct {
		name      string
		args      []string
		stdin     string
		wantCode  int
		wantErr   string
		wantBuilt int
	}{
		{"missing file", []string{"handle", missing}, "", 2, "reading event: open " + missing, 0},
		{"invalid JSON file", []string{"handle", invalid}, "", 1, "not valid JSON", 1},
		{"invalid JSON on stdin", []string{"handle", "-"}, "{", 1, "not valid JSON", 1},
		{"empty stdin", []string{"handle", "-"}, "", 1, "not valid JSON", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := world.New(t, testConfig)
			built := hookHandler(t, w, nil)
			r := runCLI(t, tc.stdin, tc.args...)
			if r.code != tc.wantCode || r.err == nil || !strings.Contains(r.err.Error(), tc.wantErr) {
				t.Fatalf("got %s; want exit %d and an error containing %q", r, tc.wantCode, tc.wantErr)
			}
			if *built != tc.wantBuilt {
				t.Errorf("handlers built: got %d, want %d", *built, tc.wantBuilt)
			}
			if got := w.Calls.Calls(); len(got) != 0 {
				t.Errorf("AWS calls: got %v, want none", got)
			}
		})
	}
}

func TestRunPlan(t *testing.T) {
	w := world.New(t, testConfig)
	hookHandler(t, w, nil)
	id, snaps := w.PlainImage(t, 2, map[string]string{amitag.Accounts: acctA + " " + acctB})
	r := runCLI(t, "", "plan", id, "-o", "json")
	if r.code != 0 || r.err != nil {
		t.Fatalf("got %s; want exit 0", r)
	}
	rep := decode[report.Image](t, r)
	if rep.Outcome != string(share.OutcomePlanned) || !rep.DryRun || rep.Region != moto.Region {
		t.Fatalf("report: got %+v, want planned in %s", rep, moto.Region)
	}
	var launch, volume []string
	for _, c := range rep.Changes {
		switch {
		case c.Action != "add":
			t.Errorf("change %+v: want only additions", c)
		case c.Permission == report.PermLaunch && c.ImageID == id:
			launch = append(launch, c.Target)
		case c.Permission == report.PermCreateVolume && slices.Contains(snaps, c.SnapshotID):
			volume = append(volume, c.SnapshotID+" "+c.Target)
		}
	}
	if !slices.Equal(launch, []string{acctA, acctB}) || len(volume) != 4 || len(rep.Changes) != 6 {
		t.Errorf("changes: got %+v, want the image and 2 snapshots shared with [%s %s]", rep.Changes, acctA, acctB)
	}
	if got := w.Calls.Mutating(); len(got) != 0 {
		t.Errorf("modifying calls: got %v, want none", got)
	}
	w.WantShared(t, id, snaps)
	if got := w.Tags(t, id)[amitag.Status]; got != "" {
		t.Errorf("status tag after plan: got %q, want none", got)
	}
}

func TestRunApply(t *testing.T) {
	tests := []struct {
		name    string
		dryRun  bool
		outcome share.Outcome
	}{
		{"apply", false, share.OutcomeApplied},
		{"dry run", true, share.OutcomePlanned},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := world.New(t, testConfig)
			hookHandler(t, w, nil)
			id, snaps := w.PlainImage(t, 3, map[string]string{amitag.Accounts: acctA + " " + acctC})
			args := []string{"apply", "-o", "json", id}
			if tc.dryRun {
				args = []string{"apply", "--dry-run", "-o", "json", id}
			}
			r := runCLI(t, "", args...)
			if r.code != 0 || r.err != nil {
				t.Fatalf("got %s; want exit 0", r)
			}
			res := decode[report.Image](t, r)
			if res.Outcome != string(tc.outcome) || res.Status != string(rules.StatusShared) || res.DryRun != tc.dryRun {
				t.Errorf("result: got %s %s dryRun=%v, want %s shared dryRun=%v", res.Outcome, res.Status, res.DryRun, tc.outcome, tc.dryRun)
			}
			if tc.dryRun {
				if got := w.Calls.Mutating(); len(got) != 0 {
					t.Errorf("modifying calls: got %v, want none", got)
				}
				w.WantShared(t, id, snaps)
				return
			}
			w.WantShared(t, id, snaps, acctA, acctC)
			// Outside an event no empty eventId or region.
			wantHumanLog(t, r.stderr, "INFO image reconciled kind=operator imageId="+id+" outcome=applied")
			if strings.Contains(r.stderr, "eventId=") || strings.Contains(r.stderr, "region=") {
				t.Errorf("stderr names an eventId or region outside an event:\n%s", r.stderr)
			}
			if got := w.Tags(t, id)[amitag.Status]; got != "shared" {
				t.Errorf("status tag: got %q, want shared", got)
			}
		})
	}
}

// TestRunStatusErrorExitsOne: an image left in status error is a failure,
// for handle as for apply, and the summary is still printed.
func TestRunStatusErrorExitsOne(t *testing.T) {
	tests := []struct {
		name string
		args func(id string, t *testing.T) []string
	}{
		{"apply", func(id string, t *testing.T) []string { return []string{"apply", "-o", "json", id} }},
		{"plan", func(id string, t *testing.T) []string { return []string{"plan", "-o", "json", id} }},
		{"handle", func(id string, t *testing.T) []string {
			return []string{"handle", world.EventFile(t, "ami-available.json", id)}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := world.New(t, `{"allowedAccounts":["111122223333"],"kms":"sometimes"}`)
			hookHandler(t, w, nil)
			id, snaps := w.PlainImage(t, 1, map[string]string{amitag.Accounts: acctA})
			r := runCLI(t, "", tc.args(id, t)...)
			if r.code != 1 || r.err == nil || !strings.Contains(r.err.Error(), "status error") {
				t.Fatalf("got %s; want exit 1 and an error about the status", r)
			}
			if !strings.Contains(r.stdout, `"status": "error"`) || !strings.Contains(r.stdout, `kms: \"sometimes\"`) {
				t.Errorf("stdout: got %s, want the summary with the status and reason", r.stdout)
			}
			w.WantShared(t, id, snaps)
		})
	}
}

// TestRunHandleAWSFailure: when every call of one modifying action fails,
// handle exits 1 having shared nothing unsafe; without the fault it converges.
func TestRunHandleAWSFailure(t *testing.T) {
	tests := []struct{ action string }{
		{"ModifyImageAttribute"},
		{"CreateTags"},
	}
	for _, tc := range tests {
		t.Run(tc.action, func(t *testing.T) {
			w := world.New(t, testConfig)
			id, snaps := w.PlainImage(t, 2, map[string]string{amitag.Accounts: acctA + " " + acctB})
			// A manual share with C, which the tag does not name: a working run removes it.
			w.ShareImage(t, id, ec2types.LaunchPermission{UserId: aws.String(acctC)})
			path := world.EventFile(t, "tag-change.json", id)
			faults := faultinject.New(faultinject.Rule{Action: tc.action, Kind: faultinject.ServerError})
			hookHandler(t, w, func(o *app.Options) {
				o.HTTPClient = faults.Client()
				o.MaxAttempts = 2
			})
			r := runCLI(t, "", "handle", path)
			if r.code != 1 || r.err == nil || !strings.Contains(r.err.Error(), id) {
				t.Fatalf("got %s; want exit 1 and an error naming %s", r, id)
			}
			if got := faults.Injected(tc.action); got == 0 {
				t.Fatalf("no fault injected on %s", tc.action)
			}
			sum := decode[handler.Summary](t, r)
			if sum.Error == "" || len(sum.Images) != 1 || sum.Images[0].Outcome != share.OutcomeFailed {
				t.Errorf("summary: got %+v, want the error and one failed image", sum)
			}
			for _, what := range []string{id, snaps[0], snaps[1]} {
				var p fixture.Perms
				var err error
				if what == id {
					p, err = w.Fixture.LaunchPermissions(w.Ctx, id)
				} else {
					p, err = w.Fixture.VolumePermissions(w.Ctx, what)
				}
				if err != nil {
					t.Fatal(err)
				}
				for _, a := range p.Accounts {
					if a != acctA && a != acctB && !(what == id && a == acctC) {
						t.Errorf("%s shared with %s after the failure", what, a)
					}
				}
				if p.Public {
					t.Errorf("%s is public after the failure", what)
				}
			}

			hookHandler(t, w, nil)
			if r := runCLI(t, "", "handle", path); r.code != 0 || r.err != nil {
				t.Fatalf("without faults: got %s; want exit 0", r)
			}
			w.WantShared(t, id, snaps, acctA, acctB)
			if got := w.Tags(t, id)[amitag.Status]; got != "shared" {
				t.Errorf("status tag: got %q, want shared", got)
			}
		})
	}
}

// TestRunPlanRegion: plan and apply act on an image of another region
// (--region): that region has no configuration of its own, so the home
// region's is read, which allows it.
func TestRunPlanRegion(t *testing.T) {
	const away = "eu-west-1"
	w := world.New(t, `{"allowedAccounts":["111122223333","444455556666","777788889999"],"allowedRegions":["eu-west-1"]}`)
	hookHandler(t, w, nil)
	id, snaps := w.In(away).PlainImage(t, 1, map[string]string{amitag.Accounts: acctA})
	if r := runCLI(t, "", "apply", "--region", away, "-o", "json", id); r.code != 0 || decode[report.Image](t, r).Status != string(rules.StatusShared) {
		t.Fatalf("apply --region %s %s: %s", away, id, r)
	}
	w.In(away).WantShared(t, id, snaps, acctA)
	r := runCLI(t, "", "plan", id, "--region", away, "-o", "json")
	if rep := decode[report.Image](t, r); r.code != 0 || rep.Outcome != string(share.OutcomePlanned) || rep.Status != string(rules.StatusShared) || len(rep.Changes) != 0 || rep.Region != away {
		t.Errorf("plan --region %s %s: %s", away, id, r)
	}
	// Not in the home region: an error that says so, nothing on stdout.
	if r := runCLI(t, "", "plan", id); r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, "amishare: image "+id+" does not exist in "+moto.Region) {
		t.Errorf("plan %s without --region: got %s; want it not found in %s", id, r, moto.Region)
	}
	// A region the configuration does not allow: refused, nothing read there.
	if r := runCLI(t, "", "plan", "--region", "ap-south-1", id); r.code != 1 || !strings.Contains(r.stderr, "allowedRegions") {
		t.Errorf("plan --region ap-south-1: got %s; want it refused", r)
	}
}

// TestRunRegionOwnStack: a region whose own stack has a configuration is
// acted in with that configuration, not the home region's.
func TestRunRegionOwnStack(t *testing.T) {
	const away = "eu-west-1"
	w := world.New(t, `{"allowedAccounts":["111122223333"]}`)
	putConfigIn(t, w, away, `{"allowedAccounts":["444455556666"]}`)
	hookHandler(t, w, nil)
	id, snaps := w.In(away).PlainImage(t, 1, map[string]string{amitag.Accounts: acctA + " " + acctB})
	r := runCLI(t, "", "apply", "--region", away, "-o", "json", id)
	rep := decode[report.Image](t, r)
	if r.code != 0 || rep.Status != string(rules.StatusPartial) || !slices.Equal(rep.Targets, []string{acctB}) {
		t.Fatalf("apply --region %s: got %s; want shared with %s only (%s's own configuration)", away, r, acctB, away)
	}
	w.In(away).WantShared(t, id, snaps, acctB)
}

// putConfigIn stores doc in the configuration parameter of region: the
// configuration of a stack deployed there.
func putConfigIn(t *testing.T, w *world.World, region, doc string) {
	t.Helper()
	api := ssm.NewFromConfig(w.AWS, func(o *ssm.Options) { o.Region = region })
	if _, err := api.PutParameter(w.Ctx, &ssm.PutParameterInput{
		Name: aws.String(world.Param), Value: aws.String(doc), Type: ssmtypes.ParameterTypeString, Overwrite: aws.Bool(true),
	}); err != nil {
		t.Fatal(err)
	}
}

// wantHumanLog checks stderr holds a human log line that starts with want
// and contains each of parts, and no JSON line.
func wantHumanLog(t *testing.T, stderr, want string, parts ...string) {
	t.Helper()
	found := false
	for _, l := range strings.Split(stderr, "\n") {
		if strings.HasPrefix(l, want) && !slices.ContainsFunc(parts, func(p string) bool { return !strings.Contains(l, p) }) {
			found = true
		}
		if strings.HasPrefix(l, "{") {
			t.Errorf("stderr holds a JSON line: %s", l)
		}
	}
	if !found {
		t.Errorf("stderr: got\n%s\nwant a line starting %q and containing %q", stderr, want, parts)
	}
}
