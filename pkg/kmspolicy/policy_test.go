package kmspolicy

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// goldenInput is the shape of testdata/NAME.input.
type goldenInput struct {
	Policy    string   `json:"policy"`
	Add       []string `json:"add"`
	Remove    []string `json:"remove"`
	Partition string   `json:"partition"`
	// Account is the key's account; testAccount when empty.
	Account string `json:"account"`
	// Changed, when present, is the changed result Edit must report.
	Changed *bool `json:"changed"`
}

// goldenErrors names the errors a .golden file may expect, as
// {"error": "ErrPolicyTooLarge"}.
var goldenErrors = map[string]error{
	"ErrPolicyTooLarge":   ErrPolicyTooLarge,
	"ErrInvalidPolicy":    ErrInvalidPolicy,
	"ErrInvalidAccount":   ErrInvalidAccount,
	"ErrInvalidPartition": ErrInvalidPartition,
}

// TestEditGolden runs Edit on every testdata/*.input and compares the result
// with NAME.golden by meaning. Run with -update to rewrite the golden files.
func TestEditGolden(t *testing.T) {
	inputs, err := filepath.Glob(filepath.Join("testdata", "*.input"))
	if err != nil {
		t.Fatal(err)
	}
	if len(inputs) == 0 {
		t.Fatal("no testdata/*.input files")
	}
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".input")
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			var gi goldenInput
			if err := json.Unmarshal(raw, &gi); err != nil {
				t.Fatalf("%s: %v", in, err)
			}
			out, changed, err := Edit(gi.Policy, gi.Add, gi.Remove, gi.key())

			var got []byte
			if err != nil {
				errName := ""
				for n, e := range goldenErrors {
					if errors.Is(err, e) {
						errName = n
					}
				}
				if errName == "" {
					t.Fatalf("Edit: unexpected error %v", err)
				}
				got, _ = json.Marshal(map[string]string{"error": errName})
			} else {
				got = []byte(out)
				if len(got) > MaxPolicyBytes {
					t.Errorf("got %d bytes, want at most %d", len(got), MaxPolicyBytes)
				}
				if gi.Changed != nil && changed != *gi.Changed {
					t.Errorf("got changed=%v, want %v", changed, *gi.Changed)
				}
				if !changed && strings.TrimSpace(gi.Policy) != "" && out != gi.Policy {
					t.Errorf("unchanged policy was rewritten")
				}
				checkOthersKept(t, gi.Policy, out)
				checkScoped(t, gi.Policy, out)
				checkAccounts(t, gi.Policy, gi.Add, gi.Remove, out)
				checkIdempotent(t, out, gi.Add, gi.Remove, gi.key())
			}

			golden := filepath.Join("testdata", name+".golden")
			if *update {
				// Edit's own output: indented when it fits, compact otherwise.
				if err := os.WriteFile(golden, append(got, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !sameMeaning(t, got, want) {
				t.Errorf("%s: got\n%s\nwant\n%s", name, got, want)
			}
		})
	}
}

// meaning decodes JSON for comparison by meaning.
func meaning(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	err := dec.Decode(&v)
	return v, err
}

func sameMeaning(t *testing.T, a, b []byte) bool {
	t.Helper()
	va, err := meaning(a)
	if err != nil {
		t.Fatalf("got is not JSON: %v", err)
	}
	vb, err := meaning(b)
	if err != nil {
		t.Fatalf("want is not JSON: %v", err)
	}
	return reflect.DeepEqual(va, vb)
}

// others returns, by meaning, the statements of policy that are not ours, in
// order; ok is false when policy does not parse.
func others(policy string) (stmts []any, ok bool) {
	doc, err := parse(policy)
	if err != nil {
		return nil, false
	}
	ours := map[int]bool{}
	for _, o := range doc.ours {
		ours[o.index] = true
	}
	for i, s := range doc.stmts {
		if ours[i] {
			continue
		}
		v, err := meaning(s)
		if err != nil {
			return nil, false
		}
		stmts = append(stmts, v)
	}
	return stmts, true
}

