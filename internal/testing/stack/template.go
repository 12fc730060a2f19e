package stack

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"time"
)

//go:embed translate.py
var translateScript []byte

// Pseudo parameter values a resolved template uses. The account and region
// are moto's (internal/testing/moto), so that ARNs of calls the tests record
// compare with the role's resources.
const (
	Partition = "aws"
	Region    = "us-east-1"
	AccountID = "123456789012"
	StackName = "amishare"
)

// Template is a CloudFormation template as JSON values.
type Template map[string]any

// Translate runs aws-sam-translator on the SAM template at path (as
// `sam deploy` has CloudFormation do) and returns plain CloudFormation. It
// uses $AMISHARE_MOTO_PYTHON, else python3: the interpreter the Makefile
// checked for the pinned tools.
func Translate(path string) (Template, error) { return load(path, false) }

// Parse reads a plain CloudFormation template (the receiver stack: no
// transform) as JSON values, its YAML tags (!Sub, !If, ...) read as
// CloudFormation reads them.
func Parse(path string) (Template, error) { return load(path, true) }

func load(path string, plain bool) (Template, error) {
	python := os.Getenv("AMISHARE_MOTO_PYTHON")
	if python == "" {
		python = "python3"
	}
	dir, err := os.MkdirTemp("", "amishare-stack-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	script := filepath.Join(dir, "translate.py")
	if err := os.WriteFile(script, translateScript, 0o600); err != nil {
		return nil, err
	}
	var stdout, stderr bytes.Buffer
	args := []string{script, path}
	if plain {
		args = []string{script, "--plain", path}
	}
	cmd := exec.Command(python, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("translating %s with aws-sam-translator (%s): %w\n%s", path, python, err, stderr.Bytes())
	}
	var t Template
	if err := json.Unmarshal(stdout.Bytes(), &t); err != nil {
		return nil, fmt.Errorf("translated %s: %w", path, err)
	}
	return t, nil
}

// noValue stands for AWS::NoValue while resolving; it is dropped from the result.
type noValue struct{}

// Resolve evaluates the template's conditions and intrinsic functions for
// the given parameter values (defaults fill the rest; AWS::AccountId and
// the other pseudo parameters may be given too) and returns the
// resources as CloudFormation would create them. Attributes of other
// resources (Fn::GetAtt) and Refs to resources become placeholder strings
// "getatt:Logical.Attr" and "ref:Logical", except the Arn of a queue, rule,
// function or table, which is given a realistic ARN.
func (t Template) Resolve(params map[string]string) (map[string]any, error) {
	r := &resolver{t: t, params: map[string]string{}, conds: map[string]bool{}}
	decl, _ := t["Parameters"].(map[string]any)
	for name, p := range decl {
		if d, ok := p.(map[string]any)["Default"]; ok {
			r.params[name] = fmt.Sprint(d)
		}
	}
	for k, v := range params {
		if _, ok := decl[k]; !ok && !strings.HasPrefix(k, "AWS::") {
			return nil, fmt.Errorf("template has no parameter %s", k)
		}
		r.params[k] = v
	}
	conds, _ := t["Conditions"].(map[string]any)
	for name := range conds {
		if _, err := r.condition(name); err != nil {
			return nil, err
		}
	}
	res, _ := t["Resources"].(map[string]any)
	out := map[string]any{}
	for name, v := range res {
		m := v.(map[string]any)
		if c, ok := m["Condition"].(string); ok {
			on, err := r.condition(c)
			if err != nil {
				return nil, err
			}
			if !on {
				continue
			}
		}
		val, err := r.eval(m)
		if err != nil {
			return nil, fmt.Errorf("resource %s: %w", name, err)
		}
		out[name] = val
	}
	return out, nil
}

type resolver struct {
	t      Template
	params map[string]string
	conds  map[string]bool
	doing  []string
}

func (r *resolver) condition(name string) (bool, error) {
	if v, ok := r.conds[name]; ok {
		return v, nil
	}
	if slices.Contains(r.doing, name) {
		return false, fmt.Errorf("condition %s refers to itself", name)
	}
	conds, _ := r.t["Conditions"].(map[string]any)
	def, ok := conds[name]
	if !ok {
		return false, fmt.Errorf("no condition %s", name)
	}
	r.doing = append(r.doing, name)
	v, err := r.eval(def)
	r.doing = r.doing[:len(r.doing)-1]
	if err != nil {
		return false, fmt.Errorf("condition %s: %w", name, err)
	}
	b, ok := v.(bool)
	if !ok {
		return false, fmt.Errorf("condition %s is %v, not a boolean", name, v)
	}
	r.conds[name] = b
	return b, nil
}

var subVar = regexp.MustCompile(`\$\{([^}!][^}]*)\}`)

func (r *resolver) ref(name string) (any, error) {
	if v, ok := r.params[name]; ok && strings.HasPrefix(name, "AWS::") {
		return v, nil // a pseudo parameter given (another account's stack)
	}
	switch name {
	case "AWS::Partition":
		return Partition, nil
	case "AWS::Region":
		return Region, nil
	case "AWS::AccountId":
		return AccountID, nil
	case "AWS::StackName":
		return StackName, nil
	case "AWS::NoValue":
		return noValue{}, nil
	case "AWS::URLSuffix":
		return "amazonaws.com", nil
	}
	if v, ok := r.params[name]; ok {
		decl := r.t["Parameters"].(map[string]any)[name].(map[string]any)
		if decl["Type"] == "CommaDelimitedList" {
			return anySlice(strings.Split(v, ",")), nil
		}
		return v, nil
	}
	if res, _ := r.t["Resources"].(map[string]any); res[name] != nil {
		return "ref:" + name, nil
	}
	return nil, fmt.Errorf("Ref to unknown %s", name)
}

func (r *resolver) getAtt(resource, attr string) string {
	res, _ := r.t["Resources"].(map[string]any)
	m, _ := res[resource].(map[string]any)
	if attr == "Arn" {
		switch m["Type"] {
		case "AWS::SQS::Queue":
			return fmt.Sprintf("arn:%s:sqs:%s:%s:%s-%s", Partition, Region, AccountID, StackName, resource)
		case "AWS::Events::Rule":
			return fmt.Sprintf("arn:%s:events:%s:%s:rule/%s-%s", Partition, Region, AccountID, StackName, resource)
		case "AWS::Lambda::Function":
			return fmt.Sprintf("arn:%s:lambda:%s:%s:function:%s-%s", Partition, Region, AccountID, StackName, resource)
		case "AWS::DynamoDB::Table":
			return fmt.Sprintf("arn:%s:dynamodb:%s:%s:table/%s-%s", Partition, Region, AccountID, StackName, resource)
		}
	}
	return "getatt:" + resource + "." + attr
}

func anySlice(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

func (r *resolver) eval(node any) (any, error) {
	switch n := node.(type) {
	case []any:
		var out []any
		for _, e := range n {
			v, err := r.eval(e)
			if err != nil {
				return nil, err
			}
			if _, skip := v.(noValue); !skip {
				out = append(out, v)
			}
		}
		return out, nil
	case map[string]any:
		if len(n) == 1 {
			for k, arg := range n {
				if v, ok, err := r.intrinsic(k, arg); ok || err != nil {
					return v, err
				}
			}
		}
		out := map[string]any{}
		for k, e := range n {
			v, err := r.eval(e)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			if _, skip := v.(noValue); !skip {
				out[k] = v
			}
		}
		return out, nil
	}
	return node, nil
}

// intrinsic evaluates one intrinsic function; ok is false when k is not one.
func (r *resolver) intrinsic(k string, arg any) (any, bool, error) {
	args, _ := arg.([]any)
	switch k {
	case "Ref":
		v, err := r.ref(fmt.Sprint(arg))
		return v, true, err
	case "Condition":
		v, err := r.condition(fmt.Sprint(arg))
		return v, true, err
	case "Fn::GetAtt":
		var parts []string
		switch a := arg.(type) {
		case string:
			parts = strings.SplitN(a, ".", 2)
		case []any:
			for _, p := range a {
				parts = append(parts, fmt.Sprint(p))
			}
		}
		if len(parts) != 2 {
			return nil, true, fmt.Errorf("Fn::GetAtt %v", arg)
		}
		return r.getAtt(parts[0], parts[1]), true, nil
	case "Fn::If":
		if len(args) != 3 {
			return nil, true, fmt.Errorf("Fn::If needs 3 arguments: %v", arg)
		}
		on, err := r.condition(fmt.Sprint(args[0]))
		if err != nil {
			return nil, true, err
		}
		if on {
			v, err := r.eval(args[1])
			return v, true, err
		}
		v, err := r.eval(args[2])
		return v, true, err
	case "Fn::Equals":
		if len(args) != 2 {
			return nil, true, fmt.Errorf("Fn::Equals needs 2 arguments: %v", arg)
		}
		a, err := r.eval(args[0])
		if err != nil {
			return nil, true, err
		}
		b, err := r.eval(args[1])
		if err != nil {
			return nil, true, err
		}
		return fmt.Sprint(a) == fmt.Sprint(b), true, nil
	case "Fn::Not", "Fn::And", "Fn::Or":
		vals := make([]bool, len(args))
		for i, a := range args {
			v, err := r.eval(a)
			if err != nil {
				return nil, true, err
			}
			b, ok := v.(bool)
			if !ok {
				return nil, true, fmt.Errorf("%s of %v", k, v)
			}
			vals[i] = b
		}
		switch k {
		case "Fn::Not":
			return len(vals) == 1 && !vals[0], true, nil
		case "Fn::And":
			return !slices.Contains(vals, false), true, nil
		}
		return slices.Contains(vals, true), true, nil
	case "Fn::Join":
		if len(args) != 2 {
			return nil, true, fmt.Errorf("Fn::Join needs 2 arguments: %v", arg)
		}
		list, err := r.eval(args[1])
		if err != nil {
			return nil, true, err
		}
		var parts []string
		for _, p := range list.([]any) {
			parts = append(parts, fmt.Sprint(p))
		}
		return strings.Join(parts, fmt.Sprint(args[0])), true, nil
	case "Fn::Split":
		if len(args) != 2 {
			return nil, true, fmt.Errorf("Fn::Split needs 2 arguments: %v", arg)
		}
		v, err := r.eval(args[1])
		if err != nil {
			return nil, true, err
		}
		return anySlice(strings.Split(fmt.Sprint(v), fmt.Sprint(args[0]))), true, nil
	case "Fn::Sub":
		tmpl, vars := "", map[string]any{}
		switch a := arg.(type) {
		case string:
			tmpl = a
		case []any:
			tmpl = fmt.Sprint(a[0])
			if len(a) > 1 {
				m, _ := a[1].(map[string]any)
				for name, e := range m {
					v, err := r.eval(e)
					if err != nil {
						return nil, true, err
					}
					vars[name] = v
				}
			}
		}
		var subErr error
		out := subVar.ReplaceAllStringFunc(tmpl, func(m string) string {
			name := m[2 : len(m)-1]
			if v, ok := vars[name]; ok {
				return fmt.Sprint(v)
			}
			if res, attr, ok := strings.Cut(name, "."); ok && !strings.HasPrefix(name, "AWS::") {
				return r.getAtt(res, attr)
			}
			v, err := r.ref(name)
			if err != nil {
				subErr = err
			}
			return fmt.Sprint(v)
		})
		return out, true, subErr
	}
	return nil, false, nil
}

// TemplatePath is the repository's template.yaml, found from this file.
func TemplatePath() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "template.yaml")
}

