package event

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/amishare/amishare/pkg/awsid"
)

/* Example EC2 AMI State Change event (EC2 User Guide, "Monitor AMI events
using Amazon EventBridge"). EC2 sends it when an image becomes available,
failed, deregistered or disabled; there is no event for pending. The ARN in
resources has an empty account field.

{
  "version": "0",
  "id": "example-9f07-51db-246b-d8b8441bcdf0",
  "detail-type": "EC2 AMI State Change",
  "source": "aws.ec2",
  "account": "012345678901",
  "time": "2024-05-14T09:12:44Z",
  "region": "us-east-1",
  "resources": ["arn:aws:ec2:us-east-1::image/ami-0abcdef1234567890"],
  "detail": {
    "RequestId": "example-9dcc-40a6-aa77-7ce457d5442b",
    "ImageId": "ami-0abcdef1234567890",
    "State": "failed",
    "ErrorMessage": "Description of failure"
  }
}
*/

// amiStateDetail is the detail of an EC2 AMI State Change event.
type amiStateDetail struct {
	RequestID    string `json:"RequestId"`
	ImageID      string `json:"ImageId"`
	State        string `json:"State"`
	ErrorMessage string `json:"ErrorMessage"`
}

// Image states an event can report that the engine acts on.
const (
	// stateAvailable is the only state in which an image can be shared.
	stateAvailable = "available"
	// stateFailed matters for copies amishare made: the source's message
	// must say the copy failed.
	stateFailed = "failed"
	// stateDeregistered: the image is gone; its snapshots stay and are cleaned up.
	stateDeregistered = "deregistered"
)

// decodeAMIState fills t from an AMI State Change detail. An available image
// is worth a reconcile; a failed one is reported to the handler (it may be a
// copy amishare made); a deregistered one leaves its snapshots behind, which
// are cleaned up. Pending images cannot be shared yet, and a disabled image
// keeps its snapshots' permissions until it is deregistered.
func decodeAMIState(t *Event, raw json.RawMessage) error {
	var d amiStateDetail
	if err := json.Unmarshal(raw, &d); err != nil {
		return fmt.Errorf("malformed detail: %w", err)
	}
	if d.ImageID == "" {
		return errors.New("detail has no ImageId")
	}
	if d.State == "" {
		return fmt.Errorf("detail for %q has no State", short(d.ImageID))
	}
	t.Detail = fmt.Sprintf("AMI %s state %s", short(d.ImageID), short(d.State))
	if d.ErrorMessage != "" {
		t.Detail += ": " + short(d.ErrorMessage)
	}
	// An id that is not an AMI id names no image this account could have.
	// EC2 never sends one; AWS's documentation samples do
	// ("ami-0123456789example"), and they are pasted into `sam local invoke`.
	// There is nothing to reconcile, and a failed invocation would only be
	// retried to the same end: the event is ignored, with the reason.
	if !awsid.IsImageID(d.ImageID) {
		t.Ignored = fmt.Sprintf("ImageId %q is not an AMI id (ami- and 8 or 17 lowercase hex digits)", short(d.ImageID))
		return nil
	}
	switch d.State {
	case stateAvailable:
		t.Work = Reconcile{ImageIDs: []string{d.ImageID}}
	case stateFailed:
		t.Work = CopyFailed{ImageID: d.ImageID}
	case stateDeregistered:
		t.Work = Cleanup{ImageIDs: []string{d.ImageID}}
	default:
		t.Ignored = fmt.Sprintf("AMI state %q is not %q, %q or %q", short(d.State), stateAvailable, stateFailed, stateDeregistered)
	}
	return nil
}
