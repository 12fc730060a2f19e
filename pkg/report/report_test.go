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

const (
	golden = "/amishare/images/golden/al2023"
	// otherKey is a second key, of a grant revoked.
	otherKey = "arn:aws:kms:us-east-1:123456789012:key/5678efgh-56ef-78gh-90ij-5678efgh90ij"
)

// consumerPlan is a dry run's consumer side with one of each change.
var consumerPlan = &share.ConsumerReport{
	Parameters: []share.ParameterResult{
		{ParameterChange: rules.ParameterChange{Name: golden, Action: rules.ParameterPut, To: "ami-2"}},
		{ParameterChange: rules.ParameterChange{Name: golden, Account: acctA, Action: rules.ParameterPut, From: "ami-1", To: "ami-2"}},
		{ParameterChange: rules.ParameterChange{Name: golden, Account: acctB, Action: rules.ParameterPut, From: "ami-3", To: "ami-2", Rollback: true}},
		{ParameterChange: rules.ParameterChange{Name: "/amishare/images/old", Account: acctA, Action: rules.ParameterDelete, From: "ami-0"}},
	},
	Tags:        []share.TagResult{{Account: acctA, Set: map[string]string{"team": "platform", "os-version": "2023"}, Deleted: []string{"cost-center"}}},
	Grants:      []share.GrantResult{{KeyARN: otherKey, Account: acctB, Action: "revoke"}, {KeyARN: testKey, Action: "statements"}, {KeyARN: testKey, Account: acctA, Action: "create"}},
	Notes:       []string{"receiver 777788889999 unreachable (AccessDenied), retried later"},
	Unreachable: []share.Unreachable{{Account: "777788889999", Error: "assuming the receiver role: AccessDenied"}},
}

// wide pads s to the widest target of TestRenderConsumers' lines (an
// account id's, or "this account"'s: both 12 characters).
func wide(s string) string { return fmt.Sprintf("%-*s", len("  + "+acctA)+2, s) }

// TestRenderConsumers: the consumer side reads like the permissions, in
// the same aligned column: + created, ~ changed, - deleted, ! not done;
// its counts close the summary; its notes are warnings unless the message
// already holds them.
func TestRenderConsumers(t *testing.T) {
	applied := &share.ConsumerReport{
		Parameters: []share.ParameterResult{
			{ParameterChange: rules.ParameterChange{Name: golden, Account: acctA, Action: rules.ParameterPut, From: "ami-1", To: "ami-2"}, Pending: true},
			{ParameterChange: rules.ParameterChange{Name: golden, Account: acctB, Action: rules.ParameterPut, From: "ami-1", To: "ami-2"}, Error: "AccessDeniedException: denied"},
		},
		Tags:   []share.TagResult{{Account: acctB, Error: "UnauthorizedOperation"}},
		Grants: []share.GrantResult{{KeyARN: testKey, Account: acctB, Action: "create", Waiting: true}, {KeyARN: otherKey, Action: "list", Error: "throttled"}},
		Notes: []string{
			"parameter " + golden + " in " + acctA + " not taken yet, retried later",
			acctB + " has no Auto Scaling role yet: its grant on key/1234abcd-12ab-34cd-56ef-1234567890ab follows, retried later",
		},
	}
	tests := []struct {
		name string
		res  share.Result
		want string
	}{
		{"plan", share.Result{ImageID: "ami-2", Outcome: share.OutcomePlanned, DryRun: true, Status: rules.StatusShared, Message: "shared with 2 account(s)",
			Changes:   []rules.Change{{ImageID: "ami-2", Action: rules.ActionAdd, Account: acctA}},
			Consumers: consumerPlan},
			"ami-2 (us-east-1) status shared: shared with 2 account(s)\n" +
				wide("  + "+acctA) + "launch permission\n" +
				wide("  + this account") + "parameter " + golden + " = ami-2\n" +
				wide("  ~ "+acctA) + "parameter " + golden + " = ami-1 -> ami-2\n" +
				wide("  ~ "+acctB) + "parameter " + golden + " = ami-3 -> ami-2 (rollback)\n" +
				wide("  - "+acctA) + "parameter /amishare/images/old = ami-0\n" +
				wide("  ~ "+acctA) + "mirrored tag os-version = 2023\n" +
				wide("  ~ "+acctA) + "mirrored tag team = platform\n" +
				wide("  - "+acctA) + "mirrored tag cost-center\n" +
				wide("  - "+acctB) + "Auto Scaling grant on key " + otherKey + "\n" +
				wide("  ~ this account") + "Auto Scaling statements on key " + testKey + "\n" +
				wide("  + "+acctA) + "Auto Scaling grant on key " + testKey + "\n" +
				"  warning: receiver 777788889999 unreachable (AccessDenied), retried later\n" +
				"Plan: 1 to add, 0 to remove, 3 parameters to set, 1 to delete, 2 mirrored tags to set, 1 to delete, 1 Auto Scaling grant to create, 1 to revoke, 1 key policy to update.\n"},
		{"apply: pending, failed, waiting", share.Result{ImageID: "ami-2", Outcome: share.OutcomeApplied, Status: rules.StatusShared,
			Message:   "shared with 2 account(s); " + applied.Notes[0] + "; " + applied.Notes[1][:40],
			Consumers: applied},
			"ami-2 (us-east-1) status shared: shared with 2 account(s); " + applied.Notes[0] + "; " + applied.Notes[1][:40] + "\n" +
				wide("  ~ "+acctA) + "parameter " + golden + " = ami-1 -> ami-2 (not taken yet)\n" +
				wide("  ! "+acctB) + "parameter " + golden + " = ami-1 -> ami-2 not written\n" +
				wide("  ! "+acctB) + "mirrored tags not written\n" +
				wide("  ! "+acctB) + "Auto Scaling grant on key " + testKey + " waits for the account's Auto Scaling role\n" +
				wide("  ! this account") + "Auto Scaling grants on key " + otherKey + " not listed\n" +
				// The message was trimmed: the second note is told in full.
				"  warning: " + applied.Notes[1] + "\n" +
				"Applied: 0 added, 0 removed, 1 parameter set.\n"},
		{"apply: only what did not happen", share.Result{ImageID: "ami-2", Outcome: share.OutcomeApplied, Status: rules.StatusShared, Message: "shared with 1 account(s)",
			Consumers: &share.ConsumerReport{Grants: applied.Grants[:1], Unreachable: consumerPlan.Unreachable, Notes: consumerPlan.Notes}},
			"ami-2 (us-east-1) status shared: shared with 1 account(s)\n" +
				"  ! " + acctB + "  Auto Scaling grant on key " + testKey + " waits for the account's Auto Scaling role\n" +
				"  warning: receiver 777788889999 unreachable (AccessDenied), retried later\n" +
				"No changes.\n"},
		{"apply: deleted", share.Result{ImageID: "ami-2", Outcome: share.OutcomeCleaned, Reason: "gone",
			Consumers: &share.ConsumerReport{Parameters: []share.ParameterResult{{ParameterChange: rules.ParameterChange{Name: golden, Action: rules.ParameterDelete, From: "ami-2"}}}}},
			"ami-2 (us-east-1) cleaned: gone\n" +
				"  - this account  parameter " + golden + " = ami-2\n" +
				"Applied: 0 added, 0 removed, 1 parameter deleted.\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			Render(&b, NewImage(tc.res, "us-east-1"), false)
			if b.String() != tc.want {
				t.Errorf("got\n%s\nwant\n%s", b.String(), tc.want)
			}
		})
	}
}

