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
	b.WriteString(refusedText(t.Refused, maxMessage-utf8.RuneCountInString(b.String())))
	return status, TrimMessage(b.String())
}

// refusedText names the refused tokens in at most room characters: grouped
// by reason, each reason said once, in the tag's order, as many whole
// tokens as fit, and then how many more were refused (the log names every
// one).
func refusedText(refused []amitag.Refusal, room int) string {
	for k := len(refused); k >= 0; k-- {
		var reasons []string
		byReason := map[string][]string{}
		for _, r := range refused[:k] {
			if _, ok := byReason[r.Reason]; !ok {
				reasons = append(reasons, r.Reason)
			}
			byReason[r.Reason] = append(byReason[r.Reason], amitag.QuoteToken(r.Token))
		}
		var b strings.Builder
		for i, reason := range reasons {
			if i == 0 {
				b.WriteString("; refused: ")
			} else {
				b.WriteString("; ")
			}
			fmt.Fprintf(&b, "%s (%s)", strings.Join(byReason[reason], ", "), reason)
		}
		switch more := len(refused) - k; {
		case more > 0 && k == 0:
			fmt.Fprintf(&b, "; %d tokens refused (see the log)", more)
		case more > 0:
			fmt.Fprintf(&b, "; %d more refused (see the log)", more)
		}
		if utf8.RuneCountInString(b.String()) <= room {
			return b.String()
		}
	}
	return ""
}

// TrimMessage cuts s to the tag value limit at a boundary between its
// parts ("; "), or else between words, never inside one, marking the cut
// with "…".
func TrimMessage(s string) string {
	if utf8.RuneCountInString(s) <= maxMessage {
		return s
	}
	r := []rune(s)
	head := string(r[:maxMessage-1]) // room for the mark
	for _, sep := range []string{"; ", ", ", " "} {
		// A boundary that keeps less than half the room is not worth it:
		// the next, finer one keeps more.
		if i := strings.LastIndex(head, sep); i > maxMessage/2 || (sep == " " && i > 0) {
			return strings.TrimRight(head[:i], ",;: ") + "…"
		}
	}
	return head + "…"
}
