package zoo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// Transport carries both raft traffic and zoo's own peer RPC between replicas.
type Transport interface {
	// Raft returns the raft transport for this replica.
	Raft() raft.Transport
	// Listener accepts zoo peer-RPC connections addressed to this replica.
	Listener() net.Listener
	// Dial opens a zoo peer-RPC connection to the replica whose raft address is addr.
	Dial(ctx context.Context, addr raft.ServerAddress) (net.Conn, error)
	// Close releases the listener and the raft transport.
	Close() error
}

// The first byte of every connection on the shared port names what it carries,
// so one address per replica serves both raft and zoo RPC.
const (
	muxRaft byte = 'R'
	// muxZoo announces zoo's peer RPC and its version: 'Z' was the first,
	// '2' added commit notices and entry terms in results. Other versions are
	// refused with a log line, so replicas of different versions fail loudly
	// instead of misreading each other (upgrade all replicas together).
	muxZoo   byte = '2'
	muxZooV1 byte = 'Z'
)

const (
	// muxHandshakeTimeout bounds how long a new connection may take to send
	// its kind byte before we drop it.
	muxHandshakeTimeout = 5 * time.Second
	// Raft transport tuning; raft's own defaults for a TCP transport.
	raftMaxPool = 3
	raftTimeout = 10 * time.Second
)

// errUnadvertisableAddr means the address peers would be told to dial is not
// one they can dial, e.g. 0.0.0.0.
var errUnadvertisableAddr = errors.New("zoo: address is not advertisable")

// tcpTransport serves raft and zoo peer RPC on one TCP port.
type tcpTransport struct {
	ln        net.Listener
	advertise net.Addr
	logger    hclog.Logger
	raftLn    *muxListener
	zooLn     *muxListener
	raft      *raft.NetworkTransport

	// ctx is cancelled by Close; it aborts pending handshakes.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // accept loop and handshakes

	mu      sync.Mutex            // guards inbound and closed
	inbound map[net.Conn]struct{} // accepted conns not yet closed, closed by Close
	closed  bool

	closeOnce sync.Once
	closeErr  error
}

// newTCPTransport listens on bindAddr. advertiseAddr is the address peers dial
// (and the raft ServerAddress of this replica); empty means the bound address.
func newTCPTransport(bindAddr, advertiseAddr string, logger hclog.Logger) (*tcpTransport, error) {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	var adv net.Addr
	if advertiseAddr != "" {
		if err := checkAdvertisable(advertiseAddr); err != nil {
			return nil, fmt.Errorf("zoo: advertise address %q: %w", advertiseAddr, err)
		}
		adv = tcpAddrString(advertiseAddr)
	}
	ln, err := net.Listen("tcp", bindAddr)
	if err != nil {
		return nil, fmt.Errorf("zoo: listen on %q: %w", bindAddr, err)
	}
	if adv == nil {
		bound := ln.Addr().String()
		if err := checkAdvertisable(bound); err != nil {
			ln.Close()
			return nil, fmt.Errorf("zoo: bound address %s (set an advertise address): %w", bound, err)
		}
		adv = tcpAddrString(bound)
	}

	ctx, cancel := context.WithCancel(context.Background())
	t := &tcpTransport{
		ln:        ln,
		advertise: adv,
		logger:    logger,
		raftLn:    newMuxListener(adv),
		zooLn:     newMuxListener(adv),
		ctx:       ctx,
		cancel:    cancel,
		inbound:   make(map[net.Conn]struct{}),
	}
	t.raft = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  &raftStream{t: t},
		MaxPool: raftMaxPool,
		Timeout: raftTimeout,
		Logger:  logger,
	})
	t.wg.Add(1)
	go t.acceptLoop()
	return t, nil
}

// checkAdvertisable rejects host:port strings peers could not dial. A host
// name is kept as given, not resolved, so peers follow later DNS changes.
func checkAdvertisable(hostport string) error {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return fmt.Errorf("%w: %w", errUnadvertisableAddr, err)
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
		return fmt.Errorf("%w: port %q", errUnadvertisableAddr, port)
	}
	if host == "" {
		return fmt.Errorf("%w: no host", errUnadvertisableAddr)
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.IsUnspecified() {
		return fmt.Errorf("%w: unspecified IP %s", errUnadvertisableAddr, host)
	}
	return nil
}

// tcpAddrString is a net.Addr that is exactly the host:port it was given.
type tcpAddrString string

func (a tcpAddrString) Network() string { return "tcp" }
func (a tcpAddrString) String() string  { return string(a) }

// Addr is the address peers use to reach this replica.
func (t *tcpTransport) Addr() net.Addr { return t.advertise }

func (t *tcpTransport) Raft() raft.Transport { return t.raft }

func (t *tcpTransport) Listener() net.Listener { return t.zooLn }

func (t *tcpTransport) Dial(ctx context.Context, addr raft.ServerAddress) (net.Conn, error) {
	return dialMux(ctx, string(addr), muxZoo)
}

