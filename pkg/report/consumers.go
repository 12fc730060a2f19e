package report

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/amishare/amishare/pkg/share"
	"github.com/amishare/amishare/pkg/share/rules"
)

// The other side of the share (docs/consumers.md): the newest-image
// parameters, the tags mirrored in the receivers, the Auto Scaling grants,
// as the image document reports them and people read them.

// Parameter is one newest-image parameter set or deleted (or planned).
type Parameter struct {
	// Action is put (the parameter names To) or delete.
	Action string `json:"action"`
	// Account is the receiver the parameter is kept in, "" for this
	// account (the image's owner).
	Account string `json:"account"`
	Name    string `json:"name"`
	// From is the image the parameter named ("" when it did not exist), To
	// the image it names ("" when deleted).
	From string `json:"from"`
	To   string `json:"to"`
	// Rollback: the image it named no longer feeds it, and an older one
	// takes its place.
	Rollback bool `json:"rollback"`
	// Pending: SSM accepted the write but has not taken it yet; the next
	// reconcile writes it again.
	Pending bool `json:"pending"`
	// Error is why it was not written; it is retried later.
	Error string `json:"error,omitempty"`
}

// MirroredTags are the tags set and deleted on the image in one receiver.
type MirroredTags struct {
	Account string            `json:"account"`
	Set     map[string]string `json:"set"`
	Deleted []string          `json:"deleted"`
	Error   string            `json:"error,omitempty"`
}

// AutoScalingGrant is one receiver's Auto Scaling grant on a key created or
// revoked, or the key policy's Auto Scaling statements written (or planned).
type AutoScalingGrant struct {
	// Action is create or revoke (the grant), statements (the key policy's
	// Auto Scaling statements; Account is ""), or list (only with an
	// Error: the key's grants could not be listed).
	Action  string `json:"action"`
	Account string `json:"account"`
	KeyARN  string `json:"keyArn"`
	// Waiting: the account has no Auto Scaling role yet; its grant follows
	// at a later reconcile.
	Waiting bool   `json:"waiting"`
	Error   string `json:"error,omitempty"`
}

// Unreachable is a receiver amishare could not act in.
type Unreachable struct {
	Account string `json:"account"`
	Error   string `json:"error"`
}

// Auto Scaling grant actions (the engine's).
const (
	GrantCreate     = "create"
	GrantRevoke     = "revoke"
	GrantStatements = "statements"
	GrantList       = "list"
)

// consumers fills r's consumer side from the engine's report.
func (r *Image) consumers(c *share.ConsumerReport) {
	r.Parameters, r.MirroredTags, r.AutoScalingGrants, r.Unreachable, r.Notes = []Parameter{}, []MirroredTags{}, []AutoScalingGrant{}, []Unreachable{}, []string{}
	if c == nil {
		return
	}
	for _, p := range c.Parameters {
		r.Parameters = append(r.Parameters, Parameter{Action: string(p.Action), Account: p.Account, Name: p.Name,
			From: p.From, To: p.To, Rollback: p.Rollback, Pending: p.Pending, Error: p.Error})
	}
	for _, t := range c.Tags {
		set := maps.Clone(t.Set)
		if set == nil {
			set = map[string]string{}
		}
		r.MirroredTags = append(r.MirroredTags, MirroredTags{Account: t.Account, Set: set, Deleted: NonNil(slices.Clone(t.Deleted)), Error: t.Error})
	}
	for _, g := range c.Grants {
		r.AutoScalingGrants = append(r.AutoScalingGrants, AutoScalingGrant{Action: g.Action, Account: g.Account, KeyARN: g.KeyARN, Waiting: g.Waiting, Error: g.Error})
	}
	for _, u := range c.Unreachable {
		r.Unreachable = append(r.Unreachable, Unreachable{Account: u.Account, Error: u.Error})
	}
	r.Notes = NonNil(slices.Clone(c.Notes))
}

// consumerCounts counts the consumer side's changes, made or planned. A
// failure, a grant waiting for its account's Auto Scaling role, a note and
// an unreachable receiver change nothing, and are not counted; a parameter
// written that SSM has not taken yet is.
type consumerCounts struct {
	ParametersSet, ParametersDeleted int
	TagsSet, TagsDeleted             int
	GrantsCreated, GrantsRevoked     int
	// Statements counts the keys whose Auto Scaling statements are written.
	Statements int
}

// total is every change counted.
func (c consumerCounts) total() int {
	return c.ParametersSet + c.ParametersDeleted + c.TagsSet + c.TagsDeleted + c.GrantsCreated + c.GrantsRevoked + c.Statements
}

// countConsumers counts r's consumer changes.
func countConsumers(r Image) consumerCounts {
	var n consumerCounts
	for _, p := range r.Parameters {
		switch {
		case p.Error != "":
		case p.Action == string(rules.ParameterDelete):
			n.ParametersDeleted++
		default:
			n.ParametersSet++
		}
	}
	for _, t := range r.MirroredTags {
		if t.Error == "" {
			n.TagsSet += len(t.Set)
			n.TagsDeleted += len(t.Deleted)
		}
	}
	for _, g := range r.AutoScalingGrants {
		if g.Error != "" || g.Waiting {
			continue
		}
		switch g.Action {
		case GrantCreate:
			n.GrantsCreated++
		case GrantRevoke:
			n.GrantsRevoked++
		case GrantStatements:
			n.Statements++
		}
	}
	return n
}

