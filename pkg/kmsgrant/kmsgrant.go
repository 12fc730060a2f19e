// Package kmsgrant is amishare's grant mode: instead of editing a key
// policy, each account an image is shared with gets one KMS grant on the key
// (named NamePrefix and the account id, for the account's root, with
// Operations), revoked when the account no longer needs the key. A grant
// names one principal, never an organization or OU.
package kmsgrant

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/amishare/amishare/pkg/awserr"
	"github.com/amishare/amishare/pkg/awsid"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
)

// API is the part of *kms.Client the grant mode uses.
type API interface {
	CreateGrant(ctx context.Context, params *kms.CreateGrantInput, optFns ...func(*kms.Options)) (*kms.CreateGrantOutput, error)
	ListGrants(ctx context.Context, params *kms.ListGrantsInput, optFns ...func(*kms.Options)) (*kms.ListGrantsOutput, error)
	RevokeGrant(ctx context.Context, params *kms.RevokeGrantInput, optFns ...func(*kms.Options)) (*kms.RevokeGrantOutput, error)
}

var _ API = (*kms.Client)(nil)

// ErrInvalidAccount means a grantee is not a 12-digit account id.
var ErrInvalidAccount = errors.New("invalid account id")

// NamePrefix starts the name of every grant Ensure creates; the
// rest is the grantee account id.
const NamePrefix = "amishare-"

// Operations are what a grantee account needs for EBS: the grant-mode
// counterpart of the UseSid and GrantSid statements.
var Operations = []types.GrantOperation{
	types.GrantOperationDecrypt,
	types.GrantOperationDescribeKey,
	types.GrantOperationReEncryptFrom,
	types.GrantOperationReEncryptTo,
	types.GrantOperationGenerateDataKey,
	types.GrantOperationGenerateDataKeyWithoutPlaintext,
	types.GrantOperationCreateGrant,
}

// Ensure is the grant mode: instead of the key policy, each account in
// add gets a grant named NamePrefix+account for its root (operations
// Decrypt, DescribeKey, ReEncryptFrom, ReEncryptTo,
// GenerateDataKeyWithoutPlaintext, CreateGrant), unless a grant with that name
// is already listed. For each account in remove, every grant amishare made
// for it (that name and the account's root as grantee: see ours) is
// revoked. An account in both is only removed.
//
// added and removed are the accounts actually changed, sorted. A failure for
// one account does not stop the others; the failures are joined.
func Ensure(ctx context.Context, api API, keyARN string, add, remove []string) (added, removed []string, err error) {
	addSet, err := accountSet(add)
	if err != nil {
		return nil, nil, fmt.Errorf("grants on %s: accounts to add: %w", keyARN, err)
	}
	removeSet, err := accountSet(remove)
	if err != nil {
		return nil, nil, fmt.Errorf("grants on %s: accounts to remove: %w", keyARN, err)
	}
	for a := range removeSet {
		delete(addSet, a)
	}

	partition := awsid.PartitionOf(keyARN)
	byName, err := listGrants(ctx, api, keyARN, partition)
	if err != nil {
		return nil, nil, err
	}

	var errs []error
	for _, a := range slices.Sorted(maps.Keys(addSet)) {
		name := NamePrefix + a
		if len(byName[name]) > 0 {
			continue
		}
		_, err := api.CreateGrant(ctx, &kms.CreateGrantInput{
			KeyId:            aws.String(keyARN),
			GranteePrincipal: aws.String(awsid.RootARN(partition, a)),
			Operations:       slices.Clone(Operations),
			Name:             aws.String(name),
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("creating grant %s on %s: %w", name, keyARN, err))
			continue
		}
		added = append(added, a)
	}
	for _, a := range slices.Sorted(maps.Keys(removeSet)) {
		name := NamePrefix + a
		revoked := false
		for _, id := range byName[name] {
			_, err := api.RevokeGrant(ctx, &kms.RevokeGrantInput{
				KeyId:   aws.String(keyARN),
				GrantId: aws.String(id),
			})
			if err != nil && !awserr.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("revoking grant %s (%s) on %s: %w", name, id, keyARN, err))
				continue
			}
			// Already gone (a concurrent revoke) counts as done but not as
			// ours to report.
			if err == nil {
				revoked = true
			}
		}
		if revoked {
			removed = append(removed, a)
		}
	}
	return added, removed, errors.Join(errs...)
}

// listGrants returns the ids of amishare's grants on the key by grant
// name, all pages: those named NamePrefix and an account id whose grantee
// is that account's root. Any other grant is someone else's (EBS makes
// grants for the volumes it creates, and revoking one breaks the volume).
func listGrants(ctx context.Context, api API, keyARN, partition string) (map[string][]string, error) {
	byName := map[string][]string{}
	err := eachGrant(ctx, api, keyARN, func(g types.GrantListEntry) {
		name := aws.ToString(g.Name)
		if account, ok := ours(name, aws.ToString(g.GranteePrincipal), partition); ok {
			byName[NamePrefix+account] = append(byName[NamePrefix+account], aws.ToString(g.GrantId))
		}
	})
	return byName, err
}

// eachGrant calls fn with every grant on the key, all pages.
func eachGrant(ctx context.Context, api API, keyARN string, fn func(types.GrantListEntry)) error {
	p := kms.NewListGrantsPaginator(api, &kms.ListGrantsInput{KeyId: aws.String(keyARN)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("listing grants on %s: %w", keyARN, err)
		}
		for _, g := range page.Grants {
			fn(g)
		}
	}
	return nil
}

// ours reports whether a grant is one amishare made, and for which account.
func ours(name, grantee, partition string) (account string, ok bool) {
	account, ok = strings.CutPrefix(name, NamePrefix)
	return account, ok && awsid.IsAccountID(account) && grantee == awsid.RootARN(partition, account)
}

// Accounts returns the accounts amishare's grants on the key are for (see
// listGrants), sorted.
func Accounts(ctx context.Context, api API, keyARN string) ([]string, error) {
	byName, err := listGrants(ctx, api, keyARN, awsid.PartitionOf(keyARN))
	if err != nil {
		return nil, err
	}
	var out []string
	for name := range byName {
		out = append(out, strings.TrimPrefix(name, NamePrefix))
	}
	slices.Sort(out)
	return out, nil
}

// accountSet validates ids as account ids and returns them as a set.
func accountSet(ids []string) (map[string]bool, error) {
	set := make(map[string]bool, len(ids))
	for _, id := range ids {
		if !awsid.IsAccountID(id) {
			return nil, fmt.Errorf("%w: %q", ErrInvalidAccount, id)
		}
		set[id] = true
	}
	return set, nil
}
