package kmspolicy

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/amishare/amishare/pkg/awsid"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
)

// API is the part of *kms.Client that reads and writes key policies.
type API interface {
	DescribeKey(ctx context.Context, params *kms.DescribeKeyInput, optFns ...func(*kms.Options)) (*kms.DescribeKeyOutput, error)
	GetKeyPolicy(ctx context.Context, params *kms.GetKeyPolicyInput, optFns ...func(*kms.Options)) (*kms.GetKeyPolicyOutput, error)
	PutKeyPolicy(ctx context.Context, params *kms.PutKeyPolicyInput, optFns ...func(*kms.Options)) (*kms.PutKeyPolicyOutput, error)
}

var _ API = (*kms.Client)(nil)

// policyName is the only key policy name KMS supports (moto requires it
// to be passed explicitly).
const policyName = "default"

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
	// Owner is the account id from the ARN: when it is not ours, we cannot
	// edit the policy and must ask the owner (see Statement).
	Owner string
	// Manager is "AWS" (an AWS managed key, which cannot be shared) or
	// "CUSTOMER".
	Manager string
}

// Describe returns what DescribeKey says about keyID (a key id, key ARN,
// alias name or alias ARN).
func Describe(ctx context.Context, api API, keyID string) (KeyInfo, error) {
	out, err := api.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(keyID)})
	if err != nil {
		return KeyInfo{}, fmt.Errorf("describing key %s: %w", keyID, err)
	}
	md := out.KeyMetadata
	if md == nil {
		return KeyInfo{}, fmt.Errorf("describing key %s: no key metadata in the response", keyID)
	}
	info := KeyInfo{ARN: aws.ToString(md.Arn), Owner: aws.ToString(md.AWSAccountId), Manager: string(md.KeyManager)}
	if owner := awsid.AccountOf(info.ARN); owner != "" {
		info.Owner = owner
	}
	return info, nil
}

// EnsurePolicy makes the policy of the key keyARN grant add and not grant
// remove (accounts, organizations and OUs, see Edit), editing only our
// statements. It does not write when nothing changes.
//
// Every write is computed from a GetKeyPolicy made right before it, with no
// other call between them: an administrator's edit that lands between the
// engine's planning read and this write is kept, never reverted. KMS has no
// conditional write, so after each write it reads the policy back and
// checks that it holds what this call needs (add present, remove absent).
// If a concurrent writer overwrote it, the edit is applied again to a fresh
// read, up to policyAttempts writes with jittered backoff; then it gives up
// with an error wrapping ErrPolicyContention. The check also absorbs a stale
// read right after a write: the edit is then re-applied, which is harmless.
//
// wrote reports whether at least one PutKeyPolicy succeeded, also on error.
func EnsurePolicy(ctx context.Context, api API, keyARN string, add, remove []string) (wrote bool, err error) {
	key := KeyOf(keyARN)
	return ensure(ctx, api, keyARN,
		func(policy string) (string, bool, error) { return Edit(policy, add, remove, key) },
		func(policy string) (bool, error) { return holds(policy, add, remove) })
}

// ensure writes the key policy edit makes of it, each time from a read
// right before, and reads it back until check says it holds (see
// EnsurePolicy). wrote reports whether at least one PutKeyPolicy succeeded.
func ensure(ctx context.Context, api API, keyARN string, edit func(string) (string, bool, error), check func(string) (bool, error)) (wrote bool, err error) {
	for writes := 0; ; {
		policy, err := GetPolicy(ctx, api, keyARN)
		if err != nil {
			return wrote, err
		}
		out, changed, err := edit(policy)
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

		back, err := GetPolicy(ctx, api, keyARN)
		if err != nil {
			return wrote, err
		}
		ok, err := check(back)
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
	}
}

// GetPolicy reads the key's policy (PolicyName "default", the only one KMS supports).
func GetPolicy(ctx context.Context, api API, keyARN string) (string, error) {
	out, err := api.GetKeyPolicy(ctx, &kms.GetKeyPolicyInput{
		KeyId:      aws.String(keyARN),
		PolicyName: aws.String(policyName),
	})
	if err != nil {
		return "", fmt.Errorf("reading key policy of %s: %w", keyARN, err)
	}
	return aws.ToString(out.Policy), nil
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
