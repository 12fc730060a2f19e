package kmspolicy

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"
)

func TestMain(m *testing.M) {
	policyBackoff = time.Millisecond
	os.Exit(m.Run())
}

const (
	keyARN    = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	govKeyARN = "arn:aws-us-gov:kms:us-gov-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
)

// fakeKMS implements KMSAPI with function fields; a call to a method whose
// field is nil panics through the nil embedded interface, which fails the
// test loudly.
type fakeKMS struct {
	KMSAPI
	describeKey  func(*kms.DescribeKeyInput) (*kms.DescribeKeyOutput, error)
	getKeyPolicy func(*kms.GetKeyPolicyInput) (*kms.GetKeyPolicyOutput, error)
	putKeyPolicy func(*kms.PutKeyPolicyInput) (*kms.PutKeyPolicyOutput, error)
	createGrant  func(*kms.CreateGrantInput) (*kms.CreateGrantOutput, error)
	listGrants   func(*kms.ListGrantsInput) (*kms.ListGrantsOutput, error)
	revokeGrant  func(*kms.RevokeGrantInput) (*kms.RevokeGrantOutput, error)
}

func (f *fakeKMS) DescribeKey(_ context.Context, in *kms.DescribeKeyInput, _ ...func(*kms.Options)) (*kms.DescribeKeyOutput, error) {
	return f.describeKey(in)
}

func (f *fakeKMS) GetKeyPolicy(_ context.Context, in *kms.GetKeyPolicyInput, _ ...func(*kms.Options)) (*kms.GetKeyPolicyOutput, error) {
	return f.getKeyPolicy(in)
}

func (f *fakeKMS) PutKeyPolicy(_ context.Context, in *kms.PutKeyPolicyInput, _ ...func(*kms.Options)) (*kms.PutKeyPolicyOutput, error) {
	return f.putKeyPolicy(in)
}

func (f *fakeKMS) CreateGrant(_ context.Context, in *kms.CreateGrantInput, _ ...func(*kms.Options)) (*kms.CreateGrantOutput, error) {
	return f.createGrant(in)
}

func (f *fakeKMS) ListGrants(_ context.Context, in *kms.ListGrantsInput, _ ...func(*kms.Options)) (*kms.ListGrantsOutput, error) {
	return f.listGrants(in)
}

func (f *fakeKMS) RevokeGrant(_ context.Context, in *kms.RevokeGrantInput, _ ...func(*kms.Options)) (*kms.RevokeGrantOutput, error) {
	return f.revokeGrant(in)
}

