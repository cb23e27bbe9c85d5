package peer

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/zooraft/zoo/internal/accept"
)

// Defaults of Options.
const (
	// DefaultHandshakeTimeout bounds how long a new connection may take to
	// finish its TLS handshake and send its kind byte.
	DefaultHandshakeTimeout = 5 * time.Second
	// DefaultMaxConnsPerIP bounds the connections open from one remote IP
	// address. A member keeps a few per peer (raft's pool of 3, its
	// pipeline, a snapshot, one RPC connection); replicas sharing one host
	// share the bound, so it leaves room for a dozen of them.
	DefaultMaxConnsPerIP = 128
	// DefaultMaxPendingPerIP bounds the connections from one remote IP
	// that have not finished their handshake: a stranger sharing a
	// member's address (NAT, the same host) cannot take the member's slots.
	DefaultMaxPendingPerIP = 32
	// maxPending bounds unfinished handshakes from anywhere, so a crowd of
	// addresses cannot hold unbounded sockets and goroutines either.
	maxPending = 1024
	// DefaultRecheckInterval is how often admitted and dialled links are
	// checked again (recheck.go).
	DefaultRecheckInterval = time.Second

	// Raft transport tuning; raft's own defaults for a TCP transport.
	raftMaxPool = 3
	raftTimeout = 10 * time.Second
)

// ErrUnadvertisable means the address peers would be told to dial is not
// one they can dial, e.g. 0.0.0.0.
var ErrUnadvertisable = errors.New("zoo: address is not advertisable")

// Options configure a Transport.
type Options struct {
	// Bind is the address to listen on.
	Bind string
	// Advertise is the address peers dial (and this replica's raft
	// ServerAddress); empty means the bound address.
	Advertise string
	// TLS, if not nil, makes every link mutual TLS 1.3.
	TLS *TLS
	// Members returns the addresses (host:port) of the ensemble's members;
	// only they are admitted (see admit.go), and links of those no longer
	// members are closed (recheck.go). Nil or an empty list admits anyone
	// who passes TLS (with TLS: a replica certificate of the CA), or anyone
	// at all without: a replica waiting to be added that was told no
	// members knows nobody to expect.
	Members func() []string
	// MaxConnsPerIP and MaxPendingPerIP bound the connections from one
	// remote IP address, all of them and those not yet admitted. 0 means
	// DefaultMaxConnsPerIP and DefaultMaxPendingPerIP.
	MaxConnsPerIP, MaxPendingPerIP int
	// HandshakeTimeout bounds the admission of a connection. 0 means
	// DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
	// RecheckInterval is how often links are checked again. 0 means
	// DefaultRecheckInterval.
	RecheckInterval time.Duration
	// Ensemble returns this replica's ensemble id (EnsembleIDLen bytes), nil
	// while unknown; a peer whose hello names another is refused, both ways
	// (hello.go). Nil: always unknown.
	Ensemble func() []byte
	// Logger receives the transport's logs; nil discards them.
	Logger hclog.Logger
}

// Transport serves raft and zoo peer RPC on one TCP port.
type Transport struct {
	opts      Options
	ln        net.Listener
	advertise net.Addr
	logger    hclog.Logger
	raftLn    *muxListener
	rpcLn     *muxListener
	raft      *raft.NetworkTransport
	members   *memberAddrs
	warnings  *rateLimitedLog
	// otherEnsembles reports replicas of another ensemble: an operator's
	// mistake, so at error level.
	otherEnsembles *rateLimitedLog
	dialer         net.Dialer // from the bound IP, when there is one

	table *conns

	// ctx is cancelled by Close; it aborts pending handshakes.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // accept loop, handshakes and the recheck loop

	closeOnce sync.Once
	closeErr  error
}

