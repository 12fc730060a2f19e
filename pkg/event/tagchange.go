package event

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/amishare/amishare/pkg/amitag"
)

/* Example Tag Change on Resource event (Tagging AWS Resources user guide,
"Monitor tag changes with serverless workflows and Amazon EventBridge"), here
for an AMI. changed-tag-keys lists added, updated and deleted keys; tags holds
the tags after the change, so a deleted key is in the first and not the second.
version is a number that some events carry as 4.0, not an integer.

{
  "version": "0",
  "id": "bddcf1d6-0251-35a1-aab0-adc1fb47c11c",
  "detail-type": "Tag Change on Resource",
  "source": "aws.tag",
  "account": "123456789012",
  "time": "2024-05-14T09:20:03Z",
  "region": "us-east-1",
  "resources": ["arn:aws:ec2:us-east-1:123456789012:image/ami-0abcdef1234567890"],
  "detail": {
    "changed-tag-keys": ["amishare:accounts"],
    "service": "ec2",
    "resource-type": "image",
    "version": 3,
    "tags": {
      "Name": "web-2024-05-14",
      "amishare:accounts": "111122223333,444455556666"
    }
  }
}
*/

// tagChangeDetail is the detail of a Tag Change on Resource event. Of the
// tags only the keys are read, to tell a deleted status tag: their values may
// be stale by the time the event is handled, so the engine reads the image's
// tags itself.
type tagChangeDetail struct {
	ChangedTagKeys []string                   `json:"changed-tag-keys"`
	Service        string                     `json:"service"`
	ResourceType   string                     `json:"resource-type"`
	Tags           map[string]json.RawMessage `json:"tags"`
}

// decodeTagChange fills t from a Tag Change on Resource event. The images are
// named only by the ARNs in the envelope's resources.
func decodeTagChange(t *Event, rawResources, raw json.RawMessage) error {
	var resources []string
	if !isNull(rawResources) {
		if err := json.Unmarshal(rawResources, &resources); err != nil {
			return fmt.Errorf("malformed envelope: resources is not a list of strings: %w", err)
		}
	}
	var d tagChangeDetail
	if err := json.Unmarshal(raw, &d); err != nil {
		return fmt.Errorf("malformed detail: %w", err)
	}
	keys := short(strings.Join(d.ChangedTagKeys, ","))
	if keys == "" {
		keys = "(none)"
	}
	// Images are told by their ARN, not by resource-type: AWS documents
	// resource-type only for instances, so the rule does not filter on it.
	if d.Service != "ec2" {
		t.Detail = fmt.Sprintf("tags %s changed on %s %s", keys, short(d.Service), short(d.ResourceType))
		t.Ignored = "tag change is not on an ec2 image"
		return nil
	}
	t.Detail = fmt.Sprintf("tags %s changed on %s", keys, short(strings.Join(resources, ",")))
	if reason := ignoreTagKeys(d.ChangedTagKeys, deleted(d.ChangedTagKeys, d.Tags)); reason != "" {
		t.Ignored = reason
		return nil
	}

	var ids imageIDs
	for _, arn := range resources {
		id, ok := imageIDFromARN(arn)
		if !ok {
			continue
		}
		if err := ids.add(id); err != nil {
			return fmt.Errorf("resource %q: %w", arn, err)
		}
	}
	if len(ids.ids) == 0 {
		t.Ignored = "tag change is not on an ec2 image (no image ARN in resources)"
		return nil
	}
	t.Work = Reconcile{ImageIDs: ids.ids, TagChange: true}
	t.Detail = fmt.Sprintf("tags %s changed on %s", keys, strings.Join(ids.ids, ","))
	return nil
}

// deleted returns the keys of changed that tags (the tags after the change)
// no longer holds.
func deleted(changed []string, tags map[string]json.RawMessage) []string {
	var out []string
	for _, k := range changed {
		if _, ok := tags[k]; !ok {
			out = append(out, k)
		}
	}
	return out
}

// ignoreTagKeys returns why a change to these tag keys is nothing for us, or ""
// when at least one amishare key other than a status key changed, or the
// status tag was deleted (deleted lists the keys removed). Keys are case
// sensitive, as EC2 tag keys are.
//
// The status keys are written by the engine itself: reacting to them would
// loop. The engine never deletes amishare:status, so its deletion is a
// person's, and it may leave an image without any amishare tag, whose
// access must then be revoked. Keys outside the amishare prefix never
// change what is shared; the EventBridge rule already filters them out,
// this is defence in depth.
func ignoreTagKeys(keys, deleted []string) string {
	if slices.Contains(deleted, amitag.Status) {
		return ""
	}
	var status, foreign bool
	for _, k := range keys {
		switch {
		case amitag.IsStatusKey(k):
			status = true
		case strings.HasPrefix(k, amitag.Prefix):
			return ""
		default:
			foreign = true
		}
	}
	switch {
	case status && !foreign:
		return "only amishare status tags changed"
	case status:
		return "only amishare status tags and non-amishare tags changed"
	case foreign:
		return "no amishare tag changed"
	}
	return "no tag keys changed"
}
