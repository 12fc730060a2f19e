package kmspolicy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/amishare/amishare/internal/testing/iameval"
)

const (
	testOrgID  = "o-a1b2c3d4e5"
	testOrgARN = "arn:aws:organizations::210987654321:organization/o-a1b2c3d4e5"
	testOUARN  = "arn:aws:organizations::210987654321:ou/o-a1b2c3d4e5/ou-ab12-11111111"
	testOUKey  = "o-a1b2c3d4e5/ou-ab12-11111111"
)

func TestGranteeKey(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"111122223333", "111122223333", true},
		{testOrgID, testOrgID, true},
		{testOrgARN, testOrgID, true},
		{testOUARN, testOUKey, true},
		{testOUKey, testOUKey, true},
		{"ou-ab12-11111111", "", false}, // an OU id alone lacks its organization
		{"arn:aws:iam::111122223333:root", "", false},
		{"o-a1b2c3d4e5/ou-ab12-11111111/x", "", false},
		{"*", "", false},
	}
	for _, tc := range tests {
		got, ok := GranteeKey(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("GranteeKey(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestSidRoundTrip(t *testing.T) {
	for _, g := range []string{testOrgID, testOUKey, "o-zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz/ou-zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz-zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"} {
		for _, s := range orgStatements(g, testAccount) {
			if got, ok := granteeOfSid(s.Sid); !ok || got != g {
				t.Errorf("granteeOfSid(%q) = %q, %v; want %q", s.Sid, got, ok, g)
			}
		}
	}
	for _, sid := range []string{UseSid, GrantSid, UseSid + "-", UseSid + "-o-short", UseSid + "-o-a1b2c3d4e5-ou-x", "x-" + UseSid + "-" + testOrgID, UseSid + "-ou-ab12-11111111"} {
		if g, ok := granteeOfSid(sid); ok {
			t.Errorf("granteeOfSid(%q) = %q, want not ours", sid, g)
		}
	}
}

func TestOrgStatements(t *testing.T) {
	got := Statement([]string{testOUARN, testOrgARN}, testKey)
	want := `[
	 {"Sid":"amishare-ebs-use-o-a1b2c3d4e5","Effect":"Allow","Principal":"*",
	  "Action":["kms:Decrypt","kms:DescribeKey","kms:ReEncrypt*","kms:GenerateDataKey","kms:GenerateDataKeyWithoutPlaintext"],"Resource":"*",
	  "Condition":{"StringEquals":{"aws:PrincipalOrgID":"o-a1b2c3d4e5"},"StringNotEquals":{"aws:PrincipalAccount":"123456789012"}}},
	 {"Sid":"amishare-ebs-grant-o-a1b2c3d4e5","Effect":"Allow","Principal":"*","Action":"kms:CreateGrant","Resource":"*",
	  "Condition":{"StringEquals":{"aws:PrincipalOrgID":"o-a1b2c3d4e5"},"StringNotEquals":{"aws:PrincipalAccount":"123456789012"},"Bool":{"kms:GrantIsForAWSResource":"true"}}},
	 {"Sid":"amishare-ebs-use-o-a1b2c3d4e5-ou-ab12-11111111","Effect":"Allow","Principal":"*",
	  "Action":["kms:Decrypt","kms:DescribeKey","kms:ReEncrypt*","kms:GenerateDataKey","kms:GenerateDataKeyWithoutPlaintext"],"Resource":"*",
	  "Condition":{"StringEquals":{"aws:PrincipalOrgID":"o-a1b2c3d4e5"},"ForAnyValue:StringLike":{"aws:PrincipalOrgPaths":["o-a1b2c3d4e5/*/ou-ab12-11111111/*"]},
	               "StringNotEquals":{"aws:PrincipalAccount":"123456789012"}}},
	 {"Sid":"amishare-ebs-grant-o-a1b2c3d4e5-ou-ab12-11111111","Effect":"Allow","Principal":"*","Action":"kms:CreateGrant","Resource":"*",
	  "Condition":{"StringEquals":{"aws:PrincipalOrgID":"o-a1b2c3d4e5"},"ForAnyValue:StringLike":{"aws:PrincipalOrgPaths":["o-a1b2c3d4e5/*/ou-ab12-11111111/*"]},
	               "StringNotEquals":{"aws:PrincipalAccount":"123456789012"},"Bool":{"kms:GrantIsForAWSResource":"true"}}}]`
	if !sameMeaning(t, []byte(got), []byte(want)) {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

// checkScoped fails when out holds a statement of ours (by Sid), or any
// statement that was not in in, that lets a wildcard principal use the key
// without a StringEquals aws:PrincipalOrgID condition on an organization id.
func checkScoped(t testing.TB, in, out string) {
	t.Helper()
	before := map[string]bool{}
	if doc, err := parse(in); err == nil {
		for _, s := range doc.stmts {
			before[compact(s)] = true
		}
	}
	doc, err := parse(out)
	if err != nil {
		t.Fatalf("output does not parse: %v", err)
	}
	for _, raw := range doc.stmts {
		var v any
		decodeErr := json.Unmarshal(raw, &v)
		var s iameval.Statement
		if decodeErr == nil {
			s, decodeErr = iameval.ParseStatement(v)
		}
		_, ours := granteeOfSid(s.Sid)
		ours = ours || s.Sid == UseSid || s.Sid == GrantSid
		if !ours && before[compact(raw)] {
			continue // someone else's, carried through
		}
		if decodeErr != nil {
			t.Fatalf("statement %s written by Edit does not decode: %v", raw, decodeErr)
		}
		if wildcard(s.Principal) {
			id := ""
			if v := s.Condition["StringEquals"][orgIDKey]; len(v) == 1 {
				id = v[0]
			}
			if s.Effect != "Deny" && !strings.HasPrefix(id, "o-") {
				t.Fatalf("statement %q lets anyone use the key: %s", s.Sid, raw)
			}
		}
	}
}

func compact(raw []byte) string {
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return string(raw)
	}
	return b.String()
}

func wildcard(p map[string][]string) bool {
	for _, names := range p {
		for _, n := range names {
			if strings.Contains(n, "*") {
				return true
			}
		}
	}
	return false
}

func TestEditOrganizations(t *testing.T) {
	a := "111122223333"
	tampered := `{"Statement":[{"Sid":"amishare-ebs-use-o-a1b2c3d4e5","Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"}]}`
	tests := []struct {
		name         string
		policy       string
		add, remove  []string
		wantGrantees []string
		wantChanged  bool
		wantErr      error
	}{
		{name: "organization to empty", add: []string{testOrgARN}, wantGrantees: []string{testOrgID}, wantChanged: true},
		{name: "OU by key", add: []string{testOUKey}, wantGrantees: []string{testOUKey}, wantChanged: true},
		{name: "OU and account to the default policy", policy: defaultKeyPolicy, add: []string{testOUARN, a}, wantGrantees: []string{a, testOUKey}, wantChanged: true},
		{name: "already there", policy: mustEdit(t, defaultKeyPolicy, []string{testOUARN, a}, nil), add: []string{testOUKey}, wantGrantees: []string{a, testOUKey}},
		{name: "remove the OU by ARN, keep the account", policy: mustEdit(t, defaultKeyPolicy, []string{testOUARN, a}, nil), remove: []string{testOUARN}, wantGrantees: []string{a}, wantChanged: true},
		{name: "remove the account, keep the OU", policy: mustEdit(t, defaultKeyPolicy, []string{testOUARN, a}, nil), remove: []string{a}, wantGrantees: []string{testOUKey}, wantChanged: true},
		{name: "tampered statement of ours is rewritten scoped", policy: tampered, add: []string{testOrgID}, wantGrantees: []string{testOrgID}, wantChanged: true},
		{name: "tampered statement of ours is dropped on revoke", policy: tampered, remove: []string{testOrgID}, wantGrantees: []string{}, wantChanged: true},
		{name: "half a pair is completed", policy: `{"Statement":[` + string(mustJSON(t, orgStatements(testOUKey, testAccount)[0])) + `]}`, add: []string{testOUKey}, wantGrantees: []string{testOUKey}, wantChanged: true},
		{name: "OU id alone is refused", add: []string{"ou-ab12-11111111"}, wantErr: ErrInvalidAccount},
		{name: "wildcard is refused", add: []string{"*"}, wantErr: ErrInvalidAccount},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, changed, err := Edit(tt.policy, tt.add, tt.remove, testKey)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("got error %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if changed != tt.wantChanged {
				t.Errorf("got changed=%v, want %v", changed, tt.wantChanged)
			}
			got, err := Grantees(out)
			if err != nil || !slices.Equal(got, tt.wantGrantees) {
				t.Errorf("got grantees %v (%v), want %v", got, err, tt.wantGrantees)
			}
			checkScoped(t, tt.policy, out)
			checkOthersKept(t, tt.policy, out)
			checkIdempotent(t, out, tt.add, tt.remove, testKey)
		})
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestOtherStatementsByteForByte checks that statements and members that are
// not ours keep their exact bytes, whitespace included, when ours change.
func TestOtherStatementsByteForByte(t *testing.T) {
	other1 := `{"Sid": "Enable IAM User Permissions",  "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "kms:*", "Resource": "*"}`
	other2 := "{\n\t\"Sid\":\"odd\\u0041\",\"Effect\":\"Deny\",\"Principal\":{\"AWS\":\"*\"},\"Action\":\"kms:ScheduleKeyDeletion\",\"Resource\":\"*\",\"Condition\":{\"NumericLessThan\":{\"kms:ScheduleKeyDeletionPendingWindowInDays\":1.50}}}"
	policy := `{"Version": "2012-10-17", "Id": "key-default-1", "Statement": [` + other1 + `, ` + other2 + `]}`
	out, _, err := Edit(policy, []string{"111122223333", testOUARN}, nil, testKey)
	if err != nil {
		t.Fatal(err)
	}
	out2, _, err := Edit(out, []string{testOrgARN}, []string{testOUARN}, testKey)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{out, out2} {
		for _, want := range []string{other1, other2, `"Id": "key-default-1"`} {
			if !strings.Contains(p, want) {
				t.Errorf("the bytes of %s are not in\n%s", want, p)
			}
		}
	}
}

// orgPath is where an account sits: aws:PrincipalOrgPaths of its principals.
type principalCtx struct {
	name    string
	account string
	org     string
	path    string // "" when not in an organization
}

func (p principalCtx) request(action string, grantForAWS bool) iameval.Request {
	ctx := map[string][]string{}
	if action == "kms:CreateGrant" {
		ctx["kms:GrantIsForAWSResource"] = []string{map[bool]string{true: "true", false: "false"}[grantForAWS]}
	}
	return iameval.Caller{Account: p.account, OrgID: p.org, OrgPath: p.path}.Request(action, ctx)
}

// Principals around the OU ou-ab12-11111111 of organization o-a1b2c3d4e5
// (root r-ab12), with the entity paths IAM documents for aws:PrincipalOrgPaths.
var (
	inOU       = principalCtx{"account in the OU", "222222222222", testOrgID, "o-a1b2c3d4e5/r-ab12/ou-ab12-11111111/"}
	inChildOU  = principalCtx{"account in a child OU", "333333333333", testOrgID, "o-a1b2c3d4e5/r-ab12/ou-ab12-11111111/ou-ab12-44444444/"}
	inNestedOU = principalCtx{"OU under another OU", "121212121212", testOrgID, "o-a1b2c3d4e5/r-ab12/ou-ab12-99999999/ou-ab12-11111111/"}
	inSibling  = principalCtx{"account in a sibling OU", "444444444444", testOrgID, "o-a1b2c3d4e5/r-ab12/ou-ab12-33333333/"}
	inPrefixOU = principalCtx{"account in an OU whose id extends the OU's", "454545454545", testOrgID, "o-a1b2c3d4e5/r-ab12/ou-ab12-111111119/"}
	atRoot     = principalCtx{"account at the organization root", "555555555555", testOrgID, "o-a1b2c3d4e5/r-ab12/"}
	otherOrg   = principalCtx{"account of another organization, same OU id", "666666666666", "o-zzzzzzzzzz", "o-zzzzzzzzzz/r-cd34/ou-ab12-11111111/"}
	noOrg      = principalCtx{"account in no organization", "777777777777", "", ""}
	// The key's own account is in the organization (and the OU): the
	// statements leave it out, so its principals still need IAM permissions.
	keyOwnerInOU = principalCtx{"the key's own account, in the OU", testAccount, testOrgID, "o-a1b2c3d4e5/r-ab12/ou-ab12-11111111/"}
)

func TestOrganizationStatementsEvaluated(t *testing.T) {
	useActions := []string{"kms:Decrypt", "kms:DescribeKey", "kms:ReEncryptFrom", "kms:ReEncryptTo", "kms:GenerateDataKey", "kms:GenerateDataKeyWithoutPlaintext"}
	tests := []struct {
		name    string
		grant   []string
		allowed []principalCtx
		denied  []principalCtx
	}{
		{name: "OU", grant: []string{testOUARN},
			allowed: []principalCtx{inOU, inChildOU, inNestedOU},
			denied:  []principalCtx{inSibling, inPrefixOU, atRoot, otherOrg, noOrg}},
		{name: "organization", grant: []string{testOrgARN},
			allowed: []principalCtx{inOU, inChildOU, inSibling, atRoot},
			denied:  []principalCtx{otherOrg, noOrg}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			policy, _, err := Edit(defaultKeyPolicy, tt.grant, nil, testKey)
			if err != nil {
				t.Fatal(err)
			}
			checkScoped(t, defaultKeyPolicy, policy)
			try := func(p principalCtx, action string, grantForAWS bool) bool {
				t.Helper()
				ok, err := iameval.Allows(policy, p.request(action, grantForAWS))
				if err != nil {
					t.Fatalf("%s %s: %v", p.name, action, err)
				}
				return ok
			}
			for _, p := range tt.allowed {
				for _, action := range useActions {
					if !try(p, action, false) {
						t.Errorf("%s: %s denied, want allowed", p.name, action)
					}
				}
				if !try(p, "kms:CreateGrant", true) {
					t.Errorf("%s: CreateGrant for an AWS resource denied, want allowed", p.name)
				}
				if try(p, "kms:CreateGrant", false) {
					t.Errorf("%s: CreateGrant not for an AWS resource allowed, want denied", p.name)
				}
				for _, action := range []string{"kms:Encrypt", "kms:PutKeyPolicy", "kms:ScheduleKeyDeletion"} {
					if try(p, action, false) {
						t.Errorf("%s: %s allowed, want denied", p.name, action)
					}
				}
			}
			for _, p := range tt.denied {
				for _, action := range append(useActions, "kms:CreateGrant") {
					if try(p, action, true) {
						t.Errorf("%s: %s allowed, want denied", p.name, action)
					}
				}
			}
		})
	}

	// Statement by statement: each of ours applies exactly to its principals.
	policy, _, err := Edit(defaultKeyPolicy, []string{testOUARN, "888888888888"}, nil, testKey)
	if err != nil {
		t.Fatal(err)
	}
	stmts, err := iameval.Statements(policy)
	if err != nil {
		t.Fatal(err)
	}
	applies := map[string][]string{}
	for _, s := range stmts {
		for _, p := range []principalCtx{inOU, inChildOU, inSibling, otherOrg, noOrg, {"listed account", "888888888888", "", ""}} {
			ok, err := s.Applies(p.request(map[bool]string{true: "kms:CreateGrant", false: "kms:Decrypt"}[strings.Contains(s.Sid, "grant")], true))
			if err != nil {
				t.Fatalf("%s: %v", s.Sid, err)
			}
			if ok {
				applies[s.Sid] = append(applies[s.Sid], p.name)
			}
		}
	}
	want := map[string][]string{
		UseSid:   {"listed account"},
		GrantSid: {"listed account"},
		UseSid + "-o-a1b2c3d4e5-ou-ab12-11111111":   {inOU.name, inChildOU.name},
		GrantSid + "-o-a1b2c3d4e5-ou-ab12-11111111": {inOU.name, inChildOU.name},
	}
	if !reflect.DeepEqual(applies, want) {
		t.Errorf("statements apply to\n%v\nwant\n%v", applies, want)
	}
}

func TestStatementIsScoped(t *testing.T) {
	out := Statement([]string{testOrgARN, testOUARN, "111122223333", "ou-ab12-11111111", "*"}, testKey)
	checkScoped(t, "", `{"Statement":`+out+`}`)
	var stmts []map[string]any
	if err := json.Unmarshal([]byte(out), &stmts); err != nil {
		t.Fatal(err)
	}
	if len(stmts) != 6 { // accounts, organization, OU: two each; the rest left out
		t.Errorf("got %d statements, want 6:\n%s", len(stmts), out)
	}
}

func TestManyOUsHitTheSizeLimit(t *testing.T) {
	var ous []string
	for i := range 200 {
		ous = append(ous, fmt.Sprintf("arn:aws:organizations::210987654321:ou/o-a1b2c3d4e5/ou-ab12-%08d", i))
	}
	if _, _, err := Edit(defaultKeyPolicy, ous, nil, testKey); !errors.Is(err, ErrPolicyTooLarge) {
		t.Fatalf("got error %v, want ErrPolicyTooLarge", err)
	}
	// As many as fit are accepted, compacted if need be, within the limit.
	out, _, err := Edit(defaultKeyPolicy, ous[:20], nil, testKey)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) > MaxPolicyBytes {
		t.Errorf("got %d bytes, want at most %d", len(out), MaxPolicyBytes)
	}
	checkScoped(t, defaultKeyPolicy, out)
}

// TestOrganizationStatementsExcludeKeyAccount: amishare's organization and
// OU statements alone (without the default statement that delegates to the
// account's IAM) give the key's own account nothing, although it is in the
// organization and the OU; another account of the OU may use the key.
func TestOrganizationStatementsExcludeKeyAccount(t *testing.T) {
	ours, _, err := Edit("", []string{testOUARN, testOrgARN}, nil, testKey)
	if err != nil {
		t.Fatal(err)
	}
	for _, action := range []string{"kms:Decrypt", "kms:CreateGrant"} {
		if ok, err := iameval.Allows(ours, keyOwnerInOU.request(action, true)); err != nil || ok {
			t.Errorf("%s: %s allowed=%v (%v), want denied", keyOwnerInOU.name, action, ok, err)
		}
		if ok, err := iameval.Allows(ours, inOU.request(action, true)); err != nil || !ok {
			t.Errorf("%s: %s allowed=%v (%v), want allowed", inOU.name, action, ok, err)
		}
	}
}

// TestScopedGuard checks the guard Edit runs over every statement it builds.
func TestScopedGuard(t *testing.T) {
	org := conditions{{"StringEquals", map[string]any{orgIDKey: testOrgID}}}
	tests := []struct {
		name string
		s    statement
		want bool
	}{
		{"account principals", statement{Principal: awsPrincipal{AWS: []string{"arn:aws:iam::111122223333:root"}}}, true},
		{"no principals", statement{Principal: awsPrincipal{}}, false},
		{"wildcard among accounts", statement{Principal: awsPrincipal{AWS: []string{"arn:aws:iam::111122223333:root", "*"}}}, false},
		{"wildcard without condition", statement{Principal: "*"}, false},
		{"wildcard with only the paths", statement{Principal: "*", Condition: conditions{{"ForAnyValue:StringLike", map[string]any{orgPathsKey: []string{"o-a1b2c3d4e5/*"}}}}}, false},
		{"wildcard with an empty organization", statement{Principal: "*", Condition: conditions{{"StringEquals", map[string]any{orgIDKey: ""}}}}, false},
		{"wildcard scoped to the organization, the key's account not excluded", statement{Principal: "*", Condition: org}, false},
		{"wildcard scoped to the organization, another account excluded", statement{Principal: "*", Condition: append(slices.Clone(org),
			condition{"StringNotEquals", map[string]any{principalAccountKey: "999999999999"}})}, false},
		{"wildcard scoped to the organization without the key's account", statement{Principal: "*", Condition: append(slices.Clone(org),
			condition{"StringNotEquals", map[string]any{principalAccountKey: testAccount}})}, true},
	}
	for _, tc := range tests {
		if got := scoped(tc.s, testKey); got != tc.want {
			t.Errorf("%s: scoped = %v, want %v", tc.name, got, tc.want)
		}
	}
	for _, g := range []string{testOrgID, testOUKey} {
		for _, s := range orgStatements(g, testAccount) {
			if !scoped(s, testKey) {
				t.Errorf("%s is not scoped", s.Sid)
			}
		}
	}
}

// TestOrganizationStatementsUpgraded: statements written before they
// excluded the key's account are not as amishare writes them now, so an
// edit that adds and removes no one rewrites them (the engine's restore).
func TestOrganizationStatementsUpgraded(t *testing.T) {
	// The statements as an older amishare wrote them: no owner to exclude.
	oldStatements := orgStatements(testOUKey, "")
	old := `{"Version":"2012-10-17","Statement":[` + string(mustJSON(t, oldStatements[0])) + `,` + string(mustJSON(t, oldStatements[1])) + `]}`
	if ok, _ := iameval.Allows(old, keyOwnerInOU.request("kms:Decrypt", false)); !ok {
		t.Fatalf("the old statements should let the key's own account in:\n%s", old)
	}
	out, changed, err := Edit(old, nil, nil, testKey)
	if err != nil || !changed {
		t.Fatalf("got changed=%v err=%v, want the statements rewritten", changed, err)
	}
	checkScoped(t, "", out)
	if ok, _ := iameval.Allows(out, keyOwnerInOU.request("kms:Decrypt", false)); ok {
		t.Errorf("the key's own account may use the key after the rewrite:\n%s", out)
	}
}

// TestOrganizationNeedsKeyAccount: without the key's account an
// organization statement could not exclude it, so Edit refuses.
func TestOrganizationNeedsKeyAccount(t *testing.T) {
	if _, _, err := Edit("", []string{testOrgARN}, nil, Key{}); !errors.Is(err, ErrNoKeyAccount) {
		t.Errorf("got %v, want ErrNoKeyAccount", err)
	}
	if _, _, err := Edit("", []string{"111122223333"}, nil, Key{}); err != nil {
		t.Errorf("accounts need no key account: %v", err)
	}
}
