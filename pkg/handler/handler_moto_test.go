package handler_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/amishare/amishare/internal/testing/fixture"
	"github.com/amishare/amishare/internal/testing/world"
	"github.com/amishare/amishare/pkg/amitag"
	"github.com/amishare/amishare/pkg/app"
	"github.com/amishare/amishare/pkg/event"
	"github.com/amishare/amishare/pkg/share"
	"github.com/amishare/amishare/pkg/share/rules"
)

const (
	acctA    = "111122223333" // allowed
	acctB    = "444455556666" // allowed
	acctC    = "777788889999" // in group prod
	acctD    = "222233334444" // in group prod
	outsider = "999999999999" // in no list
	// testConfig allows A and B, and group prod = C and D.
	testConfig = `{"allowedAccounts":["111122223333","444455556666"],"groups":{"prod":["777788889999","222233334444"]}}`
)

// allowed is every account testConfig allows.
var allowed = []string{acctA, acctB, acctC, acctD}

// TestHandleSampleEvents delivers every sample event through Handle for a
// tagged image with three snapshots (the sweep's samples and the
// deregistered one: TestHandleSweepSamples).
func TestHandleSampleEvents(t *testing.T) {
	tests := []struct {
		file      string
		kind      event.Kind
		reconcile bool // false: the event is ignored
	}{
		{"ami-available.json", event.KindAMIState, true},
		{"tag-change.json", event.KindTagChange, true},
		{"cloudtrail-create-image.json", event.KindAPICall, true},
		{"cloudtrail-register-image.json", event.KindAPICall, true},
		{"cloudtrail-copy-image.json", event.KindAPICall, true},
		{"cloudtrail-create-tags.json", event.KindAPICall, true},
		{"cloudtrail-delete-tags.json", event.KindAPICall, true},

		{"ami-failed.json", event.KindAMIState, false},
		{"tag-change-status-only.json", event.KindTagChange, false},
		{"other-event.json", event.KindOther, false},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			w := world.New(t, testConfig)
			id, snaps := w.PlainImage(t, 3, map[string]string{amitag.Accounts: acctA + "," + acctB})
			h := w.Handler(t, app.Options{})

			sum, err := w.Handle(t, h, world.SampleEvent(t, tc.file, id))
			if err != nil {
				t.Fatalf("Handle: got error %v, want nil", err)
			}
			if sum.Kind != tc.kind {
				t.Errorf("Kind: got %q, want %q", sum.Kind, tc.kind)
			}
			if tc.file == "ami-failed.json" {
				// A failed image that is not a copy amishare made: looked at, left alone.
				if sum.Ignored != "" || len(sum.Images) != 1 || sum.Images[0].Outcome != share.OutcomeSkipped {
					t.Errorf("summary: got ignored %q and images %+v, want one image skipped", sum.Ignored, sum.Images)
				}
				if got := w.Calls.Mutating(); len(got) != 0 {
					t.Errorf("modifying calls for a failed image that is no copy: got %v, want none", got)
				}
				if tags := w.Tags(t, id); tags[amitag.Status] != "" {
					t.Errorf("status tag: got %q, want none", tags[amitag.Status])
				}
				return
			}
			if !tc.reconcile {
				if sum.Ignored == "" || len(sum.Images) != 0 {
					t.Errorf("summary: got ignored %q and %d images, want a reason and none", sum.Ignored, len(sum.Images))
				}
				if got := w.Calls.Mutating(); len(got) != 0 {
					t.Errorf("modifying calls for an ignored event: got %v, want none", got)
				}
				w.WantShared(t, id, snaps)
				if tags := w.Tags(t, id); tags[amitag.Status] != "" {
					t.Errorf("status tag on an ignored event: got %q, want none", tags[amitag.Status])
				}
				if got := len(w.LinesWithMsg(t, "event ignored")); got != 1 {
					t.Errorf(`"event ignored" log lines: got %d, want 1`, got)
				}
				return
			}
			if sum.Ignored != "" {
				t.Fatalf("Ignored: got %q, want a reconcile", sum.Ignored)
			}
			if len(sum.Images) != 1 {
				t.Fatalf("images: got %d, want 1", len(sum.Images))
			}
			res := sum.Images[0]
			if res.ImageID != id || res.Outcome != share.OutcomeApplied || res.Status != rules.StatusShared {
				t.Errorf("result: got %s %s %s, want %s applied shared", res.ImageID, res.Outcome, res.Status, id)
			}
			w.WantShared(t, id, snaps, acctA, acctB)
			w.WantStatus(t, id, "shared", "shared with 2 account(s)")
			if got := len(w.LinesWithMsg(t, "image reconciled")); got != 1 {
				t.Errorf(`"image reconciled" log lines: got %d, want 1`, got)
			}
		})
	}
}

