// Package app is amishare's one composition root: it builds the SDK
// configuration (adaptive retries, the pacing middleware on every client),
// the engines of every region, the configuration loader, the sweeper and the
// handler. The Lambda (functions/amishare) and the operator CLI
// (cmd/amishare) both start here, so a client built anywhere else cannot
// miss the pacing a sweep depends on.
package app

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go/middleware"

	"github.com/amishare/amishare/pkg/config"
	"github.com/amishare/amishare/pkg/handler"
	"github.com/amishare/amishare/pkg/pacing"
	"github.com/amishare/amishare/pkg/receiver"
	"github.com/amishare/amishare/pkg/share"
	"github.com/amishare/amishare/pkg/sweep"
	"github.com/amishare/amishare/pkg/throttling"
)

// ConfigParameterEnv names the environment variable holding the SSM parameter name.
const ConfigParameterEnv = "AMISHARE_CONFIG_PARAMETER"

// SweepQueueEnv names the environment variable holding the URL of the SQS
// queue a sweep hands over to when it runs out of time.
const SweepQueueEnv = "AMISHARE_SWEEP_QUEUE_URL"

// SweepLeaseEnv names the environment variable holding the DynamoDB table
// of the sweep's lease: with it one sweep runs at a time and a continuation
// is accepted only for the sweep in progress (sweep.Lease).
const SweepLeaseEnv = "AMISHARE_SWEEP_LEASE_TABLE"

// App is everything one process needs, built once.
type App struct {
	Handler *handler.Handler
	Sweeper *sweep.Sweeper
	Pool    *share.Pool
	// Config reads the configuration parameter (in Region).
	Config *config.Loader
	// Region is the process's own region (AWS_REGION, or Options.Region):
	// where the configuration is read and the sweep runs.
	Region string

	sts *sts.Client
}

// Identity says who the app acts as: the account and the ARN of the
// caller (sts:GetCallerIdentity, which needs no permission).
func (a *App) Identity(ctx context.Context) (account, arn string, err error) {
	out, err := a.sts.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return "", "", fmt.Errorf("finding who the credentials are (sts:GetCallerIdentity): %w", err)
	}
	return aws.ToString(out.Account), aws.ToString(out.Arn), nil
}

// Options tune New; the zero value is production.
type Options struct {
	Log *slog.Logger
	// HTTPClient replaces the SDK's (fault-injection tests); nil means the
	// SDK default. AWS_CA_BUNDLE is not applied to it.
	HTTPClient aws.HTTPClient
	// APIOptions are added to every client's middleware stack (tests count calls with them).
	APIOptions []func(*middleware.Stack) error
	DryRun     bool
	// MaxAttempts overrides how often the SDK tries one call failing with a
	// retryable error other than throttling; 0 means MaxAttempts.
	MaxAttempts int
	// MaxBackoff caps the SDK's wait between attempts; 0 means the SDK's
	// default (20 s). Tests set it low so that injected faults cost no time.
	MaxBackoff time.Duration
	// ReportBlockPublicAccess makes New read, log and publish the account's
	// block public access states once (the Lambda sets it: once per container).
	ReportBlockPublicAccess bool
	// SweepQueueURL overrides AMISHARE_SWEEP_QUEUE_URL.
	SweepQueueURL string
	// SweepLeaseTable overrides AMISHARE_SWEEP_LEASE_TABLE.
	SweepLeaseTable string
	// SweepMargin and SweepWorkers tune the sweep (see sweep.Sweeper); 0 means the default.
	SweepMargin  time.Duration
	SweepWorkers int
	// Region overrides the SDK chain's region (the CLI's --region): the
	// app then reads that region's configuration and sweeps there.
	Region string
	// RoleARN, when set, makes every client act as that role, assumed
	// (sts:AssumeRole) with the chain's credentials: the CLI's --role-arn,
	// to act exactly as the function's role may.
	RoleARN string
}

// RoleSessionName names the CLI's sessions of an assumed role (CloudTrail
// shows it).
const RoleSessionName = "amishare-cli"

