package stack

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/amishare/amishare/internal/testing/iameval"
	"github.com/amishare/amishare/pkg/config"
)

// TestConfigParameterParses renders the configuration parameter the stack
// creates and parses it as the function does: every stack parameter lands in
// its field, organizations and OUs included.
func TestConfigParameterParses(t *testing.T) {
	const (
		org = "arn:aws:organizations::210987654321:organization/o-a1b2c3d4e5"
		ou1 = "arn:aws:organizations::210987654321:ou/o-a1b2c3d4e5/ou-ab12-11111111"
		ou2 = "arn:aws:organizations::210987654321:ou/o-a1b2c3d4e5/ou-ab12-22222222"
	)
	tests := []struct {
		name   string
		params map[string]string
		check  func(t *testing.T, c *config.Config)
	}{
		{"defaults", nil, func(t *testing.T, c *config.Config) {
			if len(c.AllowedAccounts)+len(c.AllowedOrganizations)+len(c.AllowedOrganizationalUnits) != 0 {
				t.Errorf("defaults allow %+v, want nobody", c)
			}
			if !c.DelegatedKeysOnly {
				t.Error("delegatedKeysOnly: got false, want the stack's default DelegatedKeysOnly=true")
			}
		}},
		{"DelegatedKeysOnly false", map[string]string{"DelegatedKeysOnly": "false"}, func(t *testing.T, c *config.Config) {
			if c.DelegatedKeysOnly {
				t.Error("delegatedKeysOnly: got true, want false")
			}
		}},
		{"organizations, OUs and a group with an OU", map[string]string{
			"AllowedAccounts":            "111122223333",
			"AllowedOrganizations":       org,
			"AllowedOrganizationalUnits": ou1 + "," + ou2,
			"AccountGroups":              `{"prod":["444455556666","` + ou2 + `"]}`,
		}, func(t *testing.T, c *config.Config) {
			if !slices.Equal(c.AllowedOrganizations, []string{org}) || !slices.Equal(c.AllowedOrganizationalUnits, []string{ou1, ou2}) {
				t.Errorf("organizations %v, OUs %v; want [%s] and [%s %s]", c.AllowedOrganizations, c.AllowedOrganizationalUnits, org, ou1, ou2)
			}
			if !c.Allowed("111122223333") || !c.Allowed("444455556666") {
				t.Errorf("accounts not allowed: %+v", c)
			}
		}},
		{"parameters and receivers", map[string]string{
			"AllowedAccounts":   "111122223333,444455556666",
			"ImageParameters":   `{"/amishare/images/golden/al2023":"golden-al2023-*","/amishare/images/web":"web [v?] *"}`,
			"ParameterPrefix":   "/amishare/images/",
			"Receivers":         "111122223333",
			"ReceiverRoleName":  "team-receiver",
			"MirrorTags":        "team,cost center",
			"AutoScalingGrants": "true",
		}, func(t *testing.T, c *config.Config) {
			if p, _ := c.NamePattern("/amishare/images/web"); p != "web [v?] *" || len(c.Parameters) != 2 {
				t.Errorf("parameters %v", c.Parameters)
			}
			if !slices.Equal(c.Receivers, []string{"111122223333"}) || c.ReceiverRole != "team-receiver" || !c.AutoScalingGrants ||
				!slices.Equal(c.MirrorTags, []string{"team", "cost center"}) {
				t.Errorf("receivers %v role %q grants %v mirrored %v", c.Receivers, c.ReceiverRole, c.AutoScalingGrants, c.MirrorTags)
			}
		}},
		{"no receiver", nil, func(t *testing.T, c *config.Config) {
			if len(c.Receivers)+len(c.MirrorTags)+len(c.Parameters) != 0 || c.AutoScalingGrants || c.ParameterPrefix != config.DefaultParameterPrefix {
				t.Errorf("defaults: %+v", c)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := resolve(t, tc.params)
			cp, _ := res["ConfigParameter"].(map[string]any)
			value, _ := prop(cp, "Value").(string)
			c, err := config.Parse([]byte(value))
			if err != nil {
				t.Fatalf("the configuration the stack writes does not parse: %v\n%s", err, value)
			}
			tc.check(t, c)
		})
	}
}

// TestOrganizationParameterPatterns checks the stack parameters' patterns,
// applied by CloudFormation to every list element, take organization and OU
// ARNs as EC2 Image Builder documents them, and nothing else.
func TestOrganizationParameterPatterns(t *testing.T) {
	params, _ := translate(t)["Parameters"].(map[string]any)
	tests := []struct {
		param    string
		accept   []string
		rejected []string
	}{
		{"AllowedOrganizations",
			[]string{"", "arn:aws:organizations::210987654321:organization/o-a1b2c3d4e5", "arn:aws-us-gov:organizations::210987654321:organization/o-a1b2c3d4e5"},
			[]string{"o-a1b2c3d4e5", "arn:aws:organizations::210987654321:organization/o-a1b2c3d4e5/x", "arn:aws:organizations::210987654321:ou/o-a1b2c3d4e5/ou-ab12-11111111", " arn:aws:organizations::210987654321:organization/o-a1b2c3d4e5"}},
		{"AllowedOrganizationalUnits",
			[]string{"", "arn:aws:organizations::210987654321:ou/o-a1b2c3d4e5/ou-ab12-11111111"},
			[]string{"ou-ab12-11111111", "arn:aws:organizations::210987654321:ou/o-a1b2c3d4e5/ou-ab12-11111111/x", "arn:aws:organizations::210987654321:organization/o-a1b2c3d4e5"}},
	}
	for _, tc := range tests {
		p, _ := params[tc.param].(map[string]any)
		pattern, _ := p["AllowedPattern"].(string)
		re, err := regexp.Compile(pattern)
		if err != nil {
			t.Fatalf("%s: AllowedPattern %q: %v", tc.param, pattern, err)
		}
		for _, v := range tc.accept {
			if !re.MatchString(v) {
				t.Errorf("%s rejects %q", tc.param, v)
			}
		}
		for _, v := range tc.rejected {
			if re.MatchString(v) {
				t.Errorf("%s accepts %q", tc.param, v)
			}
		}
	}
}

// TestConsumerParameterPatterns: the values pasted into the configuration
// document can never close a string or the object and go on.
func TestConsumerParameterPatterns(t *testing.T) {
	params, _ := translate(t)["Parameters"].(map[string]any)
	for _, tc := range []struct {
		param    string
		accept   []string
		rejected []string
	}{
		{"ImageParameters",
			[]string{"{}", `{"/amishare/images/golden/al2023":"golden-al2023-*"}`, `{ "/a/b" : "x [copy of y] ?" , "/a/c":"*" }`},
			[]string{`{"/a/b":"x"}, "allowPublic": true`, `{"/a/b":"x\"}`, `{"a":"x"}`, `{"/a/b":"x","allowPublic":true}`, `{"/a/b":""}`}},
		{"ParameterPrefix", []string{"/amishare/images/", "/a/"}, []string{"/", "/amishare/images", "amishare/", "/a//"}},
		{"MirrorTags", []string{"", "team", "cost center", "aws:x"}, []string{`a"b`, `a\b`}},
		{"Receivers", []string{"", "111122223333"}, []string{"1111-2222-3333", " 111122223333"}},
		{"ReceiverRoleName", []string{"amishare-receiver"}, []string{"", "path/role"}},
	} {
		p, _ := params[tc.param].(map[string]any)
		re, err := regexp.Compile(fmt.Sprint(p["AllowedPattern"]))
		if err != nil {
			t.Fatalf("%s: %v", tc.param, err)
		}
		for _, v := range tc.accept {
			if !re.MatchString(v) {
				t.Errorf("%s refuses %q", tc.param, v)
			}
		}
		for _, v := range tc.rejected {
			if re.MatchString(v) {
				t.Errorf("%s accepts %q", tc.param, v)
			}
		}
	}
}

// TestConfigParameterSize: how many accounts the configuration holds in
// each tier of its SSM parameter, as the README and the stack parameter's
// description say (Standard: 4,096 characters, about 240 accounts in
// AllowedAccounts alone; Advanced: 8 KB), and that the tier is the stack
// parameter's.
func TestConfigParameterSize(t *testing.T) {
	value := func(n int, params map[string]string) (string, string) {
		accounts := make([]string, n)
		for i := range accounts {
			accounts[i] = fmt.Sprintf("%012d", 100000000000+i)
		}
		p := map[string]string{"AllowedAccounts": strings.Join(accounts, ",")}
		maps.Copy(p, params)
		cp, _ := resolve(t, p)["ConfigParameter"].(map[string]any)
		v, _ := prop(cp, "Value").(string)
		tier, _ := prop(cp, "Tier").(string)
		return v, tier
	}
	most := func(limit int) int { // the most accounts whose document fits limit
		return sort.Search(2000, func(n int) bool { v, _ := value(n+1, nil); return len(v) > limit })
	}
	if n := most(4096); n < 230 || n > 250 {
		t.Errorf("a Standard parameter holds %d accounts, want about 240 (README, ConfigParameterTier)", n)
	}
	if n := most(8192); n < 500 {
		t.Errorf("an Advanced parameter holds %d accounts, want more than 500", n)
	}
	if _, tier := value(1, nil); tier != "Standard" {
		t.Errorf("tier by default: %q, want Standard", tier)
	}
	if _, tier := value(1, map[string]string{"ConfigParameterTier": "Advanced"}); tier != "Advanced" {
		t.Errorf("tier with ConfigParameterTier=Advanced: %q", tier)
	}
}

// TestUnmanagedConfigParameter: with ManageConfigParameter=false the stack
// creates no configuration parameter (no deploy can overwrite the one the
// operator writes), the function reads the one named ConfigParameterName,
// and the role may read that parameter and no other.
func TestUnmanagedConfigParameter(t *testing.T) {
	for _, tc := range []struct {
		manage string
		want   any // AMISHARE_CONFIG_PARAMETER as the resolver writes it
	}{
		{"true", "ref:ConfigParameter"},
		{"false", "/team/amishare"},
	} {
		t.Run("ManageConfigParameter="+tc.manage, func(t *testing.T) {
			params := map[string]string{"ManageConfigParameter": tc.manage, "ConfigParameterName": "/team/amishare"}
			res := resolve(t, params)
			if _, created := res["ConfigParameter"]; created != (tc.manage == "true") {
				t.Errorf("ConfigParameter created: %v, want %v", created, tc.manage == "true")
			}
			env, _ := prop(res["AmishareFunction"].(map[string]any), "Environment").(map[string]any)
			vars, _ := env["Variables"].(map[string]any)
			if got := vars["AMISHARE_CONFIG_PARAMETER"]; got != tc.want {
				t.Errorf("AMISHARE_CONFIG_PARAMETER: got %v, want %v", got, tc.want)
			}
			stmts := role(t, params).Statements()
			for name, want := range map[string]bool{"/team/amishare": true, "/team/other": false} {
				req := iameval.Request{Action: "ssm:GetParameter", Resource: "arn:aws:ssm:" + Region + ":" + AccountID + ":parameter" + name}
				if got := iameval.Evaluate(stmts, req).Allowed; got != want {
					t.Errorf("the role reads %s: %v, want %v", name, got, want)
				}
			}
		})
	}
}
