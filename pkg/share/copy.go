package share

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/amishare/amishare/pkg/amitag"
	"github.com/amishare/amishare/pkg/awserr"
	"github.com/amishare/amishare/pkg/awsid"
	"github.com/amishare/amishare/pkg/config"
)

// RegionalEC2 gives the EC2 client of any region: copies are made, found
// and tagged in their destination region.
type RegionalEC2 interface {
	EC2(region string) EC2API
}

// copyWork is the copy part of one reconcile: what was read, decided and done.
type copyWork struct {
	CopyDecision
	source     string // amishare:source value copies get: HOME/ami-…
	sourceID   string // the source image's id
	name, desc string
	tagged     bool   // the source has an amishare:copies tag
	tagValue   string // its value
}

// ec2In returns the EC2 client for region.
func (e *Engine) ec2In(region string) EC2API {
	if region == e.Region || region == "" || e.Regions == nil {
		return e.EC2
	}
	return e.Regions.EC2(region)
}

// planCopies reads the source's existing copies and decides which copies
// to make and which copies' accounts tags to set. A copy (an image tagged
// amishare:source) is never copied again. It makes no call when the image
// names no region, records no copy and needs no re-encryption.
func (e *Engine) planCopies(ctx context.Context, img *ec2types.Image, tags map[string]string, st State, cfg *config.Config) (*copyWork, error) {
	w := &copyWork{}
	if _, isCopy := tags[amitag.Source]; isCopy {
		return w, nil
	}
	id := aws.ToString(img.ImageId)
	w.tagValue, w.tagged = tags[amitag.Copies]
	in := CopyInput{
		SourceID: id, Home: e.Region, Name: aws.ToString(img.Name), Accounts: tags[amitag.Accounts],
		Regions: amitag.ResolveRegions(tags[amitag.Regions], e.Region, cfg),
		Keys:    cfg.CopyKeys, Recorded: ParseCopiesTag(w.tagValue), Found: map[string][]FoundCopy{},
	}
	for _, s := range st.Snapshots {
		in.Encrypted = in.Encrypted || s.Encrypted
	}
	for _, k := range st.Keys {
		in.AWSManaged = in.AWSManaged || k.Manager == managerAWS
	}
	regions := CopyRegions(in.Regions, in.Recorded, e.Region, Reencrypts(in.AWSManaged, in.Keys, e.Region))
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
		found, err := e.findCopies(ctx, r, w.source)
		if err != nil {
			return nil, err
		}
		in.Found[r] = found
	}
	w.CopyDecision = DecideCopies(in)
	for _, r := range w.Pending {
		// Reported, never duplicated: its available event shares it.
		e.logger().InfoContext(ctx, "copy pending", "imageId", id, "region", r, "copyImageId", w.Copies[r])
	}
	return w, nil
}

// findCopies lists the images in region whose amishare:source names source.
func (e *Engine) findCopies(ctx context.Context, region, source string) ([]FoundCopy, error) {
	var out []FoundCopy
	p := ec2.NewDescribeImagesPaginator(e.ec2In(region), &ec2.DescribeImagesInput{
		Owners:  []string{"self"},
		Filters: []ec2types.Filter{{Name: aws.String("tag:" + amitag.Source), Values: []string{source}}},
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("finding copies of %s in %s: %w", source, region, err)
		}
		for _, img := range page.Images {
			tags := tagMap(img.Tags)
			if tags[amitag.Source] != source {
				continue
			}
			accounts, has := tags[amitag.Accounts]
			c := FoundCopy{
				ImageID: aws.ToString(img.ImageId), Region: region, State: string(img.State),
				Accounts: accounts, HasAccounts: has, Created: aws.ToString(img.CreationDate),
			}
			if img.StateReason != nil {
				c.Reason = aws.ToString(img.StateReason.Message)
			}
			out = append(out, c)
		}
	}
	return out, nil
}

// applyCopies makes the planned copies and sets the copies' accounts tags,
// logging each as it is done.
func (e *Engine) applyCopies(ctx context.Context, w *copyWork) error {
	for i := range w.Steps {
		s := &w.Steps[i]
		switch s.Action {
		case CopyActionCopy:
			in := &ec2.CopyImageInput{
				SourceImageId: aws.String(w.sourceID),
				SourceRegion:  aws.String(e.Region),
				Name:          aws.String(s.Name),
				Description:   aws.String(w.desc),
				ClientToken:   aws.String(s.Token),
				// The source's own tags (amishare:regions among them) are never
				// copied: a copy is never copied again.
				CopyImageTags: aws.Bool(false),
				TagSpecifications: []ec2types.TagSpecification{{
					ResourceType: ec2types.ResourceTypeImage,
					Tags: []ec2types.Tag{
						{Key: aws.String(amitag.Accounts), Value: aws.String(s.Accounts)},
						{Key: aws.String(amitag.Source), Value: aws.String(w.source)},
					},
				}},
			}
			if s.KmsKeyID != "" {
				in.Encrypted, in.KmsKeyId = aws.Bool(true), aws.String(s.KmsKeyID)
			}
			out, err := e.ec2In(s.Region).CopyImage(ctx, in)
			if err != nil {
				return fmt.Errorf("copying %s to %s: %w", w.source, s.Region, err)
			}
			s.ImageID = aws.ToString(out.ImageId)
			w.Copies[s.Region] = s.ImageID
			attrs := []any{"imageId", w.sourceID, "copyImageId", s.ImageID, "region", s.Region, "clientToken", s.Token}
			if s.KmsKeyID != "" {
				attrs = append(attrs, "kmsKeyId", s.KmsKeyID)
			}
			if s.RetryOf != "" {
				attrs = append(attrs, "retryOf", s.RetryOf)
			}
			e.logger().InfoContext(ctx, "image copied", attrs...)
		case CopyActionSetAccounts:
			_, err := e.ec2In(s.Region).CreateTags(ctx, &ec2.CreateTagsInput{
				Resources: []string{s.ImageID},
				Tags:      []ec2types.Tag{{Key: aws.String(amitag.Accounts), Value: aws.String(s.Accounts)}},
			})
			if err != nil {
				return fmt.Errorf("setting the accounts tag of copy %s in %s: %w", s.ImageID, s.Region, err)
			}
			e.logger().InfoContext(ctx, "copy accounts tag set", "imageId", w.sourceID,
				"copyImageId", s.ImageID, "region", s.Region, "accounts", s.Accounts)
		}
	}
	return nil
}

