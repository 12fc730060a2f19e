package kmspolicy

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
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
	API
	describeKey  func(*kms.DescribeKeyInput) (*kms.DescribeKeyOutput, error)
	getKeyPolicy func(*kms.GetKeyPolicyInput) (*kms.GetKeyPolicyOutput, error)
	putKeyPolicy func(*kms.PutKeyPolicyInput) (*kms.PutKeyPolicyOutput, error)
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
				ARN:     keyARN,
				Owner:   "123456789012",
				Manager: "CUSTOMER",
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
				ARN:     govKeyARN,
				Owner:   "123456789012",
				Manager: "AWS",
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
	getOK    int // with getErr: how many gets succeed before it
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
			if s.getErr != nil && s.gets > s.getOK {
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
	out, _, err := Edit(policy, add, remove, testKey)
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
		wrote, err := EnsurePolicy(ctx, s.api(), keyARN, []string{b, a}, nil)
		if err != nil || !wrote {
			t.Fatalf("got wrote=%v err=%v, want true, nil", wrote, err)
		}
		// One read right before the write, the write, one read back.
		if s.puts != 1 || s.gets != 2 {
			t.Errorf("got %d puts and %d gets, want 1 and 2", s.puts, s.gets)
		}
		assertAccounts(t, s.policy, a, b)
		checkOthersKept(t, defaultKeyPolicy, s.policy)
	})

	t.Run("organization and OU statements next to the accounts", func(t *testing.T) {
		s := &policyStore{t: t, keyARN: keyARN, policy: mustEdit(t, defaultKeyPolicy, []string{a}, nil)}
		wrote, err := EnsurePolicy(ctx, s.api(), keyARN, []string{testOrgARN, testOUARN}, nil)
		if err != nil || !wrote {
			t.Fatalf("got wrote=%v err=%v, want true, nil", wrote, err)
		}
		got, err := Grantees(s.policy)
		if want := []string{a, testOrgID, testOUKey}; err != nil || !slices.Equal(got, want) {
			t.Errorf("got grantees %v (%v), want %v", got, err, want)
		}
		// Revoking the OU by its key leaves the organization and the account.
		if _, err := EnsurePolicy(ctx, s.api(), keyARN, nil, []string{testOUKey}); err != nil {
			t.Fatal(err)
		}
		got, _ = Grantees(s.policy)
		if want := []string{a, testOrgID}; !slices.Equal(got, want) {
			t.Errorf("after revoking the OU: got grantees %v, want %v", got, want)
		}
		checkOthersKept(t, defaultKeyPolicy, s.policy)
	})

	t.Run("an edit before the write is kept; one after it is seen by the read-back and re-applied", func(t *testing.T) {
		s := &policyStore{t: t, keyARN: keyARN, policy: defaultKeyPolicy}
		// Before our call another writer grants c (after the engine planned
		// from the default policy): the write starts from a fresh read, so c
		// stays. Then that writer re-applies its change from its own old
		// read after our write, losing a: the read-back sees it.
		s.set(mustEdit(t, defaultKeyPolicy, []string{c}, nil))
		s.onPut = func(n int, s *policyStore) {
			if n == 1 {
				s.set(mustEdit(t, s.policy, []string{c}, []string{a}))
			}
		}
		if _, err := EnsurePolicy(ctx, s.api(), keyARN, []string{a}, nil); err != nil {
			t.Fatal(err)
		}
		assertAccounts(t, s.policy, a, c)
	})

	t.Run("no write when already correct", func(t *testing.T) {
		s := &policyStore{t: t, keyARN: keyARN, policy: mustEdit(t, defaultKeyPolicy, []string{a, b}, nil)}
		wrote, err := EnsurePolicy(ctx, s.api(), keyARN, []string{a}, []string{c})
		if err != nil || wrote {
			t.Fatalf("got wrote=%v err=%v, want false, nil", wrote, err)
		}
		if s.puts != 0 || s.gets != 1 {
			t.Errorf("got %d puts and %d gets, want no put after one read", s.puts, s.gets)
		}
	})

	t.Run("removes the last account", func(t *testing.T) {
		s := &policyStore{t: t, keyARN: keyARN, policy: mustEdit(t, defaultKeyPolicy, []string{a}, nil)}
		wrote, err := EnsurePolicy(ctx, s.api(), keyARN, nil, []string{a})
		if err != nil || !wrote {
			t.Fatalf("got wrote=%v err=%v, want true, nil", wrote, err)
		}
		if !sameMeaning(t, []byte(s.policy), []byte(defaultKeyPolicy)) {
			t.Errorf("got\n%s\nwant the default policy back", s.policy)
		}
	})

	t.Run("partition from the key ARN", func(t *testing.T) {
		s := &policyStore{t: t, keyARN: govKeyARN, policy: ""}
		if _, err := EnsurePolicy(ctx, s.api(), govKeyARN, []string{a}, nil); err != nil {
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
		wrote, err := EnsurePolicy(ctx, s.api(), keyARN, []string{a}, nil)
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
		if _, err := EnsurePolicy(ctx, s.api(), keyARN, nil, []string{b}); err != nil {
			t.Fatal(err)
		}
		assertAccounts(t, s.policy)
	})

	t.Run("always overwritten: bounded, then an error", func(t *testing.T) {
		s := &policyStore{t: t, keyARN: keyARN, policy: defaultKeyPolicy}
		s.onPut = func(int, *policyStore) { s.set(defaultKeyPolicy) }
		wrote, err := EnsurePolicy(ctx, s.api(), keyARN, []string{a}, nil)
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
		_, err := EnsurePolicy(ctx, s.api(), keyARN, []string{a}, nil)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("got error %v, want context.Canceled", err)
		}
		if s.puts != 1 {
			t.Errorf("got %d puts, want 1", s.puts)
		}
	})

	t.Run("read-back error is wrapped, the write reported", func(t *testing.T) {
		s := &policyStore{t: t, keyARN: keyARN, policy: defaultKeyPolicy, getErr: &smithy.GenericAPIError{Code: "AccessDeniedException"}, getOK: 1}
		wrote, err := EnsurePolicy(ctx, s.api(), keyARN, []string{a}, nil)
		var ae smithy.APIError
		if !errors.As(err, &ae) || ae.ErrorCode() != "AccessDeniedException" {
			t.Fatalf("got error %v, want AccessDeniedException through errors.As", err)
		}
		if !wrote || s.puts != 1 {
			t.Errorf("got wrote=%v after %d puts, want the one write reported", wrote, s.puts)
		}
	})

	t.Run("read error: nothing written", func(t *testing.T) {
		s := &policyStore{t: t, keyARN: keyARN, policy: defaultKeyPolicy, getErr: &smithy.GenericAPIError{Code: "ThrottlingException"}}
		wrote, err := EnsurePolicy(ctx, s.api(), keyARN, []string{a}, nil)
		var ae smithy.APIError
		if !errors.As(err, &ae) || ae.ErrorCode() != "ThrottlingException" || wrote || s.puts != 0 {
			t.Errorf("got wrote=%v error %v after %d puts, want ThrottlingException and none", wrote, err, s.puts)
		}
	})

	t.Run("invalid policy read: nothing written", func(t *testing.T) {
		s := &policyStore{t: t, keyARN: keyARN, policy: `{"Statement":`}
		_, err := EnsurePolicy(ctx, s.api(), keyARN, []string{a}, nil)
		if !errors.Is(err, ErrInvalidPolicy) || s.puts != 0 {
			t.Errorf("got error %v after %d puts, want ErrInvalidPolicy and none", err, s.puts)
		}
	})

	t.Run("write error is wrapped", func(t *testing.T) {
		s := &policyStore{t: t, keyARN: keyARN, policy: defaultKeyPolicy,
			putErr: &smithy.GenericAPIError{Code: "MalformedPolicyDocumentException"}}
		wrote, err := EnsurePolicy(ctx, s.api(), keyARN, []string{a}, nil)
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
		_, err := EnsurePolicy(ctx, s.api(), keyARN, many, nil)
		if !errors.Is(err, ErrPolicyTooLarge) {
			t.Fatalf("got error %v, want ErrPolicyTooLarge", err)
		}
		if s.puts != 0 {
			t.Errorf("got %d puts, want 0", s.puts)
		}
	})

	t.Run("invalid account: nothing written", func(t *testing.T) {
		s := &policyStore{t: t, keyARN: keyARN, policy: defaultKeyPolicy}
		_, err := EnsurePolicy(ctx, s.api(), keyARN, []string{"12345"}, nil)
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
	out, _, err := Edit(policy, add, nil, Key{Partition: partition, Account: testAccount})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func assertAccounts(t *testing.T, policy string, want ...string) {
	t.Helper()
	got, err := Grantees(policy)
	if err != nil {
		t.Fatalf("Grantees: %v", err)
	}
	if want == nil {
		want = []string{}
	}
	if !slices.Equal(got, want) {
		t.Errorf("got accounts %v, want %v", got, want)
	}
}

// grantStore is a fake KMS's grants on one key, listed two per page.
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
