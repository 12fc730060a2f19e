package share_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/amishare/amishare/internal/testing/world"
	"github.com/amishare/amishare/pkg/amitag"
	"github.com/amishare/amishare/pkg/app"
	"github.com/amishare/amishare/pkg/kmsgrant"
	"github.com/amishare/amishare/pkg/share"
	"github.com/amishare/amishare/pkg/share/rules"
)

// delegatedConfig is testConfig with delegatedKeysOnly, as the stack writes
// it by default.
var delegatedConfig = strings.Replace(testConfig, `{`, `{"delegatedKeysOnly":true,`, 1)

// TestDelegatedKeysOnlyInTheEngine: with delegatedKeysOnly the engine
// itself writes no key that is not tagged amishare:managed = true, whatever
// the caller's credentials allow (moto enforces no IAM: here the engine is
// the only guard), blocks the image with the tag to add, and shares once
// the key is tagged; in every mode that writes keys.
func TestDelegatedKeysOnlyInTheEngine(t *testing.T) {
	for _, mode := range []string{"policy", "grant"} {
		t.Run(mode, func(t *testing.T) {
			w := world.New(t, strings.Replace(delegatedConfig, `{`, `{"kms":"`+mode+`",`, 1))
			e := w.Engine(t, app.Options{})
			key := w.Key(t)
			id, snaps := w.EncryptedImage(t, acctA, key)

			w.Calls.Reset()
			res, err := e.Reconcile(w.Ctx, id, share.Options{})
			if err != nil || res.Outcome != share.OutcomeBlocked {
				t.Fatalf("Reconcile: %s, %v; want blocked", res.Outcome, err)
			}
			want := "key " + key + " is not delegated to amishare: tag the key amishare:managed = true"
			w.WantStatus(t, id, rules.StatusError, want)
			w.WantShared(t, id, snaps)
			for _, op := range []string{"PutKeyPolicy", "CreateGrant", "RevokeGrant"} {
				if n := w.Calls.Count(op); n != 0 {
					t.Errorf("%s calls: got %d, want none on an undelegated key", op, n)
				}
			}
			if n := w.Calls.Count("ListResourceTags"); n != 1 {
				t.Errorf("ListResourceTags calls: got %d, want 1", n)
			}
			if got := keyGives(t, w, mode, key); len(got) != 0 {
				t.Errorf("key gives %v, want nobody", got)
			}

			if err := w.Fixture.TagKey(w.Ctx, key, map[string]string{amitag.KeyManaged: amitag.KeyManagedValue}); err != nil {
				t.Fatal(err)
			}
			if res, err := e.Reconcile(w.Ctx, id, share.Options{}); err != nil || res.Status != rules.StatusShared {
				t.Fatalf("Reconcile once tagged: %s %s, %v; want shared", res.Outcome, res.Status, err)
			}
			w.WantShared(t, id, snaps, acctA)
			if got := keyGives(t, w, mode, key); !slices.Equal(got, []string{acctA}) {
				t.Errorf("key gives %v, want [%s]", got, acctA)
			}
		})
	}
}

// keyGives returns the accounts amishare let use the key in mode: its
// policy statements, or its grants.
func keyGives(t *testing.T, w *world.World, mode, key string) []string {
	t.Helper()
	if mode == "grant" {
		got, err := kmsgrant.Accounts(w.Ctx, w.Fixture.KMS, key)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	return w.KeyAccounts(t, key)
}

// TestDelegatedKeysOnlyWithoutIt: without delegatedKeysOnly an untagged key
// is written, and its tags are never read.
func TestDelegatedKeysOnlyWithoutIt(t *testing.T) {
	w := world.New(t, testConfig)
	key := w.Key(t)
	id, snaps := w.EncryptedImage(t, acctA, key)
	w.Calls.Reset()
	if res, err := w.Engine(t, app.Options{}).Reconcile(w.Ctx, id, share.Options{}); err != nil || res.Status != rules.StatusShared {
		t.Fatalf("Reconcile: %s %s, %v; want shared", res.Outcome, res.Status, err)
	}
	w.WantShared(t, id, snaps, acctA)
	if n := w.Calls.Count("ListResourceTags"); n != 0 {
		t.Errorf("ListResourceTags calls: got %d, want none", n)
	}
}

// TestPruneKeyDelegatedKeysOnly: keys prune edits no undelegated key either.
func TestPruneKeyDelegatedKeysOnly(t *testing.T) {
	w := world.New(t, testConfig)
	key := w.Key(t)
	shareEncrypted(t, w, key)
	w.PutConfig(t, strings.Replace(delegatedConfig, `{`, `{"kms":"grant",`, 1))
	w.Calls.Reset()
	pr, err := w.Engine(t, app.Options{}).PruneKey(w.Ctx, key, share.Options{})
	if err != nil || pr.Outcome != share.OutcomeBlocked || !strings.Contains(pr.Reason, "not delegated") || len(pr.Changes) != 0 {
		t.Fatalf("PruneKey: %+v, %v; want blocked, not delegated", pr, err)
	}
	if n := w.Calls.Count("PutKeyPolicy"); n != 0 {
		t.Errorf("PutKeyPolicy calls: got %d, want none", n)
	}
	if got := w.KeyAccounts(t, key); !slices.Equal(got, []string{acctA, acctB}) {
		t.Errorf("key: %v, want its statements untouched", got)
	}
}
