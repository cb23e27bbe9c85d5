package memnet

import (
	"context"
	"net"
	"sync"

	"github.com/hashicorp/raft"
)

// Endpoint is one replica's attachment to a [Network]. It satisfies the root
// package's Transport interface. Create one with [Network.Endpoint].
type Endpoint struct {
	net   *Network
	addr  raft.ServerAddress
	trans *raft.InmemTransport
	ln    *listener

	// closed is guarded by net.mu, so that Close and the dial checks
	// agree on whether a new link may be registered.
	closed bool
}

// Addr returns the endpoint's address.
func (e *Endpoint) Addr() raft.ServerAddress { return e.addr }

// Raft returns the endpoint's raft transport, a [raft.InmemTransport] whose
// routes the Network manages. raft's Shutdown closes it, which drops its
// routes to peers until the next [Network.Partition], [Network.Isolate]
// or [Network.Heal]; a replica that shuts raft
// down should Close the endpoint too and create a new one to restart.
func (e *Endpoint) Raft() raft.Transport { return e.trans }

// Listener returns the listener that accepts peer-RPC connections dialed to
// this endpoint. Accept hands out the server side of each connection, and
// fails with an error wrapping [net.ErrClosed] once the listener or the
// endpoint is closed. Closing the listener alone makes dials to the endpoint
// fail but leaves its raft traffic and open connections alone.
func (e *Endpoint) Listener() net.Listener { return e.ln }

// Dial opens a peer-RPC connection to the endpoint at addr and returns the
// client side.
//
// It fails promptly, with a [*net.OpError] wrapping [ErrUnreachable], if
// there is no live endpoint at addr, if it has stopped listening, or if a
// partition separates the two. Otherwise it waits, like a connect to a full
// backlog, until the target accepts the connection or ctx is done, and in the
// latter case returns an error wrapping ctx.Err(). ctx does not affect the
// connection once Dial has returned. Dial on a closed endpoint fails with
// [ErrClosed].
func (e *Endpoint) Dial(ctx context.Context, addr raft.ServerAddress) (net.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, e.dialError(addr, err)
	}
	l, ln, err := e.net.register(e, addr)
	if err != nil {
		return nil, e.dialError(addr, err)
	}
	select {
	case ln.conns <- l.server:
		return l.client, nil
	case <-l.dead:
		// A partition or a Close cut the link before it was accepted.
		return nil, e.dialError(addr, ErrUnreachable)
	case <-ln.done:
		l.close()
		return nil, e.dialError(addr, ErrUnreachable)
	case <-ctx.Done():
		l.close()
		return nil, e.dialError(addr, ctx.Err())
	}
}

func (e *Endpoint) dialError(to raft.ServerAddress, err error) error {
	return &net.OpError{Op: "dial", Net: "memnet", Source: Addr(e.addr), Addr: Addr(to), Err: err}
}

// Close removes the endpoint from the network: the raft transports of other
// endpoints stop routing to it and its own stops routing to them, its
// listener closes, its open peer-RPC connections in both directions are
// closed, and later dials to its address fail until [Network.Endpoint]
// re-creates it. Close is idempotent and always returns nil.
func (e *Endpoint) Close() error {
	n := e.net
	n.mu.Lock()
	if e.closed {
		n.mu.Unlock()
		return nil
	}
	e.closed = true
	delete(n.endpoints, e.addr)
	for _, pe := range n.endpoints {
		// InmemTransport.Close below only clears this endpoint's own
		// routes; the others must each drop their route to it.
		pe.trans.Disconnect(e.addr)
	}
	_ = e.trans.Close() // always nil; drops its routes and AppendEntries pipelines
	cut := n.unlinkLocked(func(r route) bool { return r.from == e.addr || r.to == e.addr })
	n.mu.Unlock()

	_ = e.ln.Close() // always nil
	closeLinks(cut)
	return nil
}

// listener hands the server sides of dialed connections to Accept.
type listener struct {
	addr Addr
	// conns is unbuffered so that a connection is either accepted or
	// returned to its dialer as a failure, never stranded in a queue when
	// the listener closes.
	conns     chan net.Conn
	done      chan struct{}
	closeOnce sync.Once
}

func newListener(addr Addr) *listener {
	return &listener{addr: addr, conns: make(chan net.Conn), done: make(chan struct{})}
}

// Accept waits for and returns the next connection dialed to the endpoint.
func (l *listener) Accept() (net.Conn, error) {
	// Checked first so that Accept after Close fails deterministically
	// even while a dialer is waiting.
	select {
	case <-l.done:
		return nil, l.closedError()
	default:
	}
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, l.closedError()
	}
}

func (l *listener) closedError() error {
	return &net.OpError{Op: "accept", Net: "memnet", Addr: l.addr, Err: net.ErrClosed}
}

// Close stops the listener; it is idempotent and always returns nil.
func (l *listener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return nil
}

// Addr returns the endpoint's address.
func (l *listener) Addr() net.Addr { return l.addr }

// link is one peer-RPC connection: both ends of a net.Pipe.
type link struct {
	net    *Network
	route  route
	client *conn
	server *conn
	// dead is closed when the link is cut, so a Dial still waiting to hand
	// it to Accept gives up.
	dead     chan struct{}
	deadOnce sync.Once
}

func newLink(n *Network, r route) *link {
	c, s := net.Pipe()
	l := &link{net: n, route: r, dead: make(chan struct{})}
	l.client = &conn{Conn: c, link: l, local: Addr(r.from), remote: Addr(r.to)}
	l.server = &conn{Conn: s, link: l, local: Addr(r.to), remote: Addr(r.from)}
	return l
}

// cut closes both ends of a link that has already been unregistered.
func (l *link) cut() {
	l.deadOnce.Do(func() { close(l.dead) })
	_ = l.client.Conn.Close() // net.Pipe's Close always returns nil
	_ = l.server.Conn.Close()
}

// close unregisters l and closes both ends.
func (l *link) close() {
	l.net.forget(l)
	l.cut()
}

// conn is one end of a link. It reports endpoint addresses instead of
// net.Pipe's placeholder, and unregisters the link when closed, so the
// network does not keep closed connections around until the next partition.
type conn struct {
	net.Conn
	link          *link
	local, remote Addr
}

// Close closes this end; the peer's reads then return io.EOF.
func (c *conn) Close() error {
	c.link.net.forget(c.link)
	return c.Conn.Close()
}

// LocalAddr returns the address of the endpoint on this end.
func (c *conn) LocalAddr() net.Addr { return c.local }

// RemoteAddr returns the address of the endpoint on the other end.
func (c *conn) RemoteAddr() net.Addr { return c.remote }
