// Package event turns an EventBridge event, as delivered to the Lambda, into
// an Event whose Work says what to do (reconcile images, record a failed
// copy, clean up after deregistered images, sweep, resume a sweep), or why
// there is nothing to do. The dispatcher switches on the type of the work.
//
// Decoding happens in two steps. The envelope is read into a struct that
// holds only the fields amishare uses (id, source, detail-type, and detail as
// raw JSON; resources stays raw until a shape needs it); a switch on source
// and detail-type then picks the shape of detail, and each shape lives in its
// own file with a real example payload in its comment.
//
// Fields amishare does not use are never decoded, so they can never make an
// event fail: AWS's own documentation samples carry "time":
// "yyyy-mm-ddThh:mm:ssZ", which aws-lambda-go's events.EventBridgeEvent
// (time.Time) would reject, and people paste those samples into
// `sam local invoke`.
//
// Decode never calls AWS: it only reads the event. Everything it reports as an
// image is worth a reconcile; the engine reads the image's current tags itself,
// because tags carried by an event can be stale by the time it is handled.
package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/amishare/amishare/pkg/awsid"
)

// Kind names the shape of event that arrived.
type Kind string

// The kinds of event Decode tells apart.
const (
	KindAMIState  Kind = "ami-state-change" // source aws.ec2, detail-type "EC2 AMI State Change"
	KindTagChange Kind = "tag-change"       // source aws.tag, detail-type "Tag Change on Resource"
	KindAPICall   Kind = "api-call"         // source aws.ec2, detail-type "AWS API Call via CloudTrail"
	KindScheduled Kind = "scheduled"        // source aws.events, detail-type "Scheduled Event": sweep
	// KindSweepContinuation is not an EventBridge event but Lambda's SQS
	// event: messages from the sweep's own queue, each naming where an
	// unfinished sweep resumes.
	KindSweepContinuation Kind = "sweep-continuation"
	KindOther             Kind = "other"
	// KindOperator and KindSweep are no event: an operator asked for a
	// reconcile (the CLI's plan and apply) or a sweep (the CLI's sweep).
	KindOperator Kind = "operator"
	KindSweep    Kind = "sweep"
)

// Sources and detail-types of the events Decode understands.
const (
	sourceEC2    = "aws.ec2"
	sourceTag    = "aws.tag"
	sourceEvents = "aws.events"

	detailTypeAMIState  = "EC2 AMI State Change"
	detailTypeTagChange = "Tag Change on Resource"
	detailTypeAPICall   = "AWS API Call via CloudTrail"
	detailTypeScheduled = "Scheduled Event"
)

// Event is one decoded event: its envelope, and the work it asks for.
type Event struct {
	Kind       Kind
	ID         string // the envelope's id
	Source     string
	DetailType string
	Detail     string // short human description, e.g. "AMI ami-1 state available", "CreateTags by arn:..."
	// Region is the envelope's region: where the images are. The handler acts
	// there, whatever region it runs in. Empty when the event names none.
	Region string
	// Ignored, when not empty, is a short reason why there is nothing to do
	// (a success, not an error); Work is then nil.
	Ignored string
	// Work is what to do: Reconcile, CopyFailed, Cleanup, Sweep or Resume.
	Work Work
}

// Work is what an event asks of amishare: one of Reconcile, CopyFailed,
// Cleanup, Sweep and Resume.
type Work interface{ work() }

// Reconcile asks to make each image's sharing match its tags.
type Reconcile struct {
	ImageIDs []string // deduplicated, in event order
	// TagChange: a person changed the images' amishare tags (Tag Change on
	// Resource, CloudTrail CreateTags or DeleteTags).
	TagChange bool
}

// CopyFailed reports an image that EC2 says failed: if it is a copy
// amishare made, its source must say so.
type CopyFailed struct {
	ImageID string
}

// Cleanup asks to revoke what amishare shared for images that are gone
// (deregistered).
type Cleanup struct {
	ImageIDs []string
}

// Sweep asks for a sweep of every managed image (the scheduled event).
type Sweep struct{}

// Resume asks to resume the unfinished sweeps the bodies name (messages of
// the sweep's own queue).
type Resume struct {
	Bodies []string
}

func (Reconcile) work()  {}
func (CopyFailed) work() {}
func (Cleanup) work()    {}
func (Sweep) work()      {}
func (Resume) work()     {}

// eventEnvelope is the part of an EventBridge event amishare reads. version,
// account and time are left out on purpose: nothing here uses them. region
// says where the images are: the handler acts there.
type eventEnvelope struct {
	ID         string          `json:"id"`
	Region     json.RawMessage `json:"region"` // a string; anything else means none
	Source     string          `json:"source"`
	DetailType string          `json:"detail-type"`
	Resources  json.RawMessage `json:"resources"` // decoded only by the shapes that use it
	Detail     json.RawMessage `json:"detail"`
}

