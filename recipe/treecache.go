package recipe

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/zooraft/zoo"
)

// TreeCache keeps a local, current copy of a subtree (Curator's CuratorCache
// and TreeCache): every node's data and Stat, readable without a round trip
// and without blocking, plus notifications of changes.
//
// It is kept by one persistent recursive watch on the root
// ([zoo.WatchPersistentRecursive]). Start adds the watch first and then reads
// the tree, so nothing that changes during the read is missed. Each batch of
// watch events is then applied by re-reading the changed nodes (and the
// parents of created or deleted ones, whose Stat changed) in one consistent
// view ([zoo.Session.MultiRead]). Events and reads are handled by one
// goroutine, in order, on the session's replica: every read is at least as new
// as every event already received and as every earlier read, so the cache
// only ever moves forward; a node's Stat (czxid, mzxid) is also compared
// before an entry is replaced, so an older read can never overwrite newer
// data.
//
// If the watch ends while the session lives ([zoo.ErrWatchOverflow]: the
// cache fell more than the watch's buffer behind; [zoo.ErrWatchReset]: the
// replica installed a snapshot; or a removal), the cache resyncs: it adds the
// watch again, reloads the subtree, and reports the differences as ordinary
// events. Transient errors ([zoo.ErrNotServing] while the replica is out of
// quorum) are retried; meanwhile the cache serves its last state.
//
// Session end stops the cache: Done is closed, Err returns
// [zoo.ErrSessionExpired] or [zoo.ErrClosed], and Get and friends keep
// answering from the last state, which is no longer kept current.
//
// A cached Stat is the one read with the node's last change, kept exact for
// child counts too (a parent is re-read when a child comes or goes), except
// Aversion: ACL changes fire no watch.
//
// Paths given to Get, Children and Decode are absolute znode paths. Nodes the
// session may not read (ACL) are left out, as are nodes below MaxDepth.
type TreeCache struct {
	s    *zoo.Session
	root string
	opts TreeCacheOptions

	mu    sync.RWMutex // guards nodes and the nodes' children sets
	nodes map[string]*cacheNode

	stateMu    sync.Mutex // guards started, closed, fwdStarted, err
	started    bool
	closed     bool
	fwdStarted bool
	err        error

	runCtx context.Context // ends at Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // the run and forward goroutines
	ready  chan struct{}  // closed once the initial load is in
	done   chan struct{}  // closed when the cache stops

	events   chan CacheEvent
	evWanted atomic.Bool   // Events was called: queue events
	evWake   chan struct{} // capacity 1: pending events or a state change
	evMu     sync.Mutex    // guards evQueue, evDrop
	evQueue  []CacheEvent
	evDrop   bool

	subMu sync.Mutex // guards subs
	subs  map[chan struct{}]struct{}

	resyncs atomic.Int64 // completed resyncs (observability, tests)
}

// TreeCacheOptions tune a [TreeCache]. The zero value caches the whole subtree.
type TreeCacheOptions struct {
	// MaxDepth limits the levels cached below the root: 1 caches the root and
	// its children, 2 also their children, and so on. 0 means no limit.
	MaxDepth int
	// EventBuffer is how many change events are held for a slow reader of
	// Events before the cache drops them and, once the reader has caught up,
	// sends one CacheEventsDropped instead. Default 4096.
	EventBuffer int
}

// CachedNode is one node as the cache holds it.
type CachedNode struct {
	Data []byte   // the node's data (the caller's to keep)
	Stat zoo.Stat // the node's Stat as of its last change the cache applied
}

// CacheEventType says what a [CacheEvent] reports.
type CacheEventType int

// Cache event types.
const (
	// CacheNodeCreated: a node appeared (also for every node of the initial
	// load, and for a node deleted and created again).
	CacheNodeCreated CacheEventType = iota + 1
	// CacheNodeUpdated: a node's data changed (its mzxid moved).
	CacheNodeUpdated
	// CacheNodeDeleted: a node is gone (children are reported before parents).
	CacheNodeDeleted
	// CacheInitialized: the initial load is complete (after its Created events).
	CacheInitialized
	// CacheEventsDropped: the Events reader fell more than EventBuffer events
	// behind; some were dropped. Reread what you need (Snapshot): the cache
	// itself is current.
	CacheEventsDropped
)

