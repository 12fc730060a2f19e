package faultinject_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	smithy "github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/amishare/amishare/internal/testing/faultinject"
	"github.com/amishare/amishare/pkg/awserr"
)

// backend is a loopback server that records the bodies it receives and
// answers every request successfully.
type backend struct {
	*httptest.Server
	mu     sync.Mutex
	bodies []string
}

func newBackend(t *testing.T) *backend {
	t.Helper()
	b := &backend{}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		b.mu.Lock()
		b.bodies = append(b.bodies, string(body))
		b.mu.Unlock()
		if target := r.Header.Get("X-Amz-Target"); target != "" {
			w.Header().Set("Content-Type", "application/x-amz-json-1.1")
			io.WriteString(w, `{}`)
			return
		}
		action := ""
		if form, err := url.ParseQuery(string(body)); err == nil {
			action = form.Get("Action")
		}
		w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
		io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?>`+
			`<`+action+`Response xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>ok</requestId><return>true</return></`+action+`Response>`)
	}))
	t.Cleanup(b.Close)
	return b
}

func (b *backend) received() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.bodies...)
}

const ec2Body = "Action=ModifySnapshotAttribute&Version=2016-11-15&SnapshotId=snap-1"

func queryRequest(t *testing.T, url, body string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	return req
}

func jsonRequest(t *testing.T, url, target string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(`{"KeyId":"k"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", target)
	return req
}

func TestAction(t *testing.T) {
	tests := []struct {
		name         string
		req          func(t *testing.T) *http.Request
		wantAction   string
		wantProtocol faultinject.Protocol
		wantBody     string
	}{
		{
			name:         "query form body",
			req:          func(t *testing.T) *http.Request { return queryRequest(t, "http://127.0.0.1/", ec2Body) },
			wantAction:   "ModifySnapshotAttribute",
			wantProtocol: faultinject.ProtocolQuery,
			wantBody:     ec2Body,
		},
		{
			name: "json target",
			req: func(t *testing.T) *http.Request {
				return jsonRequest(t, "http://127.0.0.1/", "TrentService.PutKeyPolicy")
			},
			wantAction:   "PutKeyPolicy",
			wantProtocol: faultinject.ProtocolJSON,
			wantBody:     `{"KeyId":"k"}`,
		},
		{
			name:         "ssm target",
			req:          func(t *testing.T) *http.Request { return jsonRequest(t, "http://127.0.0.1/", "AmazonSSM.GetParameter") },
			wantAction:   "GetParameter",
			wantProtocol: faultinject.ProtocolJSON,
			wantBody:     `{"KeyId":"k"}`,
		},
		{
			name: "no body",
			req: func(t *testing.T) *http.Request {
				req, err := http.NewRequest(http.MethodGet, "http://127.0.0.1/", nil)
				if err != nil {
					t.Fatal(err)
				}
				return req
			},
		},
		{
			name: "form without action",
			req:  func(t *testing.T) *http.Request { return queryRequest(t, "http://127.0.0.1/", "Version=2016-11-15") },
			// The body is still put back.
			wantBody: "Version=2016-11-15",
		},
		{
			name: "other content type is not read",
			req: func(t *testing.T) *http.Request {
				req := queryRequest(t, "http://127.0.0.1/", "Action=X")
				req.Header.Set("Content-Type", "application/octet-stream")
				return req
			},
			wantBody: "Action=X",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := tc.req(t)
			action, protocol, err := faultinject.Action(req)
			if err != nil {
				t.Fatalf("Action: got error %v, want nil", err)
			}
			if action != tc.wantAction || protocol != tc.wantProtocol {
				t.Errorf("Action: got %q, %v; want %q, %v", action, protocol, tc.wantAction, tc.wantProtocol)
			}
			if req.Body == nil {
				if tc.wantBody != "" {
					t.Fatalf("body: got none, want %q", tc.wantBody)
				}
				return
			}
			body, err := io.ReadAll(req.Body)
			if err != nil {
				t.Fatal(err)
			}
			if string(body) != tc.wantBody {
				t.Errorf("body after Action: got %q, want %q", body, tc.wantBody)
			}
			if req.GetBody != nil {
				again, err := req.GetBody()
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(again)
				if string(b) != tc.wantBody {
					t.Errorf("GetBody: got %q, want %q", b, tc.wantBody)
				}
			}
		})
	}
}

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name       string
		rules      []faultinject.Rule
		req        func(t *testing.T, url string) *http.Request
		calls      int
		action     string
		wantStatus []int // per call
		wantCode   string
		wantPassed int
	}{
		{
			name:       "throttle twice then pass",
			rules:      []faultinject.Rule{{Action: "ModifySnapshotAttribute", Times: 2, Kind: faultinject.Throttle}},
			req:        func(t *testing.T, url string) *http.Request { return queryRequest(t, url, ec2Body) },
			calls:      4,
			action:     "ModifySnapshotAttribute",
			wantStatus: []int{400, 400, 200, 200},
			wantCode:   "<Code>RequestLimitExceeded</Code>",
			wantPassed: 2,
		},
		{
			name:       "zero times fails always",
			rules:      []faultinject.Rule{{Action: "ModifySnapshotAttribute", Kind: faultinject.ServerError}},
			req:        func(t *testing.T, url string) *http.Request { return queryRequest(t, url, ec2Body) },
			calls:      3,
			action:     "ModifySnapshotAttribute",
			wantStatus: []int{500, 500, 500},
			wantCode:   "<Code>InternalError</Code>",
		},
		{
			name:       "zero kind is throttle",
			rules:      []faultinject.Rule{{Action: "ModifySnapshotAttribute", Times: 1}},
			req:        func(t *testing.T, url string) *http.Request { return queryRequest(t, url, ec2Body) },
			calls:      2,
			action:     "ModifySnapshotAttribute",
			wantStatus: []int{400, 200},
			wantCode:   "<Code>RequestLimitExceeded</Code>",
			wantPassed: 1,
		},
		{
			name:       "unavailable",
			rules:      []faultinject.Rule{{Action: "ModifySnapshotAttribute", Times: 1, Kind: faultinject.Unavailable}},
			req:        func(t *testing.T, url string) *http.Request { return queryRequest(t, url, ec2Body) },
			calls:      1,
			action:     "ModifySnapshotAttribute",
			wantStatus: []int{503},
			wantCode:   "<Code>ServiceUnavailable</Code>",
		},
		{
			name:       "json throttle",
			rules:      []faultinject.Rule{{Action: "PutKeyPolicy", Times: 1, Kind: faultinject.Throttle}},
			req:        func(t *testing.T, url string) *http.Request { return jsonRequest(t, url, "TrentService.PutKeyPolicy") },
			calls:      2,
			action:     "PutKeyPolicy",
			wantStatus: []int{400, 200},
			wantCode:   `"__type":"ThrottlingException"`,
			wantPassed: 1,
		},
		{
			name:       "json server error",
			rules:      []faultinject.Rule{{Action: "PutKeyPolicy", Kind: faultinject.ServerError}},
			req:        func(t *testing.T, url string) *http.Request { return jsonRequest(t, url, "TrentService.PutKeyPolicy") },
			calls:      1,
			action:     "PutKeyPolicy",
			wantStatus: []int{500},
			wantCode:   `"__type":"InternalError"`,
		},
		{
			name:       "other action passes",
			rules:      []faultinject.Rule{{Action: "ModifyImageAttribute", Kind: faultinject.ServerError}},
			req:        func(t *testing.T, url string) *http.Request { return queryRequest(t, url, ec2Body) },
			calls:      2,
			action:     "ModifySnapshotAttribute",
			wantStatus: []int{200, 200},
			wantPassed: 2,
		},
		{
			name:  "same name in another protocol's body is not an action",
			rules: []faultinject.Rule{{Action: "PutKeyPolicy", Kind: faultinject.ServerError}},
			req: func(t *testing.T, url string) *http.Request {
				return queryRequest(t, url, "Version=1&Note=PutKeyPolicy")
			},
			calls:      1,
			action:     "",
			wantStatus: []int{200},
			wantPassed: 1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := newBackend(t)
			tr := faultinject.New(tc.rules...)
			client := tr.Client()
			for i := 0; i < tc.calls; i++ {
				req := tc.req(t, b.URL)
				wantBody, _ := io.ReadAll(tc.req(t, b.URL).Body)
				resp, err := client.Do(req)
				if err != nil {
					t.Fatalf("call %d: %v", i+1, err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != tc.wantStatus[i] {
					t.Errorf("call %d: got status %d, want %d", i+1, resp.StatusCode, tc.wantStatus[i])
				}
				if resp.StatusCode != 200 && !strings.Contains(string(body), tc.wantCode) {
					t.Errorf("call %d: got body %s, want it to contain %s", i+1, body, tc.wantCode)
				}
				if resp.StatusCode == 200 {
					got := b.received()
					if last := got[len(got)-1]; last != string(wantBody) {
						t.Errorf("call %d: backend got body %q, want %q", i+1, last, wantBody)
					}
				}
			}
			wantInjected := tc.calls - tc.wantPassed
			if got := tr.Injected(tc.action); got != wantInjected {
				t.Errorf("Injected(%q): got %d, want %d", tc.action, got, wantInjected)
			}
			if got := tr.Passed(tc.action); got != tc.wantPassed {
				t.Errorf("Passed(%q): got %d, want %d", tc.action, got, tc.wantPassed)
			}
			if got := len(b.received()); got != tc.wantPassed {
				t.Errorf("requests reaching the backend: got %d, want %d", got, tc.wantPassed)
			}
		})
	}
}

