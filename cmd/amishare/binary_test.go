package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// testVersion is what the built binary says it is (-ldflags -X main.version).
const testVersion = "v9.8.7-test"

// binary is the amishare command built once for this test binary: the
// tests run it as an operator would.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "amishare-cli-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "amishare")
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	build := exec.Command(gobin, "build", "-ldflags", "-X main.version="+testVersion, "-o", binary, ".")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building amishare: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// runBinary runs the built amishare with args, stdin and the test's
// environment plus env ("K=V"); a moto test's world has pointed the
// environment at moto.
func runBinary(t *testing.T, stdin string, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	code := 0
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		t.Fatalf("running amishare %s: %v", strings.Join(args, " "), err)
	}
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

var commands = []string{"apply", "config", "handle", "help", "keys", "plan", "status", "sweep", "version"}

// TestBinaryHelp: --help, -h and help print the usage naming every
// command on stdout and exit 0; COMMAND --help describes the command with
// examples; --version and version print the version set at build time.
func TestBinaryHelp(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}} {
		r := runBinary(t, "", nil, args...)
		if r.code != 0 || r.stderr != "" {
			t.Errorf("amishare %s: got %s; want exit 0, nothing on stderr", args[0], r)
		}
		for _, c := range commands {
			if !strings.Contains(r.stdout, "\n  "+c+" ") {
				t.Errorf("amishare %s does not name the command %s:\n%s", args[0], c, r.stdout)
			}
		}
	}
	for _, c := range []string{"handle", "plan", "apply", "sweep", "status", "config validate", "config show", "keys prune"} {
		for _, help := range [][]string{append(strings.Fields(c), "--help"), append([]string{"help"}, strings.Fields(c)...)} {
			r := runBinary(t, "", nil, help...)
			if r.code != 0 || !strings.Contains(r.stdout, "Usage:\n  amishare "+c) || !strings.Contains(r.stdout, "Examples:\n  amishare "+c) {
				t.Errorf("amishare %s: got %s; want exit 0, its usage and examples", strings.Join(help, " "), r)
			}
		}
	}
	for _, args := range [][]string{{"--version"}, {"version"}} {
		if r := runBinary(t, "", nil, args...); r.code != 0 || r.stdout != "amishare "+testVersion+"\n" {
			t.Errorf("amishare %s: got %s; want amishare %s", args[0], r, testVersion)
		}
	}
}

// TestBinaryUsageError: the binary's usage errors, as TestRunUsage's.
func TestBinaryUsageError(t *testing.T) {
	r := runBinary(t, "", nil, "apply", "ami-0123456789abcdef0", "--force")
	if want := "amishare: unknown flag: --force\nRun 'amishare apply --help' for usage.\n"; r.code != 2 || r.stderr != want || r.stdout != "" {
		t.Errorf("got %s; want exit 2 and %q", r, want)
	}
}