// NewTCP listens on opts.Bind and starts admitting connections.
func NewTCP(opts Options) (*Transport, error) {
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.MaxConnsPerIP == 0 {
		opts.MaxConnsPerIP = DefaultMaxConnsPerIP
	}
	if opts.MaxPendingPerIP == 0 {
		opts.MaxPendingPerIP = DefaultMaxPendingPerIP
	}
	if opts.RecheckInterval == 0 {
		opts.RecheckInterval = DefaultRecheckInterval
	}
	if opts.HandshakeTimeout == 0 {
		opts.HandshakeTimeout = DefaultHandshakeTimeout
	}
	var adv net.Addr
	if opts.Advertise != "" {
		if err := checkAdvertisable(opts.Advertise); err != nil {
			return nil, fmt.Errorf("zoo: advertise address %q: %w", opts.Advertise, err)
		}
		adv = addrString(opts.Advertise)
	}
	ln, err := net.Listen("tcp", opts.Bind)
	if err != nil {
		return nil, fmt.Errorf("zoo: listen on %q: %w", opts.Bind, err)
	}
	if adv == nil {
		bound := ln.Addr().String()
		if err := checkAdvertisable(bound); err != nil {
			ln.Close()
			return nil, fmt.Errorf("zoo: bound address %s (set an advertise address): %w", bound, err)
		}
		adv = addrString(bound)
	}

	ctx, cancel := context.WithCancel(context.Background())
	t := &Transport{
		opts:           opts,
		ln:             ln,
		advertise:      adv,
		logger:         opts.Logger,
		raftLn:         newMuxListener(adv),
		rpcLn:          newMuxListener(adv),
		members:        newMemberAddrs(opts.Members),
		warnings:       newRateLimitedLog(opts.Logger, hclog.Warn, time.Minute),
		otherEnsembles: newRateLimitedLog(opts.Logger, hclog.Error, time.Minute),
		table:          newConns(limits{perIP: opts.MaxConnsPerIP, pendingPerIP: opts.MaxPendingPerIP, pending: maxPending}),
		ctx:            ctx,
		cancel:         cancel,
	}
	// Dial from the IP we listen on: a peer that admits members by address
	// must see us come from the address it knows, also on a host with
	// several.
	if a, ok := ln.Addr().(*net.TCPAddr); ok && !a.IP.IsUnspecified() {
		t.dialer.LocalAddr = &net.TCPAddr{IP: a.IP}
	}
	t.raft = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  &raftStream{t: t},
		MaxPool: raftMaxPool,
		Timeout: raftTimeout,
		Logger:  opts.Logger,
	})
	t.wg.Add(2)
	go t.acceptLoop()
	go t.recheckLoop()
	return t, nil
}

// checkAdvertisable rejects host:port strings peers could not dial. A host
// name is kept as given, not resolved, so peers follow later DNS changes.
func checkAdvertisable(hostport string) error {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnadvertisable, err)
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
		return fmt.Errorf("%w: port %q", ErrUnadvertisable, port)
	}
	if host == "" {
		return fmt.Errorf("%w: no host", ErrUnadvertisable)
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.IsUnspecified() {
		return fmt.Errorf("%w: unspecified IP %s", ErrUnadvertisable, host)
	}
	return nil
}

// addrString is a net.Addr that is exactly the host:port it was given.
type addrString string

func (a addrString) Network() string { return "tcp" }
func (a addrString) String() string  { return string(a) }

// Addr is the address peers use to reach this replica.
func (t *Transport) Addr() net.Addr { return t.advertise }

// Raft is the raft transport over the port.
func (t *Transport) Raft() raft.Transport { return t.raft }

// Listener accepts the peer-RPC connections admitted on the port.
func (t *Transport) Listener() net.Listener { return t.rpcLn }

// Dial opens a peer-RPC connection to the replica whose raft address is addr.
func (t *Transport) Dial(ctx context.Context, addr raft.ServerAddress) (net.Conn, error) {
	return t.dial(ctx, string(addr), KindRPC)
}

// Close stops accepting, closes every connection accepted on the port and
// the raft transport's pooled connections, and waits for our goroutines.
func (t *Transport) Close() error {
	t.closeOnce.Do(func() {
		t.cancel()
		t.closeErr = t.ln.Close()
		t.raft.Close()
		t.raft.CloseStreams()
		t.rpcLn.Close()
		t.raftLn.Close()
		for _, c := range t.table.close() {
			c.Close()
		}
		t.wg.Wait()
	})
	return t.closeErr
}

func (t *Transport) acceptLoop() {
	defer t.wg.Done()
	for {
		c, err := accept.Next(t.ctx, t.ln, func(err error, wait time.Duration) {
			t.logger.Warn("accept failed", "error", err, "retry-in", wait)
		})
		if err != nil {
			return // closed
		}
		ok, why := t.table.accept(c, remoteIP(c))
		if !ok {
			c.Close()
			if why != "" {
				t.warnings.log(remoteIP(c).String(), "refusing a connection: "+string(why),
					"remote-address", c.RemoteAddr().String())
				continue
			}
			return // closed
		}
		t.wg.Add(1)
		go t.handshake(c)
	}
}

// remoteIP is the IP address a connection comes from (zero if unknown).
func remoteIP(c net.Conn) netip.Addr {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		ip, _ := netip.AddrFromSlice(a.IP)
		return ip.Unmap()
	}
	return netip.Addr{}
}

