package zkclient

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/zooraft/zoo"
	"github.com/zooraft/zoo/internal/jute"
)

// Options configures a Conn. Every zero field means the documented default.
type Options struct {
	// SessionTimeout is the session timeout asked for; the server
	// negotiates it into its bounds. Default 30s (zkCli.sh's).
	SessionTimeout time.Duration
	// Chroot roots every path at this znode, as a "host:port/app" connect
	// string does: paths sent are prefixed with it; created paths, event
	// paths and getEphemerals results have it stripped. "" or "/" is none.
	Chroot string
	// CanBeReadOnly lets the client use a server in read-only mode (state
	// StateConnectedReadOnly: reads work, writes fail with
	// zoo.ErrNotReadOnly) and keeps looking for a read-write server meanwhile.
	CanBeReadOnly bool
	// OnEvent receives every watch notification and session state change,
	// on one goroutine, in order. A call whose reply followed a
	// notification on the wire returns only after OnEvent handled that
	// notification, so OnEvent must return promptly. It may call the Conn's
	// methods (those calls do not wait for later notifications). nil drops events.
	OnEvent func(Event)
	// Logger receives connection logs. nil discards them.
	Logger *slog.Logger
	// DialTimeout bounds each TCP connect. Default: SessionTimeout divided
	// by the number of servers, at least 1s (the Java client's
	// connectTimeout). The handshake then gets the larger of DialTimeout
	// and 2/3 of SessionTimeout.
	DialTimeout time.Duration
	// Dialer opens connections (proxies, TLS, tests). nil means a net.Dialer.
	Dialer func(ctx context.Context, network, addr string) (net.Conn, error)
	// MaxFrameSize is the largest reply frame accepted, in bytes. Default
	// 16 MiB: above ZooKeeper's 1 MiB so that big listings from servers
	// without that limit stay readable, bounded so that a lying length
	// prefix cannot cost much (frames are read as their bytes arrive).
	MaxFrameSize int
}

// Defaults and timings.
const (
	defaultSessionTimeout = 30 * time.Second
	defaultMaxFrameSize   = 16 << 20
	minDialTimeout        = time.Second
	// minBackoff and maxBackoff bound the pause after a round in which no
	// server could be reached.
	minBackoff = 50 * time.Millisecond
	maxBackoff = time.Second
	// maxCloseWait bounds how long Close waits for closeSession's reply.
	maxCloseWait = 10 * time.Second
)

var (
	errNilConn    = fmt.Errorf("zkclient: nil *Conn: %w", zoo.ErrBadArguments)
	errNilContext = fmt.Errorf("zkclient: nil Context: %w", zoo.ErrBadArguments)
)

// Conn is a ZooKeeper client session that survives connection losses: it
// keeps one connection at a time to one of its servers, moves to the next
// server when that connection fails, and resumes the session there with its
// watches, until the session expires or Close is called. Its methods are safe
// for concurrent use; requests are pipelined on the connection and answered
// in the order they were sent.
type Conn struct {
	servers  []string
	chroot   string
	opts     Options
	log      *slog.Logger
	events   *eventQueue
	ctx      context.Context // cancelled by Close: stops dialing and pauses
	cancel   context.CancelFunc
	loopDone chan struct{}  // closed when the connection loop ends
	probes   sync.WaitGroup // read-only probes (readonly.go)

	mu         sync.Mutex // guards every field below
	state      State
	changed    chan struct{} // closed and replaced when state, cur or closed change
	closed     bool
	final      error // set with a final state (Expired, AuthFailed): what every request gets
	sessionID  int64
	passwd     []byte
	timeout    time.Duration // negotiated
	lastZxid   int64
	seenRW     bool // a read-write server answered: resume the session by id (Java's seenRwServerBefore)
	xid        int32
	cur        *conn    // the connection requests go to; nil while there is none
	dialing    net.Conn // the connection being handshaken, for Close to interrupt
	preferred  int      // index of a read-write server found while read-only; -1 for none
	auths      []authInfo
	watches    watchRegistry
	maxPending int // the deepest the pending queue got, for tests of pipelining
}

// authInfo is an AddAuth call, sent again on every new connection.
type authInfo struct {
	scheme string
	auth   []byte
}

