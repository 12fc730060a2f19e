// Package config reads amishare's configuration: one JSON document kept in an
// SSM String parameter. It is parsed strictly, because a typo in it decides
// who may use an organisation's machine images.
package config

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/amishare/amishare/pkg/amitag"
	"github.com/amishare/amishare/pkg/awsid"
)

// KMSMode says how the engine lets target accounts use customer-managed keys.
type KMSMode string

// The KMS modes. ModePolicy is the default.
const (
	ModePolicy KMSMode = "policy" // edit the key policy (statements owned by amishare)
	ModeGrant  KMSMode = "grant"  // create a KMS grant per target account
	ModeOff    KMSMode = "off"    // touch no key; refuse images encrypted with a customer key
)

// Config is the configuration document.
type Config struct {
	// AllowedAccounts are the accounts an image may ever be shared with, besides group members.
	AllowedAccounts []string `json:"allowedAccounts"`
	// AllowedOrganizations are the organizations (ARNs) an image may be shared with.
	AllowedOrganizations []string `json:"allowedOrganizations,omitempty"`
	// AllowedOrganizationalUnits are the OUs (ARNs) an image may be shared with.
	AllowedOrganizationalUnits []string `json:"allowedOrganizationalUnits,omitempty"`
	// Groups name sets of targets usable in the accounts tag: account ids and
	// organization or OU ARNs; members are allowed targets.
	Groups map[string][]string `json:"groups,omitempty"`
	// KMS is the key mode; empty means ModePolicy.
	KMS KMSMode `json:"kms,omitempty"`
	// DryRun computes and logs the plan but changes nothing and writes no tag.
	DryRun bool `json:"dryRun,omitempty"`
	// AllowPublic leaves an existing public launch permission alone; amishare never adds one.
	AllowPublic bool `json:"allowPublic,omitempty"`
	// AllowedRegions are the regions images may be copied to (amishare:regions); empty: none.
	AllowedRegions []string `json:"allowedRegions,omitempty"`
	// CopyKeys maps a region to the customer-managed KMS key copies in that
	// region are encrypted with (key id, key ARN or alias).
	CopyKeys map[string]string `json:"copyKeys,omitempty"`
	// SweepRate is the most AWS API calls per second a sweep makes, every
	// call counted (reads, writes, retries): 1 to MaxSweepRate; absent means
	// DefaultSweepRate.
	SweepRate int `json:"sweepRate,omitempty"`
	// DelegatedKeysOnly: amishare writes the policy of, or grants and
	// revokes grants on, only keys tagged amishare:managed = true (the stack
	// parameter DelegatedKeysOnly writes it). The role enforces the same for
	// the function; the engine enforces it for whoever runs it (the CLI with
	// an operator's credentials).
	DelegatedKeysOnly bool `json:"delegatedKeysOnly,omitempty"`

	// Parameters maps an SSM parameter name (under ParameterPrefix) to the
	// AMI name pattern (a glob on the image's Name: * and ? are the only
	// wildcards) of the images that may feed it (tag amishare:parameter).
	Parameters map[string]string `json:"parameters,omitempty"`
	// ParameterPrefix is where every parameter amishare keeps lies;
	// empty means DefaultParameterPrefix.
	ParameterPrefix string `json:"parameterPrefix,omitempty"`
	// Receivers are allowed accounts that run the receiver stack: amishare
	// assumes ReceiverRole there and keeps their own view of the images
	// shared with them (parameters, mirrored tags, Auto Scaling grants).
	Receivers []string `json:"receivers,omitempty"`
	// ReceiverRole is the name of the receivers' role; empty means DefaultReceiverRole.
	ReceiverRole string `json:"receiverRole,omitempty"`
	// MirrorTags are the image tag keys copied onto the shared image in
	// each receiver (tags are private to each account).
	MirrorTags []string `json:"mirrorTags,omitempty"`
	// AutoScalingGrants gives each receiver's Auto Scaling service-linked
	// role a grant on the customer-managed keys of the images shared with it.
	AutoScalingGrants bool `json:"autoScalingGrants,omitempty"`

	// Version is the SSM parameter's version the document was read from
	// (0 when not read from SSM): every decision's log line carries it.
	Version int64 `json:"-"`
	// ConfigParameter is the name of the SSM parameter the document was
	// read from ("" when not read from SSM): no parameter amishare keeps may
	// be it.
	ConfigParameter string `json:"-"`
}

