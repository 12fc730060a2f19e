// Package awserr classifies AWS SDK errors in one place, so that the rest of
// the engine decides "permanent or transient" without matching strings.
package awserr

import (
	"context"
	"errors"
	"net"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	smithy "github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// The code lists below are partial: they hold the codes amishare meets on
// the calls it makes (EC2, EBS snapshots, KMS, SSM), not every AWS code.
var (
	notFoundCodes = set(
		"InvalidAMIID.NotFound", "InvalidAMIID.Unavailable", "InvalidAMIID.Malformed",
		"InvalidSnapshot.NotFound", "InvalidSnapshotID.Malformed",
		"ParameterNotFound", "NotFoundException",
	)
	throttleCodes = set(
		"RequestLimitExceeded", "Throttling", "ThrottlingException", "ThrottledException",
		"TooManyRequestsException", "RequestThrottled", "RequestThrottledException",
		"SlowDown", "EC2ThrottledException", "LimitExceededException",
	)
	accessDeniedCodes = set(
		"AccessDenied", "AccessDeniedException", "UnauthorizedOperation",
		"AuthFailure", "Client.UnauthorizedOperation",
	)
	transientCodes = set(
		"InternalError", "InternalFailure", "ServiceUnavailable", "Unavailable",
		"RequestTimeout", "RequestTimeoutException", "KMSInternalException",
		"DependencyTimeoutException", "InternalServerError", "InternalServerErrorException",
	)
)

func set(codes ...string) map[string]bool {
	m := make(map[string]bool, len(codes))
	for _, c := range codes {
		m[c] = true
	}
	return m
}

// Code returns the AWS error code of err, or "" when err is not an AWS API error.
func Code(err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode()
	}
	return ""
}

// IsNotFound reports whether err says the resource does not exist (or no longer does).
func IsNotFound(err error) bool { return notFoundCodes[Code(err)] }

// IsThrottle reports whether err is AWS throttling the caller.
func IsThrottle(err error) bool { return throttleCodes[Code(err)] }

// IsAccessDenied reports whether err is a permissions failure: IAM refusing
// the call (EC2's UnauthorizedOperation, KMS's AccessDeniedException), or a
// KMS key whose policy does not let this account use it. KMS answers
// AccessDeniedException, not NotFoundException, for a key of another account
// that does not allow the caller, so for KMS it also means "not ours".
func IsAccessDenied(err error) bool { return accessDeniedCodes[Code(err)] }

// IsTransient reports whether retrying the same call later may succeed:
// throttling, server-side (5xx) failures, timeouts and connection errors.
// Such errors make the handler fail so that Lambda retries the event.
func IsTransient(err error) bool {
	if err == nil {
		return false
	}
	if IsThrottle(err) || transientCodes[Code(err)] {
		return true
	}
	var respErr *smithyhttp.ResponseError
	if errors.As(err, &respErr) && respErr.HTTPStatusCode() >= 500 {
		return true
	}
	var maxAttempts *retry.MaxAttemptsError
	if errors.As(err, &maxAttempts) {
		return true
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return true
	}
	return errors.Is(err, context.DeadlineExceeded)
}
