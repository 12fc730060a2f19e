package config

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"unicode"

	"github.com/amishare/amishare/pkg/amitag"
	"github.com/amishare/amishare/pkg/awsid"
)

// What the accounts an image is shared with see: the parameters naming the
// newest image (parameters, parameterPrefix), the receivers amishare acts in
// (receivers, receiverRole), the tags mirrored there (mirrorTags) and the
// Auto Scaling grants (autoScalingGrants).

// DefaultParameterPrefix is where the parameters amishare keeps lie when
// the configuration names no parameterPrefix.
const DefaultParameterPrefix = "/amishare/images/"

// DefaultReceiverRole is the receivers' role name when the configuration
// names no receiverRole (the receiver stack's default).
const DefaultReceiverRole = "amishare-receiver"

// MaxParameterLevels is the deepest hierarchy SSM allows a parameter name
// ("A parameter name hierarchy can have a maximum of 15 levels").
const MaxParameterLevels = 15

// maxParameterName bounds a parameter name: SSM allows 1011 characters for
// the whole parameter ARN, of which about 60 are the ARN's own.
const maxParameterName = 900

var (
	// SSM parameter names: letters, digits and . - _ in each level.
	parameterLevelRe = regexp.MustCompile(`^[a-zA-Z0-9_.-]+$`)
	// IAM role names (the receivers' role is assumed by ARN, without a path).
	roleNameRe = regexp.MustCompile(`^[\w+=,.@-]{1,64}$`)
)

// validateConsumers checks parameters, parameterPrefix, receivers,
// receiverRole, mirrorTags and autoScalingGrants, and fills in the defaults.
func (c *Config) validateConsumers() []error {
	var errs []error
	if c.ParameterPrefix == "" {
		c.ParameterPrefix = DefaultParameterPrefix
	} else if err := checkPrefix(c.ParameterPrefix); err != nil {
		errs = append(errs, fmt.Errorf("parameterPrefix: %w", err))
	}
	for _, name := range slices.Sorted(maps.Keys(c.Parameters)) {
		if err := c.checkParameterName(name); err != nil {
			errs = append(errs, fmt.Errorf("parameters: %w", err))
		}
		if err := checkNamePattern(c.Parameters[name]); err != nil {
			errs = append(errs, fmt.Errorf("parameters[%q]: %w", name, err))
		}
	}
	for i, a := range c.Receivers {
		switch {
		case !awsid.IsAccountID(a):
			errs = append(errs, fmt.Errorf("receivers: %q is not a 12-digit account id", a))
		case !c.Allowed(a):
			errs = append(errs, fmt.Errorf("receivers: %s is not an allowed account (allowedAccounts or a group): images are never shared with it", a))
		case slices.Contains(c.Receivers[:i], a):
			errs = append(errs, fmt.Errorf("receivers: %s is listed twice", a))
		}
	}
	if c.ReceiverRole == "" {
		c.ReceiverRole = DefaultReceiverRole
	} else if !roleNameRe.MatchString(c.ReceiverRole) {
		errs = append(errs, fmt.Errorf("receiverRole: %q is not an IAM role name (letters, digits and +=,.@_-, at most 64, no path)", c.ReceiverRole))
	}
	for i, k := range c.MirrorTags {
		if err := checkMirrorTag(k); err != nil {
			errs = append(errs, fmt.Errorf("mirrorTags: %w", err))
		} else if slices.Contains(c.MirrorTags[:i], k) {
			errs = append(errs, fmt.Errorf("mirrorTags: %q is listed twice", k))
		}
	}
	if c.AutoScalingGrants && c.KMS != "" && c.KMS != ModePolicy {
		errs = append(errs, fmt.Errorf(`autoScalingGrants: needs "kms": "policy" (the key policy lets each receiver's role create the grant), not %q`, c.KMS))
	}
	return errs
}

// checkPrefix checks a parameter prefix: "/", then levels each followed by "/".
func checkPrefix(p string) error {
	if !strings.HasPrefix(p, "/") || !strings.HasSuffix(p, "/") || len(p) < 3 {
		return fmt.Errorf("%q must start and end with / and name at least one level (like %s)", p, DefaultParameterPrefix)
	}
	return checkLevels(p, strings.Split(strings.Trim(p, "/"), "/"))
}

