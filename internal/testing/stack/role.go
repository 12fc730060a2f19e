package stack

import (
	"fmt"
	"sort"
	"strings"

	"github.com/amishare/amishare/internal/testing/iameval"
)

// BasicExecutionRole is the managed policy SAM attaches to every function
// role it creates.
const BasicExecutionRole = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"

// managedPolicies holds what the managed policies the role may carry allow,
// as AWS documents them (Lambda developer guide, "AWS managed policies for
// Lambda": AWSLambdaBasicExecutionRole allows writing logs to CloudWatch).
// A managed policy not listed here is an error, so none is added unreviewed.
var managedPolicies = map[string][]iameval.Statement{
	BasicExecutionRole: {{
		Effect:   "Allow",
		Action:   []string{"logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"},
		Resource: []string{"*"},
	}},
}

// InlinePolicy is one policy document embedded in the role.
type InlinePolicy struct {
	Name       string
	Version    string
	Statements []iameval.Statement
}

// Role is an IAM role of a resolved template.
type Role struct {
	Name            string
	ManagedPolicies []string
	Inline          []InlinePolicy
	// Trust is the role's trust policy (each statement's Resource is "*").
	Trust []iameval.Statement
}

// Statements returns every statement the role carries: inline and managed.
func (r Role) Statements() []iameval.Statement {
	var out []iameval.Statement
	for _, p := range r.Inline {
		out = append(out, p.Statements...)
	}
	for _, arn := range r.ManagedPolicies {
		for _, s := range managedPolicies[arn] {
			s.Policy = arn
			out = append(out, s)
		}
	}
	return out
}

// FunctionRole returns the role of the Lambda function logical id fn in the
// resolved resources.
func FunctionRole(resources map[string]any, fn string) (Role, error) {
	f, ok := resources[fn].(map[string]any)
	if !ok || f["Type"] != "AWS::Lambda::Function" {
		return Role{}, fmt.Errorf("no function %s", fn)
	}
	roleRef, _ := prop(f, "Role").(string)
	name, ok := strings.CutPrefix(roleRef, "getatt:")
	name = strings.TrimSuffix(name, ".Arn")
	if !ok {
		return Role{}, fmt.Errorf("function %s: role %v is not a role of the template", fn, prop(f, "Role"))
	}
	role, err := RoleOf(resources, name)
	if err != nil {
		return Role{}, fmt.Errorf("function %s: %w", fn, err)
	}
	return role, nil
}

// RoleOf returns the role of logical id name in the resolved resources:
// its policies and its trust policy.
func RoleOf(resources map[string]any, name string) (Role, error) {
	res, ok := resources[name].(map[string]any)
	if !ok || res["Type"] != "AWS::IAM::Role" {
		return Role{}, fmt.Errorf("no role %s", name)
	}
	role := Role{Name: name}
	trust, _ := prop(res, "AssumeRolePolicyDocument").(map[string]any)
	for i, s := range iameval.List(trust["Statement"]) {
		st, err := iameval.ParseStatement(s)
		if err != nil || len(st.Unsupported) > 0 || st.Principal == nil {
			return Role{}, fmt.Errorf("role %s trust policy statement %d: %v %v (a principal is needed, and nothing the evaluator does not model)", name, i, err, st.Unsupported)
		}
		// A trust policy names no resource: the role itself.
		st.Resource, st.Policy = []string{"*"}, "trust"
		role.Trust = append(role.Trust, st)
	}
	for _, a := range iameval.List(prop(res, "ManagedPolicyArns")) {
		arn := fmt.Sprint(a)
		if _, known := managedPolicies[arn]; !known {
			return Role{}, fmt.Errorf("role %s: managed policy %s is not known to internal/testing/stack (add what it allows)", name, arn)
		}
		role.ManagedPolicies = append(role.ManagedPolicies, arn)
	}
	for _, p := range iameval.List(prop(res, "Policies")) {
		pm, _ := p.(map[string]any)
		doc, _ := pm["PolicyDocument"].(map[string]any)
		ip := InlinePolicy{Name: fmt.Sprint(pm["PolicyName"])}
		ip.Version, _ = doc["Version"].(string)
		for i, s := range iameval.List(doc["Statement"]) {
			st, err := statement(s)
			if err != nil {
				return Role{}, fmt.Errorf("role %s policy %s statement %d: %w", name, ip.Name, i, err)
			}
			st.Policy = ip.Name
			ip.Statements = append(ip.Statements, st)
		}
		role.Inline = append(role.Inline, ip)
	}
	return role, nil
}

func prop(res map[string]any, name string) any {
	props, _ := res["Properties"].(map[string]any)
	return props[name]
}

// statement parses one statement of an identity policy: no principal,
// nothing the evaluator does not model, and an effect.
func statement(v any) (iameval.Statement, error) {
	s, err := iameval.ParseStatement(v)
	if err != nil {
		return s, err
	}
	if s.Principal != nil {
		s.Unsupported = append(s.Unsupported, "Principal")
	}
	if len(s.Unsupported) > 0 {
		return iameval.Statement{}, fmt.Errorf("%s is not supported by internal/testing/iameval's evaluator", strings.Join(s.Unsupported, ", "))
	}
	if s.Effect != "Allow" && s.Effect != "Deny" {
		return s, fmt.Errorf("effect %q", s.Effect)
	}
	return s, nil
}

// Actions lists the actions the role's Allow statements name, sorted.
func (r Role) Actions() []string {
	seen := map[string]bool{}
	for _, s := range r.Statements() {
		if s.Effect == "Allow" {
			for _, a := range s.Action {
				seen[a] = true
			}
		}
	}
	out := make([]string, 0, len(seen))
	for a := range seen {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}