func TestDescribe(t *testing.T) {
	tests := []struct {
		name    string
		out     *kms.DescribeKeyOutput
		err     error
		want    KeyInfo
		wantErr string // error code expected through errors.As, or "any"
	}{
		{
			name: "customer managed",
			out: &kms.DescribeKeyOutput{KeyMetadata: &types.KeyMetadata{
				Arn:          aws.String(keyARN),
				KeyId:        aws.String("1234abcd-12ab-34cd-56ef-1234567890ab"),
				AWSAccountId: aws.String("123456789012"),
				KeyManager:   types.KeyManagerTypeCustomer,
				KeyState:     types.KeyStateEnabled,
			}},
			want: KeyInfo{
				ARN:       keyARN,
				ID:        "1234abcd-12ab-34cd-56ef-1234567890ab",
				Owner:     "123456789012",
				Partition: "aws",
				Manager:   "CUSTOMER",
				State:     "Enabled",
			},
		},
		{
			name: "AWS managed in GovCloud, owner from the ARN",
			out: &kms.DescribeKeyOutput{KeyMetadata: &types.KeyMetadata{
				Arn:        aws.String(govKeyARN),
				KeyId:      aws.String("1234abcd-12ab-34cd-56ef-1234567890ab"),
				KeyManager: types.KeyManagerTypeAws,
				KeyState:   types.KeyStatePendingDeletion,
			}},
			want: KeyInfo{
				ARN:       govKeyARN,
				ID:        "1234abcd-12ab-34cd-56ef-1234567890ab",
				Owner:     "123456789012",
				Partition: "aws-us-gov",
				Manager:   "AWS",
				State:     "PendingDeletion",
			},
		},
		{
			name:    "not found",
			err:     &smithy.GenericAPIError{Code: "NotFoundException", Message: "Key does not exist"},
			wantErr: "NotFoundException",
		},
		{
			name:    "no metadata",
			out:     &kms.DescribeKeyOutput{},
			wantErr: "any",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := &fakeKMS{describeKey: func(in *kms.DescribeKeyInput) (*kms.DescribeKeyOutput, error) {
				if got := aws.ToString(in.KeyId); got != "alias/images" {
					t.Errorf("got KeyId %q, want alias/images", got)
				}
				return tt.out, tt.err
			}}
			got, err := Describe(context.Background(), api, "alias/images")
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("got no error, want %s", tt.wantErr)
				}
				var ae smithy.APIError
				if tt.wantErr != "any" && (!errors.As(err, &ae) || ae.ErrorCode() != tt.wantErr) {
					t.Errorf("got error %v, want code %s through errors.As", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v", err)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// policyStore is a key policy held by a fake KMS. onPut, when set, runs after
// each successful put, with its 1-based number: a "concurrent writer".
type policyStore struct {
	t        *testing.T
	keyARN   string
	mu       sync.Mutex
	policy   string
	puts     int
	gets     int
	onPut    func(n int, s *policyStore)
	getErr   error
	putErr   error
	lastPuts []string
}

func (s *policyStore) api() *fakeKMS {
	return &fakeKMS{
		getKeyPolicy: func(in *kms.GetKeyPolicyInput) (*kms.GetKeyPolicyOutput, error) {
			s.check(in.KeyId, in.PolicyName)
			s.mu.Lock()
			defer s.mu.Unlock()
			s.gets++
			if s.getErr != nil {
				return nil, s.getErr
			}
			return &kms.GetKeyPolicyOutput{Policy: aws.String(s.policy), PolicyName: aws.String("default")}, nil
		},
		putKeyPolicy: func(in *kms.PutKeyPolicyInput) (*kms.PutKeyPolicyOutput, error) {
			s.check(in.KeyId, in.PolicyName)
			s.mu.Lock()
			if s.putErr != nil {
				s.mu.Unlock()
				return nil, s.putErr
			}
			if n := len(aws.ToString(in.Policy)); n > MaxPolicyBytes {
				s.t.Errorf("put %d bytes, more than KMS accepts", n)
			}
			s.policy = aws.ToString(in.Policy)
			s.lastPuts = append(s.lastPuts, s.policy)
			s.puts++
			n, hook := s.puts, s.onPut
			s.mu.Unlock()
			if hook != nil {
				hook(n, s)
			}
			return &kms.PutKeyPolicyOutput{}, nil
		},
	}
}

func (s *policyStore) check(keyID, name *string) {
	s.t.Helper()
	if got := aws.ToString(keyID); got != s.keyARN {
		s.t.Errorf("got KeyId %q, want %q", got, s.keyARN)
	}
	if got := aws.ToString(name); got != "default" {
		s.t.Errorf("got PolicyName %q, want default", got)
	}
}

func (s *policyStore) set(policy string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.policy = policy
}

// mustEdit is Edit for building fixtures.
func mustEdit(t *testing.T, policy string, add, remove []string) string {
	t.Helper()
	out, _, err := Edit(policy, add, remove, "")
	if err != nil {
		t.Fatal(err)
	}
	return out
}

const defaultKeyPolicy = `{
  "Id": "key-default-1",
  "Version": "2012-10-17",
  "Statement": [{
    "Sid": "Enable IAM User Permissions",
    "Effect": "Allow",
    "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
    "Action": "kms:*",
    "Resource": "*"
  }]
}`

func TestEnsurePolicy(t *testing.T) {
	ctx := context.Background()
	a, b, c := "111122223333", "444455556666", "777788889999"

	t.Run("adds to the default policy with one write", func(t *testing.T) {
		s := &policyStore{t: t, keyARN: keyARN, policy: defaultKeyPolicy}
		wrote, err := EnsurePolicy(ctx, s.api(), keyARN, s.policy, []string{b, a}, nil)
		if err != nil || !wrote {
			t.Fatalf("got wrote=%v err=%v, want true, nil", wrote, err)
		}
		// The caller's policy is the base: one write, one read back.
		if s.puts != 1 || s.gets != 1 {
			t.Errorf("got %d puts and %d gets, want 1 and 1", s.puts, s.gets)
		}
		assertAccounts(t, s.policy, a, b)
		checkOthersKept(t, defaultKeyPolicy, s.policy)
	})

	t.Run("organization and OU statements next to the accounts", func(t *testing.T) {
		s := &policyStore{t: t, keyARN: keyARN, policy: mustEdit(t, defaultKeyPolicy, []string{a}, nil)}
		wrote, err := EnsurePolicy(ctx, s.api(), keyARN, s.policy, []string{testOrgARN, testOUARN}, nil)
		if err != nil || !wrote {
			t.Fatalf("got wrote=%v err=%v, want true, nil", wrote, err)
		}
		got, err := Grantees(s.policy)
		if want := []string{a, testOrgID, testOUKey}; err != nil || !slices.Equal(got, want) {
			t.Errorf("got grantees %v (%v), want %v", got, err, want)
		}
		// Revoking the OU by its key leaves the organization and the account.
		if _, err := EnsurePolicy(ctx, s.api(), keyARN, s.policy, nil, []string{testOUKey}); err != nil {
			t.Fatal(err)
		}
		got, _ = Grantees(s.policy)
		if want := []string{a, testOrgID}; !slices.Equal(got, want) {
			t.Errorf("after revoking the OU: got grantees %v, want %v", got, want)
		}
		checkOthersKept(t, defaultKeyPolicy, s.policy)
	})

	t.Run("stale policy from the caller: the read-back sees the loss and re-applies", func(t *testing.T) {
		s := &policyStore{t: t, keyARN: keyARN, policy: defaultKeyPolicy}
		stale := s.policy
		// Between the caller's read and our write another writer grants c;
		// our first write (from the stale policy) drops c, then that writer
		// re-applies its change after our write, losing a.
		s.set(mustEdit(t, defaultKeyPolicy, []string{c}, nil))
		s.onPut = func(n int, s *policyStore) {
			if n == 1 {
				s.set(mustEdit(t, s.policy, []string{c}, []string{a}))
			}
		}
		if _, err := EnsurePolicy(ctx, s.api(), keyARN, stale, []string{a}, nil); err != nil {
			t.Fatal(err)
		}
		assertAccounts(t, s.policy, a, c)
	})

	t.Run("no write when already correct", func(t *testing.T) {
		s := &policyStore{t: t, keyARN: keyARN, policy: mustEdit(t, defaultKeyPolicy, []string{a, b}, nil)}
		wrote, err := EnsurePolicy(ctx, s.api(), keyARN, s.policy, []string{a}, []string{c})
		if err != nil || wrote {
			t.Fatalf("got wrote=%v err=%v, want false, nil", wrote, err)
		}
		if s.puts != 0 || s.gets != 0 {
			t.Errorf("got %d puts and %d gets, want none: the caller's policy is enough", s.puts, s.gets)
		}
	})

	t.Run("removes the last account", func(t *testing.T) {
		s := &policyStore{t: t, keyARN: keyARN, policy: mustEdit(t, defaultKeyPolicy, []string{a}, nil)}
		wrote, err := EnsurePolicy(ctx, s.api(), keyARN, s.policy, nil, []string{a})
		if err != nil || !wrote {
			t.Fatalf("got wrote=%v err=%v, want true, nil", wrote, err)
		}
		if !sameMeaning(t, []byte(s.policy), []byte(defaultKeyPolicy)) {
			t.Errorf("got\n%s\nwant the default policy back", s.policy)
		}
	})

	t.Run("partition from the key ARN", func(t *testing.T) {
		s := &policyStore{t: t, keyARN: govKeyARN, policy: ""}
		if _, err := EnsurePolicy(ctx, s.api(), govKeyARN, s.policy, []string{a}, nil); err != nil {
			t.Fatal(err)
		}
		want := mustEditPartition(t, "", []string{a}, "aws-us-gov")
		if !sameMeaning(t, []byte(s.policy), []byte(want)) {
			t.Errorf("got\n%s\nwant\n%s", s.policy, want)
		}
	})

	t.Run("overwritten once by a concurrent writer: re-applied, both kept", func(t *testing.T) {
		s := &policyStore{t: t, keyARN: keyARN, policy: mustEdit(t, defaultKeyPolicy, []string{c}, nil)}
		// Another invocation read the policy before our write (granting c)
		// and writes c+b after it, losing our a.
		theirs := mustEdit(t, s.policy, []string{b}, nil)
		s.onPut = func(n int, s *policyStore) {
			if n == 1 {
				s.set(theirs)
			}
		}
		wrote, err := EnsurePolicy(ctx, s.api(), keyARN, s.policy, []string{a}, nil)
		if err != nil || !wrote {
			t.Fatalf("got wrote=%v err=%v, want true, nil", wrote, err)
		}
		if s.puts != 2 {
			t.Errorf("got %d puts, want 2", s.puts)
		}
		assertAccounts(t, s.policy, a, b, c)
	})

	t.Run("concurrent remove is not undone", func(t *testing.T) {
		s := &policyStore{t: t, keyARN: keyARN, policy: mustEdit(t, defaultKeyPolicy, []string{b, c}, nil)}
		theirs := mustEdit(t, s.policy, nil, []string{c})
		s.onPut = func(n int, s *policyStore) {
			if n == 1 {
				s.set(theirs)
			}
		}
		if _, err := EnsurePolicy(ctx, s.api(), keyARN, s.policy, nil, []string{b}); err != nil {
			t.Fatal(err)
		}
		assertAccounts(t, s.policy)
	})

	t.Run("always overwritten: bounded, then an error", func(t *testing.T) {
		s := &policyStore{t: t, keyARN: keyARN, policy: defaultKeyPolicy}
		s.onPut = func(int, *policyStore) { s.set(defaultKeyPolicy) }
		wrote, err := EnsurePolicy(ctx, s.api(), keyARN, s.policy, []string{a}, nil)
		if !errors.Is(err, ErrPolicyContention) {
			t.Fatalf("got error %v, want ErrPolicyContention", err)
		}
		if !wrote {
			t.Errorf("got wrote=false, want true: it did write")
		}
		if s.puts != policyAttempts {
			t.Errorf("got %d puts, want %d", s.puts, policyAttempts)
		}
	})

	t.Run("cancelled while backing off", func(t *testing.T) {
		ctx, cancel := context.WithCancel(ctx)
		s := &policyStore{t: t, keyARN: keyARN, policy: defaultKeyPolicy}
		s.onPut = func(int, *policyStore) { s.set(defaultKeyPolicy); cancel() }
		_, err := EnsurePolicy(ctx, s.api(), keyARN, s.policy, []string{a}, nil)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("got error %v, want context.Canceled", err)
		}
		if s.puts != 1 {
			t.Errorf("got %d puts, want 1", s.puts)
		}
	})

	t.Run("read-back error is wrapped, the write reported", func(t *testing.T) {
		s := &policyStore{t: t, keyARN: keyARN, policy: defaultKeyPolicy, getErr: &smithy.GenericAPIError{Code: "AccessDeniedException"}}
		wrote, err := EnsurePolicy(ctx, s.api(), keyARN, s.policy, []string{a}, nil)
		var ae smithy.APIError
		if !errors.As(err, &ae) || ae.ErrorCode() != "AccessDeniedException" {
			t.Fatalf("got error %v, want AccessDeniedException through errors.As", err)
		}
		if !wrote || s.puts != 1 {
			t.Errorf("got wrote=%v after %d puts, want the one write reported", wrote, s.puts)
		}
	})

	t.Run("invalid policy from the caller: nothing written", func(t *testing.T) {
		s := &policyStore{t: t, keyARN: keyARN, policy: defaultKeyPolicy}
		_, err := EnsurePolicy(ctx, s.api(), keyARN, `{"Statement":`, []string{a}, nil)
		if !errors.Is(err, ErrInvalidPolicy) || s.puts != 0 {
			t.Errorf("got error %v after %d puts, want ErrInvalidPolicy and none", err, s.puts)
		}
	})

	t.Run("write error is wrapped", func(t *testing.T) {
		s := &policyStore{t: t, keyARN: keyARN, policy: defaultKeyPolicy,
			putErr: &smithy.GenericAPIError{Code: "MalformedPolicyDocumentException"}}
		wrote, err := EnsurePolicy(ctx, s.api(), keyARN, s.policy, []string{a}, nil)
		var ae smithy.APIError
		if !errors.As(err, &ae) || ae.ErrorCode() != "MalformedPolicyDocumentException" {
			t.Fatalf("got error %v, want MalformedPolicyDocumentException through errors.As", err)
		}
		if wrote {
			t.Errorf("got wrote=true, want false")
		}
	})

	t.Run("too large: nothing written", func(t *testing.T) {
		s := &policyStore{t: t, keyARN: keyARN, policy: defaultKeyPolicy}
		many := make([]string, 1200)
		for i := range many {
			many[i] = fmt.Sprintf("%012d", i+1)
		}
		_, err := EnsurePolicy(ctx, s.api(), keyARN, s.policy, many, nil)
		if !errors.Is(err, ErrPolicyTooLarge) {
			t.Fatalf("got error %v, want ErrPolicyTooLarge", err)
		}
		if s.puts != 0 {
			t.Errorf("got %d puts, want 0", s.puts)
		}
	})

	t.Run("invalid account: nothing written", func(t *testing.T) {
		s := &policyStore{t: t, keyARN: keyARN, policy: defaultKeyPolicy}
		_, err := EnsurePolicy(ctx, s.api(), keyARN, s.policy, []string{"12345"}, nil)
		if !errors.Is(err, ErrInvalidAccount) {
			t.Fatalf("got error %v, want ErrInvalidAccount", err)
		}
		if s.puts != 0 {
			t.Errorf("got %d puts, want 0", s.puts)
		}
	})
}

func mustEditPartition(t *testing.T, policy string, add []string, partition string) string {
	t.Helper()
	out, _, err := Edit(policy, add, nil, partition)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func assertAccounts(t *testing.T, policy string, want ...string) {
	t.Helper()
	got, err := Accounts(policy)
	if err != nil {
		t.Fatalf("Accounts: %v", err)
	}
	if want == nil {
		want = []string{}
	}
	if !slices.Equal(got, want) {
		t.Errorf("got accounts %v, want %v", got, want)
	}
}

// grantStore is a fake KMS's grants on one key, listed two per page.
type grantStore struct {
	t       *testing.T
	grants  []types.GrantListEntry
	next    int
	creates []*kms.CreateGrantInput
	revokes []string
	// createErr and revokeErr fail calls for a grant name / grant id.
	createErr map[string]error
	revokeErr map[string]error
}

func (g *grantStore) api() *fakeKMS {
	return &fakeKMS{
		listGrants: func(in *kms.ListGrantsInput) (*kms.ListGrantsOutput, error) {
			if got := aws.ToString(in.KeyId); got != keyARN {
				g.t.Errorf("ListGrants: got KeyId %q, want %q", got, keyARN)
			}
			start := 0
			if in.Marker != nil {
				start, _ = strconv.Atoi(*in.Marker)
			}
			end := min(start+2, len(g.grants))
			out := &kms.ListGrantsOutput{Grants: slices.Clone(g.grants[start:end])}
			if end < len(g.grants) {
				out.NextMarker = aws.String(strconv.Itoa(end))
				out.Truncated = true
			}
			return out, nil
		},
		createGrant: func(in *kms.CreateGrantInput) (*kms.CreateGrantOutput, error) {
			if got := aws.ToString(in.KeyId); got != keyARN {
				g.t.Errorf("CreateGrant: got KeyId %q, want %q", got, keyARN)
			}
			name := aws.ToString(in.Name)
			if err := g.createErr[name]; err != nil {
				return nil, err
			}
			g.creates = append(g.creates, in)
			g.next++
			id := fmt.Sprintf("grant-%d", g.next)
			g.grants = append(g.grants, types.GrantListEntry{GrantId: aws.String(id), Name: in.Name, GranteePrincipal: in.GranteePrincipal, Operations: in.Operations})
			return &kms.CreateGrantOutput{GrantId: aws.String(id)}, nil
		},
		revokeGrant: func(in *kms.RevokeGrantInput) (*kms.RevokeGrantOutput, error) {
			if got := aws.ToString(in.KeyId); got != keyARN {
				g.t.Errorf("RevokeGrant: got KeyId %q, want %q", got, keyARN)
			}
			id := aws.ToString(in.GrantId)
			if err := g.revokeErr[id]; err != nil {
				return nil, err
			}
			g.revokes = append(g.revokes, id)
			g.grants = slices.DeleteFunc(g.grants, func(e types.GrantListEntry) bool { return aws.ToString(e.GrantId) == id })
			return &kms.RevokeGrantOutput{}, nil
		},
	}
}

func grant(id, name string) types.GrantListEntry {
	return types.GrantListEntry{GrantId: aws.String(id), Name: aws.String(name)}
}

func TestEnsureGrants(t *testing.T) {
	ctx := context.Background()
	a, b, c := "111122223333", "444455556666", "777788889999"

	t.Run("creates one grant per account, then is idempotent", func(t *testing.T) {
		g := &grantStore{t: t, grants: []types.GrantListEntry{grant("other-1", "someone-else"), grant("other-2", "")}}
		added, removed, err := EnsureGrants(ctx, g.api(), keyARN, []string{b, a}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(added, []string{a, b}) || removed != nil {
			t.Errorf("got added=%v removed=%v, want [%s %s] and none", added, removed, a, b)
		}
		if len(g.creates) != 2 {
			t.Fatalf("got %d CreateGrant calls, want 2", len(g.creates))
		}
		in := g.creates[0]
		if got, want := aws.ToString(in.GranteePrincipal), "arn:aws:iam::"+a+":root"; got != want {
			t.Errorf("got grantee %q, want %q", got, want)
		}
		if got, want := aws.ToString(in.Name), "amishare-"+a; got != want {
			t.Errorf("got name %q, want %q", got, want)
		}
		wantOps := []types.GrantOperation{"Decrypt", "DescribeKey", "ReEncryptFrom", "ReEncryptTo", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext", "CreateGrant"}
		if !slices.Equal(in.Operations, wantOps) {
			t.Errorf("got operations %v, want %v", in.Operations, wantOps)
		}

		added, removed, err = EnsureGrants(ctx, g.api(), keyARN, []string{a, b}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if added != nil || removed != nil || len(g.creates) != 2 {
			t.Errorf("second call: got added=%v removed=%v and %d creates, want nothing new", added, removed, len(g.creates))
		}
	})

	t.Run("sees grants on later pages", func(t *testing.T) {
		g := &grantStore{t: t, grants: []types.GrantListEntry{
			grant("g1", "x"), grant("g2", "y"), grant("g3", "z"), grant("g4", "amishare-"+a),
		}}
		added, _, err := EnsureGrants(ctx, g.api(), keyARN, []string{a}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if added != nil || len(g.creates) != 0 {
			t.Errorf("got added=%v after %d creates, want none", added, len(g.creates))
		}
	})

	t.Run("revokes every grant named for the account, and only those", func(t *testing.T) {
		g := &grantStore{t: t, grants: []types.GrantListEntry{
			grant("g1", "amishare-"+a), grant("g2", "amishare-"+b), grant("g3", "amishare-"+a), grant("g4", "amishare-"+a+"x"),
		}}
		added, removed, err := EnsureGrants(ctx, g.api(), keyARN, nil, []string{a, c})
		if err != nil {
			t.Fatal(err)
		}
		if added != nil || !slices.Equal(removed, []string{a}) {
			t.Errorf("got added=%v removed=%v, want none and [%s]", added, removed, a)
		}
		if !slices.Equal(g.revokes, []string{"g1", "g3"}) {
			t.Errorf("got revokes %v, want [g1 g3]", g.revokes)
		}
		// Again: nothing left to revoke.
		_, removed, err = EnsureGrants(ctx, g.api(), keyARN, nil, []string{a})
		if err != nil || removed != nil {
			t.Errorf("second call: got removed=%v err=%v, want none", removed, err)
		}
	})

	t.Run("an account in add and remove is removed", func(t *testing.T) {
		g := &grantStore{t: t, grants: []types.GrantListEntry{grant("g1", "amishare-"+a)}}
		added, removed, err := EnsureGrants(ctx, g.api(), keyARN, []string{a}, []string{a})
		if err != nil {
			t.Fatal(err)
		}
		if added != nil || !slices.Equal(removed, []string{a}) {
			t.Errorf("got added=%v removed=%v, want none and [%s]", added, removed, a)
		}
	})

	t.Run("a grant revoked meanwhile is not an error", func(t *testing.T) {
		g := &grantStore{t: t,
			grants:    []types.GrantListEntry{grant("g1", "amishare-"+a)},
			revokeErr: map[string]error{"g1": &smithy.GenericAPIError{Code: "NotFoundException"}},
		}
		_, removed, err := EnsureGrants(ctx, g.api(), keyARN, nil, []string{a})
		if err != nil {
			t.Fatalf("got error %v, want none", err)
		}
		if removed != nil {
			t.Errorf("got removed=%v, want none: someone else revoked it", removed)
		}
	})

	t.Run("one failure does not stop the others", func(t *testing.T) {
		g := &grantStore{t: t,
			grants:    []types.GrantListEntry{grant("g1", "amishare-"+c)},
			createErr: map[string]error{"amishare-" + a: &smithy.GenericAPIError{Code: "LimitExceededException"}},
			revokeErr: map[string]error{"g1": &smithy.GenericAPIError{Code: "KMSInternalException"}},
		}
		added, removed, err := EnsureGrants(ctx, g.api(), keyARN, []string{a, b}, []string{c})
		if !slices.Equal(added, []string{b}) || removed != nil {
			t.Errorf("got added=%v removed=%v, want [%s] and none", added, removed, b)
		}
		var ae smithy.APIError
		if !errors.As(err, &ae) || ae.ErrorCode() != "LimitExceededException" {
			t.Errorf("got error %v, want LimitExceededException through errors.As", err)
		}
		codes := map[string]bool{}
		for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
			if errors.As(e, &ae) {
				codes[ae.ErrorCode()] = true
			}
		}
		if !codes["LimitExceededException"] || !codes["KMSInternalException"] {
			t.Errorf("got error codes %v, want both failures joined", codes)
		}
	})

	t.Run("invalid account: no calls", func(t *testing.T) {
		_, _, err := EnsureGrants(ctx, &fakeKMS{}, keyARN, []string{"bob"}, nil)
		if !errors.Is(err, ErrInvalidAccount) {
			t.Fatalf("got error %v, want ErrInvalidAccount", err)
		}
	})

	t.Run("list error", func(t *testing.T) {
		api := &fakeKMS{listGrants: func(*kms.ListGrantsInput) (*kms.ListGrantsOutput, error) {
			return nil, &smithy.GenericAPIError{Code: "AccessDeniedException"}
		}}
		_, _, err := EnsureGrants(ctx, api, keyARN, []string{a}, nil)
		var ae smithy.APIError
		if !errors.As(err, &ae) || ae.ErrorCode() != "AccessDeniedException" {
			t.Fatalf("got error %v, want AccessDeniedException through errors.As", err)
		}
	})
}

func TestJitter(t *testing.T) {
	for n := 1; n <= 5; n++ {
		base := 100 * time.Millisecond << (n - 1)
		for range 100 {
			if d := jitter(100*time.Millisecond, n); d < base/2 || d >= base {
				t.Fatalf("jitter(100ms, %d) = %v, want in [%v, %v)", n, d, base/2, base)
			}
		}
	}
}
