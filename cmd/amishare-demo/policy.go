package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	"github.com/amishare/amishare/internal/testing/iameval"
	"github.com/amishare/amishare/pkg/kmspolicy"
)

// keyPolicy is a key policy as the demo shows it: which statements are
// amishare's and whom they grant, as kmspolicy reads them, and every
// statement's Sid and principals, as the test tooling's policy evaluator
// reads them.
type keyPolicy struct {
	key      kmspolicy.Key // the key's partition and account
	doc      string
	grantees []string // kmspolicy.Grantees: accounts, organizations, OUs
	others   string   // the policy without amishare's statements
	stmts    []iameval.Statement
	ours     map[string]bool // Sids of amishare's statements
}

// parseKeyPolicy splits doc into amishare's statements and the others: the
// others are what kmspolicy.Edit leaves when every grantee is removed.
func parseKeyPolicy(keyARN, doc string) (keyPolicy, error) {
	p := keyPolicy{key: kmspolicy.KeyOf(keyARN), doc: doc, ours: map[string]bool{}}
	var err error
	if p.grantees, err = kmspolicy.Grantees(doc); err != nil {
		return p, err
	}
	if p.others, _, err = kmspolicy.Edit(doc, nil, p.grantees, p.key); err != nil {
		return p, err
	}
	if p.stmts, err = iameval.Statements(doc); err != nil {
		return p, err
	}
	others, err := iameval.Statements(p.others)
	if err != nil {
		return p, err
	}
	for _, s := range p.stmts {
		if !slices.ContainsFunc(others, func(o iameval.Statement) bool { return o.Sid == s.Sid }) {
			p.ours[s.Sid] = true
		}
	}
	return p, nil
}

// principals lists a statement's principals: AWS ARNs as they are, other
// kinds prefixed with their kind ("Service:ec2.amazonaws.com").
func principals(s iameval.Statement) []string {
	var out []string
	for _, kind := range slices.Sorted(maps.Keys(s.Principal)) {
		for _, p := range slices.Sorted(slices.Values(s.Principal[kind])) {
			if kind != "AWS" {
				p = kind + ":" + p
			}
			out = append(out, p)
		}
	}
	return out
}

// print shows each statement's Sid and principals.
func (p keyPolicy) print(label string) {
	fmt.Printf("  %s\n", label)
	w := table()
	for _, s := range p.stmts {
		sid := s.Sid
		if sid == "" {
			sid = "(no Sid)"
		}
		fmt.Fprintf(w, "    %s\t%s\n", sid, strings.Join(principals(s), " "))
	}
	w.Flush()
}

// printOurs prints amishare's statements in full, as kmspolicy writes them
// for the policy's grantees (expectPolicy checks the policy holds exactly those).
func (p keyPolicy) printOurs() {
	printJSON("  ", []byte(kmspolicy.Statement(p.grantees, p.key)))
}

// expectPolicy checks that after's statements that are not amishare's are
// before's, unchanged, and that amishare's grant exactly grantees, written
// as this version of kmspolicy writes them.
func expectPolicy(before, after keyPolicy, grantees []string) error {
	if err := expectOthersKept(before, after); err != nil {
		return err
	}
	if want := slices.Sorted(slices.Values(grantees)); !slices.Equal(after.grantees, want) {
		return fmt.Errorf("amishare's statements grant %v, want %v", after.grantees, want)
	}
	if _, changed, err := kmspolicy.Edit(after.doc, nil, nil, after.key); err != nil || changed {
		return fmt.Errorf("amishare's statements are not as kmspolicy writes them for %v (%v)", after.grantees, err)
	}
	return nil
}

// expectOthersKept checks that the statements that are not amishare's are
// the same in before and after.
func expectOthersKept(before, after keyPolicy) error {
	if !sameJSON([]byte(before.others), []byte(after.others)) {
		return fmt.Errorf("statements other than amishare's were changed or removed:\nbefore %s\nafter %s", before.others, after.others)
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
