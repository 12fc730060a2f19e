package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/amishare/amishare/internal/testing/faultinject"
	"github.com/amishare/amishare/internal/testing/fixture"
	"github.com/amishare/amishare/pkg/amitag"
	"github.com/amishare/amishare/pkg/app"
	"github.com/amishare/amishare/pkg/event"
	"github.com/amishare/amishare/pkg/handler"
	"github.com/amishare/amishare/pkg/share"
	"github.com/amishare/amishare/pkg/share/rules"
)

const (
	acctA       = "111122223333"
	acctB       = "444455556666"
	acctC       = "777788889999"
	param       = "/amishare/cli-test"
	testConfig  = `{"allowedAccounts":["111122223333","444455556666","777788889999"]}`
	sampleImage = "ami-0123456789abcdef0"
)

// world is one test's moto, reached through the environment as the CLI
// reaches AWS, and a fixture to seed and inspect it.
type world struct {
	ctx   context.Context
	fx    *fixture.Fixture
	calls *fixture.CallLog
}

func newWorld(t *testing.T, configDoc string) *world {
	t.Helper()
	return &world{ctx: context.Background(), fx: fixture.ForTest(t, param, configDoc), calls: &fixture.CallLog{}}
}

// hookHandler makes run build its handler with extra options (the call
// log, and whatever tune sets) and counts how often it was built.
func hookHandler(t *testing.T, w *world, tune func(*app.Options)) *int {
	t.Helper()
	orig := newApp
	t.Cleanup(func() { newApp = orig })
	built := 0
	newApp = func(ctx context.Context, o app.Options) (*app.App, error) {
		built++
		if w != nil {
			o.APIOptions = append(o.APIOptions, w.calls.APIOption)
		}
		o.MaxBackoff = 5 * time.Millisecond
		if tune != nil {
			tune(&o)
		}
		return app.New(ctx, o)
	}
	return &built
}

func (w *world) image(t *testing.T, disks int, tags map[string]string) (string, []string) {
	t.Helper()
	id, snaps, err := w.fx.RegisterImage(w.ctx, t.Name(), make([]fixture.Disk, disks), tags)
	if err != nil {
		t.Fatal(err)
	}
	return id, snaps
}

// wantShared checks the image and each snapshot are shared with exactly accounts.
func (w *world) wantShared(t *testing.T, id string, snaps []string, accounts ...string) {
	t.Helper()
	if err := w.fx.SharedExactly(w.ctx, id, snaps, accounts); err != nil {
		t.Error(err)
	}
}

func (w *world) status(t *testing.T, id string) string {
	t.Helper()
	tags, err := w.fx.Tags(w.ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return tags[amitag.Status]
}

// eventFile writes events/name, for imageID, to a temporary file.
func eventFile(t *testing.T, name, imageID string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "events", name))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, bytes.ReplaceAll(b, []byte(sampleImage), []byte(imageID)), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// result is what one run printed and returned.
type result struct {
	code           int
	err            error
	stdout, stderr string
}

func runCLI(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code, err := run(context.Background(), args, strings.NewReader(stdin), &stdout, &stderr)
	return result{code: code, err: err, stdout: stdout.String(), stderr: stderr.String()}
}

func (r result) String() string {
	return fmt.Sprintf("exit %d, error %v\nstdout:\n%s\nstderr:\n%s", r.code, r.err, r.stdout, r.stderr)
}

func decode[T any](t *testing.T, r result) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		t.Fatalf("stdout is not the JSON summary: %v\n%s", err, r)
	}
	return v
}

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
			w := newWorld(t, testConfig)
			hookHandler(t, w, nil)
			id, snaps := w.image(t, 2, map[string]string{amitag.Accounts: acctA + "," + acctB})
			path := eventFile(t, "ami-available.json", id)
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
			w.wantShared(t, id, snaps, acctA, acctB)
			if !strings.Contains(r.stderr, `"msg":"image reconciled"`) {
				t.Errorf("stderr: got %s, want the JSON log", r.stderr)
			}
		})
	}
}

