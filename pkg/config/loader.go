package config

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/amishare/amishare/pkg/awserr"
	"github.com/amishare/amishare/pkg/awsid"
)

// DefaultParameter is the SSM parameter read when AMISHARE_CONFIG_PARAMETER is unset.
const DefaultParameter = "/amishare/config"

// DefaultTTL is how long a Lambda container keeps a configuration it has read.
const DefaultTTL = 60 * time.Second

// ErrMissing means the configuration parameter does not exist.
var ErrMissing = errors.New("configuration is missing")

// SSMAPI is the part of *ssm.Client the loader uses.
type SSMAPI interface {
	GetParameter(ctx context.Context, params *ssm.GetParameterInput, optFns ...func(*ssm.Options)) (*ssm.GetParameterOutput, error)
}

var _ SSMAPI = (*ssm.Client)(nil)

// Loader reads the configuration from SSM and keeps it for TTL, so that a
// warm container makes one GetParameter call a minute, not one per event.
// Errors are not cached: the next call tries again. It is safe for concurrent use.
type Loader struct {
	API       SSMAPI
	Parameter string
	TTL       time.Duration
	Now       func() time.Time // for tests; time.Now when nil

	mu      sync.Mutex
	cached  *Config
	expires time.Time
}

// Load returns the configuration. A missing parameter gives an error wrapping
// ErrMissing; an invalid document gives the validation error.
func (l *Loader) Load(ctx context.Context) (*Config, error) {
	now := time.Now
	if l.Now != nil {
		now = l.Now
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cached != nil && now().Before(l.expires) {
		return l.cached, nil
	}
	out, err := l.API.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(l.Parameter)})
	if err != nil {
		if awserr.IsNotFound(err) {
			return nil, fmt.Errorf("%w: SSM parameter %s does not exist", ErrMissing, l.Parameter)
		}
		return nil, fmt.Errorf("reading SSM parameter %s: %w", l.Parameter, err)
	}
	if out.Parameter == nil || out.Parameter.Value == nil {
		return nil, fmt.Errorf("%w: SSM parameter %s has no value", ErrMissing, l.Parameter)
	}
	cfg, err := Parse([]byte(*out.Parameter.Value))
	if err != nil {
		return nil, fmt.Errorf("SSM parameter %s (version %d): %w", l.Parameter, out.Parameter.Version, err)
	}
	if err := cfg.CheckAccount(awsid.AccountOf(aws.ToString(out.Parameter.ARN))); err != nil {
		return nil, fmt.Errorf("SSM parameter %s (version %d): %w", l.Parameter, out.Parameter.Version, err)
	}
	if err := cfg.CheckParameter(l.Parameter); err != nil {
		return nil, fmt.Errorf("SSM parameter %s (version %d): configuration is not valid: %w", l.Parameter, out.Parameter.Version, err)
	}
	cfg.Version, cfg.ConfigParameter = out.Parameter.Version, l.Parameter
	ttl := l.TTL
	if ttl == 0 {
		ttl = DefaultTTL
	}
	l.cached, l.expires = cfg, now().Add(ttl)
	return cfg, nil
}
