package zoo

import (
	"context"
	"fmt"
	"time"
)

// ServerSession is a session that a protocol server (the ZooKeeper wire
// server in zkwire) holds for a remote client. It is a [Session] with what
// only such a server needs: watches reported to one Watcher in apply order,
// as ZooKeeper delivers them to one connection; a life that follows the
// client's activity ([ServerSession.Touch]); and a session that outlives one
// connection and can move between replicas ([Ensemble.ResumeSession]).
// An embedder that is not serving remote clients wants [Session].
type ServerSession struct {
	*Session
}

// Watcher receives the events of a server session's watches
// ([ServerSession.GetNotify] and friends). Notify is called from the
// replica's apply loop, in zxid order, while a lock is held: it must not
// block and must not call into zoo. One notification per (path, event type)
// reaches a Watcher, however many watches on that path fired, as ZooKeeper
// does for one connection.
//
// One event is not ZooKeeper's: EventNotWatching with Err [ErrWatchReset]
// says the replica had to install a snapshot and the session's persistent
// watches ended; the owner must re-arm them (a wire server drops the
// connection, and the client re-sends its watches with setWatches).
type Watcher interface {
	Notify(Event)
}

// NewServerSession creates a session on this replica for a remote client,
// as a ZooKeeper server does at a client's first connect. Its watches report
// to w (nil: the session sets none). The session lives while its client is
// heard from: it is reported alive only while [ServerSession.Touch] was
// called within its timeout, and expires a timeout after the last Touch.
func (e *Ensemble) NewServerSession(ctx context.Context, w Watcher, opts ...SessionOption) (*ServerSession, error) {
	o := e.sessionOptions(opts)
	o.watcher, o.client = w, true
	s, err := e.newSession(ctx, o)
	if err != nil {
		return nil, err
	}
	return &ServerSession{s}, nil
}

// Touch records that the session's client was just heard from (any request
// or ping). Cheap: an atomic store.
func (s *ServerSession) Touch() {
	s.heard.Store(int64(time.Since(s.born)))
}

// errNoWatcher: a watched call on a session without a Watcher.
var errNoWatcher = fmt.Errorf("%w: session has no Watcher", ErrBadArguments)

// sessionSink adapts a session's Watcher to the registry. There is one per
// Session handle, so the registry's per-watcher dedup gives ZooKeeper's
// one-notification-per-connection rule.
type sessionSink struct {
	owner *Session
	w     Watcher
}

func (k *sessionSink) session() int64   { return k.owner.id }
func (k *sessionSink) handle() *Session { return k.owner }
func (k *sessionSink) notify(ev Event) bool {
	// ZooKeeper servers never send NotWatching, but a reset must not go unseen.
	if ev.Type != EventNotWatching || ev.Err == ErrWatchReset {
		k.w.Notify(ev)
	}
	return true
}

func (s *Session) watchSink() (watcher, error) {
	if s.sink == nil {
		return nil, errNoWatcher
	}
	return s.sink, nil
}

// GetNotify is Get that sets a data watch reported to the session's Watcher.
func (s *ServerSession) GetNotify(ctx context.Context, path string) ([]byte, Stat, error) {
	w, err := s.watchSink()
	if err != nil {
		return nil, Stat{}, pathErr("get", path, err)
	}
	return s.get(ctx, path, w)
}

// ExistsNotify is Exists that sets a watch (even on an absent node) reported
// to the session's Watcher.
func (s *ServerSession) ExistsNotify(ctx context.Context, path string) (bool, Stat, error) {
	w, err := s.watchSink()
	if err != nil {
		return false, Stat{}, pathErr("exists", path, err)
	}
	return s.exists(ctx, path, w)
}

// ChildrenNotify is Children that sets a child watch reported to the session's Watcher.
func (s *ServerSession) ChildrenNotify(ctx context.Context, path string) ([]string, Stat, error) {
	w, err := s.watchSink()
	if err != nil {
		return nil, Stat{}, pathErr("children", path, err)
	}
	return s.children(ctx, path, w)
}

// AddWatchNotify adds a persistent watch reported to the session's Watcher.
func (s *ServerSession) AddWatchNotify(ctx context.Context, path string, mode WatchMode) error {
	w, err := s.watchSink()
	if err != nil {
		return pathErr("addWatch", path, err)
	}
	table := tablePersistent
	switch mode {
	case WatchPersistent:
	case WatchPersistentRecursive:
		table = tableRecursive
	default:
		return pathErr("addWatch", path, fmt.Errorf("%w: unknown watch mode %d", ErrBadArguments, mode))
	}
	return s.read(ctx, "addWatch", path, func(*tree) error {
		s.e.watches.add(table, path, w)
		return nil
	})
}

