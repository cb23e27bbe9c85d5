package zkwire

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zooraft/zoo"
	"github.com/zooraft/zoo/internal/accept"
)

// Config configures a Server. The zero value serves with ZooKeeper's defaults.
type Config struct {
	// MaxClientCnxns limits concurrent connections per client IP address, as
	// ZooKeeper's maxClientCnxns. 0 means the default, 60; negative means unlimited.
	MaxClientCnxns int
	// FourLetterWords is the four-letter-word whitelist (4lw.commands.whitelist).
	// nil means ZooKeeper's default: {"srvr"}, plus "isro" with ReadOnlyMode;
	// "*" enables all.
	FourLetterWords []string
	// ReadOnlyMode is ZooKeeper's read-only mode (readonlymode.enabled). When
	// the replica has been cut off from its quorum for a moment, the server
	// turns read-only: clients whose ConnectRequest asked for read-only get a
	// read-only session ([zoo.Ensemble.ReadOnlySession], not replicated; the
	// ConnectResponse says readOnly) whose reads are answered from this
	// replica's possibly stale tree and whose writes, multi, check, sync and
	// reconfig get ZNOTREADONLY; other clients are refused. isro answers "ro"
	// and srvr "Mode: read-only" meanwhile. Once the replica serves again its
	// read-only connections are closed, so that their clients reconnect
	// read-write, as ZooKeeper does. Default false: a replica that does not
	// serve drops every client.
	ReadOnlyMode bool
	// ReconfigEnabled serves reconfig (reconfigEnabled): joining and leaving
	// servers, or a new member list, become membership changes of the
	// ensemble (see handleReconfig). Default false: reconfig is
	// ZRECONFIGDISABLED.
	ReconfigEnabled bool
	// ExtendedTypesEnabled enables TTL nodes (createTTL), as ZooKeeper's
	// zookeeper.extendedTypesEnabled. Default false: createTTL is ZUNIMPLEMENTED.
	ExtendedTypesEnabled bool
	// MaxFrameSize is the largest request frame in bytes (jute.maxbuffer);
	// bigger frames close the connection. 0 means the default, 1048575.
	MaxFrameSize int
	// Logger receives connection-level logs. nil discards them.
	Logger *slog.Logger
	// Version is reported by srvr, stat, mntr and envi. It must match
	// [A-Za-z0-9.-]+ for go-zookeeper's FLWSrvr. Default DefaultVersion.
	Version string
}

// DefaultVersion is the version srvr reports when Config.Version is empty: the
// ZooKeeper release whose client protocol zkwire speaks, tagged as zoo.
const DefaultVersion = "3.9.4-zoo"

// buildDate is printed after the version. It uses ZooKeeper 3.6's
// "MM/dd/yyyy HH:mm zzz" form because go-zookeeper's FLWSrvr parses only that.
const buildDate = "11/26/2026 17:00 GMT"

// ErrServerClosed is returned by Serve after Close.
var ErrServerClosed = errors.New("zkwire: server closed")

// Defaults.
const (
	defaultMaxClientCnxns = 60
	defaultMaxFrameSize   = 1048575
	// defaultHandshakeTimeout bounds a connection's TLS handshake, reading
	// its ConnectRequest, and creating or resuming its session.
	defaultHandshakeTimeout = 10 * time.Second
	// catchUpTimeout bounds waiting for this replica to reach a reconnecting
	// client's lastZxidSeen before the connection is refused.
	catchUpTimeout = 2 * time.Second
	// servingPoll is how often the server checks that its replica serves; a
	// replica that stopped serving drops its clients so they fail over.
	servingPoll = 100 * time.Millisecond
	// notServingGrace is how long a replica may be without a leader (an
	// election) before its clients are dropped.
	notServingGrace = 500 * time.Millisecond
)

