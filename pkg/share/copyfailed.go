package share

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/amishare/amishare/pkg/amitag"
	"github.com/amishare/amishare/pkg/awsid"
	"github.com/amishare/amishare/pkg/share/rules"
)

// CopyFailed handles an EC2 AMI State Change to failed in the engine's
// region. If the image is a copy amishare made, the source's message says
// that the copy failed; the source's next reconcile copies again with a new
// ClientToken. Any other failed image is nothing to amishare.
func (e *Engine) CopyFailed(ctx context.Context, imageID string, opts Options) (Result, error) {
	res := Result{ImageID: imageID, DryRun: opts.DryRun}
	r := e.read()
	img, err := r.image(ctx, "", imageID)
	if err != nil {
		res.Outcome = OutcomeFailed
		return res, err
	}
	if img == nil {
		res.Outcome, res.Reason = OutcomeGone, "no such image owned by this account"
		return res, nil
	}
	if img.State != ec2types.ImageStateFailed {
		// A direct invoke can send any event: only EC2's word that the image
		// failed, which DescribeImages confirms, is acted on.
		res.Outcome, res.Reason = OutcomeSkipped, fmt.Sprintf("image is %s, not failed: nothing to record", img.State)
		return res, nil
	}
	source := tagMap(img.Tags)[amitag.Source]
	home, sourceID, ok := strings.Cut(source, "/")
	if source == "" || !ok || !awsid.IsRegion(home) || !awsid.IsImageID(sourceID) {
		res.Outcome, res.Reason = OutcomeSkipped, "failed image is not a copy made by amishare"
		return res, nil
	}
	_, invalid, err := e.begin(ctx, &res, opts)
	switch {
	case err != nil:
		return res, err
	case invalid != nil:
		// Without a valid configuration nothing is written, not even a note
		// (its dryRun is unknown); the source's next reconcile reports the error.
		res.Outcome, res.Status, res.Reason = OutcomeBlocked, rules.StatusError, invalid.Error()
		e.logger().WarnContext(ctx, "failed copy not reported on its source", "imageId", imageID, "reason", res.Reason)
		return res, nil
	}
	reason := "copy failed"
	if img.StateReason != nil && img.StateReason.Message != nil {
		reason = "copy failed: " + aws.ToString(img.StateReason.Message)
	}
	res.Reason = fmt.Sprintf("%s of %s", reason, source)
	src, err := r.image(ctx, home, sourceID)
	if err != nil {
		res.Outcome = OutcomeFailed
		return res, err
	}
	if src == nil {
		res.Outcome = OutcomeSkipped
		res.Reason += "; the source no longer exists"
		return res, nil
	}
	srcTags := tagMap(src.Tags)
	if rec := rules.ParseCopiesTag(srcTags[amitag.Copies])[e.Region]; rec != "" && rec != imageID {
		res.Outcome = OutcomeSkipped
		res.Reason += fmt.Sprintf("; the source's copy in %s is now %s", e.Region, rec)
		return res, nil
	}
	status := rules.Status(srcTags[amitag.Status])
	switch status {
	case "", rules.StatusShared, rules.StatusUnshared:
		status = rules.StatusPartial
	}
	msg := fmt.Sprintf("copy %s to %s failed; the next reconcile copies again", imageID, e.Region)
	if m := srcTags[amitag.Message]; m != "" && !strings.Contains(m, msg) {
		msg = m + "; " + msg
	}
	res.Status, res.Message = status, rules.TrimMessage(msg)
	e.logger().WarnContext(ctx, "copy failed", "imageId", sourceID, "copyImageId", imageID, "region", e.Region, "reason", reason)
	if res.DryRun {
		res.Outcome = OutcomePlanned
		return res, nil
	}
	res.Outcome = OutcomeApplied
	if res.TagsWritten, err = e.write(&res).status(ctx, home, sourceID, srcTags, res.Status, res.Message); err != nil {
		res.Outcome = OutcomeFailed
		return res, err
	}
	return res, nil
}
