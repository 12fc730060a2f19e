package kmspolicy

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/amishare/amishare/pkg/awsid"
)

// Grantees returns who our statements currently grant, sorted: account ids,
// organization ids ("o-…") and OUs ("o-…/ou-…").
func Grantees(policy string) ([]string, error) {
	doc, err := parse(policy)
	if err != nil {
		return nil, err
	}
	return doc.grantees(), nil
}

// Edit returns policy with our statements granting (current ∪ add) \ remove;
// a grantee in both add and remove ends up removed. Grantees are account ids,
// organizations and OUs (see GranteeKey). Statements of grantees that remain
// stay where they were (new ones are appended), every other statement is
// kept byte for byte, in order.
//
// changed is false when the policy already grants exactly that, with our
// statements as this version writes them; callers must not write then, and
// out is policy itself. key names the key the policy belongs to (KeyOf its
// ARN): its partition for the principals' ARNs, and its account, which the
// organization and OU statements exclude. An empty policy is treated as
// {"Version":"2012-10-17","Statement":[]}.
//
// Our statements are indented when that fits in MaxPolicyBytes, compact
// when only that fits; when even that is too large, the whole policy is
// compacted, and when that does not fit either the error wraps
// ErrPolicyTooLarge.
func Edit(policy string, add, remove []string, key Key) (out string, changed bool, err error) {
	key, err = key.check()
	if err != nil {
		return "", false, err
	}
	addSet, err := granteeSet(add)
	if err != nil {
		return "", false, fmt.Errorf("grantees to add: %w", err)
	}
	removeSet, err := granteeSet(remove)
	if err != nil {
		return "", false, fmt.Errorf("grantees to remove: %w", err)
	}
	doc, err := parse(policy)
	if err != nil {
		return "", false, err
	}

	current := doc.grantees()
	want := map[string]bool{}
	for _, g := range current {
		want[g] = true
	}
	for g := range addSet {
		want[g] = true
	}
	for g := range removeSet {
		delete(want, g)
	}
	desired := sortedKeys(want)

	if slices.Equal(current, desired) && doc.canonical(desired, key) {
		if isBlank(policy) {
			// Give callers JSON, never "", even when there is nothing to do.
			b, err := doc.render(doc.stmts, nil, layoutCompact)
			return string(b), false, err
		}
		return policy, false, nil
	}

	fresh, err := freshStatements(desired, key)
	if err != nil {
		return "", false, err
	}
	var b []byte
	for _, layout := range []layout{layoutIndented, layoutOursCompact, layoutCompact} {
		if b, err = doc.render(doc.replaceOurs(fresh), fresh, layout); err != nil {
			return "", false, err
		}
		if len(b) <= MaxPolicyBytes {
			return string(b), true, nil
		}
	}
	return "", false, fmt.Errorf("%w: %d bytes granting %d accounts, organizations and OUs, limit %d",
		ErrPolicyTooLarge, len(b), len(desired), MaxPolicyBytes)
}

// freshStatements marshals our statements for desired, checking each is
// scoped (see scoped).
func freshStatements(desired []string, key Key) ([]json.RawMessage, error) {
	if key.Account == "" && slices.ContainsFunc(desired, func(g string) bool { return !awsid.IsAccountID(g) }) {
		return nil, ErrNoKeyAccount
	}
	var out []json.RawMessage
	for _, s := range ourStatements(desired, key) {
		if !scoped(s, key) {
			return nil, fmt.Errorf("%w: %s", errUnscoped, s.Sid)
		}
		b, err := marshal(s, false)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

// Statement returns the JSON (a list) of the statements this package would
// write for grantees (accounts, organizations, OUs), for telling the owner of
// a key we cannot edit exactly what to add. Entries that are none of those
// are left out; an invalid partition falls back to "aws".
func Statement(grantees []string, key Key) string {
	if k, err := key.check(); err == nil {
		key = k
	} else {
		key.Partition = awsid.DefaultPartition
	}
	set := map[string]bool{}
	for _, g := range grantees {
		if k, ok := GranteeKey(g); ok {
			set[k] = true
		}
	}
	if len(set) == 0 {
		return "[]"
	}
	b, err := marshal(ourStatements(sortedKeys(set), key), true)
	if err != nil {
		// Our own statements always marshal.
		panic(err)
	}
	return string(b)
}

// holds reports whether policy grants every grantee of add that is not in
// remove, and none of remove.
func holds(policy string, add, remove []string) (bool, error) {
	granted, err := Grantees(policy)
	if err != nil {
		return false, err
	}
	addSet, err := granteeSet(add)
	if err != nil {
		return false, err
	}
	removeSet, err := granteeSet(remove)
	if err != nil {
		return false, err
	}
	for g := range removeSet {
		if slices.Contains(granted, g) {
			return false, nil
		}
	}
	for g := range addSet {
		if !removeSet[g] && !slices.Contains(granted, g) {
			return false, nil
		}
	}
	return true, nil
}

// granteeSet reduces grantees to their keys (see GranteeKey).
func granteeSet(grantees []string) (map[string]bool, error) {
	set := make(map[string]bool, len(grantees))
	for _, g := range grantees {
		k, ok := GranteeKey(g)
		if !ok {
			return nil, fmt.Errorf("%w: %q", ErrInvalidAccount, g)
		}
		set[k] = true
	}
	return set, nil
}

func sortedKeys(set map[string]bool) []string {
	out := make([]string, 0, len(set))
	for k, ok := range set {
		if ok {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}
