package memnet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// transport mirrors the root package's Transport interface, which memnet may
// not import; the assertion below keeps the two in step.
type transport interface {
	Raft() raft.Transport
	Listener() net.Listener
	Dial(ctx context.Context, addr raft.ServerAddress) (net.Conn, error)
	Close() error
}

var _ transport = (*Endpoint)(nil)

// waitLimit bounds every wait in these tests. It is a hang guard, not a
// speed assertion, so it is generous.
const waitLimit = 10 * time.Second

// newNet returns a network with a live endpoint at each of addrs, closed when
// the test ends.
func newNet(t *testing.T, addrs ...raft.ServerAddress) (*Network, map[raft.ServerAddress]*Endpoint) {
	t.Helper()
	n := New()
	eps := make(map[raft.ServerAddress]*Endpoint)
	for _, a := range addrs {
		eps[a] = newEndpoint(t, n, a)
	}
	return n, eps
}

func newEndpoint(t *testing.T, n *Network, addr raft.ServerAddress) *Endpoint {
	t.Helper()
	e, err := n.Endpoint(addr)
	if err != nil {
		t.Fatalf("Endpoint(%q): %v", addr, err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// serveRaft answers every AppendEntries sent to e with a response carrying
// term tag, so callers can tell which transport instance answered.
func serveRaft(t *testing.T, e *Endpoint, tag uint64) {
	t.Helper()
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			select {
			case rpc := <-e.Raft().Consumer():
				if _, ok := rpc.Command.(*raft.AppendEntriesRequest); !ok {
					rpc.Respond(nil, fmt.Errorf("unexpected %T", rpc.Command))
					continue
				}
				rpc.Respond(&raft.AppendEntriesResponse{Term: tag, Success: true}, nil)
			case <-done:
				return
			}
		}
	}()
	t.Cleanup(func() { close(done); <-stopped })
}

// appendEntries sends one AppendEntries from e to addr and returns the term
// tag of the transport that answered.
func appendEntries(e *Endpoint, addr raft.ServerAddress) (uint64, error) {
	var resp raft.AppendEntriesResponse
	err := e.Raft().AppendEntries(raft.ServerID(addr), addr, &raft.AppendEntriesRequest{Term: 1}, &resp)
	return resp.Term, err
}

func mustAppend(t *testing.T, e *Endpoint, addr raft.ServerAddress, wantTag uint64) {
	t.Helper()
	tag, err := appendEntries(e, addr)
	if err != nil {
		t.Fatalf("AppendEntries %s->%s: %v", e.Addr(), addr, err)
	}
	if tag != wantTag {
		t.Fatalf("AppendEntries %s->%s answered by transport %d, want %d", e.Addr(), addr, tag, wantTag)
	}
}

func mustNotAppend(t *testing.T, e *Endpoint, addr raft.ServerAddress) {
	t.Helper()
	if _, err := appendEntries(e, addr); err == nil {
		t.Fatalf("AppendEntries %s->%s succeeded across a cut", e.Addr(), addr)
	}
}

// connect dials from to `to` and returns the client and server sides.
func connect(t *testing.T, from, to *Endpoint) (client, server net.Conn) {
	t.Helper()
	type accepted struct {
		c   net.Conn
		err error
	}
	ch := make(chan accepted, 1)
	go func() {
		c, err := to.Listener().Accept()
		ch <- accepted{c, err}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	client, err := from.Dial(ctx, to.Addr())
	if err != nil {
		// Unblock the Accept above so its goroutine ends with the test.
		to.Listener().Close()
		t.Fatalf("Dial %s->%s: %v", from.Addr(), to.Addr(), err)
	}
	a := <-ch // Dial returned a conn, so Accept has already taken it
	if a.err != nil {
		t.Fatalf("Accept on %s: %v", to.Addr(), a.err)
	}
	t.Cleanup(func() { client.Close(); a.c.Close() })
	return client, a.c
}

// roundtrip sends a message each way over a connection pair.
func roundtrip(t *testing.T, client, server net.Conn) {
	t.Helper()
	send(t, client, server, "ping")
	send(t, server, client, "pong")
}

func send(t *testing.T, w, r net.Conn, msg string) {
	t.Helper()
	// net.Pipe is unbuffered: the write completes only as the read takes it.
	errc := make(chan error, 1)
	go func() {
		_, err := io.WriteString(w, msg)
		errc <- err
	}()
	if err := r.SetReadDeadline(time.Now().Add(waitLimit)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(r, buf); err != nil {
		t.Fatalf("read %q: %v", msg, err)
	}
	if got := string(buf); got != msg {
		t.Fatalf("read %q, want %q", got, msg)
	}
	if err := <-errc; err != nil {
		t.Fatalf("write %q: %v", msg, err)
	}
}

// mustBeClosed checks that c has been closed (by the network, not by a
// timeout): a read fails at once.
func mustBeClosed(t *testing.T, c net.Conn) {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(waitLimit)); err != nil {
		return // SetReadDeadline on a closed pipe fails, which proves it
	}
	_, err := c.Read(make([]byte, 1))
	if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("conn %s->%s still open: read returned %v", c.LocalAddr(), c.RemoteAddr(), err)
	}
}

func mustDialFail(t *testing.T, from *Endpoint, to raft.ServerAddress, want error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	c, err := from.Dial(ctx, to)
	if err == nil {
		c.Close()
		t.Fatalf("Dial %s->%s succeeded, want %v", from.Addr(), to, want)
	}
	if !errors.Is(err, want) {
		t.Fatalf("Dial %s->%s: %v, want %v", from.Addr(), to, err, want)
	}
}

// linkCount returns how many peer-RPC connections the network tracks.
func linkCount(n *Network) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	total := 0
	for _, set := range n.links {
		total += len(set)
	}
	return total
}

