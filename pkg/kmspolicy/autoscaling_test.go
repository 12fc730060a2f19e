package kmspolicy

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/amishare/amishare/internal/testing/iameval"
)

const (
	asgOwner   = "123456789012"
	asgA       = "111122223333"
	asgB       = "444455556666"
	asgRole    = "amishare-receiver"
	asgDefault = `{"Id":"key-default-1","Version":"2012-10-17","Statement":[{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"kms:*","Resource":"*"}]}`
)

var asgKey = Key{Partition: "aws", Account: asgOwner}

func slrOf(a string) string {
	return "arn:aws:iam::" + a + ":role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"
}

// createGrant is a receiver's principal's CreateGrant request.
func createGrant(account, principal, grantee string, ops ...string) iameval.Request {
	return iameval.Request{Action: "kms:CreateGrant", Resource: "*", Context: map[string][]string{
		"aws:PrincipalAccount": {account}, "aws:PrincipalArn": {principal},
		"kms:GranteePrincipal": {grantee}, "kms:GrantOperations": ops,
	}}
}

func TestEditAutoScaling(t *testing.T) {
	out, changed, err := EditAutoScaling(asgDefault, []string{asgB, asgA, asgA, asgOwner}, asgRole, asgKey)
	if err != nil || !changed {
		t.Fatalf("EditAutoScaling: changed %v, %v", changed, err)
	}
	if got, _ := AutoScalingGrantees(out); !slices.Equal(got, []string{asgA, asgB}) {
		t.Errorf("grantees %v, want [%s %s] (once each, never the key's own account)", got, asgA, asgB)
	}
	if !strings.Contains(out, `{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"kms:*","Resource":"*"}`) {
		t.Errorf("the other statement is not kept byte for byte:\n%s", out)
	}
	if again, changed, err := EditAutoScaling(out, []string{asgA, asgB}, asgRole, asgKey); err != nil || changed || again != out {
		t.Errorf("editing again: changed %v, %v; want nothing to do", changed, err)
	}

	allows := func(policy string, q iameval.Request) bool {
		t.Helper()
		ok, err := iameval.Allows(policy, q)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	role := "arn:aws:iam::" + asgA + ":role/" + asgRole
	for _, tc := range []struct {
		name string
		q    iameval.Request
		want bool
	}{
		{"the receiver role, its Auto Scaling role, the guide's operations", createGrant(asgA, role, slrOf(asgA), AutoScalingOperations...), true},
		{"fewer operations", createGrant(asgA, role, slrOf(asgA), "Decrypt", "CreateGrant"), true},
		{"no operation", createGrant(asgA, role, slrOf(asgA)), false},
		{"another operation", createGrant(asgA, role, slrOf(asgA), "Decrypt", "RetireGrant"), false},
		{"another grantee", createGrant(asgA, role, "arn:aws:iam::"+asgA+":root", "Decrypt"), false},
		{"another account's Auto Scaling role", createGrant(asgA, role, slrOf(asgB), "Decrypt"), false},
		{"another principal of the receiver", createGrant(asgA, "arn:aws:iam::"+asgA+":role/admin", slrOf(asgA), "Decrypt"), false},
		{"another account with the same role name", createGrant("999999999999", "arn:aws:iam::999999999999:role/"+asgRole, slrOf("999999999999"), "Decrypt"), false},
		{"anything but CreateGrant", iameval.Request{Action: "kms:Decrypt", Resource: "*", Context: map[string][]string{"aws:PrincipalAccount": {asgA}, "aws:PrincipalArn": {role}}}, false},
	} {
		if got := allows(out, tc.q); got != tc.want {
			t.Errorf("%s: allowed %v, want %v", tc.name, got, tc.want)
		}
	}

	// Removed with the account, the rest untouched.
	out2, changed, err := EditAutoScaling(out, []string{asgB}, asgRole, asgKey)
	if err != nil || !changed {
		t.Fatal(changed, err)
	}
	if got, _ := AutoScalingGrantees(out2); !slices.Equal(got, []string{asgB}) || allows(out2, createGrant(asgA, role, slrOf(asgA), "Decrypt")) {
		t.Errorf("after removing %s: grantees %v", asgA, got)
	}
	none, changed, err := EditAutoScaling(out2, nil, asgRole, asgKey)
	if err != nil || !changed || strings.Contains(none, AutoScalingSid) {
		t.Errorf("removing the last: changed %v, %v\n%s", changed, err, none)
	}

	// Another role name rewrites them; so does a statement edited by hand.
	if _, changed, _ := EditAutoScaling(out, []string{asgA, asgB}, "other", asgKey); !changed {
		t.Error("a new receiver role name: want the statements rewritten")
	}
	tampered := strings.Replace(out, `"false"`, `"true"`, 1) // the Null condition of the first statement
	if fixed, changed, _ := EditAutoScaling(tampered, []string{asgA, asgB}, asgRole, asgKey); !changed || fixed == tampered {
		t.Error("a statement edited by hand: want it written back")
	}
}

func TestAutoScalingStatementsSurviveTheAccountStatements(t *testing.T) {
	withASG, _, err := EditAutoScaling(asgDefault, []string{asgA}, asgRole, asgKey)
	if err != nil {
		t.Fatal(err)
	}
	out, changed, err := Edit(withASG, []string{asgA, asgB}, nil, asgKey)
	if err != nil || !changed {
		t.Fatal(changed, err)
	}
	if got, _ := AutoScalingGrantees(out); !slices.Equal(got, []string{asgA}) {
		t.Errorf("after Edit: Auto Scaling grantees %v, want [%s]", got, asgA)
	}
	var doc struct{ Statement []json.RawMessage }
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	if g, _ := Grantees(out); !slices.Equal(g, []string{asgA, asgB}) {
		t.Errorf("account grantees %v: the Auto Scaling statement is not one of them", g)
	}
}

// TestAutoScalingOperationsAreTheGuides pins the list the EC2 Auto Scaling
// guide's cross-account create-grant command gives, in its order.
func TestAutoScalingOperationsAreTheGuides(t *testing.T) {
	want := []string{"Encrypt", "Decrypt", "ReEncryptFrom", "ReEncryptTo", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext", "DescribeKey", "CreateGrant"}
	if !slices.Equal(AutoScalingOperations, want) {
		t.Errorf("AutoScalingOperations = %v, want %v", AutoScalingOperations, want)
	}
}
