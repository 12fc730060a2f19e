package amitag

import (
	"reflect"
	"strings"
	"testing"

	"github.com/amishare/amishare/pkg/awsid"
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

func (d dir) OrganizationTargets() []string {
	var out []string
	for _, x := range d.allowed {
		if awsid.IsOrganizationARN(x) || awsid.IsOrganizationalUnitARN(x) {
			out = append(out, x)
		}
	}
	for _, m := range d.groups {
		for _, x := range m {
			if awsid.IsOrganizationARN(x) || awsid.IsOrganizationalUnitARN(x) {
				out = append(out, x)
			}
		}
	}
	return out
}

const (
	orgA   = "arn:aws:organizations::123456789012:organization/o-a1b2c3d4e5"
	orgB   = "arn:aws:organizations::999999999999:organization/o-b1b2c3d4e5" // not allowed
	ouWork = "arn:aws:organizations::123456789012:ou/o-a1b2c3d4e5/ou-ab12-11111111"
	ouDev  = "arn:aws:organizations::123456789012:ou/o-a1b2c3d4e5/ou-ab12-22222222" // in group "workloads"
	ouSib  = "arn:aws:organizations::123456789012:ou/o-a1b2c3d4e5/ou-ab12-33333333" // not allowed
	// Two allowed OUs with the same id in different organizations.
	ouSameX = "arn:aws:organizations::123456789012:ou/o-a1b2c3d4e5/ou-cd34-55555555"
	ouSameY = "arn:aws:organizations::210987654321:ou/o-c1c2c3c4c5/ou-cd34-55555555"
)

var testDir = dir{
	allowed: []string{"111122223333", "222233334444", orgA, ouWork, ouSameX, ouSameY},
	groups: map[string][]string{
		"prod":      {"777788889999", "444455556666"},
		"workloads": {"555566667777", ouDev},
	},
}

func TestResolveAccounts(t *testing.T) {
	tests := []struct {
		name     string
		value    string
		accounts []string
		orgs     []string
		ous      []string
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
		{name: "OU id resolves to the allowed ARN", value: "ou-ab12-11111111 111122223333", accounts: []string{"111122223333"}, ous: []string{ouWork}},
		{name: "organization id resolves to the allowed ARN", value: "o-a1b2c3d4e5", orgs: []string{orgA}},
		{name: "full ARNs", value: orgA + "," + ouWork, orgs: []string{orgA}, ous: []string{ouWork}},
		{name: "id and ARN of the same OU count once", value: ouWork + " ou-ab12-11111111", ous: []string{ouWork}},
		{name: "group with an OU ARN", value: "workloads", accounts: []string{"555566667777"}, ous: []string{ouDev}},
		{name: "id of an OU allowed through a group", value: "ou-ab12-22222222", ous: []string{ouDev}},
		{name: "OU not allowed", value: "ou-ab12-33333333 " + ouSib, refused: []Refusal{{"ou-ab12-33333333", ReasonOUNotAllowed}, {ouSib, ReasonOUNotAllowed}}},
		{name: "organization not allowed", value: "o-b1b2c3d4e5 " + orgB, refused: []Refusal{{"o-b1b2c3d4e5", ReasonOrgNotAllowed}, {orgB, ReasonOrgNotAllowed}}},
		{name: "ARN of an allowed id with another management account", value: "arn:aws:organizations::111111111111:organization/o-a1b2c3d4e5",
			refused: []Refusal{{"arn:aws:organizations::111111111111:organization/o-a1b2c3d4e5", ReasonOrgNotAllowed}}},
		{name: "ambiguous OU id needs the ARN", value: "ou-cd34-55555555 " + ouSameY, ous: []string{ouSameY}, refused: []Refusal{{"ou-cd34-55555555", ReasonAmbiguous}}},
		{name: "ids are lower case", value: "O-A1B2C3D4E5 OU-AB12-11111111", refused: []Refusal{{"O-A1B2C3D4E5", ReasonUnknown}, {"OU-AB12-11111111", ReasonUnknown}}},
		{name: "malformed ids", value: "o-a1b2c3d4 ou-ab1-11111111 ou-ab12-1111111", refused: []Refusal{{"o-a1b2c3d4", ReasonUnknown}, {"ou-ab1-11111111", ReasonUnknown}, {"ou-ab12-1111111", ReasonUnknown}}},
		{name: "OU ARN with a suffix", value: ouWork + "/x", refused: []Refusal{{ouWork + "/x", ReasonUnknown}}},
		{name: "organization ARN of an OU", value: "arn:aws:organizations::123456789012:organization/o-a1b2c3d4e5/ou-ab12-11111111",
			refused: []Refusal{{"arn:aws:organizations::123456789012:organization/o-a1b2c3d4e5/ou-ab12-11111111", ReasonUnknown}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := ResolveAccounts(tc.value, testDir)
			if !reflect.DeepEqual(got.Accounts, tc.accounts) {
				t.Errorf("Accounts = %q, want %q", got.Accounts, tc.accounts)
			}
			if !reflect.DeepEqual(got.Organizations, tc.orgs) {
				t.Errorf("Organizations = %q, want %q", got.Organizations, tc.orgs)
			}
			if !reflect.DeepEqual(got.OrganizationalUnits, tc.ous) {
				t.Errorf("OrganizationalUnits = %q, want %q", got.OrganizationalUnits, tc.ous)
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
		{"a\nb", `"a?b"`},
		{"é", `"é"`},
		{"a\u202eb", `"a?b"`},
		{`a"b`, `"a?b"`},
		{"a\xffb", `"a?b"`},
		{strings.Repeat("x", 30), `"` + strings.Repeat("x", 24) + `…"`},
		{ouWork, `"` + ouWork + `"`},
		{ouWork + "/x", `"arn:aws:organizations::1…"`},
	}
	for _, tc := range tests {
		if got := QuoteToken(tc.in); got != tc.want {
			t.Errorf("QuoteToken(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestResolveWithPlainDirectory(t *testing.T) {
	var d Directory = struct {
		Directory
	}{testDir}
	got := ResolveAccounts("ou-ab12-11111111 "+ouWork+" 111122223333", d)
	if want := []string{ouWork}; !reflect.DeepEqual(got.OrganizationalUnits, want) {
		t.Errorf("OrganizationalUnits = %q, want %q (full ARNs resolve without OrganizationTargets)", got.OrganizationalUnits, want)
	}
	if want := []Refusal{{"ou-ab12-11111111", ReasonOUNotAllowed}}; !reflect.DeepEqual(got.Refused, want) {
		t.Errorf("Refused = %q, want %q", got.Refused, want)
	}
}
