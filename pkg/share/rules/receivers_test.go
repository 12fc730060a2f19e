package rules

import (
	"maps"
	"slices"
	"testing"
)

func TestMirrorTags(t *testing.T) {
	keys := []string{"team", "os"}
	for _, tc := range []struct {
		name          string
		owner, theirs map[string]string
		set           map[string]string
		del           []string
	}{
		{"new", map[string]string{"team": "a", "os": "al2023", "cost": "1", "amishare:accounts": "x"}, nil, map[string]string{"team": "a", "os": "al2023"}, nil},
		{"in sync", map[string]string{"team": "a"}, map[string]string{"team": "a", "mine": "x"}, map[string]string{}, nil},
		{"changed and removed", map[string]string{"team": "b"}, map[string]string{"team": "a", "os": "al2023", "mine": "x"}, map[string]string{"team": "b"}, []string{"os"}},
		{"the receiver's own keys stay", map[string]string{}, map[string]string{"mine": "x", "cost": "2"}, map[string]string{}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			set, del := MirrorTags(keys, tc.owner, tc.theirs)
			if !maps.Equal(set, tc.set) || !slices.Equal(del, tc.del) {
				t.Errorf("got set %v del %v, want %v %v", set, del, tc.set, tc.del)
			}
		})
	}
}