// sdkConfig points SDK clients at url through tr, with retryer.
func sdkConfig(url string, tr *faultinject.Transport, retryer func() aws.Retryer) aws.Config {
	return aws.Config{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("testing", "testing", ""),
		BaseEndpoint: aws.String(url),
		HTTPClient:   tr.Client(),
		Retryer:      retryer,
	}
}

func noRetry() aws.Retryer { return aws.NopRetryer{} }

// TestSDKSeesAWSErrors checks that the SDK decodes the injected responses
// into the error codes AWS sends, and that amishare classifies them.
func TestSDKSeesAWSErrors(t *testing.T) {
	ctx := context.Background()
	modifySnapshot := func(c aws.Config) error {
		_, err := ec2.NewFromConfig(c).ModifySnapshotAttribute(ctx, &ec2.ModifySnapshotAttributeInput{
			SnapshotId: aws.String("snap-1"), Attribute: ec2types.SnapshotAttributeNameCreateVolumePermission,
			OperationType: ec2types.OperationTypeAdd, UserIds: []string{"111122223333"},
		})
		return err
	}
	putKeyPolicy := func(c aws.Config) error {
		_, err := kms.NewFromConfig(c).PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: aws.String("k"), Policy: aws.String("{}")})
		return err
	}
	tests := []struct {
		name         string
		rule         faultinject.Rule
		call         func(aws.Config) error
		wantCode     string
		wantStatus   int
		wantThrottle bool
	}{
		{"ec2 throttle", faultinject.Rule{Action: "ModifySnapshotAttribute", Kind: faultinject.Throttle}, modifySnapshot, "RequestLimitExceeded", 400, true},
		{"ec2 server error", faultinject.Rule{Action: "ModifySnapshotAttribute", Kind: faultinject.ServerError}, modifySnapshot, "InternalError", 500, false},
		{"ec2 unavailable", faultinject.Rule{Action: "ModifySnapshotAttribute", Kind: faultinject.Unavailable}, modifySnapshot, "ServiceUnavailable", 503, false},
		{"kms throttle", faultinject.Rule{Action: "PutKeyPolicy", Kind: faultinject.Throttle}, putKeyPolicy, "ThrottlingException", 400, true},
		{"kms server error", faultinject.Rule{Action: "PutKeyPolicy", Kind: faultinject.ServerError}, putKeyPolicy, "InternalError", 500, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := newBackend(t)
			tr := faultinject.New(tc.rule)
			err := tc.call(sdkConfig(b.URL, tr, noRetry))
			if err == nil {
				t.Fatal("got no error, want the injected fault")
			}
			var apiErr smithy.APIError
			if !errors.As(err, &apiErr) || apiErr.ErrorCode() != tc.wantCode {
				t.Errorf("error: got %v, want code %s", err, tc.wantCode)
			}
			var respErr *smithyhttp.ResponseError
			if !errors.As(err, &respErr) || respErr.HTTPStatusCode() != tc.wantStatus {
				t.Errorf("HTTP status of %v: want %d", err, tc.wantStatus)
			}
			if got := awserr.IsThrottle(err); got != tc.wantThrottle {
				t.Errorf("awserr.IsThrottle: got %v, want %v", got, tc.wantThrottle)
			}
			if !awserr.IsTransient(err) {
				t.Errorf("awserr.IsTransient(%v): got false, want true", err)
			}
			if got := tr.Injected(tc.rule.Action); got != 1 {
				t.Errorf("Injected: got %d, want 1", got)
			}
			if got := len(b.received()); got != 0 {
				t.Errorf("requests reaching the backend: got %d, want 0", got)
			}
		})
	}
}

