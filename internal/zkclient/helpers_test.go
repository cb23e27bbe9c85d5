package zkclient

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/zooraft/zoo"
	"github.com/zooraft/zoo/internal/testkit"
	"github.com/zooraft/zoo/zkwire"
	"github.com/zooraft/zoo/zootest"
)

// Timeouts are generous: the machine is shared and runs under -race.
const (
	waitLong       = 30 * time.Second
	testSessionTTL = 10 * time.Second
)

// openSingle opens an in-memory one-replica ensemble.
func openSingle(t *testing.T, cfg zoo.Config) *zoo.Ensemble {
	t.Helper()
	ens, err := zoo.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ens.Close() })
	if err := ens.WaitServing(testkit.Context(t)); err != nil {
		t.Fatal(err)
	}
	return ens
}

// serve starts a zkwire server for ens on a fresh loopback port; it is
// closed with the test.
func serve(t *testing.T, ens *zoo.Ensemble, cfg zkwire.Config) (*zkwire.Server, string) {
	t.Helper()
	srv, err := zkwire.NewServer(ens, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return srv, ln.Addr().String()
}

// single is one zkwire server in front of a one-replica ensemble.
func single(t *testing.T, cfg zkwire.Config) (*zoo.Ensemble, string) {
	t.Helper()
	ens := openSingle(t, zoo.Config{})
	_, addr := serve(t, ens, cfg)
	return ens, addr
}

// cluster is a 3-replica zootest ensemble with one zkwire server per replica.
type cluster struct {
	*zootest.Cluster
	srvs  []*zkwire.Server
	addrs []string
}

func newCluster(t *testing.T, cfg zkwire.Config) *cluster {
	t.Helper()
	c := &cluster{Cluster: zootest.New(t, 3, zootest.Options{})}
	for i := 0; i < 3; i++ {
		if err := c.Replica(i).WaitServing(testkit.Context(t)); err != nil {
			t.Fatal(err)
		}
		srv, addr := serve(t, c.Replica(i), cfg)
		c.srvs = append(c.srvs, srv)
		c.addrs = append(c.addrs, addr)
	}
	return c
}

func (c *cluster) index(addr string) int { return slices.Index(c.addrs, addr) }

// recorder keeps the events a Conn delivers.
type recorder struct {
	mu     sync.Mutex
	events []Event
	delay  time.Duration // slows OnEvent down, to catch ordering bugs
}

func (r *recorder) onEvent(ev Event) {
	if r.delay > 0 {
		time.Sleep(r.delay)
	}
	r.mu.Lock()
	r.events = append(r.events, ev)
	r.mu.Unlock()
}

func (r *recorder) all() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// nodeEvents returns the events that are not state changes.
func (r *recorder) nodeEvents() []Event {
	var out []Event
	for _, ev := range r.all() {
		if ev.Type != zoo.EventNone {
			out = append(out, ev)
		}
	}
	return out
}

// states returns the state changes, in order.
func (r *recorder) states() []State {
	var out []State
	for _, ev := range r.all() {
		if ev.Type == zoo.EventNone {
			out = append(out, ev.State)
		}
	}
	return out
}

func (r *recorder) count(st State) int {
	n := 0
	for _, s := range r.states() {
		if s == st {
			n++
		}
	}
	return n
}

// has reports whether an event of typ on path was delivered.
func (r *recorder) has(typ zoo.EventType, path string) bool {
	return slices.ContainsFunc(r.nodeEvents(), func(ev Event) bool { return ev.Type == typ && ev.Path == path })
}

// waitEvent waits for an event of typ on path.
func (r *recorder) waitEvent(t *testing.T, typ zoo.EventType, path string) {
	t.Helper()
	testkit.Eventually(t, waitLong, fmt.Sprintf("event %v %s (have %v)", typ, path, r.nodeEvents()), func() bool { return r.has(typ, path) })
}

// connect opens a Conn with a recorder (unless opts has an OnEvent) and
// waits for its session; it is closed with the test.
func connect(t *testing.T, addrs []string, opts Options) (*Conn, *recorder) {
	t.Helper()
	rec := &recorder{}
	if opts.OnEvent == nil {
		opts.OnEvent = rec.onEvent
	}
	if opts.SessionTimeout == 0 {
		opts.SessionTimeout = testSessionTTL
	}
	c, err := Connect(addrs, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	testkit.Eventually(t, waitLong, "session established", func() bool { return c.State().connected() })
	return c, rec
}

// gate is a Dialer that can refuse every dial (the client is cut off) and
// redirect dials.
type gate struct {
	mu       sync.Mutex // guards the fields below
	blocked  bool
	redirect map[string]string
	conns    []net.Conn
	dials    int
}

func (g *gate) set(blocked bool) {
	g.mu.Lock()
	g.blocked = blocked
	g.mu.Unlock()
}

func (g *gate) route(from, to string) {
	g.mu.Lock()
	if g.redirect == nil {
		g.redirect = map[string]string{}
	}
	g.redirect[from] = to
	g.mu.Unlock()
}

// cut closes every connection dialed so far.
func (g *gate) cut() {
	g.mu.Lock()
	conns := g.conns
	g.conns = nil
	g.mu.Unlock()
	for _, nc := range conns {
		nc.Close()
	}
}

func (g *gate) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	g.mu.Lock()
	g.dials++
	blocked := g.blocked
	if to, ok := g.redirect[addr]; ok {
		addr = to
	}
	g.mu.Unlock()
	if blocked {
		return nil, errors.New("gate: cut off")
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, network, addr)
	if err == nil {
		g.mu.Lock()
		g.conns = append(g.conns, nc)
		g.mu.Unlock()
	}
	return nc, err
}

// mustCreate creates a persistent node with the open ACL.
func mustCreate(t *testing.T, c *Conn, path string, data []byte) {
	t.Helper()
	if _, err := c.Create(testkit.Context(t), path, data, zoo.ModePersistent, nil); err != nil {
		t.Fatalf("create %s: %v", path, err)
	}
}

// isPathErr checks that err is a *zoo.PathError for path wrapping want.
func isPathErr(t *testing.T, err error, path string, want error) {
	t.Helper()
	var pe *zoo.PathError
	if !errors.Is(err, want) || !errors.As(err, &pe) || pe.Path != path {
		t.Fatalf("err %v, want %v on %s", err, want, path)
	}
}
