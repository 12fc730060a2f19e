// Package receiver reaches the receivers: the accounts an image is shared
// with that run the receiver stack (receiver/template.yaml), a role amishare
// may assume there. Each session is assumed through STS with a session name
// that says which image acted (amishare-ami-…), which the receiver's
// CloudTrail records and its trust policy requires (sts:RoleSessionName
// amishare-*), and gives the clients amishare uses there: SSM for the
// parameters, EC2 for the images' tags, KMS for the Auto Scaling grant and
// IAM to see whether the account has its Auto Scaling service-linked role.
package receiver

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go/middleware"

	"github.com/amishare/amishare/pkg/awsid"
)

// SessionPrefix starts every session name: the receiver's trust policy
// admits only sessions named so.
const SessionPrefix = "amishare-"

// maxSessionName is STS's limit on RoleSessionName.
const maxSessionName = 64

// SessionName is the session name for work on what (an image id, or
// "sweep"): amishare-what, cut to STS's 64 characters, keeping only the
// characters STS allows ([\w+=,.@-]).
func SessionName(what string) string {
	var b strings.Builder
	b.WriteString(SessionPrefix)
	for _, r := range what {
		if b.Len() >= maxSessionName {
			break
		}
		if r < 128 && (r == '_' || r == '+' || r == '=' || r == ',' || r == '.' || r == '@' || r == '-' ||
			'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9') {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// Clients are one session's clients in one receiver and region.
type Clients struct {
	Account string
	Region  string
	SSM     *ssm.Client
	EC2     *ec2.Client
	KMS     *kms.Client
	IAM     *iam.Client
}

// Sessions opens sessions in receivers from the function's own
// configuration (retries, pacing, endpoints) and its STS client.
type Sessions struct {
	Config    aws.Config
	STS       stscreds.AssumeRoleAPIClient
	Partition string // "" means aws
}

// NewSessions builds Sessions from the SDK configuration every client of
// the function is built from.
func NewSessions(cfg aws.Config) *Sessions {
	return &Sessions{Config: cfg, STS: sts.NewFromConfig(cfg)}
}

// Open assumes role in account for work in region, as session (see
// SessionName), and returns the clients acting there. The role is assumed
// at once, so that a receiver that cannot be reached (no such role, a trust
// policy that refuses) fails here, with STS's error.
func (s *Sessions) Open(ctx context.Context, account, role, region, session string) (*Clients, error) {
	if !awsid.IsAccountID(account) {
		return nil, fmt.Errorf("receiver %q is not an account id", account)
	}
	partition := s.Partition
	if partition == "" {
		partition = awsid.DefaultPartition
	}
	arn := awsid.RoleARN(partition, account, role)
	cfg := s.Config.Copy()
	cfg.Region = region
	cfg.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(s.STS, arn, func(o *stscreds.AssumeRoleOptions) {
		o.RoleSessionName = session
	}))
	if _, err := cfg.Credentials.Retrieve(ctx); err != nil {
		return nil, fmt.Errorf("assuming %s: %w", arn, err)
	}
	cfg.APIOptions = append(append([]func(*middleware.Stack) error(nil), cfg.APIOptions...), marker(account))
	return &Clients{
		Account: account, Region: region,
		SSM: ssm.NewFromConfig(cfg), EC2: ec2.NewFromConfig(cfg), KMS: kms.NewFromConfig(cfg), IAM: iam.NewFromConfig(cfg),
	}, nil
}

// principalKey marks, on a call's middleware stack, the receiver whose
// role makes it.
type principalKey struct{}

// marker records on every call of a receiver's clients which receiver
// makes it: the recorded-calls check evaluates such calls against the
// receiver role, not the function's. It runs before any other
// initialize step.
func marker(account string) func(*middleware.Stack) error {
	return func(stack *middleware.Stack) error {
		return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("amishareReceiver",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				return next.HandleInitialize(middleware.WithStackValue(ctx, principalKey{}, account), in)
			}), middleware.Before)
	}
}

// Principal returns the receiver whose role makes the call of ctx (inside a
// client's middleware), "" for the function's own calls.
func Principal(ctx context.Context) string {
	account, _ := middleware.GetStackValue(ctx, principalKey{}).(string)
	return account
}
