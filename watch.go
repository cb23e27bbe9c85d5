package zoo

import (
	"fmt"
	"sync"
)

// EventType says what happened to a watched znode.
type EventType int32

// Event types with ZooKeeper's numbers. EventNotWatching is go-zookeeper's
// local convention: the watch ended without firing (see Event.Err).
const (
	EventNotWatching         EventType = -2
	EventNone                EventType = -1
	EventNodeCreated         EventType = 1
	EventNodeDeleted         EventType = 2
	EventNodeDataChanged     EventType = 3
	EventNodeChildrenChanged EventType = 4
)

func (t EventType) String() string {
	switch t {
	case EventNotWatching:
		return "NotWatching"
	case EventNone:
		return "None"
	case EventNodeCreated:
		return "NodeCreated"
	case EventNodeDeleted:
		return "NodeDeleted"
	case EventNodeDataChanged:
		return "NodeDataChanged"
	case EventNodeChildrenChanged:
		return "NodeChildrenChanged"
	}
	return fmt.Sprintf("EventType(%d)", int32(t))
}

// Event is one watch notification.
type Event struct {
	Type EventType
	Path string // the node that changed (for recursive watches: the descendant)
	Zxid int64  // zxid of the transaction that fired it
	Err  error  // set with EventNotWatching: why the watch ended
}

// WatchMode selects a persistent watch's reach, with ZooKeeper's AddWatch numbers.
type WatchMode int32

const (
	// WatchPersistent fires for the node's create/delete/data changes and its child list changes.
	WatchPersistent WatchMode = 0
	// WatchPersistentRecursive fires for the node and every descendant; never NodeChildrenChanged.
	WatchPersistentRecursive WatchMode = 1
)

func (m WatchMode) String() string {
	switch m {
	case WatchPersistent:
		return "PERSISTENT"
	case WatchPersistentRecursive:
		return "PERSISTENT_RECURSIVE"
	}
	return fmt.Sprintf("WatchMode(%d)", int32(m))
}

// WatcherType selects which watches RemoveWatches removes (ZooKeeper's WatcherType).
type WatcherType int32

// Watcher types with ZooKeeper's numbers.
const (
	WatcherChildren            WatcherType = 1
	WatcherData                WatcherType = 2
	WatcherAny                 WatcherType = 3
	WatcherPersistent          WatcherType = 4
	WatcherPersistentRecursive WatcherType = 5
)

// watcher receives events. notify is called with the registry lock held, from
// the FSM apply loop: it must never block. It returns false when the watcher
// cannot take more events and must be removed everywhere.
type watcher interface {
	notify(ev Event) bool
	session() int64
}

// watchTable names the registry's tables.
type watchTable int

const (
	tableData watchTable = iota // getData and exists watches (ZooKeeper keeps them together)
	tableChild
	tablePersistent
	tableRecursive
	numTables
)

// watchRegistry holds one replica's watches. One-shot tables drop a watcher when
// it fires; persistent tables keep it.
type watchRegistry struct {
	mu     sync.Mutex // guards tables
	tables [numTables]map[string]map[watcher]struct{}
	count  int // registrations, for status
}

func newWatchRegistry() *watchRegistry {
	r := &watchRegistry{}
	for i := range r.tables {
		r.tables[i] = map[string]map[watcher]struct{}{}
	}
	return r
}

func (r *watchRegistry) add(t watchTable, path string, w watcher) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.tables[t][path]
	if m == nil {
		m = map[watcher]struct{}{}
		r.tables[t][path] = m
	}
	if _, ok := m[w]; !ok {
		m[w] = struct{}{}
		r.count++
	}
}

