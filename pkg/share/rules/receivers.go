package rules

import "slices"

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
