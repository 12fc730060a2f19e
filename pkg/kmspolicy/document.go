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
	// the key, or the key's own account without IAM: a wildcard principal
	// without aws:PrincipalOrgID, or without excluding the key's account
	// (aws:PrincipalAccount). It cannot happen; Edit checks anyway before it
	// returns a policy.
	errUnscoped = errors.New("statement with a wildcard principal and no aws:PrincipalOrgID condition or no exclusion of the key's account")
	// ErrNoKeyAccount means an organization or OU was to be granted on a key
	// whose account is unknown: its statements could not exclude that account.
	ErrNoKeyAccount = errors.New("the key's account is needed to scope organization and OU statements")
	// ErrInvalidPartition means the partition is not like "aws" or "aws-cn".
	ErrInvalidPartition = errors.New("invalid partition")
)

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
func (d *document) canonical(desired []string, key Key) bool {
	want := ourStatements(desired, key)
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
				if p := o.partitions[j]; p != "" && p != key.Partition {
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

// Key names the KMS key a policy belongs to: its partition ("aws",
// "aws-cn", …), which the principals' ARNs carry, and its account, which
// every statement with a wildcard principal excludes (StringNotEquals
// aws:PrincipalAccount): the organization statements are for the other
// accounts of the organization, never a way for the key's own account to use
// the key without an IAM permission.
type Key struct {
	Partition string
	Account   string
}

// KeyOf returns the Key of a key ARN.
func KeyOf(keyARN string) Key {
	return Key{Partition: awsid.PartitionOf(keyARN), Account: awsid.AccountOf(keyARN)}
}

// check validates k, an empty partition meaning "aws".
func (k Key) check() (Key, error) {
	if k.Partition == "" {
		k.Partition = awsid.DefaultPartition
	}
	if !awsid.IsPartition(k.Partition) {
		return k, fmt.Errorf("%w: %q", ErrInvalidPartition, k.Partition)
	}
	if k.Account != "" && !awsid.IsAccountID(k.Account) {
		return k, fmt.Errorf("%w: key account %q", ErrInvalidAccount, k.Account)
	}
	return k, nil
}
