package rules

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/amishare/amishare/pkg/config"
	"github.com/amishare/amishare/pkg/kmspolicy"
)

// The rules of revocation: what a tag no longer names loses access,
// whatever blocks an addition; nothing is decided from a read that failed.

const (
	handShared = "999999999999" // shared by hand, named by no tag
	keyForeign = "arn:aws:kms:us-east-1:210987654321:key/f"
)

// revokable is an image shared with A, B and one account by hand, whose
// tag now names only A.
func revokable(keys ...KeyState) State {
	perms := Perms{Accounts: []string{acctA, acctB, handShared}}
	st := State{ImageID: "ami-1", Owner: owner, Image: perms, Keys: keys,
		Snapshots: []SnapshotState{{ID: "snap-1", Owner: owner, Perms: perms, Images: []string{"ami-1"}}}}
	if len(keys) > 0 {
		st.Snapshots[0].Encrypted, st.Snapshots[0].KeyARN = true, keys[0].ARN
	}
	return st
}

func TestBlockedImageStillLosesWhatTheTagNoLongerNames(t *testing.T) {
	removeBoth := Diff{Remove: []string{acctB, handShared}}
	tests := []struct {
		name    string
		in      Input
		keys    []KeyDiff
		blocked string
	}{
		{"kms off with a customer key", Input{KMS: config.ModeOff, State: revokable(KeyState{ARN: keyX, Owner: owner, Manager: ManagerCustomer})},
			nil, `"kms": "off"`},
		{"a key of another account", Input{KMS: config.ModePolicy, State: revokable(KeyState{ARN: keyForeign, Owner: "210987654321"})},
			nil, "of account 210987654321"},
		{"the AWS managed key", Input{KMS: config.ModePolicy, State: revokable(KeyState{ARN: keyY, Owner: owner, Manager: ManagerAWS})},
			nil, "AWS managed key"},
		{"DescribeKey denied", Input{KMS: config.ModePolicy, State: revokable(KeyState{ARN: keyX, Owner: owner, Denied: true})},
			nil, "DescribeKey denied"},
		{"a snapshot of another account", Input{State: func() State {
			st := revokable()
			st.Snapshots = append(st.Snapshots, SnapshotState{ID: "snap-9", Owner: "210987654321"})
			return st
		}()}, nil, "only its owner"},
		{"too many targets", Input{Targets: targets(append(manyAccounts(1001), acctA)...), State: revokable()}, nil, "at most 1000"},
		{"a key policy that would pass 32 KiB", Input{Targets: targets(append(manyAccounts(10), acctA)...), KMS: config.ModePolicy, State: revokable(KeyState{ARN: keyX, Owner: owner, Manager: ManagerCustomer,
			Accounts: []string{acctB}, Policy: bigPolicy(t, 32000)})},
			[]KeyDiff{{KeyARN: keyX, Remove: []string{acctB}}}, "exceed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			if in.Targets.Len() == 0 {
				in.Targets = targets(acctA)
			}
			d := Decide(in)
			if d.Status != StatusError || !strings.Contains(d.Message, tc.blocked) || len(d.Blocked) == 0 {
				t.Errorf("status %q message %q, want error naming %q", d.Status, d.Message, tc.blocked)
			}
			if !slices.Equal(d.Plan.Image.Remove, removeBoth.Remove) || len(d.Plan.Image.Add) != 0 {
				t.Errorf("image: got %+v, want %+v and nothing added", d.Plan.Image, removeBoth)
			}
			if len(d.Plan.Snapshots) == 0 || !slices.Equal(d.Plan.Snapshots[0].Remove, removeBoth.Remove) || len(d.Plan.Snapshots[0].Add) != 0 {
				t.Errorf("snapshots: got %+v, want snap-1 to lose %v and gain nothing", d.Plan.Snapshots, removeBoth.Remove)
			}
			if !slices.EqualFunc(d.Plan.Keys, tc.keys, func(a, b KeyDiff) bool { return fmt.Sprint(a) == fmt.Sprint(b) }) {
				t.Errorf("keys: got %+v, want %+v", d.Plan.Keys, tc.keys)
			}
			if len(d.Plan.Record) != 0 {
				t.Errorf("record: got %+v, want none (nothing is shared)", d.Plan.Record)
			}
		})
	}
}

func TestBlockedImageIsMadePrivate(t *testing.T) {
	st := revokable(KeyState{ARN: keyX, Owner: owner, Manager: ManagerCustomer})
	st.Image.Public, st.Snapshots[0].Perms.Public = true, true
	d := Decide(Input{Targets: targets(acctA), KMS: config.ModeOff, State: st})
	if !d.Plan.Image.MakePrivate || !d.Plan.Snapshots[0].MakePrivate {
		t.Errorf("got %+v, want the image and its snapshot made private", d.Plan)
	}
}