func TestDialAcceptRoundtrip(t *testing.T) {
	n, eps := newNet(t, "a", "b")
	a, b := eps["a"], eps["b"]

	if got := b.Listener().Addr().String(); got != "b" {
		t.Errorf("listener Addr = %q, want %q", got, "b")
	}
	client, server := connect(t, a, b)
	roundtrip(t, client, server)

	for _, tc := range []struct {
		name      string
		got, want string
	}{
		{"client local", client.LocalAddr().String(), "a"},
		{"client remote", client.RemoteAddr().String(), "b"},
		{"server local", server.LocalAddr().String(), "b"},
		{"server remote", server.RemoteAddr().String(), "a"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s addr = %q, want %q", tc.name, tc.got, tc.want)
		}
	}

	// Closing one side ends the other's reads and forgets the link.
	if err := client.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := server.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("server read after client close: %v, want EOF", err)
	}
	server.Close()
	if got := linkCount(n); got != 0 {
		t.Errorf("network tracks %d links after both sides closed, want 0", got)
	}
}

func TestDialSelf(t *testing.T) {
	n, eps := newNet(t, "a", "b")
	a := eps["a"]
	// An isolated host still reaches itself, as over loopback.
	n.Isolate("a")
	client, server := connect(t, a, a)
	roundtrip(t, client, server)
}

