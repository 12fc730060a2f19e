package stack

import "testing"

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
		req  Request
		want bool
	}{
		{"copy into an allowed region", Request{"ec2:CopyImage", euImage, region("eu-west-1")}, true},
		{"copy's snapshots in an allowed region", Request{"ec2:CopyImage", euSnapshot, region("eu-west-1")}, true},
		{"copy the source (authorized on the source image)", Request{"ec2:CopyImage", imageARN, region("eu-west-1")}, true},
		{"re-encrypted copy in this region", Request{"ec2:CopyImage", imageARN, region("us-east-1")}, true},
		{"copy into a region not allowed", Request{"ec2:CopyImage", "arn:aws:ec2:ap-south-1::image/ami-0123456789abcdef1", region("ap-south-1")}, false},
		{"copy's tags on creation", Request{"ec2:CreateTags", euImage, with(region("eu-west-1"), keys("amishare:accounts", "amishare:source"), map[string][]string{"ec2:CreateAction": {"CopyImage"}})}, true},
		{"amishare:regions on creation", Request{"ec2:CreateTags", euImage, with(keys("amishare:regions"), map[string][]string{"ec2:CreateAction": {"CopyImage"}})}, false},
		{"copy's tags outside CopyImage", Request{"ec2:CreateTags", euImage, with(region("eu-west-1"), keys("amishare:source"))}, false},
		{"copy's accounts tag", Request{"ec2:CreateTags", euImage, with(region("eu-west-1"), keys("amishare:accounts"), copyTag)}, true},
		{"accounts tag of an image that is no copy", Request{"ec2:CreateTags", euImage, with(region("eu-west-1"), keys("amishare:accounts"), taggedAccounts)}, false},
		{"source's status and copies tags", Request{"ec2:CreateTags", imageARN, with(region("us-east-1"), keys("amishare:status", "amishare:message", "amishare:copies"), taggedAccounts)}, true},
		{"share a copy in an allowed region", Request{"ec2:ModifyImageAttribute", euImage, with(region("eu-west-1"), taggedAccounts)}, true},
		{"share an unmanaged image in an allowed region", Request{"ec2:ModifyImageAttribute", euImage, region("eu-west-1")}, false},
		{"share a copy's snapshot", Request{"ec2:ModifySnapshotAttribute", euSnapshot, with(region("eu-west-1"), map[string][]string{"ec2:Add/userId": {"111122223333"}})}, true},
		{"make a copy's snapshot public", Request{"ec2:ModifySnapshotAttribute", euSnapshot, with(region("eu-west-1"), map[string][]string{"ec2:Add/group": {"all"}})}, false},
		{"record a copy's snapshot", Request{"ec2:CreateTags", euSnapshot, with(region("eu-west-1"), keys("amishare:image"))}, true},
		{"forget a copy's snapshot", Request{"ec2:DeleteTags", euSnapshot, with(region("eu-west-1"), keys("amishare:image"))}, true},
		{"another tag on a copy's snapshot", Request{"ec2:CreateTags", euSnapshot, with(region("eu-west-1"), keys("amishare:image", "Name"))}, false},
		{"record a snapshot in a region not allowed", Request{"ec2:CreateTags", "arn:aws:ec2:ap-south-1::snapshot/snap-1", with(region("ap-south-1"), keys("amishare:image"))}, false},
		{"share in a region not allowed", Request{"ec2:ModifySnapshotAttribute", "arn:aws:ec2:ap-south-1::snapshot/snap-1", region("ap-south-1")}, false},
		{"write a copy key's policy", Request{"kms:PutKeyPolicy", euKey, with(region("eu-west-1"), delegated)}, true},
		{"write an undelegated copy key's policy", Request{"kms:PutKeyPolicy", euKey, region("eu-west-1")}, false},
		{"EBS decrypts for CopyImage", Request{"kms:Decrypt", euKey, viaEC2}, true},
		{"EBS re-encrypts for CopyImage", Request{"kms:ReEncryptTo", euKey, viaEC2}, true},
		{"EBS grant for CopyImage", Request{"kms:CreateGrant", euKey, with(viaEC2, map[string][]string{"kms:GrantIsForAWSResource": {"true"}})}, true},
		{"decrypt directly", Request{"kms:Decrypt", euKey, region("eu-west-1")}, false},
		{"decrypt with another account's key", Request{"kms:Decrypt", "arn:aws:kms:eu-west-1:999988887777:key/1234abcd-12ab-34cd-56ef-1234567890ab", viaEC2}, false},
	}
	stmts := role(t, map[string]string{"KmsMode": "policy", "DelegatedKeysOnly": "true", "AllowedRegions": "eu-west-1"}).Statements()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if d := Evaluate(stmts, tt.req); d.Allowed != tt.want {
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
		req  Request
		want bool
	}{
		{"policy", Request{"kms:GetKeyPolicy", euKey, region("eu-west-1")}, true},
		{"policy", Request{"kms:GetKeyPolicy", "arn:aws:kms:ap-south-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab", region("ap-south-1")}, false},
		{"grant", Request{"kms:ListGrants", euKey, region("eu-west-1")}, true},
		{"grant", Request{"kms:RevokeGrant", euKey, region("eu-west-1")}, false},
		{"grant", Request{"kms:RevokeGrant", euKey, with(region("eu-west-1"), delegated)}, true},
		{"grant", Request{"kms:CreateGrant", euKey, grantCtx(grantOps, accountRoot, region("eu-west-1"))}, false},
		{"grant", Request{"kms:CreateGrant", euKey, grantCtx(grantOps, accountRoot, region("eu-west-1"), delegated)}, true},
		{"off", Request{"kms:GetKeyPolicy", euKey, region("eu-west-1")}, false},
		{"off", Request{"kms:ListGrants", euKey, region("eu-west-1")}, false},
	} {
		t.Run("KmsMode="+tt.mode+"/"+tt.req.Action, func(t *testing.T) {
			stmts := role(t, map[string]string{"KmsMode": tt.mode, "DelegatedKeysOnly": "true", "AllowedRegions": "eu-west-1"}).Statements()
			if d := Evaluate(stmts, tt.req); d.Allowed != tt.want {
				t.Errorf("%s: allowed = %v, want %v (decided by %v)", tt.req, d.Allowed, tt.want, sids(d.By))
			}
		})
	}

	// Without AllowedRegions nothing is copied elsewhere.
	none := role(t, map[string]string{"KmsMode": "policy", "DelegatedKeysOnly": "true"}).Statements()
	if d := Evaluate(none, Request{"ec2:CopyImage", euImage, region("eu-west-1")}); d.Allowed {
		t.Errorf("CopyImage into eu-west-1 without AllowedRegions: allowed by %v", sids(d.By))
	}
}