// TestSDKRetriesThrough checks that the SDK's retryer gets past a limited
// number of faults, re-sending the same body.
func TestSDKRetriesThrough(t *testing.T) {
	b := newBackend(t)
	tr := faultinject.New(
		faultinject.Rule{Action: "ModifySnapshotAttribute", Times: 2, Kind: faultinject.Throttle},
		faultinject.Rule{Action: "PutKeyPolicy", Times: 1, Kind: faultinject.ServerError},
	)
	fast := func() aws.Retryer {
		return retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = 3
			o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return time.Millisecond, nil })
		})
	}
	cfg := sdkConfig(b.URL, tr, fast)
	ctx := context.Background()
	_, err := ec2.NewFromConfig(cfg).ModifySnapshotAttribute(ctx, &ec2.ModifySnapshotAttributeInput{
		SnapshotId: aws.String("snap-1"), Attribute: ec2types.SnapshotAttributeNameCreateVolumePermission,
		OperationType: ec2types.OperationTypeAdd, UserIds: []string{"111122223333"},
	})
	if err != nil {
		t.Fatalf("ModifySnapshotAttribute: got %v, want success on the third attempt", err)
	}
	if _, err := kms.NewFromConfig(cfg).PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: aws.String("k"), Policy: aws.String("{}")}); err != nil {
		t.Fatalf("PutKeyPolicy: got %v, want success on the second attempt", err)
	}
	for action, want := range map[string]int{"ModifySnapshotAttribute": 2, "PutKeyPolicy": 1} {
		if got := tr.Injected(action); got != want {
			t.Errorf("Injected(%s): got %d, want %d", action, got, want)
		}
		if got := tr.Passed(action); got != 1 {
			t.Errorf("Passed(%s): got %d, want 1", action, got)
		}
	}
	got := b.received()
	if len(got) != 2 {
		t.Fatalf("requests reaching the backend: got %d, want 2", len(got))
	}
	form, err := url.ParseQuery(got[0])
	if err != nil {
		t.Fatal(err)
	}
	if form.Get("Action") != "ModifySnapshotAttribute" || form.Get("UserId.1") != "111122223333" {
		t.Errorf("EC2 body after retries: got %q, want the full ModifySnapshotAttribute request", got[0])
	}
	if !strings.Contains(got[1], `"KeyId":"k"`) {
		t.Errorf("KMS body after retry: got %q, want the PutKeyPolicy request", got[1])
	}
}

func TestKindString(t *testing.T) {
	tests := []struct {
		kind faultinject.Kind
		want string
	}{
		{faultinject.Throttle, "throttle"},
		{faultinject.ServerError, "server error"},
		{faultinject.Unavailable, "unavailable"},
		{faultinject.Kind(9), "Kind(9)"},
	}
	for _, tc := range tests {
		if got := tc.kind.String(); got != tc.want {
			t.Errorf("Kind(%d).String(): got %q, want %q", int(tc.kind), got, tc.want)
		}
	}
}
