// Package iameval is test tooling: a small evaluator of IAM policies, used
// both for the identity policies of the function's role (internal/testing/stack)
// and for the KMS key policies amishare writes (who a key lets in). It models
// what those policies use and fails loudly on anything else: Action and
// Resource lists with the * and ? wildcards, principals "*" and AWS account
// principals (the account root ARN or bare id, which delegate to the
// account), and the condition operators of condition.go. As in IAM, an
// explicit Deny wins, otherwise an Allow is needed.
//
// It is not IAM: it evaluates one policy set at a time, and knows nothing of
// SCPs, permission boundaries, sessions or grants.
package iameval

import (
	"fmt"
	"slices"
	"strings"

	awsglob "github.com/amishare/amishare/pkg/glob"
)

// Statement is one policy statement, normalised: single values are lists.
type Statement struct {
	Policy string // the name of the inline policy, or the managed policy's ARN (identity policies)
	Sid    string
	Effect string
	// Principal maps a principal type ("AWS", "Service") to its names;
	// "Principal": "*" is {"AWS": ["*"]}, as IAM reads it. It is nil in
	// identity policies, which have no principal.
	Principal map[string][]string
	Action    []string
	Resource  []string
	// NotResource, instead of Resource, matches every resource but these.
	NotResource []string
	Condition   map[string]map[string][]string // operator -> key -> values
	// Unsupported names the elements the statement has that the evaluator
	// does not model (NotAction, NotPrincipal): evaluating it fails.
	Unsupported []string
}

// Request is one API call as IAM evaluates it: the action, the resource and
// the condition context (keys compared case-insensitively, as IAM does).
// A principal in a resource policy matches on the context's aws:PrincipalAccount.
type Request struct {
	Action   string
	Resource string
	Context  map[string][]string
}

func (q Request) String() string {
	return fmt.Sprintf("%s on %s %v", q.Action, q.Resource, q.Context)
}

// Caller is a principal of an account, placed in AWS Organizations as the
// request context of its calls carries it.
type Caller struct {
	Account string
	OrgID   string // "" when the account is in no organization
	OrgPath string // its aws:PrincipalOrgPaths entry, e.g. o-a1b2c3d4e5/r-ab12/ou-ab12-11111111/
}

// Request is a call of action by c on a key (Resource "*"), with the extra
// condition keys of that call (e.g. kms:GrantIsForAWSResource).
func (c Caller) Request(action string, extra map[string][]string) Request {
	ctx := map[string][]string{"aws:PrincipalAccount": {c.Account}}
	if c.OrgID != "" {
		ctx["aws:PrincipalOrgID"] = []string{c.OrgID}
		ctx["aws:PrincipalOrgPaths"] = []string{c.OrgPath}
	}
	for k, v := range extra {
		ctx[k] = v
	}
	return Request{Action: action, Resource: "*", Context: ctx}
}

// Decision is the outcome of evaluating a request against statements.
type Decision struct {
	Allowed bool
	// By lists the statements that decided: the matching Deny statements
	// when denied explicitly, else the matching Allow statements.
	By []Statement
}

// Evaluate applies IAM's rules to one policy set: an explicit Deny wins,
// else any Allow grants, else the request is denied. A statement the
// evaluator cannot model panics: the test that meets it must extend it.
func Evaluate(stmts []Statement, q Request) Decision {
	d, err := evaluate(stmts, q)
	if err != nil {
		panic(fmt.Sprintf("iameval: %v: add it", err))
	}
	return d
}

func evaluate(stmts []Statement, q Request) (Decision, error) {
	var allows, denies []Statement
	for _, s := range stmts {
		ok, err := s.Applies(q)
		if err != nil {
			return Decision{}, fmt.Errorf("statement %q: %w", s.Sid, err)
		}
		if !ok {
			continue
		}
		switch s.Effect {
		case "Deny":
			denies = append(denies, s)
		case "Allow":
			allows = append(allows, s)
		default:
			return Decision{}, fmt.Errorf("statement %q: Effect %q", s.Sid, s.Effect)
		}
	}
	if len(denies) > 0 {
		return Decision{By: denies}, nil
	}
	return Decision{Allowed: len(allows) > 0, By: allows}, nil
}

// Applies reports whether the statement matches the request: principal
// (when it has one), action, resource and every condition.
func (s Statement) Applies(q Request) (bool, error) {
	if len(s.Unsupported) > 0 {
		return false, fmt.Errorf("%s not modelled", strings.Join(s.Unsupported, ", "))
	}
	if s.Principal != nil && !s.principalMatches(lookup(q.Context, "aws:PrincipalAccount")) {
		return false, nil
	}
	if !slices.ContainsFunc(s.Action, func(a string) bool { return glob(strings.ToLower(a), strings.ToLower(q.Action)) }) {
		return false, nil
	}
	if s.NotResource != nil {
		if slices.ContainsFunc(s.NotResource, func(r string) bool { return glob(r, q.Resource) }) {
			return false, nil
		}
	} else if !slices.ContainsFunc(s.Resource, func(r string) bool { return glob(r, q.Resource) }) {
		return false, nil
	}
	for op, keys := range s.Condition {
		for key, want := range keys {
			ok, err := condition(op, want, lookup(q.Context, key))
			if err != nil {
				return false, fmt.Errorf("condition %s %s: %w", op, key, err)
			}
			if !ok {
				return false, nil
			}
		}
	}
	return true, nil
}

// principalMatches reports whether an AWS principal of the statement is
// "*", the caller's account id or its root ARN (either delegates to the
// account). Service principals never match an account's call.
func (s Statement) principalMatches(account []string) bool {
	if len(account) != 1 {
		return false
	}
	return slices.ContainsFunc(s.Principal["AWS"], func(n string) bool {
		return n == "*" || n == account[0] || (strings.HasPrefix(n, "arn:") && strings.HasSuffix(n, ":iam::"+account[0]+":root"))
	})
}

func lookup(ctx map[string][]string, key string) []string {
	for k, v := range ctx {
		if strings.EqualFold(k, key) {
			return v
		}
	}
	return nil
}

// glob matches v against an IAM pattern: * is any run of characters
// (slashes included, unlike path.Match), ? is one character.
func glob(pattern, v string) bool { return awsglob.Match(pattern, v) }
