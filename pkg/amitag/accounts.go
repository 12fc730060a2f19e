package amitag

import (
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/amishare/amishare/pkg/awsid"
)

// Directory answers which targets an accounts tag may name: the configuration.
type Directory interface {
	// Allowed reports whether target (a 12-digit account id, an organization
	// ARN or an OU ARN) may be shared with.
	Allowed(target string) bool
	// Group returns the members of a named group: account ids and
	// organization or OU ARNs, all of them allowed.
	Group(name string) ([]string, bool)
}

// OrganizationDirectory is a Directory that also lists the organizations
// and OUs it allows, so that an id in the tag resolves to its ARN.
// *config.Config is one; with a plain Directory ids are refused as not
// allowed, and only full ARNs can name organizations and OUs.
type OrganizationDirectory interface {
	Directory
	// OrganizationTargets returns every organization and OU ARN that may be
	// shared with (allowed directly or as a group member).
	OrganizationTargets() []string
}

// Refusal is one token of the accounts tag that was not shared with, and why.
type Refusal struct {
	Token  string `json:"token"`
	Reason string `json:"reason"`
}

// Targets is the accounts tag resolved against the configuration.
type Targets struct {
	Accounts []string `json:"accounts"` // allowed 12-digit ids, sorted, unique
	// Organizations are allowed organization ARNs, sorted, unique.
	Organizations []string `json:"organizations,omitempty"`
	// OrganizationalUnits are allowed OU ARNs, sorted, unique.
	OrganizationalUnits []string  `json:"organizationalUnits,omitempty"`
	Refused             []Refusal `json:"refused,omitempty"` // in tag order, each token once
}

// Len is the number of targets (accounts, organizations and OUs).
func (t Targets) Len() int {
	return len(t.Accounts) + len(t.Organizations) + len(t.OrganizationalUnits)
}

// All returns every target: the accounts, then the organization ARNs, then
// the OU ARNs.
func (t Targets) All() []string {
	out := make([]string, 0, t.Len())
	out = append(out, t.Accounts...)
	out = append(out, t.Organizations...)
	return append(out, t.OrganizationalUnits...)
}

// Refusal reasons.
const (
	ReasonPublic        = "public sharing is never allowed"
	ReasonNotAllowed    = "account is not in the allowlist"
	ReasonOrgNotAllowed = "organization is not in the allowlist"
	ReasonOUNotAllowed  = "organizational unit is not in the allowlist"
	ReasonAmbiguous     = "id matches several allowed ARNs: name the full ARN"
	ReasonUnknown       = "not a 12-digit account id, an organization or OU id or ARN, or a configured group"
)

// ResolveAccounts parses the value of the accounts tag: tokens separated by
// white space or commas, each a 12-digit account id, an organization id
// (o-…), an OU id (ou-…-…), the full ARN of an organization or OU, or a
// group name from dir. An id resolves to the allowed ARN with that id (EC2
// shares with ARNs, not ids). Only allowed targets are kept; every other
// token is refused with a reason. Empty tokens are skipped, duplicates count
// once.
func ResolveAccounts(value string, dir Directory) Targets {
	var t Targets
	seenToken := map[string]bool{}
	add := func(target string) {
		list := &t.Accounts
		switch {
		case awsid.IsOrganizationARN(target):
			list = &t.Organizations
		case awsid.IsOrganizationalUnitARN(target):
			list = &t.OrganizationalUnits
		case !awsid.IsAccountID(target):
			return // not a target at all; a valid configuration has none
		}
		if !slices.Contains(*list, target) {
			*list = append(*list, target)
		}
	}
	refuse := func(tok, reason string) { t.Refused = append(t.Refused, Refusal{Token: tok, Reason: reason}) }
	addARN := func(tok, arn, notAllowed string) {
		if dir.Allowed(arn) {
			add(arn)
		} else {
			refuse(tok, notAllowed)
		}
	}
	var orgTargets []string
	if od, ok := dir.(OrganizationDirectory); ok {
		orgTargets = od.OrganizationTargets()
	}
	addID := func(tok string, match func(string) string, notAllowed string) {
		arn, ambiguous := resolveID(tok, orgTargets, match)
		switch {
		case ambiguous:
			refuse(tok, ReasonAmbiguous)
		case arn == "":
			refuse(tok, notAllowed)
		default:
			addARN(tok, arn, notAllowed)
		}
	}
	tokens := strings.FieldsFunc(value, func(r rune) bool { return r == ',' || unicode.IsSpace(r) })
	for _, tok := range tokens {
		if seenToken[tok] {
			continue
		}
		seenToken[tok] = true
		switch {
		case strings.EqualFold(tok, "all"):
			refuse(tok, ReasonPublic)
		case awsid.IsAccountID(tok):
			if dir.Allowed(tok) {
				add(tok)
			} else {
				refuse(tok, ReasonNotAllowed)
			}
		case awsid.IsOrganizationARN(tok):
			addARN(tok, tok, ReasonOrgNotAllowed)
		case awsid.IsOrganizationalUnitARN(tok):
			addARN(tok, tok, ReasonOUNotAllowed)
		case awsid.IsOrganizationID(tok):
			addID(tok, organizationIDOf, ReasonOrgNotAllowed)
		case awsid.IsOrganizationalUnitID(tok):
			addID(tok, awsid.OrganizationalUnitID, ReasonOUNotAllowed)
		default:
			members, ok := dir.Group(tok)
			if !ok {
				refuse(tok, ReasonUnknown)
				continue
			}
			for _, m := range members {
				add(m)
			}
		}
	}
	slices.Sort(t.Accounts)
	slices.Sort(t.Organizations)
	slices.Sort(t.OrganizationalUnits)
	return t
}

// QuoteToken renders a token from a tag for a message or log: in double
// quotes, plain text (a control, format or other unprintable character, or
// a double quote, becomes '?') and cut to a readable length (marked "…"),
// so that a hostile tag value can neither forge log lines nor flood a
// message. A well-formed organization or OU ARN is kept whole (it is plain
// ASCII of bounded length), so that the message names the organization or OU.
func QuoteToken(tok string) string {
	const max = 24
	if utf8.RuneCountInString(tok) > max && !awsid.IsOrganizationTarget(tok) {
		r := []rune(tok)
		tok = string(r[:max]) + "…"
	}
	return `"` + strings.Map(func(r rune) rune {
		if r == '"' || r == utf8.RuneError || !unicode.IsPrint(r) {
			return '?'
		}
		return r
	}, tok) + `"`
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

// organizationIDOf returns the id of an organization ARN, "" for an OU's.
func organizationIDOf(arn string) string {
	if awsid.IsOrganizationARN(arn) {
		return awsid.OrganizationID(arn)
	}
	return ""
}
