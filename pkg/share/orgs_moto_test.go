package share_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/amishare/amishare/internal/testing/iameval"
	"github.com/amishare/amishare/pkg/amitag"
	"github.com/amishare/amishare/pkg/kmspolicy"
	"github.com/amishare/amishare/pkg/share"
	"github.com/amishare/amishare/pkg/share/rules"
)

const (
	orgARN   = "arn:aws:organizations::210987654321:organization/o-a1b2c3d4e5"
	ouWork   = "arn:aws:organizations::210987654321:ou/o-a1b2c3d4e5/ou-ab12-11111111"
	ouDev    = "arn:aws:organizations::210987654321:ou/o-a1b2c3d4e5/ou-ab12-22222222" // allowed through group "workloads"
	ouSib    = "arn:aws:organizations::210987654321:ou/o-a1b2c3d4e5/ou-ab12-33333333" // not allowed
	orgOther = "arn:aws:organizations::999999999999:organization/o-zzzzzzzzzz"        // not allowed
	// orgConfig allows A and B, the organization, the OU ou-ab12-11111111,
	// and group workloads = C and the OU ou-ab12-22222222.
	orgConfig = `{"allowedAccounts":["111122223333","444455556666"],
		"allowedOrganizations":["` + orgARN + `"],
		"allowedOrganizationalUnits":["` + ouWork + `"],
		"groups":{"workloads":["777788889999","` + ouDev + `"]}}`
)

func TestShareWithOrganizationalUnit(t *testing.T) {
	e := newEnv(t, orgConfig)
	id, snaps := e.PlainImage(t, 2, map[string]string{amitag.Accounts: "ou-ab12-11111111 " + acctA})

	res := e.reconcile(t, id)
	if res.Status != rules.StatusShared {
		t.Fatalf("status %q (%s), want shared", res.Status, res.Message)
	}
	e.WantShared(t, id, snaps, acctA) // snapshots: accounts only
	e.WantOrgs(t, id, nil, []string{ouWork})
	e.WantStatus(t, id, rules.StatusShared, "shared with 1 account(s), 1 OU(s)")
	if want := []string{acctA, ouWork}; !slices.Equal(res.Targets, want) {
		t.Errorf("targets = %q, want %q", res.Targets, want)
	}
	// The snapshots' record, then the account and the OU in one ModifyImageAttribute call.
	want := []string{"CreateTags", "ModifySnapshotAttribute", "ModifySnapshotAttribute", "ModifyImageAttribute", "CreateTags"}
	if got := e.Calls.Mutating(); !slices.Equal(got, want) {
		t.Errorf("modifying calls = %v, want %v", got, want)
	}
	if !strings.Contains(e.Logs.String(), `"organizationalUnitArn":"`+ouWork+`","action":"add"`) {
		t.Errorf("no audit line names the OU:\n%s", e.Logs)
	}

	// Idempotent.
	res = e.reconcile(t, id)
	if got := e.Calls.Mutating(); len(got) != 0 || len(res.Changes) != 0 {
		t.Errorf("second run: modifying calls %v, changes %v; want none", got, res.Changes)
	}

	// The full ARN names the same OU: still nothing to do.
	e.Tag(t, id, map[string]string{amitag.Accounts: ouWork + "," + acctA})
	e.reconcile(t, id)
	if got := e.Calls.Mutating(); len(got) != 0 {
		t.Errorf("full ARN for the same OU: modifying calls %v, want none", got)
	}

	// Dropping the OU revokes it; the account stays.
	e.Tag(t, id, map[string]string{amitag.Accounts: acctA})
	res = e.reconcile(t, id)
	e.WantOrgs(t, id, nil, nil)
	e.WantShared(t, id, snaps, acctA)
	if got := e.Calls.Mutating(); !slices.Equal(got, []string{"ModifyImageAttribute", "CreateTags"}) {
		t.Errorf("revoke calls = %v, want one ModifyImageAttribute and the status", got)
	}
	if len(res.Changes) != 1 || res.Changes[0].OrganizationalUnitARN != ouWork || res.Changes[0].Action != "remove" || res.Changes[0].Account != "" {
		t.Errorf("changes = %+v, want the OU removed", res.Changes)
	}
}

