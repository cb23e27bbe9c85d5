package zoo

import (
	"crypto/rand"
	"encoding/binary"
)

// This file holds read-only sessions, the seam for ZooKeeper's read-only mode
// (readonlymode.enabled): a server cut off from its quorum keeps answering
// reads from its own, possibly stale, copy of the tree to the clients that
// asked for it, and refuses their writes with ZNOTREADONLY.

// ReadOnlySession returns a read-only session handle on this replica. Nothing
// about it is replicated, so it works whether or not the replica serves: it is
// how a protocol server keeps answering read-only clients while its replica is
// cut off from the quorum.
//
// Reads (Get, Exists, Children, GetACL, MultiRead, GetEphemerals,
// AllChildrenNumber, watched reads and SetWatches) are served from the local
// tree without the serving check, so they may be arbitrarily stale. Watches
// can be set; they fire only when this replica applies changes again. Every
// write (Create, Set, Delete, SetACL, Multi) and Sync returns
// [ErrNotReadOnly]. AddAuth works as on any session.
//
// id 0 starts a new local session: a fresh id that no replicated session can
// have (local ids are negative; replicated ones are positive zxids), a random
// password, and the timeout asked for with [WithSessionTimeout], negotiated as
// for [Ensemble.NewSession]. The ensemble never hears of it: it owns no
// ephemerals and never expires.
//
// A nonzero id continues an existing session read-only, as a ZooKeeper
// client that had a read-write session does when it reconnects to a read-only
// server. id and password are checked against the sessions this replica knows,
// which may be stale; [ErrSessionExpired] if it knows no such session or the
// password is wrong. The handle does not keep that session alive: the quorum
// expires it after its timeout unless its client resumes it on a serving
// replica ([Ensemble.ResumeSession]).
//
// Its watches report to w (nil: it sets none). [Session.Close] and
// [ServerSession.Detach] end only the handle; so does Close of the replica.
// The handle does not end when the replica serves again: that is its
// owner's call (zkwire then closes read-only connections so their clients
// reconnect read-write, as ZooKeeper does). It does not follow its client's
// activity: [ServerSession.Touch] has no effect on it.
func (e *Ensemble) ReadOnlySession(id int64, password []byte, w Watcher, opts ...SessionOption) (*ServerSession, error) {
	if e.closed.Load() {
		return nil, ErrClosed
	}
	o := e.sessionOptions(opts)
	o.watcher = w
	var s *Session
	if id == 0 {
		var b [8]byte
		pw := make([]byte, 16)
		if _, err := rand.Read(b[:]); err != nil {
			return nil, err
		}
		if _, err := rand.Read(pw); err != nil {
			return nil, err
		}
		local := int64(binary.BigEndian.Uint64(b[:]) | 1<<63)
		s = newSessionHandle(e, local, e.cfg.clampTimeout(o.timeout), pw, o)
	} else {
		timeout, pw, err := e.fsm.checkSession(id, password)
		if err != nil {
			return nil, err
		}
		s = newSessionHandle(e, id, timeout, pw, o)
	}
	s.readOnly = true
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed.Load() {
		return nil, ErrClosed
	}
	if e.readOnly == nil {
		e.readOnly = map[*Session]struct{}{}
	}
	e.readOnly[s] = struct{}{}
	return &ServerSession{s}, nil
}

// ReadOnly reports whether the handle is a read-only session
// ([Ensemble.ReadOnlySession]).
func (s *ServerSession) ReadOnly() bool { return s.readOnly }

// errIfReadOnly is the error of a write or Sync on a read-only handle, after
// the handle's own end: nil for a read-write session.
func (s *Session) errIfReadOnly() error {
	if !s.readOnly {
		return nil
	}
	if err := s.live(); err != nil {
		return err
	}
	return ErrNotReadOnly
}

// closeReadOnly ends every read-only handle when the replica closes.
func (e *Ensemble) closeReadOnly() {
	e.mu.Lock()
	handles := make([]*Session, 0, len(e.readOnly))
	for s := range e.readOnly {
		handles = append(handles, s)
	}
	e.readOnly = nil
	e.mu.Unlock()
	for _, s := range handles {
		s.detach(ErrClosed)
	}
}
