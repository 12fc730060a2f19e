package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/amishare/amishare/internal/testing/fixture"
	"github.com/amishare/amishare/pkg/amitag"
	"github.com/amishare/amishare/pkg/app"
	"github.com/amishare/amishare/pkg/handler"
	"github.com/amishare/amishare/pkg/share"
	"github.com/amishare/amishare/pkg/share/rules"
)

// The function runs in us-east-1 (AWS_REGION, moto's default); copies go to eu-west-1.
const (
	home = "us-east-1"
	away = "eu-west-1"
)

// copyWorld is a world with a customer-managed key in each region and the
// configuration allowing copies to eu-west-1 with its key.
type copyWorld struct {
	*world
	eu             *fixture.Fixture
	homeKey, euKey string
}

func newCopyWorld(t *testing.T, configFor func(homeKey, euKey string) string) *copyWorld {
	t.Helper()
	w := &copyWorld{world: newWorld(t, "")}
	w.eu = w.fx.In(away)
	var err error
	if w.homeKey, err = w.fx.CreateKey(w.ctx, "home"); err != nil {
		t.Fatal(err)
	}
	if w.euKey, err = w.eu.CreateKey(w.ctx, "eu"); err != nil {
		t.Fatal(err)
	}
	w.putConfig(t, configFor(w.homeKey, w.euKey))
	w.hook(t)
	return w
}

// hook makes run build its handler with the call log and any extra API
// options; it keeps no other state, so handlers may be built concurrently.
func (w *copyWorld) hook(t *testing.T, extra ...func(*middleware.Stack) error) {
	t.Helper()
	orig := newApp
	t.Cleanup(func() { newApp = orig })
	newApp = func(ctx context.Context, o app.Options) (*app.App, error) {
		o.APIOptions = append(append(o.APIOptions, w.calls.APIOption), extra...)
		o.MaxBackoff = 5 * time.Millisecond
		return app.New(ctx, o)
	}
}

// barrier holds every CopyImage call until n of them have arrived (or a
// timeout passes), so that concurrent handlers really race for the copy.
func barrier(n int, timeout time.Duration) func(*middleware.Stack) error {
	var mu sync.Mutex
	arrived := 0
	all := make(chan struct{})
	return func(stack *middleware.Stack) error {
		return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("copyBarrier",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				if awsmiddleware.GetOperationName(ctx) == "CopyImage" {
					mu.Lock()
					arrived++
					if arrived == n {
						close(all)
					}
					mu.Unlock()
					select {
					case <-all:
					case <-time.After(timeout):
					}
				}
				return next.HandleInitialize(ctx, in)
			}), middleware.After)
	}
}

func (w *copyWorld) putConfig(t *testing.T, doc string) {
	t.Helper()
	if err := w.fx.PutConfig(w.ctx, param, doc); err != nil {
		t.Fatal(err)
	}
}

// euConfig allows A and B, copies to eu-west-1 with its key.
func euConfig(_, euKey string) string {
	return fmt.Sprintf(`{"allowedAccounts":["%s","%s"],"allowedRegions":["%s"],"copyKeys":{"%s":"%s"}}`, acctA, acctB, away, away, euKey)
}

// regionEvent writes events/name for imageID as it arrives from region.
func regionEvent(t *testing.T, name, imageID, region string) string {
	t.Helper()
	b, err := os.ReadFile(eventFile(t, name, imageID))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), region+"-"+name)
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(string(b), home, region)), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// handle runs `amishare handle` on an event and returns the first image's result.
func (w *copyWorld) handle(t *testing.T, path string, extra ...string) (handler.Summary, result) {
	t.Helper()
	w.calls.Reset()
	r := runCLI(t, "", append(append([]string{"handle"}, extra...), path)...)
	return decode[handler.Summary](t, r), r
}

// copies lists the images in fx's region tagged amishare:source = home/src.
func (w *copyWorld) copies(t *testing.T, fx *fixture.Fixture, src string) []ec2types.Image {
	t.Helper()
	imgs, err := fx.ImagesTagged(w.ctx, amitag.Source, home+"/"+src)
	if err != nil {
		t.Fatal(err)
	}
	return imgs
}

