// Command amishare is the operator CLI over the same engine as the Lambda:
// plan and apply one image, sweep a region, list what amishare manages,
// check a configuration, prune key statements, or run the Lambda's handler
// on one event. `amishare --help` lists the commands; docs/cli.md is the
// reference.
//
// The commands are built with cobra: it gives what operators who know
// kubectl, gh or docker expect without code of ours (help as `--help`, `-h`
// and `help COMMAND` with examples, `--version`, flags before or after
// arguments, "did you mean" for a mistyped command).
//
// Exit status: 0 success, 1 failure (the case the Lambda would retry, an
// image left in status error, an image that does not exist, an invalid
// configuration), 2 usage (and `plan --detailed-exitcode`: changes).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"

	"github.com/spf13/cobra"

	"github.com/amishare/amishare/pkg/app"
)

// version is set at build time (make build: -ldflags "-X main.version=...").
var version = "dev"

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
	// exitChanges is plan --detailed-exitcode's "there are changes".
	exitChanges = 2
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code, _ := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// newApp builds the composition root; tests wrap it to count calls or inject faults.
var newApp = app.New

// usageError is a command line amishare cannot run: exit 2, one line
// naming what is wrong, then where the help is.
type usageError struct {
	cmd string // the command path whose --help to point at
	err error
}

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// exitError ends a command with code; err (may be nil) is printed.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}
func (e *exitError) Unwrap() error { return e.err }

// failed is a failure (exit 1) with its reason.
func failed(err error) error { return &exitError{code: exitFailure, err: err} }

// usagef is a usage error of cmd.
func usagef(cmd *cobra.Command, format string, args ...any) error {
	return &usageError{cmd: cmd.CommandPath(), err: fmt.Errorf(format, args...)}
}

// run runs one command line and returns its exit status, having printed
// any error on stderr; the error is returned too, for tests.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	c := &cli{stdin: stdin, stdout: stdout, stderr: stderr}
	root := c.root()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if c.bar != nil {
		c.bar.finish()
	}
	var exit *exitError
	var usage *usageError
	switch {
	case err == nil:
		return exitOK, nil
	case errors.As(err, &exit):
		if exit.err != nil {
			fmt.Fprintln(stderr, "amishare:", exit.err)
		}
		return exit.code, exit.err
	case errors.As(err, &usage):
	default:
		// cobra's own: an unknown command or flag.
		usage = &usageError{cmd: "amishare", err: err}
		if cmd, _, ferr := root.Find(args); ferr == nil {
			usage.cmd = cmd.CommandPath()
		}
	}
	// One line: anything cobra adds after the first is left out.
	msg, _, _ := strings.Cut(usage.err.Error(), "\n")
	fmt.Fprintf(stderr, "amishare: %s\nRun '%s --help' for usage.\n", msg, usage.cmd)
	return exitUsage, usage.err
}
