package config

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/amishare/amishare/pkg/awsid"
)

var (
	keyIDRe    = regexp.MustCompile(`^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})$`)
	aliasRe    = regexp.MustCompile(`^alias/[a-zA-Z0-9/_-]{1,250}$`)
	keyARNRe   = regexp.MustCompile(`^arn:aws[a-z-]*:kms:([a-z0-9-]+):[0-9]{12}:(key/.+|alias/.+)$`)
	awsAliasRe = regexp.MustCompile(`(^|:)alias/aws/`)
)

// validateCopies checks allowedRegions and copyKeys: region names, and keys
// that name a customer-managed key of that region. An alias of an AWS
// managed key (alias/aws/...) is refused: such a copy could never be shared.
func (c *Config) validateCopies() []error {
	var errs []error
	for _, r := range c.AllowedRegions {
		if !awsid.IsRegion(r) {
			errs = append(errs, fmt.Errorf("allowedRegions: %q is not a region name", r))
		}
	}
	for _, region := range slices.Sorted(maps.Keys(c.CopyKeys)) {
		key := c.CopyKeys[region]
		if !awsid.IsRegion(region) {
			errs = append(errs, fmt.Errorf("copyKeys: %q is not a region name", region))
			continue
		}
		if err := checkCopyKey(region, key); err != nil {
			errs = append(errs, fmt.Errorf("copyKeys[%q]: %w", region, err))
		}
	}
	return errs
}

func checkCopyKey(region, key string) error {
	if awsAliasRe.MatchString(key) {
		return fmt.Errorf("%q is an AWS managed key, which can never be shared: give a customer-managed key", key)
	}
	if m := keyARNRe.FindStringSubmatch(key); m != nil {
		if m[1] != region {
			return fmt.Errorf("%q is a key of region %s, not %s", key, m[1], region)
		}
		rest := m[2]
		if id, ok := strings.CutPrefix(rest, "key/"); ok && !keyIDRe.MatchString(id) {
			return fmt.Errorf("%q: %q is not a key id", key, id)
		}
		if strings.HasPrefix(rest, "alias/") && !aliasRe.MatchString(rest) {
			return fmt.Errorf("%q: %q is not an alias name", key, rest)
		}
		return nil
	}
	if keyIDRe.MatchString(key) || aliasRe.MatchString(key) {
		return nil
	}
	return fmt.Errorf("%q is not a key id, key ARN or alias/NAME", key)
}

// RegionAllowed reports whether images may be copied to region.
func (c *Config) RegionAllowed(region string) bool {
	return slices.Contains(c.AllowedRegions, region)
}
