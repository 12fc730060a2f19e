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

func decode[T any](t *testing.T, r result) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		t.Fatalf("stdout is not the JSON summary: %v\n%s", err, r)
	}
	return v
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
		{"unknown command", []string{"share", world.SampleImage}, `unknown command "share"`, true},
		{"unknown command alone", []string{"share"}, `unknown command "share"`, true},
		{"flag as command", []string{"--dry-run"}, `unknown command "--dry-run"`, true},
		{"apply not an id", []string{"apply", "not-an-id"}, `"not-an-id" is not an AMI id`, false},
		{"apply upper-case id", []string{"apply", "ami-0123456789ABCDEF0"}, "is not an AMI id", false},
		{"apply snapshot id", []string{"apply", "snap-0123456789abcdef0"}, "is not an AMI id", false},
		{"plan not an id", []string{"plan", "ami-123"}, "is not an AMI id", false},
		{"plan not a region", []string{"plan", "--region", "eu_west", world.SampleImage}, `--region "eu_west" is not a region name`, false},
		{"apply without image", []string{"apply"}, "", true},
		{"apply two images", []string{"apply", world.SampleImage, "ami-0123456789abcdef1"}, "", true},
		{"flag after the image", []string{"apply", world.SampleImage, "--dry-run"}, "", true},
		{"handle without file", []string{"handle"}, "", true},
		{"unknown flag", []string{"apply", "--force", world.SampleImage}, "", false},
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
