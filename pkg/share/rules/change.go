package rules

import (
	"strings"

	"github.com/amishare/amishare/pkg/awsid"
)

// Action is what a change does to a permission.
type Action string

// The actions of a change.
const (
	ActionAdd    Action = "add"
	ActionRemove Action = "remove"
)

// Change is one permission change, as applied (or planned in a dry run). It
// names exactly one of Account, OrganizationARN and OrganizationalUnitARN.
type Change struct {
	ImageID    string `json:"imageId"`
	SnapshotID string `json:"snapshotId,omitempty"`
	KeyARN     string `json:"keyArn,omitempty"`
	Account    string `json:"account,omitempty"` // a 12-digit id, or "all" for public access
	// OrganizationARN and OrganizationalUnitARN name an organization or OU
	// (on a key whose statement amishare cannot map back to an ARN: the id
	// the statement holds).
	OrganizationARN       string `json:"organizationArn,omitempty"`
	OrganizationalUnitARN string `json:"organizationalUnitArn,omitempty"`
	Action                Action `json:"action"`
}

// PublicGroup is the launch or create-volume permission group that makes a
// resource public. amishare never adds it.
const PublicGroup = "all"

// TargetKind is what a target string names.
type TargetKind int

// The kinds of target.
const (
	KindAccount TargetKind = iota // a 12-digit id, or "all" for public access
	KindOrganization
	KindOrganizationalUnit
)

// KindOf classifies a target: an account id, an organization (ARN, or the
// "o-…" id a key statement holds) or an OU (ARN, or "o-…/ou-…"). It is
// lenient on purpose: a launch permission read from EC2 is classified by
// the shape of its ARN, so that whatever is there can be removed.
func KindOf(target string) TargetKind {
	switch {
	case awsid.IsAccountID(target) || target == PublicGroup:
		return KindAccount
	case strings.Contains(target, ":ou/") || strings.Contains(target, "/ou-"):
		return KindOrganizationalUnit
	default:
		return KindOrganization
	}
}

// For returns c naming target in the field of its kind.
func (c Change) For(target string) Change {
	c.Account, c.OrganizationARN, c.OrganizationalUnitARN = "", "", ""
	switch KindOf(target) {
	case KindAccount:
		c.Account = target
	case KindOrganization:
		c.OrganizationARN = target
	case KindOrganizationalUnit:
		c.OrganizationalUnitARN = target
	}
	return c
}

// Changes lists every permission change of the plan, in the order the
// engine makes them (see Plan).
func (p Plan) Changes() []Change {
	var out []Change
	add := func(c Change, action Action, targets []string) {
		for _, a := range targets {
			c.Action = action
			out = append(out, c.For(a))
		}
	}
	img := Change{ImageID: p.ImageID}
	add(img, ActionRemove, p.Image.Remove)
	if p.Image.MakePrivate {
		add(img, ActionRemove, []string{PublicGroup})
	}
	for _, s := range p.Snapshots {
		c := Change{ImageID: p.ImageID, SnapshotID: s.SnapshotID}
		add(c, ActionRemove, s.Remove)
		if s.MakePrivate {
			add(c, ActionRemove, []string{PublicGroup})
		}
	}
	for _, k := range p.Keys {
		c := Change{ImageID: p.ImageID, KeyARN: k.KeyARN}
		add(c, ActionAdd, k.Add)
		add(c, ActionRemove, k.Remove)
		add(c, ActionRemove, minus(k.RevokeGrants, k.Remove))
	}
	for _, s := range p.Snapshots {
		add(Change{ImageID: p.ImageID, SnapshotID: s.SnapshotID}, ActionAdd, s.Add)
	}
	add(img, ActionAdd, p.Image.Add)
	return out
}