// checkOthersKept fails unless every statement of in that is not ours is in
// out, unchanged and in the same order, and out has no others.
func checkOthersKept(t *testing.T, in, out string) {
	t.Helper()
	before, ok := others(in)
	if !ok {
		t.Fatalf("input does not parse")
	}
	after, ok := others(out)
	if !ok {
		t.Fatalf("output does not parse:\n%s", out)
	}
	if !reflect.DeepEqual(before, after) {
		t.Errorf("other statements changed:\ngot  %v\nwant %v", after, before)
	}
	// Top-level members other than Statement survive too.
	if strings.TrimSpace(in) == "" {
		return
	}
	var mi, mo map[string]json.RawMessage
	if json.Unmarshal([]byte(in), &mi) != nil || json.Unmarshal([]byte(out), &mo) != nil {
		t.Fatalf("policy is not an object")
	}
	for k, v := range mi {
		if k == statementKey {
			continue
		}
		a, _ := meaning(v)
		b, _ := meaning(mo[k])
		if !reflect.DeepEqual(a, b) {
			t.Errorf("member %q: got %s, want %s", k, mo[k], v)
		}
	}
}

// checkAccounts fails unless Grantees(out) == (Grantees(in) ∪ add) \ remove,
// add and remove reduced to grantee keys.
func checkAccounts(t *testing.T, in string, add, remove []string, out string) {
	t.Helper()
	before, err := Grantees(in)
	if err != nil {
		t.Fatalf("Grantees(in): %v", err)
	}
	want := map[string]bool{}
	for _, g := range before {
		want[g] = true
	}
	for _, g := range add {
		k, _ := GranteeKey(g)
		want[k] = true
	}
	for _, g := range remove {
		k, _ := GranteeKey(g)
		delete(want, k)
	}
	got, err := Grantees(out)
	if err != nil {
		t.Fatalf("Grantees(out): %v", err)
	}
	if w := sortedKeys(want); !slices.Equal(got, w) {
		t.Errorf("Grantees(out): got %v, want %v", got, w)
	}
}

// checkIdempotent fails unless editing the result again changes nothing.
func checkIdempotent(t *testing.T, out string, add, remove []string, key Key) {
	t.Helper()
	again, changed, err := Edit(out, add, remove, key)
	if err != nil {
		t.Fatalf("second Edit: %v", err)
	}
	if changed || again != out {
		t.Errorf("second Edit: got changed=%v, want an unchanged policy", changed)
	}
}

