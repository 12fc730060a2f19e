package stack

import (
	"testing"

	"github.com/amishare/amishare/internal/testing/iameval"
)

// TestRoleForCopies checks the statements for copies (amishare:regions and
// re-encryption) with AllowedRegions=eu-west-1: CopyImage only into this
// region or an allowed one, the copy's tags only while CopyImage creates it,
// the copies' accounts tag only on copies, keys only through EC2.
func TestRoleForCopies(t *testing.T) {
	const (
		euImage    = "arn:aws:ec2:eu-west-1::image/ami-0123456789abcdef1"
		euSnapshot = "arn:aws:ec2:eu-west-1::snapshot/snap-0123456789abcdef1"
		euKey      = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	)
	region := func(r string) map[string][]string { return map[string][]string{"aws:RequestedRegion": {r}} }
	keys := func(k ...string) map[string][]string { return map[string][]string{"aws:TagKeys": k} }
	viaEC2 := map[string][]string{"kms:ViaService": {"ec2.eu-west-1.amazonaws.com"}}
	copyTag := map[string][]string{"aws:ResourceTag/amishare:source": {"us-east-1/ami-0123456789abcdef0"}}
	tests := []struct {
		name string
		req  iameval.Request
		want bool
	}{
		{"copy into an allowed region", iameval.Request{Action: "ec2:CopyImage", Resource: euImage, Context: region("eu-west-1")}, true},
		{"copy's snapshots in an allowed region", iameval.Request{Action: "ec2:CopyImage", Resource: euSnapshot, Context: region("eu-west-1")}, true},
		{"copy the source (authorized on the source image)", iameval.Request{Action: "ec2:CopyImage", Resource: imageARN, Context: region("eu-west-1")}, true},
		{"re-encrypted copy in this region", iameval.Request{Action: "ec2:CopyImage", Resource: imageARN, Context: region("us-east-1")}, true},
		{"copy into a region not allowed", iameval.Request{Action: "ec2:CopyImage", Resource: "arn:aws:ec2:ap-south-1::image/ami-0123456789abcdef1", Context: region("ap-south-1")}, false},
		{"copy's tags on creation", iameval.Request{Action: "ec2:CreateTags", Resource: euImage, Context: with(region("eu-west-1"), keys("amishare:accounts", "amishare:source"), map[string][]string{"ec2:CreateAction": {"CopyImage"}})}, true},
		{"amishare:regions on creation", iameval.Request{Action: "ec2:CreateTags", Resource: euImage, Context: with(keys("amishare:regions"), map[string][]string{"ec2:CreateAction": {"CopyImage"}})}, false},
		{"copy's tags outside CopyImage", iameval.Request{Action: "ec2:CreateTags", Resource: euImage, Context: with(region("eu-west-1"), keys("amishare:source"))}, false},
		{"copy's accounts tag", iameval.Request{Action: "ec2:CreateTags", Resource: euImage, Context: with(region("eu-west-1"), keys("amishare:accounts"), copyTag)}, true},
		{"accounts tag of an image that is no copy", iameval.Request{Action: "ec2:CreateTags", Resource: euImage, Context: with(region("eu-west-1"), keys("amishare:accounts"), taggedAccounts)}, false},
		{"source's status and copies tags", iameval.Request{Action: "ec2:CreateTags", Resource: imageARN, Context: with(region("us-east-1"), keys("amishare:status", "amishare:message", "amishare:copies"), taggedAccounts)}, true},
		{"share a copy in an allowed region", iameval.Request{Action: "ec2:ModifyImageAttribute", Resource: euImage, Context: with(region("eu-west-1"), taggedAccounts)}, true},
		{"share an unmanaged image in an allowed region", iameval.Request{Action: "ec2:ModifyImageAttribute", Resource: euImage, Context: region("eu-west-1")}, false},
		{"revoke a copy left with only amishare:status", iameval.Request{Action: "ec2:ModifyImageAttribute", Resource: euImage, Context: with(region("eu-west-1"), taggedStatus)}, true},
		{"reset a copy no longer managed", iameval.Request{Action: "ec2:ResetImageAttribute", Resource: euImage, Context: with(region("eu-west-1"), map[string][]string{"ec2:Owner": {"123456789012"}})}, true},
		{"reset an image in a region not allowed", iameval.Request{Action: "ec2:ResetImageAttribute", Resource: "arn:aws:ec2:ap-south-1::image/ami-0123456789abcdef1", Context: with(region("ap-south-1"), map[string][]string{"ec2:Owner": {"123456789012"}})}, false},
		{"share a copy's snapshot with an account AllowedAccounts lacks", iameval.Request{Action: "ec2:ModifySnapshotAttribute", Resource: euSnapshot, Context: with(region("eu-west-1"), map[string][]string{"ec2:Add/userId": {"999999999999"}})}, false},
		{"share a copy's snapshot", iameval.Request{Action: "ec2:ModifySnapshotAttribute", Resource: euSnapshot, Context: with(region("eu-west-1"), map[string][]string{"ec2:Add/userId": {"111122223333"}})}, true},
		{"make a copy's snapshot public", iameval.Request{Action: "ec2:ModifySnapshotAttribute", Resource: euSnapshot, Context: with(region("eu-west-1"), map[string][]string{"ec2:Add/group": {"all"}})}, false},
		{"record a copy's snapshot", iameval.Request{Action: "ec2:CreateTags", Resource: euSnapshot, Context: with(region("eu-west-1"), keys("amishare:image"))}, true},
		{"forget a copy's snapshot", iameval.Request{Action: "ec2:DeleteTags", Resource: euSnapshot, Context: with(region("eu-west-1"), keys("amishare:image"))}, true},
		{"another tag on a copy's snapshot", iameval.Request{Action: "ec2:CreateTags", Resource: euSnapshot, Context: with(region("eu-west-1"), keys("amishare:image", "Name"))}, false},
		{"record a snapshot in a region not allowed", iameval.Request{Action: "ec2:CreateTags", Resource: "arn:aws:ec2:ap-south-1::snapshot/snap-1", Context: with(region("ap-south-1"), keys("amishare:image"))}, false},
		{"share in a region not allowed", iameval.Request{Action: "ec2:ModifySnapshotAttribute", Resource: "arn:aws:ec2:ap-south-1::snapshot/snap-1", Context: region("ap-south-1")}, false},
		{"write a copy key's policy", iameval.Request{Action: "kms:PutKeyPolicy", Resource: euKey, Context: with(region("eu-west-1"), delegated)}, true},
		{"write an undelegated copy key's policy", iameval.Request{Action: "kms:PutKeyPolicy", Resource: euKey, Context: region("eu-west-1")}, false},
		{"EBS decrypts for CopyImage", iameval.Request{Action: "kms:Decrypt", Resource: euKey, Context: viaEC2}, true},
		{"EBS re-encrypts for CopyImage", iameval.Request{Action: "kms:ReEncryptTo", Resource: euKey, Context: viaEC2}, true},
		{"EBS grant for CopyImage", iameval.Request{Action: "kms:CreateGrant", Resource: euKey, Context: with(viaEC2, map[string][]string{"kms:GrantIsForAWSResource": {"true"}})}, true},
		{"decrypt directly", iameval.Request{Action: "kms:Decrypt", Resource: euKey, Context: region("eu-west-1")}, false},
		{"decrypt with another account's key", iameval.Request{Action: "kms:Decrypt", Resource: "arn:aws:kms:eu-west-1:999988887777:key/1234abcd-12ab-34cd-56ef-1234567890ab", Context: viaEC2}, false},
	}
	stmts := role(t, map[string]string{"KmsMode": "policy", "DelegatedKeysOnly": "true", "AllowedRegions": "eu-west-1", "AllowedAccounts": "111122223333"}).Statements()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if d := iameval.Evaluate(stmts, tt.req); d.Allowed != tt.want {
				t.Errorf("%s: allowed = %v, want %v (decided by %v)", tt.req, d.Allowed, tt.want, sids(d.By))
			}
		})
	}
	// Key reads are not gated by DelegatedKeysOnly in an allowed region
	// either (as in this one): an undelegated copy key is refused at the
	// write, which the engine turns into a blocked image with the tag to add,
	// not at the read, which would fail the event on every retry.
	for _, tt := range []struct {
		mode string
		req  iameval.Request
		want bool
	}{
		{"policy", iameval.Request{Action: "kms:GetKeyPolicy", Resource: euKey, Context: region("eu-west-1")}, true},
		{"policy", iameval.Request{Action: "kms:GetKeyPolicy", Resource: "arn:aws:kms:ap-south-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab", Context: region("ap-south-1")}, false},
		{"grant", iameval.Request{Action: "kms:ListGrants", Resource: euKey, Context: region("eu-west-1")}, true},
		{"grant", iameval.Request{Action: "kms:RevokeGrant", Resource: euKey, Context: region("eu-west-1")}, false},
		{"grant", iameval.Request{Action: "kms:RevokeGrant", Resource: euKey, Context: with(region("eu-west-1"), delegated)}, true},
		{"grant", iameval.Request{Action: "kms:CreateGrant", Resource: euKey, Context: grantCtx(grantOps, accountRoot, region("eu-west-1"))}, false},
		{"grant", iameval.Request{Action: "kms:CreateGrant", Resource: euKey, Context: grantCtx(grantOps, accountRoot, region("eu-west-1"), delegated)}, true},
		// In every mode: statements left by policy mode are reported, grants
		// left by grant mode revoked.
		{"off", iameval.Request{Action: "kms:GetKeyPolicy", Resource: euKey, Context: region("eu-west-1")}, true},
		{"off", iameval.Request{Action: "kms:ListGrants", Resource: euKey, Context: region("eu-west-1")}, true},
		{"off", iameval.Request{Action: "kms:ListResourceTags", Resource: euKey, Context: region("eu-west-1")}, true},
		{"policy", iameval.Request{Action: "kms:ListResourceTags", Resource: "arn:aws:kms:ap-south-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab", Context: region("ap-south-1")}, false},
		{"policy", iameval.Request{Action: "kms:RevokeGrant", Resource: euKey, Context: with(region("eu-west-1"), delegated)}, true},
		{"off", iameval.Request{Action: "kms:PutKeyPolicy", Resource: euKey, Context: with(region("eu-west-1"), delegated)}, false},
	} {
		t.Run("KmsMode="+tt.mode+"/"+tt.req.Action, func(t *testing.T) {
			stmts := role(t, map[string]string{"KmsMode": tt.mode, "DelegatedKeysOnly": "true", "AllowedRegions": "eu-west-1"}).Statements()
			if d := iameval.Evaluate(stmts, tt.req); d.Allowed != tt.want {
				t.Errorf("%s: allowed = %v, want %v (decided by %v)", tt.req, d.Allowed, tt.want, sids(d.By))
			}
		})
	}

	// Without AllowedRegions nothing is copied elsewhere.
	none := role(t, map[string]string{"KmsMode": "policy", "DelegatedKeysOnly": "true"}).Statements()
	if d := iameval.Evaluate(none, iameval.Request{Action: "ec2:CopyImage", Resource: euImage, Context: region("eu-west-1")}); d.Allowed {
		t.Errorf("CopyImage into eu-west-1 without AllowedRegions: allowed by %v", sids(d.By))
	}
}