func TestOrganizationTargetsGroupsAndRefusals(t *testing.T) {
	e := newEnv(t, orgConfig)
	id, snaps := e.PlainImage(t, 1, map[string]string{amitag.Accounts: "workloads ou-ab12-33333333 " + orgARN + " " + orgOther})
	res := e.reconcile(t, id)
	e.WantOrgs(t, id, []string{orgARN}, []string{ouDev})
	e.WantShared(t, id, snaps, acctC)
	e.WantStatus(t, id, rules.StatusPartial, `"ou-ab12-33333333" (organizational unit is not in the allowlist)`)
	e.WantStatus(t, id, rules.StatusPartial, `"`+orgOther+`" (organization is not in the allowlist)`)
	if len(res.Refused) != 2 {
		t.Errorf("refused = %v, want 2", res.Refused)
	}

	// Nothing left: error, and nothing shared.
	only, snaps2 := e.PlainImage(t, 1, map[string]string{amitag.Accounts: ouSib})
	e.reconcile(t, only)
	e.WantStatus(t, only, rules.StatusError, "every target was refused")
	e.WantOrgs(t, only, nil, nil)
	e.WantShared(t, only, snaps2)
}

func TestManagedImageLosesHandAddedOrganizations(t *testing.T) {
	e := newEnv(t, orgConfig)
	id, snaps := e.PlainImage(t, 1, map[string]string{amitag.Accounts: acctA})
	for _, lp := range []ec2types.LaunchPermission{{OrganizationalUnitArn: aws.String(ouSib)}, {OrganizationArn: aws.String(orgOther)}} {
		e.ShareImage(t, id, lp)
	}
	e.reconcile(t, id)
	e.WantOrgs(t, id, nil, nil)
	e.WantShared(t, id, snaps, acctA)
	// Removing both and adding A: one call each way.
	if got := e.Calls.Count("ModifyImageAttribute"); got != 2 {
		t.Errorf("ModifyImageAttribute calls = %d, want 2 (one remove, one add)", got)
	}
}

func TestUnmanagedImageKeepsOrganizationShares(t *testing.T) {
	e := newEnv(t, orgConfig)
	id, _ := e.PlainImage(t, 1, nil)
	e.ShareImage(t, id, ec2types.LaunchPermission{OrganizationalUnitArn: aws.String(ouSib)})
	if res := e.reconcile(t, id); res.Outcome != share.OutcomeUnmanaged {
		t.Errorf("outcome = %q, want unmanaged", res.Outcome)
	}
	e.WantOrgs(t, id, nil, []string{ouSib})
	if got := e.Calls.Mutating(); len(got) != 0 {
		t.Errorf("modifying calls on an unmanaged image: %v", got)
	}
}

