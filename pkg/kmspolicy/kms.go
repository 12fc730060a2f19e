package kmspolicy

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/arn"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/amishare/amishare/pkg/awserr"
	"github.com/amishare/amishare/pkg/awsid"
)

// KMSAPI is the part of *kms.Client the engine uses.
type KMSAPI interface {
	DescribeKey(ctx context.Context, params *kms.DescribeKeyInput, optFns ...func(*kms.Options)) (*kms.DescribeKeyOutput, error)
	GetKeyPolicy(ctx context.Context, params *kms.GetKeyPolicyInput, optFns ...func(*kms.Options)) (*kms.GetKeyPolicyOutput, error)
	PutKeyPolicy(ctx context.Context, params *kms.PutKeyPolicyInput, optFns ...func(*kms.Options)) (*kms.PutKeyPolicyOutput, error)
	CreateGrant(ctx context.Context, params *kms.CreateGrantInput, optFns ...func(*kms.Options)) (*kms.CreateGrantOutput, error)
	ListGrants(ctx context.Context, params *kms.ListGrantsInput, optFns ...func(*kms.Options)) (*kms.ListGrantsOutput, error)
	RevokeGrant(ctx context.Context, params *kms.RevokeGrantInput, optFns ...func(*kms.Options)) (*kms.RevokeGrantOutput, error)
}

var _ KMSAPI = (*kms.Client)(nil)

// policyName is the only key policy name KMS supports (moto requires it
// to be passed explicitly).
const policyName = "default"

// GrantNamePrefix starts the name of every grant EnsureGrants creates; the
// rest is the grantee account id.
const GrantNamePrefix = "amishare-"

// grantOperations are what a grantee account needs for EBS: the grant-mode
// counterpart of the UseSid and GrantSid statements.
var grantOperations = []types.GrantOperation{
	types.GrantOperationDecrypt,
	types.GrantOperationDescribeKey,
	types.GrantOperationReEncryptFrom,
	types.GrantOperationReEncryptTo,
	types.GrantOperationGenerateDataKey,
	types.GrantOperationGenerateDataKeyWithoutPlaintext,
	types.GrantOperationCreateGrant,
}

// ErrPolicyContention means the key policy kept being overwritten by another
// writer between our write and our check. It is transient: retrying later
// (e.g. the next Lambda attempt) is the remedy.
var ErrPolicyContention = errors.New("key policy kept being overwritten concurrently")

// policyAttempts bounds the writes of one EnsurePolicy call; policyBackoff is
// the base of the jittered wait between them. Variables so tests can shrink
// the wait.
var (
	policyAttempts = 5
	policyBackoff  = 100 * time.Millisecond
)

// KeyInfo describes one key behind an image's snapshots.
type KeyInfo struct {
	ARN string
	ID  string
	// Owner is the account id from the ARN: when it is not ours, we cannot
	// edit the policy and must ask the owner (see Statement).
	Owner string
	// Partition is the partition from the ARN, for the principals' ARNs.
	Partition string
	// Manager is "AWS" (an AWS managed key, which cannot be shared) or
	// "CUSTOMER".
	Manager string
	// State is the key state, e.g. "Enabled", "Disabled", "PendingDeletion".
	State string
}

// Describe returns what DescribeKey says about keyID (a key id, key ARN,
// alias name or alias ARN).
func Describe(ctx context.Context, api KMSAPI, keyID string) (KeyInfo, error) {
	out, err := api.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(keyID)})
	if err != nil {
		return KeyInfo{}, fmt.Errorf("describing key %s: %w", keyID, err)
	}
	md := out.KeyMetadata
	if md == nil {
		return KeyInfo{}, fmt.Errorf("describing key %s: no key metadata in the response", keyID)
	}
	info := KeyInfo{
		ARN:     aws.ToString(md.Arn),
		ID:      aws.ToString(md.KeyId),
		Owner:   aws.ToString(md.AWSAccountId),
		Manager: string(md.KeyManager),
		State:   string(md.KeyState),
	}
	if a, err := arn.Parse(info.ARN); err == nil {
		info.Owner = a.AccountID
		info.Partition = a.Partition
	}
	return info, nil
}