// Server serves ZooKeeper clients on top of one replica of a zoo ensemble.
// Its methods are safe for concurrent use.
type Server struct {
	ens *zoo.Ensemble
	cfg Config
	log *slog.Logger
	// whitelist of four-letter words; nil entry map with all set means every word.
	allWords bool
	words    map[string]bool
	started  time.Time
	// handshakeTimeout is defaultHandshakeTimeout; tests shorten it before
	// serving.
	handshakeTimeout time.Duration

	ctx    context.Context // cancelled by Close: ends every request in flight
	cancel context.CancelFunc

	mu      sync.Mutex // guards lns, conns, perIP, closed
	lns     []net.Listener
	conns   map[*conn]struct{}
	perIP   map[string]int
	closed  bool
	monitor bool // the serving monitor runs

	wg sync.WaitGroup // connection goroutines and the monitor

	// Counters for srvr, stat and mntr.
	received    atomic.Int64
	sent        atomic.Int64
	outstanding atomic.Int64
	lat         latency
	serving     atomic.Bool
	// readOnly: the server is in read-only mode (Config.ReadOnlyMode and the
	// replica does not serve). roConns counts read-only connections.
	readOnly atomic.Bool
	roConns  atomic.Int64

	reconfigMu sync.Mutex // held while a reconfig runs: one at a time
}

// latency keeps min/avg/max request latency in milliseconds.
type latency struct {
	mu    sync.Mutex // guards the fields below
	min   int64
	max   int64
	total int64
	count int64
}

func (l *latency) add(d time.Duration) {
	ms := d.Milliseconds()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.count == 0 || ms < l.min {
		l.min = ms
	}
	l.max = max(l.max, ms)
	l.total += ms
	l.count++
}

// get returns min, avg, max.
func (l *latency) get() (int64, float64, int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.count == 0 {
		return 0, 0, 0
	}
	return l.min, float64(l.total) / float64(l.count), l.max
}

func (l *latency) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.min, l.max, l.total, l.count = 0, 0, 0, 0
}

// NewServer returns a Server for the replica ens. It does not listen: call
// Serve. A bad Config is a *zoo.ConfigError naming the field.
func NewServer(ens *zoo.Ensemble, cfg Config) (*Server, error) {
	if ens == nil {
		return nil, errors.New("zkwire: nil ensemble")
	}
	if cfg.MaxClientCnxns == 0 {
		cfg.MaxClientCnxns = defaultMaxClientCnxns
	}
	if cfg.MaxFrameSize == 0 {
		cfg.MaxFrameSize = defaultMaxFrameSize
	}
	if cfg.MaxFrameSize < 0 || cfg.MaxFrameSize > math.MaxInt32 {
		return nil, &zoo.ConfigError{Field: "MaxFrameSize", Reason: fmt.Sprintf("%d is out of range", cfg.MaxFrameSize)}
	}
	if cfg.FourLetterWords == nil {
		cfg.FourLetterWords = []string{"srvr"}
		if cfg.ReadOnlyMode {
			cfg.FourLetterWords = append(cfg.FourLetterWords, "isro")
		}
	}
	if cfg.Version == "" {
		cfg.Version = DefaultVersion
	}
	for _, r := range cfg.Version {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-') {
			return nil, &zoo.ConfigError{Field: "Version", Reason: fmt.Sprintf("%q has characters outside [A-Za-z0-9.-]", cfg.Version)}
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{ens: ens, cfg: cfg, log: cfg.Logger, words: map[string]bool{}, started: time.Now(),
		handshakeTimeout: defaultHandshakeTimeout, conns: map[*conn]struct{}{}, perIP: map[string]int{}}
	for _, w := range cfg.FourLetterWords {
		switch {
		case w == "*":
			s.allWords = true
		case fourLetterWords[w]:
			s.words[w] = true
		default:
			return nil, &zoo.ConfigError{Field: "FourLetterWords", Reason: fmt.Sprintf("unknown word %q", w)}
		}
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.serving.Store(true)
	return s, nil
}

// Serve accepts connections on ln until Close, then returns ErrServerClosed.
// Serve may be called for several listeners. ln is closed when Serve returns.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.lns = append(s.lns, ln)
	if !s.monitor {
		s.monitor = true
		s.wg.Add(1)
		go s.monitorServing()
	}
	s.mu.Unlock()
	defer ln.Close()
	for {
		nc, err := accept.Next(s.ctx, ln, func(err error, wait time.Duration) {
			s.log.Warn("zkwire: accept", "err", err, "retry", wait)
		})
		if err != nil {
			if s.isClosed() {
				return ErrServerClosed
			}
			return err
		}
		s.accept(nc)
	}
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// accept registers a new connection, enforcing MaxClientCnxns, and starts it.
func (s *Server) accept(nc net.Conn) {
	ip := peerIP(nc.RemoteAddr())
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		nc.Close()
		return
	}
	if s.cfg.MaxClientCnxns > 0 && s.perIP[ip] >= s.cfg.MaxClientCnxns {
		s.mu.Unlock()
		s.log.Warn("zkwire: too many connections from one address", "ip", ip, "max", s.cfg.MaxClientCnxns)
		nc.Close()
		return
	}
	c := newConn(s, nc, ip)
	s.conns[c] = struct{}{}
	s.perIP[ip]++
	s.wg.Add(2)
	s.mu.Unlock()
	go c.readLoop()
	go c.writeLoop()
}

// forget drops a closed connection from the table.
func (s *Server) forget(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.conns[c]; !ok {
		return
	}
	delete(s.conns, c)
	if s.perIP[c.ip]--; s.perIP[c.ip] <= 0 {
		delete(s.perIP, c.ip)
	}
}

// connList returns the open connections, oldest first.
func (s *Server) connList() []*conn {
	s.mu.Lock()
	out := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		out = append(out, c)
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b *conn) int { return a.est.Compare(b.est) })
	return out
}

