// Package demo holds what the recipe examples (election, lock, config,
// discovery) share, so that each example's main.go shows only its recipe:
//
//   - [Flags]: -id, -peers, -dir (and -tls, -once, -tick, -session-timeout, -v),
//     which make a program one replica of a real multi-process ensemble, as
//     zoo.Config's ID, Peers and Dir name them;
//   - [StartCluster]: the 3-replica ensemble on loopback TCP, with real bbolt
//     dirs, that the one-process demos run in one process (as quickstart);
//   - [Log]: the narrator, safe for concurrent use;
//   - [AllDone]: the rendezvous that keeps a -once process's replica up until
//     every process has done its part.
package demo

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/zooraft/zoo"
	"github.com/zooraft/zoo/recipe"
)

// Defaults of the demos: a short tick makes failover quick (raft's heartbeat
// and election timeouts are half a tick), and a short session timeout makes a
// dead participant's ephemeral nodes vanish within a few seconds.
const (
	DefaultTick           = 200 * time.Millisecond
	DefaultSessionTimeout = 2 * time.Second
	// CallTimeout bounds one call to the ensemble that is expected to finish
	// promptly (a read, a write, a release).
	CallTimeout = 10 * time.Second
	// QuorumTimeout bounds how long a process waits for its peers to start.
	QuorumTimeout = 2 * time.Minute
)

// Flags are the flags every example shares. Without -id an example runs its
// one-process demo; with -id it runs one replica of a real ensemble.
type Flags struct {
	ID             string
	Peers          PeerList
	Dir            string
	Bind           string
	TLS            string
	Once           bool
	Tick           time.Duration
	SessionTimeout time.Duration
	Verbose        bool
}

// Register defines the flags on fs.
func (f *Flags) Register(fs *flag.FlagSet) {
	fs.StringVar(&f.ID, "id", "", "this replica's ID in -peers; without -id the one-process demo runs")
	fs.Var(&f.Peers, "peers", "every member of the ensemble, this one included, as `ID=host:port,...` (the same list in every process)")
	fs.StringVar(&f.Dir, "dir", "", "this replica's data dir (raft log and snapshots); created if missing")
	fs.StringVar(&f.Bind, "bind", "", "address to listen on, if not this replica's address in -peers (which is then advertised)")
	fs.StringVar(&f.TLS, "tls", "", "secure the links between replicas with mutual TLS: `DIR`/ca.pem and DIR/server.<id>.pem, as `zoo certs -dir DIR -hosts host1,host2,...` writes them")
	fs.BoolVar(&f.Once, "once", false, "do this process's part of the demo, wait for the others to do theirs, and exit")
	fs.DurationVar(&f.Tick, "tick", DefaultTick, "zoo.Config.TickTime: raft's heartbeat and election timeouts are half of it")
	fs.DurationVar(&f.SessionTimeout, "session-timeout", DefaultSessionTimeout, "session timeout: how soon a dead process's ephemeral nodes vanish")
	fs.BoolVar(&f.Verbose, "v", false, "log zoo's and raft's messages to stderr")
}

// Multi reports whether the flags ask for one replica of a multi-process
// ensemble (-id given).
func (f *Flags) Multi() bool { return f.ID != "" }

// Check validates the flags of a multi-process run.
func (f *Flags) Check() error {
	if len(f.Peers) == 0 {
		return errors.New("-id needs -peers (ID=host:port,... for every member, this one included)")
	}
	if f.Dir == "" {
		return errors.New("-id needs -dir (this replica's data dir)")
	}
	if f.Self().Addr == "" {
		return fmt.Errorf("-id %s is not one of -peers %s", f.ID, f.Peers.String())
	}
	return nil
}

// Self returns this replica's entry in -peers (zero if it has none).
func (f *Flags) Self() zoo.Peer {
	for _, p := range f.Peers {
		if p.ID == f.ID {
			return p
		}
	}
	return zoo.Peer{}
}

