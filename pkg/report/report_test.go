package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/amishare/amishare/pkg/share"
	"github.com/amishare/amishare/pkg/share/rules"
)

const (
	acctA = "111122223333"
	acctB = "444455556666"
	ouARN = "arn:aws:organizations::210987654321:ou/o-a1b2c3d4e5/ou-ab12-11111111"
)

const testKey = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"

// col pads s to the widest first column of TestRenderImage's plan (the OU
// ARN's), as tabwriter aligns them.
func col(s string) string { return fmt.Sprintf("%-*s", len("  + "+ouARN)+2, s) }

func TestRenderImage(t *testing.T) {
	res := share.Result{ImageID: "ami-1", Outcome: share.OutcomePlanned, DryRun: true, Status: rules.StatusShared, Message: "shared with 1 account(s)",
		Changes: []rules.Change{
			{ImageID: "ami-1", Action: rules.ActionRemove, Account: "all"},
			{ImageID: "ami-1", KeyARN: testKey, Action: rules.ActionAdd, Account: acctA},
			{ImageID: "ami-1", SnapshotID: "snap-1", Action: rules.ActionAdd, Account: acctA},
			{ImageID: "ami-1", Action: rules.ActionAdd, OrganizationalUnitARN: ouARN},
		},
		Plan: &rules.Plan{Copies: []rules.CopyStep{{Action: rules.CopyActionCopy, Region: "eu-west-1", Accounts: acctA}}},
	}
	tests := []struct {
		name   string
		res    share.Result
		colour bool
		want   string
	}{
		{"plan", res, false, "ami-1 (us-east-1) status shared: shared with 1 account(s)\n" +
			col("  - everyone (public)") + "launch permission\n" +
			col("  + 111122223333") + "key " + testKey + "\n" +
			col("  + 111122223333") + "create-volume permission snap-1\n" +
			col("  + "+ouARN) + "launch permission\n" +
			col("  + copy to eu-west-1") + "amishare:accounts = 111122223333\n" +
			"Plan: 3 to add, 1 to remove, 1 copy to make.\n"},
		{"applied, in sync", share.Result{ImageID: "ami-1", Outcome: share.OutcomeApplied, Status: rules.StatusShared, Message: "shared with 1 account(s)"}, false,
			"ami-1 (us-east-1) status shared: shared with 1 account(s)\nNo changes.\n"},
		{"unmanaged", share.Result{ImageID: "ami-1", Outcome: share.OutcomeUnmanaged, Reason: "no amishare:accounts or amishare:status tag"}, false,
			"ami-1 (us-east-1) unmanaged: no amishare:accounts or amishare:status tag\nNo changes.\n"},
		{"colour", share.Result{ImageID: "ami-1", Outcome: share.OutcomeApplied, Changes: []rules.Change{{ImageID: "ami-1", Action: rules.ActionRemove, Account: acctB}}}, true,
			"\x1b[1mami-1 (us-east-1)\x1b[0m applied\n  \x1b[31m-\x1b[0m 444455556666  launch permission\nApplied: 0 added, 1 removed.\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			Render(&b, NewImage(tc.res, "us-east-1"), tc.colour)
			if b.String() != tc.want {
				t.Errorf("got\n%s\nwant\n%s", b.String(), tc.want)
			}
		})
	}
}

// TestImageJSON: the CLI's -o json has every list, empty or not, so that a
// script can index it without a null check.
func TestImageJSON(t *testing.T) {
	var b bytes.Buffer
	if err := json.NewEncoder(&b).Encode(NewImage(share.Result{ImageID: "ami-1", Outcome: share.OutcomeApplied}, "us-east-1")); err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{`"targets":[]`, `"refused":[]`, `"changes":[]`, `"copies":[]`, `"warnings":[]`, `"unrevoked":[]`, `"dryRun":false`, `"region":"us-east-1"`} {
		if !strings.Contains(b.String(), field) {
			t.Errorf("missing %s in\n%s", field, b.String())
		}
	}
}
