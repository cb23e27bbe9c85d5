package zkclient

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/zooraft/zoo"
	"github.com/zooraft/zoo/internal/jute"
)

// errProtocol marks a server that broke the protocol: the connection is
// dropped and the client moves on, as the Java client does.
var errProtocol = errors.New("zkclient: protocol error")

// pingFrame is a ping request: xid -2, op 11, no body.
var pingFrame = func() []byte {
	w := jute.NewFrame(8)
	w.RequestHeader(jute.XidPing, jute.OpPing)
	return w.Frame()
}()

// conn is one TCP connection carrying the session. Requests are queued on
// it in order (pending, and their frames in out, under Conn.mu); a writer
// goroutine writes out and pings when idle; the reader matches replies to
// pending in FIFO order and hands notifications to the event queue.
type conn struct {
	c           *Conn
	nc          net.Conn
	addr        string
	index       int           // of addr in Conn.servers
	readTimeout time.Duration // 2/3 of the session timeout: a silent server is gone
	pingEvery   time.Duration // 1/3 of the session timeout of idle sending
	wake        chan struct{} // capacity 1: out has frames
	done        chan struct{} // closed by kill
	writerDone  chan struct{}

	// Guarded by Conn.mu.
	pending []*request // sent, waiting for replies in order
	auths   []*request // auth requests: ZooKeeper answers them out of order, at once
	out     [][]byte   // frames for the writer
	dead    bool
	err     error // why the connection ended
}

func newConn(c *Conn, nc net.Conn, addr string, index int, timeout time.Duration) *conn {
	return &conn{c: c, nc: nc, addr: addr, index: index,
		readTimeout: timeout * 2 / 3, pingEvery: max(timeout/3, time.Millisecond),
		wake: make(chan struct{}, 1), done: make(chan struct{}), writerDone: make(chan struct{})}
}

// queue assigns req an xid and appends it to the connection. Conn.mu is held.
func (cn *conn) queue(req *request) {
	c := cn.c
	if req.xid == 0 {
		c.xid++
		if c.xid <= 0 { // wrapped: xids stay positive, the special ones are negative
			c.xid = 1
		}
		req.xid = c.xid
	}
	binary.BigEndian.PutUint32(req.frame[4:8], uint32(req.xid))
	if req.xid == jute.XidAuth {
		cn.auths = append(cn.auths, req)
	} else {
		cn.pending = append(cn.pending, req)
		c.maxPending = max(c.maxPending, len(cn.pending))
	}
	cn.out = append(cn.out, req.frame)
	if req.onQueue != nil {
		req.onQueue()
	}
	select {
	case cn.wake <- struct{}{}:
	default:
	}
}

// kill ends the connection; the first cause sticks. Safe from any goroutine.
func (cn *conn) kill(err error) {
	cn.c.mu.Lock()
	if !cn.dead {
		cn.dead, cn.err = true, err
		close(cn.done)
	}
	cn.c.mu.Unlock()
	cn.nc.Close()
}

// serve runs the connection until it fails and returns why.
func (cn *conn) serve() error {
	go cn.writeLoop()
	cn.kill(cn.readLoop())
	<-cn.writerDone
	cn.c.mu.Lock()
	defer cn.c.mu.Unlock()
	return cn.err
}

// writeLoop writes queued frames in order, and a ping whenever nothing was
// sent for pingEvery.
func (cn *conn) writeLoop() {
	defer close(cn.writerDone)
	c := cn.c
	timer := time.NewTimer(cn.pingEvery)
	defer timer.Stop()
	lastSend := time.Now()
	for {
		select {
		case <-cn.wake:
		case <-timer.C:
		case <-cn.done:
			return
		}
		c.mu.Lock()
		batch := cn.out
		cn.out = nil
		c.mu.Unlock()
		if len(batch) == 0 && time.Since(lastSend) >= cn.pingEvery {
			batch = [][]byte{pingFrame}
		}
		if len(batch) > 0 {
			cn.nc.SetWriteDeadline(time.Now().Add(cn.readTimeout))
			bufs := net.Buffers(batch)
			if _, err := bufs.WriteTo(cn.nc); err != nil {
				cn.kill(fmt.Errorf("write: %w", err))
				return
			}
			lastSend = time.Now()
		}
		timer.Reset(max(time.Until(lastSend.Add(cn.pingEvery)), time.Millisecond))
	}
}

