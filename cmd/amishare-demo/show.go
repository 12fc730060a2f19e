package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/amishare/amishare/internal/testing/fixture"
	"github.com/amishare/amishare/pkg/amitag"
	"github.com/amishare/amishare/pkg/handler"
	"github.com/amishare/amishare/pkg/report"
	"github.com/amishare/amishare/pkg/share"
)

func title(s string) {
	fmt.Println(s)
	fmt.Println(strings.Repeat("=", len(s)))
}

func heading(s string) {
	fmt.Println(s)
	fmt.Println(strings.Repeat("-", len(s)))
}

// check reports a verified expectation.
func check(format string, args ...any) {
	fmt.Printf("✓ "+format+"\n", args...)
}

func table() *tabwriter.Writer {
	return tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
}

// printJSON prints a JSON document indented under prefix.
func printJSON(prefix string, raw []byte) {
	var b bytes.Buffer
	if err := json.Indent(&b, raw, prefix, "  "); err != nil {
		fmt.Printf("%s%s\n", prefix, raw)
		return
	}
	fmt.Printf("%s%s\n", prefix, b.Bytes())
}

// printSummary shows what the handler returned for one event.
func (d *demo) printSummary(sum handler.Summary, res share.Result) {
	fmt.Println("Handler summary:")
	w := table()
	fmt.Fprintf(w, "  event\t%s (%s)\n", sum.Kind, sum.DetailType)
	fmt.Fprintf(w, "  outcome\t%s\n", res.Outcome)
	if res.Status != "" {
		fmt.Fprintf(w, "  status\t%s\n", res.Status)
		fmt.Fprintf(w, "  message\t%s\n", res.Message)
	} else if res.Reason != "" {
		fmt.Fprintf(w, "  reason\t%s\n", res.Reason)
	}
	for i, r := range res.Refused {
		label := ""
		if i == 0 {
			label = "refused"
		}
		fmt.Fprintf(w, "  %s\t%s: %s\n", label, amitag.QuoteToken(r.Token), r.Reason)
	}
	if len(res.Changes) == 0 {
		fmt.Fprintf(w, "  changes\tnone\n")
	}
	w.Flush()
	// The CLI's own rendering: one change a line, + added, - removed.
	if len(res.Changes) > 0 {
		fmt.Printf("  changes  %d, in the order applied:\n", len(res.Changes))
		report.WriteChanges(os.Stdout, report.Changes(res.Changes), nil, report.Palette(false), "    ")
	}
	if rep := report.NewImage(res, ""); len(rep.Parameters)+len(rep.MirroredTags)+len(rep.AutoScalingGrants) > 0 {
		fmt.Println("  the other side of the share:")
		report.WriteConsumers(os.Stdout, rep, report.Palette(false), "    ")
	}
}

// printPerms shows who may use the image and its snapshots, before and after.
func (d *demo) printPerms(img image, before, after map[string]fixture.Perms) {
	fmt.Println()
	fmt.Println("Who may use them:")
	w := table()
	fmt.Fprintf(w, "  resource\t\tbefore\tafter\tchange\n")
	row := func(kind, id, note string) {
		b, a := before[id], after[id]
		fmt.Fprintf(w, "  %s %s\t%s\t%s\t%s\t%s\n", kind, id, note, describePerms(b), describePerms(a), change(b, a))
	}
	row("image   ", img.id, "")
	for _, s := range img.snaps {
		note := ""
		if k, ok := img.keyOf[s]; ok {
			note = "(" + k + ")"
		}
		row("snapshot", s, note)
	}
	w.Flush()
}

// targets lists every account, organization and OU of p.
func targets(p fixture.Perms) []string {
	return slices.Concat(p.Accounts, p.Organizations, p.OrganizationalUnits)
}

func describePerms(p fixture.Perms) string {
	parts := targets(p)
	if p.Public {
		parts = append(parts, "PUBLIC")
	}
	if len(parts) == 0 {
		return "(none)"
	}
	return strings.Join(parts, " ")
}

func change(before, after fixture.Perms) string {
	var out []string
	for _, a := range targets(after) {
		if !slices.Contains(targets(before), a) {
			out = append(out, "+"+a)
		}
	}
	for _, a := range targets(before) {
		if !slices.Contains(targets(after), a) {
			out = append(out, "-"+a)
		}
	}
	switch {
	case after.Public && !before.Public:
		out = append(out, "+PUBLIC")
	case before.Public && !after.Public:
		out = append(out, "-PUBLIC")
	}
	if len(out) == 0 {
		return "="
	}
	return strings.Join(out, " ")
}

// printStatusTags shows the tags amishare writes on the image.
func (d *demo) printStatusTags(id string) error {
	tags, err := d.fx.Tags(d.ctx, id)
	if err != nil {
		return err
	}
	fmt.Println()
	fmt.Printf("Tags on %s now:\n", id)
	w := table()
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		fmt.Fprintf(w, "  %s\t%s\n", k, tags[k])
	}
	w.Flush()
	return nil
}