// Open opens this process's replica: zoo.Config with ID, Dir, BindAddr and
// Peers from the flags, exactly as a service embedding zoo would.
func (f *Flags) Open() (*zoo.Ensemble, error) {
	if err := f.Check(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(f.Dir, 0o755); err != nil {
		return nil, err
	}
	cfg := zoo.Config{
		ID:       f.ID,
		Dir:      f.Dir,
		BindAddr: f.Self().Addr,
		Peers:    f.Peers,
		TickTime: f.Tick,
	}
	if f.Bind != "" {
		cfg.BindAddr, cfg.AdvertiseAddr = f.Bind, f.Self().Addr
	}
	if f.TLS != "" {
		cfg.PeerTLS = &zoo.PeerTLS{
			CertFile: filepath.Join(f.TLS, "server."+f.ID+".pem"),
			CAFile:   filepath.Join(f.TLS, "ca.pem"),
		}
	}
	if f.Verbose {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	e, err := zoo.Open(cfg)
	if err != nil {
		return nil, fmt.Errorf("open replica %s in %s: %w", f.ID, f.Dir, err)
	}
	return e, nil
}

// Join opens this process's replica, waits until the ensemble serves (the
// other processes may start later: a quorum is needed), and opens a session
// on it. The caller closes both (see [Shutdown]).
func (f *Flags) Join(ctx context.Context, log *Log) (*zoo.Ensemble, *zoo.Session, error) {
	e, err := f.Open()
	if err != nil {
		return nil, nil, err
	}
	log.Printf("replica %s: listening on %s, data in %s; waiting for a quorum of %s", f.ID, e.Addr(), f.Dir, f.Peers.String())
	wctx, cancel := context.WithTimeout(ctx, QuorumTimeout)
	defer cancel()
	if err := e.WaitServing(wctx); err != nil {
		e.Close()
		return nil, nil, fmt.Errorf("replica %s: no quorum within %v (are the other processes running?): %w", f.ID, QuorumTimeout, err)
	}
	st, _ := e.Status()
	log.Printf("replica %s: serving (%s; raft leader is replica %s)", f.ID, st.Role, st.LeaderID)
	sctx, cancel := context.WithTimeout(ctx, CallTimeout)
	defer cancel()
	s, err := e.NewSession(sctx, zoo.WithSessionTimeout(f.SessionTimeout))
	if err != nil {
		e.Close()
		return nil, nil, fmt.Errorf("replica %s: new session: %w", f.ID, err)
	}
	return e, s, nil
}

// ReleaseContext returns a fresh context for releasing what a process holds
// (a lock, a leadership, a registration) as it stops: bounded by CallTimeout,
// or by a few ticks once ctx, the process's signal context, has ended, so
// that a process whose peers are gone (no quorum to release anything) still
// exits promptly. What it fails to release goes with its session.
func (f *Flags) ReleaseContext(ctx context.Context) (context.Context, context.CancelFunc) {
	d := CallTimeout
	if ctx.Err() != nil {
		d = 10 * f.Tick
	}
	return context.WithTimeout(context.Background(), d)
}

// PeerList is the -peers flag: "1=host:port,2=host:port,3=host:port".
type PeerList []zoo.Peer

// String formats the list as the flag takes it.
func (p *PeerList) String() string {
	if p == nil {
		return ""
	}
	var parts []string
	for _, peer := range *p {
		parts = append(parts, peer.ID+"="+peer.Addr)
	}
	return strings.Join(parts, ",")
}

// Set parses the flag's value.
func (p *PeerList) Set(v string) error {
	peers, err := ParsePeers(v)
	if err != nil {
		return err
	}
	*p = peers
	return nil
}

// ParsePeers parses "ID=host:port,..." into zoo.Peers.
func ParsePeers(v string) ([]zoo.Peer, error) {
	var peers []zoo.Peer
	seen := map[string]bool{}
	for _, part := range strings.Split(v, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		id, addr, ok := strings.Cut(part, "=")
		if !ok || id == "" || addr == "" {
			return nil, fmt.Errorf("peer %q: want ID=host:port", part)
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, fmt.Errorf("peer %q: %w", part, err)
		}
		if seen[id] {
			return nil, fmt.Errorf("peer ID %q given twice", id)
		}
		seen[id] = true
		peers = append(peers, zoo.Peer{ID: id, Addr: addr})
	}
	if len(peers) == 0 {
		return nil, errors.New("no peers")
	}
	return peers, nil
}

// SignalContext returns a context cancelled by SIGINT or SIGTERM.
func SignalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// Log is the narrator: one line per Printf, safe for concurrent use.
type Log struct {
	mu sync.Mutex // guards w
	w  io.Writer
}

// NewLog returns a narrator writing to w.
func NewLog(w io.Writer) *Log { return &Log{w: w} }

// Printf prints one line.
func (l *Log) Printf(format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintln(l.w, line)
}

// Cluster is the one-process demos' ensemble: n replicas on loopback TCP in
// this process, each with its own bbolt dir, as n services would host them.
type Cluster struct {
	Replicas []*zoo.Ensemble
	Addrs    []string
	dir      string
}

// StartCluster opens n replicas and waits until they all serve.
func StartCluster(ctx context.Context, n int) (*Cluster, error) {
	dir, err := os.MkdirTemp("", "zoo-example-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{dir: dir}
	if err := c.start(ctx, n); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func (c *Cluster) start(ctx context.Context, n int) error {
	var err error
	if c.Addrs, err = freeAddrs(n); err != nil {
		return err
	}
	var peers []zoo.Peer
	for i, a := range c.Addrs {
		peers = append(peers, zoo.Peer{ID: fmt.Sprint(i + 1), Addr: a})
	}
	for _, p := range peers {
		e, err := zoo.Open(zoo.Config{
			ID: p.ID, Dir: filepath.Join(c.dir, p.ID), BindAddr: p.Addr, Peers: peers,
			TickTime: DefaultTick,
		})
		if err != nil {
			return err
		}
		c.Replicas = append(c.Replicas, e)
	}
	wctx, cancel := context.WithTimeout(ctx, CallTimeout)
	defer cancel()
	for _, e := range c.Replicas {
		if err := e.WaitServing(wctx); err != nil {
			return fmt.Errorf("replica %s: %w", e.ID(), err)
		}
	}
	return nil
}

// Close closes every replica (Close is idempotent) and removes the data dirs.
func (c *Cluster) Close() {
	for _, e := range c.Replicas {
		e.Close()
	}
	os.RemoveAll(c.dir)
}

// Leader returns the index of the replica that leads the raft group, or -1.
func (c *Cluster) Leader() int {
	for i, e := range c.Replicas {
		if st, err := e.Status(); err == nil && st.Role == zoo.RoleLeader {
			return i
		}
	}
	return -1
}

// Session opens a session on replica i with the demos' session timeout.
func (c *Cluster) Session(ctx context.Context, i int, opts ...zoo.SessionOption) (*zoo.Session, error) {
	ctx, cancel := context.WithTimeout(ctx, CallTimeout)
	defer cancel()
	opts = append([]zoo.SessionOption{zoo.WithSessionTimeout(DefaultSessionTimeout)}, opts...)
	s, err := c.Replicas[i].NewSession(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("session on replica %s: %w", c.Replicas[i].ID(), err)
	}
	return s, nil
}

// ServerSession opens a session on replica i whose life follows its
// Touch calls, as a remote client's follows its pings.
func (c *Cluster) ServerSession(ctx context.Context, i int) (*zoo.ServerSession, error) {
	ctx, cancel := context.WithTimeout(ctx, CallTimeout)
	defer cancel()
	s, err := c.Replicas[i].NewServerSession(ctx, nil, zoo.WithSessionTimeout(DefaultSessionTimeout))
	if err != nil {
		return nil, fmt.Errorf("session on replica %s: %w", c.Replicas[i].ID(), err)
	}
	return s, nil
}

// Describe is the "ensemble up" line of a one-process demo.
func (c *Cluster) Describe() string {
	leader := "none yet"
	if i := c.Leader(); i >= 0 {
		leader = "replica " + c.Replicas[i].ID()
	}
	return fmt.Sprintf("ensemble up: %d replicas on loopback (%s), raft leader is %s",
		len(c.Replicas), strings.Join(c.Addrs, ", "), leader)
}

// freeAddrs reserves n loopback ports. Each member must know every member's
// address before it starts, as in a zoo.cfg.
func freeAddrs(n int) ([]string, error) {
	var out []string
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		out = append(out, l.Addr().String())
		l.Close()
	}
	return out, nil
}

// AllDone is the end of a -once run: it enters a double barrier for n
// participants at path and returns once all n have entered, i.e. done their
// part. A process that left earlier would take its replica, and perhaps the
// quorum, with it while the others still need it. After the barrier it keeps
// the replica up a moment longer, so that the others learn that the barrier
// opened before this replica goes.
func AllDone(ctx context.Context, s *zoo.Session, path string, n int, tick time.Duration) error {
	b, err := recipe.NewDoubleBarrier(s, path, n)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, QuorumTimeout)
	defer cancel()
	if err := b.Enter(ctx); err != nil {
		return fmt.Errorf("waiting for the other processes to finish: %w", err)
	}
	select {
	case <-time.After(5 * tick):
	case <-ctx.Done():
	}
	return nil
}

// CloseSession closes s, bounded by CallTimeout; its ephemeral nodes go at
// once. Errors are ignored: an unclosed session expires by itself.
func CloseSession(s *zoo.Session) {
	ctx, cancel := context.WithTimeout(context.Background(), CallTimeout)
	defer cancel()
	s.Close(ctx)
}

// Shutdown closes the session (its ephemeral nodes go at once, rather than
// after the session timeout) and then the replica.
func Shutdown(e *zoo.Ensemble, s *zoo.Session) error {
	var errs []error
	if s != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*DefaultTick)
		defer cancel()
		switch err := s.Close(ctx); {
		case err == nil, errors.Is(err, zoo.ErrClosed), errors.Is(err, zoo.ErrSessionExpired):
		case errors.Is(err, zoo.ErrConnectionLoss), errors.Is(err, zoo.ErrNotServing), errors.Is(err, context.DeadlineExceeded):
			// The other processes have gone already (the last of a -once
			// run): no quorum is left to close the session, nor anyone to
			// care about its ephemeral nodes.
		default:
			errs = append(errs, fmt.Errorf("close session: %w", err))
		}
	}
	if e != nil {
		if err := e.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close replica: %w", err))
		}
	}
	return errors.Join(errs...)
}

