// Package stack is test tooling for the SAM stack in template.yaml: it
// translates the template with aws-sam-translator (as `sam deploy` does before
// CloudFormation sees it), evaluates the function role's IAM policies for an
// action, and parses `sam deploy --parameter-overrides` strings the way SAM
// CLI does, so that the template, the README and samconfig.toml are tested
// rather than trusted.
package stack

import (
	"fmt"
	"strings"
)

// ParseOverrides splits a `--parameter-overrides` string (or samconfig.toml's
// parameter_overrides) into parameters, following SAM CLI's documented
// Key=Value form: pairs are separated by spaces; a value is either
// double-quoted or single-quoted (a backslash escapes the next character
// inside), or a run of characters without spaces or double quotes. Wrapping
// quotes are removed and \", \' and "\ " are unescaped, as SAM CLI does.
//
// A value that meets an unescaped double quote ends there, which is how
// `AccountGroups={"prod":...}` arrives as "{": ParseOverrides reports what is
// left over as an error, where SAM CLI would silently drop it.
func ParseOverrides(s string) (map[string]string, error) {
	out := map[string]string{}
	rest := strings.TrimSpace(s)
	for rest != "" {
		eq := strings.IndexByte(rest, '=')
		if eq <= 0 {
			return out, fmt.Errorf("parameter overrides: %q is not Key=Value", rest)
		}
		key := rest[:eq]
		for _, c := range key {
			if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
				return out, fmt.Errorf("parameter overrides: key %q is not alphanumeric", key)
			}
		}
		raw, n, err := overrideValue(rest[eq+1:])
		if err != nil {
			return out, fmt.Errorf("parameter overrides: %s: %w", key, err)
		}
		out[key] = unquote(raw)
		rest = rest[eq+1+n:]
		if rest != "" && rest[0] != ' ' {
			return out, fmt.Errorf("parameter overrides: %s: value ends at %q (an unescaped quote ends an unquoted value)", key, rest)
		}
		rest = strings.TrimLeft(rest, " ")
	}
	return out, nil
}

// overrideValue returns the raw value at the start of s and its length.
func overrideValue(s string) (string, int, error) {
	if s != "" && (s[0] == '"' || s[0] == '\'') {
		q := s[0]
		for i := 1; i < len(s); i++ {
			switch s[i] {
			case '\\':
				i++
			case q:
				return s[:i+1], i + 1, nil
			}
		}
		return "", 0, fmt.Errorf("unterminated %c-quoted value", q)
	}
	i := 0
	for i < len(s) && s[i] != ' ' && s[i] != '"' {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		i++
	}
	if i == 0 {
		return "", 0, fmt.Errorf("empty value")
	}
	return s[:i], i, nil
}

func unquote(v string) string {
	if len(v) >= 2 && (v[0] == '"' && v[len(v)-1] == '"' || v[0] == '\'' && v[len(v)-1] == '\'') {
		v = v[1 : len(v)-1]
	}
	return strings.NewReplacer(`\ `, " ", `\"`, `"`, `\'`, "'").Replace(v)
}
