package kmsgrant

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"
)

const keyARN = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"

// fakeKMS implements API with function fields; a call to a method whose
// field is nil panics through the nil embedded interface, which fails the
// test loudly.
type fakeKMS struct {
	API
	createGrant func(*kms.CreateGrantInput) (*kms.CreateGrantOutput, error)
	listGrants  func(*kms.ListGrantsInput) (*kms.ListGrantsOutput, error)
	revokeGrant func(*kms.RevokeGrantInput) (*kms.RevokeGrantOutput, error)
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

// grant is a grant as amishare makes them: an amishare name has the named
// account's root as grantee.
func grant(id, name string) types.GrantListEntry {
	g := types.GrantListEntry{GrantId: aws.String(id), Name: aws.String(name)}
	if a, ok := strings.CutPrefix(name, NamePrefix); ok {
		g.GranteePrincipal = aws.String("arn:aws:iam::" + a + ":root")
	}
	return g
}

func TestEnsure(t *testing.T) {
	ctx := context.Background()
	a, b, c := "111122223333", "444455556666", "777788889999"

	t.Run("creates one grant per account, then is idempotent", func(t *testing.T) {
		g := &grantStore{t: t, grants: []types.GrantListEntry{grant("other-1", "someone-else"), grant("other-2", "")}}
		added, removed, err := Ensure(ctx, g.api(), keyARN, []string{b, a}, nil)
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

		added, removed, err = Ensure(ctx, g.api(), keyARN, []string{a, b}, nil)
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
		added, _, err := Ensure(ctx, g.api(), keyARN, []string{a}, nil)
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
		added, removed, err := Ensure(ctx, g.api(), keyARN, nil, []string{a, c})
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
		_, removed, err = Ensure(ctx, g.api(), keyARN, nil, []string{a})
		if err != nil || removed != nil {
			t.Errorf("second call: got removed=%v err=%v, want none", removed, err)
		}
	})

	t.Run("a grant with amishare's name for another grantee is not amishare's", func(t *testing.T) {
		// EBS grants its service role on the volumes it creates; revoking
		// such a grant breaks the volume. Only the grantee amishare sets counts.
		ebs := grant("g1", "amishare-"+a)
		ebs.GranteePrincipal = aws.String("arn:aws:iam::" + a + ":role/aws-service-role/ebs.amazonaws.com/AWSServiceRoleForEBS")
		g := &grantStore{t: t, grants: []types.GrantListEntry{ebs, grant("g2", "amishare-"+b)}}
		_, removed, err := Ensure(ctx, g.api(), keyARN, nil, []string{a, b})
		if err != nil || !slices.Equal(removed, []string{b}) || !slices.Equal(g.revokes, []string{"g2"}) {
			t.Errorf("got removed=%v revokes=%v err=%v, want only g2 (%s) revoked", removed, g.revokes, err, b)
		}
		accounts, err := Accounts(ctx, g.api(), keyARN)
		if err != nil || len(accounts) != 0 {
			t.Errorf("Accounts: got %v, %v, want none", accounts, err)
		}
	})

	t.Run("an account in add and remove is removed", func(t *testing.T) {
		g := &grantStore{t: t, grants: []types.GrantListEntry{grant("g1", "amishare-"+a)}}
		added, removed, err := Ensure(ctx, g.api(), keyARN, []string{a}, []string{a})
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
		_, removed, err := Ensure(ctx, g.api(), keyARN, nil, []string{a})
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
		added, removed, err := Ensure(ctx, g.api(), keyARN, []string{a, b}, []string{c})
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
		_, _, err := Ensure(ctx, &fakeKMS{}, keyARN, []string{"bob"}, nil)
		if !errors.Is(err, ErrInvalidAccount) {
			t.Fatalf("got error %v, want ErrInvalidAccount", err)
		}
	})

	t.Run("list error", func(t *testing.T) {
		api := &fakeKMS{listGrants: func(*kms.ListGrantsInput) (*kms.ListGrantsOutput, error) {
			return nil, &smithy.GenericAPIError{Code: "AccessDeniedException"}
		}}
		_, _, err := Ensure(ctx, api, keyARN, []string{a}, nil)
		var ae smithy.APIError
		if !errors.As(err, &ae) || ae.ErrorCode() != "AccessDeniedException" {
			t.Fatalf("got error %v, want AccessDeniedException through errors.As", err)
		}
	})
}
