package main

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/spf13/cobra"

	"github.com/amishare/amishare/pkg/amitag"
	"github.com/amishare/amishare/pkg/awsid"
	"github.com/amishare/amishare/pkg/report"
	"github.com/amishare/amishare/pkg/share"
	"github.com/amishare/amishare/pkg/share/rules"
)

func (c *cli) statusCmd() *cobra.Command {
	var withDrift bool
	cmd := &cobra.Command{
		Use:   "status [--drift] [IMAGE_ID...]",
		Short: "List the managed images of the region: name, status, targets, copies",
		Long: `List every image amishare manages in the region (tagged amishare:accounts or
amishare:status), or the ones named: name, state, status, the targets its
tag resolves to under the configuration, and its copies. With --drift, also
what a sweep would change on each (a dry run: nothing changes): permissions,
copies, and what the accounts it is shared with get (parameters, mirrored
tags, Auto Scaling grants).`,
		Example: `  amishare status
  amishare status --drift
  amishare status ami-0123456789abcdef0 -o json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, id := range args {
				if !awsid.IsImageID(id) {
					return usagef(cmd, "%q is not an AMI id (ami- and 8 or 17 lower-case hex digits)", id)
				}
			}
			level, _ := parseLevel(c.logLevel)
			if !cmd.Flags().Changed("log-level") {
				// A dry run per image logs every planned change: the table says it.
				level = slog.LevelWarn
			}
			ctx := cmd.Context()
			a, region, err := c.appFor(ctx, true, newLogger(c.stderr, c.logFormat, level, nil))
			if err != nil {
				return failed(err)
			}
			eng, err := a.Pool.EngineFor(ctx, region)
			if err != nil {
				return failed(err)
			}
			cfg, err := eng.LoadConfig(ctx)
			if err != nil {
				return failed(err)
			}
			images, err := eng.ManagedImages(ctx)
			if err != nil {
				return failed(err)
			}
			rep := statusReport{Region: regionName(a, region), Images: []imageStatus{}}
			byID := map[string]*ec2types.Image{}
			for i := range images {
				byID[aws.ToString(images[i].ImageId)] = &images[i]
			}
			ids := args
			if len(ids) == 0 {
				ids = slices.Sorted(maps.Keys(byID))
			}
			var missing []string
			for _, id := range ids {
				img, ok := byID[id]
				if !ok {
					missing = append(missing, id)
					continue
				}
				st := newImageStatus(img, cfg)
				if withDrift {
					res, err := eng.ReconcileImage(ctx, img, share.Options{DryRun: true})
					st.Drift = newDrift(report.NewImage(res, rep.Region), err)
				}
				rep.Images = append(rep.Images, st)
			}
			if err := c.print(rep, func(w io.Writer) { renderStatus(w, rep, withDrift, colour(c.stdout)) }); err != nil {
				return failed(err)
			}
			if len(missing) > 0 {
				return failed(fmt.Errorf("not managed in %s (no such image of this account, or no amishare:accounts or amishare:status tag): %s", rep.Region, strings.Join(missing, ", ")))
			}
			for _, st := range rep.Images {
				if st.Drift != nil && st.Drift.Error != "" {
					return failed(errors.New("the drift of some images could not be read; see their drift error"))
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&withDrift, "drift", false, "also show what a sweep would change on each image (a dry run)")
	return cmd
}

// statusReport lists managed images (status -o json).
type statusReport struct {
	Region string        `json:"region"`
	Images []imageStatus `json:"images"`
}

// imageStatus is one managed image.
type imageStatus struct {
	ImageID string `json:"imageId"`
	Name    string `json:"name"`
	// State is EC2's: available, pending, disabled, ...
	State   string `json:"state"`
	Status  string `json:"status"`
	Message string `json:"message"`
	// Accounts is the amishare:accounts tag as written; Targets what it
	// resolves to under the configuration, Refused the tokens it refuses.
	Accounts string           `json:"accounts"`
	Targets  []string         `json:"targets"`
	Refused  []amitag.Refusal `json:"refused"`
	// Copies maps a region to the image's copy there (amishare:copies);
	// Source is, on a copy, the image it was copied from.
	Copies map[string]string `json:"copies"`
	Source string            `json:"source,omitempty"`
	// Drift is what a sweep would change (only with --drift).
	Drift *drift `json:"drift,omitempty"`
}

// drift is what a sweep would change on one image: its permissions and
// copies, and the other side of the share (docs/consumers.md), as plan's
// image document has them.
type drift struct {
	// InSync: nothing would change, by plan --detailed-exitcode's rule
	// (report.Image.HasChanges): a grant waiting for its account's Auto
	// Scaling role, a failure, a note or an unreachable receiver is no change.
	InSync            bool                      `json:"inSync"`
	Changes           []report.Change           `json:"changes"`
	Copies            []report.CopyStep         `json:"copies"`
	Parameters        []report.Parameter        `json:"parameters"`
	MirroredTags      []report.MirroredTags     `json:"mirroredTags"`
	AutoScalingGrants []report.AutoScalingGrant `json:"autoScalingGrants"`
	Unreachable       []report.Unreachable      `json:"unreachable"`
	Notes             []string                  `json:"notes"`
	Error             string                    `json:"error,omitempty"`
}

// newDrift is the drift of an image's dry run (err its error).
func newDrift(r report.Image, err error) *drift {
	d := &drift{
		Changes: r.Changes, Copies: r.Copies, Parameters: r.Parameters, MirroredTags: r.MirroredTags,
		AutoScalingGrants: r.AutoScalingGrants, Unreachable: r.Unreachable, Notes: r.Notes,
	}
	if err != nil {
		d.Error = err.Error()
	}
	d.InSync = err == nil && !d.image().HasChanges()
	return d
}

// image is d as a planned image document, for the report's rules and lines.
func (d *drift) image() report.Image {
	return report.Image{
		Outcome: string(share.OutcomePlanned), DryRun: true,
		Changes: d.Changes, Copies: d.Copies, Parameters: d.Parameters, MirroredTags: d.MirroredTags,
		AutoScalingGrants: d.AutoScalingGrants, Unreachable: d.Unreachable, Notes: d.Notes,
	}
}

func newImageStatus(img *ec2types.Image, dir amitag.OrganizationDirectory) imageStatus {
	tags := map[string]string{}
	for _, t := range img.Tags {
		tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	targets := amitag.ResolveAccounts(tags[amitag.Accounts], dir)
	copies := rules.ParseCopiesTag(tags[amitag.Copies])
	if copies == nil {
		copies = map[string]string{}
	}
	return imageStatus{
		ImageID: aws.ToString(img.ImageId), Name: aws.ToString(img.Name), State: string(img.State),
		Status: tags[amitag.Status], Message: tags[amitag.Message], Accounts: tags[amitag.Accounts],
		Targets: report.NonNil(targets.All()), Refused: report.NonNil(targets.Refused), Copies: copies, Source: tags[amitag.Source],
	}
}

// renderStatus writes the status table, then each drifting image's changes.
func renderStatus(w io.Writer, r statusReport, withDrift, colour bool) {
	p := report.Palette(colour)
	if len(r.Images) == 0 {
		fmt.Fprintf(w, "No managed images in %s.\n", r.Region)
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	head := "IMAGE\tNAME\tSTATUS\tTARGETS\tCOPIES"
	if withDrift {
		head += "\tDRIFT"
	}
	fmt.Fprintln(tw, head)
	for _, st := range r.Images {
		status := cmp.Or(st.Status, "-")
		if st.State != string(ec2types.ImageStateAvailable) {
			status += " (" + st.State + ")"
		}
		line := fmt.Sprintf("%s\t%s\t%s\t%s\t%s", st.ImageID, cmp.Or(st.Name, "-"), status, targetsText(st), copiesList(st))
		if withDrift {
			line += "\t" + driftText(st.Drift)
		}
		fmt.Fprintln(tw, line)
	}
	tw.Flush()
	for _, st := range r.Images {
		if st.Drift == nil || st.Drift.InSync {
			continue
		}
		fmt.Fprintf(w, "\n%s would change:\n", p.Bold(st.ImageID))
		if st.Drift.Error != "" {
			fmt.Fprintf(w, "  %s %s\n", p.Red("error"), st.Drift.Error)
		}
		report.WriteImageChanges(w, st.Drift.image(), p, "  ")
		for _, n := range st.Drift.Notes {
			fmt.Fprintf(w, "  warning: %s\n", n)
		}
	}
}

func targetsText(st imageStatus) string {
	s := strings.Join(st.Targets, " ")
	if len(st.Refused) > 0 {
		s = strings.TrimSpace(fmt.Sprintf("%s (%d refused)", s, len(st.Refused)))
	}
	return cmp.Or(s, "-")
}

func copiesList(st imageStatus) string {
	var out []string
	for _, region := range slices.Sorted(maps.Keys(st.Copies)) {
		out = append(out, region+"="+st.Copies[region])
	}
	if st.Source != "" {
		out = append(out, "copy of "+st.Source)
	}
	return cmp.Or(strings.Join(out, " "), "-")
}

func driftText(d *drift) string {
	switch {
	case d == nil:
		return ""
	case d.Error != "":
		return "error"
	case d.InSync:
		return "in sync"
	}
	add, remove := report.Counts(d.Changes)
	s := fmt.Sprintf("+%d -%d", add, remove)
	if len(d.Copies) > 0 {
		s += fmt.Sprintf(" ~%d %s", len(d.Copies), report.Plural(len(d.Copies), "copy", "copies"))
	}
	if c := report.ConsumersPlanned(d.image()); c != "" {
		s += ", " + c
	}
	return s
}
