package rules

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/amishare/amishare/pkg/amitag"
	"github.com/amishare/amishare/pkg/awsid"
	"github.com/amishare/amishare/pkg/config"
	"github.com/amishare/amishare/pkg/kmspolicy"
)

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

// KeyDiff is a change to who may use one KMS key: accounts, and in policy
// mode organizations and OUs, named by ARN (or, for a statement whose ARN
// amishare cannot know, by the id the statement holds).
type KeyDiff struct {
	KeyARN string   `json:"keyArn"`
	Add    []string `json:"add,omitempty"`
	Remove []string `json:"remove,omitempty"`
	// Policy is the key policy read for planning (policy mode), from which
	// the edit starts: one read of it per reconcile before the write.
	Policy string `json:"-"`
	// Restore writes amishare's statements back as it owns them (see
	// KeyState.Stale), whether or not anyone is added or removed.
	Restore bool `json:"restore,omitempty"`
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
	// Copies are the copies to make and the copies' tags to set (see DecideCopies).
	Copies []CopyStep `json:"copies,omitempty"`
	// Record lists the snapshots to tag amishare:image = ImageID (one
	// CreateTags, before any snapshot is shared), so that their permissions
	// can be found and revoked once the image is gone.
	Record []string `json:"record,omitempty"`
}

// Empty reports whether the plan changes nothing.
func (p Plan) Empty() bool {
	return p.Image.Empty() && len(p.Snapshots) == 0 && len(p.Keys) == 0 && len(p.Copies) == 0 && len(p.Record) == 0
}

// Decision is the outcome of Decide: the plan, and the status to show on the image.
type Decision struct {
	Plan Plan
	// Targets are the input's targets less those Decide refused (an
	// organization or OU of an image it cannot give the key to).
	Targets amitag.Targets
	Status  Status
	Message string
	// Blocked holds the reasons nothing may be changed; the plan is then empty.
	Blocked []string
}

// Decide computes, without any I/O, what must change for the image to be
// shared with exactly the targets, and the status that says so.
func Decide(in Input) Decision {
	in.Targets = refuseUnreachable(in)
	st := in.State
	if blocked := blockers(in); len(blocked) > 0 {
		return Decision{Plan: Plan{ImageID: st.ImageID}, Targets: in.Targets, Status: StatusError, Message: TrimMessage(strings.Join(blocked, "; ")), Blocked: blocked}
	}
	p := Plan{ImageID: st.ImageID}
	// The image is shared with every target; its snapshots only with the
	// accounts (create-volume permission cannot name an organization, and
	// launching an image shared with one needs no snapshot permission).
	p.Image = diff(in.Targets.All(), st.Image, in.AllowPublic)
	for _, s := range st.Snapshots {
		d := diff(in.Targets.Accounts, s.Perms, in.AllowPublic)
		d.Remove = minus(d.Remove, in.KeepSnapshots[s.ID])
		if !d.Empty() {
			p.Snapshots = append(p.Snapshots, SnapshotDiff{SnapshotID: s.ID, Diff: d})
		}
		// Recorded whenever the image has a target, even organizations only
		// (whose snapshots stay unshared): the record also leads to the keys.
		// A snapshot already recorded for another image keeps that record:
		// rewriting it at every reconcile of either image would never settle.
		if in.Targets.Len() > 0 && s.Image == "" {
			p.Record = append(p.Record, s.ID)
		}
	}
	if in.KMS != config.ModeOff {
		var tooLarge []string
		names, desired := targetNames(in), KeyGrantees(in.Targets)
		for _, k := range st.Keys {
			if !k.Writable(st.Owner) {
				continue // refused by blockers when there is anything to share
			}
			kd := KeyDiff{KeyARN: k.ARN,
				Add:     names.of(minus(desired, k.Grantees())),
				Remove:  names.of(minus(minus(k.Grantees(), desired), in.Keep[k.ARN])),
				Restore: k.Stale && in.KMS == config.ModePolicy,
			}
			if len(kd.Add) == 0 && len(kd.Remove) == 0 && !kd.Restore {
				continue
			}
			if in.KMS == config.ModePolicy {
				kd.Policy = k.Policy
				if _, _, err := kmspolicy.Edit(k.Policy, kd.Add, kd.Remove, awsid.PartitionOf(k.ARN)); errors.Is(err, kmspolicy.ErrPolicyTooLarge) {
					tooLarge = append(tooLarge, fmt.Sprintf("key %s: policy would exceed KMS's %d-byte limit", k.ARN, kmspolicy.MaxPolicyBytes))
				}
			}
			p.Keys = append(p.Keys, kd)
		}
		if len(tooLarge) > 0 {
			return Decision{Plan: Plan{ImageID: st.ImageID}, Targets: in.Targets, Status: StatusError, Message: TrimMessage(strings.Join(tooLarge, "; ")), Blocked: tooLarge}
		}
	}
	status, msg := summarize(in.Targets)
	return Decision{Plan: p, Targets: in.Targets, Status: status, Message: msg}
}

