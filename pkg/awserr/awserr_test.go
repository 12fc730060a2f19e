package awserr

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	smithy "github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

func apiErr(code string) error { return &smithy.GenericAPIError{Code: code, Message: "m"} }

func httpErr(status int) error {
	return &smithyhttp.ResponseError{
		Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}},
		Err:      errors.New("boom"),
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		name                                  string
		err                                   error
		notFound, throttle, denied, transient bool
	}{
		{name: "nil", err: nil},
		{name: "plain error", err: errors.New("x")},
		{name: "image not found", err: apiErr("InvalidAMIID.NotFound"), notFound: true},
		{name: "wrapped not found", err: fmt.Errorf("describing: %w", apiErr("InvalidSnapshot.NotFound")), notFound: true},
		{name: "ssm parameter missing", err: apiErr("ParameterNotFound"), notFound: true},
		{name: "ec2 throttling", err: apiErr("RequestLimitExceeded"), throttle: true, transient: true},
		{name: "kms throttling", err: fmt.Errorf("k: %w", apiErr("ThrottlingException")), throttle: true, transient: true},
		{name: "access denied", err: apiErr("UnauthorizedOperation"), denied: true},
		{name: "kms access denied", err: apiErr("AccessDeniedException"), denied: true},
		{name: "kms key of another account", err: fmt.Errorf("describing key: %w", apiErr("AccessDeniedException")), denied: true},
		{name: "ec2 iam refusal", err: fmt.Errorf("x: %w", apiErr("UnauthorizedOperation")), denied: true},
		{name: "internal error", err: apiErr("InternalError"), transient: true},
		{name: "http 503", err: httpErr(503), transient: true},
		{name: "http 400 not transient", err: httpErr(400)},
		{name: "retries exhausted", err: &retry.MaxAttemptsError{Attempt: 3, Err: errors.New("x")}, transient: true},
		{name: "deadline", err: fmt.Errorf("w: %w", context.DeadlineExceeded), transient: true},
		{name: "bad parameter is permanent", err: apiErr("InvalidParameterValue")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := IsNotFound(tc.err); got != tc.notFound {
				t.Errorf("IsNotFound = %v, want %v", got, tc.notFound)
			}
			if got := IsThrottle(tc.err); got != tc.throttle {
				t.Errorf("IsThrottle = %v, want %v", got, tc.throttle)
			}
			if got := IsAccessDenied(tc.err); got != tc.denied {
				t.Errorf("IsAccessDenied = %v, want %v", got, tc.denied)
			}
			if got := IsTransient(tc.err); got != tc.transient {
				t.Errorf("IsTransient = %v, want %v", got, tc.transient)
			}
		})
	}
}