// DefaultSweepRate is half of the refill rate EC2 documents for its
// non-mutating API token bucket, leaving the rest to the account's other tools.
const DefaultSweepRate = 10

// MaxSweepRate bounds sweepRate: far above what EC2 lets one account sustain.
const MaxSweepRate = 1000

var (
	groupRe = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.-]{0,63}$`)
)

// Parse decodes and validates a configuration document. Unknown fields,
// duplicate keys, trailing data, values of the wrong type, ids that are not
// 12 digits, organization or OU ARNs that do not match the patterns EC2
// Image Builder documents for launch permissions, empty groups and values
// out of range are errors. Every problem is reported, not only the first
// (Problems lists them).
func Parse(data []byte) (*Config, error) {
	// encoding/json keeps the last of duplicate keys: a value pasted into
	// the document (a group) could then replace the allowlist after it.
	if err := noDuplicateKeys(data); err != nil {
		return nil, invalid(err)
	}
	var fields map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&fields); err != nil {
		return nil, invalid(syntaxError(data, err))
	}
	if dec.More() {
		return nil, invalid(errors.New("data after the JSON object"))
	}
	var c Config
	var sweepRate *int
	known := c.fields(&sweepRate)
	// Unknown fields and values of the wrong type first, in the document's
	// order; then values out of range, field by field.
	var errs []error
	for _, key := range keysInOrder(data, fields) {
		f, ok := known[key]
		if !ok {
			errs = append(errs, fmt.Errorf("unknown field %q", key))
			continue
		}
		if err := json.Unmarshal(fields[key], f.dst); err != nil {
			errs = append(errs, fmt.Errorf("%s: %s is not %s", key, shortJSON(fields[key]), f.want))
			if key == "sweepRate" {
				sweepRate = &c.SweepRate // reported; no range to check
				c.SweepRate = DefaultSweepRate
			}
		}
	}
	switch {
	case sweepRate == nil:
		c.SweepRate = DefaultSweepRate
	case *sweepRate < 1 || *sweepRate > MaxSweepRate:
		errs = append(errs, fmt.Errorf("sweepRate: %d is not between 1 and %d calls per second", *sweepRate, MaxSweepRate))
	default:
		c.SweepRate = *sweepRate
	}
	errs = append(errs, c.validate()...)
	if len(errs) > 0 {
		return nil, invalid(errs...)
	}
	return &c, nil
}

// field is where a known field of the document is decoded, and what its
// value must be (for the error when it is not).
type field struct {
	dst  any
	want string
}

func (c *Config) fields(sweepRate **int) map[string]field {
	const list = "a list of strings"
	return map[string]field{
		"allowedAccounts":            {&c.AllowedAccounts, list},
		"allowedOrganizations":       {&c.AllowedOrganizations, list},
		"allowedOrganizationalUnits": {&c.AllowedOrganizationalUnits, list},
		"groups":                     {&c.Groups, "an object of group names to lists of strings"},
		"kms":                        {&c.KMS, `a string ("policy", "grant" or "off")`},
		"dryRun":                     {&c.DryRun, "true or false"},
		"allowPublic":                {&c.AllowPublic, "true or false"},
		"allowedRegions":             {&c.AllowedRegions, list},
		"copyKeys":                   {&c.CopyKeys, "an object of region names to key ids, ARNs or aliases"},
		"sweepRate":                  {sweepRate, "a whole number"},
		"delegatedKeysOnly":          {&c.DelegatedKeysOnly, "true or false"},
		"parameters":                 {&c.Parameters, "an object of parameter names to AMI name patterns"},
		"parameterPrefix":            {&c.ParameterPrefix, "a string"},
		"receivers":                  {&c.Receivers, list},
		"receiverRole":               {&c.ReceiverRole, "a string"},
		"mirrorTags":                 {&c.MirrorTags, list},
		"autoScalingGrants":          {&c.AutoScalingGrants, "true or false"},
	}
}

// invalidError is an invalid document: every problem found in it.
type invalidError struct{ problems []error }

func invalid(problems ...error) error { return &invalidError{problems: problems} }

func (e *invalidError) Error() string {
	msgs := make([]string, len(e.problems))
	for i, p := range e.problems {
		msgs[i] = p.Error()
	}
	return "configuration is not valid: " + strings.Join(msgs, "; ")
}

// Problems lists every problem of an invalid configuration that err
// reports (from Parse or a Loader), each a line of its own; nil when err
// is not about an invalid document.
func Problems(err error) []string {
	var inv *invalidError
	if !errors.As(err, &inv) {
		return nil
	}
	out := make([]string, len(inv.problems))
	for i, p := range inv.problems {
		out[i] = p.Error()
	}
	return out
}

// syntaxError words a decoding error of the whole document: where the JSON
// breaks (line and column), or that it is not an object.
func syntaxError(data []byte, err error) error {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		line, col := position(data, syntax.Offset-1) // Offset is just past the culprit
		return fmt.Errorf("line %d, column %d: %v", line, col, syntax)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New("the document ends before its JSON object does")
	case errors.As(err, &typ):
		return fmt.Errorf("the document is a JSON %s, not an object", typ.Value)
	}
	return err
}

// position turns a byte offset into a line and column, both from 1.
func position(data []byte, offset int64) (line, col int) {
	offset = max(min(offset, int64(len(data))), 0)
	before := data[:offset]
	line = bytes.Count(before, []byte("\n")) + 1
	col = int(offset) - (bytes.LastIndexByte(before, '\n') + 1)
	return line, max(col, 1)
}

// shortJSON renders a value of the document for an error: compact, and cut.
func shortJSON(raw json.RawMessage) string {
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		b.Reset()
		b.Write(raw)
	}
	s := b.String()
	if r := []rune(s); len(r) > 40 {
		s = string(r[:40]) + "..."
	}
	return s
}

// keysInOrder returns the keys of the document's object in the order they
// appear, so that its errors read top to bottom.
func keysInOrder(data []byte, fields map[string]json.RawMessage) []string {
	dec := json.NewDecoder(bytes.NewReader(data))
	var keys []string
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			break
		}
		if k, ok := tok.(string); ok {
			keys = append(keys, k)
		}
		var skip json.RawMessage
		if dec.Decode(&skip) != nil {
			break
		}
	}
	if len(keys) != len(fields) { // cannot happen for a document that decoded
		keys = slices.Sorted(maps.Keys(fields))
	}
	return keys
}

func (c *Config) validate() []error {
	var errs []error
	for _, id := range c.AllowedAccounts {
		if !awsid.IsAccountID(id) {
			errs = append(errs, fmt.Errorf("allowedAccounts: %q is not a 12-digit account id", id))
		}
	}
	for _, a := range c.AllowedOrganizations {
		if !awsid.IsOrganizationARN(a) {
			errs = append(errs, fmt.Errorf("allowedOrganizations: %q is not an organization ARN (arn:aws:organizations::MANAGEMENT_ACCOUNT:organization/o-…)", a))
		}
	}
	for _, a := range c.AllowedOrganizationalUnits {
		if !awsid.IsOrganizationalUnitARN(a) {
			errs = append(errs, fmt.Errorf("allowedOrganizationalUnits: %q is not an OU ARN (arn:aws:organizations::MANAGEMENT_ACCOUNT:ou/o-…/ou-…)", a))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(c.Groups)) {
		members := c.Groups[name]
		switch {
		case !groupRe.MatchString(name):
			errs = append(errs, fmt.Errorf("groups: name %q must start with a letter and hold only letters, digits, '.', '_' or '-' (at most 64)", name))
		case strings.EqualFold(name, "all"):
			errs = append(errs, errors.New(`groups: "all" is reserved (it means public)`))
		case awsid.IsOrganizationID(name) || awsid.IsOrganizationalUnitID(name):
			errs = append(errs, fmt.Errorf("groups: name %q is an organization or OU id, which the tag reads as such", name))
		}
		if len(members) == 0 {
			errs = append(errs, fmt.Errorf("groups: %q is empty", name))
		}
		for _, m := range members {
			if !awsid.IsAccountID(m) && !awsid.IsOrganizationARN(m) && !awsid.IsOrganizationalUnitARN(m) {
				errs = append(errs, fmt.Errorf("groups: %q member %q is not a 12-digit account id, an organization ARN or an OU ARN", name, m))
			}
		}
	}
	errs = append(errs, c.validateCopies()...)
	errs = append(errs, c.validateConsumers()...)
	switch c.KMS {
	case "":
		c.KMS = ModePolicy
	case ModePolicy, ModeGrant, ModeOff:
	default:
		errs = append(errs, fmt.Errorf("kms: %q is not one of policy, grant, off", c.KMS))
	}
	return errs
}

// Allowed reports whether target (an account id, organization ARN or OU
// ARN) may be shared with: listed in allowedAccounts,
// allowedOrganizations or allowedOrganizationalUnits, or in a group.
func (c *Config) Allowed(target string) bool {
	if slices.Contains(c.AllowedAccounts, target) ||
		slices.Contains(c.AllowedOrganizations, target) ||
		slices.Contains(c.AllowedOrganizationalUnits, target) {
		return true
	}
	for _, members := range c.Groups {
		if slices.Contains(members, target) {
			return true
		}
	}
	return false
}

// The tag resolves organization and OU ids against the configuration.
var _ amitag.OrganizationDirectory = (*Config)(nil)

// OrganizationTargets returns every organization and OU ARN that may be
// shared with, sorted and unique: the allowed ones and group members.
func (c *Config) OrganizationTargets() []string {
	var out []string
	add := func(list []string) {
		for _, a := range list {
			if (awsid.IsOrganizationARN(a) || awsid.IsOrganizationalUnitARN(a)) && !slices.Contains(out, a) {
				out = append(out, a)
			}
		}
	}
	add(c.AllowedOrganizations)
	add(c.AllowedOrganizationalUnits)
	for _, name := range slices.Sorted(maps.Keys(c.Groups)) {
		add(c.Groups[name])
	}
	slices.Sort(out)
	return out
}

// Group returns the members of the named group: account ids and organization or OU ARNs.
func (c *Config) Group(name string) ([]string, bool) {
	members, ok := c.Groups[name]
	return members, ok
}

// noDuplicateKeys reports the first object key that appears twice in the
// same object, anywhere in the document.
func noDuplicateKeys(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	var walk func(path string) error
	walk = func(path string) error {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch tok {
		case json.Delim('{'):
			seen := map[string]bool{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return err
				}
				key, _ := kt.(string)
				if seen[key] {
					return fmt.Errorf("%s: key %q appears twice", cmp.Or(path, "the document"), key)
				}
				seen[key] = true
				if err := walk(strings.TrimPrefix(path+"."+key, ".")); err != nil {
					return err
				}
			}
			_, err = dec.Token() // }
			return err
		case json.Delim('['):
			for dec.More() {
				if err := walk(path); err != nil {
					return err
				}
			}
			_, err = dec.Token() // ]
			return err
		}
		return nil
	}
	if err := walk(""); err != nil {
		var syntax *json.SyntaxError
		if errors.As(err, &syntax) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return nil // reported by the decoder, with its position
		}
		return err
	}
	return nil
}

// CheckAccount refuses keys of copyKeys that belong to another account
// than account (the configuration parameter's): a copy encrypted with a key
// someone else controls could be disabled by them.
func (c *Config) CheckAccount(account string) error {
	var errs []error
	for _, region := range slices.Sorted(maps.Keys(c.CopyKeys)) {
		if owner := awsid.AccountOf(c.CopyKeys[region]); owner != "" && account != "" && owner != account {
			errs = append(errs, fmt.Errorf("copyKeys[%q]: %q is a key of account %s, not of this account (%s)", region, c.CopyKeys[region], owner, account))
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return invalid(errs...)
}
