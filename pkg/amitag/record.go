package amitag

import (
	"slices"
	"strings"

	"github.com/amishare/amishare/pkg/awsid"
)

// maxTagValue is the longest tag value EC2 accepts.
const maxTagValue = 256

// RecordImages reads a snapshot's Image tag (the record): the ids of the
// images amishare shared the snapshot for, separated by spaces, sorted and
// each once. Anything that is not an image id is no record amishare wrote
// and is left out.
func RecordImages(value string) []string {
	var ids []string
	for _, f := range strings.Fields(value) {
		if awsid.IsImageID(f) {
			ids = append(ids, f)
		}
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

// RecordValue renders the record naming ids, sorted, as many as fit in a
// tag value (11 of the longest ids); left lists those that did not fit.
func RecordValue(ids []string) (value string, left []string) {
	ids = slices.Compact(slices.Sorted(slices.Values(ids)))
	var b strings.Builder
	for _, id := range ids {
		n := len(id)
		if b.Len() > 0 {
			n++
		}
		if b.Len()+n > maxTagValue {
			left = append(left, id)
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(id)
	}
	return b.String(), left
}
