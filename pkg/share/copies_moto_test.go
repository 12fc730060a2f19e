package share_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/amishare/amishare/internal/testing/fixture"
	"github.com/amishare/amishare/internal/testing/moto"
	"github.com/amishare/amishare/internal/testing/world"
	"github.com/amishare/amishare/pkg/amitag"
	"github.com/amishare/amishare/pkg/app"
	"github.com/amishare/amishare/pkg/handler"
	"github.com/amishare/amishare/pkg/share"
	"github.com/amishare/amishare/pkg/share/rules"
)

// The function runs in us-east-1 (AWS_REGION, moto's default); copies go to eu-west-1.
const (
	home = moto.Region
	away = "eu-west-1"
)

// copyWorld is a world with a customer-managed key in each region and the
// configuration allowing copies to eu-west-1 with its key. Its events are
// delivered through the handler, as the Lambda and the CLI deliver them.
type copyWorld struct {
	*world.World
	eu             *world.World
	homeKey, euKey string
	// extra are added to the API options of every handler it builds.
	extra []func(*middleware.Stack) error
}

func newCopyWorld(t *testing.T, configFor func(homeKey, euKey string) string) *copyWorld {
	t.Helper()
	w := &copyWorld{World: world.New(t, "")}
	w.eu = w.In(away)
	w.homeKey, w.euKey = w.Key(t), w.eu.Key(t)
	w.PutConfig(t, configFor(w.homeKey, w.euKey))
	return w
}

// handler builds a handler as one Lambda container (or one CLI run) does:
// the configuration is read afresh.
func (w *copyWorld) handler(t *testing.T, opts app.Options) *handler.Handler {
	t.Helper()
	opts.APIOptions = append(opts.APIOptions, w.extra...)
	return w.Handler(t, opts)
}

// handle delivers raw to a new handler with a fresh call log; an error fails t.
func (w *copyWorld) handle(t *testing.T, raw []byte, opts app.Options) handler.Summary {
	t.Helper()
	sum, err := w.Handle(t, w.handler(t, opts), raw)
	if err != nil {
		t.Fatalf("Handle: %v (summary %+v)", err, sum)
	}
	return sum
}

// ok reports whether no image of sum ended in status error (the CLI's exit 0).
func ok(sum handler.Summary) bool {
	return !slices.ContainsFunc(sum.Images, func(r share.Result) bool { return r.Status == rules.StatusError })
}

// copyBarrier holds every CopyImage call at b until all have arrived, so
// that concurrent handlers really race for the copy.
func copyBarrier(b *barrier) func(*middleware.Stack) error {
	return func(stack *middleware.Stack) error {
		return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("copyBarrier",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				if awsmiddleware.GetOperationName(ctx) == "CopyImage" {
					b.wait()
				}
				return next.HandleInitialize(ctx, in)
			}), middleware.After)
	}
}

// euConfig allows A and B, copies to eu-west-1 with its key.
func euConfig(_, euKey string) string {
	return fmt.Sprintf(`{"allowedAccounts":["%s","%s"],"allowedRegions":["%s"],"copyKeys":{"%s":"%s"}}`, acctA, acctB, away, away, euKey)
}

// copiesOf lists the images in w's region tagged amishare:source = home/src.
func copiesOf(t *testing.T, w *world.World, src string) []ec2types.Image {
	t.Helper()
	imgs, err := w.Fixture.ImagesTagged(w.Ctx, amitag.Source, home+"/"+src)
	if err != nil {
		t.Fatal(err)
	}
	return imgs
}

func onlyCopy(t *testing.T, w *world.World, src string) ec2types.Image {
	t.Helper()
	imgs := copiesOf(t, w, src)
	if len(imgs) != 1 {
		t.Fatalf("copies of %s: got %d, want 1", src, len(imgs))
	}
	return imgs[0]
}

