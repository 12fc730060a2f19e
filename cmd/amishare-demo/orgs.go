package main

import (
	"fmt"
	"slices"

	"github.com/amishare/amishare/internal/testing/fixture"
	"github.com/amishare/amishare/internal/testing/iameval"
	"github.com/amishare/amishare/pkg/kmspolicy"
	"github.com/amishare/amishare/pkg/share"
	"github.com/amishare/amishare/pkg/share/rules"
)

// orgPrincipal is an account's place in AWS Organizations, as the request
// context of its principals' calls carries it (aws:PrincipalOrgID and
// aws:PrincipalOrgPaths).
type orgPrincipal struct {
	name, account, org, path string
	allowed                  bool // may use the key
}

// shareWithOU shares an image encrypted with a customer-managed key with the
// workloads OU and one account: the OU gets the launch permission, the key
// gets amishare's OU statements, the snapshots only the account.
func (d *demo) shareWithOU() error {
	key, err := d.fx.CreateKey(d.ctx, "amishare demo key 3")
	if err != nil {
		return err
	}
	d.labels[key] = "key-3"
	fmt.Printf("Created key-3  %s\n", key)
	id, snaps, err := d.fx.RegisterImage(d.ctx, "demo-ou", []fixture.Disk{{KeyID: key}, {KeyID: key}}, nil)
	if err != nil {
		return err
	}
	img := image{id: id, snaps: snaps, keyOf: map[string]string{snaps[0]: "key-3", snaps[1]: "key-3"}}
	fmt.Printf("Registered %s with 2 snapshots encrypted with key-3.\n", id)
	if err := d.tagImage(id, workloadsOUID+" "+accountA); err != nil {
		return err
	}
	before, err := d.policy(key)
	if err != nil {
		return err
	}
	res, permsBefore, permsAfter, err := d.deliverAndCompare(img, "ami-available.json")
	if err != nil {
		return err
	}
	fmt.Println("  (the OU and the account in one launch-permission call; an OU gets no")
	fmt.Println("   snapshot permission: EC2 cannot share a snapshot with an OU, and members")
	fmt.Println("   launch the image without it)")
	d.printPerms(img, permsBefore, permsAfter)

	after, err := d.policy(key)
	if err != nil {
		return err
	}
	fmt.Println()
	fmt.Println("Key policy of key-3 after (Sid and principals):")
	after.print("key-3")
	fmt.Println()
	fmt.Println("The statements amishare wrote for the OU, in full:")
	printJSON("  ", []byte(kmspolicy.Statement([]string{workloadsOU}, after.key)))
	var ouStatements int
	for _, s := range after.stmts {
		if after.ours[s.Sid] && slices.Equal(principals(s), []string{"*"}) {
			ouStatements++
		}
	}
	if err := d.printStatusTags(id); err != nil {
		return err
	}

	if err := expectResult(res, share.OutcomeApplied, rules.StatusShared); err != nil {
		return err
	}
	if p := permsAfter[id]; !slices.Equal(p.OrganizationalUnits, []string{workloadsOU}) || !slices.Equal(p.Accounts, []string{accountA}) || p.Public {
		return fmt.Errorf("image shared with %s, want %s and %s", describePerms(p), accountA, workloadsOU)
	}
	for _, s := range snaps {
		if p := permsAfter[s]; !slices.Equal(targets(p), []string{accountA}) || p.Public {
			return fmt.Errorf("snapshot %s shared with %s, want only %s", s, describePerms(p), accountA)
		}
	}
	if ouStatements != 2 {
		return fmt.Errorf("%d statements for the OU, want 2 (use and grant)", ouStatements)
	}
	ouKey, _ := kmspolicy.GranteeKey(workloadsOU)
	if err := expectPolicy(before, after, []string{accountA, ouKey}); err != nil {
		return fmt.Errorf("policy of key-3: %w", err)
	}
	if err := d.expectStatusTags(id, res); err != nil {
		return err
	}

	// Evaluate the key policy for accounts around the OU, with the entity
	// paths IAM puts in aws:PrincipalOrgPaths.
	doc, err := d.fx.KeyPolicy(d.ctx, key)
	if err != nil {
		return err
	}
	fmt.Println()
	fmt.Println("Who may decrypt with key-3 now (the key policy evaluated for each caller):")
	w := table()
	for _, p := range []orgPrincipal{
		{"account in the OU", "222222222222", "o-a1b2c3d4e5", "o-a1b2c3d4e5/r-ab12/ou-ab12-11111111/", true},
		{"account in a child OU", "333333333333", "o-a1b2c3d4e5", "o-a1b2c3d4e5/r-ab12/ou-ab12-11111111/ou-ab12-44444444/", true},
		{"account in a sibling OU", "444444444444", "o-a1b2c3d4e5", "o-a1b2c3d4e5/r-ab12/ou-ab12-33333333/", false},
		{"account of another organization", "555555555555", "o-zzzzzzzzzz", "o-zzzzzzzzzz/r-cd34/ou-ab12-11111111/", false},
		{"account " + accountA + " (listed)", accountA, "", "", true},
	} {
		caller := iameval.Caller{Account: p.account, OrgID: p.org, OrgPath: p.path}
		ok, err := iameval.Allows(doc, caller.Request("kms:Decrypt", nil))
		if err != nil {
			return err
		}
		verdict := "denied"
		if ok {
			verdict = "allowed"
		}
		fmt.Fprintf(w, "  %s\t%s\t%s\n", p.name, p.path, verdict)
		if ok != p.allowed {
			w.Flush()
			return fmt.Errorf("%s: kms:Decrypt %s, want allowed=%v", p.name, verdict, p.allowed)
		}
	}
	w.Flush()
	check("image shared with %s and %s; its snapshots only with %s", workloadsOU, accountA, accountA)
	check("key-3 lets the OU's accounts (child OUs included) use it, not a sibling OU's or another organization's")
	return nil
}
