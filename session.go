package zoo

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// SessionState is where a session is in its life.
type SessionState int32

const (
	// StateConnected: the session is live.
	StateConnected SessionState = 3
	// StateExpired: the ensemble expired the session; its ephemerals are gone.
	StateExpired SessionState = -112
	// StateClosed: the session was closed by its owner, or its replica closed.
	StateClosed SessionState = 7
)

func (s SessionState) String() string {
	switch s {
	case StateConnected:
		return "Connected"
	case StateExpired:
		return "Expired"
	case StateClosed:
		return "Closed"
	}
	return fmt.Sprintf("SessionState(%d)", int32(s))
}

// SessionOption customises [Ensemble.NewSession] and
// [Ensemble.NewServerSession].
type SessionOption func(*sessionOptions)

type sessionOptions struct {
	timeout time.Duration
	watcher Watcher // server sessions only
	client  bool    // server sessions only: liveness follows Touch calls
}

// WithSessionTimeout asks for a session timeout; it is negotiated into the
// ensemble's [MinSessionTimeout, MaxSessionTimeout]. Default: the maximum.
func WithSessionTimeout(d time.Duration) SessionOption {
	return func(o *sessionOptions) { o.timeout = d }
}

// Session is a client session served by one replica: all znode operations
// go through it. Its ephemeral nodes live as long as it does. A Session is
// safe for concurrent use; calls made one after another complete in order.
//
// The session lives while its replica keeps reporting it to the leader. It ends
// when closed, when the ensemble expires it (its replica was cut off or died for
// longer than the timeout) or when its replica closes; [Session.Done] is closed
// then and every later call returns [ErrSessionExpired] or [ErrClosed].
type Session struct {
	e        *Ensemble
	id       int64
	timeout  time.Duration
	password []byte

	mu    sync.Mutex           // guards state, err, and writers of ids
	ids   atomic.Pointer[[]ID] // authenticated identities (AddAuth), plus super if granted; never mutated in place, so watch delivery reads them without a lock
	state SessionState
	err   error
	done  chan struct{}

	sink *sessionSink // a server session's Watcher, or nil

	readOnly bool // a local read-only handle (Ensemble.ReadOnlySession)

	// A server session lives only while its client is heard from: heard is
	// the last Touch, in ns of monotonic time since born.
	clientLive bool
	born       time.Time
	heard      atomic.Int64
}

// idle says how long ago the session's client was last heard from, and
// whether the session should be reported alive at all.
func (s *Session) idle(now time.Time) (time.Duration, bool) {
	if !s.clientLive {
		return 0, true
	}
	idle := now.Sub(s.born) - time.Duration(s.heard.Load())
	return max(idle, 0), idle < s.timeout
}

func newSessionHandle(e *Ensemble, id int64, timeout time.Duration, password []byte, o sessionOptions) *Session {
	s := &Session{e: e, id: id, timeout: timeout, password: password, state: StateConnected,
		done: make(chan struct{})}
	if o.watcher != nil {
		s.sink = &sessionSink{owner: s, w: o.watcher}
	}
	s.clientLive, s.born = o.client, time.Now()
	return s
}

func msDuration(ms int32) time.Duration { return time.Duration(ms) * time.Millisecond }

// NewSession creates a session on this replica. It is a replicated write, so it
// needs a serving quorum.
func (e *Ensemble) NewSession(ctx context.Context, opts ...SessionOption) (*Session, error) {
	return e.newSession(ctx, e.sessionOptions(opts))
}

// sessionOptions applies opts over the defaults.
func (e *Ensemble) sessionOptions(opts []SessionOption) sessionOptions {
	o := sessionOptions{timeout: e.cfg.MaxSessionTimeout}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// newSession creates a session and its handle on this replica.
func (e *Ensemble) newSession(ctx context.Context, o sessionOptions) (*Session, error) {
	timeout := e.cfg.clampTimeout(o.timeout)
	pw := make([]byte, 16)
	if _, err := rand.Read(pw); err != nil {
		return nil, err
	}
	res, err := e.propose(ctx, &command{op: opCreateSession, timeout: int32(timeout.Milliseconds()), password: pw})
	if err != nil {
		return nil, fmt.Errorf("zoo: create session: %w", err)
	}
	if res.err != nil {
		return nil, fmt.Errorf("zoo: create session: %w", res.err)
	}
	s := newSessionHandle(e, res.sessionID, timeout, pw, o)
	e.mu.Lock()
	if e.closed.Load() {
		e.mu.Unlock()
		return nil, ErrClosed
	}
	e.sessions[s.id] = s
	e.mu.Unlock()
	// The session may have expired between apply and registration.
	if !e.fsm.hasSession(s.id) {
		e.sessionsEnded([]endedSession{{id: s.id, expired: true}})
	}
	e.tracker.touch([]sessionTouch{{id: s.id}})
	return s, nil
}

func (f *fsm) hasSession(id int64) bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.sessions[id] != nil
}

