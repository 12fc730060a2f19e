// Package kmspolicy lets other accounts use a customer-managed KMS key that
// encrypts the EBS snapshots of a shared image: it edits the key policy (a
// pure core: Accounts, Edit, Statement) and makes the KMS calls that read and
// write it, or, in grant mode, create and revoke grants.
//
// The engine owns exactly two statements, found by Sid (UseSid and GrantSid).
// Every other statement is someone else's: it is carried through as raw JSON,
// unknown fields and all, in its original order.
package kmspolicy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws/arn"

	"github.com/amishare/amishare/pkg/amitag"
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
	defaultPartition = "aws"
	policyVersion    = "2012-10-17"
	statementKey     = "Statement"
	sidKey           = "Sid"
	principalKey     = "Principal"
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
	// ErrInvalidAccount means an account id is not 12 digits.
	ErrInvalidAccount = errors.New("invalid account id")
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
	Sid       string                       `json:"Sid"`
	Effect    string                       `json:"Effect"`
	Principal awsPrincipal                 `json:"Principal"`
	Action    any                          `json:"Action"`
	Resource  string                       `json:"Resource"`
	Condition map[string]map[string]string `json:"Condition,omitempty"`
}

type awsPrincipal struct {
	AWS []string `json:"AWS"`
}

// ourStatements returns the two statements granting accounts (sorted, valid).
func ourStatements(accounts []string, partition string) []statement {
	arns := make([]string, len(accounts))
	for i, a := range accounts {
		arns[i] = rootARN(partition, a)
	}
	return []statement{
		{
			Sid:       UseSid,
			Effect:    "Allow",
			Principal: awsPrincipal{AWS: arns},
			Action:    slices.Clone(useActions),
			Resource:  "*",
		},
		{
			Sid:       GrantSid,
			Effect:    "Allow",
			Principal: awsPrincipal{AWS: slices.Clone(arns)},
			Action:    "kms:CreateGrant",
			Resource:  "*",
			Condition: map[string]map[string]string{
				"Bool": {"kms:GrantIsForAWSResource": "true"},
			},
		},
	}
}

func rootARN(partition, account string) string {
	return "arn:" + partition + ":iam::" + account + ":root"
}

// Accounts returns the account ids our statements currently grant, sorted.
func Accounts(policy string) ([]string, error) {
	doc, err := parse(policy)
	if err != nil {
		return nil, err
	}
	return doc.accounts(), nil
}

// Edit returns policy with our statements granting (current ∪ add) \ remove;
// an account in both add and remove ends up removed. When no account remains
// both statements are dropped. Our statements stay where they were (they are
// appended when new); every other statement is kept as it was, in order.
//
// changed is false when the policy already grants exactly that, with our
// statements as this version writes them; callers must not write then, and
// out is policy itself. partition ("aws", "aws-cn", "aws-us-gov", …; empty
// means "aws") is the key's, used for the principals' ARNs. An empty policy
// is treated as {"Version":"2012-10-17","Statement":[]}.
//
// The result is indented when that fits in MaxPolicyBytes, compact when only
// that fits, and otherwise an error wrapping ErrPolicyTooLarge.
func Edit(policy string, add, remove []string, partition string) (out string, changed bool, err error) {
	partition, err = checkPartition(partition)
	if err != nil {
		return "", false, err
	}
	addSet, err := accountSet(add)
	if err != nil {
		return "", false, fmt.Errorf("accounts to add: %w", err)
	}
	removeSet, err := accountSet(remove)
	if err != nil {
		return "", false, fmt.Errorf("accounts to remove: %w", err)
	}
	doc, err := parse(policy)
	if err != nil {
		return "", false, err
	}

	current := doc.accounts()
	want := map[string]bool{}
	for _, a := range current {
		want[a] = true
	}
	for a := range addSet {
		want[a] = true
	}
	for a := range removeSet {
		delete(want, a)
	}
	desired := sortedKeys(want)

	if slices.Equal(current, desired) && doc.canonical(desired, partition) {
		if isBlank(policy) {
			// Give callers JSON, never "", even when there is nothing to do.
			b, err := doc.render(doc.stmts, false)
			return string(b), false, err
		}
		return policy, false, nil
	}

	stmts, err := doc.replaceOurs(desired, partition)
	if err != nil {
		return "", false, err
	}
	b, err := doc.render(stmts, true)
	if err != nil {
		return "", false, err
	}
	if len(b) > MaxPolicyBytes {
		if b, err = doc.render(stmts, false); err != nil {
			return "", false, err
		}
	}
	if len(b) > MaxPolicyBytes {
		return "", false, fmt.Errorf("%w: %d bytes granting %d accounts, limit %d",
			ErrPolicyTooLarge, len(b), len(desired), MaxPolicyBytes)
	}
	return string(b), true, nil
}

