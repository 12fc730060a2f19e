// Package kmspolicy lets other accounts, organizations and organizational
// units (OUs) use a customer-managed KMS key that encrypts the EBS snapshots
// of a shared image: it edits the key policy (a pure core: Grantees, Edit,
// Statement) and makes the KMS calls that read and write it, or, in grant
// mode, create and revoke grants (accounts only: a grant cannot name an
// organization).
//
// The engine owns the statements it finds by Sid: UseSid and GrantSid for
// accounts (the accounts are their principals), and for each organization
// or OU a pair named UseSid or GrantSid, "-", and the organization id (and
// "-" and the OU id), whose principal is "*" scoped by aws:PrincipalOrgID
// (and aws:PrincipalOrgPaths for an OU). Every other statement is someone
// else's: it is carried through byte for byte, unknown fields and all, in its
// original order.
//
// A grantee is named by a 12-digit account id, an organization id (o-…) or an
// OU's "o-…/ou-…" path; Edit, EnsurePolicy and Statement also take the ARN of
// an organization or OU, which they reduce to that id.
package kmspolicy
