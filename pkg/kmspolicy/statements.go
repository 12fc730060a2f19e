package kmspolicy

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"

	"github.com/amishare/amishare/pkg/awsid"
)

// Sids of the statements this package owns. Changing them orphans the
// statements already written under the old names.
const (
	// UseSid lets the accounts use the key for EBS volumes and snapshot copies.
	UseSid = "amishare-ebs-use"
	// GrantSid lets the accounts' EBS (an AWS service acting for them) create
	// grants on the key; never grants for anything else.
	GrantSid = "amishare-ebs-grant"
)

// useActions are what EBS needs on the key to create volumes from, and copy,
// snapshots encrypted under it: the list of the EBS guide's "Share the KMS
// key used to encrypt a shared Amazon EBS snapshot". ReEncrypt* covers
// ReEncryptFrom and ReEncryptTo.
var useActions = []string{
	"kms:Decrypt",
	"kms:DescribeKey",
	"kms:ReEncrypt*",
	"kms:GenerateDataKey",
	"kms:GenerateDataKeyWithoutPlaintext",
}

// statement is the shape of our own statements; field order is the order
// they are written in.
type statement struct {
	Sid       string     `json:"Sid"`
	Effect    string     `json:"Effect"`
	Principal any        `json:"Principal"`
	Action    any        `json:"Action"`
	Resource  string     `json:"Resource"`
	Condition conditions `json:"Condition,omitempty"`
}

// conditions is a statement's Condition block, written in this order (the
// organization scope first, for a reader) rather than Go's sorted map order.
type conditions []condition

type condition struct {
	op   string         // e.g. "StringEquals"
	keys map[string]any // condition key -> value(s)
}

// get returns the value of key under op, nil when absent.
func (cs conditions) get(op, key string) any {
	for _, c := range cs {
		if c.op == op {
			return c.keys[key]
		}
	}
	return nil
}

