package share_test

import (
	"context"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/amishare/amishare/internal/testing/fixture"
	"github.com/amishare/amishare/pkg/amitag"
	"github.com/amishare/amishare/pkg/kmsgrant"
	"github.com/amishare/amishare/pkg/kmspolicy"
	"github.com/amishare/amishare/pkg/share"
	"github.com/amishare/amishare/pkg/share/rules"
)

func TestEncryptedImageKeyPolicies(t *testing.T) {
	e := newEnv(t, testConfig)
	k1, k2 := e.Key(t), e.Key(t)
	before1, before2 := e.OtherStatements(t, k1), e.OtherStatements(t, k2)
	id, snaps := e.EncryptedImage(t, acctA+" "+acctB, k1, k1, k2)

	res := e.reconcile(t, id)
	if res.Status != rules.StatusShared {
		t.Fatalf("status = %q (%s), want shared", res.Status, res.Message)
	}
	e.WantShared(t, id, snaps, acctA, acctB)
	for _, k := range []string{k1, k2} {
		if got := e.KeyAccounts(t, k); !slices.Equal(got, []string{acctA, acctB}) {
			t.Errorf("key %s grants %v, want [%s %s]", k, got, acctA, acctB)
		}
	}
	if got := e.OtherStatements(t, k1); !reflect.DeepEqual(got, before1) {
		t.Errorf("key 1's other statements changed:\n got %v\nwant %v", got, before1)
	}
	if got := e.OtherStatements(t, k2); !reflect.DeepEqual(got, before2) {
		t.Errorf("key 2's other statements changed:\n got %v\nwant %v", got, before2)
	}
	// The snapshots' record, keys, then snapshots, then the image.
	want := []string{"CreateTags", "PutKeyPolicy", "PutKeyPolicy", "ModifySnapshotAttribute", "ModifySnapshotAttribute", "ModifySnapshotAttribute", "ModifyImageAttribute", "CreateTags"}
	if got := e.Calls.Mutating(); !slices.Equal(got, want) {
		t.Errorf("modifying calls = %v, want %v", got, want)
	}

	// Idempotent: nothing to write the second time.
	e.reconcile(t, id)
	if got := e.Calls.Mutating(); len(got) != 0 {
		t.Errorf("second run made modifying calls %v", got)
	}

	// Revoking B: the image, then snapshots, then the keys.
	e.Tag(t, id, map[string]string{amitag.Accounts: acctA})
	e.reconcile(t, id)
	e.WantShared(t, id, snaps, acctA)
	want = []string{"ModifyImageAttribute", "ModifySnapshotAttribute", "ModifySnapshotAttribute", "ModifySnapshotAttribute", "PutKeyPolicy", "PutKeyPolicy", "CreateTags"}
	if got := e.Calls.Mutating(); !slices.Equal(got, want) {
		t.Errorf("revoke calls = %v, want %v", got, want)
	}
	for _, k := range []string{k1, k2} {
		if got := e.KeyAccounts(t, k); !slices.Equal(got, []string{acctA}) {
			t.Errorf("key %s grants %v after revoke, want [%s]", k, got, acctA)
		}
	}
}

func TestRevokeKeepsKeyNeededByAnotherImage(t *testing.T) {
	e := newEnv(t, testConfig)
	k := e.Key(t)
	img1, _ := e.EncryptedImage(t, acctA+" "+acctB, k)
	img2, _ := e.EncryptedImage(t, acctA, k)
	e.reconcile(t, img1)
	e.reconcile(t, img2)
	if got := e.KeyAccounts(t, k); !slices.Equal(got, []string{acctA, acctB}) {
		t.Fatalf("key grants %v, want [%s %s]", got, acctA, acctB)
	}

	// img1 drops A and B: B leaves the key, A stays because img2 still needs it.
	e.Tag(t, img1, map[string]string{amitag.Accounts: ""})
	e.reconcile(t, img1)
	if got := e.KeyAccounts(t, k); !slices.Equal(got, []string{acctA}) {
		t.Errorf("key grants %v, want [%s] (still needed by %s)", got, acctA, img2)
	}
	if p := e.ImagePerms(t, img1); len(p.Accounts) != 0 {
		t.Errorf("img1 still shared with %v", p.Accounts)
	}

	// img2 drops A: now nothing needs A on the key.
	e.Tag(t, img2, map[string]string{amitag.Accounts: ""})
	e.reconcile(t, img2)
	if got := e.KeyAccounts(t, k); len(got) != 0 {
		t.Errorf("key grants %v, want nobody", got)
	}
}

