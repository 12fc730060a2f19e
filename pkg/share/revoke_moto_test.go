package share_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/amishare/amishare/internal/testing/faultinject"
	"github.com/amishare/amishare/internal/testing/fixture"
	"github.com/amishare/amishare/internal/testing/iameval"
	"github.com/amishare/amishare/internal/testing/world"
	"github.com/amishare/amishare/pkg/amitag"
	"github.com/amishare/amishare/pkg/app"
	"github.com/amishare/amishare/pkg/kmsgrant"
	"github.com/amishare/amishare/pkg/kmspolicy"
	"github.com/amishare/amishare/pkg/share"
	"github.com/amishare/amishare/pkg/share/rules"
)

// Revocation never waits: what a tag no longer names loses access, however
// the tag went and whatever blocks an addition.

const orgConfigA = `{"allowedAccounts":["111122223333","444455556666"],` +
	`"allowedOrganizationalUnits":["arn:aws:organizations::210987654321:ou/o-a1b2c3d4e5/ou-ab12-11111111"]}`

// tagChange is a Tag Change on Resource event for image: changed keys, and
// the tags left after the change.
func tagChange(t *testing.T, image string, changed []string, left map[string]string) []byte {
	t.Helper()
	ev := map[string]any{
		"version": "0", "id": "revoke-test", "detail-type": "Tag Change on Resource", "source": "aws.tag",
		"account": "123456789012", "region": "us-east-1",
		"resources": []string{"arn:aws:ec2:us-east-1:123456789012:image/" + image},
		"detail":    map[string]any{"changed-tag-keys": changed, "service": "ec2", "resource-type": "image", "version": 3, "tags": left},
	}
	raw, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// shareEncrypted shares an image with two snapshots under key with A and B
// through the handler, and returns it.
func shareEncrypted(t *testing.T, w *world.World, key string) (string, []string) {
	t.Helper()
	id, snaps := w.EncryptedImage(t, acctA+" "+acctB, key, key)
	if _, err := w.Handle(t, w.Handler(t, app.Options{}), world.SampleEvent(t, "ami-available.json", id)); err != nil {
		t.Fatal(err)
	}
	w.WantShared(t, id, snaps, acctA, acctB)
	if got := w.KeyAccounts(t, key); !slices.Equal(got, []string{acctA, acctB}) {
		t.Fatalf("key before: %v, want A and B", got)
	}
	return id, snaps
}

// wantReleased checks that nothing amishare gave is left: no launch
// permission, no create-volume permission, no key statement, no record.
func wantReleased(t *testing.T, w *world.World, id string, snaps []string, key string) {
	t.Helper()
	w.WantShared(t, id, snaps)
	if key != "" {
		if got := w.KeyGrantees(t, key); len(got) != 0 {
			t.Errorf("key %s still grants %v", key, got)
		}
	}
	for _, s := range snaps {
		if got := w.SnapshotRecord(t, s); got != "" {
			t.Errorf("record on %s: got %q, want it removed", s, got)
		}
	}
}

func TestEveryAmishareTagDeleted(t *testing.T) {
	amishareKeys := []string{amitag.Accounts, amitag.Status, amitag.Message}
	for _, tc := range []struct {
		name  string
		event func(t *testing.T, id string) []byte
	}{
		{"Tag Change naming the keys", func(t *testing.T, id string) []byte {
			return tagChange(t, id, amishareKeys, map[string]string{"Name": "x"})
		}},
		{"Tag Change: only amishare:status deleted, amishare:accounts went before", func(t *testing.T, id string) []byte {
			return tagChange(t, id, []string{amitag.Status}, map[string]string{})
		}},
		{"CloudTrail DeleteTags without keys", func(t *testing.T, id string) []byte {
			return world.SampleEvent(t, "cloudtrail-delete-all-tags.json", id)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := world.New(t, testConfig)
			key := w.Key(t)
			id, snaps := shareEncrypted(t, w, key)
			w.Untag(t, id, amishareKeys...)
			sum, err := w.Handle(t, w.Handler(t, app.Options{}), tc.event(t, id))
			if err != nil || len(sum.Images) != 1 || sum.Images[0].Outcome != share.OutcomeCleaned {
				t.Fatalf("handle: %+v, %v; want the image released", sum, err)
			}
			wantReleased(t, w, id, snaps, key)
			if got := w.Calls.Count("ResetImageAttribute"); got != 1 {
				t.Errorf("ResetImageAttribute calls: %d, want 1", got)
			}
			if got := w.Tags(t, id); got[amitag.Status] != "" {
				t.Errorf("a status tag was written on the released image: %v", got)
			}
			// Nothing left to do: a second delivery changes nothing.
			if _, err := w.Handle(t, w.Handler(t, app.Options{}), tc.event(t, id)); err != nil || len(w.Calls.Mutating()) != 0 {
				t.Errorf("second delivery: %v, calls %v; want nothing to do", err, w.Calls.Mutating())
			}
		})
	}

	t.Run("a launch permission amishare never gave: nothing changes, an error names it", func(t *testing.T) {
		w := world.New(t, testConfig)
		key := w.Key(t)
		id, snaps := shareEncrypted(t, w, key)
		w.Untag(t, id, amishareKeys...)
		w.ShareImage(t, id, ec2types.LaunchPermission{UserId: aws.String(outsider)})
		w.Logs.Reset()
		sum, err := w.Handle(t, w.Handler(t, app.Options{}), world.SampleEvent(t, "cloudtrail-delete-all-tags.json", id))
		if err != nil || len(sum.Images) != 1 || sum.Images[0].Outcome != share.OutcomeBlocked || !slices.Contains(sum.Images[0].Unrevoked, outsider) {
			t.Fatalf("handle: %+v, %v; want blocked naming %s", sum.Images, err, outsider)
		}
		if got := w.Calls.Mutating(); len(got) != 0 {
			t.Errorf("modifying calls %v, want none", got)
		}
		for _, s := range snaps { // the snapshots' shares too: nothing half-revoked
			if p := w.SnapshotPerms(t, s); !slices.Equal(p.Accounts, []string{acctA, acctB}) {
				t.Errorf("snapshot %s: %v, want A and B kept", s, p.Accounts)
			}
		}
		if len(w.LinesWithMsg(t, "access not revoked")) != 1 {
			t.Errorf("no ERROR line names what is left:\n%s", w.Logs)
		}
		world.WantMetrics(t, w.Metrics(t, world.EventMetrics...), map[string]int{"RevocationsBlocked": 1})
	})

	t.Run("a reset that leaves an OU is reported", func(t *testing.T) {
		w := world.New(t, orgConfigA)
		id, snaps := w.PlainImage(t, 1, map[string]string{amitag.Accounts: acctA + " ou-ab12-11111111"})
		if _, err := w.Handle(t, w.Handler(t, app.Options{}), world.SampleEvent(t, "ami-available.json", id)); err != nil {
			t.Fatal(err)
		}
		w.Untag(t, id, amishareKeys...)
		if err := w.Server.Switch("reset-keeps-organizations", true); err != nil {
			t.Fatal(err)
		}
		w.Logs.Reset()
		sum, err := w.Handle(t, w.Handler(t, app.Options{}), world.SampleEvent(t, "cloudtrail-delete-all-tags.json", id))
		if err == nil || len(sum.Images) != 1 || !slices.Contains(sum.Images[0].Unrevoked, "arn:aws:organizations::210987654321:ou/o-a1b2c3d4e5/ou-ab12-11111111") {
			t.Fatalf("handle: %+v, %v; want a failure naming the OU left", sum.Images, err)
		}
		if len(w.LinesWithMsg(t, "launch permissions left after a reset")) != 1 {
			t.Errorf("no ERROR line names the OU left:\n%s", w.Logs)
		}
		if got := w.SnapshotRecord(t, snaps[0]); got != id {
			t.Errorf("record: %q, want it kept for the next try", got)
		}
	})
}

func TestRefusedImageStillRevokes(t *testing.T) {
	t.Run(`"kms": "off" with a customer-managed key`, func(t *testing.T) {
		w := world.New(t, testConfig)
		key := w.Key(t)
		id, snaps := shareEncrypted(t, w, key)
		w.ShareImage(t, id, ec2types.LaunchPermission{UserId: aws.String(outsider)})
		w.PutConfig(t, strings.Replace(testConfig, `{`, `{"kms":"off",`, 1))
		w.Tag(t, id, map[string]string{amitag.Accounts: acctA})
		sum, err := w.Handle(t, w.Handler(t, app.Options{}), world.SampleEvent(t, "tag-change.json", id))
		if err != nil || sum.Images[0].Outcome != share.OutcomeBlocked {
			t.Fatalf("handle: %+v, %v; want blocked", sum.Images, err)
		}
		w.WantStatus(t, id, rules.StatusError, `"kms": "off"`)
		w.WantShared(t, id, snaps, acctA) // B and the hand share gone; A was named
		// kms off writes no key policy: B's statement stays, and is reported.
		if got := w.KeyAccounts(t, key); !slices.Equal(got, []string{acctA, acctB}) {
			t.Errorf("key: %v, want its statements untouched", got)
		}
		res := sum.Images[0]
		if len(res.Leftovers) != 1 || !strings.Contains(w.Tags(t, id)[amitag.Message], "keys prune") {
			t.Errorf("leftovers %+v, message %q: want the statements reported", res.Leftovers, w.Tags(t, id)[amitag.Message])
		}
		world.WantMetrics(t, w.Metrics(t, world.EventMetrics...), map[string]int{"AccountsRemoved": 2, "LeftoverStatements": 1})
		if len(w.LinesWithMsg(t, "key holds statements policy mode left")) != 1 {
			t.Errorf("no log line gives the leftover statement:\n%s", w.Logs)
		}

		// The operator removes them with the CLI's engine use case.
		pr, err := w.Engine(t, app.Options{}).PruneKey(w.Ctx, key, share.Options{})
		if err != nil || pr.Outcome != share.OutcomeApplied || len(pr.Changes) != 2 {
			t.Fatalf("PruneKey: %+v, %v", pr, err)
		}
		if got := w.KeyGrantees(t, key); len(got) != 0 {
			t.Errorf("key after prune: %v, want none of amishare's statements", got)
		}
	})

	t.Run("a key of another account", func(t *testing.T) {
		w := world.New(t, testConfig)
		id, snaps := w.Image(t, []fixture.Disk{{KeyID: fixture.ForeignKeyARN("210987654321")}}, map[string]string{amitag.Accounts: acctA})
		w.ShareImage(t, id, ec2types.LaunchPermission{UserId: aws.String(acctB)})
		w.ShareSnapshot(t, snaps[0], []string{acctA, acctB, outsider}, nil)
		sum, err := w.Handle(t, w.Handler(t, app.Options{}), world.SampleEvent(t, "ami-available.json", id))
		if err != nil || sum.Images[0].Outcome != share.OutcomeBlocked {
			t.Fatalf("handle: %+v, %v; want blocked", sum.Images, err)
		}
		w.WantStatus(t, id, rules.StatusError, "of account 210987654321")
		if p := w.ImagePerms(t, id); len(p.Accounts) != 0 {
			t.Errorf("image: %v, want B's hand share removed and A not added", p.Accounts)
		}
		if p := w.SnapshotPerms(t, snaps[0]); !slices.Equal(p.Accounts, []string{acctA}) {
			t.Errorf("snapshot: %v, want only A (named) left", p.Accounts)
		}
	})
}

// hook is an HTTP transport that runs a function once, after the first
// response to one action: a change made at the emulator between two of
// amishare's calls.
type hook struct {
	action string
	do     func()
	once   sync.Once
}

func (h *hook) RoundTrip(req *http.Request) (*http.Response, error) {
	action, _, _ := faultinject.Action(req)
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err == nil && action == h.action {
		h.once.Do(h.do)
	}
	return resp, err
}

// TestKeyPolicyEditBetweenReadAndWrite: an administrator adds a statement
// right after amishare read the policy to plan; amishare's write starts from
// a read made right before it, so the statement stays.
func TestKeyPolicyEditBetweenReadAndWrite(t *testing.T) {
	w := world.New(t, testConfig)
	key := w.Key(t)
	id, snaps := w.EncryptedImage(t, acctA, key)
	const adminSid = "AdminAddedMeanwhile"
	edit := &hook{action: "GetKeyPolicy", do: func() {
		policy := w.KeyPolicy(t, key)
		stmt := `{"Sid":"` + adminSid + `","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:role/admin"},"Action":"kms:Decrypt","Resource":"*"}`
		policy = strings.Replace(policy, `"Statement": [`, `"Statement": [`+stmt+`,`, 1)
		policy = strings.Replace(policy, `"Statement":[`, `"Statement":[`+stmt+`,`, 1)
		if _, err := w.Fixture.KMS.PutKeyPolicy(w.Ctx, &kms.PutKeyPolicyInput{KeyId: aws.String(key), PolicyName: aws.String("default"), Policy: aws.String(policy)}); err != nil {
			t.Error(err)
		}
	}}
	h := w.Handler(t, app.Options{HTTPClient: &http.Client{Transport: edit}})
	if _, err := w.Handle(t, h, world.SampleEvent(t, "ami-available.json", id)); err != nil {
		t.Fatal(err)
	}
	w.WantShared(t, id, snaps, acctA)
	if got := w.KeyAccounts(t, key); !slices.Equal(got, []string{acctA}) {
		t.Errorf("key: %v, want A", got)
	}
	if !strings.Contains(w.KeyPolicy(t, key), adminSid) {
		t.Errorf("the administrator's statement was lost:\n%s", w.KeyPolicy(t, key))
	}
}

func TestKeyModeSwitchOrphansNothing(t *testing.T) {
	grantConfig := strings.Replace(testConfig, `{`, `{"kms":"grant",`, 1)
	t.Run("grant, then policy: the grant of an account that leaves is revoked", func(t *testing.T) {
		w := world.New(t, grantConfig)
		key := w.Key(t)
		id, snaps := w.EncryptedImage(t, acctA+" "+acctB, key)
		if _, err := w.Handle(t, w.Handler(t, app.Options{}), world.SampleEvent(t, "ami-available.json", id)); err != nil {
			t.Fatal(err)
		}
		if got, _ := kmsgrant.Accounts(w.Ctx, w.Fixture.KMS, key); !slices.Equal(got, []string{acctA, acctB}) {
			t.Fatalf("grants: %v, want A and B", got)
		}
		w.PutConfig(t, testConfig)
		w.Tag(t, id, map[string]string{amitag.Accounts: acctA})
		if _, err := w.Handle(t, w.Handler(t, app.Options{}), world.SampleEvent(t, "tag-change.json", id)); err != nil {
			t.Fatal(err)
		}
		w.WantShared(t, id, snaps, acctA)
		if got, _ := kmsgrant.Accounts(w.Ctx, w.Fixture.KMS, key); !slices.Equal(got, []string{acctA}) {
			t.Errorf("grants: %v, want B's revoked (A still named)", got)
		}
		if got := w.KeyAccounts(t, key); !slices.Equal(got, []string{acctA}) {
			t.Errorf("statements: %v, want A's", got)
		}
	})
	t.Run("grant, then off: leaving still revokes the grant", func(t *testing.T) {
		w := world.New(t, grantConfig)
		key := w.Key(t)
		id, _ := w.EncryptedImage(t, acctA+" "+acctB, key)
		if _, err := w.Handle(t, w.Handler(t, app.Options{}), world.SampleEvent(t, "ami-available.json", id)); err != nil {
			t.Fatal(err)
		}
		w.PutConfig(t, strings.Replace(testConfig, `{`, `{"kms":"off",`, 1))
		w.Tag(t, id, map[string]string{amitag.Accounts: acctA})
		if _, err := w.Handle(t, w.Handler(t, app.Options{}), world.SampleEvent(t, "tag-change.json", id)); err != nil {
			t.Fatal(err)
		}
		if got, _ := kmsgrant.Accounts(w.Ctx, w.Fixture.KMS, key); !slices.Equal(got, []string{acctA}) {
			t.Errorf("grants: %v, want B's revoked", got)
		}
	})
}

// TestTwoImagesOnOneSnapshot: the record names both images; the snapshot
// keeps what the image left needs, and the last deregistration revokes the
// rest, in either order.
func TestTwoImagesOnOneSnapshot(t *testing.T) {
	for _, firstGone := range []int{0, 1} {
		w := world.New(t, testConfig)
		x, snaps := w.PlainImage(t, 1, map[string]string{amitag.Accounts: acctA})
		y, err := w.Fixture.RegisterImageFromSnapshots(w.Ctx, "y", snaps, map[string]string{amitag.Accounts: acctB})
		if err != nil {
			t.Fatal(err)
		}
		h := w.Handler(t, app.Options{})
		for _, id := range []string{x, y} {
			if _, err := w.Handle(t, h, world.SampleEvent(t, "ami-available.json", id)); err != nil {
				t.Fatal(err)
			}
		}
		if got, want := w.SnapshotRecord(t, snaps[0]), strings.Join(slices.Sorted(slices.Values([]string{x, y})), " "); got != want {
			t.Fatalf("record: %q, want %q", got, want)
		}
		images := []string{x, y}
		targets := []string{acctA, acctB}
		gone, left := images[firstGone], images[1-firstGone]
		w.DeregisterImage(t, gone)
		if _, err := w.Handle(t, h, world.SampleEvent(t, "ami-deregistered.json", gone)); err != nil {
			t.Fatal(err)
		}
		if p := w.SnapshotPerms(t, snaps[0]); !slices.Equal(p.Accounts, []string{targets[1-firstGone]}) {
			t.Errorf("first gone %s: snapshot %v, want only the image left's target", gone, p.Accounts)
		}
		if got := w.SnapshotRecord(t, snaps[0]); got != left {
			t.Errorf("first gone %s: record %q, want %s", gone, got, left)
		}
		w.DeregisterImage(t, left)
		if _, err := w.Handle(t, h, world.SampleEvent(t, "ami-deregistered.json", left)); err != nil {
			t.Fatal(err)
		}
		if p := w.SnapshotPerms(t, snaps[0]); len(p.Accounts) != 0 {
			t.Errorf("both gone: snapshot still shared with %v", p.Accounts)
		}
		if got := w.SnapshotRecord(t, snaps[0]); got != "" {
			t.Errorf("both gone: record %q, want it removed", got)
		}
	}
}

// TestSweepRacingRevocation: an event revokes B while a sweep holds a
// listing that still names B; the sweep reads the image again before it
// writes, and shares nothing again.
func TestSweepRacingRevocation(t *testing.T) {
	w := world.New(t, `{"allowedAccounts":["111122223333","444455556666"],"sweepRate":1000}`)
	ids, snaps := w.Images(t, "race", 5, map[string]string{amitag.Accounts: acctA + " " + acctB})
	h := w.Handler(t, app.Options{})
	if _, err := h.Sweep(w.Ctx); err != nil {
		t.Fatal(err)
	}
	// Hand-made drift the sweep will want to repair: B removed by hand.
	for _, id := range ids {
		if _, err := w.Fixture.EC2.ModifyImageAttribute(w.Ctx, &ec2.ModifyImageAttributeInput{ImageId: aws.String(id),
			LaunchPermission: &ec2types.LaunchPermissionModifications{Remove: []ec2types.LaunchPermission{{UserId: aws.String(acctB)}}}}); err != nil {
			t.Fatal(err)
		}
	}
	// Right after the sweep listed the images (tags naming B), the tags drop
	// B and its events revoke it.
	revoke := &hook{action: "DescribeImages", do: func() {
		events := w.Handler(t, app.Options{})
		for _, id := range ids {
			w.Tag(t, id, map[string]string{amitag.Accounts: acctA})
			if _, err := events.Handle(w.Ctx, world.SampleEvent(t, "tag-change.json", id)); err != nil {
				t.Error(err)
			}
		}
	}}
	sweeper := w.Handler(t, app.Options{HTTPClient: &http.Client{Transport: revoke}})
	if _, err := sweeper.Sweep(w.Ctx); err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		w.WantShared(t, id, snaps[i:i+1], acctA)
	}
}