// consumersText is the summary's clauses for the consumer side (", 1
// parameter to set"), in a plan's words or an apply's.
func consumersText(c consumerCounts, planned bool) string {
	verb := func(plan, applied string) string {
		if planned {
			return plan
		}
		return applied
	}
	var b strings.Builder
	clause(&b, "parameter", "parameters", c.ParametersSet, verb("to set", "set"), c.ParametersDeleted, verb("to delete", "deleted"))
	clause(&b, "mirrored tag", "mirrored tags", c.TagsSet, verb("to set", "set"), c.TagsDeleted, verb("to delete", "deleted"))
	clause(&b, "Auto Scaling grant", "Auto Scaling grants", c.GrantsCreated, verb("to create", "created"), c.GrantsRevoked, verb("to revoke", "revoked"))
	clause(&b, "key policy", "key policies", c.Statements, verb("to update", "updated"), 0, "")
	return b.String()
}

// ConsumersPlanned says what r's consumer side comes to, in a plan's words
// ("2 parameters to set, 1 mirrored tag to set"), counted as the Plan: line
// counts it; "" when it changes nothing.
func ConsumersPlanned(r Image) string {
	return strings.TrimPrefix(consumersText(countConsumers(r), true), ", ")
}

// clause appends ", 2 parameters to set, 1 to delete": the noun once,
// after the first count that is not zero; nothing when both are.
func clause(b *strings.Builder, one, many string, n1 int, verb1 string, n2 int, verb2 string) {
	noun := func(n int) string { return " " + Plural(n, one, many) }
	switch {
	case n1 > 0 && n2 > 0:
		fmt.Fprintf(b, ", %d%s %s, %d %s", n1, noun(n1), verb1, n2, verb2)
	case n1 > 0:
		fmt.Fprintf(b, ", %d%s %s", n1, noun(n1), verb1)
	case n2 > 0:
		fmt.Fprintf(b, ", %d%s %s", n2, noun(n2), verb2)
	}
}

// thisAccount names the image owner's account in the target column.
const thisAccount = "this account"

// consumerLines are the consumer side's lines: parameters, mirrored tags,
// Auto Scaling grants. + creates, ~ changes, - deletes; ! did not happen
// (a failure, or a grant waiting for its account's Auto Scaling role: the
// notes say why, and a later reconcile tries again).
func consumerLines(r Image, p Palette) []line {
	var out []line
	failed := p.Red("!")
	for _, c := range r.Parameters {
		target := accountOrThis(c.Account)
		var l line
		switch {
		case c.Action == string(rules.ParameterDelete):
			l = line{p.Red("-"), target, "parameter " + c.Name + " = " + c.From}
		case c.From == "":
			l = line{p.Green("+"), target, "parameter " + c.Name + " = " + c.To}
		default:
			l = line{p.Paint("33", "~"), target, "parameter " + c.Name + " = " + c.From + " -> " + c.To}
		}
		var notes []string
		if c.Rollback {
			notes = append(notes, "rollback")
		}
		if c.Pending {
			notes = append(notes, "not taken yet")
		}
		if len(notes) > 0 {
			l.what += " (" + strings.Join(notes, ", ") + ")"
		}
		if c.Error != "" {
			l.sign, l.what = failed, l.what+" not written"
		}
		out = append(out, l)
	}
	for _, t := range r.MirroredTags {
		if t.Error != "" {
			out = append(out, line{failed, t.Account, "mirrored tags not written"})
			continue
		}
		for _, k := range slices.Sorted(maps.Keys(t.Set)) {
			out = append(out, line{p.Paint("33", "~"), t.Account, "mirrored tag " + k + " = " + t.Set[k]})
		}
		for _, k := range t.Deleted {
			out = append(out, line{p.Red("-"), t.Account, "mirrored tag " + k})
		}
	}
	for _, g := range r.AutoScalingGrants {
		target, key := accountOrThis(g.Account), " on key "+g.KeyARN
		var l line
		switch g.Action {
		case GrantCreate:
			l = line{p.Green("+"), target, "Auto Scaling grant" + key}
		case GrantRevoke:
			l = line{p.Red("-"), target, "Auto Scaling grant" + key}
		case GrantStatements:
			l = line{p.Paint("33", "~"), target, "Auto Scaling statements" + key}
		default:
			l = line{failed, target, "Auto Scaling grants" + key}
		}
		switch {
		case g.Error != "":
			l.sign, l.what = failed, l.what+" not "+grantVerb(g.Action)
		case g.Waiting:
			l.sign, l.what = p.Paint("33", "!"), l.what+" waits for the account's Auto Scaling role"
		}
		out = append(out, l)
	}
	return out
}

// grantVerb is what a grant action does, in the past tense.
func grantVerb(action string) string {
	switch action {
	case GrantCreate:
		return "created"
	case GrantRevoke:
		return "revoked"
	case GrantStatements:
		return "written"
	}
	return "listed"
}

func accountOrThis(account string) string {
	if account == "" {
		return thisAccount
	}
	return account
}

// consumerWarnings are the consumer side's notes that the image's message
// does not already hold (an apply's message ends with them; a plan's has
// none): the receivers unreachable, the parameters not taken yet, what
// failed, each retried later.
func consumerWarnings(r Image) []string {
	var out []string
	for _, n := range r.Notes {
		if !strings.Contains(r.Message, n) {
			out = append(out, n)
		}
	}
	return out
}

// WriteConsumers writes the consumer side's lines, aligned as WriteChanges
// aligns the permissions.
func WriteConsumers(w io.Writer, r Image, p Palette, indent string) {
	writeLines(w, consumerLines(r, p), indent)
}
