package amitag

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

// resolveID finds the one allowed ARN whose id is id (of the kind match
// selects). ambiguous is true when several allowed ARNs carry that id (an OU
// id is only unique within its organization): the tag must then name the
// full ARN.
func resolveID(id string, allowed []string, match func(arn string) string) (arn string, ambiguous bool) {
	for _, a := range allowed {
		if match(a) != id {
			continue
		}
		if arn != "" && arn != a {
			return "", true
		}
		arn = a
	}
	return arn, false
}

func organizationIDOf(arn string) string {
	if IsOrganizationARN(arn) {
		return OrganizationID(arn)
	}
	return ""
}

// isOrgTarget reports whether s is an organization or OU ARN.
func isOrgTarget(s string) bool { return IsOrganizationARN(s) || IsOrganizationalUnitARN(s) }