// Addr returns the address of the first listener being served, or nil.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || len(s.lns) == 0 {
		return nil
	}
	return s.lns[0].Addr()
}

// Close stops the listeners and closes every connection. The sessions of the
// connections are detached, not closed: they live on until their timeout, and
// their clients may resume them through another replica's server. Close waits
// for the connections' goroutines and is idempotent.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.wg.Wait()
		return nil
	}
	s.closed = true
	lns := s.lns
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	s.cancel()
	var err error
	for _, ln := range lns {
		if e := ln.Close(); e != nil && !errors.Is(e, net.ErrClosed) && err == nil {
			err = e
		}
	}
	for _, c := range conns {
		c.close()
	}
	s.wg.Wait()
	return err
}

// monitorServing drops every client connection when the replica has stopped
// serving for a while (cut off from its quorum, or closed), as a ZooKeeper
// server that lost its leader does, so that clients fail over to a replica
// that serves while their sessions are still alive. With ReadOnlyMode the
// server turns read-only instead and keeps its read-only connections, which
// it closes once the replica serves again.
func (s *Server) monitorServing() {
	defer s.wg.Done()
	tk := time.NewTicker(servingPoll)
	defer tk.Stop()
	var since time.Time
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-tk.C:
		}
		serving := s.ens.Serving()
		s.serving.Store(serving)
		switch {
		case serving:
			since = time.Time{}
			if s.readOnly.Swap(false) {
				s.log.Info("zkwire: replica serves again; leaving read-only mode")
			}
			if s.roConns.Load() > 0 {
				s.dropConns(true, "zkwire: replica serves again; closing read-only client")
			}
		case since.IsZero():
			since = time.Now()
		case time.Since(since) >= notServingGrace:
			if s.cfg.ReadOnlyMode && !s.readOnly.Swap(true) {
				s.log.Info("zkwire: replica not serving; entering read-only mode")
			}
			s.dropConns(false, "zkwire: replica not serving; dropping client")
		}
	}
}

// dropConns closes the established connections whose sessions are read-only
// (ro) or read-write (!ro).
func (s *Server) dropConns(ro bool, why string) {
	for _, c := range s.connList() {
		if sess := c.session(); sess != nil && sess.ReadOnly() == ro {
			s.log.Info(why, "remote", c.remote)
			c.close()
		}
	}
}

// inReadOnlyMode reports whether the server answers as a read-only server:
// read-only mode is on and st (the replica's status) says it does not serve.
func (s *Server) inReadOnlyMode(st zoo.Status) bool { return !st.Serving && s.readOnly.Load() }

// modeName is srvr's "Mode:" and mntr's server_state.
func (s *Server) modeName(st zoo.Status) string {
	if s.inReadOnlyMode(st) {
		return "read-only"
	}
	return st.Role.String()
}

// peerIP returns the IP of a peer address, or the address itself.
func peerIP(a net.Addr) string {
	if a == nil {
		return ""
	}
	if t, ok := a.(*net.TCPAddr); ok {
		return t.IP.String()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}