// ReasonGrantOrganization refuses an organization or OU of an image
// encrypted with a customer-managed key in grant mode.
const ReasonGrantOrganization = `a KMS grant cannot name an organization or OU ("kms": "grant")`

// refuseUnreachable returns the targets less the organizations and OUs that
// could not use the image: in grant mode, when a customer-managed key
// encrypts it (a grant names one principal, never an organization). They
// are refused like any other token; the accounts proceed.
func refuseUnreachable(in Input) amitag.Targets {
	t := in.Targets
	if in.KMS != config.ModeGrant || len(t.Organizations)+len(t.OrganizationalUnits) == 0 ||
		!slices.ContainsFunc(in.State.Keys, func(k KeyState) bool { return k.Manager == ManagerCustomer }) {
		return t
	}
	t.Refused = slices.Clone(t.Refused)
	for _, arn := range slices.Concat(t.Organizations, t.OrganizationalUnits) {
		t.Refused = append(t.Refused, amitag.Refusal{Token: arn, Reason: ReasonGrantOrganization})
	}
	t.Organizations, t.OrganizationalUnits = nil, nil
	return t
}

// KeyGrantees returns who a key must grant for targets: the accounts, and
// each organization and OU by the id its statements hold.
func KeyGrantees(t amitag.Targets) []string {
	out := slices.Clone(t.Accounts)
	for _, arn := range slices.Concat(t.Organizations, t.OrganizationalUnits) {
		if k, ok := kmspolicy.GranteeKey(arn); ok {
			out = append(out, k)
		}
	}
	return out
}

// names maps the id a key statement holds for an organization or OU to its
// ARN, where the configuration, the image's launch permissions or the
// targets know it (the later win).
type names map[string]string

func targetNames(in Input) names {
	n := names{}
	for _, arn := range slices.Concat(in.Known, in.State.Image.Organizations, in.State.Image.OrganizationalUnits, in.Targets.Organizations, in.Targets.OrganizationalUnits) {
		if k, ok := kmspolicy.GranteeKey(arn); ok {
			n[k] = arn
		}
	}
	return n
}

// of returns grantees with each organization or OU id replaced by its ARN
// when known.
func (n names) of(grantees []string) []string {
	var out []string
	for _, g := range grantees {
		if arn, ok := n[g]; ok {
			g = arn
		}
		out = append(out, g)
	}
	return out
}

// blockers lists the reasons the image must not be changed at all.
func blockers(in Input) []string {
	st := in.State
	var out []string
	if n := in.Targets.Len(); n > MaxLaunchPermissions {
		out = append(out, fmt.Sprintf("the tag resolves to %d targets; AWS allows at most %d launch permissions per AMI", n, MaxLaunchPermissions))
	}
	if in.Targets.Len() == 0 {
		return out // revoking needs nothing from snapshots or keys
	}
	for _, s := range st.Snapshots {
		if s.Owner != "" && st.Owner != "" && s.Owner != st.Owner {
			out = append(out, fmt.Sprintf("snapshot %s belongs to account %s; only its owner can share it", s.ID, s.Owner))
		}
	}
	for _, k := range st.Keys {
		switch {
		case k.Manager == ManagerAWS:
			out = append(out, fmt.Sprintf("encrypted with the AWS managed key %s, which can never be shared: configure copyKeys[%q] (a customer-managed key of that region) and amishare shares a re-encrypted copy",
				k.ARN, awsid.RegionOf(k.ARN)))
		case k.Foreign(st.Owner):
			out = append(out, fmt.Sprintf("encrypted with key %s of account %s: its owner must allow the target accounts (statement in the log)", k.ARN, k.Owner))
		case k.Denied:
			out = append(out, fmt.Sprintf("key %s refuses this account's IAM (DescribeKey denied): its owner, account %s, must allow this account or the target accounts (statement in the log)", k.ARN, k.Owner))
		case in.KMS == config.ModeOff:
			out = append(out, fmt.Sprintf(`encrypted with customer-managed key %s and the configuration says "kms": "off"`, k.ARN))
		}
	}
	return out
}

// diff compares desired (accounts, organization and OU ARNs) with what cur
// grants. Add and Remove are sorted: accounts (digits) sort before ARNs.
func diff(desired []string, cur Perms, allowPublic bool) Diff {
	return Diff{
		Add:         minus(desired, cur.targets()),
		Remove:      minus(cur.targets(), desired),
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