func (w *copyWorld) onlyCopy(t *testing.T, fx *fixture.Fixture, src string) ec2types.Image {
	t.Helper()
	imgs := w.copies(t, fx, src)
	if len(imgs) != 1 {
		t.Fatalf("copies of %s: got %d, want 1", src, len(imgs))
	}
	return imgs[0]
}

func (w *copyWorld) wantSharedIn(t *testing.T, fx *fixture.Fixture, id string, snaps []string, accounts ...string) {
	t.Helper()
	if err := fx.SharedExactly(w.ctx, id, snaps, accounts); err != nil {
		t.Error(err)
	}
}

func tagsOf(img ec2types.Image) map[string]string {
	m := map[string]string{}
	for _, t := range img.Tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

func (w *copyWorld) tags(t *testing.T, fx *fixture.Fixture, id string) map[string]string {
	t.Helper()
	img, err := fx.Image(w.ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return tagsOf(img)
}

// wantCopyEncrypted checks every snapshot of the copy uses key.
func (w *copyWorld) wantCopyEncrypted(t *testing.T, fx *fixture.Fixture, img ec2types.Image, n int, key string) []string {
	t.Helper()
	snaps, keys, err := fx.SnapshotKeys(w.ctx, img)
	if err != nil {
		t.Fatal(err)
	}
	if len(snaps) != n {
		t.Fatalf("copy %s: got %d snapshots, want %d (the source's)", aws.ToString(img.ImageId), len(snaps), n)
	}
	for i, k := range keys {
		if k != key {
			t.Errorf("copy snapshot %s: got key %q, want %q", snaps[i], k, key)
		}
	}
	return snaps
}

func (w *copyWorld) keyAccounts(t *testing.T, fx *fixture.Fixture, key string) []string {
	t.Helper()
	a, err := fx.KeyAccounts(w.ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func wantTag(t *testing.T, tags map[string]string, key, want string) {
	t.Helper()
	if got, ok := tags[key]; !ok || got != want {
		t.Errorf("tag %s: got %q (present %v), want %q", key, got, ok, want)
	}
}

func wantContains(t *testing.T, what, got, want string) {
	t.Helper()
	if !strings.Contains(got, want) {
		t.Errorf("%s: got %q, want it to contain %q", what, got, want)
	}
}

// TestCopyToRegion: an encrypted image tagged with a region is copied there,
// encrypted with that region's key, tagged for sharing; a rerun makes no
// second copy; the copy's own event (region eu-west-1, the function in
// us-east-1) shares it there; an accounts change follows to the copy.
func TestCopyToRegion(t *testing.T) {
	w := newCopyWorld(t, euConfig)
	src, srcSnaps, err := w.fx.RegisterImage(w.ctx, "golden", []fixture.Disk{{KeyID: w.homeKey}, {KeyID: w.homeKey}},
		map[string]string{amitag.Accounts: acctA, amitag.Regions: away})
	if err != nil {
		t.Fatal(err)
	}

	sum, r := w.handle(t, eventFile(t, "ami-available.json", src))
	if r.code != 0 || len(sum.Images) != 1 {
		t.Fatalf("handle: %s", r)
	}
	res := sum.Images[0]
	if res.Status != rules.StatusShared {
		t.Errorf("status: got %q (%s), want shared", res.Status, res.Message)
	}
	wantContains(t, "message", res.Message, "copies in "+away)
	wantContains(t, "metrics", r.stderr, `"ImagesCopied":1`)
	w.wantShared(t, src, srcSnaps, acctA)
	if got := w.calls.Count("CopyImage"); got != 1 {
		t.Errorf("CopyImage calls: got %d, want 1", got)
	}
	cp := w.onlyCopy(t, w.eu, src)
	cpID := aws.ToString(cp.ImageId)
	ct := tagsOf(cp)
	wantTag(t, ct, amitag.Accounts, acctA)
	wantTag(t, ct, amitag.Source, home+"/"+src)
	if _, ok := ct[amitag.Regions]; ok {
		t.Errorf("copy has %s: a copy must never be copied again", amitag.Regions)
	}
	cpSnaps := w.wantCopyEncrypted(t, w.eu, cp, 2, w.euKey)
	wantTag(t, w.tags(t, w.fx, src), amitag.Copies, away+"="+cpID)
	if got := w.copies(t, w.fx, src); len(got) != 0 {
		t.Errorf("copies in %s: got %d, want none", home, len(got))
	}

	// Rerun: the same event again makes no second copy.
	if _, r = w.handle(t, eventFile(t, "ami-available.json", src)); r.code != 0 {
		t.Fatalf("rerun: %s", r)
	}
	if got := w.calls.Count("CopyImage"); got != 0 {
		t.Errorf("CopyImage calls on rerun: got %d, want 0", got)
	}
	wantContains(t, "metrics", r.stderr, `"ImagesCopied":0`)
	w.onlyCopy(t, w.eu, src)

	// The copy's available event comes from eu-west-1: it is shared there.
	sum, r = w.handle(t, regionEvent(t, "ami-available.json", cpID, away))
	if r.code != 0 || len(sum.Images) != 1 || sum.Images[0].Status != rules.StatusShared {
		t.Fatalf("copy's event: %s", r)
	}
	w.wantSharedIn(t, w.eu, cpID, cpSnaps, acctA)
	if got := w.keyAccounts(t, w.eu, w.euKey); !slices.Equal(got, []string{acctA}) {
		t.Errorf("eu key accounts: got %v, want [%s]", got, acctA)
	}
	if got := w.keyAccounts(t, w.fx, w.homeKey); !slices.Equal(got, []string{acctA}) {
		t.Errorf("home key accounts: got %v, want [%s]", got, acctA)
	}

	// The operator CLI plans the copy in its region; nothing to change.
	r = runCLI(t, "", "plan", "--region", away, cpID)
	if res := decode[share.Result](t, r); r.code != 0 || res.Outcome != share.OutcomePlanned || res.Status != rules.StatusShared || len(res.Changes) != 0 {
		t.Errorf("plan --region %s %s: %s", away, cpID, r)
	}
	if r := runCLI(t, "", "plan", "--region", "eu_west", cpID); r.code != 2 {
		t.Errorf("plan --region eu_west: got exit %d, want 2", r.code)
	}

	// The source's accounts change: the copy's tag follows, and its own tag
	// change event (in eu-west-1) reconciles it.
	if err := w.fx.Tag(w.ctx, src, map[string]string{amitag.Accounts: acctA + " " + acctB}); err != nil {
		t.Fatal(err)
	}
	if _, r := w.handle(t, eventFile(t, "tag-change.json", src)); r.code != 0 {
		t.Fatalf("tag change: %s", r)
	}
	w.wantShared(t, src, srcSnaps, acctA, acctB)
	wantTag(t, w.tags(t, w.eu, cpID), amitag.Accounts, acctA+" "+acctB)
	if got := w.calls.Count("CopyImage"); got != 0 {
		t.Errorf("CopyImage calls on an accounts change: got %d, want 0", got)
	}
	if _, r := w.handle(t, regionEvent(t, "tag-change.json", cpID, away)); r.code != 0 {
		t.Fatalf("copy's tag change: %s", r)
	}
	w.wantSharedIn(t, w.eu, cpID, cpSnaps, acctA, acctB)

	// The region leaves the tag: the copy is unshared, kept, and dropped from amishare:copies.
	if err := w.fx.Tag(w.ctx, src, map[string]string{amitag.Regions: ""}); err != nil {
		t.Fatal(err)
	}
	if _, r := w.handle(t, eventFile(t, "tag-change.json", src)); r.code != 0 {
		t.Fatalf("region removed: %s", r)
	}
	wantTag(t, w.tags(t, w.eu, cpID), amitag.Accounts, "")
	wantTag(t, w.tags(t, w.fx, src), amitag.Copies, "")
	if _, r := w.handle(t, regionEvent(t, "tag-change.json", cpID, away)); r.code != 0 {
		t.Fatalf("copy's tag change: %s", r)
	}
	w.wantSharedIn(t, w.eu, cpID, cpSnaps)
	w.onlyCopy(t, w.eu, src) // never deregistered
}

// TestCopyConcurrentHandlers: two handlers reconciling the same image at
// once make one copy (the same ClientToken), and a lost amishare:copies tag
// never causes a second one.
func TestCopyConcurrentHandlers(t *testing.T) {
	w := newCopyWorld(t, euConfig)
	w.hook(t, barrier(2, 20*time.Second))
	src, _ := w.image(t, 1, map[string]string{amitag.Accounts: acctA, amitag.Regions: away})
	path := eventFile(t, "ami-available.json", src)
	var wg sync.WaitGroup
	results := make([]result, 2)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = runCLI(t, "", "handle", path)
		}()
	}
	wg.Wait()
	for _, r := range results {
		if r.code != 0 {
			t.Errorf("handle: %s", r)
		}
	}
	if got := w.calls.Count("CopyImage"); got != 2 {
		t.Errorf("CopyImage calls: got %d, want 2 (one per handler, one token)", got)
	}
	cp := w.onlyCopy(t, w.eu, src)
	// An unencrypted source with a key configured: the copy is encrypted anyway.
	w.wantCopyEncrypted(t, w.eu, cp, 1, w.euKey)

	if err := w.fx.Untag(w.ctx, src, amitag.Copies); err != nil {
		t.Fatal(err)
	}
	if _, r := w.handle(t, path); r.code != 0 {
		t.Fatalf("handle: %s", r)
	}
	if got := w.calls.Count("CopyImage"); got != 0 {
		t.Errorf("CopyImage calls after the copies tag was lost: got %d, want 0", got)
	}
	w.onlyCopy(t, w.eu, src)
	wantTag(t, w.tags(t, w.fx, src), amitag.Copies, away+"="+aws.ToString(cp.ImageId))
}

// TestCopyRefusals: regions not allowed or not region names are refused and
// named; an encrypted image is not copied to a region without a key.
func TestCopyRefusals(t *testing.T) {
	config := func(_, euKey string) string {
		return fmt.Sprintf(`{"allowedAccounts":["%s"],"allowedRegions":["%s","eu-central-1"],"copyKeys":{"%s":"%s"}}`, acctA, away, away, euKey)
	}
	tests := []struct {
		name       string
		encrypted  bool
		regions    string
		status     rules.Status
		msg        []string
		copiedToEU bool
	}{
		{"region not allowed", false, away + " ap-south-1,bogus", rules.StatusPartial,
			[]string{`"ap-south-1" (region is not in allowedRegions)`, `"bogus" (not a region name)`, "copies in " + away}, true},
		{"every region refused", false, "ap-south-1", rules.StatusError,
			[]string{`"ap-south-1" (region is not in allowedRegions)`}, false},
		{"encrypted, no key for the region", true, "eu-central-1", rules.StatusError,
			[]string{`not copied to eu-central-1`, `copyKeys["eu-central-1"]`}, false},
		{"encrypted, one region without key", true, "eu-central-1 " + away, rules.StatusPartial,
			[]string{`copyKeys["eu-central-1"]`, "copies in " + away}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newCopyWorld(t, config)
			disk := fixture.Disk{}
			if tc.encrypted {
				disk.KeyID = w.homeKey
			}
			src, _, err := w.fx.RegisterImage(w.ctx, "img", []fixture.Disk{disk}, map[string]string{amitag.Accounts: acctA, amitag.Regions: tc.regions})
			if err != nil {
				t.Fatal(err)
			}
			sum, r := w.handle(t, eventFile(t, "ami-available.json", src))
			if len(sum.Images) != 1 {
				t.Fatalf("handle: %s", r)
			}
			res := sum.Images[0]
			if res.Status != tc.status {
				t.Errorf("status: got %q (%s), want %q", res.Status, res.Message, tc.status)
			}
			if want := tc.status == rules.StatusError; (r.code == 1) != want {
				t.Errorf("exit code %d, want 1 only for status error", r.code)
			}
			tags := w.tags(t, w.fx, src)
			for _, m := range tc.msg {
				wantContains(t, "amishare:message", tags[amitag.Message], m)
			}
			w.wantShared(t, src, nil, acctA) // the image itself is shared all the same
			n := len(w.copies(t, w.eu, src))
			if (n == 1) != tc.copiedToEU || n > 1 {
				t.Errorf("copies in %s: got %d, want copied=%v", away, n, tc.copiedToEU)
			}
			for _, region := range []string{"ap-south-1", "eu-central-1"} {
				if got := w.copies(t, w.fx.In(region), src); len(got) != 0 {
					t.Errorf("copies in %s: got %d, want none", region, len(got))
				}
			}
		})
	}
}

// TestReencryptAWSManagedKey: an image under the AWS managed key is not
// shared; a copy re-encrypted with copyKeys[us-east-1] is made in the same
// region and shared through its own event.
func TestReencryptAWSManagedKey(t *testing.T) {
	config := func(homeKey, _ string) string {
		return fmt.Sprintf(`{"allowedAccounts":["%s"],"copyKeys":{"%s":"%s"}}`, acctA, home, homeKey)
	}
	w := newCopyWorld(t, config)
	src, srcSnaps, err := w.fx.RegisterImage(w.ctx, "aws-managed", []fixture.Disk{{Encrypted: true}, {Encrypted: true}}, map[string]string{amitag.Accounts: acctA})
	if err != nil {
		t.Fatal(err)
	}
	sum, r := w.handle(t, eventFile(t, "ami-available.json", src))
	if r.code != 0 || len(sum.Images) != 1 {
		t.Fatalf("handle: %s", r)
	}
	cp := w.onlyCopy(t, w.fx, src)
	cpID := aws.ToString(cp.ImageId)
	res := sum.Images[0]
	if res.Status != rules.StatusCopied {
		t.Errorf("status: got %q (%s), want copied", res.Status, res.Message)
	}
	wantContains(t, "message", res.Message, "re-encrypted copy "+cpID)
	tags := w.tags(t, w.fx, src)
	wantTag(t, tags, amitag.Status, "copied")
	wantTag(t, tags, amitag.Copies, home+"="+cpID)
	w.wantShared(t, src, srcSnaps) // the source stays unshared
	ct := tagsOf(cp)
	wantTag(t, ct, amitag.Accounts, acctA)
	wantTag(t, ct, amitag.Source, home+"/"+src)
	if aws.ToString(cp.Name) == "aws-managed" {
		t.Errorf("copy name %q: want one unique in the region", aws.ToString(cp.Name))
	}
	cpSnaps := w.wantCopyEncrypted(t, w.fx, cp, 2, w.homeKey)

	// The copy's own event shares it with the source's accounts.
	sum, r = w.handle(t, eventFile(t, "ami-available.json", cpID))
	if r.code != 0 || sum.Images[0].Status != rules.StatusShared {
		t.Fatalf("copy's event: %s", r)
	}
	w.wantShared(t, cpID, cpSnaps, acctA)
	if got := w.keyAccounts(t, w.fx, w.homeKey); !slices.Equal(got, []string{acctA}) {
		t.Errorf("key accounts: got %v, want [%s]", got, acctA)
	}
	// Reconciling the source again changes nothing.
	if _, r := w.handle(t, eventFile(t, "ami-available.json", src)); r.code != 0 {
		t.Fatalf("rerun: %s", r)
	}
	if got := w.calls.Mutating(); len(got) != 0 {
		t.Errorf("modifying calls on rerun: got %v, want none", got)
	}
}

// TestCopyDryRun: the plan lists each copy with its region and key; no
// CopyImage, no tag.
func TestCopyDryRun(t *testing.T) {
	w := newCopyWorld(t, euConfig)
	src, _ := w.image(t, 1, map[string]string{amitag.Accounts: acctA, amitag.Regions: away})
	sum, r := w.handle(t, eventFile(t, "ami-available.json", src), "--dry-run")
	if r.code != 0 || len(sum.Images) != 1 {
		t.Fatalf("handle: %s", r)
	}
	res := sum.Images[0]
	if res.Plan == nil || len(res.Plan.Copies) != 1 {
		t.Fatalf("plan copies: got %+v, want one", res.Plan)
	}
	c := res.Plan.Copies[0]
	if c.Action != rules.CopyActionCopy || c.Region != away || c.KMSKeyID != w.euKey || c.Accounts != acctA {
		t.Errorf("planned copy: got %+v, want copy to %s with key %s", c, away, w.euKey)
	}
	if got := w.calls.Mutating(); len(got) != 0 {
		t.Errorf("modifying calls in a dry run: got %v, want none", got)
	}
	if got := w.copies(t, w.eu, src); len(got) != 0 {
		t.Errorf("copies after a dry run: got %d, want none", len(got))
	}
	wantContains(t, "stderr", r.stderr, `"planned copy change (dry run)"`)
}

// TestCopyFailed: a copy that fails (its key does not exist) is reported on
// the source by the copy's failed event; the next reconcile copies again
// with a new token.
func TestCopyFailed(t *testing.T) {
	missing := "arn:aws:kms:eu-west-1:123456789012:key/00000000-0000-4000-8000-000000000000"
	w := newCopyWorld(t, func(_, _ string) string {
		return fmt.Sprintf(`{"allowedAccounts":["%s"],"allowedRegions":["%s"],"copyKeys":{"%s":"%s"}}`, acctA, away, away, missing)
	})
	src, _ := w.image(t, 1, map[string]string{amitag.Accounts: acctA, amitag.Regions: away})
	if _, r := w.handle(t, eventFile(t, "ami-available.json", src)); r.code != 0 {
		t.Fatalf("handle: %s", r)
	}
	failed := w.onlyCopy(t, w.eu, src)
	failedID := aws.ToString(failed.ImageId)
	if failed.State != ec2types.ImageStateFailed {
		t.Fatalf("copy state: got %q, want failed", failed.State)
	}

	sum, r := w.handle(t, regionEvent(t, "ami-failed.json", failedID, away))
	if r.code != 0 || len(sum.Images) != 1 || sum.Images[0].Outcome != share.OutcomeApplied {
		t.Fatalf("failed event: %s", r)
	}
	tags := w.tags(t, w.fx, src)
	wantContains(t, "source message", tags[amitag.Message], "copy "+failedID+" to "+away+" failed")
	wantTag(t, tags, amitag.Status, "partial")
	if got := w.calls.Count("CopyImage"); got != 0 {
		t.Errorf("CopyImage calls on the failed event: got %d, want 0 (the next reconcile retries)", got)
	}

	// With the key fixed, the next reconcile copies again with a new token.
	w.putConfig(t, euConfig("", w.euKey))
	sum, r = w.handle(t, eventFile(t, "tag-change.json", src))
	if r.code != 0 || len(sum.Images) != 1 {
		t.Fatalf("retry: %s", r)
	}
	if got := w.calls.Count("CopyImage"); got != 1 {
		t.Errorf("CopyImage calls on retry: got %d, want 1", got)
	}
	steps := sum.Images[0].Plan.Copies
	if len(steps) != 1 || steps[0].RetryOf != failedID || steps[0].Token == rules.CopyToken(src, away, "") {
		t.Errorf("retry step: got %+v, want a copy retrying %s with a new token", steps, failedID)
	}
	var good ec2types.Image
	for _, img := range w.copies(t, w.eu, src) {
		if img.State == ec2types.ImageStateAvailable {
			good = img
		}
	}
	if good.ImageId == nil {
		t.Fatalf("no available copy after the retry")
	}
	w.wantCopyEncrypted(t, w.eu, good, 1, w.euKey)
	tags = w.tags(t, w.fx, src)
	wantTag(t, tags, amitag.Copies, away+"="+aws.ToString(good.ImageId))
	wantTag(t, tags, amitag.Status, "shared")
	wantContains(t, "source message", tags[amitag.Message], "copy "+failedID+" to "+away+" failed, copying again")

	// The old failure's event, delivered again, no longer concerns the source.
	sum, r = w.handle(t, regionEvent(t, "ami-failed.json", failedID, away))
	if r.code != 0 || len(sum.Images) != 1 || sum.Images[0].Outcome != share.OutcomeSkipped {
		t.Fatalf("stale failed event: %s", r)
	}
	if got := w.calls.Mutating(); len(got) != 0 {
		t.Errorf("modifying calls for a superseded copy's failure: got %v, want none", got)
	}
}

// TestCopyFailedConfigDryRun: with the configuration's dryRun on, a copy's
// failed event writes nothing on the source, as every other reconcile.
func TestCopyFailedConfigDryRun(t *testing.T) {
	missing := "arn:aws:kms:eu-west-1:123456789012:key/00000000-0000-4000-8000-000000000000"
	doc := func(dryRun bool) string {
		return fmt.Sprintf(`{"allowedAccounts":["%s"],"allowedRegions":["%s"],"copyKeys":{"%s":"%s"},"dryRun":%v}`, acctA, away, away, missing, dryRun)
	}
	w := newCopyWorld(t, func(_, _ string) string { return doc(false) })
	src, _ := w.image(t, 1, map[string]string{amitag.Accounts: acctA, amitag.Regions: away})
	if _, r := w.handle(t, eventFile(t, "ami-available.json", src)); r.code != 0 {
		t.Fatalf("handle: %s", r)
	}
	failedID := aws.ToString(w.onlyCopy(t, w.eu, src).ImageId)
	before := w.tags(t, w.fx, src)

	w.putConfig(t, doc(true))
	sum, r := w.handle(t, regionEvent(t, "ami-failed.json", failedID, away))
	if r.code != 0 || len(sum.Images) != 1 {
		t.Fatalf("failed event: %s", r)
	}
	if res := sum.Images[0]; res.Outcome != share.OutcomePlanned || !res.DryRun || res.TagsWritten {
		t.Errorf("failed event under dryRun: got outcome %q, dryRun %v, tagsWritten %v; want planned, true, false", res.Outcome, res.DryRun, res.TagsWritten)
	}
	if got := w.calls.Mutating(); len(got) != 0 {
		t.Errorf("modifying calls under the configuration's dryRun: got %v, want none", got)
	}
	after := w.tags(t, w.fx, src)
	for _, k := range []string{amitag.Status, amitag.Message} {
		if after[k] != before[k] {
			t.Errorf("source tag %s: got %q, want it unchanged (%q)", k, after[k], before[k])
		}
	}
}

// TestCopiesTagInRegionsOrder: amishare:copies lists the copies in the
// order of amishare:regions, as the contract's example does
// (regions "eu-west-1 ap-southeast-2" -> "eu-west-1=ami-… ap-southeast-2=ami-…").
func TestCopiesTagInRegionsOrder(t *testing.T) {
	const ap = "ap-southeast-2"
	w := newCopyWorld(t, func(_, _ string) string {
		return fmt.Sprintf(`{"allowedAccounts":["%s"],"allowedRegions":["%s","%s"]}`, acctA, ap, away)
	})
	src, _ := w.image(t, 1, map[string]string{amitag.Accounts: acctA, amitag.Regions: away + " " + ap})
	if _, r := w.handle(t, eventFile(t, "ami-available.json", src)); r.code != 0 {
		t.Fatalf("handle: %s", r)
	}
	euID := aws.ToString(w.onlyCopy(t, w.eu, src).ImageId)
	apID := aws.ToString(w.onlyCopy(t, w.fx.In(ap), src).ImageId)
	wantTag(t, w.tags(t, w.fx, src), amitag.Copies, away+"="+euID+" "+ap+"="+apID)
}