func TestDisabledImage(t *testing.T) {
	w := world.New(t, testConfig)
	key := w.Key(t)
	id, snaps := shareEncrypted(t, w, key)
	if _, err := w.Fixture.EC2.DisableImage(w.Ctx, &ec2.DisableImageInput{ImageId: aws.String(id)}); err != nil {
		t.Fatal(err)
	}
	// A tag change on the disabled image still revokes B everywhere.
	w.Tag(t, id, map[string]string{amitag.Accounts: acctA})
	sum, err := w.Handle(t, w.Handler(t, app.Options{}), world.SampleEvent(t, "tag-change.json", id))
	if err != nil || sum.Images[0].Outcome != share.OutcomeApplied {
		t.Fatalf("tag change: %+v, %v", sum.Images, err)
	}
	for _, s := range snaps {
		if p := w.SnapshotPerms(t, s); !slices.Equal(p.Accounts, []string{acctA}) {
			t.Errorf("snapshot %s: %v, want A", s, p.Accounts)
		}
	}
	if got := w.KeyAccounts(t, key); !slices.Equal(got, []string{acctA}) {
		t.Errorf("key: %v, want A", got)
	}
	if p := w.ImagePerms(t, id); len(p.Accounts) != 0 {
		t.Errorf("disabled image: launch permissions %v added, want none", p.Accounts)
	}
	w.WantStatus(t, id, rules.StatusUnshared, "disabled")
	// The sweep neither shares it nor counts it as an error.
	sweeper := w.Handler(t, app.Options{})
	w.Calls.Reset()
	s, err := sweeper.Sweep(w.Ctx)
	if err != nil || s.Errors != 0 || len(w.Calls.Mutating()) != 0 {
		t.Errorf("sweep: %+v, %v, calls %v; want nothing to do and no error", s, err, w.Calls.Mutating())
	}
	// Enabled again (its launch permissions are not restored): its available
	// event shares it again.
	if _, err := w.Fixture.EC2.EnableImage(w.Ctx, &ec2.EnableImageInput{ImageId: aws.String(id)}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Handle(t, w.Handler(t, app.Options{}), world.SampleEvent(t, "ami-available.json", id)); err != nil {
		t.Fatal(err)
	}
	w.WantShared(t, id, snaps, acctA)
}

func TestFailedEventForAnImageThatDidNotFail(t *testing.T) {
	w := world.New(t, testConfig)
	id, _ := w.PlainImage(t, 1, map[string]string{amitag.Accounts: acctA, amitag.Source: "us-east-1/ami-0123456789abcdef0"})
	sum, err := w.Handle(t, w.Handler(t, app.Options{}), world.SampleEvent(t, "ami-failed.json", id))
	if err != nil || sum.Images[0].Outcome != share.OutcomeSkipped || len(w.Calls.Mutating()) != 0 {
		t.Errorf("failed event for an available image: %+v, %v, calls %v; want it skipped", sum.Images, err, w.Calls.Mutating())
	}
}

// TestOrganizationStatementsLeaveTheKeyAccountOut: the OU statements written
// on a key of this account (moto's) give that account nothing by themselves.
func TestOrganizationStatementsLeaveTheKeyAccountOut(t *testing.T) {
	w := world.New(t, orgConfigA)
	key := w.Key(t)
	id, _ := w.EncryptedImage(t, "ou-ab12-11111111", key)
	if _, err := w.Handle(t, w.Handler(t, app.Options{}), world.SampleEvent(t, "ami-available.json", id)); err != nil {
		t.Fatal(err)
	}
	policy := w.KeyPolicy(t, key)
	grantees, _ := kmspolicy.Grantees(policy)
	ours, _, err := kmspolicy.Edit("", grantees, nil, kmspolicy.KeyOf(key))
	if err != nil {
		t.Fatal(err)
	}
	owner := iameval.Caller{Account: "123456789012", OrgID: "o-a1b2c3d4e5", OrgPath: "o-a1b2c3d4e5/r-ab12/ou-ab12-11111111/"}
	member := iameval.Caller{Account: "333333333333", OrgID: "o-a1b2c3d4e5", OrgPath: "o-a1b2c3d4e5/r-ab12/ou-ab12-11111111/"}
	if ok, err := iameval.Allows(ours, owner.Request("kms:Decrypt", nil)); err != nil || ok {
		t.Errorf("the key's own account may decrypt through the OU statements: %v, %v", ok, err)
	}
	if ok, err := iameval.Allows(ours, member.Request("kms:Decrypt", nil)); err != nil || !ok {
		t.Errorf("an OU member may not decrypt: %v, %v", ok, err)
	}
}
