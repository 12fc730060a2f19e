package rules

import (
	"maps"
	"slices"
	"testing"

	"github.com/amishare/amishare/pkg/config"
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

func TestDecideAutoScaling(t *testing.T) {
	cfg := consumerConfig(t)
	cfg.Receivers, cfg.AutoScalingGrants = []string{acctA, acctB}, true
	if got := AutoScalingWant(cfg, []string{acctC, acctB, acctA, acctA}); !slices.Equal(got, []string{acctA, acctB}) {
		t.Errorf("AutoScalingWant = %v, want the receivers among the key's accounts", got)
	}
	cfg.KMS = config.ModeGrant
	if got := AutoScalingWant(cfg, []string{acctA}); got != nil {
		t.Errorf("grant mode: AutoScalingWant = %v, want none", got)
	}
	cfg.KMS, cfg.AutoScalingGrants = config.ModePolicy, false
	if got := AutoScalingWant(cfg, []string{acctA}); got != nil {
		t.Errorf("autoScalingGrants off: AutoScalingWant = %v, want none", got)
	}
	for _, tc := range []struct {
		name                      string
		want, statements, granted []string
		plan                      AutoScalingPlan
		changes                   bool
	}{
		{"in sync", []string{acctA}, []string{acctA}, []string{acctA}, AutoScalingPlan{Want: []string{acctA}}, false},
		{"new receiver", []string{acctA, acctB}, []string{acctA}, []string{acctA}, AutoScalingPlan{Want: []string{acctA, acctB}, Statements: true, Create: []string{acctB}}, true},
		{"grant missing (no Auto Scaling role then)", []string{acctA}, []string{acctA}, nil, AutoScalingPlan{Want: []string{acctA}, Create: []string{acctA}}, true},
		{"receiver leaves", nil, []string{acctA}, []string{acctA}, AutoScalingPlan{Statements: true, Revoke: []string{acctA}}, true},
		{"a grant without its statement", []string{acctA}, []string{acctA}, []string{acctA, acctB}, AutoScalingPlan{Want: []string{acctA}, Revoke: []string{acctB}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, changes := DecideAutoScaling("k", tc.want, tc.statements, tc.granted)
			tc.plan.KeyARN = "k"
			if changes != tc.changes || !slices.Equal(p.Want, tc.plan.Want) || p.Statements != tc.plan.Statements ||
				!slices.Equal(p.Revoke, tc.plan.Revoke) || !slices.Equal(p.Create, tc.plan.Create) {
				t.Errorf("got %+v (changes %v), want %+v (changes %v)", p, changes, tc.plan, tc.changes)
			}
		})
	}
}