// Decode parses an EventBridge envelope as delivered to the Lambda.
// It returns an error only when the input is not valid JSON or a known event's detail is malformed;
// any other event is returned with Kind KindOther and Ignored set.
//
// A known event (by source and detail-type) whose envelope fields that
// amishare uses have the wrong JSON types is treated like a malformed detail. Every error describes
// bad input: decoding the same bytes again gives the same error, so a caller
// should report it rather than retry. On error the returned Event still
// carries whatever envelope fields could be read, for logging.
func Decode(raw []byte) (Event, error) {
	if bytes.HasPrefix(raw, utf8BOM) {
		return Event{}, errors.New("event: not valid JSON: starts with a UTF-8 byte order mark")
	}
	if t, ok, err := decodeSQS(raw); ok {
		return t, err
	}
	var env eventEnvelope
	if err := json.Unmarshal(raw, &env); err != nil {
		var syntax *json.SyntaxError
		if errors.As(err, &syntax) {
			return Event{}, fmt.Errorf("event: not valid JSON: %w", err)
		}
		return decodeBadEnvelope(raw, err)
	}

	t := Event{
		Kind:       kindOf(env.Source, env.DetailType),
		ID:         env.ID,
		Source:     env.Source,
		DetailType: env.DetailType,
		Region:     stringValue(env.Region),
	}
	if t.Kind == KindOther {
		t.Detail, t.Ignored = describeOther(env.Source, env.DetailType)
		return t, nil
	}
	if t.Kind == KindScheduled {
		// The detail of a scheduled event is empty ({}): nothing to read.
		// resources names the rule, for the log only: any shape will do.
		var rules []string
		_ = json.Unmarshal(env.Resources, &rules)
		t.Work, t.Detail = Sweep{}, "scheduled sweep from "+short(strings.Join(rules, " "))
		return t, nil
	}
	if isNull(env.Detail) {
		return t, fmt.Errorf("%s: no detail", errorPrefix(t))
	}
	if t.Region != "" && !awsid.IsRegion(t.Region) {
		return t, fmt.Errorf("%s: region %q is not a region name", errorPrefix(t), short(t.Region))
	}

	var err error
	switch t.Kind {
	case KindAMIState:
		err = decodeAMIState(&t, env.Detail)
	case KindTagChange:
		err = decodeTagChange(&t, env.Resources, env.Detail)
	case KindAPICall:
		err = decodeAPICall(&t, env.Detail)
	}
	if err != nil {
		return t, fmt.Errorf("%s: %w", errorPrefix(t), err)
	}
	if t.Ignored != "" {
		t.Work = nil
	}
	return t, nil
}

// utf8BOM is not JSON, but some editors put it in front of a saved sample event.
var utf8BOM = []byte("\xef\xbb\xbf")

// errorPrefix names the event an error is about, by detail-type and id.
func errorPrefix(t Event) string {
	if t.ID == "" {
		return "event: " + t.DetailType
	}
	return fmt.Sprintf("event: %s %q", t.DetailType, short(t.ID))
}

// kindOf picks the shape from source and detail-type. Both must match: a
// custom event that borrows an AWS detail-type under another source is not ours.
func kindOf(source, detailType string) Kind {
	switch {
	case source == sourceEC2 && detailType == detailTypeAMIState:
		return KindAMIState
	case source == sourceTag && detailType == detailTypeTagChange:
		return KindTagChange
	case source == sourceEC2 && detailType == detailTypeAPICall:
		return KindAPICall
	case source == sourceEvents && detailType == detailTypeScheduled:
		return KindScheduled
	}
	return KindOther
}

// describeOther returns the Detail and Ignored reason for an event we do not handle.
func describeOther(source, detailType string) (detail, ignored string) {
	if source == "" && detailType == "" {
		return "no source or detail-type", "not an EventBridge event"
	}
	detail = fmt.Sprintf("%q from %q", short(detailType), short(source))
	return detail, "unhandled event " + detail
}

// decodeBadEnvelope handles valid JSON that does not fit eventEnvelope
// (id, source or detail-type of the wrong JSON type, a top-level array). If source and detail-type can still be read and name an event we
// handle, that event is malformed: an error. Anything else is not ours.
func decodeBadEnvelope(raw []byte, envErr error) (Event, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return Event{Kind: KindOther, Ignored: "not an EventBridge event", Detail: "JSON is not an object"}, nil
	}
	t := Event{
		ID:         stringField(fields, "id"),
		Source:     stringField(fields, "source"),
		DetailType: stringField(fields, "detail-type"),
	}
	t.Kind = kindOf(t.Source, t.DetailType)
	if t.Kind != KindOther {
		return t, fmt.Errorf("%s: malformed envelope: %w", errorPrefix(t), envErr)
	}
	t.Detail, t.Ignored = describeOther(t.Source, t.DetailType)
	return t, nil
}

// stringField reads fields[key] as a string, or "" when missing or not a string.
// Keys are matched exactly, unlike encoding/json's struct decoding.
func stringField(fields map[string]json.RawMessage, key string) string {
	var s string
	if err := json.Unmarshal(fields[key], &s); err != nil {
		return ""
	}
	return s
}

// stringValue returns a raw JSON string's value, or "" for anything else.
func stringValue(raw json.RawMessage) string {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return ""
	}
	return s
}

// isNull reports whether a raw JSON value is absent or null.
func isNull(raw json.RawMessage) bool {
	v := bytes.TrimSpace(raw)
	return len(v) == 0 || bytes.Equal(v, []byte("null"))
}

// short caps a string taken from the event at a length fit for a log line,
// cutting on a rune boundary.
func short(s string) string {
	const limit = 200
	if len(s) <= limit {
		return s
	}
	cut := limit
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}