// String returns the type's name, such as "NodeCreated".
func (t CacheEventType) String() string {
	switch t {
	case CacheNodeCreated:
		return "NodeCreated"
	case CacheNodeUpdated:
		return "NodeUpdated"
	case CacheNodeDeleted:
		return "NodeDeleted"
	case CacheInitialized:
		return "Initialized"
	case CacheEventsDropped:
		return "EventsDropped"
	}
	return fmt.Sprintf("CacheEventType(%d)", int(t))
}

// CacheEvent is one change of the cached tree.
type CacheEvent struct {
	Type CacheEventType // what happened
	Path string         // empty for Initialized and EventsDropped
	Data []byte         // Created, Updated: the node's data
	Stat zoo.Stat       // Created, Updated: its Stat; Deleted: its last cached Stat
}

// Errors of the tree cache's life cycle.
var (
	// ErrCacheClosed: the cache was closed.
	ErrCacheClosed = errors.New("recipe: tree cache closed")
	// ErrCacheStarted: Start was called twice.
	ErrCacheStarted = errors.New("recipe: tree cache already started")
)

type cacheNode struct {
	data     []byte // never modified in place: replaced
	stat     zoo.Stat
	children map[string]struct{}
}

const (
	cacheDefaultEventBuffer = 4096
	cacheBatchMax           = 512 // watch events applied with one MultiRead
	cacheLoadChunk          = 128 // nodes read per MultiRead while loading
)

