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
	// Restore writes amishare's statements back as it owns them (see
	// KeyState.Stale), whether or not anyone is added or removed.
	Restore bool `json:"restore,omitempty"`
	// RevokeGrants lists the accounts whose amishare grants go although the
	// mode is not grant (grants left by grant mode).
	RevokeGrants []string `json:"revokeGrants,omitempty"`
}

// Empty reports whether the diff changes nothing.
func (k KeyDiff) Empty() bool {
	return len(k.Add) == 0 && len(k.Remove) == 0 && !k.Restore && len(k.RevokeGrants) == 0
}

// RecordSet is one value of the snapshots' record (amishare:image) and the
// snapshots that get it: one CreateTags call.
type RecordSet struct {
	Value       string   `json:"value"`
	SnapshotIDs []string `json:"snapshotIds"`
}

// Plan is every permission change a reconcile makes. The engine runs it in
// a safe order: the image's removals, the snapshots' removals, the record,
// the keys, the snapshots' additions, then the image's additions — so a
// target never sees an image it cannot use, and loses the image before what
// lies behind it.
type Plan struct {
	ImageID   string         `json:"imageId"`
	Image     Diff           `json:"image"`
	Snapshots []SnapshotDiff `json:"snapshots,omitempty"`
	Keys      []KeyDiff      `json:"keys,omitempty"`
	// Copies are the copies to make and the copies' tags to set (see DecideCopies).
	Copies []CopyStep `json:"copies,omitempty"`
	// Record names the image in its snapshots' record (amishare:image),
	// before any snapshot is shared, so that their permissions can be found
	// and revoked once the image is gone.
	Record []RecordSet `json:"record,omitempty"`
	// ResetImage: the image's launch permissions (Image.Remove) go by a
	// reset, not a modification (see Input.Release).
	ResetImage bool `json:"resetImage,omitempty"`
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
	// Status and Message are for the image's status tags; Status is empty
	// when none may be written (a released image has no amishare tag).
	Status  Status
	Message string
	// Blocked holds the reasons nothing may be added: the plan then only
	// removes (what the tag no longer names, what is public), and the status
	// is error. Removals never wait on what blocks an addition.
	Blocked []string
	// Warnings are worth the operator's attention but block nothing: a key
	// policy near KMS's size limit, statements left by policy mode.
	Warnings []string
	// NearLimit lists the keys whose policy is near KMS's size limit.
	NearLimit []string
	// Unrevoked lists the launch permissions of a released image that
	// amishare could not have granted: nothing is changed, a person must look.
	Unrevoked []string
	// Leftovers lists, per key, whom amishare's policy statements grant
	// while the mode is not policy (see KeyState.Statements).
	Leftovers []Leftover
}

// Leftover is a key whose policy holds amishare's statements although the
// configuration's mode may not write them.
type Leftover struct {
	KeyARN   string   `json:"keyArn"`
	Grantees []string `json:"grantees"`
}

// MaxKeyPolicyGrowth is how many bytes one image may add to a key policy
// in one reconcile: a quarter of KMS's limit, so that one image tagged with
// hundreds of targets cannot fill a key that other images share.
const MaxKeyPolicyGrowth = kmspolicy.MaxPolicyBytes / 4

// NearLimitBytes is the key policy size above which a warning is given:
// 80% of KMS's limit.
const NearLimitBytes = kmspolicy.MaxPolicyBytes * 8 / 10

