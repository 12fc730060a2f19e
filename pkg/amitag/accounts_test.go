package amitag

import (
	"reflect"
	"strings"
	"testing"
)

type dir struct {
	allowed []string
	groups  map[string][]string
}

func (d dir) Allowed(a string) bool {
	for _, x := range d.allowed {
		if x == a {
			return true
		}
	}
	for _, m := range d.groups {
		for _, x := range m {
			if x == a {
				return true
			}
		}
	}
	return false
}

func (d dir) Group(n string) ([]string, bool) { m, ok := d.groups[n]; return m, ok }

var testDir = dir{
	allowed: []string{"111122223333", "222233334444"},
	groups:  map[string][]string{"prod": {"777788889999", "444455556666"}},
}

func TestResolveAccounts(t *testing.T) {
	tests := []struct {
		name     string
		value    string
		accounts []string
		refused  []Refusal
	}{
		{name: "empty", value: ""},
		{name: "only separators", value: " , ,\t\n"},
		{name: "one account", value: "111122223333", accounts: []string{"111122223333"}},
		{name: "spaces and commas, sorted", value: "222233334444, 111122223333", accounts: []string{"111122223333", "222233334444"}},
		{name: "group expands", value: "prod", accounts: []string{"444455556666", "777788889999"}},
		{name: "group and member deduplicated", value: "prod 444455556666 prod", accounts: []string{"444455556666", "777788889999"}},
		{name: "duplicates count once", value: "111122223333 111122223333,111122223333", accounts: []string{"111122223333"}},
		{name: "not allowed", value: "111122223333 999999999999", accounts: []string{"111122223333"},
			refused: []Refusal{{"999999999999", ReasonNotAllowed}}},
		{name: "all is refused in any case", value: "all ALL", refused: []Refusal{{"all", ReasonPublic}, {"ALL", ReasonPublic}}},
		{name: "11 digits", value: "11112222333", refused: []Refusal{{"11112222333", ReasonUnknown}}},
		{name: "13 digits", value: "1111222233334", refused: []Refusal{{"1111222233334", ReasonUnknown}}},
		{name: "dashes", value: "1111-2222-3333", refused: []Refusal{{"1111-2222-3333", ReasonUnknown}}},
		{name: "unicode digits", value: "١١١١٢٢٢٢٣٣٣٣", refused: []Refusal{{"١١١١٢٢٢٢٣٣٣٣", ReasonUnknown}}},
		{name: "unknown group", value: "staging", refused: []Refusal{{"staging", ReasonUnknown}}},
		{name: "group names are case sensitive", value: "PROD", refused: []Refusal{{"PROD", ReasonUnknown}}},
		{name: "injection", value: `111122223333;rm -rf / "}`, refused: []Refusal{{"111122223333;rm", ReasonUnknown}, {"-rf", ReasonUnknown}, {"/", ReasonUnknown}, {`"}`, ReasonUnknown}}},
		{name: "unicode spaces separate", value: "111122223333\u00a0222233334444", accounts: []string{"111122223333", "222233334444"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := ResolveAccounts(tc.value, testDir)
			if !reflect.DeepEqual(got.Accounts, tc.accounts) {
				t.Errorf("Accounts = %q, want %q", got.Accounts, tc.accounts)
			}
			if !reflect.DeepEqual(got.Refused, tc.refused) {
				t.Errorf("Refused = %q, want %q", got.Refused, tc.refused)
			}
		})
	}
}

func TestQuoteToken(t *testing.T) {
	tests := []struct{ in, want string }{
		{"abc", `"abc"`},
		{"a\nb", `"a\nb"`},
		{"é", `"\u00e9"`},
		{strings.Repeat("x", 30), `"` + strings.Repeat("x", 24) + `\u2026"`},
	}
	for _, tc := range tests {
		if got := QuoteToken(tc.in); got != tc.want {
			t.Errorf("QuoteToken(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}
