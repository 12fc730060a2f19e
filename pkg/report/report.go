// Package report turns what amishare did, or would do, to an image into
// what people read (terraform's habit: "+ 111122223333  launch
// permission", "No changes.") and what machines read (the JSON documents
// of the CLI's -o json, whose field names are a contract). The CLI and the
// demo print with it.
package report

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"text/tabwriter"

	"github.com/amishare/amishare/pkg/amitag"
	"github.com/amishare/amishare/pkg/share"
	"github.com/amishare/amishare/pkg/share/rules"
)

// The CLI's -o json documents. Their field names are a contract
// (docs/cli.md): add fields, never rename or remove one.

// Image is what plan and apply did (or would do) to one image.
type Image struct {
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
	Changes   []Change         `json:"changes"`
	Copies    []CopyStep       `json:"copies"`
	Warnings  []string         `json:"warnings"`
	Unrevoked []string         `json:"unrevoked"`
	// The other side of the share (docs/consumers.md): what the image's
	// newest-image parameters, receivers and Auto Scaling grants were given,
	// or in a dry run would be.
	Parameters        []Parameter        `json:"parameters"`
	MirroredTags      []MirroredTags     `json:"mirroredTags"`
	AutoScalingGrants []AutoScalingGrant `json:"autoScalingGrants"`
	Unreachable       []Unreachable      `json:"unreachable"`
	// Notes are what the consumer side left for a later reconcile (an
	// apply's message ends with them).
	Notes []string `json:"notes"`
}

