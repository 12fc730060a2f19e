package rules

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/amishare/amishare/pkg/amitag"
	"github.com/amishare/amishare/pkg/awsid"
)

// Copy step actions.
const (
	CopyActionCopy        = "copy"         // CopyImage into Region
	CopyActionSetAccounts = "set-accounts" // set the copy's amishare:accounts tag
)

// Image states as EC2 reports them, for copies.
const (
	imageStateFailed       = "failed"
	imageStatePending      = "pending"
	imageStateDeregistered = "deregistered"
)

// FoundCopy is an image found in a destination region whose amishare:source
// tag names the source image.
type FoundCopy struct {
	ImageID string `json:"imageId"`
	Region  string `json:"region"`
	State   string `json:"state"`
	// Accounts is its amishare:accounts tag; HasAccounts says whether it has one.
	Accounts    string `json:"accounts"`
	HasAccounts bool   `json:"-"`
	Created     string `json:"created,omitempty"` // CreationDate, for a stable order
	Reason      string `json:"reason,omitempty"`  // StateReason message of a failed copy
	// Attempts counts the failed copies to the region (GaveUp only).
	Attempts int `json:"attempts,omitempty"`
}

// CopyStep is one change the copy plan makes: a new copy, or a copy's
// accounts tag brought in step with the source.
type CopyStep struct {
	Action string `json:"action"`
	Region string `json:"region"`
	// ImageID is the copy whose tag is set; for a new copy, the image
	// CopyImage made (empty in a dry run).
	ImageID  string `json:"imageId,omitempty"`
	KMSKeyID string `json:"kmsKeyId,omitempty"` // copy: the key the copy is encrypted with
	Accounts string `json:"accounts"`           // the accounts tag the copy gets
	// Token is CopyImage's ClientToken: the same source, region and failed
	// predecessor always give the same token, so a retried event or two
	// concurrent handlers make one copy.
	Token string `json:"clientToken,omitempty"`
	Name  string `json:"name,omitempty"`
	// RetryOf is the failed copy this copy replaces.
	RetryOf   string `json:"retryOf,omitempty"`
	Reencrypt bool   `json:"reencrypt,omitempty"`
}

// CopyInput is everything the copy decision depends on.
type CopyInput struct {
	SourceID string
	Home     string // the source's region
	Name     string // the source's name
	Accounts string // the source's amishare:accounts value, copied as is
	Regions  amitag.RegionTargets
	// Encrypted: a snapshot of the source is encrypted. AWSManaged: one uses
	// an AWS managed key, so the source can only be shared through a copy.
	Encrypted, AWSManaged bool
	Keys                  map[string]string      // copyKeys
	Recorded              map[string]string      // the source's amishare:copies tag
	Found                 map[string][]FoundCopy // per region looked up
	// TagChange: a person changed the source's tags, so a region whose
	// copies failed MaxCopyAttempts times is tried once more.
	TagChange bool
}

// MaxCopyAttempts is how many failed copies to one region a reconcile or a
// sweep makes before it waits for a tag change: a copy that keeps failing
// (a quota, a key the copy cannot use) is not retried forever.
const MaxCopyAttempts = 3

// CopyDecision is what the copy plan does and what it reports.
type CopyDecision struct {
	Steps []CopyStep `json:"steps,omitempty"`
	// Reencrypt: the source is shared only through a re-encrypted copy in its own region.
	Reencrypt bool `json:"reencrypt,omitempty"`
	// Copies are the live copies in listed regions, region → image id.
	Copies  map[string]string `json:"copies,omitempty"`
	Pending []string          `json:"pending,omitempty"` // regions whose copy is still pending
	NoKey   []string          `json:"noKey,omitempty"`   // regions not copied to: encrypted source, no copyKeys entry
	Failed  []FoundCopy       `json:"failed,omitempty"`  // the latest failed copy of each region being copied again
	// GaveUp lists the regions whose copies failed MaxCopyAttempts times:
	// not copied again until a tag changes.
	GaveUp  []FoundCopy      `json:"gaveUp,omitempty"`
	Refused []amitag.Refusal `json:"refused,omitempty"`
	// Listed says whether the regions tag named any region (or a re-encrypted copy is wanted).
	Listed bool `json:"-"`
	// Order is the regions tag's order, which amishare:copies follows.
	Order []string `json:"-"`
	// Home is the source's region.
	Home string `json:"-"`
}

