package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/amishare/amishare/pkg/config"
	"github.com/amishare/amishare/pkg/report"
)

func (c *cli) configCmd() *cobra.Command {
	return parent("config", "Check a configuration document, or show the deployed one",
		`Check a configuration document with the function's own strict parser before
deploying it (validate), or read the one deployed in the region's SSM
parameter (show).`, c.configValidateCmd(), c.configShowCmd())
}

// configReport is config validate's and config show's -o json.
type configReport struct {
	// File is the document validated ("-" for stdin); Parameter, Region and
	// Version say where config show read it.
	File      string `json:"file,omitempty"`
	Parameter string `json:"parameter,omitempty"`
	Region    string `json:"region,omitempty"`
	Version   int64  `json:"version,omitempty"`
	Valid     bool   `json:"valid"`
	// Problems lists every problem of an invalid document.
	Problems []string `json:"problems"`
	// Config is the document as the function reads it, defaults filled in.
	Config *config.Config `json:"config,omitempty"`
}

func (c *cli) configValidateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "validate FILE",
		Short: "Check a configuration document (- reads stdin); exit 1 when it is not valid",
		Long: `Parse a configuration document exactly as the function does (strictly:
unknown fields, duplicate keys, values of the wrong type or out of range are
errors) and list every problem. Exit 0 when it is valid, 1 when it is not:
check a configuration in CI before it is deployed. It makes no AWS call.`,
		Example: `  amishare config validate config.json
  amishare config validate - < config.json
  amishare config validate -o json config.json`,
		Args: exactArgs(1, "FILE (- for stdin)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			raw, err := readInput(args[0], c.stdin, "configuration")
			if err != nil {
				return failed(err)
			}
			rep := configReport{File: args[0], Problems: []string{}}
			cfg, err := config.Parse(raw)
			rep.Valid, rep.Config = err == nil, cfg
			if err != nil {
				rep.Problems = problemsOf(err)
			}
			if err := c.print(rep, func(w io.Writer) { renderConfig(w, rep) }); err != nil {
				return failed(err)
			}
			if !rep.Valid {
				return &exitError{code: exitFailure}
			}
			return nil
		},
	}
}

func (c *cli) configShowCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "show",
		Short: "Show the configuration deployed in the region's SSM parameter",
		Long: `Read the configuration parameter the command's region uses (its own stack's,
or the home region's that allows it), parse it as the function does, and
show it with its defaults filled in, or list its problems (exit 1).`,
		Example: `  amishare config show
  amishare config show --region eu-west-1 -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			a, _, err := c.appFor(ctx, true, c.logger())
			if err != nil {
				return failed(err)
			}
			rep := configReport{Parameter: a.Config.Parameter, Region: a.Region, Problems: []string{}}
			cfg, err := a.Config.Load(ctx)
			switch {
			case errors.Is(err, config.ErrMissing):
				return failed(fmt.Errorf("no configuration in %s: %w", a.Region, err))
			case err != nil && config.Problems(err) == nil:
				return failed(err)
			case err != nil:
				rep.Problems = problemsOf(err)
			default:
				rep.Valid, rep.Config, rep.Version = true, cfg, cfg.Version
			}
			if err := c.print(rep, func(w io.Writer) { renderConfig(w, rep) }); err != nil {
				return failed(err)
			}
			if !rep.Valid {
				return &exitError{code: exitFailure}
			}
			return nil
		},
	}
}

func problemsOf(err error) []string {
	if p := config.Problems(err); p != nil {
		return p
	}
	return []string{err.Error()}
}

// renderConfig writes whether the document is valid, then its problems or
// the document as read.
func renderConfig(w io.Writer, r configReport) {
	where := r.File
	if where == "" {
		where = fmt.Sprintf("SSM parameter %s in %s", r.Parameter, r.Region)
		if r.Version > 0 {
			where += fmt.Sprintf(" (version %d)", r.Version)
		}
	}
	if !r.Valid {
		fmt.Fprintf(w, "%s: not valid, %d %s:\n", where, len(r.Problems), report.Plural(len(r.Problems), "problem", "problems"))
		for _, p := range r.Problems {
			fmt.Fprintf(w, "  - %s\n", p)
		}
		return
	}
	c := r.Config
	fmt.Fprintf(w, "%s: valid. %d %s, %d %s, %d %s, %d %s allowed; kms %s; sweepRate %d; delegatedKeysOnly %v; dryRun %v.\n", where,
		len(c.AllowedAccounts), report.Plural(len(c.AllowedAccounts), "account", "accounts"),
		len(c.AllowedOrganizations), report.Plural(len(c.AllowedOrganizations), "organization", "organizations"),
		len(c.AllowedOrganizationalUnits), report.Plural(len(c.AllowedOrganizationalUnits), "OU", "OUs"),
		len(c.Groups), report.Plural(len(c.Groups), "group", "groups"), c.KMS, c.SweepRate, c.DelegatedKeysOnly, c.DryRun)
	if r.File == "" {
		var b bytes.Buffer
		_ = writeJSON(&b, c) // a struct of strings, lists, maps and numbers
		fmt.Fprint(w, indentLines(b.String(), "  "))
	}
}

// indentLines indents every line of s.
func indentLines(s, indent string) string {
	return indent + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n"+indent) + "\n"
}
