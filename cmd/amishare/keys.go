package main

import (
	"cmp"
	"fmt"
	"io"
	"regexp"

	"github.com/spf13/cobra"

	"github.com/amishare/amishare/pkg/report"
	"github.com/amishare/amishare/pkg/share"
)

func (c *cli) keysCmd() *cobra.Command {
	return parent("keys", "Manage what amishare left in KMS keys", "", c.keysPruneCmd())
}

// keyARNRe matches a KMS key ARN and captures its region.
var keyARNRe = regexp.MustCompile(`^arn:aws[a-z-]*:kms:([a-z0-9-]+):[0-9]{12}:key/[A-Za-z0-9-]+$`)

func (c *cli) keysPruneCmd() *cobra.Command {
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "prune [--dry-run] KEY_ARN...",
		Short: "Remove the key policy statements policy mode left, once the mode is grant or off",
		Long: `Remove from each key's policy the statements amishare wrote in "kms": "policy"
mode, once the configuration says grant or off: the function's role may then
no longer write key policies, so amishare reports those statements (the
"key holds statements policy mode left" log line, the image's message) and
this command removes them, with credentials that may write the key policy.
Each key is a key ARN of the region the command acts in or of one the
configuration allows.`,
		Example: `  amishare keys prune --dry-run arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab
  amishare keys prune arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab`,
		Args: func(cmd *cobra.Command, args []string) error {
			if err := minArgs("KEY_ARN")(cmd, args); err != nil {
				return err
			}
			for _, a := range args {
				if !keyARNRe.MatchString(a) {
					return usagef(cmd, "%q is not a KMS key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID)", a)
				}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			a, region, err := c.appFor(ctx, dryRun, c.logger())
			if err != nil {
				return failed(err)
			}
			if !dryRun {
				if err := c.sayIdentity(ctx, a, region, dryRun); err != nil {
					return failed(err)
				}
			}
			reps := []pruneReport{}
			var errs []error
			for _, key := range args {
				keyRegion := keyARNRe.FindStringSubmatch(key)[1]
				if keyRegion == a.Region {
					keyRegion = ""
				}
				rep := pruneReport{KeyARN: key, Changes: []report.Change{}}
				eng, err := a.Pool.EngineFor(ctx, keyRegion)
				var res share.PruneResult
				if err == nil {
					res, err = eng.PruneKey(ctx, key, share.Options{DryRun: dryRun})
				}
				rep.Outcome, rep.Reason, rep.DryRun = string(res.Outcome), res.Reason, res.DryRun
				rep.Changes = report.Changes(res.Changes)
				switch {
				case err != nil:
					rep.Outcome, rep.Error = string(share.OutcomeFailed), err.Error()
					errs = append(errs, fmt.Errorf("%s: %w", key, err))
				case res.Outcome == share.OutcomeBlocked || res.Outcome == share.OutcomeSkipped:
					errs = append(errs, fmt.Errorf("%s: %s", key, res.Reason))
				}
				reps = append(reps, rep)
			}
			if err := c.print(reps, func(w io.Writer) { renderPrune(w, reps, colour(c.stdout)) }); err != nil {
				return failed(err)
			}
			if len(errs) > 0 {
				return failed(fmt.Errorf("%d of %d %s not pruned: %v", len(errs), len(args), report.Plural(len(args), "key", "keys"), errs))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "show the statements that would be removed; change nothing")
	return cmd
}

// pruneReport is what keys prune did to one key (-o json: a list of them).
type pruneReport struct {
	KeyARN string `json:"keyArn"`
	// Outcome is applied (or planned, in a dry run), skipped (policy mode
	// keeps its statements), blocked (the key is not delegated, or the
	// configuration is invalid) or failed.
	Outcome string          `json:"outcome"`
	DryRun  bool            `json:"dryRun"`
	Reason  string          `json:"reason,omitempty"`
	Error   string          `json:"error,omitempty"`
	Changes []report.Change `json:"changes"`
}

func renderPrune(w io.Writer, reps []pruneReport, colour bool) {
	p := report.Palette(colour)
	for _, r := range reps {
		fmt.Fprintf(w, "%s %s\n", p.Bold(r.KeyARN), cmp.Or(r.Error, r.Reason, r.Outcome))
		for _, ch := range r.Changes {
			fmt.Fprintf(w, "  %s %s  key statement\n", p.Red("-"), ch.Target)
		}
		switch {
		case len(r.Changes) == 0 && r.Error == "":
			fmt.Fprintln(w, "No changes.")
		case r.DryRun:
			fmt.Fprintf(w, "Plan: %d to remove.\n", len(r.Changes))
		case r.Error == "":
			fmt.Fprintf(w, "Pruned: %d removed.\n", len(r.Changes))
		}
	}
}
