package iameval

import (
	"fmt"
	"slices"
	"strings"
)

// condition evaluates one condition operator for one key: want are the
// policy's values, got the request's (nil when the key is absent). It
// models StringEquals, StringEqualsIgnoreCase, StringLike, ArnEquals,
// ArnLike and Bool, their Not forms, the IfExists suffix, the
// ForAllValues: and ForAnyValue: set prefixes, and Null. Any other operator
// is an error, and so is a single-valued operator on a key with several
// values (IAM wants a set operator there).
func condition(op string, want, got []string) (bool, error) {
	set, base := "", op
	if before, after, ok := strings.Cut(op, ":"); ok {
		set, base = before, after
		if set != "ForAllValues" && set != "ForAnyValue" {
			return false, fmt.Errorf("condition operator %q is not modelled", op)
		}
	}
	ifExists := strings.HasSuffix(base, "IfExists")
	base = strings.TrimSuffix(base, "IfExists")
	if base == "Null" {
		absent := len(got) == 0
		return slices.ContainsFunc(want, func(w string) bool { return (w == "true") == absent }), nil
	}
	negated := strings.Contains(base, "Not")
	positive := strings.Replace(base, "Not", "", 1)
	compare, ok := operators[positive]
	if !ok {
		return false, fmt.Errorf("condition operator %q is not modelled", op)
	}
	if len(got) == 0 {
		// A missing key matches no value: a negated operator holds (IAM:
		// "If the policy condition requires that the key is not matched,
		// such as StringNotLike or ArnNotLike, and the right key is not
		// present, the condition is true"), unless a set operator asks for
		// any value; ForAllValues holds on an empty set, IfExists skips.
		return set == "ForAllValues" || ifExists || (negated && set == ""), nil
	}
	if set == "" && len(got) > 1 {
		return false, fmt.Errorf("%s on a key with several values needs ForAnyValue or ForAllValues", op)
	}
	// match reports whether g satisfies the operator for the listed values:
	// equal to (like) one of them, or for a negated operator to none.
	match := func(g string) bool {
		hit := slices.ContainsFunc(want, func(w string) bool { return compare(w, g) })
		return hit != negated
	}
	if set == "ForAllValues" {
		for _, g := range got {
			if !match(g) {
				return false, nil
			}
		}
		return true, nil
	}
	return slices.ContainsFunc(got, match), nil
}

// operators compares a policy value w with a request value g, for each
// positive operator modelled.
var operators = map[string]func(w, g string) bool{
	"StringEquals":           func(w, g string) bool { return w == g },
	"ArnEquals":              func(w, g string) bool { return w == g },
	"StringEqualsIgnoreCase": strings.EqualFold,
	"StringLike":             glob,
	"ArnLike":                glob,
	"Bool":                   strings.EqualFold,
}
