package amitag

import (
	"fmt"
	"slices"
	"testing"
)

func TestRecord(t *testing.T) {
	if got := RecordImages("ami-0000000b ami-0123456789abcdef0 junk ami-0000000b ami-0000000a"); !slices.Equal(got, []string{"ami-0000000a", "ami-0000000b", "ami-0123456789abcdef0"}) {
		t.Errorf("RecordImages: got %q", got)
	}
	if got := RecordImages(""); got != nil {
		t.Errorf("RecordImages(\"\"): got %q, want none", got)
	}
	v, left := RecordValue([]string{"ami-0000000b", "ami-0000000a", "ami-0000000b"})
	if v != "ami-0000000a ami-0000000b" || left != nil {
		t.Errorf("RecordValue: got %q %q", v, left)
	}
	var many []string
	for i := range 13 {
		many = append(many, fmt.Sprintf("ami-%017x", i))
	}
	v, left = RecordValue(many)
	if len(v) > 256 || len(RecordImages(v)) != 11 || !slices.Equal(left, many[11:]) {
		t.Errorf("RecordValue of 13 long ids: got %d characters, %d ids, left %q", len(v), len(RecordImages(v)), left)
	}
}