// logPlannedCopies logs a dry run's copy steps.
func (e *Engine) logPlannedCopies(ctx context.Context, w *copyWork) {
	for _, s := range w.Steps {
		attrs := []any{"imageId", w.sourceID, "action", s.Action, "region", s.Region, "accounts", s.Accounts}
		if s.KmsKeyID != "" {
			attrs = append(attrs, "kmsKeyId", s.KmsKeyID)
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
	value, left := CopiesTag(w.Copies, w.Order)
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

// CopyFailed handles an EC2 AMI State Change to failed in the engine's
// region. If the image is a copy amishare made, the source's message says
// that the copy failed; the source's next reconcile copies again with a new
// ClientToken. Any other failed image is nothing to amishare.
func (e *Engine) CopyFailed(ctx context.Context, imageID string, opts Options) (Result, error) {
	res := Result{ImageID: imageID, DryRun: opts.DryRun}
	img, err := e.describeImage(ctx, imageID)
	if err != nil {
		res.Outcome = OutcomeFailed
		return res, err
	}
	if img == nil {
		res.Outcome, res.Reason = OutcomeGone, "no such image owned by this account"
		return res, nil
	}
	source := tagMap(img.Tags)[amitag.Source]
	home, sourceID, ok := strings.Cut(source, "/")
	if source == "" || !ok || !awsid.IsRegion(home) || !awsid.IsImageID(sourceID) {
		res.Outcome, res.Reason = OutcomeSkipped, "failed image is not a copy made by amishare"
		return res, nil
	}
	cfg, err := e.loadConfig(ctx, opts.Cache)
	if err != nil {
		if awserr.IsTransient(err) {
			res.Outcome = OutcomeFailed
			return res, err
		}
		// Without a valid configuration nothing is written, not even a note
		// (its dryRun is unknown); the source's next reconcile reports the error.
		res.Outcome, res.Status = OutcomeBlocked, StatusError
		res.Reason = err.Error()
		e.logger().WarnContext(ctx, "failed copy not reported on its source", "imageId", imageID, "reason", res.Reason)
		return res, nil
	}
	res.DryRun = opts.DryRun || cfg.DryRun
	reason := "copy failed"
	if img.StateReason != nil && img.StateReason.Message != nil {
		reason = "copy failed: " + aws.ToString(img.StateReason.Message)
	}
	res.Reason = fmt.Sprintf("%s of %s", reason, source)
	client := e.ec2In(home)
	out, err := client.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{sourceID}, Owners: []string{"self"}})
	if err != nil && !awserr.IsNotFound(err) {
		res.Outcome = OutcomeFailed
		return res, fmt.Errorf("describing source %s: %w", source, err)
	}
	if out == nil || len(out.Images) != 1 {
		res.Outcome = OutcomeSkipped
		res.Reason += "; the source no longer exists"
		return res, nil
	}
	srcTags := tagMap(out.Images[0].Tags)
	if rec := ParseCopiesTag(srcTags[amitag.Copies])[e.Region]; rec != "" && rec != imageID {
		res.Outcome = OutcomeSkipped
		res.Reason += fmt.Sprintf("; the source's copy in %s is now %s", e.Region, rec)
		return res, nil
	}
	status := Status(srcTags[amitag.Status])
	switch status {
	case "", StatusShared, StatusUnshared:
		status = StatusPartial
	}
	msg := fmt.Sprintf("copy %s to %s failed; the next reconcile copies again", imageID, e.Region)
	if m := srcTags[amitag.Message]; m != "" && !strings.Contains(m, msg) {
		msg = m + "; " + msg
	}
	res.Status, res.Message = status, trimMessage(msg)
	e.logger().WarnContext(ctx, "copy failed", "imageId", sourceID, "copyImageId", imageID, "region", e.Region, "reason", reason)
	if res.DryRun {
		res.Outcome = OutcomePlanned
		return res, nil
	}
	res.Outcome = OutcomeApplied
	src := &Engine{EC2: client, Region: home, Log: e.Log}
	if res.TagsWritten, err = src.writeStatus(ctx, sourceID, srcTags, res.Status, res.Message); err != nil {
		res.Outcome = OutcomeFailed
		return res, err
	}
	return res, nil
}