// change is one permission added or removed.
type Change struct {
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

// CopyStep is one copy made (or planned) to another region, or a copy's
// accounts tag set.
type CopyStep struct {
	// Action is copy or setAccounts.
	Action   string `json:"action"`
	Region   string `json:"region"`
	ImageID  string `json:"imageId,omitempty"`
	KMSKeyID string `json:"kmsKeyId,omitempty"`
	Accounts string `json:"accounts"`
}

// Permission kinds of a change.
const (
	PermLaunch       = "launch"
	PermCreateVolume = "createVolume"
	PermKey          = "key"
)

// NewImage is the document of the engine's result on an image of region.
func NewImage(res share.Result, region string) Image {
	r := Image{
		ImageID: res.ImageID, Region: region, Outcome: string(res.Outcome), DryRun: res.DryRun,
		Status: string(res.Status), Message: res.Message, Reason: res.Reason,
		Targets: NonNil(res.Targets), Refused: NonNil(res.Refused), Changes: Changes(res.Changes),
		Warnings: NonNil(res.Warnings), Unrevoked: NonNil(res.Unrevoked), Copies: []CopyStep{},
	}
	if res.Plan != nil {
		for _, s := range res.Plan.Copies {
			r.Copies = append(r.Copies, CopyStep{Action: s.Action, Region: s.Region, ImageID: s.ImageID, KMSKeyID: s.KMSKeyID, Accounts: s.Accounts})
		}
	}
	r.consumers(res.Consumers)
	return r
}

// Changes is the documents' form of the engine's permission changes.
func Changes(cs []rules.Change) []Change {
	out := []Change{}
	for _, c := range cs {
		ch := Change{Action: string(c.Action), ImageID: c.ImageID, SnapshotID: c.SnapshotID, KeyARN: c.KeyARN,
			Target: cmp.Or(c.Account, c.OrganizationARN, c.OrganizationalUnitARN)}
		switch {
		case c.KeyARN != "":
			ch.Permission = PermKey
		case c.SnapshotID != "":
			ch.Permission = PermCreateVolume
		default:
			ch.Permission = PermLaunch
		}
		out = append(out, ch)
	}
	return out
}

// NonNil returns s, or an empty slice for nil: a JSON document's lists are
// [] rather than null, so that a script can index them without a check.
func NonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// HasChanges reports whether the report changes a permission, makes a
// copy, or changes the consumer side: a parameter, a mirrored tag, an Auto
// Scaling grant or statement (plan --detailed-exitcode). Failures, waiting
// grants, notes and unreachable receivers change nothing.
func (r Image) HasChanges() bool {
	return len(r.Changes)+len(r.Copies) > 0 || countConsumers(r).total() > 0
}

// Counts returns how many changes add and remove.
func Counts(cs []Change) (add, remove int) {
	for _, c := range cs {
		if c.Action == string(rules.ActionAdd) {
			add++
		} else {
			remove++
		}
	}
	return add, remove
}

// Palette colours the human output when true (a terminal, without
// NO_COLOR: the caller decides), and leaves it plain when false.
type Palette bool

// Paint wraps s in the ANSI graphic rendition code (SGR), when colouring.
func (p Palette) Paint(code, s string) string {
	if !p {
		return s
	}
	return "\x1b[" + code + "m" + s + "\x1b[0m"
}

// Green is for additions.
func (p Palette) Green(s string) string { return p.Paint("32", s) }

// Red is for removals and errors.
func (p Palette) Red(s string) string { return p.Paint("31", s) }

// Bold is for the name of what a block is about.
func (p Palette) Bold(s string) string { return p.Paint("1", s) }

// Render writes plan's and apply's human output: the changes, one a
// line, terraform's way (+ add, - remove, ~ change), the permissions and
// copies first, then the consumer side; then what they come to.
func Render(w io.Writer, r Image, colour bool) {
	p := Palette(colour)
	planned := r.DryRun || r.Outcome == string(share.OutcomePlanned)
	fmt.Fprintf(w, "%s %s\n", p.Bold(r.ImageID+" ("+r.Region+")"), StatusText(r))
	WriteImageChanges(w, r, p, "  ")
	for _, warn := range slices.Concat(r.Warnings, consumerWarnings(r)) {
		fmt.Fprintf(w, "  warning: %s\n", warn)
	}
	for _, u := range r.Unrevoked {
		fmt.Fprintf(w, "  %s %s launch permission not revoked: remove it by hand\n", p.Red("!"), u)
	}
	add, remove := Counts(r.Changes)
	switch {
	case !r.HasChanges():
		fmt.Fprintln(w, "No changes.")
	case planned:
		fmt.Fprintf(w, "Plan: %d to add, %d to remove%s%s.\n", add, remove, copiesText(r.Copies, "to make"), consumersText(countConsumers(r), true))
	default:
		fmt.Fprintf(w, "Applied: %d added, %d removed%s%s.\n", add, remove, copiesText(r.Copies, "made"), consumersText(countConsumers(r), false))
	}
}

// StatusText says where the image stands: its status and message, or why
// nothing applies to it.
func StatusText(r Image) string {
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

func copiesText(cs []CopyStep, verb string) string {
	n := 0
	for _, c := range cs {
		if c.Action == rules.CopyActionCopy {
			n++
		}
	}
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(", %d %s %s", n, Plural(n, "copy", "copies"), verb)
}

// Plural picks the word for n.
func Plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// WriteChanges writes one line per change, aligned: sign, target, what.
func WriteChanges(w io.Writer, cs []Change, copies []CopyStep, p Palette, indent string) {
	writeLines(w, changeLines(cs, copies, p), indent)
}

// WriteImageChanges writes every change of r, aligned: its permissions and
// copies (WriteChanges), then its consumer side (WriteConsumers).
func WriteImageChanges(w io.Writer, r Image, p Palette, indent string) {
	writeLines(w, slices.Concat(changeLines(r.Changes, r.Copies, p), consumerLines(r, p)), indent)
}

// line is one line of changes: its sign, whom or where, and what.
type line struct{ sign, target, what string }

// writeLines writes lines with their targets in one aligned column.
func writeLines(w io.Writer, lines []line, indent string) {
	if len(lines) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, l := range lines {
		fmt.Fprintf(tw, "%s%s %s\t%s\n", indent, l.sign, l.target, l.what)
	}
	tw.Flush()
}

func changeLines(cs []Change, copies []CopyStep, p Palette) []line {
	var out []line
	for _, c := range cs {
		sign := p.Green("+")
		if c.Action != string(rules.ActionAdd) {
			sign = p.Red("-")
		}
		target := c.Target
		if target == rules.PublicGroup {
			target = "everyone (public)"
		}
		out = append(out, line{sign, target, permissionText(c)})
	}
	for _, s := range copies {
		switch s.Action {
		case rules.CopyActionCopy:
			what := "copy to " + s.Region
			if s.KMSKeyID != "" {
				what += " encrypted with " + s.KMSKeyID
			}
			out = append(out, line{p.Green("+"), what, "amishare:accounts = " + s.Accounts})
		default:
			out = append(out, line{p.Paint("33", "~"), "copy " + s.ImageID + " in " + s.Region, "amishare:accounts = " + s.Accounts})
		}
	}
	return out
}

func permissionText(c Change) string {
	switch c.Permission {
	case PermKey:
		return "key " + c.KeyARN
	case PermCreateVolume:
		return "create-volume permission " + c.SnapshotID
	}
	return "launch permission"
}
