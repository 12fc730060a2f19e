package amitag

import (
	"strings"
	"testing"

	"github.com/amishare/amishare/pkg/awsid"
)

// FuzzResolveAccounts checks that no tag value, however hostile, yields a
// target outside the allowlist (account, organization or OU) or a public
// share, and that every refusal names its token and reason.
func FuzzResolveAccounts(f *testing.F) {
	for _, seed := range []string{
		"111122223333 prod", "all", "ALL,111122223333", "1111-2222-3333", "11112222333", "1111222233334",
		"prod prod 444455556666", " , ,", "\u00a0111122223333\u2003", "$(rm -rf /)", "'; DROP TABLE x; --",
		"١١١١٢٢٢٢٣٣٣٣", "999999999999", "\x00\xff", strings.Repeat("111122223333 ", 50),
		"ou-ab12-11111111 111122223333", "o-a1b2c3d4e5", orgA + " " + ouWork, "workloads ou-ab12-22222222",
		"ou-ab12-33333333", orgB, "ou-cd34-55555555", ouWork + "/x", "O-A1B2C3D4E5", "o-a1b2c3d4e5,ou-ab12-11111111,all",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, value string) {
		got := ResolveAccounts(value, testDir)
		for _, list := range []struct {
			targets []string
			valid   func(string) bool
		}{{got.Accounts, awsid.IsAccountID}, {got.Organizations, awsid.IsOrganizationARN}, {got.OrganizationalUnits, awsid.IsOrganizationalUnitARN}} {
			for i, a := range list.targets {
				if !list.valid(a) || !testDir.Allowed(a) {
					t.Fatalf("target %q is not an allowed target of its kind", a)
				}
				if i > 0 && list.targets[i-1] >= a {
					t.Fatalf("targets not sorted and unique: %q", list.targets)
				}
			}
		}
		for _, r := range got.Refused {
			if r.Token == "" || r.Reason == "" {
				t.Fatalf("refusal without token or reason: %+v", r)
			}
			if strings.EqualFold(r.Token, "all") && r.Reason != ReasonPublic {
				t.Fatalf("%q refused for %q, want %q", r.Token, r.Reason, ReasonPublic)
			}
			if q := QuoteToken(r.Token); len(q) > 200 || strings.ContainsAny(q, "\n\r") {
				t.Fatalf("quoted token %q is not safe for a message", q)
			}
		}
	})
}
