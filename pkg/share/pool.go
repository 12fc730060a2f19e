package share

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
)

// Pool builds one Engine per region on first use and keeps it, so that one
// function can act on events from any region: every engine reads the same
// configuration (the function's own region's), and uses EC2 and KMS
// clients of its region. It is safe for concurrent use.
type Pool struct {
	Home   string // the region the function runs in; "" in Engine means Home
	Config ConfigSource
	Log    *slog.Logger
	// NewEC2 and NewKMS build a region's clients (from one aws.Config with
	// the region overridden); each is called once per region.
	NewEC2 func(region string) EC2API
	NewKMS func(region string) KMSAPI
	// NewSSM builds a region's SSM client for the parameters amishare
	// keeps; Receivers opens sessions in the receivers. Either may be nil.
	NewSSM    func(region string) SSMAPI
	Receivers ReceiverOpener

	mu      sync.Mutex
	engines map[string]*Engine
	ec2     map[string]EC2API
}

// RegionNotAllowedError refuses a region that is neither the function's
// own nor one of the configuration's allowedRegions: no client is built
// for it, so a forged event cannot make amishare act anywhere.
type RegionNotAllowedError struct{ Region string }

func (e *RegionNotAllowedError) Error() string {
	return fmt.Sprintf("region %s is neither this function's region nor one of the configuration's allowedRegions", e.Region)
}

// EngineFor returns the engine acting in region ("" is Home) once the
// configuration allows it: Home always, any other region only when it is in
// allowedRegions. A configuration that cannot be read is returned as is.
func (p *Pool) EngineFor(ctx context.Context, region string) (*Engine, error) {
	if region != "" && region != p.Home {
		cfg, err := p.Config.Load(ctx)
		if err != nil {
			return nil, err
		}
		if !cfg.RegionAllowed(region) {
			return nil, &RegionNotAllowedError{Region: region}
		}
	}
	return p.Engine(region), nil
}

// Engine returns the engine acting in region (Home when region is ""),
// whatever the configuration says (see EngineFor).
func (p *Pool) Engine(region string) *Engine {
	if region == "" {
		region = p.Home
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if e, ok := p.engines[region]; ok {
		return e
	}
	if p.engines == nil {
		p.engines = map[string]*Engine{}
	}
	e := &Engine{EC2: p.ec2Locked(region), KMS: p.NewKMS(region), Config: p.Config, Log: p.Log, Region: region, Regions: p, Receivers: p.Receivers}
	if p.NewSSM != nil {
		e.SSM = p.NewSSM(region)
	}
	p.engines[region] = e
	return e
}

// EC2 returns region's EC2 client (RegionalEC2).
func (p *Pool) EC2(region string) EC2API {
	if region == "" {
		region = p.Home
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ec2Locked(region)
}

func (p *Pool) ec2Locked(region string) EC2API {
	if c, ok := p.ec2[region]; ok {
		return c
	}
	if p.ec2 == nil {
		p.ec2 = map[string]EC2API{}
	}
	c := p.NewEC2(region)
	p.ec2[region] = c
	return c
}
