package zkclient

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/zooraft/zoo"
	"github.com/zooraft/zoo/internal/jute"
)

// errExpired is the handshake's answer for a session the ensemble expired.
var errExpired = errors.New("zkclient: session expired")

// run keeps the session connected: it tries the servers in order,
// round-robin, with a short pause after each round in which none answered,
// serves each connection until it fails, and ends when the session is over
// (expired, auth failed) or Close is called.
func (c *Conn) run() {
	defer close(c.loopDone)
	n := len(c.servers)
	next, failures, backoff := 0, 0, minBackoff
	for c.ctx.Err() == nil {
		c.mu.Lock()
		if c.preferred >= 0 {
			next, c.preferred = c.preferred, -1
		}
		c.mu.Unlock()
		index := next % n
		next = index + 1
		cn, err := c.attempt(c.servers[index], index)
		if errors.Is(err, errExpired) {
			c.log.Info("zkclient: session expired", "server", c.servers[index])
			c.finalize(StateExpired, zoo.ErrSessionExpired)
			return
		}
		if err != nil {
			if c.ctx.Err() != nil {
				return
			}
			c.log.Debug("zkclient: cannot connect", "server", c.servers[index], "err", err)
			if failures++; failures%n == 0 {
				t := time.NewTimer(backoff)
				select {
				case <-t.C:
				case <-c.ctx.Done():
					t.Stop()
					return
				}
				backoff = min(backoff*2, maxBackoff)
			}
			continue
		}
		failures, backoff = 0, minBackoff
		err = cn.serve()
		c.lost(cn, err)
		c.mu.Lock()
		over := c.closed || c.final != nil
		c.mu.Unlock()
		if over {
			return
		}
		c.log.Info("zkclient: connection lost", "server", cn.addr, "err", err)
	}
}

// attempt dials addr and establishes the session over it.
func (c *Conn) attempt(addr string, index int) (*conn, error) {
	dctx, cancel := context.WithTimeout(c.ctx, c.opts.DialTimeout)
	nc, err := c.opts.Dialer(dctx, "tcp", addr)
	cancel()
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		nc.Close()
		return nil, zoo.ErrClosed
	}
	c.dialing = nc
	req := jute.ConnectRequest{LastZxidSeen: c.lastZxid, TimeOut: int32(c.opts.SessionTimeout.Milliseconds()),
		Passwd: make([]byte, 16), ReadOnly: c.opts.CanBeReadOnly, HasReadOnly: true}
	if c.seenRW {
		// A session only a read-only server knows is local to it: start a
		// real one (ClientCnxn.primeConnection does the same).
		req.SessionID, req.Passwd = c.sessionID, append([]byte(nil), c.passwd...)
	}
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.dialing = nil
		c.mu.Unlock()
	}()

	nc.SetDeadline(time.Now().Add(max(c.opts.DialTimeout, c.opts.SessionTimeout*2/3)))
	if _, err := nc.Write(req.Frame()); err != nil {
		nc.Close()
		return nil, fmt.Errorf("handshake: %w", err)
	}
	frame, err := jute.ReadFrame(nc, c.opts.MaxFrameSize)
	if err != nil {
		// A server that is behind the client, or read-only while the
		// client cannot be, closes without answering.
		nc.Close()
		return nil, fmt.Errorf("handshake: %w", err)
	}
	resp, err := jute.ReadConnectResponse(frame)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("%w: malformed ConnectResponse (%d bytes)", errProtocol, len(frame))
	}
	if resp.TimeOut <= 0 {
		nc.Close()
		return nil, errExpired
	}
	nc.SetDeadline(time.Time{})
	cn := newConn(c, nc, addr, index, time.Duration(resp.TimeOut)*time.Millisecond)
	if err := c.establish(cn, resp); err != nil {
		nc.Close()
		return nil, err
	}
	return cn, nil
}