// CopyRegions lists the regions whose copies must be looked up: those the
// source should be in (the listed ones, and its own for a re-encrypted
// copy) and those the copies tag records (a region removed from the tag).
func CopyRegions(regions amitag.RegionTargets, recorded map[string]string, home string, reencrypt bool) []string {
	out := slices.Clone(regions.Regions)
	if reencrypt {
		out = append(out, home)
	}
	for r := range recorded {
		out = append(out, r)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Reencrypts reports whether the source must be shared through a
// re-encrypted copy: a snapshot uses an AWS managed key, and a key is
// configured for the source's own region.
func Reencrypts(awsManaged bool, keys map[string]string, home string) bool {
	return awsManaged && keys[home] != ""
}

// DecideCopies computes, without any I/O, which copies to make and which
// copies' accounts tags to set.
func DecideCopies(in CopyInput) CopyDecision {
	d := CopyDecision{Reencrypt: Reencrypts(in.AWSManaged, in.Keys, in.Home), Copies: map[string]string{}, Refused: in.Regions.Refused, Home: in.Home, Order: in.Regions.Regions}
	wanted := slices.Clone(in.Regions.Regions)
	if d.Reencrypt {
		wanted = append(wanted, in.Home)
	}
	d.Listed = len(wanted) > 0 || len(in.Regions.Refused) > 0
	for _, r := range CopyRegions(in.Regions, in.Recorded, in.Home, d.Reencrypt) {
		live, failed := pickCopy(in.Found[r], in.Recorded[r])
		if !slices.Contains(wanted, r) {
			// Dropped from the tag (or no longer allowed): unshare, never deregister.
			if live != nil && live.Accounts != "" {
				d.Steps = append(d.Steps, CopyStep{Action: CopyActionSetAccounts, Region: r, ImageID: live.ImageID, Accounts: ""})
			}
			continue
		}
		if live != nil {
			d.Copies[r] = live.ImageID
			if live.State == imageStatePending {
				d.Pending = append(d.Pending, r)
			}
			if !live.HasAccounts || live.Accounts != in.Accounts {
				d.Steps = append(d.Steps, CopyStep{Action: CopyActionSetAccounts, Region: r, ImageID: live.ImageID, Accounts: in.Accounts})
			}
			continue
		}
		key := in.Keys[r]
		if in.Encrypted && key == "" {
			// Never let a copy fall back to the AWS managed key: it could not be shared.
			d.NoKey = append(d.NoKey, r)
			continue
		}
		prev := ""
		if n := len(failed); n >= MaxCopyAttempts && !in.TagChange {
			last := failed[n-1]
			last.Attempts = n
			d.GaveUp = append(d.GaveUp, last)
			continue
		} else if n > 0 {
			prev = failed[n-1].ImageID
			d.Failed = append(d.Failed, failed[n-1])
		} else if rec := in.Recorded[r]; rec != "" {
			prev = rec // recorded but gone: a new token, so EC2 cannot answer with the old image
		}
		d.Steps = append(d.Steps, CopyStep{
			Action: CopyActionCopy, Region: r, KMSKeyID: key, Accounts: in.Accounts,
			Token: CopyToken(in.SourceID, r, retryKey(prev, failed)), Name: copyName(in.Name, in.Home, in.SourceID, len(failed)+1),
			RetryOf: prev, Reencrypt: r == in.Home,
		})
	}
	return d
}

// pickCopy returns the live copy (any state but failed or deregistered),
// preferring the recorded one, then the oldest; and the failed copies,
// oldest first.
func pickCopy(found []FoundCopy, recorded string) (*FoundCopy, []FoundCopy) {
	var live *FoundCopy
	var failed []FoundCopy
	sorted := slices.Clone(found)
	slices.SortStableFunc(sorted, func(a, b FoundCopy) int {
		if c := strings.Compare(a.Created, b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.ImageID, b.ImageID)
	})
	for i := range sorted {
		c := &sorted[i]
		switch c.State {
		case imageStateFailed:
			failed = append(failed, *c)
		case imageStateDeregistered:
		default:
			if live == nil || c.ImageID == recorded {
				live = c
			}
		}
	}
	return live, failed
}

// CopyToken derives CopyImage's ClientToken (at most 64 ASCII characters)
// from the source, the destination region and the failed copy it replaces.
func CopyToken(sourceID, region, retryOf string) string {
	sum := sha256.Sum256([]byte(sourceID + "|" + region + "|" + retryOf))
	return "amishare-" + hex.EncodeToString(sum[:16])
}

// retryKey is what a retry's token is derived from besides the source and
// region: the failed copy it replaces or, when several failed, all of them
// (CreationDate has second precision: two copies that failed within one
// second cannot be told apart by age, and a token derived from the wrong
// one would make EC2 answer with a copy that already failed).
func retryKey(prev string, failed []FoundCopy) string {
	if len(failed) < 2 {
		return prev
	}
	ids := make([]string, len(failed))
	for i, f := range failed {
		ids[i] = f.ImageID
	}
	slices.Sort(ids)
	return strings.Join(ids, " ")
}

// copyName names a copy: unique in its region (it names the source) and
// within AMI name rules (3 to 128 characters of letters, digits, spaces and ()[]./-'@_).
func copyName(name, home, sourceID string, attempt int) string {
	suffix := fmt.Sprintf(" [copy of %s/%s]", home, sourceID)
	if attempt > 1 {
		suffix = fmt.Sprintf(" [copy of %s/%s attempt %d]", home, sourceID, attempt)
	}
	var b strings.Builder
	for _, r := range name {
		if strings.ContainsRune("()[] ./-'@_", r) || r < 128 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			b.WriteRune(r)
		}
	}
	base := b.String()
	if max := 128 - len(suffix); len(base) > max {
		base = base[:max]
	}
	return strings.TrimSpace(base + suffix)
}

// maxTagValue is the longest tag value EC2 accepts.
const maxTagValue = 256

// CopiesTag renders the amishare:copies value, "region=ami-… region=ami-…"
// with the regions of order first, in that order (the regions tag's), then
// any other (a re-encrypted copy, ...) sorted by region; and how many
// copies did not fit in 256 characters.
func CopiesTag(copies map[string]string, order []string) (string, int) {
	var regions []string
	for _, r := range order {
		if _, ok := copies[r]; ok && !slices.Contains(regions, r) {
			regions = append(regions, r)
		}
	}
	for _, r := range slices.Sorted(maps.Keys(copies)) {
		if !slices.Contains(regions, r) {
			regions = append(regions, r)
		}
	}
	var b strings.Builder
	left := 0
	for _, r := range regions {
		entry := r + "=" + copies[r]
		n := len(entry)
		if b.Len() > 0 {
			n++
		}
		if b.Len()+n > maxTagValue {
			left++
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(entry)
	}
	return b.String(), left
}

// ParseCopiesTag reads the amishare:copies value; malformed entries are skipped.
func ParseCopiesTag(value string) map[string]string {
	out := map[string]string{}
	for _, f := range strings.Fields(value) {
		r, id, ok := strings.Cut(f, "=")
		if ok && awsid.IsRegion(r) && awsid.IsImageID(id) {
			out[r] = id
		}
	}
	return out
}

// summarize folds the copies into the status and message of the source.
func (d CopyDecision) Summarize(status Status, msg string, dryRun bool) (Status, string) {
	if !d.Listed && len(d.Steps) == 0 && len(d.Copies) == 0 {
		return status, msg
	}
	if d.Reencrypt && status != StatusError {
		status = StatusCopied
		id := d.reencrypted()
		switch {
		case id != "":
		case dryRun:
			id = "(dry run)"
		default:
			id = "(not made)"
		}
		msg = fmt.Sprintf("not shared itself (AWS managed key); shared through re-encrypted copy %s in %s", id, d.Home)
	}
	// Copies that exist, and (in a dry run, when nothing was made) those
	// that would be made.
	var parts, copied, planned []string
	for r := range d.Copies {
		if !d.Reencrypt || r != d.Home {
			copied = append(copied, r)
		}
	}
	for _, s := range d.Steps {
		if s.Action == CopyActionCopy && !s.Reencrypt {
			if dryRun {
				planned = append(planned, s.Region)
			} else {
				copied = append(copied, s.Region)
			}
		}
	}
	slices.Sort(copied)
	if copied = slices.Compact(copied); len(copied) > 0 {
		parts = append(parts, "copies in "+strings.Join(copied, ", "))
	}
	if slices.Sort(planned); len(planned) > 0 {
		parts = append(parts, "would copy to "+strings.Join(planned, ", "))
	}
	for _, f := range d.Failed {
		parts = append(parts, fmt.Sprintf("copy %s to %s failed, copying again", f.ImageID, f.Region))
	}
	for _, f := range d.GaveUp {
		parts = append(parts, fmt.Sprintf("copies to %s failed %d times (last %s): not copied again until a tag of the image changes", f.Region, f.Attempts, f.ImageID))
	}
	if len(d.NoKey) > 0 {
		var keys []string
		for _, r := range d.NoKey {
			keys = append(keys, fmt.Sprintf("copyKeys[%q]", r))
		}
		parts = append(parts, fmt.Sprintf("not copied to %s: the image is encrypted and no key is configured for the region (set %s)",
			strings.Join(d.NoKey, ", "), strings.Join(keys, ", ")))
	}
	if len(d.Refused) > 0 {
		var groups, reasons []string
		byReason := map[string][]string{}
		for _, r := range d.Refused {
			if _, ok := byReason[r.Reason]; !ok {
				reasons = append(reasons, r.Reason)
			}
			byReason[r.Reason] = append(byReason[r.Reason], amitag.QuoteToken(r.Token))
		}
		for _, reason := range reasons {
			groups = append(groups, fmt.Sprintf("%s (%s)", strings.Join(byReason[reason], ", "), reason))
		}
		parts = append(parts, "refused regions: "+strings.Join(groups, "; "))
	}
	if _, left := CopiesTag(d.Copies, d.Order); left > 0 {
		parts = append(parts, fmt.Sprintf("%d copies not listed in %s (256 characters): see the log", left, amitag.Copies))
	}
	if len(d.NoKey)+len(d.Refused)+len(d.GaveUp) > 0 && status != StatusError {
		switch {
		case len(d.Copies) == 0 && !d.makesCopy():
			status = StatusError // no listed region could be copied to, as when every account is refused
		case status == StatusShared || status == StatusUnshared:
			status = StatusPartial
		}
	}
	if len(parts) > 0 {
		msg += "; " + strings.Join(parts, "; ")
	}
	return status, TrimMessage(msg)
}

func (d CopyDecision) makesCopy() bool {
	for _, s := range d.Steps {
		if s.Action == CopyActionCopy {
			return true
		}
	}
	return false
}

// reencrypted returns the re-encrypted copy's id, once it exists.
func (d CopyDecision) reencrypted() string {
	for _, s := range d.Steps {
		if s.Action == CopyActionCopy && s.Reencrypt {
			return s.ImageID
		}
	}
	return d.Copies[d.Home]
}
