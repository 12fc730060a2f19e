package handler_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/amishare/amishare/internal/testing/faultinject"
	"github.com/amishare/amishare/internal/testing/fixture"
	"github.com/amishare/amishare/internal/testing/world"
	"github.com/amishare/amishare/pkg/amitag"
	"github.com/amishare/amishare/pkg/app"
	"github.com/amishare/amishare/pkg/awserr"
	"github.com/amishare/amishare/pkg/handler"
	"github.com/amishare/amishare/pkg/share"
	"github.com/amishare/amishare/pkg/share/rules"
)

// TestHandleRetriesThrottling throttles the first two calls of one
// modifying action: the SDK's retries absorb them and the event succeeds.
func TestHandleRetriesThrottling(t *testing.T) {
	tests := []struct {
		action string
		calls  int // calls of action a successful share makes
	}{
		{"ModifySnapshotAttribute", 3},
		{"ModifyImageAttribute", 1},
		{"PutKeyPolicy", 1},
	}
	for _, tc := range tests {
		t.Run(tc.action, func(t *testing.T) {
			w := world.New(t, testConfig)
			key := w.Key(t)
			id, snaps := w.Image(t, []fixture.Disk{{KeyID: key}, {KeyID: key}, {}}, map[string]string{amitag.Accounts: acctA + " " + acctB})
			faults := faultinject.New(faultinject.Rule{Action: tc.action, Times: 2, Kind: faultinject.Throttle})
			h := w.Handler(t, app.Options{HTTPClient: faults.Client()})

			sum, err := w.Handle(t, h, world.SampleEvent(t, "ami-available.json", id))
			if err != nil {
				t.Fatalf("Handle: got error %v, want the retries to absorb the throttling", err)
			}
			if got := faults.Injected(tc.action); got != 2 {
				t.Errorf("faults injected on %s: got %d, want 2", tc.action, got)
			}
			if got := faults.Passed(tc.action); got != tc.calls {
				t.Errorf("%s calls that reached AWS: got %d, want %d", tc.action, got, tc.calls)
			}
			// A retried call is one call for the call log.
			if got := w.Calls.Count(tc.action); got != tc.calls {
				t.Errorf("%s calls made: got %d, want %d", tc.action, got, tc.calls)
			}
			if res := sum.Images[0]; res.Outcome != share.OutcomeApplied || res.Status != rules.StatusShared {
				t.Errorf("result: got %s %s, want applied shared", res.Outcome, res.Status)
			}
			w.WantShared(t, id, snaps, acctA, acctB)
			if got := w.KeyAccounts(t, key); !slices.Equal(got, []string{acctA, acctB}) {
				t.Errorf("key policy accounts: got %v, want [%s %s]", got, acctA, acctB)
			}
			w.WantStatus(t, id, "shared", "shared with 2 account(s)")
			// The burst is visible, without an error.
			world.WantMetrics(t, w.Metrics(t, world.EventMetrics...), map[string]int{"Throttled": 2, "Errors": 0})
		})
	}
}

// TestHandleThrottlingOutlastsMaxAttempts: throttling is retried beyond
// the attempt count of other errors (here 2; a burst may throttle one call
// many times), and the event succeeds; the metrics show the throttling and
// no error.
func TestHandleThrottlingOutlastsMaxAttempts(t *testing.T) {
	const maxAttempts, times = 2, 4
	w := world.New(t, testConfig)
	id, snaps := w.PlainImage(t, 1, map[string]string{amitag.Accounts: acctA})
	faults := faultinject.New(faultinject.Rule{Action: "ModifyImageAttribute", Times: times, Kind: faultinject.Throttle})
	h := w.Handler(t, app.Options{HTTPClient: faults.Client(), MaxAttempts: maxAttempts})
	if _, err := w.Handle(t, h, world.SampleEvent(t, "ami-available.json", id)); err != nil {
		t.Fatalf("Handle: got error %v, want the retries to outlast %d throttled attempts", err, times)
	}
	if got := faults.Injected("ModifyImageAttribute"); got != times {
		t.Errorf("throttled attempts: got %d, want %d", got, times)
	}
	w.WantShared(t, id, snaps, acctA)
	world.WantMetrics(t, w.Metrics(t, world.EventMetrics...), map[string]int{"Throttled": times, "Errors": 0, "ImagesShared": 1})
}