func TestNothingIsDecidedFromAFailedRead(t *testing.T) {
	key := KeyState{ARN: keyX, Owner: owner, Manager: ManagerCustomer, Unread: true}
	st := revokable(key)
	st.Snapshots = append(st.Snapshots, SnapshotState{ID: "snap-2", Owner: owner, Unread: true})
	st.Unread = []string{"could not read snap-2", "could not read key x"}
	d := Decide(Input{Targets: targets(acctA, acctC), KMS: config.ModePolicy, State: st})
	if d.Status != StatusError || !strings.Contains(d.Message, "could not read snap-2") {
		t.Errorf("status %q message %q, want error naming what could not be read", d.Status, d.Message)
	}
	if !slices.Equal(d.Plan.Image.Remove, []string{acctB, handShared}) || len(d.Plan.Image.Add) != 0 {
		t.Errorf("image: got %+v, want B and the hand share removed, C not added", d.Plan.Image)
	}
	for _, s := range d.Plan.Snapshots {
		if s.SnapshotID == "snap-2" {
			t.Errorf("the unread snapshot is changed: %+v", s)
		}
	}
	if len(d.Plan.Keys) != 0 {
		t.Errorf("the unread key is changed: %+v", d.Plan.Keys)
	}
}

func TestReleaseRevokesEverythingByReset(t *testing.T) {
	allowed := func(t string) bool { return t == acctA || t == acctB || t == ouARN }
	key := KeyState{ARN: keyX, Owner: owner, Manager: ManagerCustomer, Accounts: []string{acctA}, Organizations: []string{ouKey}, Policy: `{"Statement":[]}`}
	st := State{ImageID: "ami-1", Owner: owner, Image: Perms{Accounts: []string{acctA, acctB}, OrganizationalUnits: []string{ouARN}},
		Snapshots: []SnapshotState{{ID: "snap-1", Owner: owner, Encrypted: true, KeyARN: keyX, Perms: Perms{Accounts: []string{acctA, acctB}}, Images: []string{"ami-1"}}},
		Keys:      []KeyState{key}}
	d := Decide(Input{Targets: targets(acctA), KMS: config.ModePolicy, State: st, Release: true, Allowed: allowed})
	if !d.Plan.ResetImage || !slices.Equal(d.Plan.Image.Remove, []string{acctA, acctB, ouARN}) {
		t.Errorf("image: got reset=%v %+v, want a reset removing A, B and the OU", d.Plan.ResetImage, d.Plan.Image)
	}
	if len(d.Plan.Snapshots) != 1 || !slices.Equal(d.Plan.Snapshots[0].Remove, []string{acctA, acctB}) {
		t.Errorf("snapshots: got %+v, want A and B removed", d.Plan.Snapshots)
	}
	if len(d.Plan.Keys) != 1 || !slices.Equal(d.Plan.Keys[0].Remove, []string{acctA, ouARN}) {
		t.Errorf("keys: got %+v, want A and the OU removed", d.Plan.Keys)
	}
	if d.Status != "" || len(d.Blocked) != 0 {
		t.Errorf("status %q blocked %q: a released image gets no status tag and is not blocked", d.Status, d.Blocked)
	}

	t.Run("a permission amishare could not have granted leaves everything as it is", func(t *testing.T) {
		for _, extra := range []Perms{{Accounts: []string{handShared}}, {Public: true}} {
			st := st
			st.Image.Accounts = append(slices.Clone(st.Image.Accounts), extra.Accounts...)
			st.Image.Public = extra.Public
			d := Decide(Input{KMS: config.ModePolicy, State: st, Release: true, Allowed: allowed})
			if !d.Plan.Empty() || len(d.Unrevoked) != 1 || len(d.Blocked) != 1 {
				t.Errorf("%+v: got plan %+v unrevoked %q, want nothing changed and the permission named", extra, d.Plan, d.Unrevoked)
			}
		}
	})
}

func TestDisabledImage(t *testing.T) {
	st := State{ImageID: "ami-1", Owner: owner, Disabled: true,
		Snapshots: []SnapshotState{{ID: "snap-1", Owner: owner, Perms: Perms{Accounts: []string{acctA, acctC}}, Images: []string{"ami-1"}}}}
	d := Decide(Input{Targets: targets(acctA, acctB), State: st})
	want := Plan{ImageID: "ami-1", Snapshots: []SnapshotDiff{{"snap-1", Diff{Remove: []string{acctC}}}}}
	if fmt.Sprint(d.Plan) != fmt.Sprint(want) {
		t.Errorf("plan: got %+v, want %+v (removals only, no launch permission added)", d.Plan, want)
	}
	if d.Status != StatusUnshared || len(d.Blocked) != 0 || !strings.Contains(d.Message, "disabled") {
		t.Errorf("status %q %q blocked %q, want unshared, not an error", d.Status, d.Message, d.Blocked)
	}
}

