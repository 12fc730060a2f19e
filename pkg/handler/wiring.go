package handler

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/smithy-go/middleware"

	"github.com/amishare/amishare/pkg/config"
	"github.com/amishare/amishare/pkg/share"
)

// ConfigParameterEnv names the environment variable holding the SSM parameter name.
const ConfigParameterEnv = "AMISHARE_CONFIG_PARAMETER"

// MaxAttempts is how often the SDK tries one call (throttling and 5xx are retried).
const MaxAttempts = 8

// Options tune New; the zero value is production.
type Options struct {
	Log        *slog.Logger
	HTTPClient aws.HTTPClient // for fault-injection tests; nil means the SDK default
	// APIOptions are added to every client's middleware stack (tests count calls with them).
	APIOptions []func(*middleware.Stack) error
	DryRun     bool
}

// New builds a Handler from the standard AWS SDK chain (so AWS_ENDPOINT_URL,
// AWS_REGION and credentials come from the environment), with the SDK's
// retryer in adaptive mode. Call it once per process.
func New(ctx context.Context, opts Options) (*Handler, error) {
	loadOpts := []func(*awsconfig.LoadOptions) error{
		awsconfig.WithRetryer(func() aws.Retryer {
			return retry.NewAdaptiveMode(func(o *retry.AdaptiveModeOptions) {
				o.StandardOptions = append(o.StandardOptions, func(so *retry.StandardOptions) {
					so.MaxAttempts = MaxAttempts
				})
			})
		}),
	}
	if len(opts.APIOptions) > 0 {
		loadOpts = append(loadOpts, awsconfig.WithAPIOptions(opts.APIOptions))
	}
	if opts.HTTPClient != nil {
		loadOpts = append(loadOpts, awsconfig.WithHTTPClient(opts.HTTPClient))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return nil, fmt.Errorf("loading AWS configuration: %w", err)
	}
	param := os.Getenv(ConfigParameterEnv)
	if param == "" {
		param = config.DefaultParameter
	}
	log := opts.Log
	if log == nil {
		log = slog.Default()
	}
	engine := &share.Engine{
		EC2:    ec2.NewFromConfig(cfg),
		KMS:    kms.NewFromConfig(cfg),
		Config: &config.Loader{API: ssm.NewFromConfig(cfg), Parameter: param},
		Log:    log,
	}
	return &Handler{Engine: engine, Log: log, DryRun: opts.DryRun}, nil
}