// TestHandleThrottledUntilTheDeadline: a call AWS throttles without end is
// retried until EventMargin before the invocation's deadline, past the
// attempt count of other errors (here 2); then the event fails with a
// transient error, so that Lambda retries it, before the deadline cuts the
// invocation off.
func TestHandleThrottledUntilTheDeadline(t *testing.T) {
	const maxAttempts = 2
	w := world.New(t, testConfig)
	id, _ := w.PlainImage(t, 1, map[string]string{amitag.Accounts: acctA})
	faults := faultinject.New(faultinject.Rule{Action: "ModifyImageAttribute", Kind: faultinject.Throttle})
	h := w.Handler(t, app.Options{HTTPClient: faults.Client(), MaxAttempts: maxAttempts})
	deadline := time.Now().Add(2*handler.EventMargin + 3*time.Second)
	ctx, cancel := context.WithDeadline(w.Ctx, deadline)
	defer cancel()
	_, err := h.Handle(ctx, world.SampleEvent(t, "ami-available.json", id))
	if err == nil || !awserr.IsTransient(err) {
		t.Fatalf("Handle: got error %v, want a transient error (Lambda retries the event)", err)
	}
	if ctx.Err() != nil {
		t.Errorf("Handle returned after the invocation's deadline; want it EventMargin before: %v", err)
	}
	if got := faults.Injected("ModifyImageAttribute"); got <= maxAttempts {
		t.Errorf("throttled attempts: got %d, want more than %d", got, maxAttempts)
	}
	if got := faults.Passed("ModifyImageAttribute"); got != 0 {
		t.Errorf("ModifyImageAttribute calls that reached AWS: got %d, want 0", got)
	}
}

// TestHandleMaxAttempts checks the retry budget: app.MaxAttempts by
// default, Options.MaxAttempts when set.
func TestHandleMaxAttempts(t *testing.T) {
	tests := []struct {
		name string
		opt  int
		want int
	}{
		{"default", 0, app.MaxAttempts},
		{"option", 2, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := world.New(t, testConfig)
			id, _ := w.PlainImage(t, 1, map[string]string{amitag.Accounts: acctA})
			faults := faultinject.New(faultinject.Rule{Action: "DescribeImages", Kind: faultinject.ServerError})
			h := w.Handler(t, app.Options{HTTPClient: faults.Client(), MaxAttempts: tc.opt})
			if _, err := w.Handle(t, h, world.SampleEvent(t, "ami-available.json", id)); err == nil {
				t.Fatal("Handle: got nil error, want the failure of DescribeImages")
			}
			if got := faults.Injected("DescribeImages"); got != tc.want {
				t.Errorf("attempts: got %d, want %d", got, tc.want)
			}
		})
	}
}