func TestDryRunNamesOrganizations(t *testing.T) {
	e := newEnv(t, orgConfig)
	id, _ := e.PlainImage(t, 1, map[string]string{amitag.Accounts: "o-a1b2c3d4e5"})
	e.Calls.Reset()
	res, err := e.engine.Reconcile(e.Ctx, id, share.Options{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Plan == nil || !slices.Equal(res.Plan.Image.Add, []string{orgARN}) {
		t.Fatalf("plan = %+v, want the organization added to the image", res.Plan)
	}
	if len(res.Changes) != 1 || res.Changes[0].OrganizationARN != orgARN {
		t.Errorf("planned changes = %+v, want the organization", res.Changes)
	}
	if got := e.Calls.Mutating(); len(got) != 0 {
		t.Errorf("dry run made modifying calls %v", got)
	}
	e.WantOrgs(t, id, nil, nil)
}

// principal is an account's place in AWS Organizations, as the request
// context of its principals' calls carries it.
type principal struct {
	name, account, org, path string
}

func (p principal) request(action string) iameval.Request {
	return iameval.Caller{Account: p.account, OrgID: p.org, OrgPath: p.path}.Request(action, map[string][]string{"kms:GrantIsForAWSResource": {"true"}})
}

var (
	pInOU      = principal{"account in the OU", "222222222222", "o-a1b2c3d4e5", "o-a1b2c3d4e5/r-ab12/ou-ab12-11111111/"}
	pInChild   = principal{"account in a child OU", "333333333333", "o-a1b2c3d4e5", "o-a1b2c3d4e5/r-ab12/ou-ab12-11111111/ou-ab12-44444444/"}
	pSibling   = principal{"account in a sibling OU", "444444444444", "o-a1b2c3d4e5", "o-a1b2c3d4e5/r-ab12/ou-ab12-33333333/"}
	pOtherOrg  = principal{"account in another organization", "666666666666", "o-zzzzzzzzzz", "o-zzzzzzzzzz/r-cd34/ou-ab12-11111111/"}
	pNoOrg     = principal{"account in no organization", "777777777777", "", ""}
	useAndCopy = []string{"kms:Decrypt", "kms:DescribeKey", "kms:ReEncryptFrom", "kms:GenerateDataKeyWithoutPlaintext", "kms:CreateGrant"}
)

// wantKeyUsableBy checks the key's policy, statement by statement through
// the evaluator, lets exactly the allowed principals use the key for EBS.
func (e *env) wantKeyUsableBy(t *testing.T, keyARN string, allowed, denied []principal) {
	t.Helper()
	policy := e.KeyPolicy(t, keyARN)
	for _, p := range allowed {
		for _, a := range useAndCopy {
			if ok, err := iameval.Allows(policy, p.request(a)); err != nil || !ok {
				t.Errorf("%s: %s denied (%v), want allowed", p.name, a, err)
			}
		}
	}
	for _, p := range denied {
		for _, a := range useAndCopy {
			if ok, err := iameval.Allows(policy, p.request(a)); err != nil || ok {
				t.Errorf("%s: %s allowed (%v), want denied", p.name, a, err)
			}
		}
	}
	// Statement by statement: none lets a denied principal in.
	stmts, err := iameval.Statements(policy)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range stmts {
		for _, p := range denied {
			for _, a := range useAndCopy {
				if ok, err := s.Applies(p.request(a)); err != nil || (ok && s.Effect == "Allow") {
					t.Errorf("statement %q lets %s %s (%v)", s.Sid, p.name, a, err)
				}
			}
		}
	}
	// Every statement with a wildcard principal is scoped to an organization.
	for _, s := range stmts {
		if slices.Contains(s.Principal["AWS"], "*") {
			if id := s.Condition["StringEquals"]["aws:PrincipalOrgID"]; len(id) != 1 || !strings.HasPrefix(id[0], "o-") {
				b, _ := json.Marshal(s)
				t.Errorf("statement lets anyone use the key: %s", b)
			}
		}
	}
}

func TestEncryptedImageSharedWithOU(t *testing.T) {
	e := newEnv(t, orgConfig)
	k := e.Key(t)
	before := e.OtherStatements(t, k)
	img1, snaps1 := e.EncryptedImage(t, "ou-ab12-11111111", k, k)

	res := e.reconcile(t, img1)
	if res.Status != rules.StatusShared {
		t.Fatalf("status %q (%s), want shared", res.Status, res.Message)
	}
	e.WantOrgs(t, img1, nil, []string{ouWork})
	e.WantShared(t, img1, snaps1) // an OU needs no snapshot permission
	e.wantKeyUsableBy(t, k, []principal{pInOU, pInChild}, []principal{pSibling, pOtherOrg, pNoOrg})
	if got := e.OtherStatements(t, k); !slices.EqualFunc(got, before, func(a, b any) bool { x, _ := json.Marshal(a); y, _ := json.Marshal(b); return string(x) == string(y) }) {
		t.Errorf("other statements changed:\n got %v\nwant %v", got, before)
	}
	if want := []string{"CreateTags", "PutKeyPolicy", "ModifyImageAttribute", "CreateTags"}; !slices.Equal(e.Calls.Mutating(), want) {
		t.Errorf("modifying calls = %v, want %v", e.Calls.Mutating(), want)
	}
	// One read for planning, one right before the write, one after it.
	if n := e.Calls.Count("GetKeyPolicy"); n != 3 {
		t.Errorf("GetKeyPolicy calls = %d, want 3", n)
	}
	if !strings.Contains(e.Logs.String(), `"keyArn":"`+k+`","organizationalUnitArn":"`+ouWork+`","action":"add"`) {
		t.Errorf("no audit line for the key names the OU:\n%s", e.Logs)
	}

	// Idempotent.
	e.reconcile(t, img1)
	if got := e.Calls.Mutating(); len(got) != 0 {
		t.Errorf("second run made modifying calls %v", got)
	}

	// A second image on the key still lists the OU: revoking it from the
	// first keeps it on the key.
	img2, _ := e.EncryptedImage(t, ouWork+" "+acctA, k)
	e.reconcile(t, img2)
	e.Tag(t, img1, map[string]string{amitag.Accounts: ""})
	e.reconcile(t, img1)
	e.WantOrgs(t, img1, nil, nil)
	if got, want := e.KeyGrantees(t, k), []string{acctA, "o-a1b2c3d4e5/ou-ab12-11111111"}; !slices.Equal(got, want) {
		t.Errorf("key grants %v, want %v (the OU still needed by %s)", got, want, img2)
	}
	// Then the second image drops the OU: it leaves the key.
	e.Tag(t, img2, map[string]string{amitag.Accounts: acctA})
	e.reconcile(t, img2)
	if got, want := e.KeyGrantees(t, k), []string{acctA}; !slices.Equal(got, want) {
		t.Errorf("key grants %v, want %v", got, want)
	}
	e.wantKeyUsableBy(t, k, nil, []principal{pInOU, pInChild})
	if got := e.OtherStatements(t, k); !slices.EqualFunc(got, before, func(a, b any) bool { x, _ := json.Marshal(a); y, _ := json.Marshal(b); return string(x) == string(y) }) {
		t.Errorf("other statements changed after revoke")
	}
}

func TestEncryptedImageSharedWithOrganization(t *testing.T) {
	e := newEnv(t, orgConfig)
	k := e.Key(t)
	id, _ := e.EncryptedImage(t, "o-a1b2c3d4e5 "+acctB, k)
	e.reconcile(t, id)
	e.WantOrgs(t, id, []string{orgARN}, nil)
	e.wantKeyUsableBy(t, k, []principal{pInOU, pInChild, pSibling, {"account B", acctB, "", ""}}, []principal{pOtherOrg, pNoOrg})
}

func TestGrantModeRefusesOrganizationsOfEncryptedImages(t *testing.T) {
	e := newEnv(t, strings.Replace(orgConfig, `"groups"`, `"kms":"grant","groups"`, 1))
	k := e.Key(t)
	policyBefore := e.KeyPolicy(t, k)
	id, snaps := e.EncryptedImage(t, "ou-ab12-11111111 "+acctA, k)
	res := e.reconcile(t, id)
	e.WantStatus(t, id, rules.StatusPartial, `"`+ouWork+`" (a KMS grant cannot name an organization or OU`)
	e.WantShared(t, id, snaps, acctA)
	e.WantOrgs(t, id, nil, nil)
	if got := grantAccounts(t, e, k); !slices.Equal(got, []string{acctA}) {
		t.Errorf("grants for %v, want [%s]", got, acctA)
	}
	if after := e.KeyPolicy(t, k); after != policyBefore {
		t.Errorf("grant mode changed the key policy")
	}
	if len(res.Refused) != 1 || res.Refused[0].Token != ouWork || res.Refused[0].Reason != rules.ReasonGrantOrganization {
		t.Errorf("refused = %+v, want the OU for grant mode", res.Refused)
	}

	// An unencrypted image is shared with the OU in grant mode too.
	plain, _ := e.PlainImage(t, 1, map[string]string{amitag.Accounts: "ou-ab12-11111111"})
	e.reconcile(t, plain)
	e.WantOrgs(t, plain, nil, []string{ouWork})
}

// TestKeyKeepsOUAnotherImageNeedsThroughGroup: an OU that another image on
// the same key names only through a group stays on the key when the first
// image drops it, and leaves once no image names it.
func TestKeyKeepsOUAnotherImageNeedsThroughGroup(t *testing.T) {
	e := newEnv(t, orgConfig)
	k := e.Key(t)
	byID, _ := e.EncryptedImage(t, "ou-ab12-22222222", k)
	byGroup, _ := e.EncryptedImage(t, "workloads", k)
	for _, id := range []string{byID, byGroup} {
		if res := e.reconcile(t, id); res.Status != rules.StatusShared {
			t.Fatalf("%s: status %q (%s), want shared", id, res.Status, res.Message)
		}
	}
	devKey := "o-a1b2c3d4e5/ou-ab12-22222222"
	if got, want := e.KeyGrantees(t, k), []string{acctC, devKey}; !slices.Equal(got, want) {
		t.Fatalf("key grants %v, want %v", got, want)
	}
	e.Tag(t, byID, map[string]string{amitag.Accounts: ""})
	e.reconcile(t, byID)
	e.WantOrgs(t, byID, nil, nil)
	if got, want := e.KeyGrantees(t, k), []string{acctC, devKey}; !slices.Equal(got, want) {
		t.Errorf("key grants %v, want %v (the OU is still needed by %s through its group)", got, want, byGroup)
	}
	e.Tag(t, byGroup, map[string]string{amitag.Accounts: ""})
	e.reconcile(t, byGroup)
	if got := e.KeyGrantees(t, k); len(got) != 0 {
		t.Errorf("key grants %v, want nothing once no image names the OU", got)
	}
}

// TestWidenedOrganizationStatementIsRestored: someone rewrites amishare's
// statement for the organization by hand so that it no longer carries the
// aws:PrincipalOrgID condition (anyone could use the key). The next
// reconcile of an image on the key, which otherwise has nothing to change,
// writes the statement back as amishare owns it, and says so in the log.
func TestWidenedOrganizationStatementIsRestored(t *testing.T) {
	e := newEnv(t, orgConfig)
	k := e.Key(t)
	id, _ := e.EncryptedImage(t, "o-a1b2c3d4e5", k)
	e.reconcile(t, id)
	policy := e.KeyPolicy(t, k)
	var doc map[string]any
	if err := json.Unmarshal([]byte(policy), &doc); err != nil {
		t.Fatal(err)
	}
	widened := 0
	for _, s := range doc["Statement"].([]any) {
		if st := s.(map[string]any); st["Sid"] == kmspolicy.UseSid+"-o-a1b2c3d4e5" {
			delete(st, "Condition")
			widened++
		}
	}
	if widened != 1 {
		t.Fatalf("found %d use statements for the organization, want 1:\n%s", widened, policy)
	}
	b, _ := json.Marshal(doc)
	if _, err := e.Fixture.KMS.PutKeyPolicy(e.Ctx, &kms.PutKeyPolicyInput{KeyId: aws.String(k), PolicyName: aws.String("default"), Policy: aws.String(string(b))}); err != nil {
		t.Fatal(err)
	}
	if ok, err := iameval.Allows(string(b), pOtherOrg.request("kms:Decrypt")); err != nil || !ok {
		t.Fatalf("the widened statement does not let another organization in (%v): the test proves nothing", err)
	}
	e.Calls.Reset()
	e.Logs.Reset()
	e.reconcile(t, id)
	if got := e.Calls.Mutating(); !slices.Equal(got, []string{"PutKeyPolicy"}) {
		t.Errorf("modifying calls = %v, want the key policy written back", got)
	}
	e.wantKeyUsableBy(t, k, []principal{pInOU, pSibling}, []principal{pOtherOrg, pNoOrg})
	if !strings.Contains(e.Logs.String(), `"msg":"key statements restored"`) {
		t.Errorf("no log line says the key statements were restored:\n%s", e.Logs)
	}
	// Restored: nothing more to do.
	e.reconcile(t, id)
	if got := e.Calls.Mutating(); len(got) != 0 {
		t.Errorf("after the repair: modifying calls %v, want none", got)
	}
}
