package share

import (
	"strings"

	"github.com/amishare/amishare/pkg/awsid"
	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// targetKind is what a target string names.
type targetKind int

const (
	kindAccount targetKind = iota // a 12-digit id, or "all" for public access
	kindOrganization
	kindOrganizationalUnit
)

// kindOf classifies a target: an account id, an organization (ARN, or the
// "o-…" id a key statement holds) or an OU (ARN, or "o-…/ou-…"). It is
// lenient on purpose: a launch permission read from EC2 is classified by
// the shape of its ARN, so that whatever is there can be removed.
func kindOf(target string) targetKind {
	switch {
	case awsid.IsAccountID(target) || target == publicGroup:
		return kindAccount
	case strings.Contains(target, ":ou/") || strings.Contains(target, "/ou-"):
		return kindOrganizationalUnit
	default:
		return kindOrganization
	}
}

// withTarget returns c naming target in the field of its kind.
func withTarget(c Change, target string) Change {
	c.Account, c.OrganizationArn, c.OrganizationalUnitArn = "", "", ""
	switch kindOf(target) {
	case kindAccount:
		c.Account = target
	case kindOrganization:
		c.OrganizationArn = target
	case kindOrganizationalUnit:
		c.OrganizationalUnitArn = target
	}
	return c
}

// launchPermission is the EC2 launch permission for a target.
func launchPermission(target string) ec2types.LaunchPermission {
	switch kindOf(target) {
	case kindOrganization:
		return ec2types.LaunchPermission{OrganizationArn: aws.String(target)}
	case kindOrganizationalUnit:
		return ec2types.LaunchPermission{OrganizationalUnitArn: aws.String(target)}
	}
	return ec2types.LaunchPermission{UserId: aws.String(target)}
}
