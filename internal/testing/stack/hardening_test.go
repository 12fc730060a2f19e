package stack

import (
	"os"
	"testing"

	"github.com/amishare/amishare/internal/testing/iameval"
)

// TestHardeningPolicies evaluates the service control policy and the
// permissions-boundary variant docs/safety.md's hardening section gives: they
// reserve amishare's own tag keys to the function's role (its fixed name,
// amishare-function-REGION) and key delegation (amishare:managed) to the
// key administrators' role, also against DeleteTags without keys and tags
// set at creation.
func TestHardeningPolicies(t *testing.T) {
	const (
		fn    = "arn:aws:iam::123456789012:role/amishare-function-us-east-1"
		other = "arn:aws:iam::123456789012:role/developer"
		admin = "arn:aws:iam::123456789012:role/amishare-key-admin"
	)
	image := imageARN
	req := func(principal, action, resource string, ctx map[string][]string) iameval.Request {
		c := map[string][]string{"aws:PrincipalArn": {principal}, "aws:PrincipalAccount": {"123456789012"}}
		for k, v := range ctx {
			c[k] = v
		}
		return iameval.Request{Action: action, Resource: resource, Context: c}
	}
	keys := func(k ...string) map[string][]string { return map[string][]string{"aws:TagKeys": k} }
	managedImage := map[string][]string{"aws:ResourceTag/amishare:status": {"shared"}, "aws:ResourceTag/amishare:accounts": {"111122223333"}}
	recordedSnapshot := map[string][]string{"aws:ResourceTag/amishare:image": {"ami-0123456789abcdef0"}}
	tests := []struct {
		name   string
		q      iameval.Request
		denied bool
	}{
		{"the function writes its status tags", req(fn, "ec2:CreateTags", image, with(managedImage, keys("amishare:status", "amishare:message"))), false},
		{"the function records a snapshot", req(fn, "ec2:CreateTags", snapshotARN, keys("amishare:image")), false},
		{"the function tags a copy at creation", req(fn, "ec2:CreateTags", image, with(keys("amishare:accounts", "amishare:source"), map[string][]string{"ec2:CreateAction": {"CopyImage"}})), false},
		{"someone tags an image's accounts", req(other, "ec2:CreateTags", image, keys("amishare:accounts")), false},
		{"someone deletes an image's accounts tag", req(other, "ec2:DeleteTags", image, with(managedImage, keys("amishare:accounts"))), false},
		{"someone writes amishare:status", req(other, "ec2:CreateTags", image, with(managedImage, keys("amishare:status"))), true},
		{"someone deletes amishare:status", req(other, "ec2:DeleteTags", image, with(managedImage, keys("amishare:status"))), true},
		{"someone forges a snapshot's record", req(other, "ec2:CreateTags", snapshotARN, keys("amishare:image")), true},
		{"someone deletes every tag of a managed image", req(other, "ec2:DeleteTags", image, managedImage), true},
		{"someone deletes every tag of a recorded snapshot", req(other, "ec2:DeleteTags", snapshotARN, recordedSnapshot), true},
		{"someone deletes every tag of an image amishare never touched", req(other, "ec2:DeleteTags", image, nil), false},
		{"someone copies an image tagged amishare:source at creation", req(other, "ec2:CreateTags", image, with(keys("amishare:source"), map[string][]string{"ec2:CreateAction": {"CopyImage"}})), true},
		{"someone registers an image tagged amishare:status at creation", req(other, "ec2:CreateTags", image, with(keys("Name", "amishare:status"), map[string][]string{"ec2:CreateAction": {"RegisterImage"}})), true},
		{"someone snapshots a volume tagged amishare:image at creation", req(other, "ec2:CreateTags", snapshotARN, with(keys("amishare:image"), map[string][]string{"ec2:CreateAction": {"CreateSnapshot"}})), true},
		{"someone delegates a key", req(other, "kms:TagResource", keyARN, keys("amishare:managed")), true},
		{"someone takes a key's delegation back", req(other, "kms:UntagResource", keyARN, keys("amishare:managed")), true},
		{"the key administrators delegate a key", req(admin, "kms:TagResource", keyARN, keys("amishare:managed")), false},
		{"the function delegates a key", req(fn, "kms:TagResource", keyARN, keys("amishare:managed")), true},
		{"someone tags a key otherwise", req(other, "kms:TagResource", keyARN, keys("team")), false},
	}
	for _, file := range []string{"../../../docs/hardening/scp.json", "../../../docs/hardening/permissions-boundary.json"} {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		stmts, err := iameval.Statements(string(raw))
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		for _, tc := range tests {
			t.Run(file+"/"+tc.name, func(t *testing.T) {
				d := iameval.Evaluate(stmts, tc.q)
				denied := len(d.By) > 0 && d.By[0].Effect == "Deny"
				if denied != tc.denied {
					t.Errorf("%s: denied = %v, want %v (by %v)", tc.q, denied, tc.denied, sids(d.By))
				}
			})
		}
	}
	// An SCP holds at most 5,120 characters.
	raw, _ := os.ReadFile("../../../docs/hardening/scp.json")
	if len(raw) > 5120 {
		t.Errorf("scp.json has %d characters; an SCP holds at most 5,120", len(raw))
	}
}