func TestGrantMode(t *testing.T) {
	e := newEnv(t, `{"allowedAccounts":["111122223333","444455556666"],"kms":"grant"}`)
	k := e.Key(t)
	policyBefore := e.KeyPolicy(t, k)
	id, snaps := e.EncryptedImage(t, acctA+" "+acctB, k, k)
	e.reconcile(t, id)
	e.WantShared(t, id, snaps, acctA, acctB)
	if got := grantAccounts(t, e, k); !slices.Equal(got, []string{acctA, acctB}) {
		t.Errorf("grants for %v, want [%s %s]", got, acctA, acctB)
	}
	if n := e.Calls.Count("PutKeyPolicy"); n != 0 {
		t.Errorf("grant mode wrote the key policy %d times", n)
	}
	if after := e.KeyPolicy(t, k); after != policyBefore {
		t.Errorf("grant mode changed the key policy")
	}
	e.reconcile(t, id)
	if got := e.Calls.Mutating(); len(got) != 0 {
		t.Errorf("second run made modifying calls %v", got)
	}
	e.Tag(t, id, map[string]string{amitag.Accounts: acctB})
	e.reconcile(t, id)
	if got := grantAccounts(t, e, k); !slices.Equal(got, []string{acctB}) {
		t.Errorf("grants for %v after revoke, want [%s]", got, acctB)
	}
	if n := e.Calls.Count("RevokeGrant"); n != 1 {
		t.Errorf("RevokeGrant calls = %d, want 1", n)
	}
}

