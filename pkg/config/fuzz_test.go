package config

import (
	"strings"
	"testing"

	"github.com/amishare/amishare/pkg/awsid"
)

// FuzzParse checks that a configuration that parses only ever allows
// 12-digit account ids and well-formed organization and OU ARNs, never
// names a group "all", and has a valid KMS mode.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		`{"allowedAccounts":["111122223333"],"groups":{"prod":["444455556666"]},"kms":"grant","dryRun":true}`,
		`{}`, `{"allowedAccounts":["all"]}`, `{"groups":{"all":["111122223333"]}}`, `{"groups":{"g":[]}}`,
		`{"allowedAccounts":["11112222333"]}`, `{"kms":"policy","allowPublic":true}`, `{"allowedAccounts":null}`,
		`{"groups":{"a":["111122223333"],"a":["444455556666"]}}`, `[]`, `null`, `{"x":1}`,
		`{"allowedOrganizations":["arn:aws:organizations::123456789012:organization/o-a1b2c3d4e5"]}`,
		`{"allowedOrganizationalUnits":["arn:aws:organizations::123456789012:ou/o-a1b2c3d4e5/ou-ab12-11111111"]}`,
		`{"allowedOrganizations":["o-a1b2c3d4e5"]}`, `{"groups":{"g":["arn:aws:organizations::123456789012:ou/o-a1b2c3d4e5/ou-ab12-11111111/x"]}}`,
		`{"groups":{"o-a1b2c3d4e5":["111122223333"]}}`,
		`{"allowedRegions":["eu-west-1"],"copyKeys":{"eu-west-1":"alias/amis"}}`,
		`{"allowedAccounts":["111122223333"],"receivers":["111122223333"],"parameters":{"/amishare/images/a":"a-*"},"mirrorTags":["team"],"autoScalingGrants":true}`,
		`{"parameterPrefix":"/x/","parameters":{"/x/ a":"a"},"receivers":["999999999999"],"mirrorTags":["amishare:x","AWS:y"]}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			return
		}
		for _, id := range c.AllowedAccounts {
			if !awsid.IsAccountID(id) {
				t.Fatalf("allowed %q is not a 12-digit id", id)
			}
		}
		for _, a := range c.AllowedOrganizations {
			if !awsid.IsOrganizationARN(a) {
				t.Fatalf("allowed organization %q is not an organization ARN", a)
			}
		}
		for _, a := range c.AllowedOrganizationalUnits {
			if !awsid.IsOrganizationalUnitARN(a) {
				t.Fatalf("allowed OU %q is not an OU ARN", a)
			}
		}
		for name, members := range c.Groups {
			if !groupRe.MatchString(name) || name == "all" || len(members) == 0 ||
				awsid.IsOrganizationID(name) || awsid.IsOrganizationalUnitID(name) {
				t.Fatalf("group %q (%v) should have been refused", name, members)
			}
			for _, m := range members {
				if !awsid.IsAccountID(m) && !awsid.IsOrganizationARN(m) && !awsid.IsOrganizationalUnitARN(m) {
					t.Fatalf("group %q member %q is not an account id or organization/OU ARN", name, m)
				}
			}
		}
		switch c.KMS {
		case ModePolicy, ModeGrant, ModeOff:
		default:
			t.Fatalf("kms mode %q accepted", c.KMS)
		}
		for _, r := range c.AllowedRegions {
			if !awsid.IsRegion(r) {
				t.Fatalf("allowed region %q is not a region name", r)
			}
		}
		for name := range c.Parameters {
			if !c.UnderPrefix(name) || strings.ContainsAny(name, " \t\n") {
				t.Fatalf("parameter %q outside the prefix %q or with whitespace accepted", name, c.ParameterPrefix)
			}
		}
		if !strings.HasPrefix(c.ParameterPrefix, "/") || !strings.HasSuffix(c.ParameterPrefix, "/") || len(c.ParameterPrefix) < 3 {
			t.Fatalf("parameter prefix %q accepted", c.ParameterPrefix)
		}
		for _, a := range c.Receivers {
			if !awsid.IsAccountID(a) || !c.Allowed(a) {
				t.Fatalf("receiver %q that is not an allowed account accepted", a)
			}
		}
		for _, k := range c.MirrorTags {
			if l := strings.ToLower(k); k == "" || strings.HasPrefix(l, "amishare:") || strings.HasPrefix(l, "aws:") {
				t.Fatalf("mirrored tag %q accepted", k)
			}
		}
		if c.AutoScalingGrants && c.KMS != ModePolicy {
			t.Fatalf("autoScalingGrants accepted with kms %q", c.KMS)
		}
		for r, k := range c.CopyKeys {
			if !awsid.IsRegion(r) || k == "" || strings.Contains(k, "alias/aws/") {
				t.Fatalf("copy key %q for %q should have been refused", k, r)
			}
		}
	})
}
