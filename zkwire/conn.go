package zkwire

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"runtime/debug"
	"sync"
	"time"

	"github.com/zooraft/zoo"
	"github.com/zooraft/zoo/internal/jute"
)

// maxQueuedBytes is how much unsent output a connection may hold before its
// reader stops taking requests (backpressure on a client that does not read).
// Watch notifications are queued regardless: they must never block the apply loop.
const maxQueuedBytes = 4 << 20

// conn is one client connection. Two goroutines serve it: readLoop reads and
// processes requests strictly in order (the session is used by it alone), and
// writeLoop writes the ordered outbound queue, into which replies (in request
// order) and watch notifications (from the replica's apply loop, through
// Notify) are appended. Because a write's notifications are queued while it
// is applied, before the write's own reply, a client always sees them first.
//
// Writes a client sends without waiting overlap (pipeline.go); everything
// else is processed in order after them.
type conn struct {
	srv    *Server
	nc     net.Conn
	br     *bufio.Reader
	ip     string // peer IP: MaxClientCnxns key and the session's ip auth id
	remote string
	tls    bool              // the connection is TLS: frames are coalesced into records
	cert   *x509.Certificate // the verified client certificate, set by tlsHandshake before the session exists
	est    time.Time
	ctx    context.Context // cancelled when the connection closes
	cancel context.CancelFunc

	wake  chan struct{} // capacity 1: the queue has something for the writer
	space chan struct{} // capacity 1: the writer drained the queue
	done  chan struct{} // closed by close

	mu        sync.Mutex // guards everything below
	sess      *zoo.ServerSession
	timeout   time.Duration // negotiated session timeout
	out       [][]byte      // frames waiting for the writer
	outBytes  int
	finishing bool // close once out is written
	closed    bool
	ending    bool // a closeSession is in progress: the session's end is expected
	watches   map[string]watchKinds
	st        connStats

	pipe pipeline // used by the reader goroutine only (pipeline.go)
}

// connStats feeds cons.
type connStats struct {
	recved, sent           int64
	lastOp                 string
	lastCxid               int32
	lastZxid               int64
	lastResp               time.Time
	lastLat, minLat        int64
	maxLat, totLat, numLat int64
}

func newConn(s *Server, nc net.Conn, ip string) *conn {
	_, isTLS := nc.(*tls.Conn)
	c := &conn{srv: s, nc: nc, br: bufio.NewReader(nc), ip: ip, remote: nc.RemoteAddr().String(), tls: isTLS,
		est: time.Now(), wake: make(chan struct{}, 1), space: make(chan struct{}, 1),
		done: make(chan struct{}), watches: map[string]watchKinds{}}
	c.ctx, c.cancel = context.WithCancel(s.ctx)
	c.pipe.slots = make(chan struct{}, maxPipelined)
	c.st.lastCxid, c.st.lastZxid, c.st.lastOp = -1, -1, "NA"
	return c
}

// session returns the connection's session, nil before the handshake.
func (c *conn) session() *zoo.ServerSession {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sess
}

// established reports whether the handshake completed.
func (c *conn) established() bool { return c.session() != nil }

// close closes the connection now, dropping unsent output. Idempotent.
// survive turns a panic while serving this connection into a logged error
// and a closed connection: one bad request must not take down the replica,
// nor the process embedding it. Deferred by every goroutine that serves
// requests.
func (c *conn) survive() {
	if v := recover(); v != nil {
		c.srv.log.Error("zkwire: panic serving a request; connection closed",
			"remote", c.remote, "panic", v, "stack", string(debug.Stack()))
		c.close()
	}
}

func (c *conn) close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.out, c.outBytes = nil, 0
	close(c.done)
	if c.sess != nil && c.sess.ReadOnly() {
		c.srv.roConns.Add(-1)
	}
	c.mu.Unlock()
	c.cancel()
	c.nc.Close()
	c.srv.forget(c)
}