// Limits are what Lambda allows a function of a resolved template.
type Limits struct {
	// Concurrency is its reserved concurrency: at most this many
	// invocations at once; 0 when none is reserved.
	Concurrency int
	// Timeout is the most one invocation may run.
	Timeout time.Duration
}

// FunctionLimits reads the reserved concurrency and the timeout of function
// fn of the resolved resources.
func FunctionLimits(resources map[string]any, fn string) (Limits, error) {
	f, ok := resources[fn].(map[string]any)
	if !ok || f["Type"] != "AWS::Lambda::Function" {
		return Limits{}, fmt.Errorf("no function %s", fn)
	}
	var l Limits
	var seconds int
	if _, err := fmt.Sscan(fmt.Sprint(prop(f, "Timeout")), &seconds); err != nil || seconds <= 0 {
		return Limits{}, fmt.Errorf("function %s: Timeout %v", fn, prop(f, "Timeout"))
	}
	l.Timeout = time.Duration(seconds) * time.Second
	if c := prop(f, "ReservedConcurrentExecutions"); c != nil {
		if _, err := fmt.Sscan(fmt.Sprint(c), &l.Concurrency); err != nil || l.Concurrency <= 0 {
			return Limits{}, fmt.Errorf("function %s: ReservedConcurrentExecutions %v", fn, c)
		}
	}
	return l, nil
}