func TestGranteesOfAccounts(t *testing.T) {
	tests := []struct {
		name    string
		policy  string
		want    []string
		wantErr error
	}{
		{name: "empty", policy: "", want: []string{}},
		{name: "whitespace", policy: " \n", want: []string{}},
		{name: "no statements", policy: `{"Version":"2012-10-17"}`, want: []string{}},
		{name: "null statement", policy: `{"Statement":null}`, want: []string{}},
		{
			name:   "others only",
			policy: `{"Statement":[{"Sid":"x","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}]}`,
			want:   []string{},
		},
		{
			name:   "string ARN",
			policy: `{"Statement":[{"Sid":"amishare-ebs-use","Principal":{"AWS":"arn:aws:iam::444455556666:root"}}]}`,
			want:   []string{"444455556666"},
		},
		{
			name:   "bare id and list, union of both statements, sorted",
			policy: `{"Statement":[{"Sid":"amishare-ebs-use","Principal":{"AWS":["444455556666","arn:aws:iam::111122223333:root"]}},{"Sid":"amishare-ebs-grant","Principal":{"AWS":"777788889999"}}]}`,
			want:   []string{"111122223333", "444455556666", "777788889999"},
		},
		{
			name:   "other partitions",
			policy: `{"Statement":[{"Sid":"amishare-ebs-use","Principal":{"AWS":["arn:aws-us-gov:iam::111122223333:root","arn:aws-cn:iam::444455556666:root"]}}]}`,
			want:   []string{"111122223333", "444455556666"},
		},
		{
			name:   "single statement object",
			policy: `{"Statement":{"Sid":"amishare-ebs-grant","Principal":{"AWS":"111122223333"}}}`,
			want:   []string{"111122223333"},
		},
		{
			name:   "sid is case sensitive",
			policy: `{"Statement":[{"Sid":"AMISHARE-EBS-USE","Principal":"*"},{"sid":"amishare-ebs-use","Principal":"*"}]}`,
			want:   []string{},
		},
		{name: "not JSON", policy: `{"Statement":[`, wantErr: ErrInvalidPolicy},
		{name: "trailing data", policy: `{} {}`, wantErr: ErrInvalidPolicy},
		{name: "not an object", policy: `[]`, wantErr: ErrInvalidPolicy},
		{name: "statement is a string", policy: `{"Statement":"x"}`, wantErr: ErrInvalidPolicy},
		{name: "duplicate member", policy: `{"Statement":[],"Statement":[]}`, wantErr: ErrInvalidPolicy},
		{
			name:    "wildcard principal in ours",
			policy:  `{"Statement":[{"Sid":"amishare-ebs-use","Principal":"*"}]}`,
			wantErr: ErrInvalidPolicy,
		},
		{
			name:    "role principal in ours",
			policy:  `{"Statement":[{"Sid":"amishare-ebs-use","Principal":{"AWS":"arn:aws:iam::111122223333:role/x"}}]}`,
			wantErr: ErrInvalidPolicy,
		},
		{
			name:    "service principal in ours",
			policy:  `{"Statement":[{"Sid":"amishare-ebs-use","Principal":{"Service":"ec2.amazonaws.com"}}]}`,
			wantErr: ErrInvalidPolicy,
		},
		{
			name:    "ours without principal",
			policy:  `{"Statement":[{"Sid":"amishare-ebs-grant"}]}`,
			wantErr: ErrInvalidPolicy,
		},
		{
			name:    "short account id",
			policy:  `{"Statement":[{"Sid":"amishare-ebs-grant","Principal":{"AWS":"11112222333"}}]}`,
			wantErr: ErrInvalidPolicy,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Grantees(tt.policy)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("got error %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestEdit(t *testing.T) {
	canonical := func(accounts ...string) string {
		return `{"Version":"2012-10-17","Statement":` + Statement(accounts, testKey) + `}`
	}
	tests := []struct {
		name         string
		policy       string
		add, remove  []string
		partition    string
		wantAccounts []string
		wantChanged  bool
		wantErr      error
	}{
		{
			name:         "add to empty",
			add:          []string{"111122223333"},
			wantAccounts: []string{"111122223333"},
			wantChanged:  true,
		},
		{
			name:         "duplicates in add",
			add:          []string{"111122223333", "111122223333"},
			wantAccounts: []string{"111122223333"},
			wantChanged:  true,
		},
		{
			name:         "nothing to do on empty",
			remove:       []string{"111122223333"},
			wantAccounts: []string{},
		},
		{
			name:         "already canonical",
			policy:       canonical("111122223333", "444455556666"),
			add:          []string{"444455556666"},
			wantAccounts: []string{"111122223333", "444455556666"},
		},
		{
			name:         "remove wins over add",
			policy:       canonical("111122223333"),
			add:          []string{"444455556666"},
			remove:       []string{"444455556666"},
			wantAccounts: []string{"111122223333"},
		},
		{
			name: "outdated actions are rewritten",
			policy: `{"Statement":[
				{"Sid":"amishare-ebs-use","Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"kms:Decrypt","Resource":"*"},
				{"Sid":"amishare-ebs-grant","Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"kms:CreateGrant","Resource":"*","Condition":{"Bool":{"kms:GrantIsForAWSResource":"true"}}}]}`,
			wantAccounts: []string{"111122223333"},
			wantChanged:  true,
		},
		{
			name: "extra field in ours is rewritten",
			policy: `{"Statement":[
				{"Sid":"amishare-ebs-use","Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":["kms:Decrypt","kms:DescribeKey","kms:ReEncrypt*","kms:GenerateDataKey","kms:GenerateDataKeyWithoutPlaintext"],"Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"true"}}},
				{"Sid":"amishare-ebs-grant","Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"kms:CreateGrant","Resource":"*","Condition":{"Bool":{"kms:GrantIsForAWSResource":"true"}}}]}`,
			wantAccounts: []string{"111122223333"},
			wantChanged:  true,
		},
		{
			name: "same accounts spelt differently is no change",
			policy: `{"Statement":[
				{"Sid":"amishare-ebs-grant","Effect":"Allow","Principal":{"AWS":["444455556666","111122223333","111122223333"]},"Action":"kms:CreateGrant","Resource":"*","Condition":{"Bool":{"kms:GrantIsForAWSResource":"true"}}},
				{"Sid":"amishare-ebs-use","Effect":"Allow","Principal":{"AWS":["arn:aws:iam::444455556666:root","111122223333"]},"Action":["kms:Decrypt","kms:DescribeKey","kms:ReEncrypt*","kms:GenerateDataKey","kms:GenerateDataKeyWithoutPlaintext"],"Resource":"*"}]}`,
			wantAccounts: []string{"111122223333", "444455556666"},
		},
		{
			name:         "ARN of another partition is rewritten",
			policy:       canonical("111122223333"),
			partition:    "aws-cn",
			wantAccounts: []string{"111122223333"},
			wantChanged:  true,
		},
		{
			name:         "empty ours are dropped",
			policy:       `{"Statement":[{"Sid":"amishare-ebs-use","Principal":{"AWS":[]}}]}`,
			wantAccounts: []string{},
			wantChanged:  true,
		},
		{name: "bad account to add", add: []string{"1111-2222-3333"}, wantErr: ErrInvalidAccount},
		{name: "bad account to remove", remove: []string{"arn:aws:iam::111122223333:root"}, wantErr: ErrInvalidAccount},
		{name: "bad partition", partition: "azure", wantErr: ErrInvalidPartition},
		{name: "bad policy", policy: `nope`, wantErr: ErrInvalidPolicy},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, changed, err := Edit(tt.policy, tt.add, tt.remove, Key{Partition: tt.partition, Account: testAccount})
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("got error %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			if changed != tt.wantChanged {
				t.Errorf("got changed=%v, want %v", changed, tt.wantChanged)
			}
			got, err := Grantees(out)
			if err != nil {
				t.Fatalf("Grantees(out): %v\n%s", err, out)
			}
			if !slices.Equal(got, tt.wantAccounts) {
				t.Errorf("got accounts %v, want %v", got, tt.wantAccounts)
			}
			if !json.Valid([]byte(out)) {
				t.Errorf("output is not JSON: %q", out)
			}
			checkOthersKept(t, tt.policy, out)
			checkScoped(t, tt.policy, out)
			checkIdempotent(t, out, tt.add, tt.remove, Key{Partition: tt.partition, Account: testAccount})
		})
	}
}

func TestEditOurStatements(t *testing.T) {
	out, _, err := Edit("", []string{"444455556666", "111122223333"}, nil, Key{Partition: "aws-us-gov", Account: testAccount})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"Version":"2012-10-17","Statement":[
		{"Sid":"amishare-ebs-use","Effect":"Allow",
		 "Principal":{"AWS":["arn:aws-us-gov:iam::111122223333:root","arn:aws-us-gov:iam::444455556666:root"]},
		 "Action":["kms:Decrypt","kms:DescribeKey","kms:ReEncrypt*","kms:GenerateDataKey","kms:GenerateDataKeyWithoutPlaintext"],
		 "Resource":"*"},
		{"Sid":"amishare-ebs-grant","Effect":"Allow",
		 "Principal":{"AWS":["arn:aws-us-gov:iam::111122223333:root","arn:aws-us-gov:iam::444455556666:root"]},
		 "Action":"kms:CreateGrant","Resource":"*",
		 "Condition":{"Bool":{"kms:GrantIsForAWSResource":"true"}}}]}`
	if !sameMeaning(t, []byte(out), []byte(want)) {
		t.Errorf("got\n%s\nwant\n%s", out, want)
	}
}

func TestStatement(t *testing.T) {
	tests := []struct {
		name      string
		accounts  []string
		partition string
		want      string
	}{
		{name: "none", want: `[]`},
		{name: "only invalid", accounts: []string{"x"}, want: `[]`},
		{
			name:     "sorted, deduplicated, invalid left out, default partition",
			accounts: []string{"444455556666", "bogus", "111122223333", "444455556666"},
			want: `[{"Sid":"amishare-ebs-use","Effect":"Allow","Principal":{"AWS":["arn:aws:iam::111122223333:root","arn:aws:iam::444455556666:root"]},"Action":["kms:Decrypt","kms:DescribeKey","kms:ReEncrypt*","kms:GenerateDataKey","kms:GenerateDataKeyWithoutPlaintext"],"Resource":"*"},
				{"Sid":"amishare-ebs-grant","Effect":"Allow","Principal":{"AWS":["arn:aws:iam::111122223333:root","arn:aws:iam::444455556666:root"]},"Action":"kms:CreateGrant","Resource":"*","Condition":{"Bool":{"kms:GrantIsForAWSResource":"true"}}}]`,
		},
		{
			name:      "china",
			accounts:  []string{"111122223333"},
			partition: "aws-cn",
			want: `[{"Sid":"amishare-ebs-use","Effect":"Allow","Principal":{"AWS":["arn:aws-cn:iam::111122223333:root"]},"Action":["kms:Decrypt","kms:DescribeKey","kms:ReEncrypt*","kms:GenerateDataKey","kms:GenerateDataKeyWithoutPlaintext"],"Resource":"*"},
				{"Sid":"amishare-ebs-grant","Effect":"Allow","Principal":{"AWS":["arn:aws-cn:iam::111122223333:root"]},"Action":"kms:CreateGrant","Resource":"*","Condition":{"Bool":{"kms:GrantIsForAWSResource":"true"}}}]`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Statement(tt.accounts, Key{Partition: tt.partition, Account: testAccount})
			if !sameMeaning(t, []byte(got), []byte(tt.want)) {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

// FuzzEdit checks, for any policy and grantee lists (accounts,
// organizations, OUs): Edit never panics; when it succeeds every statement
// that is not ours survives unchanged and in order, Grantees(out) ==
// (Grantees(in) ∪ add) \ remove, no statement it wrote lets a wildcard
// principal use the key without an aws:PrincipalOrgID condition, the result
// fits in MaxPolicyBytes, and editing it again changes nothing. add and
// remove are comma-separated.
func FuzzEdit(f *testing.F) {
	inputs, _ := filepath.Glob(filepath.Join("testdata", "*.input"))
	for _, in := range inputs {
		raw, err := os.ReadFile(in)
		if err != nil {
			f.Fatal(err)
		}
		var gi goldenInput
		if err := json.Unmarshal(raw, &gi); err != nil {
			f.Fatal(err)
		}
		if len(gi.Policy) > 4096 {
			// The near-limit cases: the fuzzer would spend its time
			// minimizing them. The size cap has its own golden cases.
			continue
		}
		f.Add(gi.Policy, strings.Join(gi.Add, ","), strings.Join(gi.Remove, ","))
	}
	orgPolicy, _, err := Edit(defaultKeyPolicy, []string{testOUARN, "111122223333"}, nil, testKey)
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range [][3]string{
		{"", testOrgARN, ""},
		{defaultKeyPolicy, testOUARN + ",111122223333," + testOrgID, ""},
		{orgPolicy, testOrgARN, testOUKey},
		{orgPolicy, "", testOUARN + ",111122223333"},
		{orgPolicy, "ou-ab12-11111111", ""},
		{`{"Statement":[{"Sid":"amishare-ebs-use-o-a1b2c3d4e5","Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"}]}`, "", ""},
		{`{"Statement":[{"Sid":"amishare-ebs-grant-o-a1b2c3d4e5-ou-ab12-11111111","Principal":{"AWS":"*"}}]}`, testOrgID, ""},
		{`{"Statement":[{"Sid":"amishare-ebs-use-o-a1b2c3d4e5","Principal":"*"}]}`, "*", ""},
	} {
		f.Add(seed[0], seed[1], seed[2])
	}
	f.Fuzz(func(t *testing.T, policy, addList, removeList string) {
		split := func(s string) []string {
			if s == "" {
				return nil
			}
			return strings.Split(s, ",")
		}
		add, remove := split(addList), split(removeList)

		before, accErr := Grantees(policy)
		out, changed, err := Edit(policy, add, remove, testKey)
		if err != nil {
			if errors.Is(err, ErrPolicyTooLarge) && accErr == nil {
				return
			}
			if accErr != nil && !errors.Is(err, ErrInvalidPolicy) && !errors.Is(err, ErrInvalidAccount) {
				t.Fatalf("Grantees failed (%v) but Edit failed differently: %v", accErr, err)
			}
			if accErr == nil && !errors.Is(err, ErrInvalidAccount) {
				t.Fatalf("Edit failed on a policy Grantees reads: %v", err)
			}
			return
		}
		if accErr != nil {
			t.Fatalf("Edit succeeded on a policy Grantees rejects (%v)", accErr)
		}
		if len(out) > MaxPolicyBytes {
			t.Fatalf("got %d bytes, want at most %d", len(out), MaxPolicyBytes)
		}
		if !changed && strings.TrimSpace(policy) != "" && out != policy {
			t.Fatalf("unchanged policy was rewritten")
		}
		_ = before
		checkOthersKept(t, policy, out)
		checkScoped(t, policy, out)
		checkAccounts(t, policy, add, remove, out)
		checkIdempotent(t, out, add, remove, testKey)
	})
}

// testAccount owns the test keys; organization statements exclude it.
const testAccount = "123456789012"

// testKey is a key of testAccount in the aws partition.
var testKey = Key{Account: testAccount}

func (gi goldenInput) key() Key {
	if gi.Account == "" {
		gi.Account = testAccount
	}
	return Key{Partition: gi.Partition, Account: gi.Account}
}
