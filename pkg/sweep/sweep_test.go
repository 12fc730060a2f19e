package sweep

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseContinuation(t *testing.T) {
	valid := Cursor{SweepID: "s1", Started: time.Date(2024, 6, 2, 18, 0, 0, 0, time.UTC), Phase: PhaseImages, After: "ami-0123456789abcdef0", Invocations: 2}
	tests := []struct {
		name, body string
		want       *Cursor
		err        string
	}{
		{"round trip", valid.Body(), &valid, ""},
		{"gone phase from the start", `{"amishareSweep":{"sweepId":"s1","phase":"gone"}}`, &Cursor{SweepID: "s1", Phase: PhaseGone}, ""},
		{"not JSON", `ami-0123`, nil, "not valid JSON"},
		{"another message", `{"hello":"world"}`, nil, "no amishareSweep"},
		{"no sweep id", `{"amishareSweep":{"phase":"images"}}`, nil, "no sweepId"},
		{"unknown phase", `{"amishareSweep":{"sweepId":"s1","phase":"all"}}`, nil, `phase "all"`},
		{"after not an image id", `{"amishareSweep":{"sweepId":"s1","phase":"images","after":"ami-x; rm -rf"}}`, nil, "not an AMI id"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseContinuation(tc.body)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			if !got.Started.Equal(tc.want.Started) {
				t.Errorf("Started: got %v, want %v", got.Started, tc.want.Started)
			}
			got.Started, tc.want.Started = time.Time{}, time.Time{}
			if got != *tc.want {
				t.Errorf("got %+v, want %+v", got, *tc.want)
			}
		})
	}
}

func TestAfter(t *testing.T) {
	ids := []string{"ami-01", "ami-03", "ami-05"}
	tests := []struct {
		cursor string
		want   []string
	}{
		{"", ids},
		{"ami-01", ids[1:]},
		{"ami-02", ids[1:]}, // the cursor's image is gone: resume at the next id
		{"ami-05", nil},
		{"ami-09", nil},
	}
	for _, tc := range tests {
		if got := after(ids, tc.cursor); !slices.Equal(got, tc.want) && (len(got) != 0 || len(tc.want) != 0) {
			t.Errorf("after(%q): got %v, want %v", tc.cursor, got, tc.want)
		}
	}
}

// TestEachStopsOnAPrefix: the ids done are always a prefix of the list,
// at least one per invocation, and every id started is finished.
func TestEachStopsOnAPrefix(t *testing.T) {
	ids := []string{"ami-01", "ami-02", "ami-03", "ami-04", "ami-05", "ami-06"}
	tests := []struct {
		name        string
		stop        func() time.Time
		wantAll     bool
		wantAtLeast int
	}{
		{"no deadline", func() time.Time { return time.Time{} }, true, len(ids)},
		{"deadline passed", func() time.Time { return time.Now().Add(-time.Second) }, false, 1},
		{"deadline during the run", func() time.Time { return time.Now().Add(30 * time.Millisecond) }, false, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &Sweeper{Workers: 3}
			done := make(chan string, len(ids))
			last, stopped := s.each(t.Context(), ids, tc.stop(), nil, func(_ context.Context, id string) bool {
				time.Sleep(20 * time.Millisecond)
				done <- id
				return true
			})
			close(done)
			var got []string
			for id := range done {
				got = append(got, id)
			}
			slices.Sort(got)
			if len(got) < tc.wantAtLeast || !slices.Equal(got, ids[:len(got)]) {
				t.Fatalf("done: got %v, want a prefix of %v with at least %d", got, ids, tc.wantAtLeast)
			}
			if last != got[len(got)-1] || stopped != (len(got) < len(ids)) || (tc.wantAll && stopped) {
				t.Errorf("got last %q stopped %v for %v done", last, stopped, got)
			}
		})
	}
}

// TestEachLeavesDeferredIds: an id its work leaves undone (throttled until
// its time ran out) ends the prefix: the cursor stops before it, whatever
// was done after it.
func TestEachLeavesDeferredIds(t *testing.T) {
	ids := []string{"ami-01", "ami-02", "ami-03", "ami-04", "ami-05", "ami-06"}
	tests := []struct {
		name     string
		undone   []string
		wantLast string
	}{
		{"none", nil, "ami-06"},
		{"one in the middle", []string{"ami-03"}, "ami-02"},
		{"two", []string{"ami-05", "ami-02"}, "ami-01"},
		{"the first", []string{"ami-01"}, ""},
		{"the last", []string{"ami-06"}, "ami-05"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &Sweeper{Workers: 3}
			tried := make(chan string, len(ids))
			last, stopped := s.each(t.Context(), ids, time.Time{}, nil, func(_ context.Context, id string) bool {
				tried <- id
				return !slices.Contains(tc.undone, id)
			})
			close(tried)
			if n := len(tried); n != len(ids) {
				t.Errorf("tried %d ids, want all %d (without a deadline every id is started)", n, len(ids))
			}
			if last != tc.wantLast || stopped != (len(tc.undone) > 0) {
				t.Errorf("got last %q stopped %v, want %q %v", last, stopped, tc.wantLast, len(tc.undone) > 0)
			}
		})
	}
}
