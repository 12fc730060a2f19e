package rules

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/amishare/amishare/pkg/amitag"
)

// TestSummarizeManyRefused: a message naming more refused tokens than fit
// names whole tokens only, says how many more were refused, and is plain
// text.
func TestSummarizeManyRefused(t *testing.T) {
	var refused []amitag.Refusal
	for i := range 19 {
		refused = append(refused, amitag.Refusal{Token: fmt.Sprintf("%012d", i), Reason: amitag.ReasonNotAllowed})
	}
	refused = append(refused, amitag.Refusal{Token: "bad\u2026token-that-is-long-and-longer", Reason: amitag.ReasonUnknown})
	status, msg := summarize(amitag.Targets{Accounts: []string{"111122223333"}, Refused: refused})
	if status != StatusPartial {
		t.Errorf("status: got %q, want partial", status)
	}
	if n := utf8.RuneCountInString(msg); n > maxMessage {
		t.Errorf("message: got %d characters, want at most %d", n, maxMessage)
	}
	if strings.Contains(msg, `\u`) {
		t.Errorf("message %q holds an escape, want plain text", msg)
	}
	named := 0
	for _, r := range refused {
		if strings.Contains(msg, amitag.QuoteToken(r.Token)) {
			named++
		}
	}
	if want := fmt.Sprintf("; %d more refused (see the log)", len(refused)-named); named == 0 || !strings.HasSuffix(msg, want) {
		t.Errorf("message %q names %d whole tokens; want some, and to end with %q", msg, named, want)
	}
	// Every quote is closed: no token is cut.
	if strings.Count(msg, `"`)%2 != 0 {
		t.Errorf("message %q cuts a token", msg)
	}
}

func TestTrimMessage(t *testing.T) {
	words := strings.Repeat("abcdefghij ", 30)
	parts := strings.Repeat("part one, two; ", 30)
	tests := []struct {
		name, in, wantSuffix string
	}{
		{"short stays", "all good", "all good"},
		{"cut between words", words, "abcdefghij…"},
		{"cut between parts", parts, "two…"},
		{"one long word", strings.Repeat("x", 300), "x…"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := TrimMessage(tc.in)
			if n := utf8.RuneCountInString(got); n > maxMessage {
				t.Errorf("got %d characters, want at most %d", n, maxMessage)
			}
			if !strings.HasSuffix(got, tc.wantSuffix) {
				t.Errorf("got %q, want it to end with %q", got, tc.wantSuffix)
			}
		})
	}
}
