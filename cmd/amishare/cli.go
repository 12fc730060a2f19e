package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/amishare/amishare/pkg/app"
	"github.com/amishare/amishare/pkg/awsid"
	"github.com/amishare/amishare/pkg/config"
)

// cli holds one run's streams and global flags.
type cli struct {
	stdin          io.Reader
	stdout, stderr io.Writer

	output    string // text or json
	region    string
	roleARN   string
	logFormat string // text or json
	logLevel  string

	bar *progress // the sweep's, while one is shown
}

// The values of --output and --log-format.
const (
	formatText = "text"
	formatJSON = "json"
)

const rootLong = `amishare shares EC2 AMIs, their EBS snapshots and KMS keys with the accounts,
organizations and OUs named in the image tag amishare:accounts. This CLI runs
the same engine as the Lambda function, with your AWS credentials (or, with
--role-arn, the function's role).

The AWS endpoint, region and credentials come from the standard SDK chain
(AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL, ...); the configuration parameter
from AMISHARE_CONFIG_PARAMETER (default /amishare/config), read in the region
the command acts in.

Exit status: 0 success, 1 failure, 2 usage error (and, for
plan --detailed-exitcode, changes to make).`

func (c *cli) root() *cobra.Command {
	root := &cobra.Command{
		Use:     "amishare",
		Short:   "Share EC2 AMIs across accounts from a tag",
		Long:    rootLong,
		Version: version,
		Example: `  amishare plan ami-0123456789abcdef0           # what would change; changes nothing
  amishare apply ami-0123456789abcdef0          # reconcile one image now
  amishare status                               # every managed image of the region
  amishare sweep --dry-run                      # what a sweep would repair and clean up
  amishare config validate config.json          # check a configuration before deploying it`,
		SilenceErrors:         true,
		SilenceUsage:          true,
		DisableFlagsInUseLine: true,
		Args:                  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usagef(cmd, "no command given (plan, apply, sweep, status, config, keys, handle, version)")
		},
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error { return c.checkGlobals(cmd) },
	}
	root.SetVersionTemplate("amishare {{.Version}}\n")
	root.CompletionOptions.DisableDefaultCmd = true
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return &usageError{cmd: cmd.CommandPath(), err: err}
	})
	pf := root.PersistentFlags()
	pf.StringVarP(&c.output, "output", "o", formatText, "output format: text or json")
	pf.StringVar(&c.region, "region", "", "act in this region (default: the SDK's, AWS_REGION); its own stack's configuration is read, or else the home region's, which must allow it")
	pf.StringVar(&c.roleARN, "role-arn", "", "act as this role (the stack's output FunctionRoleArn: exactly what the function may do)")
	pf.StringVar(&c.logFormat, "log-format", formatText, "log format on stderr: text (for people) or json (the Lambda's, with its metrics)")
	pf.StringVar(&c.logLevel, "log-level", "info", "least level logged: debug, info, warn or error")
	root.AddCommand(c.handleCmd(), c.planCmd(), c.applyCmd(), c.sweepCmd(), c.statusCmd(), c.configCmd(), c.keysCmd(), c.versionCmd())
	return root
}

// checkGlobals refuses bad values of the global flags before any AWS call.
func (c *cli) checkGlobals(cmd *cobra.Command) error {
	switch {
	case c.output != formatText && c.output != formatJSON:
		return usagef(cmd, "--output %q: want text or json", c.output)
	case c.logFormat != formatText && c.logFormat != formatJSON:
		return usagef(cmd, "--log-format %q: want text or json", c.logFormat)
	case c.region != "" && !awsid.IsRegion(c.region):
		return usagef(cmd, "--region %q is not a region name", c.region)
	case c.roleARN != "" && !isRoleARN(c.roleARN):
		return usagef(cmd, "--role-arn %q is not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)", c.roleARN)
	}
	if _, err := parseLevel(c.logLevel); err != nil {
		return usagef(cmd, "--log-level %q: want debug, info, warn or error", c.logLevel)
	}
	return nil
}

func (c *cli) versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(c.stdout, "amishare %s\n", version)
			return nil
		},
	}
}

