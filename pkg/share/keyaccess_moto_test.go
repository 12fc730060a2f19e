package share_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/kms"
	smithy "github.com/aws/smithy-go"

	"github.com/amishare/amishare/internal/testing/fixture"
	"github.com/amishare/amishare/pkg/amitag"
	"github.com/amishare/amishare/pkg/awserr"
	"github.com/amishare/amishare/pkg/awsid"
	"github.com/amishare/amishare/pkg/kmspolicy"
	"github.com/amishare/amishare/pkg/share"
	"github.com/amishare/amishare/pkg/share/rules"
)

const foreignAccount = "999988887777"

// TestForeignKeyIsBlockedWithoutFailing: a snapshot encrypted with another
// account's key. The key is recognised from its ARN without any KMS call
// (on AWS DescribeKey would be denied), the image is blocked with a message
// naming the key's account, the log holds the statement the owner must add,
// and Reconcile returns no error, so the event is not retried.
func TestForeignKeyIsBlockedWithoutFailing(t *testing.T) {
	e := newEnv(t, testConfig)
	foreign := fixture.ForeignKeyARN(foreignAccount)
	id, snaps := e.EncryptedImage(t, acctA+" "+acctB, foreign)

	res := e.reconcile(t, id) // fails the test on an error
	if res.Outcome != share.OutcomeBlocked || res.Status != rules.StatusError {
		t.Fatalf("outcome %q status %q, want blocked error", res.Outcome, res.Status)
	}
	e.WantStatus(t, id, rules.StatusError, "encrypted with key "+foreign+" of account "+foreignAccount)
	e.WantShared(t, id, snaps)
	for _, op := range []string{"DescribeKey", "GetKeyPolicy", "ListGrants"} {
		if n := e.Calls.Count(op); n != 0 {
			t.Errorf("%s calls = %d, want 0 for a key of another account", op, n)
		}
	}
	if got := e.Calls.Mutating(); !slices.Equal(got, []string{"CreateTags"}) {
		t.Errorf("modifying calls = %v, want only the status tags", got)
	}
	logs := e.Logs.String()
	want := kmspolicy.Statement([]string{acctA, acctB}, kmspolicy.KeyOf(foreign))
	if !strings.Contains(logs, "key belongs to another account") || !strings.Contains(logs, `"keyOwner":"`+foreignAccount+`"`) {
		t.Errorf("log has no statement for the key's owner:\n%s", logs)
	}
	for _, a := range []string{acctA, acctB} {
		if !strings.Contains(logs, `arn:aws:iam::`+a+`:root`) {
			t.Errorf("logged statement does not name %s:\n%s\nwant %s", a, logs, want)
		}
	}
}

// TestForeignKeyAccessDenied: the patched moto answers AccessDenied for
// another account's key, as AWS does (stock moto says NotFound).
func TestForeignKeyAccessDenied(t *testing.T) {
	e := newEnv(t, testConfig)
	_, err := kmspolicy.Describe(e.Ctx, e.Fixture.KMS, fixture.ForeignKeyARN(foreignAccount))
	if !awserr.IsAccessDenied(err) {
		t.Fatalf("DescribeKey on another account's key: got %v, want AccessDeniedException", err)
	}
}

// deniedKMS refuses DescribeKey, as KMS does for a key whose policy does not
// let this account's IAM in.
type deniedKMS struct{ share.KMSAPI }

func (deniedKMS) DescribeKey(context.Context, *kms.DescribeKeyInput, ...func(*kms.Options)) (*kms.DescribeKeyOutput, error) {
	return nil, &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "not authorized to perform: kms:DescribeKey"}
}

func TestDescribeKeyDeniedIsBlocked(t *testing.T) {
	e := newEnv(t, testConfig)
	k := e.Key(t)
	id, snaps := e.EncryptedImage(t, acctA, k)
	e.engine.KMS = deniedKMS{e.engine.KMS}

	res := e.reconcile(t, id)
	if res.Outcome != share.OutcomeBlocked {
		t.Fatalf("outcome %q, want blocked", res.Outcome)
	}
	e.WantStatus(t, id, rules.StatusError, "key "+k+" refuses this account's IAM (DescribeKey denied): its owner, account "+awsid.AccountOf(k)+", must allow")
	e.WantShared(t, id, snaps)
	// As for another account's key, the log holds the statement the key's
	// owner must add: amishare cannot change the key itself.
	logs := e.Logs.String()
	if !strings.Contains(logs, "key refuses this account's IAM: its owner must add this statement") ||
		!strings.Contains(logs, `"keyArn":"`+k+`"`) || !strings.Contains(logs, `arn:aws:iam::`+acctA+`:root`) {
		t.Errorf("log has no statement for the key's owner:\n%s", logs)
	}
}

// TestUndelegatedKeyIsBlocked: with the role's DelegatedKeysOnly (emulated by
// moto on request), a key without amishare:managed=true refuses the write; the
// image is blocked with a message naming the key and the tag, the event does
// not fail, and once the key is tagged the next run shares.
func TestUndelegatedKeyIsBlocked(t *testing.T) {
	for _, mode := range []string{"policy", "grant"} {
		t.Run(mode, func(t *testing.T) {
			e := newEnv(t, `{"allowedAccounts":["111122223333","444455556666"],"kms":"`+mode+`"}`)
			if err := e.Server.SetDelegatedKeysOnly(true); err != nil {
				t.Fatal(err)
			}
			k := e.Key(t)
			id, snaps := e.EncryptedImage(t, acctA, k)

			res := e.reconcile(t, id)
			if res.Outcome != share.OutcomeBlocked || res.Status != rules.StatusError {
				t.Fatalf("outcome %q status %q, want blocked error", res.Outcome, res.Status)
			}
			wantMsg := "key " + k + " is not delegated to amishare: tag the key amishare:managed = true"
			if res.Message != wantMsg {
				t.Errorf("message = %q, want %q", res.Message, wantMsg)
			}
			e.WantStatus(t, id, rules.StatusError, wantMsg)
			e.WantShared(t, id, snaps)
			if !strings.Contains(e.Logs.String(), "key not delegated to amishare") {
				t.Errorf("no log line for the refused key:\n%s", e.Logs)
			}

			if err := e.Fixture.TagKey(e.Ctx, k, map[string]string{amitag.KeyManaged: amitag.KeyManagedValue}); err != nil {
				t.Fatal(err)
			}
			res = e.reconcile(t, id)
			if res.Outcome != share.OutcomeApplied || res.Status != rules.StatusShared {
				t.Fatalf("after tagging the key: outcome %q status %q (%s), want applied shared", res.Outcome, res.Status, res.Message)
			}
			e.WantShared(t, id, snaps, acctA)
		})
	}
}
