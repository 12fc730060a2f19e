package rules

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/amishare/amishare/pkg/amitag"
	"github.com/amishare/amishare/pkg/config"
)

const (
	owner = "123456789012"
	acctA = "111122223333"
	acctB = "444455556666"
	acctC = "777788889999"
	keyX  = "arn:aws:kms:us-east-1:123456789012:key/x"
	keyY  = "arn:aws:kms:us-east-1:123456789012:key/y"
)

func targets(accounts ...string) amitag.Targets { return amitag.Targets{Accounts: accounts} }

// twoSnapshots are two snapshots already recorded for ami-1.
func twoSnapshots(perms Perms) []SnapshotState {
	return []SnapshotState{
		{ID: "snap-1", Owner: owner, Perms: perms, Images: []string{"ami-1"}},
		{ID: "snap-2", Owner: owner, Perms: perms, Images: []string{"ami-1"}},
	}
}

func TestDecide(t *testing.T) {
	tests := []struct {
		name        string
		in          Input
		want        Plan
		status      Status
		msgContains string
		blocked     bool
	}{
		{
			name:   "first share adds to image and every snapshot",
			in:     Input{Targets: targets(acctA, acctB), State: State{ImageID: "ami-1", Owner: owner, Snapshots: twoSnapshots(Perms{})}},
			want:   Plan{ImageID: "ami-1", Image: Diff{Add: []string{acctA, acctB}}, Snapshots: []SnapshotDiff{{"snap-1", Diff{Add: []string{acctA, acctB}}}, {"snap-2", Diff{Add: []string{acctA, acctB}}}}},
			status: StatusShared, msgContains: "shared with 2 account(s)",
		},
		{
			name: "unchanged image plans nothing",
			in: Input{Targets: targets(acctA), State: State{ImageID: "ami-1", Owner: owner,
				Image: Perms{Accounts: []string{acctA}}, Snapshots: twoSnapshots(Perms{Accounts: []string{acctA}})}},
			want:   Plan{ImageID: "ami-1"},
			status: StatusShared,
		},
		{
			name: "dropped account is removed everywhere, new one added",
			in: Input{Targets: targets(acctA, acctC), State: State{ImageID: "ami-1", Owner: owner,
				Image: Perms{Accounts: []string{acctA, acctB}}, Snapshots: twoSnapshots(Perms{Accounts: []string{acctA, acctB}})}},
			want: Plan{ImageID: "ami-1", Image: Diff{Add: []string{acctC}, Remove: []string{acctB}},
				Snapshots: []SnapshotDiff{{"snap-1", Diff{Add: []string{acctC}, Remove: []string{acctB}}}, {"snap-2", Diff{Add: []string{acctC}, Remove: []string{acctB}}}}},
			status: StatusShared,
		},
		{
			name: "the record names every image behind a snapshot",
			in: Input{Targets: targets(acctA), State: State{ImageID: "ami-1", Owner: owner, Image: Perms{Accounts: []string{acctA}},
				Snapshots: []SnapshotState{
					{ID: "snap-1", Owner: owner, Perms: Perms{Accounts: []string{acctA}}},
					{ID: "snap-2", Owner: owner, Perms: Perms{Accounts: []string{acctA}}, Images: []string{"ami-2"}},
					{ID: "snap-3", Owner: owner, Perms: Perms{Accounts: []string{acctA}}, Images: []string{"ami-1"}},
				}}},
			want: Plan{ImageID: "ami-1", Record: []RecordSet{
				{Value: "ami-1", SnapshotIDs: []string{"snap-1"}}, {Value: "ami-1 ami-2", SnapshotIDs: []string{"snap-2"}}}},
			status: StatusShared,
		},
		{
			name: "nothing is recorded when nothing is shared",
			in: Input{Targets: targets(), State: State{ImageID: "ami-1", Owner: owner,
				Snapshots: []SnapshotState{{ID: "snap-1", Owner: owner}}}},
			want:   Plan{ImageID: "ami-1"},
			status: StatusUnshared,
		},
		{
			name: "a snapshot another managed image uses keeps that image's targets",
			in: Input{Targets: targets(acctA), KeepSnapshots: map[string][]string{"snap-1": {acctC}},
				State: State{ImageID: "ami-1", Owner: owner, Image: Perms{Accounts: []string{acctA, acctB}},
					Snapshots: twoSnapshots(Perms{Accounts: []string{acctA, acctB, acctC}})}},
			want: Plan{ImageID: "ami-1", Image: Diff{Remove: []string{acctB}},
				Snapshots: []SnapshotDiff{{"snap-1", Diff{Remove: []string{acctB}}}, {"snap-2", Diff{Remove: []string{acctB, acctC}}}}},
			status: StatusShared,
		},
		{
			name: "gone image (no targets): snapshots and key revoked, keeping what other images need",
			in: Input{KMS: config.ModePolicy, Keep: map[string][]string{keyX: {acctB}}, KeepSnapshots: map[string][]string{"snap-2": {acctB}},
				State: State{ImageID: "ami-gone", Owner: owner,
					Snapshots: []SnapshotState{
						{ID: "snap-1", Owner: owner, Encrypted: true, KeyARN: keyX, Perms: Perms{Accounts: []string{acctA}}, Images: []string{"ami-gone"}},
						{ID: "snap-2", Owner: owner, Encrypted: true, KeyARN: keyX, Perms: Perms{Accounts: []string{acctA, acctB}}, Images: []string{"ami-gone"}},
					},
					Keys: []KeyState{{ARN: keyX, Owner: owner, Manager: ManagerCustomer, Accounts: []string{acctA, acctB},
						Policy: `{"Version":"2012-10-17","Statement":[]}`}}}},
			want: Plan{ImageID: "ami-gone",
				Snapshots: []SnapshotDiff{{"snap-1", Diff{Remove: []string{acctA}}}, {"snap-2", Diff{Remove: []string{acctA}}}},
				Keys:      []KeyDiff{{KeyARN: keyX, Remove: []string{acctA}}}},
			status: StatusUnshared,
		},
		{
			name: "empty tag revokes all",
			in: Input{Targets: targets(), State: State{ImageID: "ami-1", Owner: owner,
				Image: Perms{Accounts: []string{acctA}}, Snapshots: twoSnapshots(Perms{Accounts: []string{acctA}})}},
			want: Plan{ImageID: "ami-1", Image: Diff{Remove: []string{acctA}},
				Snapshots: []SnapshotDiff{{"snap-1", Diff{Remove: []string{acctA}}}, {"snap-2", Diff{Remove: []string{acctA}}}}},
			status: StatusUnshared,
		},
		{
			name: "refused tokens make it partial and are named",
			in: Input{Targets: amitag.Targets{Accounts: []string{acctA}, Refused: []amitag.Refusal{{Token: "all", Reason: amitag.ReasonPublic}}},
				State: State{ImageID: "ami-1", Owner: owner, Image: Perms{Accounts: []string{acctA}}, Snapshots: twoSnapshots(Perms{Accounts: []string{acctA}})}},
			want:   Plan{ImageID: "ami-1"},
			status: StatusPartial, msgContains: `"all" (public sharing is never allowed)`,
		},
		{
			name:   "every token refused is an error",
			in:     Input{Targets: amitag.Targets{Refused: []amitag.Refusal{{Token: "999999999999", Reason: amitag.ReasonNotAllowed}}}, State: State{ImageID: "ami-1", Owner: owner}},
			want:   Plan{ImageID: "ami-1"},
			status: StatusError, msgContains: "every target was refused",
		},
		{
			name: "public image and snapshot are made private",
			in: Input{Targets: targets(acctA), State: State{ImageID: "ami-1", Owner: owner,
				Image: Perms{Accounts: []string{acctA}, Public: true}, Snapshots: []SnapshotState{{ID: "snap-1", Owner: owner, Perms: Perms{Accounts: []string{acctA}, Public: true}, Images: []string{"ami-1"}}}}},
			want:   Plan{ImageID: "ami-1", Image: Diff{MakePrivate: true}, Snapshots: []SnapshotDiff{{"snap-1", Diff{MakePrivate: true}}}},
			status: StatusShared,
		},
		{
			name: "allowPublic leaves public access alone",
			in: Input{Targets: targets(acctA), AllowPublic: true, State: State{ImageID: "ami-1", Owner: owner,
				Image: Perms{Accounts: []string{acctA}, Public: true}}},
			want:   Plan{ImageID: "ami-1"},
			status: StatusShared,
		},
		{
			name: "customer key gets the targets, keeping accounts other images need",
			in: Input{Targets: targets(acctA), KMS: config.ModeGrant, Keep: map[string][]string{keyX: {acctC}},
				State: State{ImageID: "ami-1", Owner: owner,
					Snapshots: []SnapshotState{{ID: "snap-1", Owner: owner, Encrypted: true, KeyARN: keyX, Images: []string{"ami-1"}}},
					Keys:      []KeyState{{ARN: keyX, Owner: owner, Manager: ManagerCustomer, Accounts: []string{acctB, acctC}}}}},
			want: Plan{ImageID: "ami-1", Image: Diff{Add: []string{acctA}}, Snapshots: []SnapshotDiff{{"snap-1", Diff{Add: []string{acctA}}}},
				Keys: []KeyDiff{{KeyARN: keyX, Add: []string{acctA}, Remove: []string{acctB}}}},
			status: StatusShared,
		},
		{
			name: "AWS managed key blocks everything",
			in: Input{Targets: targets(acctA), KMS: config.ModePolicy, State: State{ImageID: "ami-1", Owner: owner,
				Snapshots: []SnapshotState{{ID: "snap-1", Owner: owner, Encrypted: true, KeyARN: keyY}},
				Keys:      []KeyState{{ARN: keyY, Owner: owner, Manager: ManagerAWS}}}},
			want: Plan{ImageID: "ami-1"}, status: StatusError, blocked: true, msgContains: `configure copyKeys["us-east-1"]`,
		},
		{
			name: "AWS managed key does not stop a revoke",
			in: Input{Targets: targets(), KMS: config.ModePolicy, State: State{ImageID: "ami-1", Owner: owner, Image: Perms{Accounts: []string{acctA}},
				Snapshots: []SnapshotState{{ID: "snap-1", Owner: owner, Encrypted: true, KeyARN: keyY}},
				Keys:      []KeyState{{ARN: keyY, Owner: owner, Manager: ManagerAWS}}}},
			want:   Plan{ImageID: "ami-1", Image: Diff{Remove: []string{acctA}}},
			status: StatusUnshared,
		},
		{
			name: "foreign key blocks",
			in: Input{Targets: targets(acctA), KMS: config.ModePolicy, State: State{ImageID: "ami-1", Owner: owner,
				Snapshots: []SnapshotState{{ID: "snap-1", Owner: owner, Encrypted: true, KeyARN: "arn:aws:kms:us-east-1:999999999999:key/z"}},
				Keys:      []KeyState{{ARN: "arn:aws:kms:us-east-1:999999999999:key/z", Owner: "999999999999", Manager: ManagerCustomer}}}},
			want: Plan{ImageID: "ami-1"}, status: StatusError, blocked: true, msgContains: "of account 999999999999",
		},
		{
			name: "foreign key not described (no manager) blocks, also with kms off",
			in: Input{Targets: targets(acctA), KMS: config.ModeOff, State: State{ImageID: "ami-1", Owner: owner,
				Snapshots: []SnapshotState{{ID: "snap-1", Owner: owner, Encrypted: true, KeyARN: "arn:aws:kms:us-east-1:999999999999:key/z"}},
				Keys:      []KeyState{{ARN: "arn:aws:kms:us-east-1:999999999999:key/z", Owner: "999999999999"}}}},
			want: Plan{ImageID: "ami-1"}, status: StatusError, blocked: true, msgContains: "key arn:aws:kms:us-east-1:999999999999:key/z of account 999999999999",
		},
		{
			name: "key refusing DescribeKey blocks",
			in: Input{Targets: targets(acctA), KMS: config.ModePolicy, State: State{ImageID: "ami-1", Owner: owner,
				Snapshots: []SnapshotState{{ID: "snap-1", Owner: owner, Encrypted: true, KeyARN: keyX}},
				Keys:      []KeyState{{ARN: keyX, Owner: owner, Denied: true}}}},
			want: Plan{ImageID: "ami-1"}, status: StatusError, blocked: true, msgContains: "DescribeKey denied",
		},
		{
			name: "foreign key does not stop a revoke",
			in: Input{Targets: targets(), KMS: config.ModePolicy, State: State{ImageID: "ami-1", Owner: owner, Image: Perms{Accounts: []string{acctA}},
				Snapshots: []SnapshotState{{ID: "snap-1", Owner: owner, Encrypted: true, KeyARN: "arn:aws:kms:us-east-1:999999999999:key/z"}},
				Keys:      []KeyState{{ARN: "arn:aws:kms:us-east-1:999999999999:key/z", Owner: "999999999999"}}}},
			want:   Plan{ImageID: "ami-1", Image: Diff{Remove: []string{acctA}}},
			status: StatusUnshared,
		},
		{
			name: "kms off refuses a customer key",
			in: Input{Targets: targets(acctA), KMS: config.ModeOff, State: State{ImageID: "ami-1", Owner: owner,
				Snapshots: []SnapshotState{{ID: "snap-1", Owner: owner, Encrypted: true, KeyARN: keyX}},
				Keys:      []KeyState{{ARN: keyX, Owner: owner, Manager: ManagerCustomer}}}},
			want: Plan{ImageID: "ami-1"}, status: StatusError, blocked: true, msgContains: `"kms": "off"`,
		},
		{
			name: "snapshot of another account blocks",
			in: Input{Targets: targets(acctA), State: State{ImageID: "ami-1", Owner: owner,
				Snapshots: []SnapshotState{{ID: "snap-1", Owner: "999999999999"}}}},
			want: Plan{ImageID: "ami-1"}, status: StatusError, blocked: true, msgContains: "only its owner",
		},
		{
			name: "policy over 32 KiB blocks",
			in: Input{Targets: targets(acctA), KMS: config.ModePolicy, State: State{ImageID: "ami-1", Owner: owner,
				Snapshots: []SnapshotState{{ID: "snap-1", Owner: owner, Encrypted: true, KeyARN: keyX}},
				Keys: []KeyState{{ARN: keyX, Owner: owner, Manager: ManagerCustomer,
					Policy: `{"Version":"2012-10-17","Statement":[{"Sid":"big","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"kms:*","Resource":"*","Condition":{"StringEquals":{"aws:PrincipalTag/x":"` + strings.Repeat("y", 32700) + `"}}}]}`}}}},
			want: Plan{ImageID: "ami-1"}, status: StatusError, blocked: true, msgContains: "exceed",
		},
		{
			name:   "more than 1000 accounts blocks",
			in:     Input{Targets: targets(manyAccounts(1001)...), State: State{ImageID: "ami-1", Owner: owner}},
			want:   Plan{ImageID: "ami-1"},
			status: StatusError, blocked: true, msgContains: "at most 1000",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := Decide(tc.in)
			if !reflect.DeepEqual(d.Plan, tc.want) {
				t.Errorf("plan:\n got %+v\nwant %+v", d.Plan, tc.want)
			}
			if d.Status != tc.status {
				t.Errorf("status = %q, want %q (message %q)", d.Status, tc.status, d.Message)
			}
			if !strings.Contains(d.Message, tc.msgContains) {
				t.Errorf("message = %q, want it to contain %q", d.Message, tc.msgContains)
			}
			if got := len(d.Blocked) > 0; got != tc.blocked {
				t.Errorf("blocked = %v (%q), want %v", got, d.Blocked, tc.blocked)
			}
			if n := len([]rune(d.Message)); n > maxMessage {
				t.Errorf("message has %d characters, want at most %d", n, maxMessage)
			}
		})
	}
}

func manyAccounts(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%012d", i+1)
	}
	return out
}

func TestPlanChangesOrder(t *testing.T) {
	p := Plan{ImageID: "ami-1",
		Image:     Diff{Add: []string{acctC}, Remove: []string{acctB}},
		Snapshots: []SnapshotDiff{{"snap-1", Diff{Add: []string{acctC}, Remove: []string{acctB}}}},
		Keys:      []KeyDiff{{KeyARN: keyX, Add: []string{acctC}, Remove: []string{acctB}}},
	}
	var got []string
	for _, c := range p.Changes() {
		res := "image"
		if c.SnapshotID != "" {
			res = "snapshot"
		} else if c.KeyARN != "" {
			res = "key"
		}
		got = append(got, res+" "+string(c.Action)+" "+c.Account)
	}
	want := []string{
		"image remove " + acctB, "snapshot remove " + acctB,
		"key add " + acctC, "key remove " + acctB,
		"snapshot add " + acctC, "image add " + acctC,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("order:\n got %q\nwant %q", got, want)
	}
}