// trigger delivers the watch events for one applied change. Called by the FSM
// in apply order, so every watcher sees events in zxid order.
func (r *watchRegistry) trigger(c change, zxid int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.count == 0 {
		return
	}
	var notified []watcher
	fire := func(t watchTable, path string, typ EventType, evPath string, oneShot bool, acl []ACL) {
		m := r.tables[t][path]
		if len(m) == 0 {
			return
		}
		ev := Event{Type: typ, Path: evPath, Zxid: zxid}
	next:
		for w := range m {
			for _, n := range notified {
				if n == w {
					if oneShot {
						r.drop(t, path, w)
					}
					continue next
				}
			}
			notified = append(notified, w)
			if !mayRead(w, acl) {
				// ZooKeeper 3.8.4+ (CVE-2024-23944): an event goes only to
				// watchers allowed to read the node; a one-shot watch is
				// used up all the same.
				if oneShot {
					w.notify(Event{Type: EventNotWatching, Path: evPath, Zxid: zxid, Err: ErrNoAuth})
					r.drop(t, path, w)
				}
				continue
			}
			if !w.notify(ev) {
				r.removeWatcher(w)
				continue
			}
			if oneShot {
				r.drop(t, path, w)
			}
		}
	}
	p := c.path
	parent := ""
	if p != "/" {
		parent, _ = splitPath(p)
	}
	switch c.typ {
	case EventNodeCreated, EventNodeDataChanged:
		fire(tableData, p, c.typ, p, true, c.acl)
		fire(tablePersistent, p, c.typ, p, false, c.acl)
	case EventNodeDeleted:
		fire(tableData, p, c.typ, p, true, c.acl)
		fire(tableChild, p, c.typ, p, true, c.acl)
		fire(tablePersistent, p, c.typ, p, false, c.acl)
	}
	if len(r.tables[tableRecursive]) > 0 {
		for a := p; ; a, _ = splitPath(a) {
			fire(tableRecursive, a, c.typ, p, false, c.acl)
			if a == "/" {
				break
			}
		}
	}
	if c.typ != EventNodeDataChanged && parent != "" {
		notified = notified[:0]
		fire(tableChild, parent, EventNodeChildrenChanged, parent, true, c.parentACL)
		fire(tablePersistent, parent, EventNodeChildrenChanged, parent, false, c.parentACL)
	}
}

// mayRead reports whether w's session may read a node with this ACL, and so
// see its events. Watchers not owned by a session (tests) see everything.
func mayRead(w watcher, acl []ACL) bool {
	if len(acl) == 0 {
		return true
	}
	o, ok := w.(handleOwned)
	if !ok || o.handle() == nil {
		return true
	}
	return checkACL(acl, o.handle().currentIDs(), PermRead) == nil
}

func (r *watchRegistry) drop(t watchTable, path string, w watcher) {
	m := r.tables[t][path]
	if _, ok := m[w]; !ok {
		return
	}
	delete(m, w)
	r.count--
	if len(m) == 0 {
		delete(r.tables[t], path)
	}
}

// removeWatcher drops w from every table. Caller holds r.mu.
func (r *watchRegistry) removeWatcher(w watcher) {
	for t := range r.tables {
		for path, m := range r.tables[t] {
			if _, ok := m[w]; ok {
				r.drop(watchTable(t), path, w)
			}
		}
	}
}

// remove drops the watches of one session on path of the given type, ending
// each with a NotWatching event carrying reason. It reports whether any existed.
func (r *watchRegistry) remove(session int64, path string, typ WatcherType, reason error) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	found := false
	for _, t := range tablesFor(typ) {
		for w := range r.tables[t][path] {
			if w.session() != session {
				continue
			}
			found = true
			r.drop(t, path, w)
			w.notify(Event{Type: EventNotWatching, Path: path, Err: reason})
		}
	}
	return found
}

// tablesFor maps a WatcherType onto the tables it names.
func tablesFor(typ WatcherType) []watchTable {
	switch typ {
	case WatcherChildren:
		return []watchTable{tableChild}
	case WatcherData:
		return []watchTable{tableData}
	case WatcherAny:
		return []watchTable{tableData, tableChild, tablePersistent, tableRecursive}
	case WatcherPersistent:
		return []watchTable{tablePersistent}
	case WatcherPersistentRecursive:
		return []watchTable{tableRecursive}
	}
	return nil
}

// removeSession ends every watch of a session (closed or expired).
func (r *watchRegistry) removeSession(session int64, reason error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for t := range r.tables {
		for path, m := range r.tables[t] {
			for w := range m {
				if w.session() == session {
					r.drop(watchTable(t), path, w)
					w.notify(Event{Type: EventNotWatching, Path: path, Err: reason})
				}
			}
		}
	}
}

// oneShotWatch is a GetW/ExistsW/ChildrenW watch: a channel of one event, then closed.
type oneShotWatch struct {
	sess  int64
	owner *Session
	ch    chan Event
	fired bool // guarded by the registry lock
}