// Statement returns the JSON (a list) of the statements this package would
// write for accounts, for telling the owner of a key we cannot edit exactly
// what to add. Entries that are not 12-digit account ids are left out; an
// invalid partition falls back to "aws".
func Statement(accounts []string, partition string) string {
	partition, err := checkPartition(partition)
	if err != nil {
		partition = defaultPartition
	}
	set := map[string]bool{}
	for _, a := range accounts {
		if amitag.IsAccountID(a) {
			set[a] = true
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

// document is a parsed key policy. Top-level members keep their order; the
// statements are kept raw so nothing we do not own is reinterpreted.
type document struct {
	keys   []string
	values map[string]json.RawMessage
	stmts  []json.RawMessage
	ours   []ourStatement
}

// ourStatement is a statement with one of our Sids.
type ourStatement struct {
	index    int
	sid      string
	fields   map[string]json.RawMessage
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

// readOurs reports whether s is one of our statements and, if so, reads the
// accounts it grants. Anything else, including non-objects, is not ours.
func readOurs(s json.RawMessage) (ourStatement, bool, error) {
	var fields map[string]json.RawMessage
	if json.Unmarshal(s, &fields) != nil {
		return ourStatement{}, false, nil
	}
	var sid string
	if json.Unmarshal(fields[sidKey], &sid) != nil || (sid != UseSid && sid != GrantSid) {
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
	if amitag.IsAccountID(s) {
		return s, "", true
	}
	a, err := arn.Parse(s)
	if err != nil || a.Service != "iam" || a.Region != "" || a.Resource != "root" ||
		!amitag.IsAccountID(a.AccountID) || !partitionRE.MatchString(a.Partition) {
		return "", "", false
	}
	return a.AccountID, a.Partition, true
}

// accounts returns the union of what our statements grant, sorted.
func (d *document) accounts() []string {
	set := map[string]bool{}
	for _, o := range d.ours {
		for _, a := range o.accounts {
			set[a] = true
		}
	}
	return sortedKeys(set)
}

// canonical reports whether our statements are exactly what this version
// would write for desired, up to how the principals are spelled (bare id or
// ARN, string or list, any order): those grant the same.
func (d *document) canonical(desired []string, partition string) bool {
	if len(desired) == 0 {
		return len(d.ours) == 0
	}
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
		set := map[string]bool{}
		for j, a := range o.accounts {
			if p := o.partitions[j]; p != "" && p != partition {
				return false
			}
			set[a] = true
		}
		if !slices.Equal(sortedKeys(set), desired) {
			return false
		}
		got, err := decodeFields(o.fields, principalKey)
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
		wantMeaning, err := decodeFields(wm, principalKey)
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

// replaceOurs returns the statements with ours rewritten for desired: at the
// place of the first of ours, or appended; duplicates of ours are dropped.
func (d *document) replaceOurs(desired []string, partition string) ([]json.RawMessage, error) {
	var fresh []json.RawMessage
	for _, s := range ourStatements(desired, partition) {
		if len(desired) == 0 {
			break
		}
		b, err := json.Marshal(s)
		if err != nil {
			return nil, err
		}
		fresh = append(fresh, b)
	}
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
	return out, nil
}

// render writes the document with stmts as its Statement list, members in
// their original order.
func (d *document) render(stmts []json.RawMessage, indent bool) ([]byte, error) {
	keys := d.keys
	if !slices.Contains(keys, statementKey) {
		keys = append(slices.Clone(keys), statementKey)
	}
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			buf.WriteByte(',')
		}
		kb, err := marshal(k, false)
		if err != nil {
			return nil, err
		}
		buf.Write(kb)
		buf.WriteByte(':')
		if k != statementKey {
			buf.Write(d.values[k])
			continue
		}
		buf.WriteByte('[')
		for j, s := range stmts {
			if j > 0 {
				buf.WriteByte(',')
			}
			buf.Write(s)
		}
		buf.WriteByte(']')
	}
	buf.WriteByte('}')
	var out bytes.Buffer
	var err error
	if indent {
		err = json.Indent(&out, buf.Bytes(), "", "  ")
	} else {
		err = json.Compact(&out, buf.Bytes())
	}
	if err != nil {
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

// partitionRE matches AWS partition names: aws, aws-cn, aws-us-gov, aws-iso-b…
var partitionRE = regexp.MustCompile(`^aws(-[a-z]+){0,3}$`)

func checkPartition(p string) (string, error) {
	if p == "" {
		return defaultPartition, nil
	}
	if !partitionRE.MatchString(p) {
		return "", fmt.Errorf("%w: %q", ErrInvalidPartition, p)
	}
	return p, nil
}

func accountSet(ids []string) (map[string]bool, error) {
	set := make(map[string]bool, len(ids))
	for _, id := range ids {
		if !amitag.IsAccountID(id) {
			return nil, fmt.Errorf("%w: %q", ErrInvalidAccount, id)
		}
		set[id] = true
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