// Connect checks its arguments and returns a Conn that connects in the
// background, trying servers ("host:port"; a missing port means 2181) in the
// given order, round-robin. Requests made before the session is established
// wait for it, as long as their context allows.
func Connect(servers []string, opts Options) (*Conn, error) {
	if len(servers) == 0 {
		return nil, fmt.Errorf("zkclient: no servers: %w", zoo.ErrBadArguments)
	}
	addrs := make([]string, 0, len(servers))
	for _, s := range servers {
		a, err := normalizeServer(s)
		if err != nil {
			return nil, fmt.Errorf("zkclient: servers: %w", err)
		}
		addrs = append(addrs, a)
	}
	chroot, err := normalizeChroot(opts.Chroot)
	if err != nil {
		return nil, fmt.Errorf("zkclient: Options.Chroot %q: %w", opts.Chroot, err)
	}
	switch {
	case opts.SessionTimeout < 0 || opts.SessionTimeout > time.Duration(1<<31-1)*time.Millisecond:
		return nil, fmt.Errorf("zkclient: Options.SessionTimeout %v out of range: %w", opts.SessionTimeout, zoo.ErrBadArguments)
	case opts.DialTimeout < 0:
		return nil, fmt.Errorf("zkclient: Options.DialTimeout %v is negative: %w", opts.DialTimeout, zoo.ErrBadArguments)
	case opts.MaxFrameSize < 0:
		return nil, fmt.Errorf("zkclient: Options.MaxFrameSize %d is negative: %w", opts.MaxFrameSize, zoo.ErrBadArguments)
	}
	if opts.SessionTimeout == 0 {
		opts.SessionTimeout = defaultSessionTimeout
	}
	if opts.DialTimeout == 0 {
		opts.DialTimeout = max(opts.SessionTimeout/time.Duration(len(addrs)), minDialTimeout)
	}
	if opts.MaxFrameSize == 0 {
		opts.MaxFrameSize = defaultMaxFrameSize
	}
	if opts.Dialer == nil {
		var d net.Dialer
		opts.Dialer = d.DialContext
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	c := &Conn{servers: addrs, chroot: chroot, opts: opts, log: log, loopDone: make(chan struct{}),
		state: StateConnecting, changed: make(chan struct{}), preferred: -1, watches: watchRegistry{}}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.events = newEventQueue(opts.OnEvent)
	go c.run()
	return c, nil
}

// State returns the session's state.
func (c *Conn) State() State {
	if c == nil {
		return StateClosed
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

// SessionID returns the session id (0 before the first session).
func (c *Conn) SessionID() int64 {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sessionID
}

// Password returns a copy of the session password (nil before the first session).
func (c *Conn) Password() []byte {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]byte(nil), c.passwd...)
}

// SessionTimeout returns the negotiated session timeout (0 before the first session).
func (c *Conn) SessionTimeout() time.Duration {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.timeout
}

// Server returns the address of the server the session is connected to, or
// "" while there is no connection.
func (c *Conn) Server() string {
	if c == nil {
		return ""
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur == nil {
		return ""
	}
	return c.cur.addr
}

// Close ends the session: it sends closeSession (so the ensemble deletes the
// session's ephemerals at once), waits briefly for the reply, closes the
// connection and waits for the client's goroutines. Events already queued are
// delivered, the last one being StateClosed. Requests still waiting get
// zoo.ErrClosed, and so does every later call. Close is idempotent.
func (c *Conn) Close() error {
	if c == nil {
		return errNilConn
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		<-c.loopDone
		c.waitEvents()
		return nil
	}
	var (
		req  *request
		cn   = c.cur
		wait = min(c.timeout*2/3, maxCloseWait)
	)
	if cn != nil && !cn.dead && c.final == nil && c.state.connected() {
		req = newRequest(jute.OpCloseSession, nil, nil)
		cn.queue(req)
	}
	c.closed = true
	c.broadcast()
	c.mu.Unlock()

	if req != nil {
		t := time.NewTimer(wait)
		select {
		case <-req.done:
		case <-cn.done:
		case <-t.C:
			c.log.Info("zkclient: no reply to closeSession", "server", cn.addr, "waited", wait)
		}
		t.Stop()
	}
	c.cancel()
	c.mu.Lock()
	cur, dialing := c.cur, c.dialing
	c.mu.Unlock()
	if cur != nil {
		cur.kill(zoo.ErrClosed)
	}
	if dialing != nil {
		dialing.Close()
	}
	<-c.loopDone
	c.probes.Wait()
	c.mu.Lock()
	c.setState(StateClosed)
	c.mu.Unlock()
	c.events.close()
	c.waitEvents()
	return nil
}

// waitEvents waits for the event goroutine to deliver what is queued,
// unless Close was called from OnEvent.
func (c *Conn) waitEvents() {
	if !c.events.onDeliveryGoroutine() {
		<-c.events.done
	}
}

// broadcast wakes everything waiting for a state change. c.mu is held.
func (c *Conn) broadcast() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// setState moves to st and announces it. c.mu is held.
func (c *Conn) setState(st State) {
	c.state = st
	c.broadcast()
	c.events.push(Event{Type: zoo.EventNone, State: st})
}

// finalize ends the session for good (expired, auth failed): every waiting
// and later request fails with err.
func (c *Conn) finalize(st State, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.final != nil || c.closed {
		return
	}
	c.final = err
	c.setState(st)
}

// request is one request frame and what to do with its reply.
type request struct {
	op    int32
	xid   int32 // set when queued; preset for auth and setWatches
	frame []byte
	// onReply runs on the connection's reader, in wire order, so the client's
	// watch records change in the order the server's did. It decodes the
	// body and returns the request's outcome; a decoding failure (r.Err) is
	// the server's fault and ends the connection.
	onReply func(code zoo.Code, r *jute.Reader) error
	// onQueue, if set, runs under c.mu when the request is queued on a connection.
	onQueue func()

	err   error
	evSeq uint64        // events queued before the reply: the caller waits for their delivery
	done  chan struct{} // closed by finish
}

func newRequest(op int32, body func(w *jute.Writer), onReply func(code zoo.Code, r *jute.Reader) error) *request {
	w := jute.NewFrame(64)
	w.RequestHeader(0, op) // the xid is filled in when the request is queued
	if body != nil {
		body(w)
	}
	if onReply == nil {
		onReply = func(code zoo.Code, _ *jute.Reader) error { return zoo.ErrorForCode(code) }
	}
	return &request{op: op, frame: w.Frame(), onReply: onReply, done: make(chan struct{})}
}

// finish completes the request; it is called exactly once, by whoever took
// the request off its queue.
func (r *request) finish(err error, evSeq uint64) {
	r.err, r.evSeq = err, evSeq
	close(r.done)
}

// do sends req once there is a connection and returns its outcome, after
// the notifications that preceded its reply were delivered. If ctx ends
// after the request was sent, its outcome is unknown; its reply, if one
// comes, is still processed (watches it set are recorded).
func (c *Conn) do(ctx context.Context, req *request) error {
	if ctx == nil {
		return errNilContext
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := c.send(ctx, req); err != nil {
		return err
	}
	select {
	case <-req.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	c.events.wait(ctx, req.evSeq)
	return req.err
}

// send queues req on the current connection, waiting for one if needed.
func (c *Conn) send(ctx context.Context, req *request) error {
	for {
		c.mu.Lock()
		switch {
		case c.closed:
			c.mu.Unlock()
			return zoo.ErrClosed
		case c.final != nil:
			err := c.final
			c.mu.Unlock()
			return err
		case c.cur != nil && !c.cur.dead:
			c.cur.queue(req)
			c.mu.Unlock()
			return nil
		}
		ch := c.changed
		c.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// pathErr wraps err with the operation and the caller's path.
func pathErr(op, path string, err error) error {
	if err == nil {
		return nil
	}
	return &zoo.PathError{Op: op, Path: path, Err: err}
}

// check refuses a nil Conn and an invalid path before anything is sent.
func (c *Conn) check(op, path string) error {
	if c == nil {
		return pathErr(op, path, errNilConn)
	}
	return pathErr(op, path, validatePath(path))
}

// addWatch records a watch the server confirmed.
func (c *Conn) addWatch(serverPath string, k watchKinds) {
	c.mu.Lock()
	c.watches.add(serverPath, k)
	c.mu.Unlock()
}
