package share

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/amishare/amishare/pkg/amitag"
	"github.com/amishare/amishare/pkg/config"
	"github.com/amishare/amishare/pkg/kmspolicy"
)

// MaxLaunchPermissions is the most launch-permission entities AWS allows on one AMI.
const MaxLaunchPermissions = 1000

// maxMessage is the longest amishare:message value (AWS caps tag values at 256).
const maxMessage = 256

// Key managers as DescribeKey reports them.
const (
	managerAWS      = "AWS"
	managerCustomer = "CUSTOMER"
)

// Perms is who may use a resource: accounts, and whether it is public.
type Perms struct {
	Accounts []string `json:"accounts,omitempty"`
	Public   bool     `json:"public,omitempty"`
}

// SnapshotState is one EBS snapshot behind the image, as read.
type SnapshotState struct {
	ID        string `json:"snapshotId"`
	Owner     string `json:"owner"`
	Encrypted bool   `json:"encrypted"`
	KeyARN    string `json:"keyArn,omitempty"`
	Perms     Perms  `json:"perms"`
}

// KeyState is one KMS key behind the image's snapshots, as read.
type KeyState struct {
	ARN      string   `json:"keyArn"`
	Owner    string   `json:"owner"`
	Manager  string   `json:"manager,omitempty"`  // AWS or CUSTOMER; empty when not described (foreign or Denied)
	Denied   bool     `json:"denied,omitempty"`   // DescribeKey was refused: the key is not usable by amishare
	Accounts []string `json:"accounts,omitempty"` // granted by amishare (policy statements or grants)
	Policy   string   `json:"-"`                  // key policy, policy mode only
}

// State is what the image, its snapshots and keys look like now.
type State struct {
	ImageID   string          `json:"imageId"`
	Owner     string          `json:"owner"`
	Image     Perms           `json:"image"`
	Snapshots []SnapshotState `json:"snapshots"`
	Keys      []KeyState      `json:"keys,omitempty"`
}

// Input is everything a decision depends on.
type Input struct {
	Targets amitag.Targets
	State   State
	// Keep lists, per key ARN, accounts other managed images still need on that key.
	Keep        map[string][]string
	KMS         config.KMSMode
	AllowPublic bool
}

// Diff is a change to one resource's permissions.
type Diff struct {
	Add         []string `json:"add,omitempty"`
	Remove      []string `json:"remove,omitempty"`
	MakePrivate bool     `json:"makePrivate,omitempty"`
}

// Empty reports whether the diff changes nothing.
func (d Diff) Empty() bool { return len(d.Add) == 0 && len(d.Remove) == 0 && !d.MakePrivate }

// SnapshotDiff is a change to one snapshot's create-volume permission.
type SnapshotDiff struct {
	SnapshotID string `json:"snapshotId"`
	Diff
}

// KeyDiff is a change to the accounts allowed to use one KMS key.
type KeyDiff struct {
	KeyARN string   `json:"keyArn"`
	Add    []string `json:"add,omitempty"`
	Remove []string `json:"remove,omitempty"`
}

// Plan is every permission change a reconcile makes. Apply runs it in a safe
// order: the image's removals, the snapshots' removals, the keys, the
// snapshots' additions, then the image's additions — so a target never sees an
// image it cannot use, and loses the image before what lies behind it.
type Plan struct {
	ImageID   string         `json:"imageId"`
	Image     Diff           `json:"image"`
	Snapshots []SnapshotDiff `json:"snapshots,omitempty"`
	Keys      []KeyDiff      `json:"keys,omitempty"`
}

// Empty reports whether the plan changes nothing.
func (p Plan) Empty() bool {
	return p.Image.Empty() && len(p.Snapshots) == 0 && len(p.Keys) == 0
}

// Decision is the outcome of Decide: the plan, and the status to show on the image.
type Decision struct {
	Plan    Plan
	Status  Status
	Message string
	// Blocked holds the reasons nothing may be changed; the plan is then empty.
	Blocked []string
}

