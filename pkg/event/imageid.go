package event

import (
	"fmt"
	"strings"

	"github.com/amishare/amishare/pkg/awsid"
)

// checkImageID returns an error naming id when it is not an image id.
func checkImageID(id string) error {
	if !awsid.IsImageID(id) {
		return fmt.Errorf("invalid image id %q: want ami- and 8 or 17 lowercase hex digits", id)
	}
	return nil
}

// imageIDs collects image ids in order, dropping repeats. It is not safe to
// copy after use.
type imageIDs struct {
	ids  []string
	seen map[string]bool
}

// add validates id and appends it unless it was added before.
func (s *imageIDs) add(id string) error {
	if err := checkImageID(id); err != nil {
		return err
	}
	if s.seen[id] {
		return nil
	}
	if s.seen == nil {
		s.seen = make(map[string]bool)
	}
	s.seen[id] = true
	s.ids = append(s.ids, id)
	return nil
}

// imageIDFromARN returns the image id in an EC2 image ARN, such as
// arn:aws:ec2:us-east-1:123456789012:image/ami-0123456789abcdef0. The account
// field may be empty (AMI State Change events leave it out) and the partition
// may be aws-cn or aws-us-gov. ok is false for anything that is not an EC2
// image ARN; the returned id is not validated.
func imageIDFromARN(arn string) (id string, ok bool) {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "ec2" {
		return "", false
	}
	return strings.CutPrefix(parts[5], "image/")
}