// WatchSet is what a reconnecting client asks to re-arm (ZooKeeper's SetWatches2).
type WatchSet struct {
	RelativeZxid int64 // the last zxid the client saw
	Data         []string
	Exist        []string
	Child        []string
	Persistent   []string
	Recursive    []string
}

// SetWatches re-arms a reconnecting client's watches on this session's Watcher
// and reports at once, to the Watcher, what it missed since RelativeZxid
// (ZooKeeper's DataTree.setWatches rules). All of it happens against one view
// of the tree, so nothing can slip between the check and the re-arming.
func (s *ServerSession) SetWatches(ctx context.Context, ws WatchSet) error {
	w, err := s.watchSink()
	if err != nil {
		return err
	}
	if err := s.live(); err != nil {
		return err
	}
	if !s.readOnly && !s.e.serving() {
		return ErrNotServing
	}
	zxid := int64(s.e.fsm.appliedIndex())
	s.e.fsm.mu.RLock()
	defer s.e.fsm.mu.RUnlock()
	t := s.e.fsm.tree
	fire := func(typ EventType, p string) { w.notify(Event{Type: typ, Path: p, Zxid: zxid}) }
	for _, p := range ws.Data {
		switch n := t.get(p); {
		case n == nil:
			fire(EventNodeDeleted, p)
		case n.mzxid > ws.RelativeZxid:
			fire(EventNodeDataChanged, p)
		default:
			s.e.watches.add(tableData, p, w)
		}
	}
	for _, p := range ws.Exist {
		if t.get(p) != nil {
			fire(EventNodeCreated, p)
		} else {
			s.e.watches.add(tableData, p, w)
		}
	}
	for _, p := range ws.Child {
		switch n := t.get(p); {
		case n == nil:
			fire(EventNodeDeleted, p)
		case n.pzxid > ws.RelativeZxid:
			fire(EventNodeChildrenChanged, p)
		default:
			s.e.watches.add(tableChild, p, w)
		}
	}
	for _, p := range ws.Persistent {
		s.e.watches.add(tablePersistent, p, w)
	}
	for _, p := range ws.Recursive {
		s.e.watches.add(tableRecursive, p, w)
	}
	return nil
}

// Password returns the session's 16-byte password: with the ID it lets a
// client resume the session on any replica ([Ensemble.ResumeSession]).
func (s *ServerSession) Password() []byte { return append([]byte(nil), s.password...) }

// AuthIDs returns the identities the session authenticated as (ZooKeeper's whoAmI).
func (s *ServerSession) AuthIDs() []ID { return s.authIDs() }

// ResumeSession takes over a live session on this replica, as a ZooKeeper
// client reconnecting to another server does. A wrong password, or a session
// that expired or closed, is [ErrSessionExpired]. The session's previous handle
// on this replica, if any, is detached. Watches are not carried over: the
// client re-arms them ([Session.SetWatches]). The replica first catches up
// with the leader, as a ZooKeeper follower revalidates a reconnecting session
// with its leader, so a session that expired anywhere is refused here too.
//
// The resumed session reports its watches to w and lives while its client is
// heard from, as [Ensemble.NewServerSession]'s.
func (e *Ensemble) ResumeSession(ctx context.Context, id int64, password []byte, w Watcher) (*ServerSession, error) {
	if e.closed.Load() {
		return nil, ErrClosed
	}
	if !e.serving() {
		return nil, ErrNotServing
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := e.sync(ctx); err != nil {
		return nil, err
	}
	o := sessionOptions{watcher: w, client: true}
	timeout, pw, err := e.fsm.checkSession(id, password)
	if err != nil {
		return nil, err
	}
	s := newSessionHandle(e, id, timeout, pw, o)
	e.mu.Lock()
	old := e.sessions[id]
	e.sessions[id] = s
	e.mu.Unlock()
	if old != nil {
		old.detach(ErrSessionMoved)
	}
	e.tracker.touch([]sessionTouch{{id: id}})
	if !e.fsm.hasSession(id) { // expired while we looked
		e.sessionsEnded([]endedSession{{id: id, expired: true}})
		return nil, ErrSessionExpired
	}
	return &ServerSession{s}, nil
}

// Detach lets go of this handle without closing the session, as a ZooKeeper
// server does when a client's connection drops: the handle's watches end, this
// replica stops reporting the session alive, and the session expires after its
// timeout unless a client resumes it. Later calls on the handle return ErrClosed.
func (s *ServerSession) Detach() { s.detach(ErrClosed) }

func (s *Session) detach(reason error) {
	s.e.mu.Lock()
	if s.e.sessions[s.id] == s {
		delete(s.e.sessions, s.id)
	}
	delete(s.e.readOnly, s)
	s.e.mu.Unlock()
	s.mu.Lock()
	if s.err == nil {
		s.err, s.state = reason, StateClosed
		close(s.done)
	}
	s.mu.Unlock()
	s.e.watches.removeHandle(s)
}