func TestHandleInvalidJSON(t *testing.T) {
	tests := []struct {
		name, raw, want string
	}{
		{"truncated", `{"version": "0", "detail-type": `, "not valid JSON"},
		{"not json", `ami-0123456789abcdef0`, "not valid JSON"},
		{"empty", ``, "not valid JSON"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := world.New(t, testConfig)
			h := w.Handler(t, app.Options{})
			sum, err := w.Handle(t, h, []byte(tc.raw))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Handle: got error %v, want one containing %q", err, tc.want)
			}
			if sum.Error != err.Error() {
				t.Errorf("Summary.Error: got %q, want %q", sum.Error, err.Error())
			}
			if got := w.Calls.Calls(); len(got) != 0 {
				t.Errorf("AWS calls for an invalid event: got %v, want none", got)
			}
			rejected := w.LinesWithMsg(t, "event rejected")
			if len(rejected) != 1 || !strings.Contains(rejected[0].Str("error"), tc.want) {
				t.Errorf(`"event rejected" log lines: got %v, want one with the error`, rejected)
			}
		})
	}
}

func TestHandleUntaggedImageKeepsManualShare(t *testing.T) {
	w := world.New(t, testConfig)
	id, snaps := w.PlainImage(t, 2, map[string]string{"Name": "untagged"})
	w.ShareImage(t, id, ec2types.LaunchPermission{UserId: aws.String(outsider)})
	w.ShareSnapshot(t, snaps[0], []string{outsider}, nil)
	h := w.Handler(t, app.Options{})
	sum, err := w.Handle(t, h, world.SampleEvent(t, "ami-available.json", id))
	if err != nil {
		t.Fatalf("Handle: %v", err)
	}
	if len(sum.Images) != 1 || sum.Images[0].Outcome != share.OutcomeUnmanaged {
		t.Fatalf("images: got %+v, want one unmanaged", sum.Images)
	}
	if got := w.Calls.Mutating(); len(got) != 0 {
		t.Errorf("modifying calls: got %v, want none", got)
	}
	if p := w.ImagePerms(t, id); !slices.Equal(p.Accounts, []string{outsider}) {
		t.Errorf("image launch permissions: got %v, want the manual share [%s]", p.Accounts, outsider)
	}
	if p := w.SnapshotPerms(t, snaps[0]); !slices.Equal(p.Accounts, []string{outsider}) {
		t.Errorf("snapshot permissions: got %v, want the manual share [%s]", p.Accounts, outsider)
	}
	if tags := w.Tags(t, id); tags[amitag.Status] != "" || tags[amitag.Message] != "" {
		t.Errorf("status tags on an untagged image: got %q, %q, want none", tags[amitag.Status], tags[amitag.Message])
	}
}

func TestHandleSecondDeliveryChangesNothing(t *testing.T) {
	w := world.New(t, testConfig)
	id, snaps := w.PlainImage(t, 2, map[string]string{amitag.Accounts: "prod " + acctA})
	h := w.Handler(t, app.Options{})
	raw := world.SampleEvent(t, "tag-change.json", id)
	if _, err := w.Handle(t, h, raw); err != nil {
		t.Fatalf("first delivery: %v", err)
	}
	if got := w.Calls.Mutating(); len(got) == 0 {
		t.Fatal("first delivery made no modifying call; the test needs one that shares")
	}
	sum, err := w.Handle(t, h, raw)
	if err != nil {
		t.Fatalf("second delivery: %v", err)
	}
	if got := w.Calls.Mutating(); len(got) != 0 {
		t.Errorf("second delivery: got modifying calls %v, want none", got)
	}
	res := sum.Images[0]
	if res.Outcome != share.OutcomeApplied || len(res.Changes) != 0 || res.TagsWritten {
		t.Errorf("second delivery: got outcome %s, changes %v, tags written %v; want applied, none, false", res.Outcome, res.Changes, res.TagsWritten)
	}
	w.WantShared(t, id, snaps, acctA, acctD, acctC)
}

