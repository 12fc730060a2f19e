package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"reflect"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/amishare/amishare/internal/testing/fixture"
	"github.com/amishare/amishare/pkg/amitag"
	"github.com/amishare/amishare/pkg/handler"
	"github.com/amishare/amishare/pkg/kmspolicy"
	"github.com/amishare/amishare/pkg/share"
	"github.com/amishare/amishare/pkg/share/rules"
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
	if len(res.Changes) == 0 {
		return
	}
	fmt.Printf("  changes  %d, in the order applied:\n", len(res.Changes))
	w = table()
	for _, g := range groupChanges(res.Changes) {
		fmt.Fprintf(w, "    %s\t%s\n", d.resourceOf(g[0]), strings.Join(signed(g), " "))
	}
	w.Flush()
}

// groupChanges splits changes into runs on the same resource.
func groupChanges(cs []rules.Change) [][]rules.Change {
	var out [][]rules.Change
	for _, c := range cs {
		if n := len(out); n > 0 && sameResource(out[n-1][0], c) {
			out[n-1] = append(out[n-1], c)
			continue
		}
		out = append(out, []rules.Change{c})
	}
	return out
}

func sameResource(a, b rules.Change) bool {
	return a.ImageID == b.ImageID && a.SnapshotID == b.SnapshotID && a.KeyARN == b.KeyARN
}

func signed(cs []rules.Change) []string {
	var out []string
	for _, c := range cs {
		sign := "+"
		if c.Action == "remove" {
			sign = "-"
		}
		out = append(out, sign+changeTarget(c))
	}
	return out
}

// changeTarget is whom a change is for: an account, organization or OU.
func changeTarget(c rules.Change) string {
	switch {
	case c.OrganizationARN != "":
		return c.OrganizationARN
	case c.OrganizationalUnitARN != "":
		return c.OrganizationalUnitARN
	}
	return c.Account
}

func (d *demo) resourceOf(c rules.Change) string {
	switch {
	case c.KeyARN != "":
		if l, ok := d.labels[c.KeyARN]; ok {
			return "key policy " + l
		}
		return "key " + c.KeyARN
	case c.SnapshotID != "":
		return "snapshot " + c.SnapshotID
	default:
		return "image " + c.ImageID
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

// statement is one statement of a key policy, as much as the demo shows.
type statement struct {
	Sid        string
	Principals []string
	Raw        json.RawMessage
}

// parsePolicy reads a key policy's statements (a list or a single object).
func parsePolicy(doc string) ([]statement, error) {
	var p struct {
		Statement json.RawMessage
	}
	if err := json.Unmarshal([]byte(doc), &p); err != nil {
		return nil, fmt.Errorf("not a JSON policy: %w", err)
	}
	var raws []json.RawMessage
	if s := bytes.TrimSpace(p.Statement); len(s) > 0 && s[0] == '{' {
		raws = []json.RawMessage{s}
	} else if err := json.Unmarshal(p.Statement, &raws); err != nil {
		return nil, fmt.Errorf("reading statements: %w", err)
	}
	var out []statement
	for _, raw := range raws {
		var s struct {
			Sid       string
			Principal json.RawMessage
		}
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, fmt.Errorf("reading a statement: %w", err)
		}
		principals, err := parsePrincipal(s.Principal)
		if err != nil {
			return nil, fmt.Errorf("statement %q: %w", s.Sid, err)
		}
		out = append(out, statement{Sid: s.Sid, Principals: principals, Raw: raw})
	}
	return out, nil
}

// parsePrincipal lists a Principal's entries: AWS ARNs as they are, other
// kinds prefixed with their kind ("Service:ec2.amazonaws.com").
func parsePrincipal(raw json.RawMessage) ([]string, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	var star string
	if json.Unmarshal(raw, &star) == nil {
		return []string{star}, nil
	}
	var byKind map[string]json.RawMessage
	if err := json.Unmarshal(raw, &byKind); err != nil {
		return nil, fmt.Errorf("reading Principal: %w", err)
	}
	var out []string
	for _, kind := range slices.Sorted(maps.Keys(byKind)) {
		var one string
		var many []string
		if json.Unmarshal(byKind[kind], &one) == nil {
			many = []string{one}
		} else if err := json.Unmarshal(byKind[kind], &many); err != nil {
			return nil, fmt.Errorf("reading Principal %s: %w", kind, err)
		}
		slices.Sort(many)
		for _, p := range many {
			if kind != "AWS" {
				p = kind + ":" + p
			}
			out = append(out, p)
		}
	}
	return out, nil
}

// isOurs reports whether a Sid is one amishare owns: the account statements,
// or those of an organization or OU (the Sid prefix and a dash).
func isOurs(sid string) bool {
	return sid == kmspolicy.UseSid || sid == kmspolicy.GrantSid ||
		strings.HasPrefix(sid, kmspolicy.UseSid+"-o-") || strings.HasPrefix(sid, kmspolicy.GrantSid+"-o-")
}

// printStatements shows each statement's Sid and principals.
func printStatements(label string, stmts []statement) {
	fmt.Printf("  %s\n", label)
	w := table()
	for _, s := range stmts {
		sid := s.Sid
		if sid == "" {
			sid = "(no Sid)"
		}
		fmt.Fprintf(w, "    %s\t%s\n", sid, strings.Join(s.Principals, " "))
	}
	w.Flush()
}

// expectPolicy checks that after holds every statement of before unchanged,
// plus amishare's two statements granting exactly accounts.
func expectPolicy(before, after []statement, accounts []string) error {
	for _, b := range before {
		if isOurs(b.Sid) {
			continue
		}
		if !slices.ContainsFunc(after, func(a statement) bool { return sameJSON(a.Raw, b.Raw) }) {
			return fmt.Errorf("statement %q was changed or removed", b.Sid)
		}
	}
	var want []string
	for _, a := range accounts {
		want = append(want, "arn:aws:iam::"+a+":root")
	}
	for _, sid := range []string{kmspolicy.UseSid, kmspolicy.GrantSid} {
		var found []statement
		for _, a := range after {
			if a.Sid == sid {
				found = append(found, a)
			}
		}
		if len(found) != 1 {
			return fmt.Errorf("%d statements %s, want 1", len(found), sid)
		}
		if !slices.Equal(found[0].Principals, want) {
			return fmt.Errorf("statement %s names %v, want %v", sid, found[0].Principals, want)
		}
	}
	return nil
}

func sameJSON(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}