func grantAccounts(t *testing.T, e *env, keyARN string) []string {
	t.Helper()
	a, err := kmsgrant.Accounts(e.Ctx, e.Fixture.KMS, keyARN)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestAWSManagedKeyIsRefused(t *testing.T) {
	e := newEnv(t, testConfig)
	id, snaps := e.Image(t, []fixture.Disk{{}, {Encrypted: true}}, map[string]string{amitag.Accounts: acctA})
	res := e.reconcile(t, id)
	if res.Outcome != share.OutcomeBlocked {
		t.Errorf("outcome = %q, want blocked", res.Outcome)
	}
	e.WantStatus(t, id, rules.StatusError, `configure copyKeys["us-east-1"]`)
	e.WantShared(t, id, snaps) // nobody: neither image nor any snapshot
	if got := e.Calls.Mutating(); !slices.Equal(got, []string{"CreateTags"}) {
		t.Errorf("modifying calls = %v, want only the status tags", got)
	}
}

func TestKMSOffRefusesCustomerKey(t *testing.T) {
	e := newEnv(t, `{"allowedAccounts":["111122223333"],"kms":"off"}`)
	k := e.Key(t)
	id, snaps := e.EncryptedImage(t, acctA, k)
	e.reconcile(t, id)
	e.WantStatus(t, id, rules.StatusError, `"kms": "off"`)
	e.WantShared(t, id, snaps)
	if got := e.KeyAccounts(t, k); len(got) != 0 {
		t.Errorf("kms off touched the key: %v", got)
	}
}

func TestKeyPolicyTooLargeIsRefused(t *testing.T) {
	e := newEnv(t, testConfig)
	k := e.Key(t)
	policy := e.KeyPolicy(t, k)
	// Pad the key policy to just under KMS's limit with a condition on a real statement.
	var doc map[string]any
	if err := json.Unmarshal([]byte(policy), &doc); err != nil {
		t.Fatal(err)
	}
	stmts := doc["Statement"].([]any)
	stmts = append(stmts, map[string]any{"Sid": "padding", "Effect": "Deny", "Principal": map[string]any{"AWS": "*"}, "Action": "kms:Decrypt", "Resource": "*",
		"Condition": map[string]any{"StringEquals": map[string]any{"aws:PrincipalTag/x": ""}}})
	doc["Statement"] = stmts
	b, _ := json.Marshal(doc)
	pad := kmspolicy.MaxPolicyBytes - len(b) - 50
	stmts[len(stmts)-1].(map[string]any)["Condition"] = map[string]any{"StringEquals": map[string]any{"aws:PrincipalTag/x": strings.Repeat("p", pad)}}
	b, _ = json.Marshal(doc)
	if _, err := e.Fixture.KMS.PutKeyPolicy(e.Ctx, &kms.PutKeyPolicyInput{KeyId: aws.String(k), PolicyName: aws.String("default"), Policy: aws.String(string(b))}); err != nil {
		t.Fatal(err)
	}
	id, snaps := e.EncryptedImage(t, acctA, k)
	e.reconcile(t, id)
	e.WantStatus(t, id, rules.StatusError, "limit")
	e.WantShared(t, id, snaps)
	if n := e.Calls.Count("PutKeyPolicy"); n != 0 {
		t.Errorf("PutKeyPolicy calls = %d, want 0", n)
	}
}

// racingKMS holds each engine's first PutKeyPolicy until both engines have
// read the key policy and are about to write, and returns from it only once
// both first writes are done: the lost-update race KMS's unconditional
// PutKeyPolicy allows, with both read-backs after both writes, which is the
// case the read-back catches. (A writer whose read-back comes before a
// stale writer's write cannot notice; its next reconcile restores it.)
type racingKMS struct {
	share.KMSAPI
	before, after *barrier
	puts          *atomic.Int32
	once          sync.Once
}

type barrier struct {
	n    atomic.Int32
	want int32
	done chan struct{}
}

func newBarrier(n int32) *barrier { return &barrier{want: n, done: make(chan struct{})} }

// wait arrives at the barrier and waits (at most 10 s) for the others.
func (b *barrier) wait() {
	if b.n.Add(1) == b.want {
		close(b.done)
	}
	select {
	case <-b.done:
	case <-time.After(10 * time.Second):
	}
}

func (r *racingKMS) PutKeyPolicy(ctx context.Context, in *kms.PutKeyPolicyInput, opts ...func(*kms.Options)) (*kms.PutKeyPolicyOutput, error) {
	first := false
	r.once.Do(func() { first = true; r.before.wait() })
	r.puts.Add(1)
	out, err := r.KMSAPI.PutKeyPolicy(ctx, in, opts...)
	if first {
		r.after.wait()
	}
	return out, err
}

func TestConcurrentHandlersSharingOneKey(t *testing.T) {
	e := newEnv(t, testConfig)
	k := e.Key(t)
	img1, _ := e.EncryptedImage(t, acctA, k)
	img2, _ := e.EncryptedImage(t, acctB, k)

	before, after := newBarrier(2), newBarrier(2)
	var puts atomic.Int32
	engines := make([]*share.Engine, 2)
	for i := range engines {
		eng := *e.engine
		eng.KMS = &racingKMS{KMSAPI: e.engine.KMS, before: before, after: after, puts: &puts}
		engines[i] = &eng
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, img := range []string{img1, img2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = engines[i].Reconcile(e.Ctx, img, share.Options{})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("engine %d: %v", i, err)
		}
	}
	if got := e.KeyAccounts(t, k); !slices.Equal(got, []string{acctA, acctB}) {
		t.Errorf("after concurrent updates the key grants %v, want [%s %s]: an update was lost", got, acctA, acctB)
	}
	// Both first writes started from the same policy, so one was overwritten
	// and had to be applied again.
	if n := puts.Load(); n < 3 {
		t.Errorf("PutKeyPolicy calls = %d, want at least 3 (the race was not exercised)", n)
	}
}
