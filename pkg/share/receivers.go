package share

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/amishare/amishare/pkg/awserr"
	"github.com/amishare/amishare/pkg/receiver"
)

// The receivers' EC2 calls, made through their role: an image shared with
// a receiver is described there with the receiver's own tags, and tagged
// there with the mirrored keys only (the receiver role allows no other).

// errNotVisible: the receiver does not see the image (yet).
var errNotVisible = errors.New("not visible")

// receiverImageTags reads the image's tags as the receiver sees them: its
// own (the owner's are private to the owner). An image the receiver does
// not see is an error wrapping errNotVisible.
func receiverImageTags(ctx context.Context, c *receiver.Clients, imageID string) (map[string]string, error) {
	out, err := c.EC2.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{imageID}})
	if awserr.IsNotFound(err) {
		return nil, fmt.Errorf("describing %s in %s: %w (%w)", imageID, c.Account, errNotVisible, err)
	}
	if err != nil {
		return nil, fmt.Errorf("describing %s in %s: %w", imageID, c.Account, err)
	}
	for _, img := range out.Images {
		if aws.ToString(img.ImageId) == imageID {
			return tagMap(img.Tags), nil
		}
	}
	return nil, fmt.Errorf("%s is %w in %s yet", imageID, errNotVisible, c.Account)
}

// writeReceiverTags sets and deletes the image's mirrored tags in the
// receiver: one CreateTags, one DeleteTags.
func writeReceiverTags(ctx context.Context, c *receiver.Clients, imageID string, set map[string]string, del []string) error {
	if len(set) > 0 {
		var tags []ec2types.Tag
		for _, k := range slices.Sorted(maps.Keys(set)) {
			tags = append(tags, ec2types.Tag{Key: aws.String(k), Value: aws.String(set[k])})
		}
		if _, err := c.EC2.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{imageID}, Tags: tags}); err != nil {
			return fmt.Errorf("tagging %s in %s: %w", imageID, c.Account, err)
		}
	}
	if len(del) > 0 {
		var tags []ec2types.Tag
		for _, k := range del {
			tags = append(tags, ec2types.Tag{Key: aws.String(k)})
		}
		if _, err := c.EC2.DeleteTags(ctx, &ec2.DeleteTagsInput{Resources: []string{imageID}, Tags: tags}); err != nil {
			return fmt.Errorf("untagging %s in %s: %w", imageID, c.Account, err)
		}
	}
	return nil
}
