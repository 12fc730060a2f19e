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

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/amishare/amishare/pkg/awsid"
	"github.com/aws/aws-sdk-go-v2/aws/arn"
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

// MaxPolicyBytes is the largest key policy KMS accepts: "The resulting key
// policy document cannot exceed 32 KB (32,768 bytes)" (KMS developer guide,
// "Change a key policy"; PutKeyPolicy API reference).
const MaxPolicyBytes = 32768

const (
	policyVersion = "2012-10-17"
	statementKey  = "Statement"
	sidKey        = "Sid"
	principalKey  = "Principal"
)

var (
	// ErrPolicyTooLarge means the edited policy would exceed MaxPolicyBytes,
	// so it cannot be written: too many accounts share this key by policy
	// (grant mode does not have this limit).
	ErrPolicyTooLarge = errors.New("key policy would exceed the KMS size limit")
	// ErrInvalidPolicy means the policy is not a JSON object with a Statement
	// list, or one of our statements holds something we cannot read back (a
	// principal other than an account). Nothing is written.
	ErrInvalidPolicy = errors.New("invalid key policy")
	// ErrInvalidAccount means a grantee is neither a 12-digit account id nor
	// an organization or OU (id, "o-…/ou-…" path or ARN).
	ErrInvalidAccount = errors.New("invalid account id")
	// errUnscoped means a statement this package built would let anyone use
	// the key: a wildcard principal without aws:PrincipalOrgID. It cannot
	// happen; Edit checks anyway before it returns a policy.
	errUnscoped = errors.New("statement with a wildcard principal and no aws:PrincipalOrgID condition")
	// ErrInvalidPartition means the partition is not like "aws" or "aws-cn".
	ErrInvalidPartition = errors.New("invalid partition")
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
)

// grantCondition limits CreateGrant to grants for AWS services (EBS) acting
// for the grantee: "kms:GrantIsForAWSResource".
func grantCondition() map[string]any { return map[string]any{"kms:GrantIsForAWSResource": "true"} }