// checkSession returns the timeout and password of the replicated session
// id if password is its own, as a reconnecting client proves it;
// ErrSessionExpired if this replica knows no such session or the password
// differs.
func (f *fsm) checkSession(id int64, password []byte) (time.Duration, []byte, error) {
	f.mu.RLock()
	entry := f.sessions[id]
	var timeout int32
	var pw []byte
	if entry != nil {
		timeout, pw = entry.timeout, entry.password
	}
	f.mu.RUnlock()
	if entry == nil || subtle.ConstantTimeCompare(pw, password) != 1 {
		return 0, nil, ErrSessionExpired
	}
	return msDuration(timeout), pw, nil
}

// sessionsEnded is the FSM's report of closeSession commands applied.
func (e *Ensemble) sessionsEnded(ended []endedSession) {
	for _, es := range ended {
		e.mu.Lock()
		s := e.sessions[es.id]
		delete(e.sessions, es.id)
		e.mu.Unlock()
		if s == nil {
			continue
		}
		if es.expired {
			s.end(ErrSessionExpired)
		} else {
			s.end(ErrClosed)
		}
	}
}

// end marks the session over and ends its watches.
func (s *Session) end(reason error) {
	s.mu.Lock()
	if s.err != nil {
		s.mu.Unlock()
		return
	}
	s.err = reason
	if reason == ErrSessionExpired {
		s.state = StateExpired
	} else {
		s.state = StateClosed
	}
	close(s.done)
	s.mu.Unlock()
	s.e.watches.removeSession(s.id, reason)
}

// ID returns the session id (the zxid of its creation).
func (s *Session) ID() int64 { return s.id }

// Timeout returns the negotiated session timeout.
func (s *Session) Timeout() time.Duration { return s.timeout }

// Done is closed when the session ends; [Session.Err] then says how.
func (s *Session) Done() <-chan struct{} { return s.done }

// State returns the session's current state.
func (s *Session) State() SessionState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state
}

// Err returns nil while the session lives, then [ErrSessionExpired] or [ErrClosed].
func (s *Session) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Close ends the session: its ephemerals are deleted in one transaction and its
// watches end. Idempotent. After [ErrConnectionLoss] the close may still happen;
// if it does not, the session expires after its timeout.
func (s *Session) Close(ctx context.Context) error {
	if s.Err() != nil {
		return nil
	}
	if s.readOnly {
		s.detach(ErrClosed) // nothing was replicated: only the handle ends
		return nil
	}
	_, err := s.e.propose(ctx, &command{op: opCloseSession, session: s.id})
	if err == ErrClosed {
		s.end(ErrClosed)
		return nil
	}
	if err != nil {
		return err
	}
	s.end(ErrClosed) // normally already done by the FSM's report
	return nil
}

// AddAuth adds an identity to the session, as ZooKeeper's addauth: "digest"
// with "user:password", or "ip" with an address. Digest auth never fails. A
// digest matching Config.SuperDigest makes the session a super user. An x509
// identity comes only from a verified certificate: see
// [ServerSession.AddX509Auth].
func (s *Session) AddAuth(ctx context.Context, scheme string, auth []byte) error {
	if err := s.live(); err != nil {
		return err
	}
	if scheme == "x509" {
		return fmt.Errorf("%w: x509 identities come from a verified client certificate (AddX509Auth), not from addauth data", ErrAuthFailed)
	}
	id, err := authIDFor(scheme, auth)
	if err != nil {
		return err
	}
	return s.addID(id)
}

// addID adds an authenticated identity, and super if it is the configured
// superuser's.
func (s *Session) addID(id ID) error {
	if err := s.live(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.currentIDs()
	for _, have := range old {
		if have == id {
			return nil
		}
	}
	ids := append(append(make([]ID, 0, len(old)+2), old...), id)
	if id.Scheme == "digest" && id.ID == s.e.cfg.SuperDigest ||
		id.Scheme == "x509" && s.e.cfg.X509SuperUser != "" && id.ID == s.e.cfg.X509SuperUser {
		ids = append(ids, superUserID)
	}
	s.ids.Store(&ids)
	return nil
}

// currentIDs returns the session's identities, shared: callers must not modify them.
func (s *Session) currentIDs() []ID {
	if p := s.ids.Load(); p != nil {
		return *p
	}
	return nil
}

// authIDs returns a copy of the session's identities.
func (s *Session) authIDs() []ID { return append([]ID(nil), s.currentIDs()...) }

// live returns the error that ends every call of an ended session.
func (s *Session) live() error {
	if s.e.closed.Load() {
		return ErrClosed
	}
	if err := s.e.failure(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// write replicates ops as this session and returns the per-op results.
func (s *Session) write(ctx context.Context, op opCode, ops []Op) (*applyResult, error) {
	if err := s.live(); err != nil {
		return nil, err
	}
	if s.readOnly {
		return nil, ErrNotReadOnly
	}
	res, err := s.e.propose(ctx, &command{op: op, session: s.id, ids: s.authIDs(), ops: ops})
	if err != nil {
		return nil, err
	}
	if res.err != nil {
		if res.err == ErrSessionExpired {
			s.e.sessionsEnded([]endedSession{{id: s.id, expired: true}})
		}
		return nil, res.err
	}
	return res, nil
}