func TestDialFails(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(n *Network, eps map[raft.ServerAddress]*Endpoint)
		from  raft.ServerAddress
		to    raft.ServerAddress
		want  error
	}{
		{
			name: "unknown address",
			from: "a", to: "nowhere", want: ErrUnreachable,
		},
		{
			name:  "closed endpoint",
			setup: func(n *Network, eps map[raft.ServerAddress]*Endpoint) { eps["b"].Close() },
			from:  "a", to: "b", want: ErrUnreachable,
		},
		{
			name:  "closed listener",
			setup: func(n *Network, eps map[raft.ServerAddress]*Endpoint) { eps["b"].Listener().Close() },
			from:  "a", to: "b", want: ErrUnreachable,
		},
		{
			name: "partitioned",
			setup: func(n *Network, eps map[raft.ServerAddress]*Endpoint) {
				n.Partition([]raft.ServerAddress{"a"}, []raft.ServerAddress{"b"})
			},
			from: "a", to: "b", want: ErrUnreachable,
		},
		{
			name:  "target isolated",
			setup: func(n *Network, eps map[raft.ServerAddress]*Endpoint) { n.Isolate("b") },
			from:  "a", to: "b", want: ErrUnreachable,
		},
		{
			name:  "dialer isolated",
			setup: func(n *Network, eps map[raft.ServerAddress]*Endpoint) { n.Isolate("a") },
			from:  "a", to: "b", want: ErrUnreachable,
		},
		{
			name:  "dialer closed",
			setup: func(n *Network, eps map[raft.ServerAddress]*Endpoint) { eps["a"].Close() },
			from:  "a", to: "b", want: ErrClosed,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, eps := newNet(t, "a", "b")
			if tc.setup != nil {
				tc.setup(n, eps)
			}
			// Nobody accepts on b: a dial that got past the checks would
			// block until waitLimit instead of failing promptly.
			mustDialFail(t, eps[tc.from], tc.to, tc.want)
			if got := linkCount(n); got != 0 {
				t.Errorf("network tracks %d links after failed dial, want 0", got)
			}
		})
	}
}

func TestDialContext(t *testing.T) {
	t.Run("cancelled before dial", func(t *testing.T) {
		_, eps := newNet(t, "a", "b")
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := eps["a"].Dial(ctx, "b"); !errors.Is(err, context.Canceled) {
			t.Fatalf("Dial: %v, want context.Canceled", err)
		}
	})
	t.Run("deadline while waiting for accept", func(t *testing.T) {
		n, eps := newNet(t, "a", "b")
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		// Nobody accepts on b, so only the deadline can end the dial.
		if _, err := eps["a"].Dial(ctx, "b"); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Dial: %v, want context.DeadlineExceeded", err)
		}
		if got := linkCount(n); got != 0 {
			t.Errorf("network tracks %d links after abandoned dial, want 0", got)
		}
	})
	t.Run("cut while waiting for accept", func(t *testing.T) {
		n, eps := newNet(t, "a", "b")
		errc := make(chan error, 1)
		go func() {
			_, err := eps["a"].Dial(context.Background(), "b")
			errc <- err
		}()
		// Whether the dial is already waiting or not yet started, the
		// isolation must make it fail, without any deadline.
		n.Isolate("b")
		select {
		case err := <-errc:
			if !errors.Is(err, ErrUnreachable) {
				t.Fatalf("Dial: %v, want ErrUnreachable", err)
			}
		case <-time.After(waitLimit):
			t.Fatal("pending Dial not ended by Isolate")
		}
	})
}

func TestPartition(t *testing.T) {
	n, eps := newNet(t, "a", "b", "c")
	a, b, c := eps["a"], eps["b"], eps["c"]
	for i, e := range []*Endpoint{a, b, c} {
		serveRaft(t, e, uint64(i+1))
	}
	abC, abS := connect(t, a, b)
	acC, acS := connect(t, a, c)
	caC, caS := connect(t, c, a)
	bcC, bcS := connect(t, b, c)

	n.Partition([]raft.ServerAddress{"a", "b"}, []raft.ServerAddress{"c"})

	t.Run("same side unaffected", func(t *testing.T) {
		roundtrip(t, abC, abS)
		mustAppend(t, a, "b", 2)
		mustAppend(t, b, "a", 1)
		client, server := connect(t, b, a)
		roundtrip(t, client, server)
	})
	t.Run("conns across closed", func(t *testing.T) {
		for _, cn := range []net.Conn{acC, acS, caC, caS, bcC, bcS} {
			mustBeClosed(t, cn)
		}
	})
	t.Run("dials across refused", func(t *testing.T) {
		mustDialFail(t, a, "c", ErrUnreachable)
		mustDialFail(t, c, "a", ErrUnreachable)
		mustDialFail(t, c, "b", ErrUnreachable)
	})
	t.Run("raft across fails", func(t *testing.T) {
		mustNotAppend(t, a, "c")
		mustNotAppend(t, c, "a")
		mustNotAppend(t, c, "b")
		if _, err := a.Raft().AppendEntriesPipeline("c", "c"); err == nil {
			t.Error("AppendEntriesPipeline a->c succeeded across a cut")
		}
	})

	n.Heal()

	t.Run("heal restores", func(t *testing.T) {
		for _, p := range [][2]*Endpoint{{a, c}, {c, a}, {c, b}, {b, c}} {
			client, server := connect(t, p[0], p[1])
			roundtrip(t, client, server)
		}
		mustAppend(t, a, "c", 3)
		mustAppend(t, c, "a", 1)
		mustAppend(t, c, "b", 2)
	})
}

