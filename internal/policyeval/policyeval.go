// Package policyeval is test tooling: a small evaluator of KMS key policies
// against a request, enough to check statement by statement who the
// policies amishare writes let use a key. It models what those policies use
// and fails loudly on anything else: principals "*" and AWS account
// principals (the account root ARN or bare id, which delegate to the
// account), Action lists with wildcards, Resource "*", and the condition
// operators StringEquals, StringLike, Bool and their ForAnyValue forms. As
// in IAM, a condition key missing from the request fails the condition, an
// explicit Deny wins, and otherwise an Allow is needed.
//
// It is not IAM: it ignores the caller's own IAM policies, SCPs and grants.
package policyeval

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Request is one call on the key by a principal of Account.
type Request struct {
	Account string // the caller's 12-digit account
	Action  string // e.g. "kms:Decrypt"
	// Context holds the request's condition keys (names case-insensitive),
	// e.g. "aws:PrincipalOrgID": {"o-a1b2c3d4e5"}, "aws:PrincipalOrgPaths":
	// {"o-a1b2c3d4e5/r-ab12/ou-ab12-11111111/"},
	// "kms:GrantIsForAWSResource": {"true"}.
	Context map[string][]string
}

// Statement is one statement of a policy, as decoded.
type Statement struct {
	Sid       string                    `json:"Sid"`
	Effect    string                    `json:"Effect"`
	Principal json.RawMessage           `json:"Principal"`
	Action    json.RawMessage           `json:"Action"`
	Resource  json.RawMessage           `json:"Resource"`
	Condition map[string]map[string]any `json:"Condition"`

	NotPrincipal json.RawMessage `json:"NotPrincipal"`
	NotAction    json.RawMessage `json:"NotAction"`
	NotResource  json.RawMessage `json:"NotResource"`
}

// Statements decodes a policy's statements (a list or a single object).
func Statements(policy string) ([]Statement, error) {
	var doc struct {
		Statement json.RawMessage `json:"Statement"`
	}
	if err := json.Unmarshal([]byte(policy), &doc); err != nil {
		return nil, err
	}
	var list []Statement
	if err := json.Unmarshal(doc.Statement, &list); err == nil {
		return list, nil
	}
	var one Statement
	if err := json.Unmarshal(doc.Statement, &one); err != nil {
		return nil, fmt.Errorf("Statement: %w", err)
	}
	return []Statement{one}, nil
}

// Allows reports whether policy lets the request through.
func Allows(policy string, r Request) (bool, error) {
	stmts, err := Statements(policy)
	if err != nil {
		return false, err
	}
	allowed := false
	for _, s := range stmts {
		ok, err := s.Applies(r)
		if err != nil {
			return false, fmt.Errorf("statement %q: %w", s.Sid, err)
		}
		switch {
		case !ok:
		case s.Effect == "Deny":
			return false, nil
		case s.Effect == "Allow":
			allowed = true
		default:
			return false, fmt.Errorf("statement %q: Effect %q", s.Sid, s.Effect)
		}
	}
	return allowed, nil
}

// Applies reports whether the statement matches the request: principal,
// action, resource and every condition.
func (s Statement) Applies(r Request) (bool, error) {
	if s.NotPrincipal != nil || s.NotAction != nil || s.NotResource != nil {
		return false, fmt.Errorf("NotPrincipal, NotAction and NotResource are not modelled")
	}
	if ok, err := principalMatches(s.Principal, r.Account); err != nil || !ok {
		return false, err
	}
	actions, err := strings1(s.Action)
	if err != nil {
		return false, fmt.Errorf("Action: %w", err)
	}
	if !anyMatch(actions, r.Action, true) {
		return false, nil
	}
	resources, err := strings1(s.Resource)
	if err != nil || len(resources) != 1 || resources[0] != "*" {
		return false, fmt.Errorf("Resource must be \"*\" in a key policy")
	}
	for op, keys := range s.Condition {
		for key, want := range keys {
			ok, err := condition(op, key, want, r.Context)
			if err != nil || !ok {
				return false, err
			}
		}
	}
	return true, nil
}

func principalMatches(raw json.RawMessage, account string) (bool, error) {
	var star string
	if json.Unmarshal(raw, &star) == nil {
		if star != "*" {
			return false, fmt.Errorf("Principal %q", star)
		}
		return true, nil
	}
	var p map[string]json.RawMessage
	if err := json.Unmarshal(raw, &p); err != nil {
		return false, fmt.Errorf("Principal: %w", err)
	}
	for typ, v := range p {
		names, err := strings1(v)
		if err != nil {
			return false, fmt.Errorf("Principal.%s: %w", typ, err)
		}
		if typ != "AWS" {
			continue // service principals never match an account's call here
		}
		for _, n := range names {
			if n == "*" || n == account || (strings.HasPrefix(n, "arn:") && strings.HasSuffix(n, ":iam::"+account+":root")) {
				return true, nil
			}
		}
	}
	return false, nil
}

func condition(op, key string, want any, ctx map[string][]string) (bool, error) {
	wantValues, err := values(want)
	if err != nil {
		return false, fmt.Errorf("condition %s %s: %w", op, key, err)
	}
	var have []string
	found := false
	for k, v := range ctx {
		if strings.EqualFold(k, key) {
			have, found = v, true
		}
	}
	if !found || len(have) == 0 {
		return false, nil // a missing key fails every operator modelled here
	}
	base, forAny := strings.CutPrefix(op, "ForAnyValue:")
	var match func(pattern, value string) bool
	switch base {
	case "StringEquals":
		match = func(p, v string) bool { return p == v }
	case "StringLike":
		match = func(p, v string) bool { return glob(p, v, false) }
	case "Bool":
		match = func(p, v string) bool { return strings.EqualFold(p, v) }
	default:
		return false, fmt.Errorf("condition operator %q is not modelled", op)
	}
	if !forAny && len(have) != 1 {
		return false, fmt.Errorf("%s on the multivalued key %s needs ForAnyValue or ForAllValues", op, key)
	}
	for _, v := range have {
		for _, p := range wantValues {
			if match(p, v) {
				return true, nil
			}
		}
	}
	return false, nil
}

func values(v any) ([]string, error) {
	switch x := v.(type) {
	case string:
		return []string{x}, nil
	case bool:
		return []string{fmt.Sprint(x)}, nil
	case []any:
		var out []string
		for _, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("value %v is not a string", e)
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, fmt.Errorf("value %v is neither a string nor a list", v)
}

// strings1 decodes a string or a list of strings.
func strings1(raw json.RawMessage) ([]string, error) {
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		return []string{one}, nil
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, fmt.Errorf("neither a string nor a list of strings")
	}
	return list, nil
}

func anyMatch(patterns []string, v string, fold bool) bool {
	for _, p := range patterns {
		if glob(p, v, fold) {
			return true
		}
	}
	return false
}

// glob matches v against an IAM pattern: * is any run of characters
// (slashes included), ? is one character.
func glob(pattern, v string, fold bool) bool {
	if fold {
		pattern, v = strings.ToLower(pattern), strings.ToLower(v)
	}
	p, s := []rune(pattern), []rune(v)
	// Iterative wildcard matching with backtracking to the last star.
	pi, si, star, mark := 0, 0, -1, 0
	for si < len(s) {
		switch {
		case pi < len(p) && (p[pi] == '?' || p[pi] == s[si]):
			pi++
			si++
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, si
			pi++
		case star >= 0:
			pi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}