// EnsurePolicy makes the policy of the key keyARN grant add and not grant
// remove (accounts, organizations and OUs, see Edit), editing only our
// statements. policy is the key's policy as the caller last read it (for
// planning): the first edit starts from it, so that one reconcile reads a
// key policy once before writing it. It does not write when nothing changes.
//
// KMS has no conditional write, so after each write it reads the policy back
// and checks that it holds what this call needs (add present, remove absent).
// If a concurrent writer overwrote it (or wrote between the caller's read
// and ours), the edit is applied again to a fresh policy, up to
// policyAttempts writes with jittered backoff; then it gives up with an error
// wrapping ErrPolicyContention. The check also absorbs a stale read right
// after a write: the edit is then re-applied, which is harmless.
//
// wrote reports whether at least one PutKeyPolicy succeeded, also on error.
func EnsurePolicy(ctx context.Context, api KMSAPI, keyARN, policy string, add, remove []string) (wrote bool, err error) {
	partition := awsid.PartitionOf(keyARN)
	writes := 0
	for {
		out, changed, err := Edit(policy, add, remove, partition)
		if err != nil {
			return wrote, fmt.Errorf("editing key policy of %s: %w", keyARN, err)
		}
		if !changed {
			return wrote, nil
		}
		_, err = api.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{
			KeyId:      aws.String(keyARN),
			PolicyName: aws.String(policyName),
			Policy:     aws.String(out),
		})
		if err != nil {
			return wrote, fmt.Errorf("writing key policy of %s: %w", keyARN, err)
		}
		wrote = true
		writes++

		if policy, err = GetPolicy(ctx, api, keyARN); err != nil {
			return wrote, err
		}
		ok, err := holds(policy, add, remove)
		if err != nil {
			return wrote, fmt.Errorf("checking key policy of %s after writing it: %w", keyARN, err)
		}
		if ok {
			return wrote, nil
		}
		if writes >= policyAttempts {
			return wrote, fmt.Errorf("key policy of %s: %w (%d writes)", keyARN, ErrPolicyContention, writes)
		}
		if err := sleep(ctx, jitter(policyBackoff, writes)); err != nil {
			return wrote, fmt.Errorf("key policy of %s: %w", keyARN, err)
		}
		if policy, err = GetPolicy(ctx, api, keyARN); err != nil {
			return wrote, err
		}
	}
}

// GetPolicy reads the key's policy (PolicyName "default", the only one KMS supports).
func GetPolicy(ctx context.Context, api KMSAPI, keyARN string) (string, error) {
	out, err := api.GetKeyPolicy(ctx, &kms.GetKeyPolicyInput{
		KeyId:      aws.String(keyARN),
		PolicyName: aws.String(policyName),
	})
	if err != nil {
		return "", fmt.Errorf("reading key policy of %s: %w", keyARN, err)
	}
	return aws.ToString(out.Policy), nil
}

// holds reports whether policy grants every grantee of add that is not in
// remove, and none of remove.
func holds(policy string, add, remove []string) (bool, error) {
	granted, err := Grantees(policy)
	if err != nil {
		return false, err
	}
	addSet, err := granteeSet(add)
	if err != nil {
		return false, err
	}
	removeSet, err := granteeSet(remove)
	if err != nil {
		return false, err
	}
	for g := range removeSet {
		if slices.Contains(granted, g) {
			return false, nil
		}
	}
	for g := range addSet {
		if !removeSet[g] && !slices.Contains(granted, g) {
			return false, nil
		}
	}
	return true, nil
}

// jitter returns a wait in [d·2^(n-1)/2, d·2^(n-1)), so concurrent writers
// spread out instead of clobbering each other in lockstep.
func jitter(d time.Duration, n int) time.Duration {
	d <<= max(n-1, 0)
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// EnsureGrants is the grant mode: instead of the key policy, each account in
// add gets a grant named GrantNamePrefix+account for its root (operations
// Decrypt, DescribeKey, ReEncryptFrom, ReEncryptTo,
// GenerateDataKeyWithoutPlaintext, CreateGrant), unless a grant with that name
// is already listed. For each account in remove, every grant with that name
// is revoked. An account in both is only removed.
//
// added and removed are the accounts actually changed, sorted. A failure for
// one account does not stop the others; the failures are joined.
func EnsureGrants(ctx context.Context, api KMSAPI, keyARN string, add, remove []string) (added, removed []string, err error) {
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

	byName, err := listGrants(ctx, api, keyARN)
	if err != nil {
		return nil, nil, err
	}

	partition := awsid.PartitionOf(keyARN)
	var errs []error
	for _, a := range sortedKeys(addSet) {
		name := GrantNamePrefix + a
		if len(byName[name]) > 0 {
			continue
		}
		_, err := api.CreateGrant(ctx, &kms.CreateGrantInput{
			KeyId:            aws.String(keyARN),
			GranteePrincipal: aws.String(rootARN(partition, a)),
			Operations:       slices.Clone(grantOperations),
			Name:             aws.String(name),
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("creating grant %s on %s: %w", name, keyARN, err))
			continue
		}
		added = append(added, a)
	}
	for _, a := range sortedKeys(removeSet) {
		name := GrantNamePrefix + a
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

// listGrants returns the ids of the key's grants by grant name, all pages.
func listGrants(ctx context.Context, api KMSAPI, keyARN string) (map[string][]string, error) {
	byName := map[string][]string{}
	p := kms.NewListGrantsPaginator(api, &kms.ListGrantsInput{KeyId: aws.String(keyARN)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("listing grants on %s: %w", keyARN, err)
		}
		for _, g := range page.Grants {
			name := aws.ToString(g.Name)
			byName[name] = append(byName[name], aws.ToString(g.GrantId))
		}
	}
	return byName, nil
}

// GrantAccounts returns the accounts amishare's grants on the key are for
// (grants named GrantNamePrefix+account), sorted.
func GrantAccounts(ctx context.Context, api KMSAPI, keyARN string) ([]string, error) {
	byName, err := listGrants(ctx, api, keyARN)
	if err != nil {
		return nil, err
	}
	var out []string
	for name := range byName {
		if a, ok := strings.CutPrefix(name, GrantNamePrefix); ok && awsid.IsAccountID(a) {
			out = append(out, a)
		}
	}
	slices.Sort(out)
	return out, nil
}