// TestHandleFailureIsSafeAndConverges makes every call of one modifying
// action fail. The event fails (so Lambda retries it); what was done before
// is safe: nothing is shared outside the allowlist and nothing is public.
// A later delivery without faults converges.
func TestHandleFailureIsSafeAndConverges(t *testing.T) {
	tests := []struct {
		action string
		// snapshotsShared: the targets already have the snapshots when the call fails.
		snapshotsShared bool
		imageShared     bool
	}{
		{action: "ModifyImageAttribute", snapshotsShared: true},
		// The snapshots' record (amishare:image) is written before anything
		// is shared: when tagging fails, the removals are done, nothing is added.
		{action: "CreateTags"},
		{action: "ModifySnapshotAttribute"},
		{action: "PutKeyPolicy"},
	}
	for _, tc := range tests {
		t.Run(tc.action, func(t *testing.T) {
			w := world.New(t, testConfig)
			key := w.Key(t)
			id, snaps := w.Image(t, []fixture.Disk{{}, {KeyID: key}, {}}, map[string]string{amitag.Accounts: acctA + " " + acctB})
			// Someone shared the last snapshot with an account outside the allowlist.
			w.ShareSnapshot(t, snaps[2], []string{outsider}, nil)
			faults := faultinject.New(faultinject.Rule{Action: tc.action, Kind: faultinject.ServerError})
			h := w.Handler(t, app.Options{HTTPClient: faults.Client(), MaxAttempts: 3})
			raw := world.SampleEvent(t, "ami-available.json", id)

			sum, err := w.Handle(t, h, raw)
			if err == nil {
				t.Fatalf("Handle: got nil error, want the failure of %s", tc.action)
			}
			if !strings.Contains(err.Error(), id) {
				t.Errorf("error: got %q, want it to name %s", err, id)
			}
			// Each failing call was tried MaxAttempts times, no more (a
			// failed record is followed by a failed status write).
			if n := faults.Injected(tc.action); n == 0 || n%3 != 0 {
				t.Fatalf("faults injected on %s: %d, want each call tried MaxAttempts = 3 times", tc.action, n)
			}
			if sum.Error != err.Error() || len(sum.Images) != 1 || sum.Images[0].Outcome != share.OutcomeFailed {
				t.Errorf("summary: got error %q images %+v, want the error and one failed image", sum.Error, sum.Images)
			}
			world.WantMetrics(t, metricsLine(t, w), map[string]int{"Errors": 1})

			w.WantOnlyAllowed(t, id, snaps[:2], allowed...)
			if p := w.SnapshotPerms(t, snaps[2]); p.Public || (slices.Contains(p.Accounts, outsider) && tc.action != "ModifySnapshotAttribute") {
				t.Errorf("snapshot %s: got %v public=%v, want the outsider removed", snaps[2], p.Accounts, p.Public)
			}
			image := w.ImagePerms(t, id)
			if tc.imageShared != slices.Equal(image.Accounts, []string{acctA, acctB}) || (!tc.imageShared && len(image.Accounts) != 0) {
				t.Errorf("image after the failure: got %v, want shared=%v", image.Accounts, tc.imageShared)
			}
			if len(image.Accounts) > 0 {
				// The image is only ever shared after everything behind it.
				for _, s := range snaps {
					if p := w.SnapshotPerms(t, s); !slices.Equal(p.Accounts, image.Accounts) {
						t.Errorf("image shared with %v but snapshot %s with %v", image.Accounts, s, p.Accounts)
					}
				}
			}
			if tc.snapshotsShared {
				for _, s := range snaps {
					if p := w.SnapshotPerms(t, s); !slices.Equal(p.Accounts, []string{acctA, acctB}) {
						t.Errorf("snapshot %s after the failure: got %v, want [%s %s]", s, p.Accounts, acctA, acctB)
					}
				}
			}
			if tc.action != "CreateTags" {
				w.WantStatus(t, id, "error", "incomplete, will be retried")
			}

			// The retry, without faults, finishes the job.
			sum, err = w.Handle(t, w.Handler(t, app.Options{}), raw)
			if err != nil {
				t.Fatalf("second delivery: %v", err)
			}
			if res := sum.Images[0]; res.Outcome != share.OutcomeApplied || res.Status != rules.StatusShared {
				t.Errorf("second delivery: got %s %s, want applied shared", res.Outcome, res.Status)
			}
			w.WantShared(t, id, snaps, acctA, acctB)
			if got := w.KeyAccounts(t, key); !slices.Equal(got, []string{acctA, acctB}) {
				t.Errorf("key policy accounts: got %v, want [%s %s]", got, acctA, acctB)
			}
			w.WantStatus(t, id, "shared", "shared with 2 account(s)")

			// And a third changes nothing.
			if _, err := w.Handle(t, w.Handler(t, app.Options{}), raw); err != nil {
				t.Fatalf("third delivery: %v", err)
			}
			if got := w.Calls.Mutating(); len(got) != 0 {
				t.Errorf("third delivery: got modifying calls %v, want none", got)
			}
		})
	}
}

// TestHandleFailedRevokeIsSafe fails the image's launch-permission change
// while revoking: nothing behind the image may be revoked before the image,
// so the account is never left with an image it cannot launch.
func TestHandleFailedRevokeIsSafe(t *testing.T) {
	w := world.New(t, testConfig)
	id, snaps := w.PlainImage(t, 2, map[string]string{amitag.Accounts: acctA + " " + acctB})
	raw := world.SampleEvent(t, "tag-change.json", id)
	if _, err := w.Handle(t, w.Handler(t, app.Options{}), raw); err != nil {
		t.Fatal(err)
	}
	w.Tag(t, id, map[string]string{amitag.Accounts: acctA})
	faults := faultinject.New(faultinject.Rule{Action: "ModifyImageAttribute", Kind: faultinject.Unavailable})
	if _, err := w.Handle(t, w.Handler(t, app.Options{HTTPClient: faults.Client(), MaxAttempts: 2}), raw); err == nil {
		t.Fatal("Handle: got nil error, want the failure of ModifyImageAttribute")
	}
	// Nothing changed: the image's removal comes first.
	w.WantShared(t, id, snaps, acctA, acctB)
	if got := w.Calls.Count("ModifySnapshotAttribute"); got != 0 {
		t.Errorf("ModifySnapshotAttribute calls after the image failed: got %d, want 0", got)
	}
	if _, err := w.Handle(t, w.Handler(t, app.Options{}), raw); err != nil {
		t.Fatalf("retry: %v", err)
	}
	w.WantShared(t, id, snaps, acctA)
	w.WantStatus(t, id, "shared", "shared with 1 account(s)")
}

