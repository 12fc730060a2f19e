package policyeval

import "testing"

func TestGlob(t *testing.T) {
	tests := []struct {
		p, v string
		want bool
	}{
		{"o-a/*/ou-x/*", "o-a/r-1/ou-x/", true},
		{"o-a/*/ou-x/*", "o-a/r-1/ou-p/ou-x/ou-c/", true},
		{"o-a/*/ou-x/*", "o-a/r-1/ou-y/", false},
		{"o-a/*/ou-x/*", "o-b/r-1/ou-x/", false},
		{"o-a/*/ou-x/*", "o-a/r-1/ou-xy/", false},
		{"kms:ReEncrypt*", "kms:ReEncryptFrom", true},
		{"a?c", "abc", true},
		{"a?c", "ac", false},
		{"*", "", true},
	}
	for _, tc := range tests {
		if got := glob(tc.p, tc.v, false); got != tc.want {
			t.Errorf("glob(%q, %q) = %v, want %v", tc.p, tc.v, got, tc.want)
		}
	}
}

func TestAllows(t *testing.T) {
	policy := `{"Statement":[
		{"Sid":"acct","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":["kms:Decrypt"],"Resource":"*"},
		{"Sid":"org","Effect":"Allow","Principal":"*","Action":"kms:Describe*","Resource":"*","Condition":{"StringEquals":{"aws:PrincipalOrgID":"o-a1b2c3d4e5"}}},
		{"Sid":"deny","Effect":"Deny","Principal":{"AWS":"*"},"Action":"kms:DescribeKey","Resource":"*","Condition":{"StringEquals":{"aws:PrincipalAccount":"999999999999"}}}]}`
	org := map[string][]string{"aws:PrincipalOrgID": {"o-a1b2c3d4e5"}}
	tests := []struct {
		name string
		r    Request
		want bool
	}{
		{"listed account", Request{Account: "111122223333", Action: "kms:Decrypt"}, true},
		{"listed account, other action", Request{Account: "111122223333", Action: "kms:Encrypt"}, false},
		{"other account", Request{Account: "444455556666", Action: "kms:Decrypt"}, false},
		{"organization member", Request{Account: "444455556666", Action: "kms:DescribeKey", Context: org}, true},
		{"no organization", Request{Account: "444455556666", Action: "kms:DescribeKey"}, false},
		{"explicit deny wins", Request{Account: "999999999999", Action: "kms:DescribeKey",
			Context: map[string][]string{"aws:PrincipalOrgID": {"o-a1b2c3d4e5"}, "aws:principalaccount": {"999999999999"}}}, false},
	}
	for _, tc := range tests {
		got, err := Allows(policy, tc.r)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
	if _, err := Allows(`{"Statement":[{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"1.2.3.4"}}}]}`,
		Request{Account: "1", Action: "x", Context: map[string][]string{"aws:SourceIp": {"1.2.3.4"}}}); err == nil {
		t.Errorf("an unmodelled operator was evaluated; want an error")
	}
}