// enqueue appends a frame to the outbound queue; dropped once closing.
func (c *conn) enqueue(frame []byte) {
	c.mu.Lock()
	if c.closed || c.finishing {
		c.mu.Unlock()
		return
	}
	c.out = append(c.out, frame)
	c.outBytes += len(frame)
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// finish closes the connection once everything queued so far is written.
func (c *conn) finish() {
	c.mu.Lock()
	c.finishing = true
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Notify implements zoo.Watcher: it queues a watch notification and never
// blocks. Called from the replica's apply loop.
func (c *conn) Notify(ev zoo.Event) {
	if ev.Type == zoo.EventNotWatching {
		// The replica installed a snapshot and ended our persistent watches:
		// drop the connection so the client resumes and re-sends them.
		c.finish()
		return
	}
	zxid := ev.Zxid
	if zxid <= 0 {
		zxid = -1
	}
	w := jute.NewFrame(16 + 12 + len(ev.Path))
	w.ReplyHeader(jute.XidNotification, zxid, zoo.CodeOK)
	w.Int(int32(ev.Type))
	w.Int(stateSyncConnected)
	w.UString(ev.Path)
	c.mu.Lock()
	c.watchFired(ev)
	c.mu.Unlock()
	c.enqueue(w.Frame())
}

// writeLoop writes queued frames in order until the connection closes.
func (c *conn) writeLoop() {
	defer c.srv.wg.Done()
	for {
		select {
		case <-c.wake:
		case <-c.done:
			return
		}
		for {
			c.mu.Lock()
			batch, finishing, timeout := c.out, c.finishing, c.timeout
			c.out, c.outBytes = nil, 0
			c.mu.Unlock()
			select {
			case c.space <- struct{}{}:
			default:
			}
			if len(batch) == 0 {
				if finishing {
					c.close()
					return
				}
				break
			}
			if timeout <= 0 {
				timeout = c.srv.handshakeTimeout
			}
			// A client that reads nothing for a whole session timeout is gone.
			c.nc.SetWriteDeadline(time.Now().Add(timeout))
			n := len(batch)
			if c.tls && n > 1 {
				batch = [][]byte{bytes.Join(batch, nil)} // one record, not one per frame
			}
			bufs := net.Buffers(batch)
			if _, err := bufs.WriteTo(c.nc); err != nil {
				c.close()
				return
			}
			c.srv.sent.Add(int64(n))
			c.mu.Lock()
			c.st.sent += int64(n)
			c.mu.Unlock()
		}
	}
}

// waitSpace blocks the reader while the client is not reading its replies.
func (c *conn) waitSpace() bool {
	for {
		c.mu.Lock()
		ok := c.outBytes <= maxQueuedBytes
		c.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-c.space:
		case <-c.done:
			return false
		}
	}
}

// readFrame reads one length-prefixed frame. A length < 0 or above
// MaxFrameSize is an error: ZooKeeper closes the connection ("Len error").
func (c *conn) readFrame(lenBytes []byte) ([]byte, error) {
	if lenBytes == nil {
		var b [4]byte
		if _, err := io.ReadFull(c.br, b[:]); err != nil {
			return nil, err
		}
		lenBytes = b[:]
	}
	n := int32(binary.BigEndian.Uint32(lenBytes))
	if n < 0 || int(n) > c.srv.cfg.MaxFrameSize {
		return nil, errFrameLength
	}
	frame := make([]byte, n)
	if _, err := io.ReadFull(c.br, frame); err != nil {
		return nil, err
	}
	return frame, nil
}

var errFrameLength = errors.New("zkwire: frame length out of range")

// readLoop runs the connection: four-letter word or handshake, then requests.
func (c *conn) readLoop() {
	defer c.srv.wg.Done()
	defer c.cleanup()
	defer c.survive()
	if !c.tlsHandshake() {
		c.close()
		return
	}
	c.nc.SetReadDeadline(time.Now().Add(c.srv.handshakeTimeout))
	var first [4]byte
	if _, err := io.ReadFull(c.br, first[:]); err != nil {
		c.close()
		return
	}
	if word := string(first[:]); fourLetterWords[word] {
		c.srv.fourLetter(c, word)
		return
	}
	frame, err := c.readFrame(first[:])
	if err != nil {
		c.srv.log.Debug("zkwire: bad connect frame", "remote", c.remote, "err", err)
		c.close()
		return
	}
	if !c.handshake(frame) {
		return
	}
	for {
		if !c.waitSpace() {
			return
		}
		c.mu.Lock()
		stop, timeout := c.closed || c.finishing, c.timeout
		c.mu.Unlock()
		if stop {
			return
		}
		// The session expires a timeout after the client was last heard from
		// (a server session); a socket silent that long is dropped too.
		c.nc.SetReadDeadline(time.Now().Add(timeout))
		frame, err := c.readFrame(nil)
		if err == nil {
			if s := c.session(); s != nil {
				s.Touch()
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				c.srv.log.Debug("zkwire: read", "remote", c.remote, "err", err)
			}
			c.close()
			return
		}
		if pipelinable(frame, c.session()) {
			if !c.startWrite(frame) {
				return
			}
			continue
		}
		c.drainWrites()
		if !c.process(frame) {
			return
		}
	}
}

// cleanup runs when the reader ends: the session is detached, not closed,
// so the client can resume it elsewhere until its timeout.
func (c *conn) cleanup() {
	c.mu.Lock()
	s, ending := c.sess, c.ending
	c.watches = map[string]watchKinds{}
	c.mu.Unlock()
	if s != nil && !ending {
		s.Detach()
	}
}

// handshake answers the ConnectRequest: a new session, a resumed one, or
// the expired-session answer. It reports whether requests may follow.
func (c *conn) handshake(frame []byte) bool {
	req, err := jute.ReadConnectRequest(frame)
	if err != nil {
		c.srv.log.Debug("zkwire: malformed ConnectRequest", "remote", c.remote, "len", len(frame))
		c.close()
		return false
	}
	ens := c.srv.ens
	ctx, cancel := context.WithTimeout(c.ctx, c.srv.handshakeTimeout)
	defer cancel()
	if req.LastZxidSeen > ens.LastZxid() {
		// The client saw more than this replica applied: catch up briefly,
		// else refuse without a reply so it tries another server.
		wctx, wcancel := context.WithTimeout(ctx, catchUpTimeout)
		err := ens.WaitServing(wctx)
		wcancel()
		if req.LastZxidSeen > ens.LastZxid() {
			c.srv.log.Info("zkwire: client is ahead of this replica; refusing", "remote", c.remote,
				"clientZxid", req.LastZxidSeen, "zxid", ens.LastZxid(), "err", err)
			c.close()
			return false
		}
	}
	var s *zoo.ServerSession
	timeout := zoo.WithSessionTimeout(time.Duration(req.TimeOut) * time.Millisecond)
	switch {
	case c.srv.readOnly.Load() && !req.ReadOnly:
		// A read-only server refuses clients that cannot be read-only.
		c.srv.log.Info("zkwire: read-only mode; refusing a read-write client", "remote", c.remote)
		c.close()
		return false
	case c.srv.readOnly.Load():
		// Not replicated: a new session gets a local id; a client that had a
		// read-write session keeps its id (checked against this replica's
		// copy of the session table) so that it can resume it read-write later.
		s, err = ens.ReadOnlySession(req.SessionID, req.Passwd, c, timeout)
	case req.SessionID == 0:
		s, err = ens.NewServerSession(ctx, c, timeout)
	default:
		s, err = ens.ResumeSession(ctx, req.SessionID, req.Passwd, c)
	}
	if req.SessionID != 0 && errors.Is(err, zoo.ErrSessionExpired) {
		c.enqueue(jute.ConnectResponse{Passwd: make([]byte, 16), HasReadOnly: req.HasReadOnly}.Frame())
		c.finish()
		return false
	}
	if err != nil {
		c.srv.log.Info("zkwire: cannot establish session", "remote", c.remote, "session", req.SessionID, "err", err)
		c.close()
		return false
	}
	if c.ip != "" {
		// Every connection carries ip:<peer>, as ZooKeeper's NIOServerCnxn does.
		if err := s.AddAuth(ctx, "ip", []byte(c.ip)); err != nil {
			c.srv.log.Debug("zkwire: ip auth", "ip", c.ip, "err", err)
		}
	}
	if c.cert != nil {
		// A verified client certificate authenticates the connection, as
		// ZooKeeper's X509AuthenticationProvider does at the handshake.
		if err := s.AddX509Auth(ctx, c.cert); err != nil {
			c.srv.log.Warn("zkwire: x509 auth", "remote", c.remote, "err", err)
		}
	}
	c.mu.Lock()
	closed := c.closed
	if !closed {
		c.sess, c.timeout = s, s.Timeout()
		if s.ReadOnly() {
			c.srv.roConns.Add(1) // the monitor closes it once the replica serves
		}
	}
	c.mu.Unlock()
	if closed {
		s.Detach()
		return false
	}
	c.enqueue(jute.ConnectResponse{TimeOut: int32(s.Timeout().Milliseconds()), SessionID: s.ID(), Passwd: s.Password(),
		HasReadOnly: req.HasReadOnly, ReadOnly: s.ReadOnly()}.Frame())
	c.srv.wg.Add(1)
	go c.watchSession(s)
	return true
}

// watchSession closes the connection when its session ends (expired, moved
// to another connection, or the replica closed), after writing what is queued.
func (c *conn) watchSession(s *zoo.ServerSession) {
	defer c.srv.wg.Done()
	select {
	case <-s.Done():
	case <-c.done:
		return
	}
	c.mu.Lock()
	ending := c.ending
	c.mu.Unlock()
	if !ending { // a closeSession's own reply closes the connection
		c.finish()
	}
}