func TestGrantsLeftByGrantModeGoInEveryMode(t *testing.T) {
	for _, mode := range []config.KMSMode{config.ModePolicy, config.ModeOff} {
		key := KeyState{ARN: keyX, Owner: owner, Manager: ManagerCustomer, Grants: []string{acctA, acctB, acctC}, GrantsRead: true, Policy: `{"Statement":[]}`}
		st := revokable(key)
		d := Decide(Input{Targets: targets(acctA), KMS: mode, State: st, Keep: map[string][]string{keyX: {acctC}}})
		i := slices.IndexFunc(d.Plan.Keys, func(k KeyDiff) bool { return k.KeyARN == keyX })
		if i < 0 || !slices.Equal(d.Plan.Keys[i].RevokeGrants, []string{acctB}) {
			t.Errorf("%s: got keys %+v, want B's grant revoked (A is named, another image needs C)", mode, d.Plan.Keys)
		}
	}
}

func TestStatementsLeftByPolicyModeAreReported(t *testing.T) {
	key := KeyState{ARN: keyX, Owner: owner, Manager: ManagerCustomer, Statements: []string{acctB}}
	d := Decide(Input{Targets: targets(acctA), KMS: config.ModeGrant, State: revokable(key)})
	if len(d.Leftovers) != 1 || !slices.Equal(d.Leftovers[0].Grantees, []string{acctB}) || !strings.Contains(d.Message, "keys prune") {
		t.Errorf("got leftovers %+v message %q, want B's statement reported", d.Leftovers, d.Message)
	}
}

func TestOneImageCannotFillASharedKey(t *testing.T) {
	key := KeyState{ARN: keyX, Owner: owner, Manager: ManagerCustomer, Policy: `{"Version":"2012-10-17","Statement":[]}`}
	st := State{ImageID: "ami-1", Owner: owner, Keys: []KeyState{key},
		Snapshots: []SnapshotState{{ID: "snap-1", Owner: owner, Encrypted: true, KeyARN: keyX}}}
	d := Decide(Input{Targets: targets(manyAccounts(300)...), KMS: config.ModePolicy, State: st})
	if len(d.Blocked) == 0 || !strings.Contains(d.Message, "grow its policy") || len(d.Plan.Keys) != 0 || len(d.Plan.Image.Add) != 0 {
		t.Errorf("got blocked %q plan %+v, want nothing added and the growth named", d.Blocked, d.Plan)
	}
	d = Decide(Input{Targets: targets(manyAccounts(20)...), KMS: config.ModePolicy, State: st})
	if len(d.Blocked) != 0 || len(d.Plan.Keys) != 1 {
		t.Errorf("20 accounts: got blocked %q, want them added", d.Blocked)
	}
}

func TestKeyPolicyNearTheLimitIsWarned(t *testing.T) {
	key := KeyState{ARN: keyX, Owner: owner, Manager: ManagerCustomer, Accounts: []string{acctA}, Policy: bigPolicy(t, 27000)}
	st := State{ImageID: "ami-1", Owner: owner, Keys: []KeyState{key}, Image: Perms{Accounts: []string{acctA}},
		Snapshots: []SnapshotState{{ID: "snap-1", Owner: owner, Encrypted: true, KeyARN: keyX, Perms: Perms{Accounts: []string{acctA}}, Images: []string{"ami-1"}}}}
	d := Decide(Input{Targets: targets(acctA), KMS: config.ModePolicy, State: st})
	if !slices.Equal(d.NearLimit, []string{keyX}) || !strings.Contains(d.Message, "of KMS's size limit") || d.Status != StatusShared {
		t.Errorf("got near limit %q status %q message %q, want a warning on a shared image", d.NearLimit, d.Status, d.Message)
	}
}

// bigPolicy is a key policy of about n bytes with amishare's statements
// for acctB.
func bigPolicy(t *testing.T, n int) string {
	t.Helper()
	base := `{"Version":"2012-10-17","Statement":[{"Sid":"big","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"kms:*","Resource":"*","Condition":{"StringEquals":{"aws:PrincipalTag/x":"` + strings.Repeat("y", n) + `"}}}]}`
	out, _, err := kmspolicy.Edit(base, []string{acctB}, nil, kmspolicy.KeyOf(keyX))
	if err != nil {
		t.Fatal(err)
	}
	return out
}
