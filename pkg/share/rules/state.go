package rules

import (
	"slices"

	"github.com/amishare/amishare/pkg/amitag"
	"github.com/amishare/amishare/pkg/config"
)

// MaxLaunchPermissions is the most launch-permission entities AWS allows on one AMI.
const MaxLaunchPermissions = 1000

// maxMessage is the longest amishare:message value (AWS caps tag values at 256).
const maxMessage = 256

// Key managers as DescribeKey reports them.
const (
	ManagerAWS      = "AWS"
	ManagerCustomer = "CUSTOMER"
)

// Perms is who may use a resource: accounts, organizations and OUs (images
// only: create-volume permission cannot name an organization), and whether
// it is public.
type Perms struct {
	Accounts            []string `json:"accounts,omitempty"`
	Organizations       []string `json:"organizations,omitempty"`       // organization ARNs
	OrganizationalUnits []string `json:"organizationalUnits,omitempty"` // OU ARNs
	Public              bool     `json:"public,omitempty"`
}

// Targets returns every account, organization and OU of p.
func (p Perms) Targets() []string {
	out := slices.Concat(p.Accounts, p.Organizations, p.OrganizationalUnits)
	return out
}

// SnapshotState is one EBS snapshot behind the image, as read.
type SnapshotState struct {
	ID        string `json:"snapshotId"`
	Owner     string `json:"owner"`
	Encrypted bool   `json:"encrypted"`
	KeyARN    string `json:"keyArn,omitempty"`
	Perms     Perms  `json:"perms"`
	// Images is the snapshot's record (amishare:image): the images amishare
	// shared it for.
	Images []string `json:"images,omitempty"`
	// Unread: its permissions could not be read (a transient error), so
	// nothing is decided about it.
	Unread bool `json:"unread,omitempty"`
}

// KeyState is one KMS key behind the image's snapshots, as read.
type KeyState struct {
	ARN      string   `json:"keyArn"`
	Owner    string   `json:"owner"`
	Manager  string   `json:"manager,omitempty"`  // AWS or CUSTOMER; empty when not described (foreign or Denied)
	Denied   bool     `json:"denied,omitempty"`   // DescribeKey was refused: the key is not usable by amishare
	Accounts []string `json:"accounts,omitempty"` // granted by amishare (policy statements or grants)
	// Organizations are the organizations ("o-…") and OUs ("o-…/ou-…")
	// amishare's policy statements grant (see kmspolicy.GranteeKey).
	Organizations []string `json:"organizations,omitempty"`
	Policy        string   `json:"-"` // key policy, as read (policy mode, or to find statements left by it)
	// Stale means amishare's statements in the policy are not as it writes
	// them for the grantees they name (edited by hand, e.g. an
	// organization's condition dropped, or written by an older version):
	// the policy is written back.
	Stale bool `json:"stale,omitempty"`
	// Grants lists the accounts amishare's own grants on the key are for,
	// when the mode is not grant and they were read (GrantsRead): grants
	// left by grant mode, revoked like any other access when an account
	// leaves the image.
	Grants     []string `json:"grants,omitempty"`
	GrantsRead bool     `json:"-"`
	// Statements lists who amishare's policy statements grant when the mode
	// is not policy: left by policy mode, which amishare may no longer
	// write; they are reported, and `amishare keys prune` removes them.
	Statements []string `json:"statements,omitempty"`
	// Unread: the key could not be read (a transient error): its statements
	// and grants stay as they are.
	Unread bool `json:"unread,omitempty"`
}

// Writable reports whether amishare may change who uses the key: a
// customer-managed key of the image's own account.
func (k KeyState) Writable(imageOwner string) bool {
	return k.Manager == ManagerCustomer && k.Owner == imageOwner
}

// Foreign reports whether the key belongs to another account than the image.
func (k KeyState) Foreign(imageOwner string) bool {
	return k.Owner != "" && imageOwner != "" && k.Owner != imageOwner
}

// Grantees returns every account, organization and OU the key grants.
func (k KeyState) Grantees() []string { return slices.Concat(k.Accounts, k.Organizations) }

// State is what the image, its snapshots and keys look like now.
type State struct {
	ImageID   string          `json:"imageId"`
	Owner     string          `json:"owner"`
	Image     Perms           `json:"image"`
	Snapshots []SnapshotState `json:"snapshots"`
	Keys      []KeyState      `json:"keys,omitempty"`
	// Disabled: EC2 removed the image's launch permissions when it was
	// disabled, and adds none until it is enabled again.
	Disabled bool `json:"disabled,omitempty"`
	// Unread says what could not be read (transient errors): nothing that
	// read was about is removed, and nothing is added.
	Unread []string `json:"unread,omitempty"`
}

// Input is everything a decision depends on.
type Input struct {
	Targets amitag.Targets
	State   State
	// Keep lists, per key ARN, the accounts, organizations ("o-…") and OUs
	// ("o-…/ou-…") other managed images still need on that key.
	Keep map[string][]string
	// KeepSnapshots lists, per snapshot id, accounts other managed images
	// using the same snapshot are shared with: they stay on the snapshot.
	KeepSnapshots map[string][]string
	KMS           config.KMSMode
	AllowPublic   bool
	// Known are the organization and OU ARNs the configuration knows
	// (config.Config.OrganizationTargets): they name a key statement's
	// organization or OU by its ARN when neither the targets nor the image
	// hold it (an OU removed by hand, an image that is gone).
	Known []string
	// Release: the image is no longer managed (every amishare tag deleted)
	// or gone, and its snapshots' record remains: everything amishare gave
	// is revoked, its launch permissions by a reset (ResetImageAttribute),
	// the only call the role allows on an image without amishare's tags.
	Release bool
	// Allowed reports whether a target is one amishare could have granted
	// (config.Config.Allowed): an image is reset only when every launch
	// permission it holds is one.
	Allowed func(target string) bool
	// Refusals are reasons, decided from the image's other tags, that
	// nothing may be added (an amishare:parameter tag refused, see
	// ParameterRefusal): the image is blocked with them.
	Refusals []string
}
