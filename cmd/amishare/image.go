package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/amishare/amishare/pkg/awsid"
	"github.com/amishare/amishare/pkg/report"
	"github.com/amishare/amishare/pkg/share"
	"github.com/amishare/amishare/pkg/share/rules"
)

func (c *cli) handleCmd() *cobra.Command {
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "handle [--dry-run] EVENT_FILE",
		Short: "Run the Lambda's handler on one event (- reads stdin)",
		Long: `Run the Lambda's handler on one EventBridge event, exactly as an invocation
would, and print the function's response JSON (whatever --output says). The
event is a file, or - for stdin; the samples are in events/.`,
		Example: `  amishare handle events/ami-available.json
  amishare handle --dry-run events/tag-change.json
  amishare handle - < event.json`,
		Args: exactArgs(1, "EVENT_FILE (- for stdin)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			raw, err := readInput(args[0], c.stdin, "event")
			if err != nil {
				return &usageError{cmd: cmd.CommandPath(), err: err}
			}
			a, err := newApp(cmd.Context(), withRole(c, dryRun))
			if err != nil {
				return failed(err)
			}
			sum, runErr := a.Handler.Handle(cmd.Context(), raw)
			if err := writeJSON(c.stdout, sum); err != nil {
				return failed(err)
			}
			if runErr != nil {
				return failed(runErr)
			}
			for _, res := range sum.Images {
				if res.Status == rules.StatusError {
					return failed(errors.New("an image failed or is in status error; see the summary"))
				}
			}
			for _, s := range sum.Sweeps {
				if s.Errors > 0 {
					return failed(errors.New("an image failed or is in status error; see the summary"))
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "compute and print the plan; change nothing")
	return cmd
}

func (c *cli) planCmd() *cobra.Command {
	var detailed bool
	cmd := &cobra.Command{
		Use:   "plan [--detailed-exitcode] IMAGE_ID",
		Short: "Show what amishare would change for one image; change nothing",
		Long: `Show what amishare would change for one image, from its tags and the
configuration: the permissions it would add and remove on the image, its
snapshots and their keys, the copies it would make, and what the accounts it
is shared with would be given: newest-image parameters set or rolled back,
mirrored tags, Auto Scaling grants. Nothing changes. For an image that was
deregistered, it shows what would be revoked on the snapshots amishare
recorded for it.`,
		Example: `  amishare plan ami-0123456789abcdef0
  amishare plan --region eu-west-1 ami-0123456789abcdef0
  amishare plan -o json ami-0123456789abcdef0
  amishare plan --detailed-exitcode ami-0123456789abcdef0 || echo "changes (2) or failure (1)"`,
		Args: c.imageArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.reconcile(cmd.Context(), args[0], true, detailed)
		},
	}
	cmd.Flags().BoolVar(&detailed, "detailed-exitcode", false, "exit 2 when there are changes, 0 when the image is in sync (1 on failure)")
	return cmd
}

func (c *cli) applyCmd() *cobra.Command {
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "apply [--dry-run] IMAGE_ID",
		Short: "Reconcile one image now",
		Long: `Make one image's sharing match its amishare:accounts tag now, as the function
does on an event: permissions added and removed on the image, its snapshots
and their keys, copies made, newest-image parameters, mirrored tags and Auto
Scaling grants kept, status tags written. On an image that was
deregistered, revoke what amishare shared for it (its recorded snapshots and
their keys), as the deregistered event does.`,
		Example: `  amishare apply ami-0123456789abcdef0
  amishare apply ami-0123456789abcdef0 --dry-run
  amishare apply --role-arn arn:aws:iam::123456789012:role/amishare-function-us-east-1 ami-0123456789abcdef0`,
		Args: c.imageArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.reconcile(cmd.Context(), args[0], dryRun, false)
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "compute and print the plan; change nothing")
	return cmd
}

// imageArg wants one AMI id.
func (c *cli) imageArg(cmd *cobra.Command, args []string) error {
	if err := exactArgs(1, "IMAGE_ID (ami-...)")(cmd, args); err != nil {
		return err
	}
	if !awsid.IsImageID(args[0]) {
		return usagef(cmd, "%q is not an AMI id (ami- and 8 or 17 lower-case hex digits)", args[0])
	}
	return nil
}

// reconcile is plan and apply.
func (c *cli) reconcile(ctx context.Context, imageID string, dryRun, detailed bool) error {
	log := c.logger()
	a, region, err := c.appFor(ctx, dryRun, log)
	if err != nil {
		return failed(err)
	}
	if !dryRun {
		if err := c.sayIdentity(ctx, a, region, dryRun); err != nil {
			return failed(err)
		}
	}
	res, runErr := a.Handler.Reconcile(ctx, region, imageID)
	rep := report.NewImage(res, regionName(a, region))
	if res.Outcome == share.OutcomeGone && runErr == nil {
		return failed(fmt.Errorf("image %s does not exist in %s (no image of this account there, and no snapshot recorded for it): is it in another region? (--region)", imageID, rep.Region))
	}
	if err := c.print(rep, func(w io.Writer) { report.Render(w, rep, colour(c.stdout)) }); err != nil {
		return failed(err)
	}
	switch {
	case runErr != nil:
		return failed(runErr)
	case res.Status == rules.StatusError || res.Outcome == share.OutcomeFailed:
		return failed(fmt.Errorf("image %s is in status error: %s", imageID, cmp.Or(res.Message, res.Reason)))
	case res.Outcome == share.OutcomeBlocked:
		return failed(fmt.Errorf("image %s: %s", imageID, cmp.Or(res.Reason, res.Message)))
	case detailed && rep.HasChanges():
		return &exitError{code: exitChanges}
	}
	return nil
}

// print writes v as JSON with -o json, or else the human rendering.
func (c *cli) print(v any, human func(io.Writer)) error {
	if c.output == formatJSON {
		return writeJSON(c.stdout, v)
	}
	human(c.stdout)
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// readInput reads a file, or stdin for "-".
func readInput(path string, stdin io.Reader, what string) ([]byte, error) {
	if path == "-" {
		b, err := io.ReadAll(stdin)
		if err != nil {
			return nil, fmt.Errorf("reading %s from stdin: %w", what, err)
		}
		return b, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", what, err)
	}
	return b, nil
}