// Decide computes, without any I/O, what must change for the image to be
// shared with exactly the targets, and the status that says so.
func Decide(in Input) Decision {
	desired := in.Targets.Accounts
	st := in.State
	if blocked := blockers(in); len(blocked) > 0 {
		return Decision{Plan: Plan{ImageID: st.ImageID}, Status: StatusError, Message: trimMessage(strings.Join(blocked, "; ")), Blocked: blocked}
	}
	p := Plan{ImageID: st.ImageID}
	p.Image = diff(desired, st.Image, in.AllowPublic)
	for _, s := range st.Snapshots {
		if d := diff(desired, s.Perms, in.AllowPublic); !d.Empty() {
			p.Snapshots = append(p.Snapshots, SnapshotDiff{SnapshotID: s.ID, Diff: d})
		}
	}
	if in.KMS != config.ModeOff {
		var tooLarge []string
		for _, k := range st.Keys {
			if k.Manager != managerCustomer || k.Owner != st.Owner {
				continue // refused by blockers when there is anything to share
			}
			kd := KeyDiff{KeyARN: k.ARN, Add: minus(desired, k.Accounts), Remove: minus(minus(k.Accounts, desired), in.Keep[k.ARN])}
			if len(kd.Add) == 0 && len(kd.Remove) == 0 {
				continue
			}
			if in.KMS == config.ModePolicy {
				if _, _, err := kmspolicy.Edit(k.Policy, kd.Add, kd.Remove, kmspolicy.PartitionOf(k.ARN)); errors.Is(err, kmspolicy.ErrPolicyTooLarge) {
					tooLarge = append(tooLarge, fmt.Sprintf("key %s: policy would exceed KMS's %d-byte limit", k.ARN, kmspolicy.MaxPolicyBytes))
				}
			}
			p.Keys = append(p.Keys, kd)
		}
		if len(tooLarge) > 0 {
			return Decision{Plan: Plan{ImageID: st.ImageID}, Status: StatusError, Message: trimMessage(strings.Join(tooLarge, "; ")), Blocked: tooLarge}
		}
	}
	status, msg := summarize(in.Targets)
	return Decision{Plan: p, Status: status, Message: msg}
}

// blockers lists the reasons the image must not be changed at all.
func blockers(in Input) []string {
	desired, st := in.Targets.Accounts, in.State
	var out []string
	if n := len(desired); n > MaxLaunchPermissions {
		out = append(out, fmt.Sprintf("the tag resolves to %d accounts; AWS allows at most %d launch permissions per AMI", n, MaxLaunchPermissions))
	}
	if len(desired) == 0 {
		return out // revoking needs nothing from snapshots or keys
	}
	for _, s := range st.Snapshots {
		if s.Owner != "" && st.Owner != "" && s.Owner != st.Owner {
			out = append(out, fmt.Sprintf("snapshot %s belongs to account %s; only its owner can share it", s.ID, s.Owner))
		}
	}
	for _, k := range st.Keys {
		switch {
		case k.Manager == managerAWS:
			out = append(out, fmt.Sprintf("encrypted with the AWS managed key %s, which can never be shared: copy the image with a customer-managed key", k.ARN))
		case isForeign(k, st.Owner):
			out = append(out, fmt.Sprintf("encrypted with key %s of account %s: its owner must allow the target accounts (statement in the log)", k.ARN, k.Owner))
		case k.Denied:
			out = append(out, fmt.Sprintf("key %s refuses this account's IAM (DescribeKey denied): its key policy must allow this account", k.ARN))
		case in.KMS == config.ModeOff:
			out = append(out, fmt.Sprintf(`encrypted with customer-managed key %s and the configuration says "kms": "off"`, k.ARN))
		}
	}
	return out
}

// isForeign reports whether the key belongs to another account than the image.
func isForeign(k KeyState, imageOwner string) bool {
	return k.Owner != "" && imageOwner != "" && k.Owner != imageOwner
}

func diff(desired []string, cur Perms, allowPublic bool) Diff {
	return Diff{
		Add:         minus(desired, cur.Accounts),
		Remove:      minus(cur.Accounts, desired),
		MakePrivate: cur.Public && !allowPublic,
	}
}

// minus returns the sorted elements of a that are not in b.
func minus(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) && !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	slices.Sort(out)
	return out
}
