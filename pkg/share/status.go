package share

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
)

// summarize gives the status and message for a plan that is not blocked.
func summarize(t amitag.Targets) (Status, string) {
	var b strings.Builder
	status := StatusShared
	switch {
	case len(t.Accounts) == 0 && len(t.Refused) > 0:
		status = StatusError
		b.WriteString("not shared: every target was refused")
	case len(t.Accounts) == 0:
		status = StatusUnshared
		b.WriteString("not shared with any account")
	default:
		if len(t.Refused) > 0 {
			status = StatusPartial
		}
		fmt.Fprintf(&b, "shared with %d account(s)", len(t.Accounts))
	}
	if len(t.Refused) > 0 {
		b.WriteString("; refused:")
		for i, r := range t.Refused {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, " %s (%s)", amitag.QuoteToken(r.Token), r.Reason)
		}
	}
	return status, trimMessage(b.String())
}

// trimMessage cuts s to the tag value limit, on a rune boundary, marking the cut.
func trimMessage(s string) string {
	if utf8.RuneCountInString(s) <= maxMessage {
		return s
	}
	r := []rune(s)
	return string(r[:maxMessage-1]) + "…"
}