func TestRunHandleDryRun(t *testing.T) {
	w := newWorld(t, testConfig)
	hookHandler(t, w, nil)
	id, snaps := w.image(t, 2, map[string]string{amitag.Accounts: acctA})
	r := runCLI(t, "", "handle", "--dry-run", eventFile(t, "tag-change.json", id))
	if r.code != 0 || r.err != nil {
		t.Fatalf("got %s; want exit 0", r)
	}
	sum := decode[handler.Summary](t, r)
	if len(sum.Images) != 1 || sum.Images[0].Outcome != share.OutcomePlanned || len(sum.Images[0].Changes) != 3 {
		t.Errorf("summary: got %+v, want one planned image with 3 changes", sum.Images)
	}
	if got := w.calls.Mutating(); len(got) != 0 {
		t.Errorf("modifying calls: got %v, want none", got)
	}
	w.wantShared(t, id, snaps)
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
			w := newWorld(t, testConfig)
			built := hookHandler(t, w, nil)
			r := runCLI(t, tc.stdin, tc.args...)
			if r.code != tc.wantCode || r.err == nil || !strings.Contains(r.err.Error(), tc.wantErr) {
				t.Fatalf("got %s; want exit %d and an error containing %q", r, tc.wantCode, tc.wantErr)
			}
			if *built != tc.wantBuilt {
				t.Errorf("handlers built: got %d, want %d", *built, tc.wantBuilt)
			}
			if got := w.calls.Calls(); len(got) != 0 {
				t.Errorf("AWS calls: got %v, want none", got)
			}
		})
	}
}

func TestRunPlan(t *testing.T) {
	w := newWorld(t, testConfig)
	hookHandler(t, w, nil)
	id, snaps := w.image(t, 2, map[string]string{amitag.Accounts: acctA + " " + acctB})
	r := runCLI(t, "", "plan", id)
	if r.code != 0 || r.err != nil {
		t.Fatalf("got %s; want exit 0", r)
	}
	res := decode[share.Result](t, r)
	if res.Outcome != share.OutcomePlanned || !res.DryRun || res.Plan == nil {
		t.Fatalf("result: got %+v, want planned with a plan", res)
	}
	if !slices.Equal(res.Plan.Image.Add, []string{acctA, acctB}) || len(res.Plan.Snapshots) != 2 {
		t.Errorf("plan: got %+v, want the image and 2 snapshots shared with [%s %s]", res.Plan, acctA, acctB)
	}
	if len(res.Changes) != 6 {
		t.Errorf("changes: got %d, want 6 (2 accounts on the image and 2 snapshots)", len(res.Changes))
	}
	if got := w.calls.Mutating(); len(got) != 0 {
		t.Errorf("modifying calls: got %v, want none", got)
	}
	w.wantShared(t, id, snaps)
	if got := w.status(t, id); got != "" {
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
			w := newWorld(t, testConfig)
			hookHandler(t, w, nil)
			id, snaps := w.image(t, 3, map[string]string{amitag.Accounts: acctA + " " + acctC})
			args := []string{"apply", id}
			if tc.dryRun {
				args = []string{"apply", "--dry-run", id}
			}
			r := runCLI(t, "", args...)
			if r.code != 0 || r.err != nil {
				t.Fatalf("got %s; want exit 0", r)
			}
			res := decode[share.Result](t, r)
			if res.Outcome != tc.outcome || res.Status != rules.StatusShared || res.DryRun != tc.dryRun {
				t.Errorf("result: got %s %s dryRun=%v, want %s shared dryRun=%v", res.Outcome, res.Status, res.DryRun, tc.outcome, tc.dryRun)
			}
			if tc.dryRun {
				if got := w.calls.Mutating(); len(got) != 0 {
					t.Errorf("modifying calls: got %v, want none", got)
				}
				w.wantShared(t, id, snaps)
				return
			}
			w.wantShared(t, id, snaps, acctA, acctC)
			if got := w.status(t, id); got != "shared" {
				t.Errorf("status tag: got %q, want shared", got)
			}
		})
	}
}