// MarshalJSON writes the operators in order.
func (cs conditions) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, c := range cs {
		if i > 0 {
			b.WriteByte(',')
		}
		op, err := json.Marshal(c.op)
		if err != nil {
			return nil, err
		}
		keys, err := json.Marshal(c.keys)
		if err != nil {
			return nil, err
		}
		b.Write(op)
		b.WriteByte(':')
		b.Write(keys)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

type awsPrincipal struct {
	AWS []string `json:"AWS"`
}

// Condition keys of the organization statements: global condition keys of
// IAM, in the request context of every signed request by a principal of an
// account that belongs to an organization.
const (
	orgIDKey    = "aws:PrincipalOrgID"    // the organization's id
	orgPathsKey = "aws:PrincipalOrgPaths" // o-…/r-…/ou-…/…/ of the account, multivalued
	// principalAccountKey is the caller's account: every statement with a
	// wildcard principal excludes the key's own.
	principalAccountKey = "aws:PrincipalAccount"
)

// grantCondition limits CreateGrant to grants for AWS services (EBS) acting
// for the grantee: "kms:GrantIsForAWSResource".
func grantCondition() map[string]any { return map[string]any{"kms:GrantIsForAWSResource": "true"} }

// ourStatements returns the statements granting grantees (keys, sorted,
// valid): the account pair when there are accounts, then a pair for each
// organization or OU.
func ourStatements(grantees []string, key Key) []statement {
	var arns []string
	var orgs []string
	for _, g := range grantees {
		if awsid.IsAccountID(g) {
			arns = append(arns, awsid.RootARN(key.Partition, g))
		} else {
			orgs = append(orgs, g)
		}
	}
	var out []statement
	if len(arns) > 0 {
		out = append(out,
			statement{
				Sid:       UseSid,
				Effect:    "Allow",
				Principal: awsPrincipal{AWS: arns},
				Action:    slices.Clone(useActions),
				Resource:  "*",
			},
			statement{
				Sid:       GrantSid,
				Effect:    "Allow",
				Principal: awsPrincipal{AWS: slices.Clone(arns)},
				Action:    "kms:CreateGrant",
				Resource:  "*",
				Condition: conditions{{"Bool", grantCondition()}},
			})
	}
	for _, g := range orgs {
		out = append(out, orgStatements(g, key.Account)...)
	}
	return out
}

// orgStatements returns the pair of statements for an organization ("o-…")
// or an OU ("o-…/ou-…"). The principal is everyone, so the organization
// condition is what limits them: StringEquals aws:PrincipalOrgID, and for an
// OU also ForAnyValue:StringLike aws:PrincipalOrgPaths on "o-…/*/ou-…/*",
// which matches the OU's path whatever the root and parent OUs before it,
// and the OU's own accounts and those of its child OUs after it (an
// account's path ends with its parent OU and a "/"). StringNotEquals
// aws:PrincipalAccount leaves out the key's own account (owner), which is
// normally in the organization: for its principals a key policy statement
// alone grants use of the key, without any IAM permission.
func orgStatements(grantee, owner string) []statement {
	org, ou, _ := strings.Cut(grantee, "/")
	scope := func() conditions {
		c := conditions{{"StringEquals", map[string]any{orgIDKey: org}}}
		if ou != "" {
			c = append(c, condition{"ForAnyValue:StringLike", map[string]any{orgPathsKey: []string{org + "/*/" + ou + "/*"}}})
		}
		if owner != "" {
			c = append(c, condition{"StringNotEquals", map[string]any{principalAccountKey: owner}})
		}
		return c
	}
	use := statement{
		Sid:       UseSid + "-" + sidSuffix(grantee),
		Effect:    "Allow",
		Principal: "*",
		Action:    slices.Clone(useActions),
		Resource:  "*",
		Condition: scope(),
	}
	grant := statement{
		Sid:       GrantSid + "-" + sidSuffix(grantee),
		Effect:    "Allow",
		Principal: "*",
		Action:    "kms:CreateGrant",
		Resource:  "*",
		Condition: scope(),
	}
	grant.Condition = append(grant.Condition, condition{"Bool", grantCondition()})
	return []statement{use, grant}
}

// sidSuffix names an organization or OU in a Sid: "o-…" or "o-…-ou-…"
// (letters, digits and dashes only).
func sidSuffix(grantee string) string { return strings.Replace(grantee, "/", "-", 1) }

// granteeOfSid reads the organization or OU back from the suffix of one of
// our Sids; ok is false when sid is not one of ours.
func granteeOfSid(sid string) (grantee string, ok bool) {
	var rest string
	switch {
	case strings.HasPrefix(sid, UseSid+"-"):
		rest = sid[len(UseSid)+1:]
	case strings.HasPrefix(sid, GrantSid+"-"):
		rest = sid[len(GrantSid)+1:]
	default:
		return "", false
	}
	if awsid.IsOrganizationID(rest) {
		return rest, true
	}
	// An organization id holds no dash after "o-", so the first "-ou-"
	// separates it from the OU id.
	org, ou, found := strings.Cut(rest, "-ou-")
	if found && awsid.IsOrganizationID(org) && awsid.IsOrganizationalUnitID("ou-"+ou) {
		return org + "/ou-" + ou, true
	}
	return "", false
}

// GranteeKey returns the name our statements give a grantee: an account id,
// an organization id ("o-…") or an OU's "o-…/ou-…", for an account id, an
// organization or OU ARN, or that name itself; ok is false for anything else.
func GranteeKey(s string) (key string, ok bool) {
	switch {
	case awsid.IsAccountID(s), awsid.IsOrganizationID(s):
		return s, true
	case awsid.IsOrganizationARN(s):
		return awsid.OrganizationID(s), true
	case awsid.IsOrganizationalUnitARN(s):
		return awsid.OrganizationID(s) + "/" + awsid.OrganizationalUnitID(s), true
	}
	if org, ou, ok := strings.Cut(s, "/"); ok && awsid.IsOrganizationID(org) && awsid.IsOrganizationalUnitID(ou) {
		return s, true
	}
	return "", false
}

// scoped reports whether s cannot let anyone outside its principals use the
// key: a statement whose principal is a wildcard must carry a non-empty
// StringEquals aws:PrincipalOrgID condition.
func scoped(s statement, key Key) bool {
	if p, ok := s.Principal.(awsPrincipal); ok && !slices.Contains(p.AWS, "*") {
		return len(p.AWS) > 0
	}
	id, _ := s.Condition.get("StringEquals", orgIDKey).(string)
	owner, _ := s.Condition.get("StringNotEquals", principalAccountKey).(string)
	return awsid.IsOrganizationID(id) && owner == key.Account && awsid.IsAccountID(owner)
}