func TestHandleUnknownImageIsGone(t *testing.T) {
	w := world.New(t, testConfig)
	h := w.Handler(t, app.Options{})
	sum, err := w.Handle(t, h, world.SampleEvent(t, "ami-available.json", world.SampleImage))
	if err != nil {
		t.Fatalf("Handle: got error %v, want nil", err)
	}
	if len(sum.Images) != 1 || sum.Images[0].Outcome != share.OutcomeGone || sum.Images[0].ImageID != world.SampleImage {
		t.Fatalf("images: got %+v, want %s gone", sum.Images, world.SampleImage)
	}
	if got := w.Calls.Mutating(); len(got) != 0 {
		t.Errorf("modifying calls: got %v, want none", got)
	}
}

// metricsLine returns the one EMF line of the log and checks its shape.
func metricsLine(t *testing.T, w *world.World) world.LogLine {
	t.Helper()
	if lines := w.LinesWithMsg(t, "metrics"); len(lines) != 1 {
		t.Fatalf(`"metrics" log lines: got %d, want 1:\n%s`, len(lines), w.Logs)
	}
	return w.Metrics(t, world.EventMetrics...)
}

func TestHandleMetrics(t *testing.T) {
	w := world.New(t, testConfig)
	id, snaps := w.PlainImage(t, 2, map[string]string{amitag.Accounts: acctA + " " + acctB + " prod"})

	// Share: four accounts added to the image (and to two snapshots, not counted).
	if _, err := w.Handle(t, w.Handler(t, app.Options{}), world.SampleEvent(t, "tag-change.json", id)); err != nil {
		t.Fatal(err)
	}
	w.WantShared(t, id, snaps, acctA, acctD, acctB, acctC)
	world.WantMetrics(t, metricsLine(t, w), map[string]int{
		"ImagesShared": 1, "AccountsAdded": 4, "AccountsRemoved": 0, "TargetsRefused": 0, "Errors": 0,
	})

	// Revoke: the group goes, an outsider is refused. No account was added,
	// so the image does not count as shared.
	w.Tag(t, id, map[string]string{amitag.Accounts: acctA + " " + acctB + " " + outsider})
	w.Logs.Reset()
	if _, err := w.Handle(t, w.Handler(t, app.Options{}), world.SampleEvent(t, "tag-change.json", id)); err != nil {
		t.Fatal(err)
	}
	w.WantShared(t, id, snaps, acctA, acctB)
	world.WantMetrics(t, metricsLine(t, w), map[string]int{
		"ImagesShared": 0, "AccountsAdded": 0, "AccountsRemoved": 2, "TargetsRefused": 1, "Errors": 0,
	})

	// Revoke everything: no image is shared any more.
	w.Untag(t, id, amitag.Accounts)
	w.Logs.Reset()
	if _, err := w.Handle(t, w.Handler(t, app.Options{}), world.SampleEvent(t, "tag-change.json", id)); err != nil {
		t.Fatal(err)
	}
	w.WantShared(t, id, snaps)
	world.WantMetrics(t, metricsLine(t, w), map[string]int{
		"ImagesShared": 0, "AccountsAdded": 0, "AccountsRemoved": 2, "TargetsRefused": 0, "Errors": 0,
	})
}

func TestHandleIgnoredEventEmitsNoMetrics(t *testing.T) {
	w := world.New(t, testConfig)
	if _, err := w.Handle(t, w.Handler(t, app.Options{}), world.SampleEvent(t, "other-event.json", world.SampleImage)); err != nil {
		t.Fatal(err)
	}
	if got := w.LinesWithMsg(t, "metrics"); len(got) != 0 {
		t.Errorf(`"metrics" lines for an ignored event: got %v, want none`, got)
	}
}