func newOneShotWatch(session int64) *oneShotWatch {
	return &oneShotWatch{sess: session, ch: make(chan Event, 1)}
}

func (w *oneShotWatch) handle() *Session { return w.owner }

func (w *oneShotWatch) session() int64 { return w.sess }

func (w *oneShotWatch) notify(ev Event) bool {
	if !w.fired {
		w.fired = true
		w.ch <- ev // never blocks: capacity one, one send
		close(w.ch)
	}
	return true
}

// PersistentWatch is a watch added with [Session.AddWatch]. It stays until
// removed, the session ends, or its consumer falls more than the buffer behind,
// in which case Events is closed and Err returns [ErrWatchOverflow].
type PersistentWatch struct {
	sess  int64
	owner *Session
	path  string
	mode  WatchMode
	ch    chan Event
	mu    sync.Mutex // guards err, closed
	err   error
	done  bool
}

// Events delivers the watch's events in zxid order; it is closed when the watch ends.
func (w *PersistentWatch) Events() <-chan Event { return w.ch }

// Err says why the watch ended: nil while it runs or after a plain removal.
func (w *PersistentWatch) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

func (w *PersistentWatch) session() int64   { return w.sess }
func (w *PersistentWatch) handle() *Session { return w.owner }

// handleOwned is implemented by watchers that belong to one Session handle,
// so that detaching a handle ends exactly its watches.
type handleOwned interface{ handle() *Session }

// removeHandle ends, without events, every watch owned by handle h.
func (r *watchRegistry) removeHandle(h *Session) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for t := range r.tables {
		for path, m := range r.tables[t] {
			for w := range m {
				if o, ok := w.(handleOwned); ok && o.handle() == h {
					r.drop(watchTable(t), path, w)
				}
			}
		}
	}
}

// has reports whether handle h has a watch of typ on path.
func (r *watchRegistry) has(h *Session, path string, typ WatcherType) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, t := range tablesFor(typ) {
		for w := range r.tables[t][path] {
			if o, ok := w.(handleOwned); ok && o.handle() == h {
				return true
			}
		}
	}
	return false
}

func (w *PersistentWatch) notify(ev Event) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return false
	}
	if ev.Type == EventNotWatching {
		w.done = true
		if ev.Err != nil && ev.Err != ErrNoWatcher {
			w.err = ev.Err
		}
		close(w.ch)
		return false
	}
	select {
	case w.ch <- ev:
		return true
	default:
		w.done, w.err = true, ErrWatchOverflow
		close(w.ch)
		return false
	}
}

// catchUp fires, after a snapshot replaced the tree, the one-shot events the
// skipped entries would have fired (ZooKeeper's setWatches rules, relative to
// the old applied zxid). Persistent watches cannot be replayed exactly, so they
// are ended with [ErrWatchReset] for their owner to re-establish.
func (r *watchRegistry) catchUp(old, cur *tree, oldZxid, zxid int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.count == 0 {
		return
	}
	fireAll := func(t watchTable, path string, ev Event) {
		for w := range r.tables[t][path] {
			r.drop(t, path, w)
			w.notify(ev)
		}
	}
	for path := range r.tables[tableData] {
		n, was := cur.get(path), old.get(path) != nil
		switch {
		case n == nil && was:
			fireAll(tableData, path, Event{Type: EventNodeDeleted, Path: path, Zxid: zxid})
		case n != nil && !was:
			fireAll(tableData, path, Event{Type: EventNodeCreated, Path: path, Zxid: zxid})
		case n != nil && n.mzxid > oldZxid:
			fireAll(tableData, path, Event{Type: EventNodeDataChanged, Path: path, Zxid: zxid})
		}
	}
	for path := range r.tables[tableChild] {
		n := cur.get(path)
		switch {
		case n == nil:
			fireAll(tableChild, path, Event{Type: EventNodeDeleted, Path: path, Zxid: zxid})
		case n.pzxid > oldZxid:
			fireAll(tableChild, path, Event{Type: EventNodeChildrenChanged, Path: path, Zxid: zxid})
		}
	}
	for _, t := range []watchTable{tablePersistent, tableRecursive} {
		for path, m := range r.tables[t] {
			for w := range m {
				r.drop(t, path, w)
				w.notify(Event{Type: EventNotWatching, Path: path, Zxid: zxid, Err: ErrWatchReset})
			}
		}
	}
}
