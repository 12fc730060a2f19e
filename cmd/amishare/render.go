package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/amishare/amishare/pkg/amitag"
	"github.com/amishare/amishare/pkg/share"
	"github.com/amishare/amishare/pkg/share/rules"
)

// The CLI's -o json documents. Their field names are a contract
// (docs/cli.md): add fields, never rename or remove one.

// imageReport is what plan and apply did (or would do) to one image.
type imageReport struct {
	ImageID string `json:"imageId"`
	Region  string `json:"region"`
	// Outcome is the engine's: applied, planned, blocked, unmanaged,
	// deferred, skipped, failed or cleaned.
	Outcome   string           `json:"outcome"`
	DryRun    bool             `json:"dryRun"`
	Status    string           `json:"status,omitempty"`
	Message   string           `json:"message,omitempty"`
	Reason    string           `json:"reason,omitempty"`
	Targets   []string         `json:"targets"`
	Refused   []amitag.Refusal `json:"refused"`
	Changes   []change         `json:"changes"`
	Copies    []copyStep       `json:"copies"`
	Warnings  []string         `json:"warnings"`
	Unrevoked []string         `json:"unrevoked"`
}

// change is one permission added or removed.
type change struct {
	// Action is add or remove.
	Action string `json:"action"`
	// Permission is launch (the image), createVolume (a snapshot) or key
	// (a key policy statement or grant).
	Permission string `json:"permission"`
	// Target is an account id, an organization or OU ARN, or "all" (public).
	Target     string `json:"target"`
	ImageID    string `json:"imageId"`
	SnapshotID string `json:"snapshotId,omitempty"`
	KeyARN     string `json:"keyArn,omitempty"`
}

// copyStep is one copy made (or planned) to another region, or a copy's
// accounts tag set.
type copyStep struct {
	// Action is copy or setAccounts.
	Action   string `json:"action"`
	Region   string `json:"region"`
	ImageID  string `json:"imageId,omitempty"`
	KMSKeyID string `json:"kmsKeyId,omitempty"`
	Accounts string `json:"accounts"`
}

// Permission kinds of a change.
const (
	permLaunch       = "launch"
	permCreateVolume = "createVolume"
	permKey          = "key"
)

func newImageReport(res share.Result, region string) imageReport {
	r := imageReport{
		ImageID: res.ImageID, Region: region, Outcome: string(res.Outcome), DryRun: res.DryRun,
		Status: string(res.Status), Message: res.Message, Reason: res.Reason,
		Targets: nonNil(res.Targets), Refused: nonNil(res.Refused), Changes: changesOf(res.Changes),
		Warnings: nonNil(res.Warnings), Unrevoked: nonNil(res.Unrevoked), Copies: []copyStep{},
	}
	if res.Plan != nil {
		for _, s := range res.Plan.Copies {
			r.Copies = append(r.Copies, copyStep{Action: s.Action, Region: s.Region, ImageID: s.ImageID, KMSKeyID: s.KMSKeyID, Accounts: s.Accounts})
		}
	}
	return r
}