func TestHandleDryRun(t *testing.T) {
	tests := []struct {
		name   string
		config string
		opts   app.Options
	}{
		{"configuration", `{"allowedAccounts":["111122223333","444455556666","222233334444"],"dryRun":true}`, app.Options{}},
		{"option", `{"allowedAccounts":["111122223333","444455556666","222233334444"],"dryRun":false}`, app.Options{DryRun: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := world.New(t, tc.config)
			key := w.Key(t)
			id, snaps := w.Image(t, []fixture.Disk{{KeyID: key}, {}}, map[string]string{amitag.Accounts: acctA + " " + acctB})
			// A manual share with D, which the tag does not name: the plan removes it.
			w.ShareImage(t, id, ec2types.LaunchPermission{UserId: aws.String(acctD)})
			w.ShareSnapshot(t, snaps[1], []string{acctD}, nil)
			policyBefore := w.KeyPolicy(t, key)
			tagsBefore := w.Tags(t, id)

			sum, err := w.Handle(t, w.Handler(t, tc.opts), world.SampleEvent(t, "ami-available.json", id))
			if err != nil {
				t.Fatalf("Handle: %v", err)
			}
			if got := w.Calls.Mutating(); len(got) != 0 {
				t.Errorf("modifying calls in a dry run: got %v, want none", got)
			}
			if len(sum.Images) != 1 {
				t.Fatalf("images: got %d, want 1", len(sum.Images))
			}
			res := sum.Images[0]
			if res.Outcome != share.OutcomePlanned || !res.DryRun || res.TagsWritten {
				t.Errorf("result: got outcome %s dryRun %v tagsWritten %v, want planned true false", res.Outcome, res.DryRun, res.TagsWritten)
			}
			if res.Plan == nil {
				t.Fatal("Plan: got nil, want the plan")
			}
			p := res.Plan
			if !slices.Equal(p.Image.Add, []string{acctA, acctB}) || !slices.Equal(p.Image.Remove, []string{acctD}) || p.Image.MakePrivate {
				t.Errorf("plan for the image: got %+v, want add [%s %s] remove [%s]", p.Image, acctA, acctB, acctD)
			}
			wantSnaps := []rules.SnapshotDiff{
				{SnapshotID: snaps[0], Diff: rules.Diff{Add: []string{acctA, acctB}}},
				{SnapshotID: snaps[1], Diff: rules.Diff{Add: []string{acctA, acctB}, Remove: []string{acctD}}},
			}
			if !slices.EqualFunc(p.Snapshots, wantSnaps, func(a, b rules.SnapshotDiff) bool {
				return a.SnapshotID == b.SnapshotID && slices.Equal(a.Add, b.Add) && slices.Equal(a.Remove, b.Remove) && a.MakePrivate == b.MakePrivate
			}) {
				t.Errorf("plan for the snapshots: got %+v, want %+v", p.Snapshots, wantSnaps)
			}
			if len(p.Keys) != 1 || p.Keys[0].KeyARN != key || !slices.Equal(p.Keys[0].Add, []string{acctA, acctB}) || len(p.Keys[0].Remove) != 0 {
				t.Errorf("plan for the keys: got %+v, want %s add [%s %s]", p.Keys, key, acctA, acctB)
			}

			wantChanges := []rules.Change{
				{ImageID: id, Account: acctD, Action: "remove"},
				{ImageID: id, SnapshotID: snaps[1], Account: acctD, Action: "remove"},
				{ImageID: id, KeyARN: key, Account: acctA, Action: "add"},
				{ImageID: id, KeyARN: key, Account: acctB, Action: "add"},
				{ImageID: id, SnapshotID: snaps[0], Account: acctA, Action: "add"},
				{ImageID: id, SnapshotID: snaps[0], Account: acctB, Action: "add"},
				{ImageID: id, SnapshotID: snaps[1], Account: acctA, Action: "add"},
				{ImageID: id, SnapshotID: snaps[1], Account: acctB, Action: "add"},
				{ImageID: id, Account: acctA, Action: "add"},
				{ImageID: id, Account: acctB, Action: "add"},
			}
			if !slices.Equal(res.Changes, wantChanges) {
				t.Errorf("changes: got %+v, want %+v", res.Changes, wantChanges)
			}
			if got := len(w.LinesWithMsg(t, "planned permission change (dry run)")); got != len(wantChanges) {
				t.Errorf("planned-change log lines: got %d, want %d", got, len(wantChanges))
			}
			if got := len(w.LinesWithMsg(t, "permission changed")); got != 0 {
				t.Errorf(`"permission changed" log lines in a dry run: got %d, want 0`, got)
			}
			reconciled := w.LinesWithMsg(t, "image reconciled")
			if len(reconciled) != 1 || reconciled[0]["dryRun"] != true || reconciled[0]["plan"] == nil {
				t.Errorf(`"image reconciled" log lines: got %v, want one with dryRun and the plan`, reconciled)
			}
			world.WantMetrics(t, metricsLine(t, w), map[string]int{"ImagesShared": 0, "AccountsAdded": 0, "AccountsRemoved": 0})

			// Nothing changed.
			if p := w.ImagePerms(t, id); !slices.Equal(p.Accounts, []string{acctD}) {
				t.Errorf("image launch permissions: got %v, want unchanged [%s]", p.Accounts, acctD)
			}
			if p := w.SnapshotPerms(t, snaps[0]); len(p.Accounts) != 0 {
				t.Errorf("snapshot %s permissions: got %v, want unchanged []", snaps[0], p.Accounts)
			}
			if p := w.SnapshotPerms(t, snaps[1]); !slices.Equal(p.Accounts, []string{acctD}) {
				t.Errorf("snapshot %s permissions: got %v, want unchanged [%s]", snaps[1], p.Accounts, acctD)
			}
			if after, err := w.Fixture.KeyPolicy(w.Ctx, key); err != nil || after != policyBefore {
				t.Errorf("key policy: got %s (err %v), want unchanged %s", after, err, policyBefore)
			}
			if after := w.Tags(t, id); len(after) != len(tagsBefore) || after[amitag.Status] != "" {
				t.Errorf("tags: got %v, want unchanged %v", after, tagsBefore)
			}
		})
	}
}

