package event

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/amishare/amishare/pkg/awsid"
)

// FuzzDecode checks that Decode never panics and that whatever it accepts is
// self-consistent. Seeds: the sample events plus testdata/fuzz/FuzzDecode,
// which the fuzzing engine reads on its own (and where it writes crashers).
func FuzzDecode(f *testing.F) {
	files, err := filepath.Glob(samplesGlob)
	if err != nil {
		f.Fatal(err)
	}
	for _, path := range files {
		raw, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}

	f.Fuzz(func(t *testing.T, raw []byte) {
		got, err := Decode(raw)
		if err != nil {
			if err.Error() == "" {
				t.Errorf("Decode(%q): got an empty error message", raw)
			}
			return
		}
		if (got.Ignored != "") == (got.Work != nil) {
			t.Errorf("Decode(%q): got Ignored %q and work %#v: want exactly one of them", raw, got.Ignored, got.Work)
		}
		a := asksOf(got)
		if got.Work != nil && len(a.ids)+len(a.deregistered) == 0 && !a.sweep {
			t.Errorf("Decode(%q): got work %#v that names nothing to do", raw, got.Work)
		}
		for _, id := range a.deregistered {
			if !awsid.IsImageID(id) {
				t.Errorf("Decode(%q): got deregistered image id %q, want ami- and 8 or 17 lowercase hex digits", raw, id)
			}
		}
		seen := make(map[string]bool)
		for _, id := range a.ids {
			if !awsid.IsImageID(id) {
				t.Errorf("Decode(%q): got image id %q, want ami- and 8 or 17 lowercase hex digits", raw, id)
			}
			if seen[id] {
				t.Errorf("Decode(%q): got image id %q twice", raw, id)
			}
			seen[id] = true
		}
		switch got.Kind {
		case KindAMIState, KindTagChange, KindAPICall, KindScheduled, KindSweepContinuation:
		case KindOther:
			if got.Work != nil {
				t.Errorf("Decode(%q): got work %#v for an event of kind other", raw, got.Work)
			}
		default:
			t.Errorf("Decode(%q): got Kind %q, want a known kind", raw, got.Kind)
		}
	})
}
