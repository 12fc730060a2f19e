package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/amishare/amishare/pkg/share"
	"github.com/amishare/amishare/pkg/share/rules"
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
			renderImage(&b, newImageReport(tc.res, "us-east-1"), tc.colour)
			if b.String() != tc.want {
				t.Errorf("got\n%s\nwant\n%s", b.String(), tc.want)
			}
		})
	}
}

// TestImageReportJSON: -o json has every list, empty or not, so that a
// script can index it without a null check.
func TestImageReportJSON(t *testing.T) {
	var b bytes.Buffer
	if err := writeJSON(&b, newImageReport(share.Result{ImageID: "ami-1", Outcome: share.OutcomeApplied}, "us-east-1")); err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{`"targets": []`, `"refused": []`, `"changes": []`, `"copies": []`, `"warnings": []`, `"unrevoked": []`, `"dryRun": false`, `"region": "us-east-1"`} {
		if !strings.Contains(b.String(), field) {
			t.Errorf("missing %s in\n%s", field, b.String())
		}
	}
}

func TestHumanLogs(t *testing.T) {
	var b bytes.Buffer
	log := newLogger(&b, formatText, slog.LevelInfo, nil).With("kind", "operator")
	log.InfoContext(context.Background(), "image reconciled", "eventId", "", "region", "", "imageId", "ami-1", "changes", 2,
		"statusMessage", "shared with 1 account(s)", "targets", []string{acctA}, "forged", "x\nERROR y")
	log.DebugContext(context.Background(), "not shown")
	log.InfoContext(context.Background(), "metrics", "_aws", map[string]any{"Timestamp": 1}, "Errors", 0.0)
	want := `INFO image reconciled kind=operator imageId=ami-1 changes=2 statusMessage="shared with 1 account(s)" targets=["111122223333"] forged="x\nERROR y"` + "\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
	b.Reset()
	newLogger(&b, formatJSON, slog.LevelInfo, nil).Info("metrics", "_aws", map[string]any{"Timestamp": 1})
	if !strings.Contains(b.String(), `"_aws":{"Timestamp":1}`) {
		t.Errorf("--log-format json: got %s, want the metrics", b.String())
	}
}

func TestColour(t *testing.T) {
	orig := isTerminal
	t.Cleanup(func() { isTerminal = orig })
	for _, tc := range []struct {
		terminal bool
		noColor  string
		want     bool
	}{
		{true, "", true},
		{true, "1", false},
		{false, "", false},
	} {
		isTerminal = func(io.Writer) bool { return tc.terminal }
		t.Setenv("NO_COLOR", tc.noColor)
		if got := colour(io.Discard); got != tc.want {
			t.Errorf("terminal %v, NO_COLOR %q: got %v, want %v", tc.terminal, tc.noColor, got, tc.want)
		}
	}
}
