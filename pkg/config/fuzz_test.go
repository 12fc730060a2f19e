package config

import (
	"testing"

	"github.com/amishare/amishare/pkg/amitag"
)

// FuzzParse checks that a configuration that parses only ever allows
// 12-digit account ids, never names a group "all", and has a valid KMS mode.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		`{"allowedAccounts":["111122223333"],"groups":{"prod":["444455556666"]},"kms":"grant","dryRun":true}`,
		`{}`, `{"allowedAccounts":["all"]}`, `{"groups":{"all":["111122223333"]}}`, `{"groups":{"g":[]}}`,
		`{"allowedAccounts":["11112222333"]}`, `{"kms":"policy","allowPublic":true}`, `{"allowedAccounts":null}`,
		`{"groups":{"a":["111122223333"],"a":["444455556666"]}}`, `[]`, `null`, `{"x":1}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			return
		}
		for _, id := range c.AllowedAccounts {
			if !amitag.IsAccountID(id) {
				t.Fatalf("allowed %q is not a 12-digit id", id)
			}
		}
		for name, members := range c.Groups {
			if !groupRe.MatchString(name) || name == "all" || len(members) == 0 {
				t.Fatalf("group %q (%v) should have been refused", name, members)
			}
			for _, id := range members {
				if !amitag.IsAccountID(id) {
					t.Fatalf("group %q member %q is not a 12-digit id", name, id)
				}
			}
		}
		switch c.KMS {
		case ModePolicy, ModeGrant, ModeOff:
		default:
			t.Fatalf("kms mode %q accepted", c.KMS)
		}
	})
}
