package rules

import (
	"reflect"
	"strings"
	"testing"

	"github.com/amishare/amishare/pkg/amitag"
	"github.com/amishare/amishare/pkg/config"
)

const (
	orgARN  = "arn:aws:organizations::210987654321:organization/o-a1b2c3d4e5"
	ouARN   = "arn:aws:organizations::210987654321:ou/o-a1b2c3d4e5/ou-ab12-11111111"
	ou2ARN  = "arn:aws:organizations::210987654321:ou/o-a1b2c3d4e5/ou-ab12-22222222"
	ouKey   = "o-a1b2c3d4e5/ou-ab12-11111111"
	ou2Key  = "o-a1b2c3d4e5/ou-ab12-22222222"
	orgKey  = "o-a1b2c3d4e5"
	keyMsgs = "KMS grant cannot name an organization"
)

func TestDecideOrganizations(t *testing.T) {
	withOU := amitag.Targets{Accounts: []string{acctA}, OrganizationalUnits: []string{ouARN}}
	encrypted := func(keys ...KeyState) State {
		return State{ImageID: "ami-1", Owner: owner,
			Snapshots: []SnapshotState{{ID: "snap-1", Owner: owner, Encrypted: true, KeyARN: keyX, Images: []string{"ami-1"}}}, Keys: keys}
	}
	cmk := KeyState{ARN: keyX, Owner: owner, Manager: ManagerCustomer}
	tests := []struct {
		name        string
		in          Input
		want        Plan
		targets     []string // Decision.Targets.All()
		refused     []amitag.Refusal
		status      Status
		msgContains string
	}{
		{
			name:    "OU on the image, accounts only on the snapshots, one add for both",
			in:      Input{Targets: withOU, State: State{ImageID: "ami-1", Owner: owner, Snapshots: twoSnapshots(Perms{})}},
			want:    Plan{ImageID: "ami-1", Image: Diff{Add: []string{acctA, ouARN}}, Snapshots: []SnapshotDiff{{"snap-1", Diff{Add: []string{acctA}}}, {"snap-2", Diff{Add: []string{acctA}}}}},
			targets: []string{acctA, ouARN}, status: StatusShared, msgContains: "shared with 1 account(s), 1 OU(s)",
		},
		{
			name: "unlisted organization and OU are removed with the dropped account",
			in: Input{Targets: amitag.Targets{OrganizationalUnits: []string{ouARN}}, State: State{ImageID: "ami-1", Owner: owner,
				Image: Perms{Accounts: []string{acctB}, Organizations: []string{orgARN}, OrganizationalUnits: []string{ouARN, ou2ARN}}}},
			want:    Plan{ImageID: "ami-1", Image: Diff{Remove: []string{acctB, orgARN, ou2ARN}}},
			targets: []string{ouARN}, status: StatusShared, msgContains: "shared with 1 OU(s)",
		},
		{
			name: "policy mode: the key gets the OU by its id, the policy as read travels with the diff",
			in: Input{Targets: withOU, KMS: config.ModePolicy,
				State: encrypted(KeyState{ARN: keyX, Owner: owner, Manager: ManagerCustomer, Accounts: []string{acctB}, Organizations: []string{ou2Key}, Policy: "{}"})},
			want: Plan{ImageID: "ami-1", Image: Diff{Add: []string{acctA, ouARN}}, Snapshots: []SnapshotDiff{{"snap-1", Diff{Add: []string{acctA}}}},
				Keys: []KeyDiff{{KeyARN: keyX, Add: []string{acctA, ouARN}, Remove: []string{acctB, ou2Key}}}},
			targets: []string{acctA, ouARN}, status: StatusShared,
		},
		{
			name: "a key statement's OU is named by the ARN the image holds, and kept when another image needs it",
			in: Input{Targets: amitag.Targets{}, KMS: config.ModePolicy, Keep: map[string][]string{keyX: {orgKey}},
				State: State{ImageID: "ami-1", Owner: owner, Image: Perms{OrganizationalUnits: []string{ouARN}, Organizations: []string{orgARN}},
					Snapshots: []SnapshotState{{ID: "snap-1", Owner: owner, Encrypted: true, KeyARN: keyX}},
					Keys:      []KeyState{{ARN: keyX, Owner: owner, Manager: ManagerCustomer, Organizations: []string{orgKey, ouKey}}}}},
			want: Plan{ImageID: "ami-1", Image: Diff{Remove: []string{orgARN, ouARN}},
				Keys: []KeyDiff{{KeyARN: keyX, Remove: []string{ouARN}}}},
			status: StatusUnshared,
		},
		{
			name: "a key statement of an image gone from the image is named by the ARN the configuration knows",
			in: Input{Targets: amitag.Targets{}, KMS: config.ModePolicy, Known: []string{orgARN, ou2ARN, ouARN},
				State: State{ImageID: "ami-1", Owner: owner,
					Snapshots: []SnapshotState{{ID: "snap-1", Owner: owner, Encrypted: true, KeyARN: keyX}},
					Keys:      []KeyState{{ARN: keyX, Owner: owner, Manager: ManagerCustomer, Organizations: []string{orgKey, ouKey, "o-zzzzzzzzzz"}}}}},
			want:   Plan{ImageID: "ami-1", Keys: []KeyDiff{{KeyARN: keyX, Remove: []string{orgARN, ouARN, "o-zzzzzzzzzz"}}}},
			status: StatusUnshared,
		},
		{
			name:    "grant mode refuses the OU of an encrypted image, the account proceeds",
			in:      Input{Targets: withOU, KMS: config.ModeGrant, State: encrypted(cmk)},
			want:    Plan{ImageID: "ami-1", Image: Diff{Add: []string{acctA}}, Snapshots: []SnapshotDiff{{"snap-1", Diff{Add: []string{acctA}}}}, Keys: []KeyDiff{{KeyARN: keyX, Add: []string{acctA}}}},
			targets: []string{acctA}, refused: []amitag.Refusal{{Token: ouARN, Reason: ReasonGrantOrganization}},
			status: StatusPartial, msgContains: keyMsgs,
		},
		{
			name: "grant mode with only an organization: error, the organization already there is removed",
			in: Input{Targets: amitag.Targets{Organizations: []string{orgARN}}, KMS: config.ModeGrant,
				State: func() State { s := encrypted(cmk); s.Image = Perms{Organizations: []string{orgARN}}; return s }()},
			want:    Plan{ImageID: "ami-1", Image: Diff{Remove: []string{orgARN}}},
			refused: []amitag.Refusal{{Token: orgARN, Reason: ReasonGrantOrganization}},
			status:  StatusError, msgContains: "every target was refused",
		},
		{
			name:    "grant mode shares an unencrypted image with the OU",
			in:      Input{Targets: withOU, KMS: config.ModeGrant, State: State{ImageID: "ami-1", Owner: owner}},
			want:    Plan{ImageID: "ami-1", Image: Diff{Add: []string{acctA, ouARN}}},
			targets: []string{acctA, ouARN}, status: StatusShared,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := Decide(tc.in)
			if !reflect.DeepEqual(d.Plan, tc.want) {
				t.Errorf("plan:\n got %+v\nwant %+v", d.Plan, tc.want)
			}
			if got := d.Targets.All(); !reflect.DeepEqual(got, append([]string{}, tc.targets...)) && !(len(got) == 0 && len(tc.targets) == 0) {
				t.Errorf("targets = %q, want %q", got, tc.targets)
			}
			if !reflect.DeepEqual(d.Targets.Refused, tc.refused) {
				t.Errorf("refused = %q, want %q", d.Targets.Refused, tc.refused)
			}
			if d.Status != tc.status || !strings.Contains(d.Message, tc.msgContains) {
				t.Errorf("status %q message %q, want %q containing %q", d.Status, d.Message, tc.status, tc.msgContains)
			}
		})
	}
}

func TestPlanChangesNameOrganizations(t *testing.T) {
	p := Plan{ImageID: "ami-1",
		Image: Diff{Add: []string{acctA, ouARN}, Remove: []string{orgARN}},
		Keys:  []KeyDiff{{KeyARN: keyX, Add: []string{ouARN}, Remove: []string{ou2Key}}},
	}
	want := []Change{
		{ImageID: "ami-1", OrganizationARN: orgARN, Action: ActionRemove},
		{ImageID: "ami-1", KeyARN: keyX, OrganizationalUnitARN: ouARN, Action: ActionAdd},
		{ImageID: "ami-1", KeyARN: keyX, OrganizationalUnitARN: ou2Key, Action: ActionRemove},
		{ImageID: "ami-1", Account: acctA, Action: ActionAdd},
		{ImageID: "ami-1", OrganizationalUnitARN: ouARN, Action: ActionAdd},
	}
	if got := p.Changes(); !reflect.DeepEqual(got, want) {
		t.Errorf("changes:\n got %+v\nwant %+v", got, want)
	}
}