// TestHandlePublicImageWhenPrivatizingFails: the image stays in status
// error, and nothing is added while it cannot be made private.
func TestHandlePublicImageWhenPrivatizingFails(t *testing.T) {
	w := world.New(t, testConfig)
	id, snaps := w.PlainImage(t, 1, map[string]string{amitag.Accounts: acctA})
	w.ShareImage(t, id, ec2types.LaunchPermission{Group: ec2types.PermissionGroupAll})
	faults := faultinject.New(faultinject.Rule{Action: "ModifyImageAttribute", Kind: faultinject.ServerError})
	if _, err := w.Handle(t, w.Handler(t, app.Options{HTTPClient: faults.Client(), MaxAttempts: 2}), world.SampleEvent(t, "ami-available.json", id)); err == nil {
		t.Fatal("Handle: got nil error, want the failure of ModifyImageAttribute")
	}
	if got := w.Calls.Count("ModifySnapshotAttribute"); got != 0 {
		t.Errorf("ModifySnapshotAttribute calls while the image is still public: got %d, want 0", got)
	}
	w.WantStatus(t, id, "error", "incomplete, will be retried")
	if _, err := w.Handle(t, w.Handler(t, app.Options{}), world.SampleEvent(t, "ami-available.json", id)); err != nil {
		t.Fatalf("retry: %v", err)
	}
	w.WantShared(t, id, snaps, acctA)
}

// TestHandleSnapshotShareRefusedByTheRole: the function's role shares
// snapshots only with the stack's AllowedAccounts, so IAM refuses an
// account the configuration allows only through a group. No retry can fix
// that: the event succeeds, the image is not shared with anyone new, its
// status says which accounts to add to AllowedAccounts, and what its tag no
// longer names is still removed.
func TestHandleSnapshotShareRefusedByTheRole(t *testing.T) {
	w := world.New(t, testConfig)
	id, snaps := w.PlainImage(t, 1, map[string]string{amitag.Accounts: acctB})
	raw := world.SampleEvent(t, "tag-change.json", id)
	if _, err := w.Handle(t, w.Handler(t, app.Options{}), raw); err != nil {
		t.Fatal(err)
	}
	w.Tag(t, id, map[string]string{amitag.Accounts: acctA})
	// The snapshot's first change removes B; the second, adding A, is refused.
	faults := faultinject.New(faultinject.Rule{Action: "ModifySnapshotAttribute", Kind: faultinject.Denied, Skip: 1, Times: 1})
	sum, err := w.Handle(t, w.Handler(t, app.Options{HTTPClient: faults.Client()}), raw)
	if err != nil {
		t.Fatalf("Handle: %v; want the event to succeed (no retry can fix an IAM refusal)", err)
	}
	if faults.Injected("ModifySnapshotAttribute") != 1 {
		t.Fatalf("refusals injected: %d, want 1", faults.Injected("ModifySnapshotAttribute"))
	}
	if len(sum.Images) != 1 || sum.Images[0].Outcome != share.OutcomeBlocked {
		t.Fatalf("summary %+v, want the image blocked", sum.Images)
	}
	// B, no longer named, is gone from the image and its snapshot; A was
	// not added anywhere.
	if p := w.ImagePerms(t, id); len(p.Accounts) != 0 {
		t.Errorf("image shared with %v, want nobody", p.Accounts)
	}
	if p := w.SnapshotPerms(t, snaps[0]); len(p.Accounts) != 0 {
		t.Errorf("snapshot shared with %v, want nobody", p.Accounts)
	}
	tags := w.Tags(t, id)
	if tags[amitag.Status] != string(rules.StatusError) || !strings.Contains(tags[amitag.Message], "AllowedAccounts") || !strings.Contains(tags[amitag.Message], acctA) {
		t.Errorf("status %q message %q, want error naming %s and AllowedAccounts", tags[amitag.Status], tags[amitag.Message], acctA)
	}
	// Once the role allows it (here: no fault), the next event shares it.
	if _, err := w.Handle(t, w.Handler(t, app.Options{}), raw); err != nil {
		t.Fatal(err)
	}
	w.WantShared(t, id, snaps, acctA)
}
