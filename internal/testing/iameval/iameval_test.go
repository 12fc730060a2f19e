package iameval

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
		{"arn:aws:ec2:*::image/*", "arn:aws:ec2:us-east-1::image/ami-1", true},
		{"[ab]", "a", false},
		{"[ab]", "[ab]", true},
	}
	for _, tc := range tests {
		if got := glob(tc.p, tc.v); got != tc.want {
			t.Errorf("glob(%q, %q) = %v, want %v", tc.p, tc.v, got, tc.want)
		}
	}
}

func TestAllows(t *testing.T) {
	policy := `{"Statement":[
		{"Sid":"acct","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":["kms:Decrypt"],"Resource":"*"},
		{"Sid":"org","Effect":"Allow","Principal":"*","Action":"kms:Describe*","Resource":"*","Condition":{"StringEquals":{"aws:PrincipalOrgID":"o-a1b2c3d4e5"}}},
		{"Sid":"deny","Effect":"Deny","Principal":{"AWS":"*"},"Action":"kms:DescribeKey","Resource":"*","Condition":{"StringEquals":{"aws:PrincipalAccount":"999999999999"}}}]}`
	org := Caller{OrgID: "o-a1b2c3d4e5", OrgPath: "o-a1b2c3d4e5/r-ab12/"}
	in := func(account string) Caller { c := org; c.Account = account; return c }
	tests := []struct {
		name string
		r    Request
		want bool
	}{
		{"listed account", Caller{Account: "111122223333"}.Request("kms:Decrypt", nil), true},
		{"listed account, other action", Caller{Account: "111122223333"}.Request("kms:Encrypt", nil), false},
		{"other account", Caller{Account: "444455556666"}.Request("kms:Decrypt", nil), false},
		{"organization member", in("444455556666").Request("kms:DescribeKey", nil), true},
		{"no organization", Caller{Account: "444455556666"}.Request("kms:DescribeKey", nil), false},
		{"explicit deny wins", in("999999999999").Request("kms:DescribeKey", nil), false},
		{"bare account id", Request{Action: "kms:Decrypt", Resource: "*", Context: map[string][]string{"aws:principalaccount": {"111122223333"}}}, true},
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
	for _, bad := range []string{
		`{"Statement":[{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"1.2.3.4"}}}]}`,
		`{"Statement":[{"Effect":"Allow","Principal":"*","NotAction":"kms:Decrypt","Resource":"*"}]}`,
		`{"Statement":[{"Effect":"Allow","Principal":"*","Action":"*","Resource":"arn:aws:kms:*"}]}`,
		`{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}`,
		`{"Statement":[{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*","Condition":{"StringEquals":{"aws:SourceIp":["a","b"]}}}]}`,
	} {
		r := Caller{Account: "111122223333"}.Request("kms:Decrypt", map[string][]string{"aws:SourceIp": {"1.2.3.4", "5.6.7.8"}})
		if _, err := Allows(bad, r); err == nil {
			t.Errorf("Allows(%s) evaluated what the evaluator does not model; want an error", bad)
		}
	}
}

// TestCondition covers the operators the role's identity policies use.
func TestCondition(t *testing.T) {
	tests := []struct {
		name      string
		op        string
		want, got []string
		ok        bool
	}{
		{"equals", "StringEquals", []string{"a", "b"}, []string{"b"}, true},
		{"equals, absent", "StringEquals", []string{"a"}, nil, false},
		{"equals, other", "StringEquals", []string{"a"}, []string{"c"}, false},
		{"not equals", "StringNotEquals", []string{"a"}, []string{"c"}, true},
		{"not equals, listed", "StringNotEquals", []string{"a", "c"}, []string{"c"}, false},
		{"if exists, absent", "StringEqualsIfExists", []string{"a"}, nil, true},
		{"if exists, other", "StringEqualsIfExists", []string{"a"}, []string{"c"}, false},
		{"like", "StringLike", []string{"us-east-1/*"}, []string{"us-east-1/ami-1"}, true},
		{"arn equals", "ArnEquals", []string{"arn:aws:sqs:us-east-1:1:q"}, []string{"arn:aws:sqs:us-east-1:1:q"}, true},
		{"ignore case", "StringEqualsIgnoreCase", []string{"ABC"}, []string{"abc"}, true},
		{"bool", "Bool", []string{"true"}, []string{"True"}, true},
		{"bool if exists, absent", "BoolIfExists", []string{"false"}, nil, true},
		{"null true, absent", "Null", []string{"true"}, nil, true},
		{"null true, present", "Null", []string{"true"}, []string{"x"}, false},
		{"null false, present", "Null", []string{"false"}, []string{"x"}, true},
		{"for all values", "ForAllValues:StringEquals", []string{"a", "b"}, []string{"a", "b"}, true},
		{"for all values, one other", "ForAllValues:StringEquals", []string{"a", "b"}, []string{"a", "c"}, false},
		{"for all values, absent", "ForAllValues:StringEquals", []string{"a"}, nil, true},
		{"for any value", "ForAnyValue:StringLike", []string{"o-a/*/ou-x/*"}, []string{"o-a/r/ou-y/", "o-a/r/ou-x/"}, true},
		{"for any value, absent", "ForAnyValue:StringLike", []string{"*"}, nil, false},
		{"not equals, absent", "StringNotEquals", []string{"a"}, nil, true},
		{"arn not like, absent", "ArnNotLike", []string{"arn:aws:iam::*:role/x"}, nil, true},
		{"for any value not equals, absent", "ForAnyValue:StringNotEquals", []string{"a"}, nil, false},
		{"for any value not equals, one other", "ForAnyValue:StringNotEquals", []string{"a", "b"}, []string{"a", "c"}, true},
		{"for any value not equals, all listed", "ForAnyValue:StringNotEquals", []string{"a", "b"}, []string{"b"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ok, err := condition(tc.op, tc.want, tc.got)
			if err != nil || ok != tc.ok {
				t.Errorf("condition(%s, %v, %v): got %v, %v; want %v, nil", tc.op, tc.want, tc.got, ok, err, tc.ok)
			}
		})
	}
	for _, op := range []string{"IpAddress", "NumericLessThan", "ForEachValue:StringEquals"} {
		if _, err := condition(op, []string{"1"}, []string{"1"}); err == nil {
			t.Errorf("condition(%s): got no error, want one (not modelled)", op)
		}
	}
}

func TestNotResource(t *testing.T) {
	stmts := []Statement{
		{Sid: "accounts", Effect: "Allow", Action: []string{"sts:AssumeRole"}, Resource: []string{"arn:*:iam::111122223333:role/*"}},
		{Sid: "only", Effect: "Deny", Action: []string{"sts:AssumeRole"}, NotResource: []string{"arn:aws:iam::*:role/amishare-receiver"}},
	}
	for _, tc := range []struct {
		role string
		want bool
	}{
		{"arn:aws:iam::111122223333:role/amishare-receiver", true},
		{"arn:aws:iam::111122223333:role/admin", false},
		{"arn:aws:iam::444455556666:role/amishare-receiver", false},
	} {
		if got := Evaluate(stmts, Request{Action: "sts:AssumeRole", Resource: tc.role}).Allowed; got != tc.want {
			t.Errorf("AssumeRole %s: allowed %v, want %v", tc.role, got, tc.want)
		}
	}
	s, err := ParseStatement(map[string]any{"Effect": "Deny", "Action": "sts:AssumeRole", "NotResource": "arn:aws:iam::*:role/x"})
	if err != nil || len(s.Unsupported) != 0 || len(s.NotResource) != 1 {
		t.Errorf("ParseStatement with NotResource: %+v, %v", s, err)
	}
}