// ourStatements returns the statements granting grantees (keys, sorted,
// valid): the account pair when there are accounts, then a pair for each
// organization or OU.
func ourStatements(grantees []string, partition string) []statement {
	var arns []string
	var orgs []string
	for _, g := range grantees {
		if awsid.IsAccountID(g) {
			arns = append(arns, rootARN(partition, g))
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
		out = append(out, orgStatements(g)...)
	}
	return out
}

func rootARN(partition, account string) string {
	return "arn:" + partition + ":iam::" + account + ":root"
}

// orgStatements returns the pair of statements for an organization ("o-…")
// or an OU ("o-…/ou-…"). The principal is everyone, so the organization
// condition is what limits them: StringEquals aws:PrincipalOrgID, and for an
// OU also ForAnyValue:StringLike aws:PrincipalOrgPaths on "o-…/*/ou-…/*",
// which matches the OU's path whatever the root and parent OUs before it,
// and the OU's own accounts and those of its child OUs after it (an
// account's path ends with its parent OU and a "/").
func orgStatements(grantee string) []statement {
	org, ou, _ := strings.Cut(grantee, "/")
	scope := func() conditions {
		c := conditions{{"StringEquals", map[string]any{orgIDKey: org}}}
		if ou != "" {
			c = append(c, condition{"ForAnyValue:StringLike", map[string]any{orgPathsKey: []string{org + "/*/" + ou + "/*"}}})
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

// granteeKey reduces a grantee to the form our statements name it by: an
// account id, an organization id, or an OU's "o-…/ou-…".
func granteeKey(s string) (string, bool) {
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

// GranteeKey returns the name our statements give a grantee (account id,
// "o-…" or "o-…/ou-…") for an account id, an organization or OU ARN, or that
// name itself; ok is false for anything else.
func GranteeKey(s string) (key string, ok bool) { return granteeKey(s) }

// scoped reports whether s cannot let anyone outside its principals use the
// key: a statement whose principal is a wildcard must carry a non-empty
// StringEquals aws:PrincipalOrgID condition.
func scoped(s statement) bool {
	if p, ok := s.Principal.(awsPrincipal); ok && !slices.Contains(p.AWS, "*") {
		return len(p.AWS) > 0
	}
	id, _ := s.Condition.get("StringEquals", orgIDKey).(string)
	return awsid.IsOrganizationID(id)
}

// Accounts returns the account ids our statements currently grant, sorted.
func Accounts(policy string) ([]string, error) {
	g, err := Grantees(policy)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(g, func(s string) bool { return !awsid.IsAccountID(s) }), nil
}

// Grantees returns who our statements currently grant, sorted: account ids,
// organization ids ("o-…") and OUs ("o-…/ou-…").
func Grantees(policy string) ([]string, error) {
	doc, err := parse(policy)
	if err != nil {
		return nil, err
	}
	return doc.grantees(), nil
}

// Edit returns policy with our statements granting (current ∪ add) \ remove;
// a grantee in both add and remove ends up removed. Grantees are account ids,
// organizations and OUs (see GranteeKey). Statements of grantees that remain
// stay where they were (new ones are appended), every other statement is
// kept byte for byte, in order.
//
// changed is false when the policy already grants exactly that, with our
// statements as this version writes them; callers must not write then, and
// out is policy itself. partition ("aws", "aws-cn", "aws-us-gov", …; empty
// means "aws") is the key's, used for the principals' ARNs. An empty policy
// is treated as {"Version":"2012-10-17","Statement":[]}.
//
// Our statements are indented when that fits in MaxPolicyBytes, compact
// when only that fits; when even that is too large, the whole policy is
// compacted, and when that does not fit either the error wraps
// ErrPolicyTooLarge.
func Edit(policy string, add, remove []string, partition string) (out string, changed bool, err error) {
	partition, err = checkPartition(partition)
	if err != nil {
		return "", false, err
	}
	addSet, err := granteeSet(add)
	if err != nil {
		return "", false, fmt.Errorf("grantees to add: %w", err)
	}
	removeSet, err := granteeSet(remove)
	if err != nil {
		return "", false, fmt.Errorf("grantees to remove: %w", err)
	}
	doc, err := parse(policy)
	if err != nil {
		return "", false, err
	}

	current := doc.grantees()
	want := map[string]bool{}
	for _, g := range current {
		want[g] = true
	}
	for g := range addSet {
		want[g] = true
	}
	for g := range removeSet {
		delete(want, g)
	}
	desired := sortedKeys(want)

	if slices.Equal(current, desired) && doc.canonical(desired, partition) {
		if isBlank(policy) {
			// Give callers JSON, never "", even when there is nothing to do.
			b, err := doc.render(doc.stmts, nil, layoutCompact)
			return string(b), false, err
		}
		return policy, false, nil
	}

	fresh, err := freshStatements(desired, partition)
	if err != nil {
		return "", false, err
	}
	var b []byte
	for _, layout := range []layout{layoutIndented, layoutOursCompact, layoutCompact} {
		if b, err = doc.render(doc.replaceOurs(fresh), fresh, layout); err != nil {
			return "", false, err
		}
		if len(b) <= MaxPolicyBytes {
			return string(b), true, nil
		}
	}
	return "", false, fmt.Errorf("%w: %d bytes granting %d accounts, organizations and OUs, limit %d",
		ErrPolicyTooLarge, len(b), len(desired), MaxPolicyBytes)
}

// freshStatements marshals our statements for desired, checking each is
// scoped (see scoped).
func freshStatements(desired []string, partition string) ([]json.RawMessage, error) {
	var out []json.RawMessage
	for _, s := range ourStatements(desired, partition) {
		if !scoped(s) {
			return nil, fmt.Errorf("%w: %s", errUnscoped, s.Sid)
		}
		b, err := marshal(s, false)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

// Statement returns the JSON (a list) of the statements this package would
// write for grantees (accounts, organizations, OUs), for telling the owner of
// a key we cannot edit exactly what to add. Entries that are none of those
// are left out; an invalid partition falls back to "aws".
func Statement(grantees []string, partition string) string {
	partition, err := checkPartition(partition)
	if err != nil {
		partition = awsid.DefaultPartition
	}
	set := map[string]bool{}
	for _, g := range grantees {
		if k, ok := granteeKey(g); ok {
			set[k] = true
		}
	}
	if len(set) == 0 {
		return "[]"
	}
	b, err := marshal(ourStatements(sortedKeys(set), partition), true)
	if err != nil {
		// Our own statements always marshal.
		panic(err)
	}
	return string(b)
}

// document is a parsed key policy. Top-level members keep their order and
// their bytes; the statements are kept raw so nothing we do not own is
// reinterpreted.
type document struct {
	keys   []string
	values map[string]json.RawMessage
	stmts  []json.RawMessage
	ours   []ourStatement
}

// ourStatement is a statement with one of our Sids.
type ourStatement struct {
	index  int
	sid    string
	fields map[string]json.RawMessage
	// org is the organization ("o-…") or OU ("o-…/ou-…") an organization
	// statement is for, from its Sid; "" for the account statements.
	org      string
	accounts []string // as found, may repeat
	// partitions[i] is the partition of the ARN accounts[i] came from, ""
	// for a bare id; an ARN of another partition than the key's gets the
	// statement rewritten.
	partitions []string
}

func isBlank(policy string) bool { return strings.TrimSpace(policy) == "" }

func parse(policy string) (*document, error) {
	doc := &document{values: map[string]json.RawMessage{}}
	if isBlank(policy) {
		doc.keys = []string{"Version", statementKey}
		doc.values["Version"] = json.RawMessage(`"` + policyVersion + `"`)
		doc.values[statementKey] = json.RawMessage(`[]`)
		return doc, nil
	}
	if !json.Valid([]byte(policy)) {
		return nil, fmt.Errorf("%w: not JSON", ErrInvalidPolicy)
	}
	dec := json.NewDecoder(strings.NewReader(policy))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("%w: not a JSON object", ErrInvalidPolicy)
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidPolicy, err)
		}
		key, _ := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, fmt.Errorf("%w: member %q: %w", ErrInvalidPolicy, key, err)
		}
		if _, dup := doc.values[key]; dup {
			return nil, fmt.Errorf("%w: member %q appears twice", ErrInvalidPolicy, key)
		}
		doc.keys = append(doc.keys, key)
		doc.values[key] = raw
	}

	raw := bytes.TrimSpace(doc.values[statementKey])
	switch {
	case len(raw) == 0 || string(raw) == "null":
	case raw[0] == '[':
		if err := json.Unmarshal(raw, &doc.stmts); err != nil {
			return nil, fmt.Errorf("%w: Statement: %w", ErrInvalidPolicy, err)
		}
	case raw[0] == '{':
		// IAM allows a single statement object instead of a list.
		doc.stmts = []json.RawMessage{raw}
	default:
		return nil, fmt.Errorf("%w: Statement is neither a list nor an object", ErrInvalidPolicy)
	}

	for i, s := range doc.stmts {
		o, ok, err := readOurs(s)
		if err != nil {
			return nil, fmt.Errorf("%w: statement %d: %w", ErrInvalidPolicy, i, err)
		}
		if ok {
			o.index = i
			doc.ours = append(doc.ours, o)
		}
	}
	return doc, nil
}

// readOurs reports whether s is one of our statements and, if so, reads
// whom it grants: for an organization statement the organization or OU its
// Sid names (whatever it holds: Edit rewrites it if it is not exactly ours),
// for an account statement its principals. Anything else, including
// non-objects, is not ours.
func readOurs(s json.RawMessage) (ourStatement, bool, error) {
	var fields map[string]json.RawMessage
	if json.Unmarshal(s, &fields) != nil {
		return ourStatement{}, false, nil
	}
	var sid string
	if json.Unmarshal(fields[sidKey], &sid) != nil {
		return ourStatement{}, false, nil
	}
	if org, ok := granteeOfSid(sid); ok {
		return ourStatement{sid: sid, fields: fields, org: org}, true, nil
	}
	if sid != UseSid && sid != GrantSid {
		return ourStatement{}, false, nil
	}
	o := ourStatement{sid: sid, fields: fields}
	var p map[string]json.RawMessage
	if err := json.Unmarshal(fields[principalKey], &p); err != nil || p == nil {
		return o, false, fmt.Errorf("%s: Principal is not an object of accounts", sid)
	}
	for k := range p {
		if k != "AWS" {
			return o, false, fmt.Errorf("%s: unexpected principal type %q", sid, k)
		}
	}
	var names []string
	var one string
	if err := json.Unmarshal(p["AWS"], &one); err == nil {
		names = []string{one}
	} else if err := json.Unmarshal(p["AWS"], &names); err != nil {
		return o, false, fmt.Errorf("%s: Principal.AWS is neither a string nor a list of strings", sid)
	}
	for _, n := range names {
		acct, part, ok := parsePrincipal(n)
		if !ok {
			return o, false, fmt.Errorf("%s: principal %q is not an account", sid, n)
		}
		o.accounts = append(o.accounts, acct)
		o.partitions = append(o.partitions, part)
	}
	return o, true, nil
}

// parsePrincipal reads an account principal: a bare 12-digit id (partition
// "") or arn:PARTITION:iam::ID:root. IAM treats both as the same account.
func parsePrincipal(s string) (account, partition string, ok bool) {
	if awsid.IsAccountID(s) {
		return s, "", true
	}
	a, err := arn.Parse(s)
	if err != nil || a.Service != "iam" || a.Region != "" || a.Resource != "root" ||
		!awsid.IsAccountID(a.AccountID) || !awsid.IsPartition(a.Partition) {
		return "", "", false
	}
	return a.AccountID, a.Partition, true
}

// grantees returns the union of what our statements grant, sorted.
func (d *document) grantees() []string {
	set := map[string]bool{}
	for _, o := range d.ours {
		if o.org != "" {
			set[o.org] = true
		}
		for _, a := range o.accounts {
			set[a] = true
		}
	}
	return sortedKeys(set)
}

// canonical reports whether our statements are exactly what this version
// would write for desired: the account statements up to how the principals
// are spelled (bare id or ARN, string or list, any order: those grant the
// same), the organization statements by meaning.
func (d *document) canonical(desired []string, partition string) bool {
	want := ourStatements(desired, partition)
	if len(d.ours) != len(want) {
		return false
	}
	for _, w := range want {
		i := slices.IndexFunc(d.ours, func(o ourStatement) bool { return o.sid == w.Sid })
		if i < 0 {
			return false
		}
		o := d.ours[i]
		skip := ""
		if o.org == "" {
			skip = principalKey
			set := map[string]bool{}
			for j, a := range o.accounts {
				if p := o.partitions[j]; p != "" && p != partition {
					return false
				}
				set[a] = true
			}
			var accounts []string
			for _, g := range desired {
				if awsid.IsAccountID(g) {
					accounts = append(accounts, g)
				}
			}
			if !slices.Equal(sortedKeys(set), accounts) {
				return false
			}
		}
		got, err := decodeFields(o.fields, skip)
		if err != nil {
			return false
		}
		wb, err := json.Marshal(w)
		if err != nil {
			return false
		}
		var wm map[string]json.RawMessage
		if err := json.Unmarshal(wb, &wm); err != nil {
			return false
		}
		wantMeaning, err := decodeFields(wm, skip)
		if err != nil || !reflect.DeepEqual(got, wantMeaning) {
			return false
		}
	}
	return true
}

// decodeFields decodes a statement's members, except skip, to compare them by
// meaning. Numbers stay json.Number so no value is out of range.
func decodeFields(fields map[string]json.RawMessage, skip string) (map[string]any, error) {
	m := make(map[string]any, len(fields))
	for k, raw := range fields {
		if k == skip {
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		m[k] = v
	}
	return m, nil
}

// replaceOurs returns the statements with ours replaced by fresh: at the
// place of the first of ours, or appended; every other statement stays.
func (d *document) replaceOurs(fresh []json.RawMessage) []json.RawMessage {
	isOurs := map[int]bool{}
	for _, o := range d.ours {
		isOurs[o.index] = true
	}
	out := make([]json.RawMessage, 0, len(d.stmts)+len(fresh))
	placed := false
	for i, s := range d.stmts {
		if !isOurs[i] {
			out = append(out, s)
			continue
		}
		if !placed {
			out = append(out, fresh...)
			placed = true
		}
	}
	if !placed {
		out = append(out, fresh...)
	}
	return out
}

// layout is how render writes a policy.
type layout int

const (
	// layoutIndented indents the document and our statements; every other
	// member and statement is written exactly as it was read.
	layoutIndented layout = iota
	// layoutOursCompact is layoutIndented with our statements compact.
	layoutOursCompact
	// layoutCompact compacts everything, ours and others' (only when
	// nothing else fits in MaxPolicyBytes).
	layoutCompact
)

// render writes the document with stmts as its Statement list, members in
// their original order. ours are the statements of stmts that are ours (by
// identity of their bytes), which layoutIndented indents.
func (d *document) render(stmts, ours []json.RawMessage, l layout) ([]byte, error) {
	keys := d.keys
	if !slices.Contains(keys, statementKey) {
		keys = append(slices.Clone(keys), statementKey)
	}
	isOurs := func(s json.RawMessage) bool {
		return slices.ContainsFunc(ours, func(o json.RawMessage) bool { return len(o) > 0 && len(s) > 0 && &o[0] == &s[0] })
	}
	var buf bytes.Buffer
	buf.WriteString("{\n")
	for i, k := range keys {
		if i > 0 {
			buf.WriteString(",\n")
		}
		kb, err := marshal(k, false)
		if err != nil {
			return nil, err
		}
		buf.WriteString("  ")
		buf.Write(kb)
		buf.WriteString(": ")
		if k != statementKey {
			buf.Write(d.values[k])
			continue
		}
		buf.WriteString("[")
		for j, s := range stmts {
			if j > 0 {
				buf.WriteByte(',')
			}
			buf.WriteString("\n    ")
			if l == layoutIndented && isOurs(s) {
				if err := json.Indent(&buf, s, "    ", "  "); err != nil {
					return nil, fmt.Errorf("rendering key policy: %w", err)
				}
				continue
			}
			buf.Write(s)
		}
		if len(stmts) > 0 {
			buf.WriteString("\n  ")
		}
		buf.WriteString("]")
	}
	buf.WriteString("\n}")
	if l != layoutCompact {
		if !json.Valid(buf.Bytes()) {
			return nil, fmt.Errorf("rendering key policy: %w: result is not JSON", ErrInvalidPolicy)
		}
		return buf.Bytes(), nil
	}
	var out bytes.Buffer
	if err := json.Compact(&out, buf.Bytes()); err != nil {
		return nil, fmt.Errorf("rendering key policy: %w", err)
	}
	return out.Bytes(), nil
}

// marshal is json.Marshal without HTML escaping, which policies do not need.
func marshal(v any, indent bool) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if indent {
		enc.SetIndent("", "  ")
	}
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

func checkPartition(p string) (string, error) {
	if p == "" {
		return awsid.DefaultPartition, nil
	}
	if !awsid.IsPartition(p) {
		return "", fmt.Errorf("%w: %q", ErrInvalidPartition, p)
	}
	return p, nil
}

func accountSet(ids []string) (map[string]bool, error) {
	set := make(map[string]bool, len(ids))
	for _, id := range ids {
		if !awsid.IsAccountID(id) {
			return nil, fmt.Errorf("%w: %q", ErrInvalidAccount, id)
		}
		set[id] = true
	}
	return set, nil
}

// granteeSet reduces grantees to their keys (see GranteeKey).
func granteeSet(grantees []string) (map[string]bool, error) {
	set := make(map[string]bool, len(grantees))
	for _, g := range grantees {
		k, ok := granteeKey(g)
		if !ok {
			return nil, fmt.Errorf("%w: %q", ErrInvalidAccount, g)
		}
		set[k] = true
	}
	return set, nil
}

func sortedKeys(set map[string]bool) []string {
	out := make([]string, 0, len(set))
	for k, ok := range set {
		if ok {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}