// Main runs an example's main: the one-process demo without -id, one replica
// of a multi-process ensemble with it. extra, if any, define the example's own
// flags. It exits non-zero, after printing the error, if the run fails.
func Main(name string, demo func(ctx context.Context, out io.Writer) error, replica func(ctx context.Context, out io.Writer, f *Flags) error, extra ...func(*flag.FlagSet)) {
	fs := flag.NewFlagSet(name, flag.ExitOnError)
	var f Flags
	f.Register(fs)
	for _, x := range extra {
		x(fs)
	}
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: %s                 (one-process demo: 3 replicas in this process)\n", name)
		fmt.Fprintf(fs.Output(), "       %s -id N -peers 1=host:port,2=host:port,3=host:port -dir DIR [-once]\n", name)
		fmt.Fprintf(fs.Output(), "                              (one replica of a real ensemble: run one per member)\n\n")
		fs.PrintDefaults()
	}
	fs.Parse(os.Args[1:])
	if fs.NArg() > 0 {
		fs.Usage()
		os.Exit(2)
	}
	ctx, stop := SignalContext()
	defer stop()
	var err error
	if f.Multi() {
		if err = f.Check(); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
			os.Exit(2)
		}
		err = replica(ctx, os.Stdout, &f)
	} else {
		err = demo(ctx, os.Stdout)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: error: %v\n", name, err)
		os.Exit(1)
	}
}

// Buffer is an io.Writer that keeps what was written, safe for concurrent
// use: the examples' tests read a demo's narrative from it.
type Buffer struct {
	mu  sync.Mutex // guards buf
	buf []byte
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	return len(p), nil
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

// Len returns the number of bytes written so far.
func (b *Buffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.buf)
}
