package zkclient

import (
	"maps"
	"slices"

	"github.com/zooraft/zoo"
)

// watchKinds is the set of watches the client holds on one path, kept as the
// Java client's ZKWatchManager keeps them: recorded when a reply says the
// server set one, dropped when a notification ends a one-shot watch or
// RemoveWatches removes it, and sent again with setWatches after a reconnect.
// The server keeps watches per connection, so this record is what survives.
type watchKinds uint8

const (
	kindData       watchKinds = 1 << iota // getData, or exists on a node that exists
	kindExist                             // exists on a node that does not exist
	kindChild                             // getChildren
	kindPersistent                        // addWatch PERSISTENT
	kindRecursive                         // addWatch PERSISTENT_RECURSIVE
)

// watchRegistry maps server paths (chroot included) to the watches on them.
// Keyed by server path so that a watch outside the chroot (getConfig's) is
// re-armed where it was set. Guarded by Conn.mu.
type watchRegistry map[string]watchKinds

func (w watchRegistry) add(path string, k watchKinds) { w[path] |= k }

// fired drops the one-shot watches a notification ends (ZKWatchManager.materialize).
func (w watchRegistry) fired(path string, typ zoo.EventType) {
	switch typ {
	case zoo.EventNodeCreated, zoo.EventNodeDataChanged:
		w.clear(path, kindData|kindExist)
	case zoo.EventNodeDeleted:
		w.clear(path, kindData|kindExist|kindChild)
	case zoo.EventNodeChildrenChanged:
		w.clear(path, kindChild)
	}
}

// kindsOf maps a WatcherType to the watch kinds it covers.
func kindsOf(typ zoo.WatcherType) watchKinds {
	switch typ {
	case zoo.WatcherChildren:
		return kindChild
	case zoo.WatcherData:
		return kindData | kindExist
	case zoo.WatcherAny:
		return kindData | kindExist | kindChild | kindPersistent | kindRecursive
	case zoo.WatcherPersistent:
		return kindPersistent
	case zoo.WatcherPersistentRecursive:
		return kindRecursive
	}
	return 0
}

// remove drops the watches of typ on path and returns the kinds it dropped.
func (w watchRegistry) remove(path string, typ zoo.WatcherType) watchKinds {
	removed := w[path] & kindsOf(typ)
	w.clear(path, removed)
	return removed
}

func (w watchRegistry) clear(path string, k watchKinds) {
	if cur, ok := w[path]; ok {
		if cur &^= k; cur == 0 {
			delete(w, path)
		} else {
			w[path] = cur
		}
	}
}

// removedEvents are the local events for removed watch kinds, one per
// event type, as ZooKeeper delivers one per watcher.
func removedEvents(k watchKinds) []zoo.EventType {
	var out []zoo.EventType
	if k&(kindData|kindExist) != 0 {
		out = append(out, EventDataWatchRemoved)
	}
	if k&kindChild != 0 {
		out = append(out, EventChildWatchRemoved)
	}
	if k&(kindPersistent|kindRecursive) != 0 {
		out = append(out, EventPersistentWatchRemoved)
	}
	return out
}

// watchLists is every registered watch, by kind, in path order.
type watchLists struct {
	data, exist, child, persistent, recursive []string
}

func (w watchRegistry) lists() watchLists {
	var l watchLists
	for _, p := range slices.Sorted(maps.Keys(w)) {
		k := w[p]
		if k&kindData != 0 {
			l.data = append(l.data, p)
		}
		if k&kindExist != 0 {
			l.exist = append(l.exist, p)
		}
		if k&kindChild != 0 {
			l.child = append(l.child, p)
		}
		if k&kindPersistent != 0 {
			l.persistent = append(l.persistent, p)
		}
		if k&kindRecursive != 0 {
			l.recursive = append(l.recursive, p)
		}
	}
	return l
}

// setWatchesBatch is how many path bytes one setWatches frame carries, as
// the Java client's SET_WATCHES_MAX_LENGTH: far below the server's 1 MiB
// frame limit even with the 4-byte length of every path.
const setWatchesBatch = 128 << 10

// batches splits l into frames of about setWatchesBatch path bytes (a batch
// may go over by its last path, as in ClientCnxn.primeConnection).
func (l watchLists) batches(limit int) []watchLists {
	var out []watchLists
	var cur watchLists
	size, empty := 0, true
	add := func(dst *[]string, p string) {
		*dst = append(*dst, p)
		size += len(p)
		empty = false
		if size >= limit {
			out = append(out, cur)
			cur, size, empty = watchLists{}, 0, true
		}
	}
	for _, p := range l.data {
		add(&cur.data, p)
	}
	for _, p := range l.exist {
		add(&cur.exist, p)
	}
	for _, p := range l.child {
		add(&cur.child, p)
	}
	for _, p := range l.persistent {
		add(&cur.persistent, p)
	}
	for _, p := range l.recursive {
		add(&cur.recursive, p)
	}
	if !empty {
		out = append(out, cur)
	}
	return out
}
