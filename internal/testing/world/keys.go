package world

import (
	"encoding/json"
	"testing"

	"github.com/amishare/amishare/pkg/kmspolicy"
)

// KeyPolicy returns a key's policy.
func (w *World) KeyPolicy(t testing.TB, key string) string {
	t.Helper()
	p, err := w.Fixture.KeyPolicy(w.Ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// KeyGrantees returns who amishare's statements in the key's policy grant,
// sorted (kmspolicy.Grantees: accounts, organizations, OUs).
func (w *World) KeyGrantees(t testing.TB, key string) []string {
	t.Helper()
	g, err := kmspolicy.Grantees(w.KeyPolicy(t, key))
	if err != nil {
		t.Fatalf("parsing the policy of %s: %v", key, err)
	}
	return g
}

// KeyAccounts returns the accounts amishare's statements in the key's
// policy grant, sorted.
func (w *World) KeyAccounts(t testing.TB, key string) []string {
	t.Helper()
	a, err := w.Fixture.KeyAccounts(w.Ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// OtherStatements returns the statements of the key's policy that amishare
// does not own: the policy as kmspolicy.Edit leaves it with every grantee
// removed, decoded.
func (w *World) OtherStatements(t testing.TB, key string) []any {
	t.Helper()
	policy := w.KeyPolicy(t, key)
	grantees, err := kmspolicy.Grantees(policy)
	if err != nil {
		t.Fatalf("parsing the policy of %s: %v", key, err)
	}
	others, _, err := kmspolicy.Edit(policy, nil, grantees, kmspolicy.KeyOf(key))
	if err != nil {
		t.Fatalf("removing amishare's statements from the policy of %s: %v", key, err)
	}
	var doc struct{ Statement []any }
	if err := json.Unmarshal([]byte(others), &doc); err != nil {
		t.Fatalf("the policy of %s without amishare's statements: %v", key, err)
	}
	return doc.Statement
}
