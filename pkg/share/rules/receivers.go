package rules

import (
	"slices"

	"github.com/amishare/amishare/pkg/config"
)

// What a receiver sees of an image shared with it: the owner's tags are
// private to the owner, so the keys the configuration names (mirrorTags)
// are copied onto the image in the receiver, where they are the
// receiver's own tags. Nothing else is ever written there.

// MirrorTags returns the tags to set on the image in a receiver (key to the
// owner's value) and the keys to delete there, for the mirrored keys
// (config mirrorTags): those the owner's image holds, with its values, and
// none of those it does not. theirs are the image's tags in the receiver.
func MirrorTags(keys []string, owner, theirs map[string]string) (set map[string]string, del []string) {
	set = map[string]string{}
	for _, k := range keys {
		v, has := owner[k]
		cur, holds := theirs[k]
		switch {
		case has && (!holds || cur != v):
			set[k] = v
		case !has && holds:
			del = append(del, k)
		}
	}
	slices.Sort(del)
	return set, del
}

// AutoScalingPlan is what one key needs for the receivers' Auto Scaling
// roles: a statement in its policy and a grant per receiver that may use
// the key (see kmspolicy.EditAutoScaling), none for any other account.
type AutoScalingPlan struct {
	KeyARN string `json:"keyArn"`
	// Want are the receivers the key must hold a statement and a grant for.
	Want []string `json:"want,omitempty"`
	// Statements: the key policy's Auto Scaling statements must become Want's.
	Statements bool `json:"statements,omitempty"`
	// Revoke lists the accounts whose grants go (first: a grant never
	// outlives its statement's account); Create, those whose grant is made
	// (last: once the statement allows it).
	Revoke []string `json:"revoke,omitempty"`
	Create []string `json:"create,omitempty"`
}

// AutoScalingWant returns the receivers that get an Auto Scaling grant on a
// key amishare may write whose statements let accounts use it: none unless
// the configuration asks for them (autoScalingGrants, policy mode).
func AutoScalingWant(cfg *config.Config, accounts []string) []string {
	if !cfg.AutoScalingGrants || cfg.KMS != config.ModePolicy {
		return nil
	}
	var out []string
	for _, a := range accounts {
		if cfg.IsReceiver(a) && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	slices.Sort(out)
	return out
}

// DecideAutoScaling compares what a key must hold (want) with the accounts
// its Auto Scaling statements and grants are for; ok is false when they
// agree.
func DecideAutoScaling(keyARN string, want, statements, granted []string) (AutoScalingPlan, bool) {
	p := AutoScalingPlan{KeyARN: keyARN, Want: want}
	p.Statements = !slices.Equal(minus(statements, nil), minus(want, nil))
	p.Revoke = minus(granted, want)
	p.Create = minus(want, granted)
	return p, p.Statements || len(p.Revoke)+len(p.Create) > 0
}