func TestPartitionIsolatesUnlisted(t *testing.T) {
	n, eps := newNet(t, "a", "b", "c")
	n.Partition([]raft.ServerAddress{"a", "b"})
	// d is created after the partition and named in no group.
	d := newEndpoint(t, n, "d")
	serveRaft(t, eps["a"], 1)

	mustDialFail(t, eps["c"], "a", ErrUnreachable)
	mustDialFail(t, d, "a", ErrUnreachable)
	mustDialFail(t, d, "c", ErrUnreachable)
	mustNotAppend(t, d, "a")
	mustAppend(t, eps["b"], "a", 1)
}

func TestPartitionReplaces(t *testing.T) {
	n, eps := newNet(t, "a", "b", "c")
	serveRaft(t, eps["b"], 2)
	n.Partition([]raft.ServerAddress{"a"}, []raft.ServerAddress{"b", "c"})
	mustNotAppend(t, eps["a"], "b")
	n.Partition([]raft.ServerAddress{"a", "b"}, []raft.ServerAddress{"c"})
	mustAppend(t, eps["a"], "b", 2)
	mustNotAppend(t, eps["c"], "b")
}

func TestIsolateComposes(t *testing.T) {
	n, eps := newNet(t, "a", "b", "c", "d")
	for i, e := range []raft.ServerAddress{"a", "b", "c", "d"} {
		serveRaft(t, eps[e], uint64(i+1))
	}
	n.Isolate("a")
	n.Isolate("b")

	mustNotAppend(t, eps["a"], "b")
	mustNotAppend(t, eps["b"], "a")
	mustNotAppend(t, eps["c"], "a")
	mustNotAppend(t, eps["b"], "d")
	mustAppend(t, eps["c"], "d", 4)
	mustAppend(t, eps["d"], "c", 3)

	// An endpoint created later at an unmentioned address joins the
	// connected majority, not the isolated ones.
	e := newEndpoint(t, n, "e")
	mustAppend(t, e, "c", 3)
	mustNotAppend(t, e, "a")

	n.Heal()
	mustAppend(t, eps["a"], "b", 2)
	mustAppend(t, e, "a", 1)
}

func TestClose(t *testing.T) {
	n, eps := newNet(t, "a", "b")
	a, b := eps["a"], eps["b"]
	serveRaft(t, a, 1)
	serveRaft(t, b, 2)
	mustAppend(t, a, "b", 2)
	outC, outS := connect(t, b, a)
	inC, inS := connect(t, a, b)

	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	for _, cn := range []net.Conn{outC, outS, inC, inS} {
		mustBeClosed(t, cn)
	}
	if got := linkCount(n); got != 0 {
		t.Errorf("network tracks %d links after Close, want 0", got)
	}
	if _, err := b.Listener().Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close: %v, want net.ErrClosed", err)
	}
	mustDialFail(t, a, "b", ErrUnreachable)
	mustDialFail(t, b, "a", ErrClosed)
	mustNotAppend(t, a, "b")
	mustNotAppend(t, b, "a")
}