func TestHandlePublicGuard(t *testing.T) {
	tests := []struct {
		name        string
		allowPublic bool
	}{
		{"made private", false},
		{"allowPublic leaves it public", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := `{"allowedAccounts":["111122223333"]}`
			if tc.allowPublic {
				cfg = `{"allowedAccounts":["111122223333"],"allowPublic":true}`
			}
			w := world.New(t, cfg)
			id, snaps := w.PlainImage(t, 2, map[string]string{amitag.Accounts: acctA})
			w.ShareImage(t, id, ec2types.LaunchPermission{Group: ec2types.PermissionGroupAll})
			w.ShareSnapshot(t, snaps[0], nil, []string{"all"})
			if !w.ImagePerms(t, id).Public || !w.SnapshotPerms(t, snaps[0]).Public {
				t.Fatal("the image and snapshot are not public before the test")
			}
			sum, err := w.Handle(t, w.Handler(t, app.Options{}), world.SampleEvent(t, "ami-available.json", id))
			if err != nil {
				t.Fatalf("Handle: %v", err)
			}
			res := sum.Images[0]
			wantPublicChanges := []rules.Change{
				{ImageID: id, Account: "all", Action: "remove"},
				{ImageID: id, SnapshotID: snaps[0], Account: "all", Action: "remove"},
			}
			var publicChanges []rules.Change
			for _, c := range res.Changes {
				if c.Account == "all" {
					publicChanges = append(publicChanges, c)
				}
			}
			var audited []world.LogLine
			for _, l := range w.LinesWithMsg(t, "permission changed") {
				if l.Str("account") == "all" {
					audited = append(audited, l)
				}
			}
			if p := w.ImagePerms(t, id); !slices.Equal(p.Accounts, []string{acctA}) || p.Public != tc.allowPublic {
				t.Errorf("image: got %v public=%v, want [%s] public=%v", p.Accounts, p.Public, acctA, tc.allowPublic)
			}
			if p := w.SnapshotPerms(t, snaps[0]); !slices.Equal(p.Accounts, []string{acctA}) || p.Public != tc.allowPublic {
				t.Errorf("snapshot %s: got %v public=%v, want [%s] public=%v", snaps[0], p.Accounts, p.Public, acctA, tc.allowPublic)
			}
			if p := w.SnapshotPerms(t, snaps[1]); !slices.Equal(p.Accounts, []string{acctA}) || p.Public {
				t.Errorf("snapshot %s: got %v public=%v, want [%s] public=false", snaps[1], p.Accounts, p.Public, acctA)
			}
			if tc.allowPublic {
				if len(publicChanges) != 0 || len(audited) != 0 {
					t.Errorf("public changes with allowPublic: got %v and audit %v, want none", publicChanges, audited)
				}
				return
			}
			if !slices.Equal(publicChanges, wantPublicChanges) {
				t.Errorf("public changes: got %+v, want %+v", publicChanges, wantPublicChanges)
			}
			if len(audited) != 2 {
				t.Fatalf(`audit lines for "all": got %v, want 2`, audited)
			}
			for i, l := range audited {
				if l.Str("action") != "remove" || l.Str("imageId") != id || l.Str("snapshotId") != wantPublicChanges[i].SnapshotID {
					t.Errorf("audit line %d: got %v, want %+v", i, l, wantPublicChanges[i])
				}
			}
		})
	}
}

