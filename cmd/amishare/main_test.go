package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/amishare/amishare/internal/testing/world"
	"github.com/amishare/amishare/pkg/app"
)

const (
	acctA      = "111122223333"
	acctB      = "444455556666"
	acctC      = "777788889999"
	testConfig = `{"allowedAccounts":["111122223333","444455556666","777788889999"]}`
)

// hookHandler makes run build its app with the world's options (its call
// log; logs stay on the CLI's stderr) and whatever tune sets, and counts
// how often it was built. w nil: no world (usage errors).
func hookHandler(t *testing.T, w *world.World, tune func(*app.Options)) *int {
	t.Helper()
	orig := newApp
	t.Cleanup(func() { newApp = orig })
	built := 0
	newApp = func(ctx context.Context, o app.Options) (*app.App, error) {
		built++
		if w != nil {
			o = w.Options(o)
		}
		if tune != nil {
			tune(&o)
		}
		return app.New(ctx, o)
	}
	return &built
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

// decode reads the -o json document on stdout.
func decode[T any](t *testing.T, r result) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		t.Fatalf("stdout is not the JSON summary: %v\n%s", err, r)
	}
	return v
}

// TestRunUsage covers the usage errors: exit 2, one line naming what is
// wrong and where the help is (never the whole usage), no handler built,
// no AWS call.
func TestRunUsage(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
		help    string // the command whose --help the error points at
	}{
		{"no arguments", nil, "no command given", "amishare"},
		{"unknown command", []string{"share", world.SampleImage}, `unknown command "share"`, "amishare"},
		{"unknown command alone", []string{"share"}, `unknown command "share"`, "amishare"},
		{"mistyped command", []string{"pln"}, `unknown command "pln" for "amishare" (did you mean plan?)`, "amishare"},
		{"flag as command", []string{"--dry-run"}, "unknown flag: --dry-run", "amishare"},
		{"apply not an id", []string{"apply", "not-an-id"}, `"not-an-id" is not an AMI id`, "amishare apply"},
		{"apply upper-case id", []string{"apply", "ami-0123456789ABCDEF0"}, "is not an AMI id", "amishare apply"},
		{"apply snapshot id", []string{"apply", "snap-0123456789abcdef0"}, "is not an AMI id", "amishare apply"},
		{"plan not an id", []string{"plan", "ami-123"}, "is not an AMI id", "amishare plan"},
		{"plan not a region", []string{"plan", "--region", "eu_west", world.SampleImage}, `--region "eu_west" is not a region name`, "amishare plan"},
		{"apply without image", []string{"apply"}, "amishare apply needs one IMAGE_ID", "amishare apply"},
		{"apply two images", []string{"apply", world.SampleImage, "ami-0123456789abcdef1"}, "amishare apply takes one IMAGE_ID (ami-...), got 2", "amishare apply"},
		{"handle without file", []string{"handle"}, "amishare handle needs one EVENT_FILE", "amishare handle"},
		{"unknown flag", []string{"apply", "--force", world.SampleImage}, "unknown flag: --force", "amishare apply"},
		{"unknown flag after the image", []string{"apply", world.SampleImage, "--force"}, "unknown flag: --force", "amishare apply"},
		{"bad output", []string{"plan", "-o", "yaml", world.SampleImage}, `--output "yaml": want text or json`, "amishare plan"},
		{"bad log format", []string{"sweep", "--log-format", "xml"}, `--log-format "xml": want text or json`, "amishare sweep"},
		{"bad role", []string{"apply", "--role-arn", "admin", world.SampleImage}, `--role-arn "admin" is not an IAM role ARN`, "amishare apply"},
		{"sweep takes no image", []string{"sweep", world.SampleImage}, "amishare sweep takes no argument", "amishare sweep"},
		{"config without subcommand", []string{"config"}, "config needs a subcommand", "amishare config"},
		{"config unknown subcommand", []string{"config", "check"}, `unknown command "check" for "amishare config"`, "amishare config"},
		{"keys prune not an ARN", []string{"keys", "prune", "alias/x"}, `"alias/x" is not a KMS key ARN`, "amishare keys prune"},
		{"status not an id", []string{"status", "x"}, `"x" is not an AMI id`, "amishare status"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			built := hookHandler(t, nil, nil)
			r := runCLI(t, "", tc.args...)
			if r.code != 2 {
				t.Errorf("exit: got %d, want 2", r.code)
			}
			if r.err == nil || !strings.Contains(r.errString(), tc.wantErr) {
				t.Errorf("error: got %v (printed %q), want one containing %q", r.err, r.errString(), tc.wantErr)
			}
			if want := "amishare: " + r.errString() + "\nRun '" + tc.help + " --help' for usage.\n"; r.stderr != want {
				t.Errorf("stderr:\ngot  %q\nwant %q", r.stderr, want)
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

// errString is the error's one line, as the CLI prints it.
func (r result) errString() string {
	line, _, _ := strings.Cut(r.stderr, "\n")
	return strings.TrimPrefix(line, "amishare: ")
}
