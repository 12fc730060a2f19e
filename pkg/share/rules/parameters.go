package rules

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"unicode"

	"github.com/amishare/amishare/pkg/amitag"
	"github.com/amishare/amishare/pkg/config"
	"github.com/amishare/amishare/pkg/glob"
)

// The parameters naming the newest image: an image tagged
// amishare:parameter = NAME feeds the SSM parameter NAME when the
// configuration declares NAME (under its prefix, never its own parameter)
// and the image's name matches NAME's pattern. In the owner account the
// parameter names the newest such image that is available and managed; in
// a receiver, the newest of those shared with that account by its id. A
// tagger therefore chooses which parameter an image may feed, never which
// image a parameter names: the configuration's pattern and the images'
// ages decide.

// ParameterImage is one image that may feed a parameter, as read in the
// owner account.
type ParameterImage struct {
	ImageID string `json:"imageId"`
	Name    string `json:"name"`
	State   string `json:"state"`
	Managed bool   `json:"managed"`
	// Parameter is the image's amishare:parameter tag.
	Parameter string `json:"parameter"`
	// Created orders the images: the image's CreationDate, or for a copy
	// amishare made, its source's (a copy is as old as what it copies).
	Created string `json:"created"`
	// Accounts are the accounts the image is shared with by account id:
	// an organization or OU share does not feed receivers.
	Accounts []string `json:"accounts,omitempty"`
}

// ParameterRefusal says why an image's amishare:parameter tag (parameter)
// is refused for an image named imageName, "" when it is not (or the tag
// names nothing). A refused tag blocks the image (status error) and the
// image feeds no parameter.
func ParameterRefusal(cfg *config.Config, parameter, imageName string) string {
	if parameter == "" {
		return ""
	}
	why := ""
	pattern, declared := cfg.NamePattern(parameter)
	switch {
	case cfg.ConfigParameter != "" && parameter == cfg.ConfigParameter:
		why = "is amishare's own configuration parameter"
	case strings.IndexFunc(parameter, unicode.IsSpace) >= 0:
		why = "holds whitespace (names are compared exactly)"
	case !cfg.UnderPrefix(parameter):
		why = fmt.Sprintf("is outside the parameter prefix %s", cfg.ParameterPrefix)
	case !declared:
		why = "is not declared in the configuration (parameters)"
	case !MatchName(pattern, imageName):
		why = fmt.Sprintf("is only for images named %q, not %q", pattern, imageName)
	default:
		return ""
	}
	return fmt.Sprintf("%s %q %s", amitag.Parameter, parameter, why)
}

// Feeds reports whether img may feed parameter in account ("" is the owner
// account; any other account must be one the image is shared with).
func Feeds(cfg *config.Config, img ParameterImage, parameter, account string) bool {
	return img.Parameter == parameter && img.Managed && img.State == "available" &&
		ParameterRefusal(cfg, parameter, img.Name) == "" &&
		(account == "" || slices.Contains(img.Accounts, account))
}

// Newest returns the newest image feeding parameter in account: the
// latest Created, ties broken by image id so that every run agrees.
func Newest(cfg *config.Config, images []ParameterImage, parameter, account string) (ParameterImage, bool) {
	var best ParameterImage
	found := false
	for _, img := range images {
		if !Feeds(cfg, img, parameter, account) {
			continue
		}
		if !found || cmp.Or(cmp.Compare(img.Created, best.Created), cmp.Compare(img.ImageID, best.ImageID)) > 0 {
			best, found = img, true
		}
	}
	return best, found
}

// ParameterAction is what a parameter needs.
type ParameterAction string

// Parameter actions.
const (
	ParameterPut    ParameterAction = "put"
	ParameterDelete ParameterAction = "delete"
)

// ParameterChange is one parameter to write in one account.
type ParameterChange struct {
	Name string `json:"name"`
	// Account is where the parameter is kept: "" the owner account, else a receiver.
	Account string          `json:"account,omitempty"`
	Action  ParameterAction `json:"action"`
	// From is the image the parameter names now ("" when it does not
	// exist), To the image it must name ("" to delete it).
	From string `json:"from,omitempty"`
	To   string `json:"to,omitempty"`
	// Rollback: the image it named no longer feeds it (deregistered,
	// untagged, no longer shared there), and an older one takes its place.
	Rollback bool `json:"rollback,omitempty"`
}

// DecideParameter decides the parameter name of account, which now names
// current ("" when it does not exist): the newest image feeding it, or
// nothing. ok is false when it is as it must be.
func DecideParameter(cfg *config.Config, images []ParameterImage, name, account, current string) (ParameterChange, bool) {
	c := ParameterChange{Name: name, Account: account, From: current}
	newest, found := Newest(cfg, images, name, account)
	switch {
	case found && newest.ImageID == current:
		return c, false
	case found:
		c.Action, c.To = ParameterPut, newest.ImageID
		c.Rollback = current != "" && !slices.ContainsFunc(images, func(img ParameterImage) bool {
			return img.ImageID == current && Feeds(cfg, img, name, account)
		})
	case current == "":
		return c, false
	default:
		c.Action = ParameterDelete
	}
	return c, true
}

// Affected lists the parameters a change to imageID may change in one
// account: the one its tag names (when allowed) and those naming it now
// (current, by parameter name), sorted.
func Affected(cfg *config.Config, tag, imageName, imageID string, current map[string]string) []string {
	var out []string
	if tag != "" && ParameterRefusal(cfg, tag, imageName) == "" {
		out = append(out, tag)
	}
	for name, value := range current {
		if value == imageID && !slices.Contains(out, name) {
			if _, declared := cfg.NamePattern(name); declared {
				out = append(out, name)
			}
		}
	}
	slices.Sort(out)
	return out
}

// MatchName reports whether an AMI name matches a pattern of the
// configuration: * matches any run of characters, ? one character, and
// every other character itself (AMI names may hold [ ] / and spaces, which
// are literal here).
func MatchName(pattern, name string) bool { return glob.Match(pattern, name) }