// New builds the App from the standard AWS SDK chain (so AWS_ENDPOINT_URL,
// AWS_REGION and credentials come from the environment), with the SDK's
// retryer in adaptive mode, throttling retried within the invocation's
// deadline (newRetryer). Call it once per process.
func New(ctx context.Context, opts Options) (*App, error) {
	attempts := MaxAttempts
	if opts.MaxAttempts > 0 {
		attempts = opts.MaxAttempts
	}
	loadOpts := []func(*awsconfig.LoadOptions) error{
		// A retryer per client, as the SDK asks of WithRetryer.
		awsconfig.WithRetryer(func() aws.Retryer { return newRetryer(attempts, opts.MaxBackoff) }),
	}
	// Every client bounds the throttling retries of a call without a
	// deadline, paces the calls a sweep makes (calls of a single event pass
	// at once) and counts the throttled attempts of an invocation.
	pacer := &pacing.Pacer{}
	apiOptions := append([]func(*middleware.Stack) error{callBudget, pacer.APIOption, throttling.APIOption}, opts.APIOptions...)
	loadOpts = append(loadOpts, awsconfig.WithAPIOptions(apiOptions))
	if opts.Region != "" {
		loadOpts = append(loadOpts, awsconfig.WithRegion(opts.Region))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return nil, fmt.Errorf("loading AWS configuration: %w", err)
	}
	if opts.HTTPClient != nil {
		// Set after loading: given to LoadDefaultConfig, any client but the
		// SDK's own makes loading fail when AWS_CA_BUNDLE is set.
		cfg.HTTPClient = opts.HTTPClient
	}
	// STS is the CLI's alone (who am I, assume the function's role): its
	// client carries none of the API options, so that it is neither paced
	// nor among the calls the function's role must allow.
	noAPIOptions := func(o *sts.Options) { o.APIOptions = nil }
	if opts.RoleARN != "" {
		cfg.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(sts.NewFromConfig(cfg, noAPIOptions), opts.RoleARN,
			func(o *stscreds.AssumeRoleOptions) { o.RoleSessionName = RoleSessionName }))
	}
	param := os.Getenv(ConfigParameterEnv)
	if param == "" {
		param = config.DefaultParameter
	}
	log := opts.Log
	if log == nil {
		log = slog.Default()
	}
	// One engine per region, built on first use from this one configuration
	// with the region overridden. The configuration parameter is always read
	// in the function's own region.
	homeEC2 := ec2.NewFromConfig(cfg)
	if opts.ReportBlockPublicAccess {
		ReportBlockPublicAccess(ctx, log, homeEC2)
	}
	loader := &config.Loader{API: ssm.NewFromConfig(cfg), Parameter: param}
	pool := &share.Pool{
		Home:   cfg.Region,
		Config: loader,
		Log:    log,
		NewEC2: func(region string) share.EC2API {
			if region == cfg.Region {
				return homeEC2
			}
			return ec2.NewFromConfig(cfg, func(o *ec2.Options) { o.Region = region })
		},
		NewKMS: func(region string) share.KMSAPI {
			return kms.NewFromConfig(cfg, func(o *kms.Options) { o.Region = region })
		},
		// The parameters naming the newest image, and the receivers (the
		// accounts that run the receiver stack), reached through STS.
		NewSSM: func(region string) share.SSMAPI {
			return ssm.NewFromConfig(cfg, func(o *ssm.Options) { o.Region = region })
		},
		Receivers: receiver.NewSessions(cfg),
	}
	queueURL := opts.SweepQueueURL
	if queueURL == "" {
		queueURL = os.Getenv(SweepQueueEnv)
	}
	sweeper := &sweep.Sweeper{
		Engine: func(c *share.Cache) sweep.Engine { return pool.Engine("").WithCache(c) },
		Queue:  sqs.NewFromConfig(cfg), QueueURL: queueURL, Log: log,
		Pacer: pacer, Margin: opts.SweepMargin, Workers: opts.SweepWorkers,
	}
	if table := cmp.Or(opts.SweepLeaseTable, os.Getenv(SweepLeaseEnv)); table != "" {
		sweeper.Lease = &sweep.Lease{API: dynamodb.NewFromConfig(cfg), Table: table}
	}
	h := &handler.Handler{
		Engines: func(ctx context.Context, region string) (handler.Reconciler, error) {
			return pool.EngineFor(ctx, region)
		},
		Sweeper: sweeper,
		Log:     log,
		DryRun:  opts.DryRun,
	}
	return &App{Handler: h, Sweeper: sweeper, Pool: pool, Config: loader, Region: cfg.Region, sts: sts.NewFromConfig(cfg, noAPIOptions)}, nil
}
