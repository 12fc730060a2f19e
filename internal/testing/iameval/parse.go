package iameval

import (
	"encoding/json"
	"fmt"
	"slices"
)

// ParseStatement normalises one statement as JSON decodes it (a
// map[string]any): single values become lists, "Principal": "*" becomes
// {"AWS": ["*"]}, condition values become strings. It fails on a shape that
// is not a statement; elements it does not model are listed in Unsupported.
func ParseStatement(v any) (Statement, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return Statement{}, fmt.Errorf("not an object: %v", v)
	}
	s := Statement{Action: Strings(m["Action"]), Resource: Strings(m["Resource"])}
	s.Sid, _ = m["Sid"].(string)
	s.Effect, _ = m["Effect"].(string)
	if nr, ok := m["NotResource"]; ok {
		s.NotResource = Strings(nr)
	}
	for _, name := range []string{"NotAction", "NotPrincipal"} {
		if _, ok := m[name]; ok {
			s.Unsupported = append(s.Unsupported, name)
		}
	}
	switch p := m["Principal"].(type) {
	case nil:
	case string:
		if p != "*" {
			return s, fmt.Errorf("Principal %q", p)
		}
		s.Principal = map[string][]string{"AWS": {"*"}}
	case map[string]any:
		s.Principal = map[string][]string{}
		for typ, names := range p {
			s.Principal[typ] = Strings(names)
		}
	default:
		return s, fmt.Errorf("Principal %v", p)
	}
	if c, ok := m["Condition"]; ok && c != nil {
		cond, ok := c.(map[string]any)
		if !ok {
			return s, fmt.Errorf("Condition %v", c)
		}
		s.Condition = map[string]map[string][]string{}
		for op, keys := range cond {
			km, ok := keys.(map[string]any)
			if !ok {
				return s, fmt.Errorf("condition %s: %v", op, keys)
			}
			s.Condition[op] = map[string][]string{}
			for k, vals := range km {
				s.Condition[op][k] = Strings(vals)
			}
		}
	}
	return s, nil
}

// List returns a JSON value as IAM reads an element that takes one value
// or a list: a single value becomes a list of one.
func List(v any) []any {
	switch l := v.(type) {
	case nil:
		return nil
	case []any:
		return l
	}
	return []any{v}
}

// Strings is List with each value as a string.
func Strings(v any) []string {
	var out []string
	for _, e := range List(v) {
		out = append(out, fmt.Sprint(e))
	}
	return out
}

// Statements decodes a policy document's statements (a list or a single object).
func Statements(policy string) ([]Statement, error) {
	var doc struct {
		Statement any `json:"Statement"`
	}
	if err := json.Unmarshal([]byte(policy), &doc); err != nil {
		return nil, err
	}
	var out []Statement
	for i, v := range List(doc.Statement) {
		s, err := ParseStatement(v)
		if err != nil {
			return nil, fmt.Errorf("statement %d: %w", i, err)
		}
		out = append(out, s)
	}
	return out, nil
}

// Allows reports whether a key policy lets the request through. Every
// statement of a key policy must have a principal and Resource "*".
func Allows(policy string, q Request) (bool, error) {
	stmts, err := Statements(policy)
	if err != nil {
		return false, err
	}
	for _, s := range stmts {
		if s.Principal == nil {
			return false, fmt.Errorf("statement %q: a key policy statement needs a Principal", s.Sid)
		}
		if !slices.Equal(s.Resource, []string{"*"}) {
			return false, fmt.Errorf("statement %q: Resource must be \"*\" in a key policy", s.Sid)
		}
	}
	d, err := evaluate(stmts, q)
	return d.Allowed, err
}
