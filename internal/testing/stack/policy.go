package stack

import (
	"fmt"
	"path"
	"slices"
	"strings"
)

// Statement is one IAM policy statement, normalised: single values are lists.
type Statement struct {
	Policy    string // the name of the inline policy, or the managed policy's ARN
	Sid       string
	Effect    string
	Action    []string
	Resource  []string
	Condition map[string]map[string][]string // operator -> key -> values
}

// Request is one API call as IAM evaluates it: the action, the resource and
// the condition context (keys compared case-insensitively, as IAM does).
type Request struct {
	Action   string
	Resource string
	Context  map[string][]string
}

func (q Request) String() string {
	return fmt.Sprintf("%s on %s %v", q.Action, q.Resource, q.Context)
}

// Decision is the outcome of evaluating a request against statements.
type Decision struct {
	Allowed bool
	// By lists the statements that decided: the matching Deny statements
	// when denied explicitly, else the matching Allow statements.
	By []Statement
}

// Evaluate applies IAM's rules for one identity-based policy set: an
// explicit Deny wins, else any Allow grants, else the request is denied.
func Evaluate(stmts []Statement, q Request) Decision {
	var allows, denies []Statement
	for _, s := range stmts {
		if !s.matches(q) {
			continue
		}
		if s.Effect == "Deny" {
			denies = append(denies, s)
		} else {
			allows = append(allows, s)
		}
	}
	if len(denies) > 0 {
		return Decision{By: denies}
	}
	return Decision{Allowed: len(allows) > 0, By: allows}
}

func (s Statement) matches(q Request) bool {
	if !slices.ContainsFunc(s.Action, func(a string) bool { return glob(strings.ToLower(a), strings.ToLower(q.Action)) }) {
		return false
	}
	if !slices.ContainsFunc(s.Resource, func(r string) bool { return glob(r, q.Resource) }) {
		return false
	}
	for op, keys := range s.Condition {
		for key, want := range keys {
			if !condition(op, want, lookup(q.Context, key)) {
				return false
			}
		}
	}
	return true
}

// glob matches IAM's * and ? wildcards (which, unlike path.Match, cross "/").
func glob(pattern, s string) bool {
	if pattern == "*" {
		return true
	}
	// Replace "/" so that path.Match's * crosses it, as IAM's does.
	const sep = "\x00"
	ok, err := path.Match(strings.ReplaceAll(escapeBrackets(pattern), "/", sep), strings.ReplaceAll(s, "/", sep))
	return err == nil && ok
}

func escapeBrackets(p string) string {
	return strings.NewReplacer(`\`, `\\`, "[", `\[`, "]", `\]`).Replace(p)
}

func lookup(ctx map[string][]string, key string) []string {
	for k, v := range ctx {
		if strings.EqualFold(k, key) {
			return v
		}
	}
	return nil
}

// condition evaluates one operator for one key. got is nil when the key is
// absent from the request context.
func condition(op string, want, got []string) bool {
	set := ""
	if before, after, ok := strings.Cut(op, ":"); ok {
		set, op = before, after
	}
	ifExists := strings.HasSuffix(op, "IfExists")
	op = strings.TrimSuffix(op, "IfExists")
	if op == "Null" {
		absent := got == nil
		return slices.ContainsFunc(want, func(w string) bool { return (w == "true") == absent })
	}
	if got == nil {
		return set == "ForAllValues" || ifExists
	}
	negated := strings.Contains(op, "Not")
	base := strings.Replace(op, "Not", "", 1)
	// match reports whether g satisfies the operator for the listed values:
	// equal to (like) one of them, or for a negated operator to none.
	match := func(g string) bool {
		hit := slices.ContainsFunc(want, func(w string) bool { return compare(base, w, g) })
		return hit != negated
	}
	switch set {
	case "ForAllValues":
		for _, g := range got {
			if !match(g) {
				return false
			}
		}
		return true
	case "ForAnyValue":
		return slices.ContainsFunc(got, match)
	}
	if negated {
		// A negated operator on a multi-valued key: no value may match.
		for _, g := range got {
			if !match(g) {
				return false
			}
		}
		return true
	}
	return slices.ContainsFunc(got, match)
}

// compare applies a positive operator to a policy value w and a request value g.
func compare(op, w, g string) bool {
	switch op {
	case "StringEquals", "ArnEquals":
		return w == g
	case "StringEqualsIgnoreCase":
		return strings.EqualFold(w, g)
	case "StringLike", "ArnLike":
		return glob(w, g)
	case "Bool":
		return strings.EqualFold(w, g)
	}
	panic(fmt.Sprintf("condition operator %s is not implemented by internal/testing/stack: add it", op))
}