// establish takes the session from a ConnectResponse and makes cn the
// connection requests go to. The client's auths and watches are queued
// first, so they reach the server before any request waiting for the session.
func (c *Conn) establish(cn *conn, resp jute.ConnectResponse) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return zoo.ErrClosed
	}
	if c.seenRW && resp.SessionID != c.sessionID {
		c.log.Warn("zkclient: server gave a new session instead of resuming", "server", cn.addr,
			"old", fmt.Sprintf("0x%x", c.sessionID), "new", fmt.Sprintf("0x%x", resp.SessionID))
	}
	readOnly := resp.HasReadOnly && resp.ReadOnly
	c.sessionID, c.passwd = resp.SessionID, append([]byte(nil), resp.Passwd...)
	c.timeout = time.Duration(resp.TimeOut) * time.Millisecond
	if !readOnly {
		c.seenRW = true
	}
	for _, a := range c.auths {
		cn.queue(c.authRequest(a, nil))
	}
	for _, req := range c.setWatchesRequests() {
		cn.queue(req)
	}
	c.cur = cn
	st := StateConnected
	if readOnly {
		st = StateConnectedReadOnly
		if len(c.servers) > 1 {
			c.probes.Add(1)
			go func() {
				defer c.probes.Done()
				c.probeRW(cn)
			}()
		}
	}
	c.log.Info("zkclient: session established", "server", cn.addr, "session", fmt.Sprintf("0x%x", c.sessionID),
		"timeout", c.timeout, "readOnly", readOnly)
	c.setState(st)
	return nil
}

// lost cleans up after a connection ended: its requests fail (with
// zoo.ErrConnectionLoss: their outcome is unknown) and, unless the session
// is over, the state becomes Disconnected.
func (c *Conn) lost(cn *conn, cause error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur == cn {
		c.cur = nil
		c.broadcast()
	}
	var err error
	switch {
	case c.final != nil:
		err = c.final
	case c.closed:
		err = zoo.ErrClosed
	default:
		err = fmt.Errorf("%w (%v)", zoo.ErrConnectionLoss, cause)
	}
	mark := c.events.mark()
	for _, q := range [][]*request{cn.pending, cn.auths} {
		for _, req := range q {
			req.finish(err, mark)
		}
	}
	cn.pending, cn.auths, cn.out = nil, nil, nil
	if c.final == nil && !c.closed && c.state.connected() {
		c.setState(StateDisconnected)
	}
}

// authRequest builds an auth packet (xid -4). onQueue, if set, runs when
// it is queued.
func (c *Conn) authRequest(a authInfo, onQueue func()) *request {
	req := newRequest(jute.OpAuth, func(w *jute.Writer) {
		w.Int(0) // type
		w.UString(a.scheme)
		w.Buffer(a.auth)
	}, nil)
	req.xid, req.onQueue = jute.XidAuth, onQueue
	return req
}

// setWatchesRequests builds the frames that re-arm every recorded watch on
// a new connection, relative to the last zxid seen, in batches as the Java
// client sends them: setWatches (101) when a batch holds no persistent
// watch (servers before 3.6 know only that), else setWatches2 (105). The
// server answers with catch-up notifications for what changed meanwhile,
// which end the one-shot watches they fire. c.mu is held.
func (c *Conn) setWatchesRequests() []*request {
	var out []*request
	rel := c.lastZxid
	for _, b := range c.watches.lists().batches(setWatchesBatch) {
		op := jute.OpSetWatches
		if len(b.persistent) > 0 || len(b.recursive) > 0 {
			op = jute.OpSetWatches2
		}
		req := newRequest(op, func(w *jute.Writer) {
			w.Long(rel)
			w.Strings(b.data)
			w.Strings(b.exist)
			w.Strings(b.child)
			if op == jute.OpSetWatches2 {
				w.Strings(b.persistent)
				w.Strings(b.recursive)
			}
		}, func(code zoo.Code, _ *jute.Reader) error {
			if code != zoo.CodeOK {
				c.log.Warn("zkclient: re-arming watches failed", "err", zoo.ErrorForCode(code))
			}
			return zoo.ErrorForCode(code)
		})
		req.xid = jute.XidSetWatches
		out = append(out, req)
	}
	return out
}

// dialer returns the Options.Dialer as a net.Dialer-like func, for probes.
func (c *Conn) dial(ctx context.Context, addr string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.DialTimeout)
	defer cancel()
	return c.opts.Dialer(ctx, "tcp", addr)
}
