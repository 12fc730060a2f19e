package kmsgrant

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/amishare/amishare/pkg/awserr"
	"github.com/amishare/amishare/pkg/awsid"
)

// The Auto Scaling grants: a receiver's AWSServiceRoleForAutoScaling may
// use a key of this account once it holds a grant on it, which the EC2
// Auto Scaling guide has the receiver's account create (here: through the
// receiver role, allowed by the key policy's Auto Scaling statement, see
// kmspolicy.EditAutoScaling). This account lists and revokes them. They are
// never amishare's grant-mode grants (their name and grantee differ).

// AutoScalingNamePrefix starts the name of every Auto Scaling grant; the
// receiver's account id follows. The name also makes a retried CreateGrant
// return the grant it made instead of a second one.
const AutoScalingNamePrefix = NamePrefix + "asg-"

// AutoScalingOperations are the operations of an Auto Scaling grant, the
// EC2 Auto Scaling guide's list.
var AutoScalingOperations = []types.GrantOperation{
	types.GrantOperationEncrypt, types.GrantOperationDecrypt, types.GrantOperationReEncryptFrom, types.GrantOperationReEncryptTo,
	types.GrantOperationGenerateDataKey, types.GrantOperationGenerateDataKeyWithoutPlaintext, types.GrantOperationDescribeKey,
	types.GrantOperationCreateGrant,
}

// GrantCreator is what creates a grant: a receiver's KMS client.
type GrantCreator interface {
	CreateGrant(ctx context.Context, params *kms.CreateGrantInput, optFns ...func(*kms.Options)) (*kms.CreateGrantOutput, error)
}

// AutoScalingGrants returns the ids of the Auto Scaling grants on the key
// by receiver account: named AutoScalingNamePrefix and the account, for that
// account's Auto Scaling role. Any other grant is someone else's.
func AutoScalingGrants(ctx context.Context, api API, keyARN string) (map[string][]string, error) {
	partition := awsid.PartitionOf(keyARN)
	out := map[string][]string{}
	err := eachGrant(ctx, api, keyARN, func(g types.GrantListEntry) {
		account, ok := strings.CutPrefix(aws.ToString(g.Name), AutoScalingNamePrefix)
		if ok && awsid.IsAccountID(account) && aws.ToString(g.GranteePrincipal) == awsid.AutoScalingRoleARN(partition, account) {
			out[account] = append(out[account], aws.ToString(g.GrantId))
		}
	})
	return out, err
}

// CreateAutoScalingGrant creates, with a receiver's client (another account
// names the key by its ARN), the grant its Auto Scaling role needs.
func CreateAutoScalingGrant(ctx context.Context, api GrantCreator, keyARN, account string) error {
	_, err := api.CreateGrant(ctx, &kms.CreateGrantInput{
		KeyId:            aws.String(keyARN),
		GranteePrincipal: aws.String(awsid.AutoScalingRoleARN(awsid.PartitionOf(keyARN), account)),
		Operations:       slices.Clone(AutoScalingOperations),
		Name:             aws.String(AutoScalingNamePrefix + account),
	})
	if err != nil {
		return fmt.Errorf("creating the Auto Scaling grant of %s on %s: %w", account, keyARN, err)
	}
	return nil
}

// Revoke revokes the grants ids on the key; one already gone is revoked.
func Revoke(ctx context.Context, api API, keyARN string, ids []string) error {
	var errs []error
	for _, id := range ids {
		if _, err := api.RevokeGrant(ctx, &kms.RevokeGrantInput{KeyId: aws.String(keyARN), GrantId: aws.String(id)}); err != nil && !awserr.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("revoking grant %s on %s: %w", id, keyARN, err))
		}
	}
	return errors.Join(errs...)
}