// checkLevels checks the levels of a parameter name or prefix.
func checkLevels(name string, levels []string) error {
	if len(levels) > MaxParameterLevels {
		return fmt.Errorf("%q has %d levels; SSM allows at most %d", name, len(levels), MaxParameterLevels)
	}
	for _, l := range levels {
		if !parameterLevelRe.MatchString(l) {
			return fmt.Errorf("%q: level %q must hold only letters, digits and . _ - (no whitespace, no empty level)", name, l)
		}
	}
	if first := strings.ToLower(levels[0]); strings.HasPrefix(first, "aws") || strings.HasPrefix(first, "ssm") {
		return fmt.Errorf(`%q: SSM reserves names that begin with "aws" or "ssm"`, name)
	}
	return nil
}

// checkParameterName checks a declared parameter name: well formed, under
// the prefix, exactly as written.
func (c *Config) checkParameterName(name string) error {
	if strings.IndexFunc(name, unicode.IsSpace) >= 0 {
		return fmt.Errorf("%q holds whitespace: names are compared exactly", name)
	}
	if !strings.HasPrefix(name, "/") || strings.HasSuffix(name, "/") || len(name) > maxParameterName {
		return fmt.Errorf("%q must start with /, not end with /, and hold at most %d characters", name, maxParameterName)
	}
	if err := checkLevels(name, strings.Split(name[1:], "/")); err != nil {
		return err
	}
	if !c.UnderPrefix(name) {
		return fmt.Errorf("%q is outside parameterPrefix %q", name, c.ParameterPrefix)
	}
	return nil
}

// checkNamePattern checks an AMI name pattern: an AMI name is 3 to 128
// characters, so a pattern longer than that or empty is a mistake.
func checkNamePattern(p string) error {
	if strings.Trim(p, "*") == "" && p != "*" || len(p) > 128 {
		return fmt.Errorf("%q is not an AMI name pattern (1 to 128 characters, * and ? as wildcards)", p)
	}
	return nil
}

// checkMirrorTag refuses amishare's own keys and AWS's reserved ones: a
// receiver must never see amishare's tags as if they were its own, and aws:
// keys cannot be written.
func checkMirrorTag(k string) error {
	lower := strings.ToLower(k)
	switch {
	case k == "" || len(k) > 128:
		return fmt.Errorf("%q is not a tag key (1 to 128 characters)", k)
	case strings.HasPrefix(lower, amitag.Prefix):
		return fmt.Errorf("%q: amishare's own tags are never mirrored", k)
	case strings.HasPrefix(lower, "aws:"):
		return fmt.Errorf("%q: keys beginning with aws: are reserved by AWS", k)
	}
	return nil
}

// UnderPrefix reports whether name lies under the parameter prefix.
func (c *Config) UnderPrefix(name string) bool {
	return len(name) > len(c.ParameterPrefix) && strings.HasPrefix(name, c.ParameterPrefix)
}

// NamePattern returns the AMI name pattern of a declared parameter.
func (c *Config) NamePattern(parameter string) (string, bool) {
	p, ok := c.Parameters[parameter]
	return p, ok
}

// IsReceiver reports whether account runs the receiver stack.
func (c *Config) IsReceiver(account string) bool { return slices.Contains(c.Receivers, account) }

// Consumers reports whether parameters are declared or receivers have
// something to hold (mirrored tags, Auto Scaling grants): without either,
// a reconcile makes no call for them.
func (c *Config) Consumers() bool {
	return len(c.Parameters) > 0 || len(c.Receivers) > 0 && (len(c.MirrorTags) > 0 || c.AutoScalingGrants)
}

// CheckParameter refuses a configuration whose parameters could overwrite
// amishare's own configuration parameter (name): declared as one of them,
// or lying under parameterPrefix.
func (c *Config) CheckParameter(name string) error {
	if name == "" {
		return nil
	}
	var errs []error
	if _, ok := c.Parameters[name]; ok {
		errs = append(errs, fmt.Errorf("parameters: %q is amishare's own configuration parameter", name))
	}
	if strings.HasPrefix(name, c.ParameterPrefix) {
		errs = append(errs, fmt.Errorf("parameterPrefix: %q covers amishare's own configuration parameter %s", c.ParameterPrefix, name))
	}
	return errors.Join(errs...)
}

// WithoutReceivers returns a copy of c with no receiver: the consumer phase
// of an image no receiver can hold.
func (c *Config) WithoutReceivers() *Config {
	cc := *c
	cc.Receivers = nil
	return &cc
}
