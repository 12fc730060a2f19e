package rules

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/amishare/amishare/pkg/amitag"
)

// Status is the value of the amishare:status tag.
type Status string

// Status values written on managed images.
const (
	StatusShared   Status = "shared"   // shared with every target in the tag
	StatusPartial  Status = "partial"  // shared, but some tokens of the tag were refused
	StatusUnshared Status = "unshared" // not shared with any account
	StatusError    Status = "error"    // nothing could be done; the message says why
	// StatusCopied: the image cannot be shared itself (AWS managed key); a
	// re-encrypted copy, named in the message, is shared instead.
	StatusCopied Status = "copied"
)

// summarize gives the status and message for a plan that is not blocked.
func summarize(t amitag.Targets) (Status, string) {
	var b strings.Builder
	status := StatusShared
	switch {
	case t.Len() == 0 && len(t.Refused) > 0:
		status = StatusError
		b.WriteString("not shared: every target was refused")
	case t.Len() == 0:
		status = StatusUnshared
		b.WriteString("not shared with any account")
	default:
		if len(t.Refused) > 0 {
			status = StatusPartial
		}
		var parts []string
		for _, p := range []struct {
			n    int
			what string
		}{{len(t.Accounts), "account(s)"}, {len(t.Organizations), "organization(s)"}, {len(t.OrganizationalUnits), "OU(s)"}} {
			if p.n > 0 {
				parts = append(parts, fmt.Sprintf("%d %s", p.n, p.what))
			}
		}
		b.WriteString("shared with " + strings.Join(parts, ", "))
	}
	// Tokens are grouped by reason, each reason said once, so that as many
	// refused tokens as possible fit in the 256 characters of a tag value.
	var reasons []string
	byReason := map[string][]string{}
	for _, r := range t.Refused {
		if _, ok := byReason[r.Reason]; !ok {
			reasons = append(reasons, r.Reason)
		}
		byReason[r.Reason] = append(byReason[r.Reason], amitag.QuoteToken(r.Token))
	}
	for i, reason := range reasons {
		if i == 0 {
			b.WriteString("; refused: ")
		} else {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s (%s)", strings.Join(byReason[reason], ", "), reason)
	}
	return status, TrimMessage(b.String())
}

// TrimMessage cuts s to the tag value limit, on a rune boundary, marking the cut.
func TrimMessage(s string) string {
	if utf8.RuneCountInString(s) <= maxMessage {
		return s
	}
	r := []rune(s)
	return string(r[:maxMessage-1]) + "…"
}
