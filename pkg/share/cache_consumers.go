package share

import (
	"context"
	"maps"
	"sync"
)

// consumerCache is what the reconciles of one sweep share of the consumer
// phase: this account's parameters, read once, and one session per
// receiver with its parameters. A parameter written (in a dry run,
// planned) is noted here; what is written is always decided from a fresh
// read (see Engine.parameter).
type consumerCache struct {
	mu        sync.Mutex
	owner     map[string]string
	receivers map[string]*receiverEntry
	// autoScaling holds the keys whose Auto Scaling grants the sweep has
	// looked at since they were last written.
	autoScaling map[string]bool
}

type receiverEntry struct {
	once sync.Once
	v    *receiverView
}

// ownerParameters returns this account's parameters names: the sweep's
// read when there is one, else a read.
func (r reader) ownerParameters(ctx context.Context, api SSMAPI, names []string) (map[string]string, error) {
	c := r.cache
	if c == nil {
		return parameterValues(ctx, api, names)
	}
	c.consumers.mu.Lock()
	defer c.consumers.mu.Unlock()
	if c.consumers.owner == nil {
		values, err := parameterValues(ctx, api, names)
		if err != nil {
			return nil, err
		}
		c.consumers.owner = values
	}
	return maps.Clone(c.consumers.owner), nil
}

// receiver returns the sweep's view of a receiver, opening it once; without
// a cache it opens one.
func (c *Cache) receiver(account, region string, open func() *receiverView) *receiverView {
	if c == nil {
		return open()
	}
	c.consumers.mu.Lock()
	if c.consumers.receivers == nil {
		c.consumers.receivers = map[string]*receiverEntry{}
	}
	ent := c.consumers.receivers[account+" "+region]
	if ent == nil {
		ent = &receiverEntry{}
		c.consumers.receivers[account+" "+region] = ent
	}
	c.consumers.mu.Unlock()
	ent.once.Do(func() { ent.v = open() })
	c.consumers.mu.Lock()
	defer c.consumers.mu.Unlock()
	v := *ent.v
	v.current = maps.Clone(ent.v.current)
	return &v
}

// putParameter notes a parameter the sweep wrote, or in a dry run planned
// (account "" is this one), also one SSM has not taken yet: the sweep
// writes it once, the next reconcile again.
func (c *Cache) putParameter(account, name, value string) {
	if c == nil {
		return
	}
	c.consumers.mu.Lock()
	defer c.consumers.mu.Unlock()
	values := c.consumers.owner
	if account != "" {
		for _, ent := range c.consumers.receivers {
			if ent.v != nil && ent.v.account == account {
				values = ent.v.current
			}
		}
	}
	if values == nil {
		return
	}
	if value == "" {
		delete(values, name)
	} else {
		values[name] = value
	}
}

// autoScalingOnce reports whether the Auto Scaling grants of a key are to
// be looked at: always outside a sweep, once per key in a sweep until the
// key is written (forgetKey).
func (c *Cache) autoScalingOnce(keyARN string) bool {
	if c == nil {
		return true
	}
	c.consumers.mu.Lock()
	defer c.consumers.mu.Unlock()
	if c.consumers.autoScaling[keyARN] {
		return false
	}
	if c.consumers.autoScaling == nil {
		c.consumers.autoScaling = map[string]bool{}
	}
	c.consumers.autoScaling[keyARN] = true
	return true
}

// forgetAutoScaling lets the sweep look at a key's Auto Scaling grants
// again: it was written.
func (c *Cache) forgetAutoScaling(keyARN string) {
	c.consumers.mu.Lock()
	defer c.consumers.mu.Unlock()
	delete(c.consumers.autoScaling, keyARN)
}
