package peer

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// testTransport starts a transport on a free loopback port, closed at cleanup.
func testTransport(t *testing.T) *Transport {
	t.Helper()
	tr, err := NewTCP(Options{Bind: "127.0.0.1:0"})
	if err != nil {
		t.Fatalf("newTCPTransport: %v", err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

// serveEcho serves peer RPC on ln with a handler that returns method+payload,
// stopping at cleanup.
func serveEcho(t *testing.T, ln net.Listener) {
	t.Helper()
	startRPCServer(t, ln, func(_ context.Context, method byte, payload []byte) ([]byte, error) {
		return append([]byte{method}, payload...), nil
	}, nil)
}

// answerAppendEntries replies to AppendEntries on tr until the test ends.
func answerAppendEntries(t *testing.T, tr raft.Transport) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		for {
			select {
			case rpc := <-tr.Consumer():
				req, ok := rpc.Command.(*raft.AppendEntriesRequest)
				if !ok {
					rpc.Respond(nil, errors.New("unexpected command"))
					continue
				}
				rpc.Respond(&raft.AppendEntriesResponse{Term: req.Term, LastLog: req.PrevLogEntry + uint64(len(req.Entries)), Success: true}, nil)
			case <-ctx.Done():
				return
			}
		}
	}()
}

func TestTransportMuxRaftAndRPC(t *testing.T) {
	a, b := testTransport(t), testTransport(t)
	answerAppendEntries(t, b.Raft())
	serveEcho(t, b.Listener())

	if got, want := a.Raft().LocalAddr(), raft.ServerAddress(a.Addr().String()); got != want {
		t.Fatalf("LocalAddr = %q, want %q", got, want)
	}

	// Raft traffic through the mux.
	req := &raft.AppendEntriesRequest{
		Term:         7,
		PrevLogEntry: 10,
		Entries:      []*raft.Log{{Index: 11, Term: 7, Data: []byte("x")}},
	}
	var resp raft.AppendEntriesResponse
	if err := a.Raft().AppendEntries("b", b.Raft().LocalAddr(), req, &resp); err != nil {
		t.Fatalf("AppendEntries: %v", err)
	}
	if !resp.Success || resp.Term != 7 || resp.LastLog != 11 {
		t.Fatalf("AppendEntries response = %+v", resp)
	}

	// Peer RPC on the same port.
	c := NewClient(func(ctx context.Context) (net.Conn, error) {
		return a.Dial(ctx, b.Raft().LocalAddr())
	}, nil)
	t.Cleanup(func() { c.Close() })
	out, err := c.Call(context.Background(), 3, []byte("hi"))
	if err != nil {
		t.Fatalf("Call: %v", err)
	}
	if !bytes.Equal(out, []byte("\x03hi")) {
		t.Fatalf("Call = %q", out)
	}

	// Raft again, after RPC, to be sure neither side stole the other's conns.
	if err := a.Raft().AppendEntries("b", b.Raft().LocalAddr(), req, &resp); err != nil {
		t.Fatalf("second AppendEntries: %v", err)
	}
}

func TestTransportRaftDialAnnouncesKind(t *testing.T) {
	tr := testTransport(t)
	s := &raftStream{t: tr}
	// The accept side is covered through raft itself above; here check the
	// wire: the stream's Dial sends its kind, waits for the echo, and only
	// then hands the conn to raft.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan []byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			accepted <- nil
			return
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		kind, err := readKind(c)
		if err == nil {
			_, err = readEnsemble(c, kind)
		}
		if err != nil {
			accepted <- nil
			return
		}
		writeHello(c, hello{kind: kind})
		b := make([]byte, 3)
		n, _ := io.ReadFull(c, b)
		accepted <- append([]byte{kind}, b[:n]...)
	}()
	c, err := s.Dial(raft.ServerAddress(ln.Addr().String()), 5*time.Second)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	if _, err := c.Write([]byte("abc")); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if got, want := string(<-accepted), string(KindRaft)+"abc"; got != want {
		t.Fatalf("peer read %q, want %q", got, want)
	}
	if s.Addr().String() != tr.Addr().String() {
		t.Fatalf("stream Addr = %v, want %v", s.Addr(), tr.Addr())
	}
}

