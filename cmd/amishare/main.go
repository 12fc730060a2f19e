// Command amishare is the operator CLI over the same engine as the Lambda.
//
//	amishare handle [--dry-run] EVENT_FILE   run the Lambda's handler on one event (- for stdin)
//	amishare plan [--region R] IMAGE_ID      show what would change; change nothing
//	amishare apply [--dry-run] [--region R] IMAGE_ID   reconcile one image now
//	amishare sweep [--dry-run]               reconcile every managed image now, clean up after gone ones
//
// It prints a JSON summary on stdout and logs JSON on stderr. The exit status
// is 0 when the work was done or there was nothing to do, 1 when it failed
// (the case the Lambda would retry, or an image left in status error), and 2
// on a usage error or unreadable input.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/amishare/amishare/pkg/app"
	"github.com/amishare/amishare/pkg/awsid"
	"github.com/amishare/amishare/pkg/share/rules"
)

const usage = `usage:
  amishare handle [--dry-run] EVENT_FILE   run the Lambda's handler on one event JSON (- reads stdin)
  amishare plan [--region R] IMAGE_ID      show what would change; change nothing
  amishare apply [--dry-run] [--region R] IMAGE_ID
                                           reconcile one image now (of region R: a copy;
                                           the configuration is still read in AWS_REGION)
  amishare sweep [--dry-run]               reconcile every managed image now and clean up
                                           after deregistered ones (at the configured sweepRate)

The AWS endpoint, region and credentials come from the standard SDK chain
(AWS_ENDPOINT_URL, AWS_REGION, AWS_PROFILE, ...); the configuration parameter
from AMISHARE_CONFIG_PARAMETER (default /amishare/config).
`

func main() {
	code, err := run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "amishare:", err)
	}
	os.Exit(code)
}

// newApp builds the composition root; tests wrap it to count calls or inject faults.
var newApp = app.New

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2, nil
	}
	cmd := args[0]
	switch cmd {
	case "handle", "plan", "apply", "sweep":
	default:
		fmt.Fprint(stderr, usage)
		return 2, fmt.Errorf("unknown command %q", cmd)
	}
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	dryRun := fs.Bool("dry-run", false, "compute and print the plan; change nothing")
	var region string
	if cmd == "plan" || cmd == "apply" {
		fs.StringVar(&region, "region", "", "the image's region, when not AWS_REGION (the configuration is read in AWS_REGION)")
	}
	if err := fs.Parse(args[1:]); err != nil {
		return 2, nil
	}
	wantArgs := 1
	if cmd == "sweep" {
		wantArgs = 0
	}
	if fs.NArg() != wantArgs {
		fmt.Fprint(stderr, usage)
		return 2, nil
	}
	arg := fs.Arg(0)

	var raw []byte
	switch cmd {
	case "handle":
		var err error
		if raw, err = readInput(arg, stdin); err != nil {
			return 2, err
		}
	case "plan":
		*dryRun = true
		fallthrough
	case "apply":
		if !awsid.IsImageID(arg) {
			return 2, fmt.Errorf("%q is not an AMI id (ami- and 8 or 17 hex digits)", arg)
		}
		if region != "" && !awsid.IsRegion(region) {
			return 2, fmt.Errorf("--region %q is not a region name", region)
		}
	}

	log := slog.New(slog.NewJSONHandler(stderr, nil))
	a, err := newApp(ctx, app.Options{Log: log, DryRun: *dryRun})
	if err != nil {
		return 1, err
	}
	h := a.Handler
	var out any
	var runErr error
	failed := false
	switch cmd {
	case "handle":
		sum, err := h.Handle(ctx, raw)
		out, runErr = sum, err
		for _, res := range sum.Images {
			failed = failed || res.Status == rules.StatusError
		}
		for _, s := range sum.Sweeps {
			failed = failed || s.Errors > 0
		}
	case "sweep":
		sum, err := h.Sweep(ctx)
		out, runErr = sum, err
		failed = sum.Errors > 0
	default:
		res, err := h.Reconcile(ctx, region, arg)
		out, runErr = res, err
		failed = res.Status == rules.StatusError
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return 1, err
	}
	if runErr != nil {
		return 1, runErr
	}
	if failed {
		return 1, errors.New("an image failed or is in status error; see the summary")
	}
	return 0, nil
}

func readInput(path string, stdin io.Reader) ([]byte, error) {
	if path == "-" {
		b, err := io.ReadAll(stdin)
		if err != nil {
			return nil, fmt.Errorf("reading event from stdin: %w", err)
		}
		return b, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading event: %w", err)
	}
	return b, nil
}
