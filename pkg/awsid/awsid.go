// Package awsid is the grammar of the AWS identifiers amishare checks:
// account ids, region names, image ids, organization and organizational
// unit (OU) ids and ARNs, and the fields of an ARN. It says whether a string
// has the shape of an id, never whether the thing exists.
package awsid

import (
	"regexp"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws/arn"
)

// IsAccountID reports whether s is a 12-digit AWS account id (ASCII digits only).
func IsAccountID(s string) bool {
	if len(s) != 12 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// regionRE matches AWS region names: us-east-1, eu-central-2, ap-southeast-4,
// us-gov-west-1, cn-north-1, il-central-1, mx-central-1 ...
var regionRE = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$`)

// IsRegion reports whether s has the shape of an AWS region name. It does
// not say whether the region exists or is enabled.
func IsRegion(s string) bool {
	return len(s) <= 32 && regionRE.MatchString(s)
}

// ImagePrefix starts every EC2 image id.
const ImagePrefix = "ami-"

// IsImageID reports whether s has the shape of an EC2 image id: "ami-"
// followed by 8 (older ids) or 17 lowercase hex digits. It is the one image
// id check: the event decoder, the sweep's continuation, the CLI and the
// engine all use it.
func IsImageID(s string) bool {
	hex, ok := strings.CutPrefix(s, ImagePrefix)
	if !ok || (len(hex) != 8 && len(hex) != 17) {
		return false
	}
	for _, c := range []byte(hex) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// DefaultPartition is the partition of an ARN that names none (a bare key id).
const DefaultPartition = "aws"

var partitionRE = regexp.MustCompile(`^aws(-[a-z]+){0,3}$`)

// IsPartition reports whether s is like "aws", "aws-cn" or "aws-us-gov".
func IsPartition(s string) bool { return partitionRE.MatchString(s) }

// PartitionOf returns the partition of an ARN ("aws", "aws-cn", ...);
// DefaultPartition for anything that is not an ARN (a bare key id).
func PartitionOf(s string) string {
	if a, err := arn.Parse(s); err == nil && IsPartition(a.Partition) {
		return a.Partition
	}
	return DefaultPartition
}

// AccountOf returns the account id in an ARN, or "" when s is not an ARN
// with a 12-digit account (a bare key id, an alias name). Snapshots name
// their KMS key by full ARN, so this tells a key of another account without
// any call.
func AccountOf(s string) string {
	if a, err := arn.Parse(s); err == nil && IsAccountID(a.AccountID) {
		return a.AccountID
	}
	return ""
}

// RegionOf returns the region field of an ARN, "" when it has none.
func RegionOf(s string) string {
	if a, err := arn.Parse(s); err == nil {
		return a.Region
	}
	return ""
}

// RootARN is the ARN of an account's root principal, which stands for the
// whole account in a key policy or a grant: arn:PARTITION:iam::ACCOUNT:root.
func RootARN(partition, account string) string {
	return "arn:" + partition + ":iam::" + account + ":root"
}

// AutoScalingRoleARN is the ARN of an account's Auto Scaling service-linked
// role, which launches the instances of its Auto Scaling groups.
func AutoScalingRoleARN(partition, account string) string {
	return "arn:" + partition + ":iam::" + account + ":role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"
}

// RoleARN is the ARN of the role name (no path) of an account.
func RoleARN(partition, account, name string) string {
	return "arn:" + partition + ":iam::" + account + ":role/" + name
}