// TestRenderConsumersColour: the consumer side's signs are coloured as
// the permissions' are.
func TestRenderConsumersColour(t *testing.T) {
	var b bytes.Buffer
	WriteConsumers(&b, NewImage(share.Result{ImageID: "ami-2", Consumers: &share.ConsumerReport{
		Parameters: []share.ParameterResult{
			{ParameterChange: rules.ParameterChange{Name: golden, Action: rules.ParameterPut, To: "ami-2"}},
			{ParameterChange: rules.ParameterChange{Name: golden, Account: acctA, Action: rules.ParameterPut, To: "ami-2"}, Error: "denied"},
		}}}, "us-east-1"), Palette(true), "")
	want := "\x1b[32m+\x1b[0m this account  parameter " + golden + " = ami-2\n" +
		"\x1b[31m!\x1b[0m " + acctA + "  parameter " + golden + " = ami-2 not written\n"
	if b.String() != want {
		t.Errorf("got %q, want %q", b.String(), want)
	}
}

// TestHasChangesConsumers: plan --detailed-exitcode counts the consumer
// side's changes, and nothing that did not change anything.
func TestHasChangesConsumers(t *testing.T) {
	put := rules.ParameterChange{Name: golden, Account: acctA, Action: rules.ParameterPut, From: "ami-1", To: "ami-2"}
	tests := []struct {
		name string
		rep  *share.ConsumerReport
		want bool
	}{
		{"none", nil, false},
		{"a parameter to set", &share.ConsumerReport{Parameters: []share.ParameterResult{{ParameterChange: put}}}, true},
		{"a parameter to delete", &share.ConsumerReport{Parameters: []share.ParameterResult{{ParameterChange: rules.ParameterChange{Name: golden, Action: rules.ParameterDelete, From: "ami-1"}}}}, true},
		{"a parameter written, not taken yet", &share.ConsumerReport{Parameters: []share.ParameterResult{{ParameterChange: put, Pending: true}}}, true},
		{"a parameter not written", &share.ConsumerReport{Parameters: []share.ParameterResult{{ParameterChange: put, Error: "denied"}}}, false},
		{"a mirrored tag to delete", &share.ConsumerReport{Tags: []share.TagResult{{Account: acctA, Deleted: []string{"team"}}}}, true},
		{"mirrored tags not written", &share.ConsumerReport{Tags: []share.TagResult{{Account: acctA, Set: map[string]string{"team": "x"}, Error: "denied"}}}, false},
		{"statements to write", &share.ConsumerReport{Grants: []share.GrantResult{{KeyARN: testKey, Action: "statements"}}}, true},
		{"a grant to revoke", &share.ConsumerReport{Grants: []share.GrantResult{{KeyARN: testKey, Account: acctA, Action: "revoke"}}}, true},
		{"a grant waiting", &share.ConsumerReport{Grants: []share.GrantResult{{KeyARN: testKey, Account: acctA, Action: "create", Waiting: true}}}, false},
		{"a grant not created", &share.ConsumerReport{Grants: []share.GrantResult{{KeyARN: testKey, Account: acctA, Action: "create", Error: "denied"}}}, false},
		{"grants not listed", &share.ConsumerReport{Grants: []share.GrantResult{{KeyARN: testKey, Action: "list", Error: "denied"}}}, false},
		{"a receiver unreachable, and its note", &share.ConsumerReport{Unreachable: consumerPlan.Unreachable, Notes: consumerPlan.Notes}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := NewImage(share.Result{ImageID: "ami-2", Outcome: share.OutcomePlanned, DryRun: true, Consumers: tc.rep}, "us-east-1")
			if got := r.HasChanges(); got != tc.want {
				t.Errorf("HasChanges() = %v, want %v", got, tc.want)
			}
			// status --drift says what it comes to by the same count.
			if got := ConsumersPlanned(r); (got != "") != tc.want {
				t.Errorf("ConsumersPlanned() = %q, want something: %v", got, tc.want)
			}
		})
	}
}

