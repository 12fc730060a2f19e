package amitag

import (
	"strings"
	"unicode"

	"github.com/amishare/amishare/pkg/awsid"
)

// RegionDirectory answers which regions a regions tag may name: the configuration.
type RegionDirectory interface {
	RegionAllowed(region string) bool
}

// Region refusal reasons.
const (
	ReasonNotRegion        = "not a region name"
	ReasonRegionNotAllowed = "region is not in allowedRegions"
)

// RegionTargets is the regions tag resolved against the configuration.
type RegionTargets struct {
	Regions []string  `json:"regions"`           // allowed destination regions, in tag order, each once
	Refused []Refusal `json:"refused,omitempty"` // in tag order, each token once
}

// ResolveRegions parses the value of the regions tag like the accounts tag:
// tokens separated by white space or commas, each a region name. Only
// regions the configuration allows become destinations; every other token
// is refused with a reason. The image's own region (home) is skipped
// without a refusal: the image is already there. Empty tokens are skipped,
// duplicates count once.
func ResolveRegions(value, home string, dir RegionDirectory) RegionTargets {
	var t RegionTargets
	seen := map[string]bool{}
	for _, tok := range strings.FieldsFunc(value, func(r rune) bool { return r == ',' || unicode.IsSpace(r) }) {
		if seen[tok] {
			continue
		}
		seen[tok] = true
		switch {
		case !awsid.IsRegion(tok):
			t.Refused = append(t.Refused, Refusal{Token: tok, Reason: ReasonNotRegion})
		case tok == home:
		case !dir.RegionAllowed(tok):
			t.Refused = append(t.Refused, Refusal{Token: tok, Reason: ReasonRegionNotAllowed})
		default:
			t.Regions = append(t.Regions, tok)
		}
	}
	return t
}