// NewTreeCache returns a cache of the subtree at root ("/" for everything).
// Nothing happens until Start. A malformed root or a negative option wraps
// [zoo.ErrBadArguments].
func NewTreeCache(s *zoo.Session, root string, opts TreeCacheOptions) (*TreeCache, error) {
	if err := checkArgs("recipe.NewTreeCache", s, root, true); err != nil {
		return nil, err
	}
	if opts.MaxDepth < 0 || opts.EventBuffer < 0 {
		return nil, fmt.Errorf("recipe: tree cache options %+v: %w", opts, zoo.ErrBadArguments)
	}
	if opts.EventBuffer == 0 {
		opts.EventBuffer = cacheDefaultEventBuffer
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &TreeCache{
		s: s, root: root, opts: opts,
		nodes:  map[string]*cacheNode{},
		runCtx: ctx, cancel: cancel,
		ready: make(chan struct{}), done: make(chan struct{}),
		events: make(chan CacheEvent, 64), evWake: make(chan struct{}, 1),
		subs: map[chan struct{}]struct{}{},
	}, nil
}

// Root returns the cached subtree's root.
func (c *TreeCache) Root() string { return c.root }

// Start adds the watch, loads the subtree and returns once the cache holds
// it (Ready is closed then); the cache then keeps itself current until Close
// or the end of the session. ctx bounds only the initial load; if it fails,
// the cache is stopped with that error.
func (c *TreeCache) Start(ctx context.Context) error {
	c.stateMu.Lock()
	switch {
	case c.closed:
		c.stateMu.Unlock()
		return ErrCacheClosed
	case c.started:
		c.stateMu.Unlock()
		return ErrCacheStarted
	}
	c.started, c.fwdStarted = true, true
	c.wg.Add(1)
	go c.forward()
	c.stateMu.Unlock()

	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(c.runCtx, cancel)
	defer stop()
	w, nodes, err := c.establish(lctx)
	if err != nil {
		if c.runCtx.Err() != nil {
			err = ErrCacheClosed
		}
		c.finish(err)
		return err
	}
	c.install(nodes, true)
	close(c.ready)

	c.stateMu.Lock()
	if c.closed {
		c.stateMu.Unlock()
		// Close ran while we loaded and may have missed our watch.
		if c.s.Err() == nil {
			rctx, cancel := cleanupCtx(context.Background(), c.s)
			_ = c.s.RemoveWatches(rctx, c.root, zoo.WatcherPersistentRecursive)
			cancel()
		}
		return ErrCacheClosed
	}
	c.wg.Add(1)
	go c.run(w)
	c.stateMu.Unlock()
	return nil
}

// Ready is closed once the initial load is in the cache.
func (c *TreeCache) Ready() <-chan struct{} { return c.ready }

// Done is closed when the cache has stopped (Close, session end, failed
// Start); Err says why.
func (c *TreeCache) Done() <-chan struct{} { return c.done }

// Err returns nil while the cache runs, then why it stopped: ErrCacheClosed,
// the session's end ([zoo.ErrSessionExpired], [zoo.ErrClosed]) or the error of
// a failed Start.
func (c *TreeCache) Err() error {
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	return c.err
}

// Events returns the channel of change notifications, in the order the
// changes were applied to the cache. When an event arrives the cache already
// reflects it (and perhaps later changes). Events are queued only from the
// first call of Events on: call it before Start to see the initial load. The
// channel is closed when the cache stops (after the remaining events, unless
// stopped by Close). A reader that falls more than EventBuffer events behind
// gets CacheEventsDropped; the cache itself never waits for the reader.
func (c *TreeCache) Events() <-chan CacheEvent {
	c.evWanted.Store(true)
	return c.events
}

// Close stops the cache and removes its watch. Since zoo removes persistent
// watches by session, path and type, this also ends any other persistent
// recursive watch the same session has on the root: another TreeCache there
// resyncs by itself; a [zoo.PersistentWatch] of yours sees its channel
// closed. Idempotent.
func (c *TreeCache) Close() error {
	c.stateMu.Lock()
	if c.closed {
		c.stateMu.Unlock()
		<-c.done
		return nil
	}
	c.closed = true
	fwd := c.fwdStarted
	c.stateMu.Unlock()

	c.cancel()
	c.wake()
	c.wg.Wait()
	if c.s.Err() == nil {
		ctx, cancel := cleanupCtx(context.Background(), c.s)
		_ = c.s.RemoveWatches(ctx, c.root, zoo.WatcherPersistentRecursive)
		cancel()
	}
	c.finish(ErrCacheClosed)
	if !fwd {
		close(c.events)
	}
	return nil
}

// finish records why the cache stopped (first reason wins) and closes Done.
func (c *TreeCache) finish(err error) {
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	if c.err == nil {
		c.err = err
		close(c.done)
	}
	c.wake()
}

// establish adds the watch, then loads the subtree. A failed load removes the
// watch again.
func (c *TreeCache) establish(ctx context.Context) (*zoo.PersistentWatch, map[string]*cacheNode, error) {
	var w *zoo.PersistentWatch
	err := retry(ctx, c.s, func() error {
		var err error
		w, err = c.s.AddWatch(ctx, c.root, zoo.WatchPersistentRecursive)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	nodes, err := c.load(ctx)
	if err != nil {
		if c.s.Err() == nil {
			rctx, cancel := cleanupCtx(context.Background(), c.s)
			_ = c.s.RemoveWatches(rctx, c.root, zoo.WatcherPersistentRecursive)
			cancel()
		}
		return nil, nil, err
	}
	return w, nodes, nil
}

// load reads the subtree level by level; each chunk of a level (data and
// children of each node) is one consistent view. Later views are newer; the
// watch events that follow repair any difference between levels.
func (c *TreeCache) load(ctx context.Context) (map[string]*cacheNode, error) {
	nodes := map[string]*cacheNode{}
	level := []string{c.root}
	for depth := 0; len(level) > 0; depth++ {
		descend := c.opts.MaxDepth == 0 || depth < c.opts.MaxDepth
		var next []string
		for chunk := range slices.Chunk(level, cacheLoadChunk) {
			ops := make([]zoo.ReadOp, 0, 2*len(chunk))
			for _, p := range chunk {
				ops = append(ops, zoo.GetDataOp{Path: p}, zoo.GetChildrenOp{Path: p})
			}
			res, err := multiRead(ctx, c.s, ops...)
			if err != nil {
				return nil, err
			}
			for i, p := range chunk {
				rd, rc := res[2*i], res[2*i+1]
				if rd.Err != nil {
					continue // gone since its parent was read, or not readable
				}
				if p != c.root {
					parent := nodes[parentPath(p)]
					if parent == nil {
						continue
					}
					parent.children[baseName(p)] = struct{}{}
				}
				nodes[p] = &cacheNode{data: rd.Data, stat: rd.Stat, children: map[string]struct{}{}}
				if descend && rc.Err == nil {
					for _, name := range rc.Children {
						next = append(next, joinPath(p, name))
					}
				}
			}
		}
		level = next
	}
	return nodes, nil
}

// install replaces the cached tree with nodes and reports the differences.
func (c *TreeCache) install(nodes map[string]*cacheNode, initial bool) {
	c.mu.Lock()
	old := c.nodes
	c.nodes = nodes
	c.mu.Unlock()

	var gone, born, changed []string
	for p, o := range old {
		if n, ok := nodes[p]; !ok || n.stat.Czxid != o.stat.Czxid {
			gone = append(gone, p)
		}
	}
	for p, n := range nodes {
		o, ok := old[p]
		switch {
		case !ok || o.stat.Czxid != n.stat.Czxid:
			born = append(born, p)
		case o.stat.Mzxid != n.stat.Mzxid:
			changed = append(changed, p)
		}
	}
	slices.Sort(gone)
	slices.Reverse(gone) // children before parents
	slices.Sort(born)    // parents before children
	slices.Sort(changed)
	evs := make([]CacheEvent, 0, len(gone)+len(born)+len(changed)+1)
	for _, p := range gone {
		evs = append(evs, CacheEvent{Type: CacheNodeDeleted, Path: p, Stat: old[p].stat})
	}
	for _, p := range born {
		evs = append(evs, CacheEvent{Type: CacheNodeCreated, Path: p, Data: nodes[p].data, Stat: nodes[p].stat})
	}
	for _, p := range changed {
		evs = append(evs, CacheEvent{Type: CacheNodeUpdated, Path: p, Data: nodes[p].data, Stat: nodes[p].stat})
	}
	if initial {
		evs = append(evs, CacheEvent{Type: CacheInitialized})
	}
	c.emit(evs)
	c.notify()
}

// run applies watch events until the cache stops, resyncing whenever the
// watch ends while the session lives.
func (c *TreeCache) run(w *zoo.PersistentWatch) {
	defer c.wg.Done()
	for {
		var batch []zoo.Event
		ended := false
		select {
		case ev, ok := <-w.Events():
			if !ok || ev.Type == zoo.EventNotWatching {
				ended = true
				break
			}
			batch = append(batch, ev)
		drain:
			for len(batch) < cacheBatchMax {
				select {
				case ev, ok := <-w.Events():
					if !ok || ev.Type == zoo.EventNotWatching {
						ended = true
						break drain
					}
					batch = append(batch, ev)
				default:
					break drain
				}
			}
		case <-c.runCtx.Done():
			return
		case <-c.s.Done():
			c.finish(c.s.Err())
			return
		}
		if len(batch) > 0 {
			if err := c.apply(batch); err != nil {
				c.stopWith(err)
				return
			}
		}
		if !ended {
			continue
		}
		if c.runCtx.Err() != nil {
			return
		}
		if err := c.s.Err(); err != nil {
			c.finish(err)
			return
		}
		// Overflow, reset after a snapshot, or removed: start over.
		w2, nodes, err := c.establish(c.runCtx)
		if err != nil {
			c.stopWith(err)
			return
		}
		c.install(nodes, false)
		c.resyncs.Add(1)
		w = w2
	}
}

// stopWith stops the cache after a failed operation: errors during Close
// or after the session's end are reported as such.
func (c *TreeCache) stopWith(err error) {
	switch {
	case c.runCtx.Err() != nil:
		return // Close reports it
	case c.s.Err() != nil:
		err = c.s.Err()
	}
	c.finish(err)
}

// apply re-reads, in one view, the nodes a batch of events names (plus the
// parents of created and deleted nodes, whose Stat changed, and any ancestor
// the cache lacks) and applies what it finds. The events it reports go out
// in the order of the changes they report (see cacheBatch), not in the order
// the cache works through the batch.
func (c *TreeCache) apply(batch []zoo.Event) error {
	want := map[string]bool{}
	b := &cacheBatch{deleted: map[string]int64{}}
	for _, ev := range batch {
		b.later = max(b.later, ev.Zxid+1)
		if ev.Type == zoo.EventNodeDeleted {
			b.deleted[ev.Path] = ev.Zxid
		}
		switch ev.Type {
		case zoo.EventNodeCreated, zoo.EventNodeDeleted:
			if ev.Path != c.root && c.inScope(parentPath(ev.Path)) {
				want[parentPath(ev.Path)] = true
			}
		case zoo.EventNodeDataChanged:
		default:
			continue
		}
		if c.inScope(ev.Path) {
			want[ev.Path] = true
		}
	}
	if len(want) == 0 {
		return nil
	}
	c.mu.RLock()
	for p := range want {
		for a := p; a != c.root; {
			a = parentPath(a)
			if _, ok := c.nodes[a]; ok {
				break
			}
			want[a] = true
		}
	}
	c.mu.RUnlock()
	paths := slices.Sorted(func(yield func(string) bool) {
		for p := range want {
			if !yield(p) {
				return
			}
		}
	})
	res, err := multiRead(c.runCtx, c.s, dataOps(paths...)...)
	if err != nil {
		return err
	}

	c.mu.Lock()
	// Removals first, children before parents; then the rest, parents first.
	// A node gone without a deletion event in this batch was deleted after
	// all of them.
	for i := len(paths) - 1; i >= 0; i-- {
		if res[i].Err != nil {
			c.remove(paths[i], b.later, b)
		}
	}
	for i, p := range paths {
		if res[i].Err == nil {
			c.upsert(p, res[i].Data, res[i].Stat, b)
		}
	}
	c.mu.Unlock()
	c.emit(b.events())
	c.notify()
	return nil
}

// cacheBatch collects the events of one applied batch, each with the zxid of
// the change it reports (a creation's czxid, an update's mzxid, a deletion's
// zxid from the batch's watch events), so that they go out in the order the
// changes were made. Events of one zxid (a multi) keep the order they were
// made in: parents created before children, children deleted before parents.
type cacheBatch struct {
	deleted map[string]int64 // path -> zxid of its deletion, from the batch's events
	later   int64            // a zxid after every event of the batch
	changes []cacheChange
}

type cacheChange struct {
	zxid int64
	ev   CacheEvent
}

func (b *cacheBatch) add(zxid int64, ev CacheEvent) {
	b.changes = append(b.changes, cacheChange{zxid, ev})
}

// events returns the batch's events in the order of their changes.
func (b *cacheBatch) events() []CacheEvent {
	slices.SortStableFunc(b.changes, func(x, y cacheChange) int { return cmp.Compare(x.zxid, y.zxid) })
	evs := make([]CacheEvent, len(b.changes))
	for i, ch := range b.changes {
		evs[i] = ch.ev
	}
	return evs
}

// upsert applies one fresh read of node p. Caller holds c.mu.
func (c *TreeCache) upsert(p string, data []byte, st zoo.Stat, b *cacheBatch) {
	cur := c.nodes[p]
	if cur != nil {
		switch {
		case st.Czxid < cur.stat.Czxid, st.Czxid == cur.stat.Czxid && st.Mzxid < cur.stat.Mzxid:
			return // older than what we hold: never go back
		case st.Czxid == cur.stat.Czxid:
			if st.Mzxid != cur.stat.Mzxid {
				b.add(st.Mzxid, CacheEvent{Type: CacheNodeUpdated, Path: p, Data: data, Stat: st})
				cur.data = data
			}
			cur.stat = st // child counts, pzxid, aversion may move without an event
			return
		}
		// Deleted and created again since we last looked.
		c.remove(p, st.Czxid, b)
	}
	if p != c.root {
		parent := c.nodes[parentPath(p)]
		if parent == nil {
			// Cannot happen with one view per batch; if it did, the
			// parent's own event is still to come and brings p back.
			return
		}
		parent.children[baseName(p)] = struct{}{}
	}
	c.nodes[p] = &cacheNode{data: data, stat: st, children: map[string]struct{}{}}
	b.add(st.Czxid, CacheEvent{Type: CacheNodeCreated, Path: p, Data: data, Stat: st})
}

// remove drops node p and its subtree, children first. Each deletion is
// ordered by the zxid the batch reported for it, else by zxid (for p's
// subtree: by p's). Caller holds c.mu.
func (c *TreeCache) remove(p string, zxid int64, b *cacheBatch) {
	n := c.nodes[p]
	if n == nil {
		return
	}
	if z, ok := b.deleted[p]; ok {
		zxid = z
	}
	for _, name := range slices.Sorted(maps.Keys(n.children)) {
		c.remove(joinPath(p, name), zxid, b)
	}
	delete(c.nodes, p)
	if p != c.root {
		if parent := c.nodes[parentPath(p)]; parent != nil {
			delete(parent.children, baseName(p))
		}
	}
	b.add(zxid, CacheEvent{Type: CacheNodeDeleted, Path: p, Stat: n.stat})
}

// inScope reports whether p is the root or below it, within MaxDepth.
func (c *TreeCache) inScope(p string) bool {
	var rest string
	switch {
	case p == c.root:
		return true
	case c.root == "/":
		rest = p
	case strings.HasPrefix(p, c.root+"/"):
		rest = p[len(c.root):]
	default:
		return false
	}
	return c.opts.MaxDepth == 0 || strings.Count(rest, "/") <= c.opts.MaxDepth
}

// subscribe returns a channel that receives a signal (coalesced) after every
// change applied to the cache, and when it stops.
func (c *TreeCache) subscribe() chan struct{} {
	ch := make(chan struct{}, 1)
	c.subMu.Lock()
	c.subs[ch] = struct{}{}
	c.subMu.Unlock()
	return ch
}

func (c *TreeCache) unsubscribe(ch chan struct{}) {
	c.subMu.Lock()
	delete(c.subs, ch)
	c.subMu.Unlock()
}

func (c *TreeCache) notify() {
	c.subMu.Lock()
	defer c.subMu.Unlock()
	for ch := range c.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// emit queues events for the Events reader.
func (c *TreeCache) emit(evs []CacheEvent) {
	if len(evs) == 0 || !c.evWanted.Load() {
		return
	}
	c.evMu.Lock()
	for _, e := range evs {
		if c.evDrop {
			break
		}
		if len(c.evQueue) >= c.opts.EventBuffer {
			c.evDrop = true
			break
		}
		e.Data = slices.Clone(e.Data) // the reader's to keep
		c.evQueue = append(c.evQueue, e)
	}
	c.evMu.Unlock()
	c.wake()
}

func (c *TreeCache) wake() {
	select {
	case c.evWake <- struct{}{}:
	default:
	}
}

// forward hands queued events to the Events channel, so that a slow reader
// never holds up the cache. It closes the channel when the cache has stopped
// and everything queued was delivered, or at once on Close.
func (c *TreeCache) forward() {
	defer c.wg.Done()
	defer close(c.events)
	for {
		c.evMu.Lock()
		var e CacheEvent
		have := false
		switch {
		case len(c.evQueue) > 0:
			e, have = c.evQueue[0], true
			c.evQueue[0] = CacheEvent{}
			c.evQueue = c.evQueue[1:]
			if len(c.evQueue) == 0 {
				c.evQueue = nil
			}
		case c.evDrop:
			e, have = CacheEvent{Type: CacheEventsDropped}, true
			c.evDrop = false
		}
		c.evMu.Unlock()
		if !have {
			select {
			case <-c.done:
				return
			case <-c.runCtx.Done():
				return
			case <-c.evWake:
				continue
			}
		}
		select {
		case c.events <- e:
		case <-c.runCtx.Done():
			return
		}
	}
}