func tagsOf(img ec2types.Image) map[string]string {
	m := map[string]string{}
	for _, t := range img.Tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

// wantCopyEncrypted checks every snapshot of the copy uses key.
func wantCopyEncrypted(t *testing.T, w *world.World, img ec2types.Image, n int, key string) []string {
	t.Helper()
	snaps, keys, err := w.Fixture.SnapshotKeys(w.Ctx, img)
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
	src, srcSnaps, err := w.Fixture.RegisterImage(w.Ctx, "golden", []fixture.Disk{{KeyID: w.homeKey}, {KeyID: w.homeKey}},
		map[string]string{amitag.Accounts: acctA, amitag.Regions: away})
	if err != nil {
		t.Fatal(err)
	}

	sum := w.handle(t, world.SampleEvent(t, "ami-available.json", src), app.Options{})
	if !ok(sum) || len(sum.Images) != 1 {
		t.Fatalf("handle: %+v", sum)
	}
	res := sum.Images[0]
	if res.Status != rules.StatusShared {
		t.Errorf("status: got %q (%s), want shared", res.Status, res.Message)
	}
	wantContains(t, "message", res.Message, "copies in "+away)
	world.WantMetrics(t, w.Metrics(t, world.EventMetrics...), map[string]int{"ImagesCopied": 1})
	w.WantShared(t, src, srcSnaps, acctA)
	if got := w.Calls.Count("CopyImage"); got != 1 {
		t.Errorf("CopyImage calls: got %d, want 1", got)
	}
	cp := onlyCopy(t, w.eu, src)
	cpID := aws.ToString(cp.ImageId)
	ct := tagsOf(cp)
	wantTag(t, ct, amitag.Accounts, acctA)
	wantTag(t, ct, amitag.Source, home+"/"+src)
	if _, ok := ct[amitag.Regions]; ok {
		t.Errorf("copy has %s: a copy must never be copied again", amitag.Regions)
	}
	cpSnaps := wantCopyEncrypted(t, w.eu, cp, 2, w.euKey)
	wantTag(t, w.Tags(t, src), amitag.Copies, away+"="+cpID)
	if got := copiesOf(t, w.World, src); len(got) != 0 {
		t.Errorf("copies in %s: got %d, want none", home, len(got))
	}

	// Rerun: the same event again makes no second copy.
	if sum := w.handle(t, world.SampleEvent(t, "ami-available.json", src), app.Options{}); !ok(sum) {
		t.Fatalf("rerun: %+v", sum)
	}
	if got := w.Calls.Count("CopyImage"); got != 0 {
		t.Errorf("CopyImage calls on rerun: got %d, want 0", got)
	}
	world.WantMetrics(t, w.Metrics(t, world.EventMetrics...), map[string]int{"ImagesCopied": 0})
	onlyCopy(t, w.eu, src)

	// The copy's available event comes from eu-west-1: it is shared there.
	sum = w.handle(t, world.RegionEvent(t, "ami-available.json", cpID, away), app.Options{})
	if !ok(sum) || len(sum.Images) != 1 || sum.Images[0].Status != rules.StatusShared {
		t.Fatalf("copy's event: %+v", sum)
	}
	w.eu.WantShared(t, cpID, cpSnaps, acctA)
	if got := w.eu.KeyAccounts(t, w.euKey); !slices.Equal(got, []string{acctA}) {
		t.Errorf("eu key accounts: got %v, want [%s]", got, acctA)
	}
	if got := w.KeyAccounts(t, w.homeKey); !slices.Equal(got, []string{acctA}) {
		t.Errorf("home key accounts: got %v, want [%s]", got, acctA)
	}

	// Planning the copy in its region (the CLI's plan --region, see
	// cmd/amishare): nothing to change.
	res, err = w.handler(t, app.Options{DryRun: true}).Reconcile(w.Ctx, away, cpID)
	if err != nil || res.Outcome != share.OutcomePlanned || res.Status != rules.StatusShared || len(res.Changes) != 0 {
		t.Errorf("plan %s in %s: got %+v, %v; want planned, shared, no change", cpID, away, res, err)
	}

	// The source's accounts change: the copy's tag follows, and its own tag
	// change event (in eu-west-1) reconciles it.
	w.Tag(t, src, map[string]string{amitag.Accounts: acctA + " " + acctB})
	if sum := w.handle(t, world.SampleEvent(t, "tag-change.json", src), app.Options{}); !ok(sum) {
		t.Fatalf("tag change: %+v", sum)
	}
	w.WantShared(t, src, srcSnaps, acctA, acctB)
	wantTag(t, w.eu.Tags(t, cpID), amitag.Accounts, acctA+" "+acctB)
	if got := w.Calls.Count("CopyImage"); got != 0 {
		t.Errorf("CopyImage calls on an accounts change: got %d, want 0", got)
	}
	if sum := w.handle(t, world.RegionEvent(t, "tag-change.json", cpID, away), app.Options{}); !ok(sum) {
		t.Fatalf("copy's tag change: %+v", sum)
	}
	w.eu.WantShared(t, cpID, cpSnaps, acctA, acctB)

	// The region leaves the tag: the copy is unshared, kept, and dropped from amishare:copies.
	w.Tag(t, src, map[string]string{amitag.Regions: ""})
	if sum := w.handle(t, world.SampleEvent(t, "tag-change.json", src), app.Options{}); !ok(sum) {
		t.Fatalf("region removed: %+v", sum)
	}
	wantTag(t, w.eu.Tags(t, cpID), amitag.Accounts, "")
	wantTag(t, w.Tags(t, src), amitag.Copies, "")
	if sum := w.handle(t, world.RegionEvent(t, "tag-change.json", cpID, away), app.Options{}); !ok(sum) {
		t.Fatalf("copy's tag change: %+v", sum)
	}
	w.eu.WantShared(t, cpID, cpSnaps)
	onlyCopy(t, w.eu, src) // never deregistered
}

// TestCopyConcurrentHandlers: two handlers reconciling the same image at
// once make one copy (the same ClientToken), and a lost amishare:copies tag
// never causes a second one.
func TestCopyConcurrentHandlers(t *testing.T) {
	w := newCopyWorld(t, euConfig)
	w.extra = append(w.extra, copyBarrier(newBarrier(2)))
	src, _ := w.PlainImage(t, 1, map[string]string{amitag.Accounts: acctA, amitag.Regions: away})
	raw := world.SampleEvent(t, "ami-available.json", src)
	hs := []*handler.Handler{w.handler(t, app.Options{}), w.handler(t, app.Options{})}
	sums, errs := make([]handler.Summary, len(hs)), make([]error, len(hs))
	w.Calls.Reset()
	var wg sync.WaitGroup
	for i, h := range hs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sums[i], errs[i] = h.Handle(w.Ctx, raw)
		}()
	}
	wg.Wait()
	for i := range hs {
		if errs[i] != nil || !ok(sums[i]) {
			t.Errorf("handle: %+v, %v", sums[i], errs[i])
		}
	}
	if got := w.Calls.Count("CopyImage"); got != 2 {
		t.Errorf("CopyImage calls: got %d, want 2 (one per handler, one token)", got)
	}
	cp := onlyCopy(t, w.eu, src)
	// An unencrypted source with a key configured: the copy is encrypted anyway.
	wantCopyEncrypted(t, w.eu, cp, 1, w.euKey)

	w.Untag(t, src, amitag.Copies)
	if sum := w.handle(t, raw, app.Options{}); !ok(sum) {
		t.Fatalf("handle: %+v", sum)
	}
	if got := w.Calls.Count("CopyImage"); got != 0 {
		t.Errorf("CopyImage calls after the copies tag was lost: got %d, want 0", got)
	}
	onlyCopy(t, w.eu, src)
	wantTag(t, w.Tags(t, src), amitag.Copies, away+"="+aws.ToString(cp.ImageId))
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
			src, _ := w.Image(t, []fixture.Disk{disk}, map[string]string{amitag.Accounts: acctA, amitag.Regions: tc.regions})
			sum := w.handle(t, world.SampleEvent(t, "ami-available.json", src), app.Options{})
			if len(sum.Images) != 1 {
				t.Fatalf("handle: %+v", sum)
			}
			res := sum.Images[0]
			if res.Status != tc.status {
				t.Errorf("status: got %q (%s), want %q", res.Status, res.Message, tc.status)
			}
			if want := tc.status == rules.StatusError; ok(sum) == want {
				t.Errorf("a failed image: got %v, want %v only for status error", !ok(sum), want)
			}
			tags := w.Tags(t, src)
			for _, m := range tc.msg {
				wantContains(t, "amishare:message", tags[amitag.Message], m)
			}
			w.WantShared(t, src, nil, acctA) // the image itself is shared all the same
			n := len(copiesOf(t, w.eu, src))
			if (n == 1) != tc.copiedToEU || n > 1 {
				t.Errorf("copies in %s: got %d, want copied=%v", away, n, tc.copiedToEU)
			}
			for _, region := range []string{"ap-south-1", "eu-central-1"} {
				if got := copiesOf(t, w.In(region), src); len(got) != 0 {
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
	src, srcSnaps, err := w.Fixture.RegisterImage(w.Ctx, "aws-managed", []fixture.Disk{{Encrypted: true}, {Encrypted: true}}, map[string]string{amitag.Accounts: acctA})
	if err != nil {
		t.Fatal(err)
	}
	sum := w.handle(t, world.SampleEvent(t, "ami-available.json", src), app.Options{})
	if !ok(sum) || len(sum.Images) != 1 {
		t.Fatalf("handle: %+v", sum)
	}
	cp := onlyCopy(t, w.World, src)
	cpID := aws.ToString(cp.ImageId)
	res := sum.Images[0]
	if res.Status != rules.StatusCopied {
		t.Errorf("status: got %q (%s), want copied", res.Status, res.Message)
	}
	wantContains(t, "message", res.Message, "re-encrypted copy "+cpID)
	tags := w.Tags(t, src)
	wantTag(t, tags, amitag.Status, "copied")
	wantTag(t, tags, amitag.Copies, home+"="+cpID)
	w.WantShared(t, src, srcSnaps) // the source stays unshared
	ct := tagsOf(cp)
	wantTag(t, ct, amitag.Accounts, acctA)
	wantTag(t, ct, amitag.Source, home+"/"+src)
	if aws.ToString(cp.Name) == "aws-managed" {
		t.Errorf("copy name %q: want one unique in the region", aws.ToString(cp.Name))
	}
	cpSnaps := wantCopyEncrypted(t, w.World, cp, 2, w.homeKey)

	// The copy's own event shares it with the source's accounts.
	sum = w.handle(t, world.SampleEvent(t, "ami-available.json", cpID), app.Options{})
	if !ok(sum) || sum.Images[0].Status != rules.StatusShared {
		t.Fatalf("copy's event: %+v", sum)
	}
	w.WantShared(t, cpID, cpSnaps, acctA)
	if got := w.KeyAccounts(t, w.homeKey); !slices.Equal(got, []string{acctA}) {
		t.Errorf("key accounts: got %v, want [%s]", got, acctA)
	}
	// Reconciling the source again changes nothing.
	if sum := w.handle(t, world.SampleEvent(t, "ami-available.json", src), app.Options{}); !ok(sum) {
		t.Fatalf("rerun: %+v", sum)
	}
	if got := w.Calls.Mutating(); len(got) != 0 {
		t.Errorf("modifying calls on rerun: got %v, want none", got)
	}
}

// TestCopyDryRun: the plan lists each copy with its region and key; no
// CopyImage, no tag.
func TestCopyDryRun(t *testing.T) {
	w := newCopyWorld(t, euConfig)
	src, _ := w.PlainImage(t, 1, map[string]string{amitag.Accounts: acctA, amitag.Regions: away})
	sum := w.handle(t, world.SampleEvent(t, "ami-available.json", src), app.Options{DryRun: true})
	if !ok(sum) || len(sum.Images) != 1 {
		t.Fatalf("handle: %+v", sum)
	}
	res := sum.Images[0]
	if res.Plan == nil || len(res.Plan.Copies) != 1 {
		t.Fatalf("plan copies: got %+v, want one", res.Plan)
	}
	c := res.Plan.Copies[0]
	if c.Action != rules.CopyActionCopy || c.Region != away || c.KMSKeyID != w.euKey || c.Accounts != acctA {
		t.Errorf("planned copy: got %+v, want copy to %s with key %s", c, away, w.euKey)
	}
	if got := w.Calls.Mutating(); len(got) != 0 {
		t.Errorf("modifying calls in a dry run: got %v, want none", got)
	}
	if got := copiesOf(t, w.eu, src); len(got) != 0 {
		t.Errorf("copies after a dry run: got %d, want none", len(got))
	}
	if len(w.LinesWithMsg(t, "planned copy change (dry run)")) == 0 {
		t.Errorf("log: no %q line\n%s", "planned copy change (dry run)", w.Logs)
	}
}

// TestCopyFailed: a copy that fails (its key does not exist) is reported on
// the source by the copy's failed event; the next reconcile copies again
// with a new token.
func TestCopyFailed(t *testing.T) {
	missing := "arn:aws:kms:eu-west-1:123456789012:key/00000000-0000-4000-8000-000000000000"
	w := newCopyWorld(t, func(_, _ string) string {
		return fmt.Sprintf(`{"allowedAccounts":["%s"],"allowedRegions":["%s"],"copyKeys":{"%s":"%s"}}`, acctA, away, away, missing)
	})
	src, _ := w.PlainImage(t, 1, map[string]string{amitag.Accounts: acctA, amitag.Regions: away})
	if sum := w.handle(t, world.SampleEvent(t, "ami-available.json", src), app.Options{}); !ok(sum) {
		t.Fatalf("handle: %+v", sum)
	}
	failed := onlyCopy(t, w.eu, src)
	failedID := aws.ToString(failed.ImageId)
	if failed.State != ec2types.ImageStateFailed {
		t.Fatalf("copy state: got %q, want failed", failed.State)
	}

	sum := w.handle(t, world.RegionEvent(t, "ami-failed.json", failedID, away), app.Options{})
	if !ok(sum) || len(sum.Images) != 1 || sum.Images[0].Outcome != share.OutcomeApplied {
		t.Fatalf("failed event: %+v", sum)
	}
	tags := w.Tags(t, src)
	wantContains(t, "source message", tags[amitag.Message], "copy "+failedID+" to "+away+" failed")
	wantTag(t, tags, amitag.Status, "partial")
	if got := w.Calls.Count("CopyImage"); got != 0 {
		t.Errorf("CopyImage calls on the failed event: got %d, want 0 (the next reconcile retries)", got)
	}

	// With the key fixed, the next reconcile copies again with a new token.
	w.PutConfig(t, euConfig("", w.euKey))
	sum = w.handle(t, world.SampleEvent(t, "tag-change.json", src), app.Options{})
	if !ok(sum) || len(sum.Images) != 1 {
		t.Fatalf("retry: %+v", sum)
	}
	if got := w.Calls.Count("CopyImage"); got != 1 {
		t.Errorf("CopyImage calls on retry: got %d, want 1", got)
	}
	steps := sum.Images[0].Plan.Copies
	if len(steps) != 1 || steps[0].RetryOf != failedID || steps[0].Token == rules.CopyToken(src, away, "") {
		t.Errorf("retry step: got %+v, want a copy retrying %s with a new token", steps, failedID)
	}
	var good ec2types.Image
	for _, img := range copiesOf(t, w.eu, src) {
		if img.State == ec2types.ImageStateAvailable {
			good = img
		}
	}
	if good.ImageId == nil {
		t.Fatalf("no available copy after the retry")
	}
	wantCopyEncrypted(t, w.eu, good, 1, w.euKey)
	tags = w.Tags(t, src)
	wantTag(t, tags, amitag.Copies, away+"="+aws.ToString(good.ImageId))
	wantTag(t, tags, amitag.Status, "shared")
	wantContains(t, "source message", tags[amitag.Message], "copy "+failedID+" to "+away+" failed, copying again")

	// The old failure's event, delivered again, no longer concerns the source.
	sum = w.handle(t, world.RegionEvent(t, "ami-failed.json", failedID, away), app.Options{})
	if !ok(sum) || len(sum.Images) != 1 || sum.Images[0].Outcome != share.OutcomeSkipped {
		t.Fatalf("stale failed event: %+v", sum)
	}
	if got := w.Calls.Mutating(); len(got) != 0 {
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
	src, _ := w.PlainImage(t, 1, map[string]string{amitag.Accounts: acctA, amitag.Regions: away})
	if sum := w.handle(t, world.SampleEvent(t, "ami-available.json", src), app.Options{}); !ok(sum) {
		t.Fatalf("handle: %+v", sum)
	}
	failedID := aws.ToString(onlyCopy(t, w.eu, src).ImageId)
	before := w.Tags(t, src)

	w.PutConfig(t, doc(true))
	sum := w.handle(t, world.RegionEvent(t, "ami-failed.json", failedID, away), app.Options{})
	if !ok(sum) || len(sum.Images) != 1 {
		t.Fatalf("failed event: %+v", sum)
	}
	if res := sum.Images[0]; res.Outcome != share.OutcomePlanned || !res.DryRun || res.TagsWritten {
		t.Errorf("failed event under dryRun: got outcome %q, dryRun %v, tagsWritten %v; want planned, true, false", res.Outcome, res.DryRun, res.TagsWritten)
	}
	if got := w.Calls.Mutating(); len(got) != 0 {
		t.Errorf("modifying calls under the configuration's dryRun: got %v, want none", got)
	}
	after := w.Tags(t, src)
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
	src, _ := w.PlainImage(t, 1, map[string]string{amitag.Accounts: acctA, amitag.Regions: away + " " + ap})
	if sum := w.handle(t, world.SampleEvent(t, "ami-available.json", src), app.Options{}); !ok(sum) {
		t.Fatalf("handle: %+v", sum)
	}
	euID := aws.ToString(onlyCopy(t, w.eu, src).ImageId)
	apID := aws.ToString(onlyCopy(t, w.In(ap), src).ImageId)
	wantTag(t, w.Tags(t, src), amitag.Copies, away+"="+euID+" "+ap+"="+apID)
}

// TestCopyRetriesAreCapped: a copy that keeps failing (here its key does
// not exist) is made again by every reconcile that is no tag change only
// until rules.MaxCopyAttempts copies failed; then the source's message says
// so, and only a tag change tries once more.
func TestCopyRetriesAreCapped(t *testing.T) {
	missing := "arn:aws:kms:eu-west-1:123456789012:key/00000000-0000-4000-8000-000000000000"
	w := newCopyWorld(t, func(_, _ string) string {
		return fmt.Sprintf(`{"allowedAccounts":["%s"],"allowedRegions":["%s"],"copyKeys":{"%s":"%s"}}`, acctA, away, away, missing)
	})
	src, _ := w.PlainImage(t, 1, map[string]string{amitag.Accounts: acctA, amitag.Regions: away})
	available := world.SampleEvent(t, "ami-available.json", src)
	for attempt := 1; attempt <= rules.MaxCopyAttempts; attempt++ {
		w.handle(t, available, app.Options{})
		if got := len(copiesOf(t, w.eu, src)); got != attempt {
			t.Fatalf("after reconcile %d: %d failed copies, want %d", attempt, got, attempt)
		}
	}
	sum := w.handle(t, available, app.Options{})
	if got := w.Calls.Count("CopyImage"); got != 0 {
		t.Errorf("reconcile after %d failed copies: %d CopyImage calls, want none", rules.MaxCopyAttempts, got)
	}
	wantContains(t, "source message", sum.Images[0].Message, fmt.Sprintf("copies to %s failed %d times", away, rules.MaxCopyAttempts))
	wantContains(t, "source message", w.Tags(t, src)[amitag.Message], "until a tag of the image changes")

	// A tag change tries once more.
	w.handle(t, world.SampleEvent(t, "tag-change.json", src), app.Options{})
	if got := w.Calls.Count("CopyImage"); got != 1 {
		t.Errorf("tag change after the cap: %d CopyImage calls, want 1", got)
	}
}
