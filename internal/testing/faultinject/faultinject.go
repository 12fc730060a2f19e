// Package faultinject is test tooling that makes chosen AWS API calls fail
// the way AWS fails them (throttling, internal errors), so that tests can
// check retries and partial failures against a real SDK client and a local
// emulator. A Transport wraps an http.RoundTripper; its Client is an
// aws.HTTPClient for the SDK's HTTPClient option.
//
// The action of a request is read from the form body (Action=...) for the
// EC2 query protocol and from the X-Amz-Target header
// (TrentService.PutKeyPolicy) for the JSON protocol of KMS and SSM.
package faultinject

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
)

// Kind is the failure to inject.
type Kind int

// The kinds of fault.
const (
	// Throttle answers 400 with the protocol's throttling code
	// (RequestLimitExceeded for EC2, ThrottlingException for JSON services).
	Throttle Kind = iota + 1
	// ServerError answers 500 InternalError.
	ServerError
	// Unavailable answers 503 ServiceUnavailable.
	Unavailable
	// Denied answers what IAM answers a call it refuses: 403
	// UnauthorizedOperation for EC2's query protocol, 400
	// AccessDeniedException for JSON services.
	Denied
)

func (k Kind) String() string {
	switch k {
	case Throttle:
		return "throttle"
	case ServerError:
		return "server error"
	case Unavailable:
		return "unavailable"
	case Denied:
		return "denied"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Rule fails calls of one action.
type Rule struct {
	// Action is the API operation, e.g. ModifySnapshotAttribute or PutKeyPolicy.
	Action string
	// Times is how many matching calls fail, counting from the first after
	// Skip; 0 fails every one.
	Times int
	// Skip is how many matching calls pass before the first fails.
	Skip int
	// Kind is the failure; the zero value means Throttle.
	Kind Kind
}

// Transport is an http.RoundTripper that fails requests matching its rules
// and passes every other request to Base. It is safe for concurrent use.
type Transport struct {
	// Base carries the requests that are not failed; nil means http.DefaultTransport.
	Base http.RoundTripper

	mu       sync.Mutex
	rules    []Rule
	matched  []int          // per rule: matching requests seen
	injected map[string]int // per action: faults injected
	passed   map[string]int // per action: requests passed to Base
}

// New returns a Transport over http.DefaultTransport with the given rules.
// When several rules match a request, the first that still has faults to
// inject applies.
func New(rules ...Rule) *Transport {
	return &Transport{rules: rules, matched: make([]int, len(rules))}
}

// Client returns an *http.Client using t, for the SDK's HTTPClient option.
func (t *Transport) Client() *http.Client {
	return &http.Client{Transport: t}
}

// Injected returns how many faults were injected for action.
func (t *Transport) Injected(action string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.injected[action]
}

// Passed returns how many requests for action went through to Base.
func (t *Transport) Passed(action string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.passed[action]
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	action, protocol, err := Action(req)
	if err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	if rule, ok := t.take(action); ok {
		if req.Body != nil {
			req.Body.Close()
		}
		return Fault(req, protocol, action, rule.Kind), nil
	}
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	return base.RoundTrip(req)
}

// take decides whether the request for action fails, and counts it.
func (t *Transport) take(action string) (Rule, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.matched == nil {
		t.matched = make([]int, len(t.rules))
	}
	for i, r := range t.rules {
		if action == "" || r.Action != action {
			continue
		}
		t.matched[i]++
		if n := t.matched[i] - r.Skip; n > 0 && (r.Times == 0 || n <= r.Times) {
			if t.injected == nil {
				t.injected = map[string]int{}
			}
			t.injected[action]++
			return r, true
		}
	}
	if t.passed == nil {
		t.passed = map[string]int{}
	}
	t.passed[action]++
	return Rule{}, false
}

// Protocol is the wire protocol of a request.
type Protocol int

// The protocols Action tells apart.
const (
	ProtocolUnknown Protocol = iota
	ProtocolQuery            // form-encoded body with Action= (EC2)
	ProtocolJSON             // X-Amz-Target header (KMS, SSM)
)

// Action returns the AWS API operation a request calls and its protocol.
// For a form body it reads the body and puts back an identical one (and
// GetBody), so the request can still be sent. An unrecognised request gives
// "" and ProtocolUnknown.
func Action(req *http.Request) (string, Protocol, error) {
	if target := req.Header.Get("X-Amz-Target"); target != "" {
		_, op, ok := strings.Cut(target, ".")
		if !ok {
			op = target
		}
		return op, ProtocolJSON, nil
	}
	if req.Body == nil || req.Body == http.NoBody {
		return "", ProtocolUnknown, nil
	}
	if ct := req.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
		return "", ProtocolUnknown, nil
	}
	body, err := io.ReadAll(req.Body)
	req.Body.Close()
	if err != nil {
		return "", ProtocolUnknown, fmt.Errorf("faultinject: reading request body: %w", err)
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return "", ProtocolUnknown, nil
	}
	if action := form.Get("Action"); action != "" {
		return action, ProtocolQuery, nil
	}
	return "", ProtocolUnknown, nil
}

// Fault builds the response AWS gives for kind to a request for action
// (throttling: RequestLimitExceeded for EC2's query protocol,
// ThrottlingException for JSON services).
func Fault(req *http.Request, protocol Protocol, action string, kind Kind) *http.Response {
	status, code := http.StatusBadRequest, "RequestLimitExceeded"
	switch kind {
	case ServerError:
		status, code = http.StatusInternalServerError, "InternalError"
	case Unavailable:
		status, code = http.StatusServiceUnavailable, "ServiceUnavailable"
	case Denied:
		status, code = http.StatusForbidden, "UnauthorizedOperation"
		if protocol == ProtocolJSON {
			status, code = http.StatusBadRequest, "AccessDeniedException"
		}
	default:
		if protocol == ProtocolJSON {
			code = "ThrottlingException"
		}
	}
	msg := fmt.Sprintf("injected fault: %s on %s", kind, action)
	h := http.Header{}
	h.Set("X-Amzn-Requestid", "faultinject")
	var body string
	if protocol == ProtocolJSON {
		h.Set("Content-Type", "application/x-amz-json-1.1")
		body = fmt.Sprintf(`{"__type":%q,"message":%q}`, code, msg)
	} else {
		h.Set("Content-Type", "text/xml;charset=UTF-8")
		var escaped strings.Builder
		xml.EscapeText(&escaped, []byte(msg)) // writes to a strings.Builder: no error
		body = fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>`+"\n"+
			`<Response><Errors><Error><Code>%s</Code><Message>%s</Message></Error></Errors><RequestID>faultinject</RequestID></Response>`,
			code, escaped.String())
	}
	return &http.Response{
		Status:        fmt.Sprintf("%d %s", status, http.StatusText(status)),
		StatusCode:    status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		Body:          io.NopCloser(strings.NewReader(body)),
		ContentLength: int64(len(body)),
		Request:       req,
	}
}