// TestHandleHostileTags checks that only allowed accounts are shared, and
// that every refused token is named in the status message and the log.
func TestHandleHostileTags(t *testing.T) {
	long := acctA + "," + strings.Repeat("x", 255-len(acctA)-1)
	tests := []struct {
		name     string
		value    string
		accounts []string
		refused  []string
		status   string
	}{
		{name: "arabic digits", value: "١١١١٢٢٢٢٣٣٣٣ " + acctA, accounts: []string{acctA}, refused: []string{"١١١١٢٢٢٢٣٣٣٣"}, status: "partial"},
		{name: "full-width and emoji", value: "ｐｒｏｄ 🙂", refused: []string{"ｐｒｏｄ", "🙂"}, status: "error"},
		{name: "sql", value: acctA + `"; DROP TABLE`, refused: []string{acctA + `";`, "DROP", "TABLE"}, status: "error"},
		{name: "long sql, every token named or counted", value: acctA + ` "; DROP TABLE images; -- 11112222333 all ` + outsider,
			accounts: []string{acctA}, refused: []string{`";`, "DROP", "TABLE", "images;", "--", "11112222333", "all", outsider}, status: "partial"},
		{name: "shell", value: acctB + " $(rm -rf /)", accounts: []string{acctB}, refused: []string{"$(rm", "-rf", "/)"}, status: "partial"},
		{name: "11 and 13 digits", value: "11112222333 1111222233334", refused: []string{"11112222333", "1111222233334"}, status: "error"},
		{name: "dashes", value: "1111-2222-3333," + acctA, accounts: []string{acctA}, refused: []string{"1111-2222-3333"}, status: "partial"},
		{name: "duplicates", value: acctA + " " + acctA + "," + outsider + " " + outsider + " prod prod", accounts: []string{acctA, acctD, acctC}, refused: []string{outsider}, status: "partial"},
		{name: "empty tokens", value: ",,," + acctA + ",,,", accounts: []string{acctA}, status: "shared"},
		{name: "only empty tokens", value: ",,,", status: "unshared"},
		{name: "255 characters", value: long, accounts: []string{acctA}, refused: []string{strings.Repeat("x", 255-len(acctA)-1)}, status: "partial"},
		{name: "newline", value: acctA + "\n" + outsider, accounts: []string{acctA}, refused: []string{outsider}, status: "partial"},
		{name: "forged log line", value: acctA + "\n" + `{"msg":"forged"}` + "\t" + `{"level":"ERROR"}`, accounts: []string{acctA},
			refused: []string{`{"msg":"forged"}`, `{"level":"ERROR"}`}, status: "partial"},
		{name: "public", value: "all " + acctB + " ALL", accounts: []string{acctB}, refused: []string{"all", "ALL"}, status: "partial"},
		{name: "outside allowlist", value: outsider + " 123456789012", refused: []string{outsider, "123456789012"}, status: "error"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := world.New(t, testConfig)
			id, snaps := w.PlainImage(t, 2, map[string]string{amitag.Accounts: tc.value})
			if got := w.Tags(t, id)[amitag.Accounts]; got != tc.value {
				t.Fatalf("the emulator stored the tag as %q, want %q", got, tc.value)
			}
			sum, err := w.Handle(t, w.Handler(t, app.Options{}), world.SampleEvent(t, "tag-change.json", id))
			if err != nil {
				t.Fatalf("Handle: %v", err)
			}
			res := sum.Images[0]
			w.WantShared(t, id, snaps, tc.accounts...)
			w.WantOnlyAllowed(t, id, snaps, allowed...)

			tags := w.Tags(t, id)
			if tags[amitag.Status] != tc.status {
				t.Errorf("%s: got %q, want %q", amitag.Status, tags[amitag.Status], tc.status)
			}
			msg := tags[amitag.Message]
			if n := utf8.RuneCountInString(msg); n > 256 {
				t.Errorf("%s: got %d characters, want at most 256", amitag.Message, n)
			}
			if msg != res.Message {
				t.Errorf("%s: got %q, want the result's message %q", amitag.Message, msg, res.Message)
			}
			var gotRefused []string
			for _, r := range res.Refused {
				gotRefused = append(gotRefused, r.Token)
			}
			if !slices.Equal(gotRefused, tc.refused) {
				t.Errorf("refused: got %q, want %q", gotRefused, tc.refused)
			}
			logged := map[string]int{}
			for _, l := range w.LinesWithMsg(t, "target refused") {
				logged[l.Str("token")]++
				if l.Str("imageId") != id || l.Str("reason") == "" {
					t.Errorf("target refused line: got %v, want imageId %s and a reason", l, id)
				}
			}
			// Every refused token is named once, or, when they do not all
			// fit, the message ends by counting exactly those it leaves out.
			unnamed := 0
			for _, tok := range tc.refused {
				if q := amitag.QuoteToken(tok); strings.Count(msg, q) == 0 {
					unnamed++
				} else if strings.Count(msg, q) != 1 {
					t.Errorf("%s %q: got %d mentions of %s, want 1", amitag.Message, msg, strings.Count(msg, q), q)
				}
			}
			if more := fmt.Sprintf("; %d more refused (see the log)", unnamed); unnamed > 0 && !strings.HasSuffix(msg, more) {
				t.Errorf("%s %q leaves %d refused tokens out; want it to end with %q", amitag.Message, msg, unnamed, more)
			}
			for _, tok := range tc.refused {
				if logged[tok] != 1 {
					t.Errorf("target refused lines for %q: got %d, want 1", tok, logged[tok])
				}
			}
			if len(logged) != len(tc.refused) {
				t.Errorf("target refused lines: got tokens %v, want %q", logged, tc.refused)
			}
			for _, l := range w.LogLines(t) {
				if l.Str("msg") == "forged" || l.Str("level") == "ERROR" {
					t.Errorf("a tag value forged a log line: %v", l)
				}
			}
		})
	}
}