// TestRunUsage covers the usage errors: exit 2, no handler built, no AWS call.
func TestRunUsage(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		wantErr   string // "" means no error value, only usage on stderr
		wantUsage bool
	}{
		{"no arguments", nil, "", true},
		{"unknown command", []string{"share", sampleImage}, `unknown command "share"`, true},
		{"unknown command alone", []string{"share"}, `unknown command "share"`, true},
		{"flag as command", []string{"--dry-run"}, `unknown command "--dry-run"`, true},
		{"apply not an id", []string{"apply", "not-an-id"}, `"not-an-id" is not an AMI id`, false},
		{"apply upper-case id", []string{"apply", "ami-0123456789ABCDEF0"}, "is not an AMI id", false},
		{"apply snapshot id", []string{"apply", "snap-0123456789abcdef0"}, "is not an AMI id", false},
		{"plan not an id", []string{"plan", "ami-123"}, "is not an AMI id", false},
		{"apply without image", []string{"apply"}, "", true},
		{"apply two images", []string{"apply", sampleImage, "ami-0123456789abcdef1"}, "", true},
		{"flag after the image", []string{"apply", sampleImage, "--dry-run"}, "", true},
		{"handle without file", []string{"handle"}, "", true},
		{"unknown flag", []string{"apply", "--force", sampleImage}, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			built := hookHandler(t, nil, nil)
			r := runCLI(t, "", tc.args...)
			if r.code != 2 {
				t.Errorf("exit: got %d, want 2", r.code)
			}
			if tc.wantErr == "" && r.err != nil {
				t.Errorf("error: got %v, want none", r.err)
			}
			if tc.wantErr != "" && (r.err == nil || !strings.Contains(r.err.Error(), tc.wantErr)) {
				t.Errorf("error: got %v, want one containing %q", r.err, tc.wantErr)
			}
			if got := strings.Contains(r.stderr, "usage:"); got != tc.wantUsage {
				t.Errorf("usage on stderr: got %v, want %v\n%s", got, tc.wantUsage, r.stderr)
			}
			if r.stdout != "" {
				t.Errorf("stdout: got %q, want nothing", r.stdout)
			}
			if *built != 0 {
				t.Errorf("handlers built: got %d, want 0", *built)
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
		{"apply", func(id string, t *testing.T) []string { return []string{"apply", id} }},
		{"plan", func(id string, t *testing.T) []string { return []string{"plan", id} }},
		{"handle", func(id string, t *testing.T) []string {
			return []string{"handle", eventFile(t, "ami-available.json", id)}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, `{"allowedAccounts":["111122223333"],"kms":"sometimes"}`)
			hookHandler(t, w, nil)
			id, snaps := w.image(t, 1, map[string]string{amitag.Accounts: acctA})
			r := runCLI(t, "", tc.args(id, t)...)
			if r.code != 1 || r.err == nil || !strings.Contains(r.err.Error(), "status error") {
				t.Fatalf("got %s; want exit 1 and an error about the status", r)
			}
			if !strings.Contains(r.stdout, `"status": "error"`) || !strings.Contains(r.stdout, `kms: \"sometimes\"`) {
				t.Errorf("stdout: got %s, want the summary with the status and reason", r.stdout)
			}
			w.wantShared(t, id, snaps)
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
			w := newWorld(t, testConfig)
			id, snaps := w.image(t, 2, map[string]string{amitag.Accounts: acctA + " " + acctB})
			// A manual share with C, which the tag does not name: a working run removes it.
			if err := w.fx.ShareImage(w.ctx, id, ec2types.LaunchPermission{UserId: aws.String(acctC)}); err != nil {
				t.Fatal(err)
			}
			path := eventFile(t, "tag-change.json", id)
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
					p, err = w.fx.LaunchPermissions(w.ctx, id)
				} else {
					p, err = w.fx.VolumePermissions(w.ctx, what)
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
			w.wantShared(t, id, snaps, acctA, acctB)
			if got := w.status(t, id); got != "shared" {
				t.Errorf("status tag: got %q, want shared", got)
			}
		})
	}
}
