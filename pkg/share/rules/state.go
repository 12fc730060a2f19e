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

// targets returns every account, organization and OU of p.
func (p Perms) targets() []string {
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
	// Image is the snapshot's amishare:image tag: the image amishare shared it for.
	Image string `json:"image,omitempty"`
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
	Policy        string   `json:"-"` // key policy, policy mode only
	// Stale means amishare's statements in the policy are not as it writes
	// them for the grantees they name (edited by hand, e.g. an
	// organization's condition dropped): the policy is written back.
	Stale bool `json:"stale,omitempty"`
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
}
