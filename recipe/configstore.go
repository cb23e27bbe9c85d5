package recipe

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/zooraft/zoo"
)

// The read side of TreeCache: plain access to the cached nodes, and typed
// access to JSON documents (Decode, WatchJSON), the config store use.

// Get returns the cached data and Stat of the node at path; ok is false if
// the cache holds no such node. The data is the caller's to keep.
func (c *TreeCache) Get(path string) (data []byte, stat zoo.Stat, ok bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	n := c.nodes[path]
	if n == nil {
		return nil, zoo.Stat{}, false
	}
	return slices.Clone(n.data), n.stat, true
}

// Children returns the sorted names of the cached children of path; ok is
// false if the cache holds no such node.
func (c *TreeCache) Children(path string) (names []string, ok bool) {
	c.mu.RLock()
	_, ok = c.nodes[path]
	c.mu.RUnlock()
	return c.childNames(path), ok
}

func (c *TreeCache) childNames(path string) []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	n := c.nodes[path]
	if n == nil {
		return nil
	}
	names := make([]string, 0, len(n.children))
	for name := range n.children {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// Snapshot returns a copy of the whole cached tree, by path.
func (c *TreeCache) Snapshot() map[string]CachedNode {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make(map[string]CachedNode, len(c.nodes))
	for p, n := range c.nodes {
		out[p] = CachedNode{Data: slices.Clone(n.data), Stat: n.stat}
	}
	return out
}

// Walk calls fn for every cached node in depth-first order, parents before
// children and siblings sorted, on a copy taken when Walk starts (fn may call
// the cache). It stops at the first error fn returns and returns it.
func (c *TreeCache) Walk(fn func(path string, data []byte, stat zoo.Stat) error) error {
	snap := c.Snapshot()
	paths := make([]string, 0, len(snap))
	for p := range snap {
		paths = append(paths, p)
	}
	// Sorting by segments gives depth-first order with sorted siblings
	// ("/a/b" before "/a-b", which plain string order would not).
	slices.SortFunc(paths, func(a, b string) int {
		return slices.Compare(strings.Split(a, "/"), strings.Split(b, "/"))
	})
	for _, p := range paths {
		if err := fn(p, snap[p].Data, snap[p].Stat); err != nil {
			return err
		}
	}
	return nil
}

// Decode decodes the cached JSON data of the node at path into v. A node
// the cache does not hold is a [*zoo.PathError] wrapping [zoo.ErrNoNode].
func (c *TreeCache) Decode(path string, v any) error {
	data, _, ok := c.Get(path)
	if !ok {
		return &zoo.PathError{Op: "recipe.TreeCache.Decode", Path: path, Err: zoo.ErrNoNode}
	}
	if err := json.Unmarshal(data, v); err != nil {
		return &zoo.PathError{Op: "recipe.TreeCache.Decode", Path: path, Err: err}
	}
	return nil
}

// JSONValue is one state of a JSON config node followed by [WatchJSON].
type JSONValue[T any] struct {
	Value  T        // the decoded data; the zero T if !Exists or Err != nil
	Exists bool     // whether the node exists
	Stat   zoo.Stat // the node's Stat, if it exists
	Err    error    // why the data did not decode, if it did not
}

// WatchJSON follows the JSON document in the node at path, through the cache
// c (which must cover path; started before or after the call): the feed
// receives the decoded value once the cache is loaded and again whenever the
// node is created, changed or deleted. Values are coalesced (see [Feed]): a
// reader always ends up with the current configuration.
//
// A node that does not hold valid JSON for T is reported in the value's Err,
// not by ending the feed, so a bad edit can be fixed in place. The feed ends
// when ctx ends (with its error) or when the cache stops (with the cache's
// Err).
func WatchJSON[T any](ctx context.Context, c *TreeCache, path string) *Feed[JSONValue[T]] {
	f := feedNew[JSONValue[T]]()
	if !c.inScope(path) {
		f.end(&zoo.PathError{Op: "recipe.WatchJSON", Path: path,
			Err: fmt.Errorf("%w: not inside the cache's subtree %s", zoo.ErrBadArguments, c.root)})
		return f
	}
	first := true
	var last zoo.Stat
	var lastExists bool
	go feedCache(ctx, c, f, func() {
		data, st, ok := c.Get(path)
		if !first && ok == lastExists && st.Czxid == last.Czxid && st.Mzxid == last.Mzxid {
			return
		}
		v := JSONValue[T]{Exists: ok, Stat: st}
		if ok {
			if err := json.Unmarshal(data, &v.Value); err != nil {
				var zero T
				v.Value, v.Err = zero, &zoo.PathError{Op: "recipe.WatchJSON", Path: path, Err: err}
			}
		}
		f.send(v)
		first, last, lastExists = false, st, ok
	})
	return f
}

// feedCache runs step once c is loaded and again after every change the cache
// applies (coalesced), until ctx ends or the cache stops; it then ends f with
// why. step reads the cache and sends what it finds to f.
func feedCache[T any](ctx context.Context, c *TreeCache, f *Feed[T], step func()) {
	sub := c.subscribe() // before the first read: no change slips between
	defer c.unsubscribe(sub)
	for wake := c.Ready(); ; wake = sub {
		select {
		case <-wake:
		case <-c.Done():
			f.end(c.Err())
			return
		case <-ctx.Done():
			f.end(ctx.Err())
			return
		}
		step()
	}
}
