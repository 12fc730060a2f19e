package event

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/amishare/amishare/pkg/awsid"
)

/* Example AWS API Call via CloudTrail event for EC2 CreateTags. The envelope's
resources is empty for these events: the images are named only in detail.
CreateImage, RegisterImage and CopyImage carry the new image in
responseElements ({"requestId": "...", "imageId": "ami-..."}) and are recorded
in the region the image is created in; the image is usually still pending.
A call that failed has errorCode and errorMessage set and responseElements null.

{
  "version": "0",
  "id": "6f2c9a3e-5d1b-2c4e-8a7f-0b9e8d7c6a51",
  "detail-type": "AWS API Call via CloudTrail",
  "source": "aws.ec2",
  "account": "123456789012",
  "time": "2024-05-14T09:20:01Z",
  "region": "us-east-1",
  "resources": [],
  "detail": {
    "eventVersion": "1.09",
    "userIdentity": {
      "type": "AssumedRole",
      "principalId": "AROAEXAMPLEID:alice",
      "arn": "arn:aws:sts::123456789012:assumed-role/Admin/alice",
      "accountId": "123456789012"
    },
    "eventTime": "2024-05-14T09:20:01Z",
    "eventSource": "ec2.amazonaws.com",
    "eventName": "CreateTags",
    "awsRegion": "us-east-1",
    "sourceIPAddress": "198.51.100.7",
    "userAgent": "aws-cli/2.15.30",
    "requestParameters": {
      "resourcesSet": {"items": [{"resourceId": "ami-0abcdef1234567890"}, {"resourceId": "i-0abcdef1234567890"}]},
      "tagSet": {"items": [{"key": "amishare:accounts", "value": "111122223333"}]}
    },
    "responseElements": {"requestId": "0c7d5a3b-1f2e-4d6c-9b8a-7e6f5d4c3b2a", "_return": true},
    "requestID": "0c7d5a3b-1f2e-4d6c-9b8a-7e6f5d4c3b2a",
    "eventID": "3a1b2c4d-5e6f-4a8b-9c0d-1e2f3a4b5c6d",
    "readOnly": false,
    "eventType": "AwsApiCall",
    "managementEvent": true,
    "recipientAccountId": "123456789012",
    "eventCategory": "Management"
  }
}
*/

// apiCallDetail is the part of a CloudTrail record we read. The parameters and
// response differ per API, so they stay raw until eventName says which shape
// they have.
type apiCallDetail struct {
	EventSource       string          `json:"eventSource"`
	EventName         string          `json:"eventName"`
	ErrorCode         string          `json:"errorCode"`
	UserIdentity      userIdentity    `json:"userIdentity"`
	RequestParameters json.RawMessage `json:"requestParameters"`
	ResponseElements  json.RawMessage `json:"responseElements"`
}

// userIdentity names the caller; only some fields are set for each type.
type userIdentity struct {
	Type        string `json:"type"`
	PrincipalID string `json:"principalId"`
	ARN         string `json:"arn"`
	InvokedBy   string `json:"invokedBy"`
}

// caller returns the most specific name CloudTrail gives for who made the call.
func (u userIdentity) caller() string {
	for _, s := range []string{u.ARN, u.InvokedBy, u.PrincipalID, u.Type} {
		if s != "" {
			return short(s)
		}
	}
	return "unknown caller"
}

// imageResponse is responseElements of CreateImage, RegisterImage and CopyImage.
type imageResponse struct {
	ImageID string `json:"imageId"`
}

// tagsRequest is requestParameters of CreateTags and DeleteTags.
type tagsRequest struct {
	ResourcesSet struct {
		Items []struct {
			ResourceID string `json:"resourceId"`
		} `json:"items"`
	} `json:"resourcesSet"`
	TagSet struct {
		Items []struct {
			Key string `json:"key"`
		} `json:"items"`
	} `json:"tagSet"`
}

const eventSourceEC2 = "ec2.amazonaws.com"

// decodeAPICall fills t from a CloudTrail record of an EC2 API call.
func decodeAPICall(t *Event, raw json.RawMessage) error {
	var d apiCallDetail
	if err := json.Unmarshal(raw, &d); err != nil {
		return fmt.Errorf("malformed detail: %w", err)
	}
	t.Detail = fmt.Sprintf("%s by %s", short(d.EventName), d.UserIdentity.caller())
	if d.EventSource != eventSourceEC2 {
		t.Ignored = fmt.Sprintf("API call to %q, not %s", short(d.EventSource), eventSourceEC2)
		return nil
	}

	var create bool
	switch d.EventName {
	case "CreateImage", "RegisterImage", "CopyImage":
		create = true
	case "CreateTags", "DeleteTags":
	default:
		t.Ignored = fmt.Sprintf("API call %q is not one that creates or tags images", short(d.EventName))
		return nil
	}
	if d.ErrorCode != "" {
		t.Ignored = fmt.Sprintf("%s failed with %s", d.EventName, short(d.ErrorCode))
		return nil
	}
	if create {
		return decodeImageResponse(t, d.ResponseElements)
	}
	return decodeTagsRequest(t, d.EventName, d.RequestParameters)
}

// decodeImageResponse reads the image a successful create, register or copy made.
func decodeImageResponse(t *Event, raw json.RawMessage) error {
	if isNull(raw) {
		return errors.New("successful call has no responseElements")
	}
	var r imageResponse
	if err := json.Unmarshal(raw, &r); err != nil {
		return fmt.Errorf("malformed responseElements: %w", err)
	}
	if r.ImageID == "" {
		return errors.New("responseElements has no imageId")
	}
	if err := checkImageID(r.ImageID); err != nil {
		return fmt.Errorf("responseElements: %w", err)
	}
	t.Work = Reconcile{ImageIDs: []string{r.ImageID}}
	t.Detail += " made " + r.ImageID
	return nil
}

// decodeTagsRequest reads the images a CreateTags or DeleteTags call touched.
// Tagging takes any EC2 resource at once, so ids of other kinds are skipped.
// A call that names tag keys is judged by them as a Tag Change is (a
// DeleteTags naming amishare:status deletes it); DeleteTags without keys
// removes every tag, which always matters.
func decodeTagsRequest(t *Event, eventName string, raw json.RawMessage) error {
	if isNull(raw) {
		return errors.New("successful call has no requestParameters")
	}
	var r tagsRequest
	if err := json.Unmarshal(raw, &r); err != nil {
		return fmt.Errorf("malformed requestParameters: %w", err)
	}
	if len(r.TagSet.Items) > 0 {
		keys := make([]string, len(r.TagSet.Items))
		for i, item := range r.TagSet.Items {
			keys[i] = item.Key
		}
		var removed []string
		if eventName == "DeleteTags" {
			removed = keys
		}
		if reason := ignoreTagKeys(keys, removed); reason != "" {
			t.Ignored = reason
			return nil
		}
	}

	var ids imageIDs
	for _, item := range r.ResourcesSet.Items {
		if !strings.HasPrefix(item.ResourceID, awsid.ImagePrefix) {
			continue
		}
		if err := ids.add(item.ResourceID); err != nil {
			return fmt.Errorf("requestParameters.resourcesSet: %w", err)
		}
	}
	if len(ids.ids) == 0 {
		t.Ignored = "no image among the tagged resources"
		return nil
	}
	t.Work = Reconcile{ImageIDs: ids.ids, TagChange: true}
	t.Detail += " on " + strings.Join(ids.ids, ",")
	return nil
}