// readLoop reads frames until the connection fails.
func (cn *conn) readLoop() error {
	br := bufio.NewReaderSize(cn.nc, 64<<10)
	for {
		cn.nc.SetReadDeadline(time.Now().Add(cn.readTimeout))
		frame, err := jute.ReadFrame(br, cn.c.opts.MaxFrameSize)
		if err != nil {
			return fmt.Errorf("read: %w", err)
		}
		if err := cn.handle(frame); err != nil {
			return err
		}
	}
}

// handle processes one frame from the server.
func (cn *conn) handle(frame []byte) error {
	c := cn.c
	r := jute.NewReader(frame)
	xid, zxid, code := r.Int(), r.Long(), zoo.Code(r.Int())
	if r.Err != nil {
		return fmt.Errorf("%w: %d-byte frame has no reply header", errProtocol, len(frame))
	}
	switch xid {
	case jute.XidNotification:
		typ, _, path := zoo.EventType(r.Int()), r.Int(), r.UString()
		if r.Err != nil {
			return fmt.Errorf("%w: malformed notification", errProtocol)
		}
		c.notified(typ, path, zxid)
		return nil
	case jute.XidPing:
		return nil
	}

	c.mu.Lock()
	var req *request
	switch {
	case xid == jute.XidAuth && len(cn.auths) > 0:
		req = cn.auths[0]
		cn.auths[0] = nil
		cn.auths = cn.auths[1:]
	case xid == jute.XidAuth:
		c.mu.Unlock()
		c.log.Debug("zkclient: unexpected auth reply", "server", cn.addr, "err", code)
		return nil
	case len(cn.pending) == 0:
		c.mu.Unlock()
		return fmt.Errorf("%w: reply with xid %d but no request pending", errProtocol, xid)
	case cn.pending[0].xid != xid:
		want := cn.pending[0].xid
		c.mu.Unlock()
		return fmt.Errorf("%w: reply xid %d out of order, want %d", errProtocol, xid, want)
	default:
		req = cn.pending[0]
		cn.pending[0] = nil
		cn.pending = cn.pending[1:]
	}
	if zxid > 0 {
		c.lastZxid = zxid
	}
	c.mu.Unlock()

	// A reply that ends the connection ends it before its caller learns of
	// it, so that the caller's next request waits for the next connection.
	err := req.onReply(code, r)
	if r.Err != nil {
		perr := fmt.Errorf("%w: malformed reply to op %d", errProtocol, req.op)
		cn.kill(perr)
		req.finish(fmt.Errorf("%w (%v)", zoo.ErrConnectionLoss, perr), c.events.mark())
		return perr
	}
	if req.xid == jute.XidAuth && code == zoo.CodeAuthFailed {
		// ZooKeeper closes the connection after this; the session is
		// unusable for this client (Java's AUTH_FAILED state).
		c.finalize(StateAuthFailed, zoo.ErrAuthFailed)
		cn.kill(zoo.ErrAuthFailed)
		req.finish(err, c.events.mark())
		return zoo.ErrAuthFailed
	}
	req.finish(err, c.events.mark())
	return nil
}

// notified handles a watch notification: it ends the one-shot watches it
// fired, then queues the event, so both happen in wire order.
func (c *Conn) notified(typ zoo.EventType, path string, zxid int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.watches.fired(path, typ)
	c.events.push(Event{Type: typ, State: c.state, Path: c.clientPath(path), Zxid: zxid})
}