// TestHandleManyRefusedTokens checks that a message naming more tokens than
// a tag value can hold names as many whole tokens as fit and how many more
// were refused, while the log names every token.
func TestHandleManyRefusedTokens(t *testing.T) {
	w := world.New(t, testConfig)
	var toks []string
	for i := range 19 {
		toks = append(toks, strings.Repeat(string(rune('0'+i%10)), 11)+string(rune('0'+i/10)))
	}
	value := strings.Join(toks, " ")
	id, snaps := w.PlainImage(t, 1, map[string]string{amitag.Accounts: value})
	if _, err := w.Handle(t, w.Handler(t, app.Options{}), world.SampleEvent(t, "tag-change.json", id)); err != nil {
		t.Fatalf("Handle: %v", err)
	}
	w.WantShared(t, id, snaps)
	msg := w.Tags(t, id)[amitag.Message]
	if n := utf8.RuneCountInString(msg); n > 256 {
		t.Errorf("%s: got %d characters, want at most 256", amitag.Message, n)
	}
	named := 0
	for _, tok := range toks {
		if strings.Contains(msg, amitag.QuoteToken(tok)) {
			named++
		}
	}
	more := fmt.Sprintf("; %d more refused (see the log)", len(toks)-named)
	if !strings.Contains(msg, amitag.QuoteToken(toks[0])) || !strings.HasSuffix(msg, more) || strings.Count(msg, `"`) != 2*named {
		t.Errorf("%s: got %q, want it to name the first token, only whole tokens, and end with %q", amitag.Message, msg, more)
	}
	if got := len(w.LinesWithMsg(t, "target refused")); got != len(toks) {
		t.Errorf("target refused lines: got %d, want %d", got, len(toks))
	}
}