func TestRecreate(t *testing.T) {
	n, eps := newNet(t, "a", "b")
	a, old := eps["a"], eps["b"]
	serveRaft(t, a, 1)
	serveRaft(t, old, 2)

	if _, err := n.Endpoint("b"); !errors.Is(err, ErrAddrInUse) {
		t.Fatalf("Endpoint on a live address: %v, want ErrAddrInUse", err)
	}
	if _, err := n.Endpoint(""); err == nil {
		t.Fatal("Endpoint with empty address succeeded")
	}

	old.Close()
	b := newEndpoint(t, n, "b")
	serveRaft(t, b, 3)

	if b.Raft() == old.Raft() {
		t.Fatal("re-created endpoint reuses the old raft transport")
	}
	// Tag 3, not 2: a's route now leads to the new transport.
	mustAppend(t, a, "b", 3)
	mustAppend(t, b, "a", 1)
	client, server := connect(t, a, b)
	roundtrip(t, client, server)
	client, server = connect(t, b, a)
	roundtrip(t, client, server)

	// The old value stays dead even though its address lives again.
	mustDialFail(t, old, "a", ErrClosed)
	if _, err := old.Listener().Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept on old listener: %v, want net.ErrClosed", err)
	}
}

func TestRecreateKeepsPartition(t *testing.T) {
	n, eps := newNet(t, "a", "b")
	serveRaft(t, eps["a"], 1)
	n.Isolate("b")
	eps["b"].Close()
	b := newEndpoint(t, n, "b")

	mustNotAppend(t, b, "a")
	mustDialFail(t, b, "a", ErrUnreachable)

	n.Heal()
	mustAppend(t, b, "a", 1)
}

// TestConcurrent exercises dials, raft RPCs, faults and restarts at once, for
// the race detector and to catch deadlocks between them.
func TestConcurrent(t *testing.T) {
	n, eps := newNet(t, "a", "b")
	a, b := eps["a"], eps["b"]
	serveRaft(t, a, 1)
	serveRaft(t, b, 2)

	// acceptors serve listeners until they close; workers end on their own.
	var acceptors, workers sync.WaitGroup
	acceptAll := func(e *Endpoint) {
		acceptors.Go(func() {
			for {
				c, err := e.Listener().Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		})
	}
	acceptAll(a)
	acceptAll(b)

	const rounds = 200
	workers.Go(func() { // faults
		for i := range rounds {
			switch i % 3 {
			case 0:
				n.Partition([]raft.ServerAddress{"a", "c"}, []raft.ServerAddress{"b"})
			case 1:
				n.Isolate("c")
			default:
				n.Heal()
			}
		}
	})
	workers.Go(func() { // restarts of c
		for range rounds / 10 {
			c, err := n.Endpoint("c")
			if err != nil {
				t.Errorf("Endpoint(c): %v", err)
				return
			}
			acceptAll(c)
			for range 10 {
				appendEntries(c, "a") // may be cut by a fault; only races matter
			}
			c.Close()
		}
	})
	for _, from := range []*Endpoint{a, b} {
		workers.Go(func() { // dials and raft RPCs
			for i := range rounds {
				to := []raft.ServerAddress{"a", "b", "c"}[i%3]
				ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
				if c, err := from.Dial(ctx, to); err == nil {
					c.Close()
				}
				cancel()
				if to != "c" { // c's transports are never served
					appendEntries(from, to)
				}
			}
		})
	}

	waitGroup(t, &workers, "workers")
	a.Close()
	b.Close()
	waitGroup(t, &acceptors, "acceptors")
	if got := linkCount(n); got != 0 {
		t.Errorf("network tracks %d links after all endpoints closed, want 0", got)
	}
}

// waitGroup waits for wg, failing the test if that takes longer than
// waitLimit (a hang, not slowness).
func waitGroup(t *testing.T, wg *sync.WaitGroup, what string) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(waitLimit):
		t.Fatalf("%s did not finish", what)
	}
}