func TestTransportZooConnsReachListener(t *testing.T) {
	tr := testTransport(t)
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := tr.Listener().Accept()
		if err == nil {
			accepted <- c
		}
	}()
	c, err := tr.Dial(context.Background(), raft.ServerAddress(tr.Addr().String()))
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	var sc net.Conn
	select {
	case sc = <-accepted:
	case <-time.After(10 * time.Second):
		t.Fatal("no zoo conn accepted")
	}
	defer sc.Close()
	buf := make([]byte, 4)
	sc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(sc, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("read %q, %v; want the bytes after the kind byte", buf, err)
	}
}

func TestTransportSlowHandshakeDoesNotBlockAccept(t *testing.T) {
	a, b := testTransport(t), testTransport(t)
	serveEcho(t, b.Listener())

	// Open connections that never send their kind byte.
	for range 3 {
		silent, err := net.Dial("tcp", b.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer silent.Close()
	}

	c := NewClient(func(ctx context.Context) (net.Conn, error) {
		return a.Dial(ctx, raft.ServerAddress(b.Addr().String()))
	}, nil)
	defer c.Close()
	// Well inside the handshake timeout, so only a non-blocking accept
	// loop can have served us.
	ctx, cancel := context.WithTimeout(context.Background(), DefaultHandshakeTimeout/2)
	defer cancel()
	if _, err := c.Call(ctx, 1, nil); err != nil {
		t.Fatalf("Call behind silent conns: %v", err)
	}
}

// Unknown kinds, and the links of older zoos (raft 'R', RPC 'Z' and '2',
// which had no echo; 'r' and '3', which had no ensemble id), are dropped: replicas of different versions must not
// misread each other. The current kinds are echoed.
func TestTransportDropsUnknownKind(t *testing.T) {
	tr := testTransport(t)
	for _, kind := range []byte{KindRaft, KindRPC} {
		c, err := net.Dial("tcp", tr.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := writeHello(c, hello{kind: kind}); err != nil {
			t.Fatal(err)
		}
		echo, err := readKind(c)
		if err != nil || echo != kind {
			t.Fatalf("kind %q answered %q, %v; want its echo", kind, echo, err)
		}
	}
	for _, kind := range []byte{'X', 'R', 'Z', '2', 'r', '3'} {
		c, err := net.Dial("tcp", tr.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write([]byte{kind}); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil || isTimeout(err) {
			t.Fatalf("read on a conn of kind %q = %v, want it closed by the server", kind, err)
		}
	}
}

func TestTransportCloseUnblocks(t *testing.T) {
	tr, err := NewTCP(Options{Bind: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	addr := tr.Addr().String()

	// An accepted zoo conn, a conn stuck in the handshake, and a blocked Accept.
	zc, err := tr.Dial(context.Background(), raft.ServerAddress(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer zc.Close()
	if _, err := tr.Listener().Accept(); err != nil {
		t.Fatal(err)
	}
	silent, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	acceptErr := make(chan error, 1)
	go func() {
		_, err := tr.Listener().Accept()
		acceptErr <- err
	}()

	if err := tr.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := tr.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	select {
	case err := <-acceptErr:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Accept after Close = %v, want net.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Accept still blocked after Close")
	}
	for name, c := range map[string]net.Conn{"accepted": zc, "handshaking": silent} {
		// Well before the handshake timeout: Close itself must have hung up.
		c.SetReadDeadline(time.Now().Add(DefaultHandshakeTimeout / 2))
		if _, err := c.Read(make([]byte, 1)); err == nil || isTimeout(err) {
			t.Errorf("%s conn read after Close = %v, want closed", name, err)
		}
	}
}

func TestTransportAddresses(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()

	tests := []struct {
		name      string
		bind, adv string
		wantAddr  string // "" = the bound address
		wantErr   error  // checked with errors.Is when non-nil
		errSubstr string
	}{
		{name: "bound address", bind: "127.0.0.1:0"},
		{name: "explicit advertise", bind: "127.0.0.1:0", adv: "127.0.0.1:7000", wantAddr: "127.0.0.1:7000"},
		{name: "host name advertise kept as given", bind: "127.0.0.1:0", adv: "zoo1.example:7000", wantAddr: "zoo1.example:7000"},
		{name: "unspecified advertise", bind: "127.0.0.1:0", adv: "0.0.0.0:7000", wantErr: ErrUnadvertisable},
		{name: "unspecified v6 advertise", bind: "127.0.0.1:0", adv: "[::]:7000", wantErr: ErrUnadvertisable},
		{name: "advertise without host", bind: "127.0.0.1:0", adv: ":7000", wantErr: ErrUnadvertisable},
		{name: "advertise port 0", bind: "127.0.0.1:0", adv: "127.0.0.1:0", wantErr: ErrUnadvertisable},
		{name: "unspecified bind without advertise", bind: "0.0.0.0:0", wantErr: ErrUnadvertisable},
		{name: "port in use", bind: busy.Addr().String(), errSubstr: busy.Addr().String()},
		{name: "bad bind", bind: "not-an-address", errSubstr: "not-an-address"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := NewTCP(Options{Bind: tc.bind, Advertise: tc.adv})
			if tc.wantErr != nil || tc.errSubstr != "" {
				if err == nil {
					tr.Close()
					t.Fatal("want error, got none")
				}
				if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				if !strings.Contains(err.Error(), tc.errSubstr) {
					t.Fatalf("err = %v, want it to mention %q", err, tc.errSubstr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Close()
			want := tc.wantAddr
			if want == "" {
				want = tr.ln.Addr().String()
			}
			if got := string(tr.Raft().LocalAddr()); got != want {
				t.Fatalf("raft LocalAddr = %q, want %q", got, want)
			}
		})
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Replicas of two ensembles never link, whichever side dials; a replica
// that does not know its ensemble yet links with either. The refusal fails
// the dial, so the caller knows nothing was sent.
func TestTransportRefusesAnotherEnsemble(t *testing.T) {
	idA, idB := bytes.Repeat([]byte{0xa}, EnsembleIDLen), bytes.Repeat([]byte{0xb}, EnsembleIDLen)
	open := func(id []byte) *Transport {
		t.Helper()
		tr, err := NewTCP(Options{Bind: "127.0.0.1:0", Ensemble: func() []byte { return id }})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tr.Close() })
		serveEcho(t, tr.Listener())
		answerAppendEntries(t, tr.Raft())
		return tr
	}
	a, a2, b, unknown := open(idA), open(idA), open(idB), open(nil)
	call := func(from, to *Transport) error {
		c := NewClient(func(ctx context.Context) (net.Conn, error) {
			return from.Dial(ctx, to.Raft().LocalAddr())
		}, nil)
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := c.Call(ctx, 3, []byte("hi"))
		return err
	}
	appendEntries := func(from, to *Transport) error {
		var resp raft.AppendEntriesResponse
		return from.Raft().AppendEntries("x", to.Raft().LocalAddr(), &raft.AppendEntriesRequest{Term: 1}, &resp)
	}
	for _, pair := range []struct {
		name     string
		from, to *Transport
		ok       bool
	}{
		{"same ensemble", a, a2, true},
		{"A dials B", a, b, false},
		{"B dials A", b, a, false},
		{"unknown dials A", unknown, a, true},
		{"A dials unknown", a, unknown, true},
	} {
		for what, send := range map[string]func(from, to *Transport) error{"RPC": call, "raft": appendEntries} {
			err := send(pair.from, pair.to)
			switch {
			case pair.ok && err != nil:
				t.Errorf("%s, %s: %v", pair.name, what, err)
			case !pair.ok && (err == nil || !strings.Contains(err.Error(), "another ensemble")):
				t.Errorf("%s, %s: %v, want a refusal naming another ensemble", pair.name, what, err)
			case !pair.ok && what == "RPC" && !errors.Is(err, ErrNotAdmitted):
				t.Errorf("%s, %s: %v, want ErrNotAdmitted (nothing sent)", pair.name, what, err)
			}
		}
	}
}
