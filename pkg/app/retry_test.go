package app

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	smithy "github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
)

var (
	throttled   = &smithy.GenericAPIError{Code: "RequestLimitExceeded", Message: "Request limit exceeded."}
	serverError = &smithy.GenericAPIError{Code: "InternalError", Message: "An internal error has occurred"}
)

// TestRetryerThrottlingHasNoAttemptCount: a throttled call is retried at any
// attempt, others up to MaxAttempts, ending with the SDK's MaxAttemptsError
// around the last error.
func TestRetryerThrottlingHasNoAttemptCount(t *testing.T) {
	r := newRetryer(MaxAttempts, time.Second)
	if got := r.MaxAttempts(); got != 0 {
		t.Errorf("MaxAttempts: got %d, want 0 (no count: throttling retries end with the context)", got)
	}
	for _, attempt := range []int{1, MaxAttempts, 10 * MaxAttempts, 1000} {
		if !r.IsErrorRetryable(throttled) {
			t.Fatal("throttling is not retryable")
		}
		if d, err := r.RetryDelay(attempt, throttled); err != nil || d > time.Second {
			t.Errorf("throttled attempt %d: got delay %s, error %v; want a delay of at most 1s", attempt, d, err)
		}
	}
	if _, err := r.RetryDelay(MaxAttempts-1, serverError); err != nil {
		t.Errorf("server error at attempt %d: got %v, want another attempt", MaxAttempts-1, err)
	}
	_, err := r.RetryDelay(MaxAttempts, serverError)
	var maxErr *retry.MaxAttemptsError
	if !errors.As(err, &maxErr) || maxErr.Attempt != MaxAttempts || !errors.Is(err, serverError) {
		t.Errorf("server error at attempt %d: got %v, want a MaxAttemptsError around it", MaxAttempts, err)
	}
}

// TestRetryerHasNoQuota: the SDK's default retry quota (500 tokens, 5 per
// throttled retry) would refuse the 101st retry of a client that sees only
// throttling; this one never refuses.
func TestRetryerHasNoQuota(t *testing.T) {
	r := newRetryer(MaxAttempts, 0).(aws.RetryerV2)
	for i := range 1000 {
		release, err := r.GetRetryToken(context.Background(), throttled)
		if err != nil {
			t.Fatalf("retry %d of a throttled call: %v", i+1, err)
		}
		release(throttled) // the retry failed too: nothing is refunded
	}
	for i := range 100 {
		if _, err := r.GetRetryToken(context.Background(), serverError); err != nil {
			t.Fatalf("retry %d of a failed call: %v", i+1, err)
		}
	}
}

// TestCallBudget: a call without a deadline gets one, CallBudget away; a
// call with one keeps it.
func TestCallBudget(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/xml")
		w.Write([]byte(`<DescribeImagesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>r</requestId><imagesSet/></DescribeImagesResponse>`))
	}))
	defer srv.Close()
	var seen time.Time
	var hasDeadline bool
	capture := func(stack *middleware.Stack) error {
		return stack.Finalize.Add(middleware.FinalizeMiddlewareFunc("capture",
			func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
				seen, hasDeadline = ctx.Deadline()
				return next.HandleFinalize(ctx, in)
			}), middleware.After)
	}
	client := ec2.New(ec2.Options{
		Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("testing", "testing", ""),
		BaseEndpoint: aws.String(srv.URL), Retryer: newRetryer(MaxAttempts, 0),
		APIOptions: []func(*middleware.Stack) error{callBudget, capture},
	})

	before := time.Now()
	if _, err := client.DescribeImages(context.Background(), &ec2.DescribeImagesInput{}); err != nil {
		t.Fatal(err)
	}
	if !hasDeadline || seen.Before(before.Add(CallBudget)) || seen.After(time.Now().Add(CallBudget)) {
		t.Errorf("call without a deadline: got deadline %v (set %v), want %s after the call began", seen, hasDeadline, CallBudget)
	}

	want := time.Now().Add(time.Hour)
	ctx, cancel := context.WithDeadline(context.Background(), want)
	defer cancel()
	if _, err := client.DescribeImages(ctx, &ec2.DescribeImagesInput{}); err != nil {
		t.Fatal(err)
	}
	if !hasDeadline || !seen.Equal(want) {
		t.Errorf("call with a deadline: got %v, want it kept (%v)", seen, want)
	}
}
