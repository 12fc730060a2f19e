package awsid

import "regexp"

// The organization and organizational-unit (OU) grammar. The ARN patterns are
// the ones EC2 Image Builder's LaunchPermissionConfiguration documents for
// organizationArns and organizationalUnitArns; the OU pattern is anchored at
// its end as well (the documented one is not), so that nothing can follow
// the OU id. The ids are AWS Organizations' Organization.Id ("o-" and 10 to
// 32 lowercase letters or digits) and OrganizationalUnit.Id ("ou-", 4 to 32
// lowercase letters or digits, "-", 8 to 32 lowercase letters or digits).
var (
	orgARNRE = regexp.MustCompile(`^arn:aws[^:]*:organizations::[0-9]{12}:organization/(o-[a-z0-9]{10,32})$`)
	ouARNRE  = regexp.MustCompile(`^arn:aws[^:]*:organizations::[0-9]{12}:ou/(o-[a-z0-9]{10,32})/(ou-[0-9a-z]{4,32}-[0-9a-z]{8,32})$`)
	orgIDRE  = regexp.MustCompile(`^o-[a-z0-9]{10,32}$`)
	ouIDRE   = regexp.MustCompile(`^ou-[0-9a-z]{4,32}-[0-9a-z]{8,32}$`)
)

// IsOrganizationARN reports whether s is an organization's ARN,
// arn:PARTITION:organizations::MANAGEMENT_ACCOUNT:organization/o-….
func IsOrganizationARN(s string) bool { return orgARNRE.MatchString(s) }

// IsOrganizationalUnitARN reports whether s is an OU's ARN,
// arn:PARTITION:organizations::MANAGEMENT_ACCOUNT:ou/o-…/ou-…-….
func IsOrganizationalUnitARN(s string) bool { return ouARNRE.MatchString(s) }

// IsOrganizationTarget reports whether s is an organization or OU ARN.
func IsOrganizationTarget(s string) bool { return IsOrganizationARN(s) || IsOrganizationalUnitARN(s) }

// IsOrganizationID reports whether s is an organization id (o-…).
func IsOrganizationID(s string) bool { return orgIDRE.MatchString(s) }

// IsOrganizationalUnitID reports whether s is an OU id (ou-…-…).
func IsOrganizationalUnitID(s string) bool { return ouIDRE.MatchString(s) }

// OrganizationID returns the organization id in an organization or OU ARN,
// and "" for anything else.
func OrganizationID(arn string) string {
	if m := orgARNRE.FindStringSubmatch(arn); m != nil {
		return m[1]
	}
	if m := ouARNRE.FindStringSubmatch(arn); m != nil {
		return m[1]
	}
	return ""
}

// OrganizationalUnitID returns the OU id in an OU ARN, and "" for anything else.
func OrganizationalUnitID(arn string) string {
	if m := ouARNRE.FindStringSubmatch(arn); m != nil {
		return m[2]
	}
	return ""
}