// logger is the run's logger on stderr: human lines, or the Lambda's JSON.
func (c *cli) logger() *slog.Logger {
	level, _ := parseLevel(c.logLevel)
	return newLogger(c.stderr, c.logFormat, level, func() { c.bar.clear() })
}

// appFor builds the app acting in the region the command names, reading
// the configuration of the stack that owns that region: the region's own
// configuration parameter when it has one, or else the home region's (the
// SDK's), which must list the region in allowedRegions. It returns the app
// and the region to act in ("" is the app's own).
func (c *cli) appFor(ctx context.Context, dryRun bool, log *slog.Logger) (*app.App, string, error) {
	opts := app.Options{Log: log, DryRun: dryRun, RoleARN: c.roleARN}
	if c.region == "" {
		a, err := newApp(ctx, opts)
		return a, "", err
	}
	opts.Region = c.region
	a, err := newApp(ctx, opts)
	if err != nil {
		return nil, "", err
	}
	if _, err := a.Config.Load(ctx); !errors.Is(err, config.ErrMissing) {
		// The region's own stack (or a configuration the command reports).
		return a, "", nil
	}
	opts.Region = ""
	home, err := newApp(ctx, opts)
	if err != nil {
		return nil, "", err
	}
	if home.Region == c.region {
		return a, "", nil
	}
	if _, err := home.Pool.EngineFor(ctx, c.region); err != nil {
		return nil, "", fmt.Errorf("--region %s: no configuration parameter %s there, and %s's: %w", c.region, a.Config.Parameter, home.Region, err)
	}
	return home, c.region, nil
}

// regionName is where the command acts.
func regionName(a *app.App, region string) string {
	if region != "" {
		return region
	}
	return a.Region
}

// sayIdentity tells, on stderr, who is about to change what where.
func (c *cli) sayIdentity(ctx context.Context, a *app.App, region string, dryRun bool) error {
	account, arn, err := a.Identity(ctx)
	if err != nil {
		return err
	}
	verb := "Acting"
	if dryRun {
		verb = "Planning (dry run)"
	}
	fmt.Fprintf(c.stderr, "%s as %s in account %s, region %s.\n", verb, arn, account, regionName(a, region))
	return nil
}

// parent is a command that only groups subcommands: run alone, it is a
// usage error naming them.
func parent(use, short, long string, subs ...*cobra.Command) *cobra.Command {
	cmd := &cobra.Command{Use: use, Short: short, Long: long, Args: noArgs}
	var names []string
	for _, s := range subs {
		names = append(names, s.Use)
	}
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		return usagef(cmd, "%s needs a subcommand: %s", use, strings.Join(names, ", or "))
	}
	cmd.AddCommand(subs...)
	return cmd
}

// noArgs refuses arguments, naming them.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		if cmd.HasSubCommands() {
			msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
			if cmd.SuggestionsMinimumDistance <= 0 {
				cmd.SuggestionsMinimumDistance = 2 // cobra's default, set only on its own path
			}
			if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
				msg += " (did you mean " + strings.Join(s, " or ") + "?)"
			}
			return usagef(cmd, "%s", msg)
		}
		return usagef(cmd, "%s takes no argument, got %q", cmd.CommandPath(), args)
	}
	return nil
}

// exactArgs wants n arguments, named what.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		switch {
		case len(args) < n:
			return usagef(cmd, "%s needs one %s", cmd.CommandPath(), what)
		case len(args) > n:
			return usagef(cmd, "%s takes one %s, got %d: %s", cmd.CommandPath(), what, len(args), strings.Join(args, " "))
		}
		return nil
	}
}

// minArgs wants at least one argument, named what.
func minArgs(what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return usagef(cmd, "%s needs at least one %s", cmd.CommandPath(), what)
		}
		return nil
	}
}

// isTerminal reports whether w is a terminal; a variable so that tests can
// pretend.
var isTerminal = func(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && termIsTerminal(int(f.Fd()))
}

// colour reports whether output to w may be coloured: a terminal, and no
// NO_COLOR (https://no-color.org: set to anything but the empty string).
func colour(w io.Writer) bool {
	return os.Getenv("NO_COLOR") == "" && isTerminal(w)
}
