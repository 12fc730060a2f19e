package share

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/amishare/amishare/pkg/amitag"
	"github.com/amishare/amishare/pkg/config"
	"github.com/amishare/amishare/pkg/share/rules"
)

// The copy part of a reconcile: which copies the source has, which it needs
// (rules.DecideCopies), and the amishare:copies tag that lists them. The
// writer makes the copies (copySteps).

// copyWork is the copy part of one reconcile: what was read, decided and done.
type copyWork struct {
	rules.CopyDecision
	source     string // amishare:source value copies get: HOME/ami-…
	sourceID   string // the source image's id
	name, desc string
	tagged     bool   // the source has an amishare:copies tag
	tagValue   string // its value
}

// planCopies reads the source's existing copies and decides which copies
// to make and which copies' accounts tags to set. A copy (an image tagged
// amishare:source) is never copied again. It makes no call when the image
// names no region, records no copy and needs no re-encryption.
func (e *Engine) planCopies(ctx context.Context, img *ec2types.Image, tags map[string]string, st rules.State, cfg *config.Config, opts Options) (*copyWork, error) {
	w := &copyWork{}
	if _, isCopy := tags[amitag.Source]; isCopy {
		return w, nil
	}
	id := aws.ToString(img.ImageId)
	w.tagValue, w.tagged = tags[amitag.Copies]
	in := rules.CopyInput{
		SourceID: id, Home: e.Region, Name: aws.ToString(img.Name), Accounts: tags[amitag.Accounts],
		Regions: amitag.ResolveRegions(tags[amitag.Regions], e.Region, cfg),
		Keys:    cfg.CopyKeys, Recorded: rules.ParseCopiesTag(w.tagValue), Found: map[string][]rules.FoundCopy{},
		TagChange: opts.TagChange,
	}
	for _, s := range st.Snapshots {
		in.Encrypted = in.Encrypted || s.Encrypted
	}
	for _, k := range st.Keys {
		in.AWSManaged = in.AWSManaged || k.Manager == rules.ManagerAWS
	}
	regions := rules.CopyRegions(in.Regions, in.Recorded, e.Region, rules.Reencrypts(in.AWSManaged, in.Keys, e.Region))
	if len(regions) == 0 && len(in.Regions.Refused) == 0 {
		return w, nil
	}
	if e.Region == "" {
		return nil, fmt.Errorf("copies of %s: the engine does not know its region", id)
	}
	w.source, w.sourceID = e.Region+"/"+id, id
	w.name = in.Name
	w.desc = "amishare copy of " + w.source
	for _, r := range regions {
		found, err := e.read().copies(ctx, r, w.source)
		if err != nil {
			return nil, err
		}
		in.Found[r] = found
	}
	w.CopyDecision = rules.DecideCopies(in)
	for _, r := range w.Pending {
		// Reported, never duplicated: its available event shares it.
		e.logger().InfoContext(ctx, "copy pending", "imageId", id, "region", r, "copyImageId", w.Copies[r])
	}
	return w, nil
}

// logPlannedCopies logs a dry run's copy steps.
func (e *Engine) logPlannedCopies(ctx context.Context, w *copyWork) {
	for _, s := range w.Steps {
		attrs := []any{"imageId", w.sourceID, "action", s.Action, "region", s.Region, "accounts", s.Accounts}
		if s.KMSKeyID != "" {
			attrs = append(attrs, "kmsKeyId", s.KMSKeyID)
		}
		if s.ImageID != "" {
			attrs = append(attrs, "copyImageId", s.ImageID)
		}
		e.logger().InfoContext(ctx, "planned copy change (dry run)", attrs...)
	}
}

// copiesTag returns the amishare:copies tag to write with the status tags,
// if it must change, and logs every copy when they do not all fit.
func (e *Engine) copiesTag(ctx context.Context, w *copyWork) []ec2types.Tag {
	if w.source == "" {
		return nil
	}
	value, left := rules.CopiesTag(w.Copies, w.Order)
	if left > 0 {
		for r, id := range w.Copies {
			e.logger().InfoContext(ctx, "copy of image", "imageId", w.sourceID, "region", r, "copyImageId", id)
		}
	}
	if value == w.tagValue && (w.tagged || value == "") {
		return nil
	}
	return []ec2types.Tag{{Key: aws.String(amitag.Copies), Value: aws.String(value)}}
}
