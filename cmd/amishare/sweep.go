package main

import (
	"cmp"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/amishare/amishare/pkg/report"
	"github.com/amishare/amishare/pkg/sweep"
)

func (c *cli) sweepCmd() *cobra.Command {
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "sweep [--dry-run]",
		Short: "Reconcile every managed image of the region now, and clean up after gone ones",
		Long: `Run the scheduled sweep now, in the region of the stack: every managed image
is reconciled with exactly the rules of an event (drift repaired, lost
events made up for), and what amishare shared for images that are gone or no
longer managed is revoked. It keeps to the configuration's sweepRate (AWS
calls per second). On a terminal, stderr shows its progress.`,
		Example: `  amishare sweep --dry-run     # what a sweep would repair and clean up
  amishare sweep
  amishare sweep -o json > sweep.json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			a, region, err := c.appFor(ctx, dryRun, c.logger())
			if err != nil {
				return failed(err)
			}
			if region != "" {
				return failed(fmt.Errorf("--region %s: the region has no amishare stack of its own (no configuration parameter %s there); its images are swept by the stack of %s", region, a.Config.Parameter, a.Region))
			}
			if !dryRun {
				if err := c.sayIdentity(ctx, a, region, dryRun); err != nil {
					return failed(err)
				}
			}
			var onProgress func(done, total int)
			if isTerminal(c.stderr) {
				c.bar = newProgress(c.stderr)
				onProgress = c.bar.update
			}
			sum, runErr := a.Handler.SweepWithProgress(ctx, onProgress)
			c.bar.finish()
			rep := newSweepReport(sum, a.Region)
			if err := c.print(rep, func(w io.Writer) { renderSweep(w, rep, colour(c.stdout)) }); err != nil {
				return failed(err)
			}
			switch {
			case runErr != nil:
				return failed(runErr)
			case sum.Errors > 0:
				return failed(fmt.Errorf("%d %s failed or %s in status error; see the summary and the log", sum.Errors, report.Plural(sum.Errors, "image", "images"), report.Plural(sum.Errors, "is", "are")))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "plan every repair and clean-up; change nothing")
	return cmd
}

// sweepReport is what a sweep did (sweep -o json).
type sweepReport struct {
	SweepID          string `json:"sweepId"`
	Region           string `json:"region"`
	DryRun           bool   `json:"dryRun"`
	ManagedImages    int    `json:"managedImages"`
	ImagesChecked    int    `json:"imagesChecked"`
	DriftRepaired    int    `json:"driftRepaired"`
	GoneImages       int    `json:"goneImages"`
	SnapshotsCleaned int    `json:"snapshotsCleaned"`
	// ParametersChanged counts the newest-image parameters, this account's
	// and the receivers', changed (planned, in a dry run): through the
	// images' reconciles and the sweep's last step, which no image lists.
	ParametersChanged int             `json:"parametersChanged"`
	Errors            int             `json:"errors"`
	Failures          []sweep.Failure `json:"failures"`
	// Changed lists the images changed (planned, in a dry run) or failed,
	// at most 100; Omitted counts the rest.
	Changed []report.Image `json:"changed"`
	Omitted int            `json:"omitted"`
	Calls   int            `json:"calls"`
	Seconds float64        `json:"seconds"`
}

func newSweepReport(s sweep.Summary, region string) sweepReport {
	r := sweepReport{
		SweepID: s.SweepID, Region: region, DryRun: s.DryRun, ManagedImages: s.ManagedImages, ImagesChecked: s.ImagesChecked,
		DriftRepaired: s.DriftRepaired, GoneImages: s.GoneImages, SnapshotsCleaned: s.SnapshotsCleaned, ParametersChanged: s.ParametersChanged, Errors: s.Errors,
		Failures: report.NonNil(s.Failures), Changed: []report.Image{}, Omitted: s.Omitted, Calls: s.Calls, Seconds: s.Seconds,
	}
	for _, res := range s.Changed {
		r.Changed = append(r.Changed, report.NewImage(res, region))
	}
	return r
}

// renderSweep writes the sweep's human output: what it came to (the
// parameters when it changed any), then each image it changed.
func renderSweep(w io.Writer, r sweepReport, colour bool) {
	p := report.Palette(colour)
	params := ""
	if r.DryRun {
		if r.ParametersChanged > 0 {
			params = fmt.Sprintf(" %d %s;", r.ParametersChanged, report.Plural(r.ParametersChanged, "parameter would change", "parameters would change"))
		}
		fmt.Fprintf(w, "Sweep plan (dry run) of %s: %d managed %s checked, %d would change; %d %s released;%s %d %s; %d calls in %.1f s.\n",
			r.Region, r.ImagesChecked, report.Plural(r.ImagesChecked, "image", "images"), len(r.Changed)+r.Omitted,
			r.GoneImages, report.Plural(r.GoneImages, "gone image would be", "gone images would be"), params, r.Errors, report.Plural(r.Errors, "error", "errors"), r.Calls, r.Seconds)
	} else {
		if r.ParametersChanged > 0 {
			params = fmt.Sprintf(" %d %s changed;", r.ParametersChanged, report.Plural(r.ParametersChanged, "parameter", "parameters"))
		}
		fmt.Fprintf(w, "Sweep of %s: %d managed %s checked, %d repaired; %d %s released (%d %s);%s %d %s; %d calls in %.1f s.\n",
			r.Region, r.ImagesChecked, report.Plural(r.ImagesChecked, "image", "images"), r.DriftRepaired,
			r.GoneImages, report.Plural(r.GoneImages, "gone image", "gone images"), r.SnapshotsCleaned, report.Plural(r.SnapshotsCleaned, "snapshot", "snapshots"),
			params, r.Errors, report.Plural(r.Errors, "error", "errors"), r.Calls, r.Seconds)
	}
	for _, img := range r.Changed {
		fmt.Fprintf(w, "\n%s %s\n", p.Bold(img.ImageID), report.StatusText(img))
		report.WriteImageChanges(w, img, p, "  ")
	}
	for _, f := range r.Failures {
		fmt.Fprintf(w, "%s %s: %s\n", p.Red("error"), cmp.Or(f.ImageID, "sweep"), f.Error)
	}
	if r.Omitted > 0 {
		fmt.Fprintf(w, "\n... and %d more (every one is in the log).\n", r.Omitted)
	}
	if len(r.Changed)+r.Omitted+r.ParametersChanged == 0 && r.Errors == 0 {
		fmt.Fprintln(w, "No changes.")
	}
}
