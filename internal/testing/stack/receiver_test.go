package stack

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/amishare/amishare/internal/testing/iameval"
	"github.com/amishare/amishare/pkg/kmsgrant"
)

const receiverTemplatePath = "../../../receiver/template.yaml"

var receiverParsed struct {
	once sync.Once
	t    Template
	err  error
}

// functionRoleARN is the producer's function role in the stack's region
// (FunctionRoleName's default).
const functionRoleARN = "arn:aws:iam::" + AccountID + ":role/amishare-function-" + Region

// receiverRole resolves receiver/template.yaml (plain CloudFormation) in
// the receiver account (params' AWS::AccountId, else 111122223333) for a
// producer of AccountID whose function role is functionRoleARN, with params
// on top, and returns its role.
func receiverRole(t *testing.T, params map[string]string) Role {
	t.Helper()
	receiverParsed.once.Do(func() { receiverParsed.t, receiverParsed.err = Parse(receiverTemplatePath) })
	if receiverParsed.err != nil {
		t.Fatal(receiverParsed.err)
	}
	all := map[string]string{"ProducerAccountId": AccountID, "ProducerFunctionRoleArns": functionRoleARN, "AWS::AccountId": "111122223333"}
	for k, v := range params {
		all[k] = v
	}
	res, err := receiverParsed.t.Resolve(all)
	if err != nil {
		t.Fatal(err)
	}
	r, err := RoleOf(res, "ReceiverRole")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// checkReceiverCalls checks that the receiver role allows every call made
// through it (deployed with the tag keys and regions the calls used, and
// Auto Scaling grants on), and that its trust policy lets the function's
// role make every AssumeRole the function made.
func checkReceiverCalls(t *testing.T, calls []Call) {
	t.Helper()
	var regions []string
	for _, c := range calls {
		if c.Receiver != "" && !slices.Contains(regions, c.region()) && !strings.EqualFold(c.Service, "iam") {
			regions = append(regions, c.region())
		}
	}
	roles := map[string]Role{} // by receiver account: its stack's role
	roleIn := func(account string) Role {
		if r, ok := roles[account]; ok {
			return r
		}
		r := receiverRole(t, map[string]string{"AWS::AccountId": account, "MirrorTags": strings.Join(MirroredKeys(calls), ","),
			"Regions": strings.Join(regions, ","), "AutoScalingGrants": "true"})
		roles[account] = r
		return r
	}
	for _, c := range calls {
		switch {
		case c.Receiver != "":
			r := roleIn(c.Receiver)
			for _, q := range c.Requests() {
				if d := iameval.Evaluate(r.Statements(), q); !d.Allowed {
					t.Errorf("the receiver role does not allow %s (%s): add its permission to receiver/template.yaml, least privilege", q, strings.Join(sids(d.By), ","))
				}
			}
		case strings.EqualFold(c.Service, "sts") && c.Operation == "AssumeRole":
			r := roleIn(strings.Split(fmt.Sprint(c.Input["RoleArn"]), ":")[4])
			for _, q := range c.Requests() {
				if !trusts(r, q) {
					t.Errorf("the receiver role's trust policy does not let %s make %s", functionRoleARN, q)
				}
			}
		}
	}
}

// trusts reports whether the role's trust policy lets the function's role
// make the AssumeRole request q.
func trusts(r Role, q iameval.Request) bool {
	ctx := map[string][]string{"aws:PrincipalAccount": {AccountID}, "aws:PrincipalArn": {functionRoleARN}}
	for k, v := range q.Context {
		ctx[k] = v
	}
	return iameval.Evaluate(r.Trust, iameval.Request{Action: q.Action, Resource: "*", Context: ctx}).Allowed
}

// TestReceiverTrust: only the producer's function roles, with a session
// named amishare-…, and, with ProducerOrgId, from that organization.
func TestReceiverTrust(t *testing.T) {
	assume := func(principal, account, session string, extra ...string) iameval.Request {
		ctx := map[string][]string{"aws:PrincipalAccount": {account}, "aws:PrincipalArn": {principal}, "sts:RoleSessionName": {session}}
		if len(extra) == 2 {
			ctx[extra[0]] = []string{extra[1]}
		}
		return iameval.Request{Action: "sts:AssumeRole", Resource: "*", Context: ctx}
	}
	r := receiverRole(t, nil)
	for _, tc := range []struct {
		name string
		q    iameval.Request
		want bool
	}{
		{"the function, a session for an image", assume(functionRoleARN, AccountID, "amishare-ami-0123456789abcdef0"), true},
		{"the function, the sweep's session", assume(functionRoleARN, AccountID, "amishare-sweep"), true},
		{"the function, another session name", assume(functionRoleARN, AccountID, "admin"), false},
		{"another role of the producer", assume("arn:aws:iam::"+AccountID+":role/admin", AccountID, "amishare-x"), false},
		{"the producer's root", assume("arn:aws:iam::"+AccountID+":root", AccountID, "amishare-x"), false},
		{"a role so named in another account", assume("arn:aws:iam::999999999999:role/amishare-function-"+Region, "999999999999", "amishare-x"), false},
	} {
		if got := iameval.Evaluate(r.Trust, tc.q).Allowed; got != tc.want {
			t.Errorf("%s: allowed %v, want %v", tc.name, got, tc.want)
		}
	}
	org := receiverRole(t, map[string]string{"ProducerOrgId": "o-a1b2c3d4e5"})
	if iameval.Evaluate(org.Trust, assume(functionRoleARN, AccountID, "amishare-x")).Allowed {
		t.Error("with ProducerOrgId: a caller outside any organization is trusted")
	}
	if !iameval.Evaluate(org.Trust, assume(functionRoleARN, AccountID, "amishare-x", "aws:PrincipalOrgID", "o-a1b2c3d4e5")).Allowed {
		t.Error("with ProducerOrgId: the function in the organization is not trusted")
	}
}

// TestReceiverPermissions: the role's permissions, least privilege.
func TestReceiverPermissions(t *testing.T) {
	const acct = "111122223333"
	slr := "arn:aws:iam::" + acct + ":role/aws-service-role/autoscaling.amazonaws.com/" + AutoScalingRoleName
	ops := []string{"Encrypt", "Decrypt", "ReEncryptFrom", "ReEncryptTo", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext", "DescribeKey", "CreateGrant"}
	param := func(op, name string, extra ...string) Call {
		in := map[string]any{"Name": name}
		if len(extra) > 0 {
			in["Policies"] = extra[0]
		}
		return Call{Service: "SSM", Operation: op, Receiver: acct, Input: in}
	}
	tag := func(op string, keys ...string) Call {
		var tags []any
		for _, k := range keys {
			tags = append(tags, map[string]any{"Key": k, "Value": "v"})
		}
		return Call{Service: "EC2", Operation: op, Receiver: acct, Input: map[string]any{"Resources": []any{"ami-0123456789abcdef0"}, "Tags": tags}}
	}
	grant := func(grantee string, ops []string, key string) Call {
		var o []any
		for _, op := range ops {
			o = append(o, op)
		}
		return Call{Service: "KMS", Operation: "CreateGrant", Receiver: acct, Input: map[string]any{"KeyId": key, "GranteePrincipal": grantee, "Operations": o}}
	}
	producerKey := "arn:aws:kms:" + Region + ":" + AccountID + ":key/1234abcd-12ab-34cd-56ef-1234567890ab"
	for _, tc := range []struct {
		name   string
		params map[string]string
		c      Call
		want   bool
	}{
		{"put a parameter under the prefix", nil, param("PutParameter", "/amishare/images/golden"), true},
		{"read parameters under the prefix", nil, Call{Service: "SSM", Operation: "GetParameters", Receiver: acct, Input: map[string]any{"Names": []any{"/amishare/images/a", "/amishare/images/b"}}}, true},
		{"delete a parameter under the prefix", nil, param("DeleteParameter", "/amishare/images/golden"), true},
		{"a parameter outside the prefix", nil, param("PutParameter", "/app/db-password"), false},
		{"a parameter with a policy", nil, param("PutParameter", "/amishare/images/golden", "[{}]"), false},
		{"another region", nil, Call{Service: "SSM", Operation: "PutParameter", Region: "eu-west-1", Receiver: acct, Input: map[string]any{"Name": "/amishare/images/g"}}, false},
		{"a listed region", map[string]string{"Regions": "us-east-1,eu-west-1"}, Call{Service: "SSM", Operation: "PutParameter", Region: "eu-west-1", Receiver: acct, Input: map[string]any{"Name": "/amishare/images/g"}}, true},
		{"describe images", nil, Call{Service: "EC2", Operation: "DescribeImages", Receiver: acct, Input: map[string]any{}}, true},
		{"a mirrored key", map[string]string{"MirrorTags": "team,os"}, tag("CreateTags", "team"), true},
		{"delete a mirrored key", map[string]string{"MirrorTags": "team,os"}, tag("DeleteTags", "os"), true},
		{"a key not mirrored", map[string]string{"MirrorTags": "team,os"}, tag("CreateTags", "team", "owner"), false},
		{"amishare's own key", map[string]string{"MirrorTags": "team,os"}, tag("CreateTags", "amishare:accounts"), false},
		{"no mirrored key configured", nil, tag("CreateTags", "team"), false},
		{"the Auto Scaling grant", map[string]string{"AutoScalingGrants": "true"}, grant(slr, ops, producerKey), true},
		{"the Auto Scaling grant, grants off", nil, grant(slr, ops, producerKey), false},
		{"a grant for another grantee", map[string]string{"AutoScalingGrants": "true"}, grant("arn:aws:iam::"+acct+":root", ops, producerKey), false},
		{"a grant with another operation", map[string]string{"AutoScalingGrants": "true"}, grant(slr, append(slices.Clone(ops), "Sign"), producerKey), false},
		{"a grant on another account's key", map[string]string{"AutoScalingGrants": "true"}, grant(slr, ops, strings.Replace(producerKey, AccountID, "999999999999", 1)), false},
		{"see the Auto Scaling role", map[string]string{"AutoScalingGrants": "true"}, Call{Service: "IAM", Operation: "GetRole", Receiver: acct, Input: map[string]any{"RoleName": AutoScalingRoleName}}, true},
		{"see another role", map[string]string{"AutoScalingGrants": "true"}, Call{Service: "IAM", Operation: "GetRole", Receiver: acct, Input: map[string]any{"RoleName": "admin"}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := receiverRole(t, tc.params)
			allowed := true
			for _, q := range tc.c.Requests() {
				if !iameval.Evaluate(r.Statements(), q).Allowed {
					allowed = false
				}
			}
			if allowed != tc.want {
				t.Errorf("allowed %v, want %v", allowed, tc.want)
			}
		})
	}
	// The operations are exactly the Auto Scaling guide's, which amishare's
	// own grants (kmsgrant.Operations) are not.
	if len(kmsgrant.Operations) == len(ops) {
		t.Errorf("kmsgrant.Operations %v: the Auto Scaling grant's operations are another list", kmsgrant.Operations)
	}
}
