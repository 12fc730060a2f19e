package event

import (
	"encoding/json"
	"errors"
	"fmt"
)

/* Example SQS event, as Lambda delivers messages of the sweep's queue
(Lambda Developer Guide, "Using Lambda with Amazon SQS"). The body is the
continuation message a sweep sent when its time ran out.

{
  "Records": [
    {
      "messageId": "059f36b4-87a3-44ab-83d2-661975830a7d",
      "receiptHandle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a...",
      "body": "{\"amishareSweep\":{\"sweepId\":\"...\",\"phase\":\"images\",\"after\":\"ami-0123456789abcdef0\"}}",
      "attributes": {
        "ApproximateReceiveCount": "1",
        "SentTimestamp": "1545082649183",
        "SenderId": "AIDAIENQZJOLO23YVJ4VO",
        "ApproximateFirstReceiveTimestamp": "1545082649185"
      },
      "messageAttributes": {},
      "md5OfBody": "e4e68fb7bd0e697a0ae8f1bb342846b3",
      "eventSource": "aws:sqs",
      "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:my-queue",
      "awsRegion": "us-east-1"
    }
  ]
}
*/

// sqsRecord is the part of one SQS record amishare reads.
type sqsRecord struct {
	MessageID   string `json:"messageId"`
	Body        string `json:"body"`
	EventSource string `json:"eventSource"`
}

const eventSourceSQS = "aws:sqs"

// decodeSQS recognises Lambda's SQS event (an object with Records, no
// detail-type). ok is false for anything else, which is then decoded as an
// EventBridge envelope. Every record must come from SQS and carry a body;
// the body itself is the sweep's to parse.
func decodeSQS(raw []byte) (t Event, ok bool, err error) {
	var fields map[string]json.RawMessage
	if json.Unmarshal(raw, &fields) != nil {
		return Event{}, false, nil
	}
	recs, has := fields["Records"]
	if !has {
		return Event{}, false, nil
	}
	if _, envelope := fields["detail-type"]; envelope {
		return Event{}, false, nil
	}
	t = Event{Kind: KindSweepContinuation, Source: eventSourceSQS}
	var records []sqsRecord
	if err := json.Unmarshal(recs, &records); err != nil {
		return t, true, fmt.Errorf("event: SQS event: malformed Records: %w", err)
	}
	if len(records) == 0 {
		return t, true, errors.New("event: SQS event: no records")
	}
	var bodies []string
	for i, r := range records {
		if r.EventSource != eventSourceSQS {
			return t, true, fmt.Errorf("event: record %d: eventSource %q is not %q", i, short(r.EventSource), eventSourceSQS)
		}
		if r.Body == "" {
			return t, true, fmt.Errorf("event: SQS message %q: empty body", short(r.MessageID))
		}
		bodies = append(bodies, r.Body)
	}
	t.ID, t.Work = records[0].MessageID, Resume{Bodies: bodies}
	t.DetailType = "SQS message"
	t.Detail = fmt.Sprintf("%d sweep continuation message(s)", len(records))
	return t, true, nil
}
