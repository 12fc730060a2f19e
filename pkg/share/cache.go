package share

import (
	"slices"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/amishare/amishare/pkg/config"
	"github.com/amishare/amishare/pkg/share/rules"
)

// Cache holds the reads that the reconciles of one sweep share, so that a
// sweep reads the configuration once, each snapshot in batches, each key
// once, and the list of managed images once. Build a new one per sweep (a
// zero Cache is ready to use): it never expires. What a reconcile writes is
// forgotten (keys) or read afresh before writing, under a lock that keeps
// the sweep's other workers off that key until the write is done, so the
// cache never decides a change. It is safe for concurrent use; a nil *Cache
// caches nothing.
type Cache struct {
	// Config is the configuration the sweep read at its start.
	Config *config.Config
	// Managed is the sweep's list of managed images (those with the accounts
	// or status tag), used to find what other images need on a key or snapshot.
	Managed []ec2types.Image

	mu     sync.Mutex
	snaps  map[string]ec2types.Snapshot
	keys   map[string]*keyEntry
	writes map[string]*sync.Mutex // per key ARN: held from its fresh read to its write

	consumers consumerCache // the parameters and the receivers (cache_consumers.go)
}

// keyEntry is one key's read; its mutex makes concurrent reconciles that
// meet the same key wait for one read instead of making their own.
type keyEntry struct {
	mu   sync.Mutex
	done bool
	k    rules.KeyState
	err  error
}

// snapshots returns the cached snapshots among ids and the ids not cached.
func (c *Cache) snapshots(ids []string) (found []ec2types.Snapshot, missing []string) {
	if c == nil {
		return nil, ids
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range ids {
		if s, ok := c.snaps[id]; ok {
			found = append(found, s)
		} else if !slices.Contains(missing, id) {
			missing = append(missing, id)
		}
	}
	return found, missing
}

func (c *Cache) putSnapshots(snaps []ec2types.Snapshot) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.snaps == nil {
		c.snaps = map[string]ec2types.Snapshot{}
	}
	for _, s := range snaps {
		c.snaps[aws.ToString(s.SnapshotId)] = s
	}
}

// forgetSnapshots drops snapshots whose tags the sweep changed.
func (c *Cache) forgetSnapshots(ids []string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range ids {
		delete(c.snaps, id)
	}
}

// key returns the cached read of keyID, or calls read once and keeps its
// answer, error included: a key that cannot be read in this sweep fails
// every image behind it without another call.
func (c *Cache) key(keyID string, read func() (rules.KeyState, error)) (rules.KeyState, error) {
	if c == nil {
		return read()
	}
	c.mu.Lock()
	if c.keys == nil {
		c.keys = map[string]*keyEntry{}
	}
	ent := c.keys[keyID]
	if ent == nil {
		ent = &keyEntry{}
		c.keys[keyID] = ent
	}
	c.mu.Unlock()
	ent.mu.Lock()
	defer ent.mu.Unlock()
	if !ent.done {
		ent.k, ent.err = read()
		ent.done = true
	}
	k := ent.k
	k.Accounts, k.Organizations = slices.Clone(k.Accounts), slices.Clone(k.Organizations)
	return k, ent.err
}

// forgetKey drops a key the sweep has written, so the next image reads it again.
func (c *Cache) forgetKey(keyARN string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	delete(c.keys, keyARN)
	c.mu.Unlock()
	c.forgetAutoScaling(keyARN)
}

// lockKeys locks the keys a reconcile is about to read afresh and write,
// in ARN order (so two reconciles never wait for each other in a cycle),
// and returns the function that unlocks them (calling it again does nothing).
func (c *Cache) lockKeys(arns []string) (unlock func()) {
	if c == nil || len(arns) == 0 {
		return func() {}
	}
	arns = slices.Compact(slices.Sorted(slices.Values(arns)))
	locks := make([]*sync.Mutex, len(arns))
	c.mu.Lock()
	if c.writes == nil {
		c.writes = map[string]*sync.Mutex{}
	}
	for i, arn := range arns {
		if c.writes[arn] == nil {
			c.writes[arn] = &sync.Mutex{}
		}
		locks[i] = c.writes[arn]
	}
	c.mu.Unlock()
	for _, l := range locks {
		l.Lock()
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			for _, l := range slices.Backward(locks) {
				l.Unlock()
			}
		})
	}
}
