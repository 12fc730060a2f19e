package amitag

import (
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Directory answers which accounts an accounts tag may name: the configuration.
type Directory interface {
	Allowed(account string) bool
	Group(name string) ([]string, bool)
}

// Refusal is one token of the accounts tag that was not shared with, and why.
type Refusal struct {
	Token  string `json:"token"`
	Reason string `json:"reason"`
}

// Targets is the accounts tag resolved against the configuration.
type Targets struct {
	Accounts []string  `json:"accounts"`          // allowed 12-digit ids, sorted, unique
	Refused  []Refusal `json:"refused,omitempty"` // in tag order, each token once
}

// Refusal reasons.
const (
	ReasonPublic     = "public sharing is never allowed"
	ReasonNotAllowed = "account is not in the allowlist"
	ReasonUnknown    = "not a 12-digit account id or a configured group"
)

// ResolveAccounts parses the value of the accounts tag: tokens separated by
// white space or commas, each a 12-digit account id or a group name from dir.
// Only allowed accounts become targets; every other token is refused with a
// reason. Empty tokens are skipped, duplicates count once.
func ResolveAccounts(value string, dir Directory) Targets {
	var t Targets
	seenToken := map[string]bool{}
	add := func(id string) {
		if !slices.Contains(t.Accounts, id) {
			t.Accounts = append(t.Accounts, id)
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
			t.Refused = append(t.Refused, Refusal{Token: tok, Reason: ReasonPublic})
		case IsAccountID(tok):
			if dir.Allowed(tok) {
				add(tok)
			} else {
				t.Refused = append(t.Refused, Refusal{Token: tok, Reason: ReasonNotAllowed})
			}
		default:
			members, ok := dir.Group(tok)
			if !ok {
				t.Refused = append(t.Refused, Refusal{Token: tok, Reason: ReasonUnknown})
				continue
			}
			for _, id := range members {
				add(id)
			}
		}
	}
	slices.Sort(t.Accounts)
	return t
}

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

// QuoteToken renders a token from a tag for a message or log: quoted, ASCII
// only (control and other characters escaped) and cut to a readable length,
// so that a hostile tag value cannot forge log lines or flood a message.
func QuoteToken(tok string) string {
	const max = 24
	if utf8.RuneCountInString(tok) > max {
		r := []rune(tok)
		tok = string(r[:max]) + "…"
	}
	return strconv.QuoteToASCII(tok)
}