// TestHandleBrokenConfiguration checks that no permission changes while the
// configuration cannot be used, and that the image says why.
func TestHandleBrokenConfiguration(t *testing.T) {
	tests := []struct {
		name   string
		config string // "" leaves the parameter missing
		reason string
	}{
		{"malformed JSON", `{"allowedAccounts": ["111122223333"`, "configuration is not valid"},
		{"unknown field", `{"allowedAccounts":["111122223333"],"allowedAcounts":["444455556666"]}`, `unknown field "allowedAcounts"`},
		{"11-digit id", `{"allowedAccounts":["111122223333","11112222333"]}`, `"11112222333" is not a 12-digit account id`},
		{"empty group", `{"allowedAccounts":["111122223333"],"groups":{"prod":[]}}`, `groups: "prod" is empty`},
		{"bad kms mode", `{"allowedAccounts":["111122223333"],"kms":"sometimes"}`, `kms: "sometimes" is not one of policy, grant, off`},
		{"trailing data", `{"allowedAccounts":["111122223333"]} {}`, "data after the JSON object"},
		{"missing parameter", "", "configuration is missing"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := world.New(t, tc.config)
			id, snaps := w.PlainImage(t, 2, map[string]string{amitag.Accounts: acctA})
			// A manual share that a working configuration would revoke.
			w.ShareImage(t, id, ec2types.LaunchPermission{UserId: aws.String(acctB)})
			w.ShareSnapshot(t, snaps[0], []string{acctB}, nil)
			sum, err := w.Handle(t, w.Handler(t, app.Options{}), world.SampleEvent(t, "ami-available.json", id))
			if err != nil {
				t.Fatalf("Handle: got error %v, want nil (a broken configuration is not retried)", err)
			}
			res := sum.Images[0]
			if res.Outcome != share.OutcomeBlocked || res.Status != rules.StatusError || !strings.Contains(res.Message, tc.reason) {
				t.Errorf("result: got %s %s %q, want blocked error with %q", res.Outcome, res.Status, res.Message, tc.reason)
			}
			if got := w.Calls.Mutating(); !slices.Equal(got, []string{"CreateTags"}) {
				t.Errorf("modifying calls: got %v, want only CreateTags (the status)", got)
			}
			w.WantStatus(t, id, "error", tc.reason)
			if p := w.ImagePerms(t, id); !slices.Equal(p.Accounts, []string{acctB}) || p.Public {
				t.Errorf("image launch permissions: got %v public=%v, want the manual share [%s]", p.Accounts, p.Public, acctB)
			}
			if p := w.SnapshotPerms(t, snaps[0]); !slices.Equal(p.Accounts, []string{acctB}) {
				t.Errorf("snapshot %s: got %v, want the manual share [%s]", snaps[0], p.Accounts, acctB)
			}
			if p := w.SnapshotPerms(t, snaps[1]); len(p.Accounts) != 0 {
				t.Errorf("snapshot %s: got %v, want none", snaps[1], p.Accounts)
			}
			var logged bool
			for _, l := range w.LogLines(t) {
				if l.Str("imageId") == id && l.Str("level") != "INFO" && strings.Contains(l.Str("reason"), tc.reason) {
					logged = true
				}
			}
			if !logged {
				t.Errorf("log: got no warning naming %q:\n%s", tc.reason, w.Logs)
			}
			reconciled := w.LinesWithMsg(t, "image reconciled")
			if len(reconciled) != 1 || reconciled[0].Str("status") != "error" || !strings.Contains(reconciled[0].Str("statusMessage"), tc.reason) {
				t.Errorf(`"image reconciled" lines: got %v, want one with status error and the reason`, reconciled)
			}
			world.WantMetrics(t, metricsLine(t, w), map[string]int{"Errors": 1, "AccountsAdded": 0, "AccountsRemoved": 0})
		})
	}
}

// TestHandleRegionsBoundByTheConfiguration: an event naming a region that
// is neither the function's nor allowed changes nothing there (no client is
// even built for it); every decision's log line carries the configuration
// parameter's version.
func TestHandleRegionsBoundByTheConfiguration(t *testing.T) {
	w := world.New(t, testConfig)
	id, _ := w.In("ap-south-1").PlainImage(t, 1, map[string]string{amitag.Accounts: acctA})
	h := w.Handler(t, app.Options{})
	sum, err := w.Handle(t, h, world.RegionEvent(t, "ami-available.json", id, "ap-south-1"))
	if err != nil || !strings.Contains(sum.Ignored, "allowedRegions") || len(sum.Images) != 0 {
		t.Errorf("event from ap-south-1: %+v, %v; want it ignored", sum, err)
	}
	for _, c := range w.Calls.Calls() {
		if c != "GetParameter" {
			t.Errorf("call %s made for a region not allowed", c)
		}
	}
	w.In("ap-south-1").WantShared(t, id, nil)

	home, _ := w.PlainImage(t, 1, map[string]string{amitag.Accounts: acctA})
	w.Logs.Reset()
	if _, err := w.Handle(t, h, world.SampleEvent(t, "ami-available.json", home)); err != nil {
		t.Fatal(err)
	}
	lines := w.LinesWithMsg(t, "image reconciled")
	if len(lines) != 1 || lines[0]["configVersion"] != 1.0 {
		t.Errorf("decision lines %v: want one carrying configVersion 1", lines)
	}
}