// handshake admits a connection and reads its kind byte off its own
// goroutine, so a client slow to send them cannot hold up the accept loop,
// then hands the conn over.
func (t *Transport) handshake(raw net.Conn) {
	defer t.wg.Done()
	c, kind, chain, err := t.admit(raw)
	if err != nil && isOtherEnsemble(err) {
		// Our hello tells the dialler why, before the link closes.
		t.answer(c, kind)
		t.otherEnsembles.log(remoteIP(raw).String(), "refusing a replica of another ensemble",
			"remote-address", raw.RemoteAddr().String(), "error", err)
		t.closeRaw(raw, c)
		return
	}
	if err != nil {
		if t.ctx.Err() == nil {
			t.warnings.log(remoteIP(raw).String(), "refusing a connection on the replica port",
				"remote-address", raw.RemoteAddr().String(), "error", err)
		}
		t.closeRaw(raw, c)
		return
	}
	var ml *muxListener
	switch {
	case kind == KindRaft:
		ml = t.raftLn
	case kind == KindRPC:
		ml = t.rpcLn
	case olderKinds[kind]:
		t.logger.Error("dropping a peer connection from an older zoo: every replica must run the same version",
			"remote-address", raw.RemoteAddr().String(), "kind", string(kind))
		t.closeRaw(raw, c)
		return
	default:
		t.warnings.log(remoteIP(raw).String(), "dropping connection with unknown kind",
			"remote-address", raw.RemoteAddr().String(), "kind", kind)
		t.closeRaw(raw, c)
		return
	}
	t.table.admitted(raw)
	tc := &trackedConn{Conn: c, raw: raw, t: t}
	tc.link = &link{conn: tc, inbound: true, ip: remoteIP(raw), chain: chain}
	if !t.table.addLink(tc.link) {
		tc.Close()
		return
	}
	if err := t.answer(tc, kind); err != nil {
		tc.Close()
		return
	}
	select {
	case ml.conns <- tc:
	case <-ml.done:
		tc.Close()
	case <-t.ctx.Done():
		tc.Close()
	}
}

// closeRaw closes an accepted socket that was not handed over, and c, the
// connection over it (TLS), if not nil.
func (t *Transport) closeRaw(raw, c net.Conn) {
	t.table.forget(raw)
	if c != nil {
		c.Close()
	}
	raw.Close()
}

// trackedConn is an admitted connection: closing it forgets its socket and
// its link.
type trackedConn struct {
	net.Conn
	raw  net.Conn // the TCP socket under Conn (Conn itself without TLS)
	t    *Transport
	link *link
	once sync.Once
}

func (c *trackedConn) Close() error {
	err := c.Conn.Close()
	c.raw.Close()
	c.once.Do(func() {
		c.t.table.dropLink(c.link)
		c.t.table.forget(c.raw)
	})
	return err
}

// dialedConn is a TLS link this replica dialled: closing it forgets its
// link.
type dialedConn struct {
	net.Conn
	t    *Transport
	link *link
	once sync.Once
}

func (c *dialedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.t.table.dropLink(c.link) })
	return err
}

// dial connects to addr, secures the link when TLS is on, and announces
// kind. Like net.Dialer, ctx bounds only the connect and handshake, not the
// returned conn's life.
func (t *Transport) dial(ctx context.Context, addr string, kind byte) (net.Conn, error) {
	c, err := t.dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if t.opts.TLS != nil {
		if c, err = t.dialTLS(ctx, c, addr); err != nil {
			return nil, err
		}
	}
	// Unblock the exchange if ctx ends first; stop() tells us whether it did.
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	err = t.greet(c, kind)
	if !stop() {
		c.Close()
		return nil, ctx.Err()
	}
	if isOtherEnsemble(err) {
		t.otherEnsembles.log(addr, "not linking to a replica of another ensemble", "address", addr, "error", err)
	}
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("%w: %s refused the link: %w", ErrNotAdmitted, addr, err)
	}
	return c, nil
}

// dialTLS secures a dialled socket: the peer must present a replica
// certificate of the CA naming the host dialled. The link is recorded to
// be checked again.
func (t *Transport) dialTLS(ctx context.Context, raw net.Conn, addr string) (net.Conn, error) {
	host, err := hostOf(addr)
	if err != nil {
		raw.Close()
		return nil, err
	}
	var chain []*x509.Certificate
	conf, err := t.opts.TLS.clientConfig(func(peer []*x509.Certificate) error {
		chain = peer
		return t.opts.TLS.verifyChain(peer, host)
	})
	if err != nil {
		raw.Close()
		return nil, err
	}
	tc := tls.Client(raw, conf)
	if err := tc.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, fmt.Errorf("zoo: TLS handshake with %s: %w", addr, err)
	}
	dc := &dialedConn{Conn: tc, t: t}
	dc.link = &link{conn: dc, host: host, chain: chain}
	if !t.table.addLink(dc.link) {
		dc.Close()
		return nil, net.ErrClosed
	}
	return dc, nil
}

// raftStream is the raft.StreamLayer over the shared port.
type raftStream struct {
	t *Transport
}

func (s *raftStream) Accept() (net.Conn, error) { return s.t.raftLn.Accept() }

// Close only stops raft's accepts; the port itself belongs to Transport.
func (s *raftStream) Close() error { return s.t.raftLn.Close() }

func (s *raftStream) Addr() net.Addr { return s.t.advertise }

func (s *raftStream) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx := context.Background()
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	return s.t.dial(ctx, string(addr), KindRaft)
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
