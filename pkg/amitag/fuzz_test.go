package amitag

import (
	"strings"
	"testing"
)

// FuzzResolveAccounts checks that no tag value, however hostile, yields a
// target outside the allowlist or a public share, and that every token is
// either a target or refused.
func FuzzResolveAccounts(f *testing.F) {
	for _, seed := range []string{
		"111122223333 prod", "all", "ALL,111122223333", "1111-2222-3333", "11112222333", "1111222233334",
		"prod prod 444455556666", " , ,", "\u00a0111122223333\u2003", "$(rm -rf /)", "'; DROP TABLE x; --",
		"١١١١٢٢٢٢٣٣٣٣", "999999999999", "\x00\xff", strings.Repeat("111122223333 ", 50),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, value string) {
		got := ResolveAccounts(value, testDir)
		for i, a := range got.Accounts {
			if !IsAccountID(a) || !testDir.Allowed(a) {
				t.Fatalf("target %q is not an allowed account id", a)
			}
			if i > 0 && got.Accounts[i-1] >= a {
				t.Fatalf("targets not sorted and unique: %q", got.Accounts)
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