// Decide computes, without any I/O, what must change for the image to be
// shared with exactly the targets, and the status that says so. When
// anything blocks an addition (a key amishare cannot give, too many
// targets, a read that failed, ...) nothing is added, and everything the
// tag no longer names is removed all the same.
func Decide(in Input) Decision {
	in.Targets = refuseUnreachable(in)
	if in.Release {
		in.Targets = amitag.Targets{}
	}
	st := in.State
	d := Decision{Plan: Plan{ImageID: st.ImageID}, Targets: in.Targets}
	if in.Release {
		if kept := ungrantable(st.Image, in.Allowed); len(kept) > 0 {
			// A reset would remove what amishare never gave: change nothing.
			d.Unrevoked = kept
			d.Blocked = []string{fmt.Sprintf("image %s is no longer managed, but holds launch permissions amishare could not have granted (%s): nothing revoked; remove them by hand",
				st.ImageID, strings.Join(kept, ", "))}
			d.Status, d.Message = "", TrimMessage(d.Blocked[0])
			return d
		}
	}
	d.Blocked = slices.Concat(blockers(in), in.Refusals, st.Unread)
	keys, reasons, warnings := decideKeys(in, len(d.Blocked) == 0 && !st.Disabled)
	d.Blocked = append(d.Blocked, reasons...)
	adds := len(d.Blocked) == 0 && !st.Disabled
	if !adds {
		keys, _, _ = decideKeys(in, false)
	}
	p := &d.Plan
	// The image is shared with every target; its snapshots only with the
	// accounts (create-volume permission cannot name an organization, and
	// launching an image shared with one needs no snapshot permission).
	p.Image = diff(in.Targets.All(), st.Image, in.AllowPublic)
	p.ResetImage = in.Release && !p.Image.Empty()
	var record []string
	for _, s := range st.Snapshots {
		if s.Unread {
			continue
		}
		sd := diff(in.Targets.Accounts, s.Perms, in.AllowPublic)
		sd.Remove = minus(sd.Remove, in.KeepSnapshots[s.ID])
		if !adds {
			sd.Add = nil
		}
		if !sd.Empty() {
			p.Snapshots = append(p.Snapshots, SnapshotDiff{SnapshotID: s.ID, Diff: sd})
		}
		// Recorded whenever the image has a target, even organizations only
		// (whose snapshots stay unshared): the record also leads to the
		// keys. The record names every image behind the snapshot.
		if adds && in.Targets.Len() > 0 && !slices.Contains(s.Images, st.ImageID) {
			record = append(record, s.ID)
		}
	}
	p.Record = recordSets(st, record)
	if !adds {
		p.Image.Add = nil
	}
	p.Keys = keys
	d.Warnings, d.NearLimit, d.Leftovers = warnings.messages, warnings.nearLimit, warnings.leftovers
	switch {
	case in.Release:
		d.Status = "" // no amishare tag to write on
	case len(d.Blocked) > 0:
		d.Status, d.Message = StatusError, strings.Join(d.Blocked, "; ")
	case st.Disabled:
		d.Status, d.Message = StatusUnshared, "image is disabled (EC2 removed its launch permissions); it is shared again when it is enabled"
	default:
		d.Status, d.Message = summarize(in.Targets)
	}
	if d.Status != "" && len(d.Warnings) > 0 {
		d.Message += "; " + strings.Join(d.Warnings, "; ")
	}
	d.Message = TrimMessage(d.Message)
	return d
}

// recordSets groups the snapshots to record by the record's new value: the
// images already recorded, and this one.
func recordSets(st State, snaps []string) []RecordSet {
	var sets []RecordSet
	for _, s := range st.Snapshots {
		if !slices.Contains(snaps, s.ID) {
			continue
		}
		value, _ := amitag.RecordValue(append(slices.Clone(s.Images), st.ImageID))
		i := slices.IndexFunc(sets, func(r RecordSet) bool { return r.Value == value })
		if i < 0 {
			sets = append(sets, RecordSet{Value: value})
			i = len(sets) - 1
		}
		sets[i].SnapshotIDs = append(sets[i].SnapshotIDs, s.ID)
	}
	return sets
}

// ungrantable returns the launch permissions amishare could not have
// granted: public, or a target the configuration does not allow.
func ungrantable(p Perms, allowed func(string) bool) []string {
	var out []string
	if p.Public {
		out = append(out, PublicGroup)
	}
	for _, t := range p.Targets() {
		if allowed == nil || !allowed(t) {
			out = append(out, t)
		}
	}
	return out
}

