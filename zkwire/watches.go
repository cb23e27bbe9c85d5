package zkwire

import (
	"maps"
	"slices"

	"github.com/zooraft/zoo"
)

// watchKinds is the set of watch kinds a connection holds on one path. The
// connection keeps this record only for the wchs, wchc and wchp four-letter
// words (zoo's registry is not listable through its public API); it follows
// the requests that set and remove watches and the notifications that end
// one-shot watches, so it can be briefly off when a watch fires while the
// read that set it is still being answered.
type watchKinds uint8

const (
	kindData watchKinds = 1 << iota // getData and exists
	kindChild
	kindPersistent
	kindRecursive
)

// trackWatch records a watch about to be set and returns a func that forgets
// it again if setting it failed.
func (c *conn) trackWatch(path string, k watchKinds) (undo func()) {
	c.mu.Lock()
	had := c.watches[path]&k != 0
	c.watches[path] |= k
	c.mu.Unlock()
	if had {
		return func() {}
	}
	return func() {
		c.mu.Lock()
		c.clearKinds(path, k)
		c.mu.Unlock()
	}
}

// untrackWatch forgets watches removed by removeWatches.
func (c *conn) untrackWatch(path string, typ zoo.WatcherType) {
	var k watchKinds
	switch typ {
	case zoo.WatcherChildren:
		k = kindChild
	case zoo.WatcherData:
		k = kindData
	case zoo.WatcherAny:
		k = kindData | kindChild | kindPersistent | kindRecursive
	case zoo.WatcherPersistent:
		k = kindPersistent
	case zoo.WatcherPersistentRecursive:
		k = kindRecursive
	}
	c.mu.Lock()
	c.clearKinds(path, k)
	c.mu.Unlock()
}

// watchFired forgets the one-shot watches a notification ended. c.mu is held.
func (c *conn) watchFired(ev zoo.Event) {
	switch ev.Type {
	case zoo.EventNodeCreated, zoo.EventNodeDataChanged:
		c.clearKinds(ev.Path, kindData)
	case zoo.EventNodeDeleted:
		c.clearKinds(ev.Path, kindData|kindChild)
	case zoo.EventNodeChildrenChanged:
		c.clearKinds(ev.Path, kindChild)
	}
}

// clearKinds drops kinds k on path. c.mu is held.
func (c *conn) clearKinds(path string, k watchKinds) {
	if cur, ok := c.watches[path]; ok {
		if cur &^= k; cur == 0 {
			delete(c.watches, path)
		} else {
			c.watches[path] = cur
		}
	}
}

// watchedPaths returns the paths the connection watches, sorted, and the
// number of watches (one per kind per path).
func (c *conn) watchedPaths() ([]string, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, k := range c.watches {
		for ; k != 0; k &= k - 1 {
			n++
		}
	}
	return slices.Sorted(maps.Keys(c.watches)), n
}