func changesOf(cs []rules.Change) []change {
	out := []change{}
	for _, c := range cs {
		ch := change{Action: string(c.Action), ImageID: c.ImageID, SnapshotID: c.SnapshotID, KeyARN: c.KeyARN,
			Target: firstOf(c.Account, c.OrganizationARN, c.OrganizationalUnitARN)}
		switch {
		case c.KeyARN != "":
			ch.Permission = permKey
		case c.SnapshotID != "":
			ch.Permission = permCreateVolume
		default:
			ch.Permission = permLaunch
		}
		out = append(out, ch)
	}
	return out
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// HasChanges reports whether the report changes a permission or makes a
// copy (plan --detailed-exitcode).
func (r imageReport) HasChanges() bool { return len(r.Changes)+len(r.Copies) > 0 }

// counts returns how many changes add and remove.
func counts(cs []change) (add, remove int) {
	for _, c := range cs {
		if c.Action == string(rules.ActionAdd) {
			add++
		} else {
			remove++
		}
	}
	return add, remove
}

// palette colours the human output, or not.
type palette bool

func (p palette) paint(code, s string) string {
	if !p {
		return s
	}
	return "\x1b[" + code + "m" + s + "\x1b[0m"
}
func (p palette) green(s string) string { return p.paint("32", s) }
func (p palette) red(s string) string   { return p.paint("31", s) }
func (p palette) bold(s string) string  { return p.paint("1", s) }

// renderImage writes plan's and apply's human output: the changes, one a
// line, terraform's way (+ add, - remove), then what they come to.
func renderImage(w io.Writer, r imageReport, colour bool) {
	p := palette(colour)
	planned := r.DryRun || r.Outcome == string(share.OutcomePlanned)
	fmt.Fprintf(w, "%s %s\n", p.bold(r.ImageID+" ("+r.Region+")"), statusText(r))
	writeChanges(w, r.Changes, r.Copies, p, "  ")
	for _, warn := range r.Warnings {
		fmt.Fprintf(w, "  warning: %s\n", warn)
	}
	for _, u := range r.Unrevoked {
		fmt.Fprintf(w, "  %s %s launch permission not revoked: remove it by hand\n", p.red("!"), u)
	}
	add, remove := counts(r.Changes)
	switch {
	case !r.HasChanges():
		fmt.Fprintln(w, "No changes.")
	case planned:
		fmt.Fprintf(w, "Plan: %d to add, %d to remove%s.\n", add, remove, copiesText(r.Copies, "to make"))
	default:
		fmt.Fprintf(w, "Applied: %d added, %d removed%s.\n", add, remove, copiesText(r.Copies, "made"))
	}
}

// statusText says where the image stands: its status and message, or why
// nothing applies to it.
func statusText(r imageReport) string {
	switch {
	case r.Status != "" && r.Message != "":
		return "status " + r.Status + ": " + r.Message
	case r.Status != "":
		return "status " + r.Status
	case r.Reason != "":
		return r.Outcome + ": " + r.Reason
	}
	return r.Outcome
}

func copiesText(cs []copyStep, verb string) string {
	n := 0
	for _, c := range cs {
		if c.Action == rules.CopyActionCopy {
			n++
		}
	}
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(", %d %s %s", n, plural(n, "copy", "copies"), verb)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// writeChanges writes one line per change, aligned: sign, target, what.
func writeChanges(w io.Writer, cs []change, copies []copyStep, p palette, indent string) {
	if len(cs)+len(copies) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, c := range cs {
		sign := p.green("+")
		if c.Action != string(rules.ActionAdd) {
			sign = p.red("-")
		}
		target := c.Target
		if target == rules.PublicGroup {
			target = "everyone (public)"
		}
		fmt.Fprintf(tw, "%s%s %s\t%s\n", indent, sign, target, permissionText(c))
	}
	for _, s := range copies {
		switch s.Action {
		case rules.CopyActionCopy:
			what := "copy to " + s.Region
			if s.KMSKeyID != "" {
				what += " encrypted with " + s.KMSKeyID
			}
			fmt.Fprintf(tw, "%s%s %s\t%s\n", indent, p.green("+"), what, "amishare:accounts = "+s.Accounts)
		default:
			fmt.Fprintf(tw, "%s%s %s %s\t%s\n", indent, p.paint("33", "~"), "copy", s.ImageID+" in "+s.Region, "amishare:accounts = "+s.Accounts)
		}
	}
	tw.Flush()
}

func permissionText(c change) string {
	switch c.Permission {
	case permKey:
		return "key " + c.KeyARN
	case permCreateVolume:
		return "create-volume permission " + c.SnapshotID
	}
	return "launch permission"
}

// indentLines indents every line of s.
func indentLines(s, indent string) string {
	return indent + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n"+indent) + "\n"
}