// keyWarnings gathers what decideKeys reports besides the plan.
type keyWarnings struct {
	messages  []string
	nearLimit []string
	leftovers []Leftover
}

// decideKeys decides the changes to the image's keys amishare may touch
// (customer-managed keys of the image's account, read without error):
// removals always, additions when adds. It returns the reasons additions
// must be refused (a key policy that would grow too much or exceed KMS's
// limit) and the warnings.
func decideKeys(in Input, adds bool) ([]KeyDiff, []string, keyWarnings) {
	var out []KeyDiff
	var blocked []string
	var w keyWarnings
	st := in.State
	names, desired := targetNames(in), KeyGrantees(in.Targets)
	for _, k := range st.Keys {
		if !k.Writable(st.Owner) || k.Unread {
			continue // refused by blockers when there is anything to share
		}
		kd := KeyDiff{KeyARN: k.ARN}
		if k.GrantsRead && in.KMS != config.ModeGrant {
			kd.RevokeGrants = minus(minus(k.Grants, in.Targets.Accounts), in.Keep[k.ARN])
		}
		if in.KMS != config.ModePolicy && len(k.Statements) > 0 {
			w.leftovers = append(w.leftovers, Leftover{KeyARN: k.ARN, Grantees: k.Statements})
			w.messages = append(w.messages, fmt.Sprintf("%s holds %d grantee(s) of policy mode: amishare keys prune", shortKey(k.ARN), len(k.Statements)))
		}
		if in.KMS != config.ModeOff {
			kd.Remove = names.of(minus(minus(k.Grantees(), desired), in.Keep[k.ARN]))
			if adds {
				kd.Add = names.of(minus(desired, k.Grantees()))
			}
			kd.Restore = k.Stale && in.KMS == config.ModePolicy
		}
		if in.KMS == config.ModePolicy && k.Policy != "" {
			key := kmspolicy.KeyOf(k.ARN)
			size := len(k.Policy)
			if !kd.Empty() {
				out, _, err := kmspolicy.Edit(k.Policy, kd.Add, kd.Remove, key)
				switch {
				case errors.Is(err, kmspolicy.ErrPolicyTooLarge):
					blocked = append(blocked, fmt.Sprintf("key %s: policy would exceed KMS's %d-byte limit", k.ARN, kmspolicy.MaxPolicyBytes))
				case err == nil && len(kd.Add) > 0:
					if grow := len(out) - len(k.Policy); grow > MaxKeyPolicyGrowth {
						blocked = append(blocked, fmt.Sprintf("key %s: these targets would grow its policy by %d bytes; one image may add at most %d (a quarter of KMS's limit)",
							k.ARN, grow, MaxKeyPolicyGrowth))
					}
					size = len(out)
				case err == nil:
					size = len(out)
				}
			}
			if size > NearLimitBytes {
				w.nearLimit = append(w.nearLimit, k.ARN)
				w.messages = append(w.messages, fmt.Sprintf("%s policy at %d%% of KMS's size limit", shortKey(k.ARN), size*100/kmspolicy.MaxPolicyBytes))
			}
		}
		if !kd.Empty() {
			out = append(out, kd)
		}
	}
	return out, blocked, w
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

// blockers lists the reasons nothing may be added to the image's sharing.
func blockers(in Input) []string {
	st := in.State
	var out []string
	if n := in.Targets.Len(); n > MaxLaunchPermissions {
		out = append(out, fmt.Sprintf("the tag resolves to %d targets; AWS allows at most %d launch permissions per AMI", n, MaxLaunchPermissions))
	}
	if in.Targets.Len() == 0 {
		return out // nothing to add: revoking needs nothing from snapshots or keys
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
		Add:         minus(desired, cur.Targets()),
		Remove:      minus(cur.Targets(), desired),
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

// shortKey names a key by its "key/ID" part: enough for a person reading
// the 256 characters of amishare:message (the log has the ARN).
func shortKey(arn string) string {
	if i := strings.LastIndex(arn, ":"); i >= 0 {
		return arn[i+1:]
	}
	return arn
}