// Close stops accepting, closes every connection accepted on the port and
// the raft transport's pooled connections, and waits for our goroutines.
func (t *tcpTransport) Close() error {
	t.closeOnce.Do(func() {
		t.cancel()
		t.closeErr = t.ln.Close()
		t.raft.Close()
		t.raft.CloseStreams()
		t.zooLn.Close()
		t.raftLn.Close()

		t.mu.Lock()
		t.closed = true
		conns := t.inbound
		t.inbound = nil
		t.mu.Unlock()
		for c := range conns {
			c.Close()
		}
		t.wg.Wait()
	})
	return t.closeErr
}

func (t *tcpTransport) acceptLoop() {
	defer t.wg.Done()
	var delay time.Duration
	for {
		c, err := t.ln.Accept()
		if err != nil {
			if t.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// Transient (e.g. out of file descriptors): back off, stay alive.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			t.logger.Warn("accept failed", "error", err, "retry-in", delay)
			select {
			case <-time.After(delay):
			case <-t.ctx.Done():
				return
			}
			continue
		}
		delay = 0
		if !t.track(c) {
			c.Close()
			return
		}
		t.wg.Add(1)
		go t.handshake(c)
	}
}

// track records an inbound conn so Close can release it; false once closed.
func (t *tcpTransport) track(c net.Conn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.inbound[c] = struct{}{}
	return true
}

func (t *tcpTransport) untrack(c net.Conn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.inbound, c)
}

// handshake reads the kind byte off its own goroutine, so a client slow to
// send it cannot hold up the accept loop, then hands the conn over.
func (t *tcpTransport) handshake(c net.Conn) {
	defer t.wg.Done()
	var kind [1]byte
	err := c.SetReadDeadline(time.Now().Add(muxHandshakeTimeout))
	if err == nil {
		_, err = io.ReadFull(c, kind[:])
	}
	if err == nil {
		err = c.SetReadDeadline(time.Time{})
	}
	if err != nil {
		if t.ctx.Err() == nil {
			t.logger.Debug("dropping connection without handshake", "remote-address", c.RemoteAddr().String(), "error", err)
		}
		t.closeInbound(c)
		return
	}
	var ml *muxListener
	switch kind[0] {
	case muxRaft:
		ml = t.raftLn
	case muxZoo:
		ml = t.zooLn
	case muxZooV1:
		t.logger.Error("dropping a peer connection from an older zoo (peer protocol 1): every replica must run the same version",
			"remote-address", c.RemoteAddr().String())
		t.closeInbound(c)
		return
	default:
		t.logger.Warn("dropping connection with unknown kind", "remote-address", c.RemoteAddr().String(), "kind", kind[0])
		t.closeInbound(c)
		return
	}
	tc := &trackedConn{Conn: c, t: t}
	select {
	case ml.conns <- tc:
	case <-ml.done:
		t.closeInbound(c)
	case <-t.ctx.Done():
		t.closeInbound(c)
	}
}

func (t *tcpTransport) closeInbound(c net.Conn) {
	t.untrack(c)
	c.Close()
}

// trackedConn forgets itself in the transport when closed.
type trackedConn struct {
	net.Conn
	t    *tcpTransport
	once sync.Once
}

func (c *trackedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.t.untrack(c.Conn) })
	return err
}

// dialMux connects to addr and announces kind. Like net.Dialer, ctx bounds
// only the connect and handshake, not the returned conn's life.
func dialMux(ctx context.Context, addr string, kind byte) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	// Unblock the write if ctx ends first; stop() tells us whether it did.
	stop := context.AfterFunc(ctx, func() { c.SetWriteDeadline(time.Now()) })
	_, err = c.Write([]byte{kind})
	if !stop() {
		c.Close()
		return nil, ctx.Err()
	}
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("zoo: handshake with %s: %w", addr, err)
	}
	return c, nil
}

// raftStream is the raft.StreamLayer over the shared port.
type raftStream struct {
	t *tcpTransport
}

func (s *raftStream) Accept() (net.Conn, error) { return s.t.raftLn.Accept() }

// Close only stops raft's accepts; the port itself belongs to tcpTransport.
func (s *raftStream) Close() error { return s.t.raftLn.Close() }

func (s *raftStream) Addr() net.Addr { return s.t.advertise }

func (s *raftStream) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx := context.Background()
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	return dialMux(ctx, string(addr), muxRaft)
}

// muxListener is the net.Listener for one kind of traffic on the shared port.
type muxListener struct {
	addr  net.Addr
	conns chan net.Conn // unbuffered: a conn is either accepted or closed by its handshake
	done  chan struct{}
	once  sync.Once
}

func newMuxListener(addr net.Addr) *muxListener {
	return &muxListener{addr: addr, conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *muxListener) Accept() (net.Conn, error) {
	select {
	case <-l.done:
		return nil, net.ErrClosed
	default:
	}
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close stops Accept; connections already accepted are the caller's.
func (l *muxListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *muxListener) Addr() net.Addr { return l.addr }