// TestConsumersPlanned: the consumer side's clauses of the Plan: line,
// alone (status --drift's DRIFT column).
func TestConsumersPlanned(t *testing.T) {
	put := rules.ParameterChange{Name: golden, Action: rules.ParameterPut, From: "ami-1", To: "ami-2"}
	rep := &share.ConsumerReport{
		Parameters: []share.ParameterResult{{ParameterChange: put}, {ParameterChange: put}},
		Tags:       []share.TagResult{{Account: acctA, Set: map[string]string{"team": "x"}}},
		Grants:     []share.GrantResult{{KeyARN: testKey, Account: acctA, Action: "create", Waiting: true}},
	}
	r := NewImage(share.Result{ImageID: "ami-2", Outcome: share.OutcomePlanned, DryRun: true, Consumers: rep}, "us-east-1")
	if got, want := ConsumersPlanned(r), "2 parameters to set, 1 mirrored tag to set"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestImageJSONConsumers: the consumer side's field names (docs/cli.md),
// and its lists [] and its maps {} when empty, never null.
func TestImageJSONConsumers(t *testing.T) {
	encode := func(res share.Result) map[string]any {
		t.Helper()
		b, err := json.Marshal(NewImage(res, "us-east-1"))
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	empty := encode(share.Result{ImageID: "ami-2", Outcome: share.OutcomeApplied})
	for _, field := range []string{"parameters", "mirroredTags", "autoScalingGrants", "unreachable", "notes"} {
		if l, ok := empty[field].([]any); !ok || len(l) != 0 {
			t.Errorf("%s: got %#v, want []", field, empty[field])
		}
	}

	m := encode(share.Result{ImageID: "ami-2", Outcome: share.OutcomePlanned, DryRun: true, Consumers: &share.ConsumerReport{
		Parameters:  consumerPlan.Parameters[:1],
		Tags:        []share.TagResult{{Account: acctA, Deleted: []string{"team"}}, {Account: acctB, Set: map[string]string{"team": "platform"}}},
		Grants:      []share.GrantResult{{KeyARN: testKey, Account: acctA, Action: "create", Waiting: true}},
		Unreachable: consumerPlan.Unreachable,
		Notes:       consumerPlan.Notes,
	}})
	want := map[string]string{
		"parameters":        `[{"account":"","action":"put","from":"","name":"` + golden + `","pending":false,"rollback":false,"to":"ami-2"}]`,
		"mirroredTags":      `[{"account":"` + acctA + `","deleted":["team"],"set":{}},{"account":"` + acctB + `","deleted":[],"set":{"team":"platform"}}]`,
		"autoScalingGrants": `[{"account":"` + acctA + `","action":"create","keyArn":"` + testKey + `","waiting":true}]`,
		"unreachable":       `[{"account":"777788889999","error":"assuming the receiver role: AccessDenied"}]`,
		"notes":             `["receiver 777788889999 unreachable (AccessDenied), retried later"]`,
	}
	for field, w := range want {
		got, _ := json.Marshal(m[field]) // map keys sorted
		if string(got) != w {
			t.Errorf("%s: got %s, want %s", field, got, w)
		}
	}
}
