package event

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// sampleID is the image every file in events/ names; an end-to-end test
// substitutes it, so keep it in step with those files.
const sampleID = "ami-0123456789abcdef0"

// samplesGlob finds the sample events, which double as `sam local invoke -e` inputs.
const samplesGlob = "../../events/*.json"

// TestSamples decodes every sample event. A file without an expectation here
// fails the test, so the samples and the decoder cannot drift apart.
func TestSamples(t *testing.T) {
	expect := map[string]struct {
		kind    Kind
		ids     []string
		ignored bool
	}{
		"ami-available.json":             {KindAMIState, []string{sampleID}, false},
		"ami-pending.json":               {KindAMIState, nil, true},
		"ami-failed.json":                {KindAMIState, []string{sampleID}, false},
		"ami-deregistered.json":          {KindAMIState, nil, false},
		"scheduled-sweep.json":           {KindScheduled, nil, false},
		"sqs-sweep-continuation.json":    {KindSweepContinuation, nil, false},
		"tag-change.json":                {KindTagChange, []string{sampleID}, false},
		"tag-change-status-only.json":    {KindTagChange, nil, true},
		"cloudtrail-create-image.json":   {KindAPICall, []string{sampleID}, false},
		"cloudtrail-register-image.json": {KindAPICall, []string{sampleID}, false},
		"cloudtrail-copy-image.json":     {KindAPICall, []string{sampleID}, false},
		"cloudtrail-create-tags.json":    {KindAPICall, []string{sampleID}, false},
		"cloudtrail-delete-tags.json":    {KindAPICall, []string{sampleID}, false},
		// DeleteTags without tags removes every tag of the image.
		"cloudtrail-delete-all-tags.json": {KindAPICall, []string{sampleID}, false},
		"other-event.json":                {KindOther, nil, true},
		// AWS's own sample, verbatim: its image id is a placeholder.
		"aws-doc-ami-available.json": {KindAMIState, nil, true},
	}
	// What the samples that neither reconcile nor are ignored ask for.
	extra := map[string]struct {
		deregistered []string
		sweep        bool
	}{
		"ami-deregistered.json":       {deregistered: []string{sampleID}},
		"scheduled-sweep.json":        {sweep: true},
		"sqs-sweep-continuation.json": {sweep: true},
	}

	files, err := filepath.Glob(samplesGlob)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no files match %s", samplesGlob)
	}
	seen := make(map[string]bool)
	for _, path := range files {
		name := filepath.Base(path)
		seen[name] = true
		t.Run(name, func(t *testing.T) {
			w, ok := expect[name]
			if !ok {
				t.Fatalf("events/%s has no expectation in TestSamples: add one", name)
			}
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Decode(raw)
			if err != nil {
				t.Fatalf("Decode: got error %v, want none", err)
			}
			if got.Kind != w.kind {
				t.Errorf("Kind: got %q, want %q", got.Kind, w.kind)
			}
			a := asksOf(got)
			if !slices.Equal(a.ids, w.ids) {
				t.Errorf("images to reconcile: got %q, want %q", a.ids, w.ids)
			}
			if x := extra[name]; !slices.Equal(a.deregistered, x.deregistered) || a.sweep != x.sweep {
				t.Errorf("images to clean up, sweep: got %q %v, want %q %v", a.deregistered, a.sweep, x.deregistered, x.sweep)
			}
			if (got.Ignored != "") != w.ignored {
				t.Errorf("Ignored: got %q, want ignored=%v", got.Ignored, w.ignored)
			}
			if got.ID == "" || got.Source == "" || got.DetailType == "" || got.Detail == "" {
				t.Errorf("got %+v, want ID, Source, DetailType and Detail all set", got)
			}
			t.Logf("%s: %s (ignored: %q)", got.Kind, got.Detail, got.Ignored)
		})
	}
	for name := range expect {
		if !seen[name] {
			t.Errorf("expectation for events/%s, but the file is missing", name)
		}
	}
}
