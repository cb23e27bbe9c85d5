package peer

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/zooraft/zoo/internal/certgen"
	"github.com/zooraft/zoo/internal/testkit"
)

// pki is a CA with helpers to make the settings of replicas it vouches for.
type pki struct {
	t  *testing.T
	ca *certgen.CA
}

func newPKI(t *testing.T, name string) *pki {
	t.Helper()
	ca, err := certgen.NewCA(name, certgen.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return &pki{t: t, ca: ca}
}

// tlsFor returns TLS settings with a replica certificate for hosts that
// trusts trusted (default: p's own CA).
func (p *pki) tlsFor(hosts []string, trusted ...*pki) *TLS {
	p.t.Helper()
	leaf, err := p.ca.Replica("replica", hosts, certgen.Options{})
	if err != nil {
		p.t.Fatal(err)
	}
	if len(trusted) == 0 {
		trusted = []*pki{p}
	}
	roots := x509.NewCertPool()
	for _, tp := range trusted {
		roots.AddCert(tp.ca.Cert)
	}
	conf := &tls.Config{
		Certificates: []tls.Certificate{leaf.TLSCertificate()},
		RootCAs:      roots,
	}
	return &TLS{Base: func() (*tls.Config, error) { return conf, nil }}
}

// consumed counts what reaches raft and the RPC listener of a transport.
type consumed struct {
	raft, rpc atomic.Int64
}

// watchDelivery answers raft's RPCs and accepts RPC conns on tr, counting
// both, until the test ends.
func watchDelivery(t *testing.T, tr *Transport) *consumed {
	t.Helper()
	var n consumed
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	t.Cleanup(func() { cancel(); tr.Listener().Close(); wg.Wait() })
	go func() {
		defer wg.Done()
		for {
			select {
			case rpc := <-tr.Raft().Consumer():
				n.raft.Add(1)
				rpc.Respond(&raft.AppendEntriesResponse{Success: true}, nil)
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		for {
			c, err := tr.Listener().Accept()
			if err != nil {
				return
			}
			n.rpc.Add(1)
			c.Close()
		}
	}()
	return &n
}

func tlsTransport(t *testing.T, s *TLS, members func() []string) *Transport {
	t.Helper()
	tr, err := NewTCP(Options{Bind: "127.0.0.1:0", TLS: s, Members: members, HandshakeTimeout: time.Second,
		RecheckInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

// staticMembers is a member list that includes the transports' addresses
// once they are known.
type staticMembers struct {
	mu    sync.Mutex
	addrs []string
}

func (m *staticMembers) add(a string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.addrs = append(m.addrs, a)
}

func (m *staticMembers) list() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.addrs...)
}

func appendEntries(from *Transport, to *Transport) error {
	var resp raft.AppendEntriesResponse
	return from.Raft().AppendEntries("x", to.Raft().LocalAddr(), &raft.AppendEntriesRequest{Term: 1}, &resp)
}

// waitClosed waits until the server closes c, failing if it answers or
// stays open past the deadline.
func waitClosed(t *testing.T, c net.Conn, within time.Duration) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(within))
	b := make([]byte, 64)
	for {
		n, err := c.Read(b)
		if n > 0 {
			continue // TLS alerts are fine; payloads would show up in the counters
		}
		if err == nil {
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("connection still open after %v", within)
		}
		return
	}
}

func TestTLSLinksCarryRaftAndRPC(t *testing.T) {
	p := newPKI(t, "ensemble CA")
	var m staticMembers
	a := tlsTransport(t, p.tlsFor([]string{"127.0.0.1"}), m.list)
	b := tlsTransport(t, p.tlsFor([]string{"127.0.0.1"}), m.list)
	m.add(a.Addr().String())
	m.add(b.Addr().String())
	got := watchDelivery(t, b)

	if err := appendEntries(a, b); err != nil {
		t.Fatalf("AppendEntries over TLS: %v", err)
	}
	c, err := a.Dial(context.Background(), b.Raft().LocalAddr())
	if err != nil {
		t.Fatalf("Dial over TLS: %v", err)
	}
	c.Close()
	testkit.Eventually(t, 10*time.Second, "the condition", func() bool { return got.raft.Load() == 1 && got.rpc.Load() == 1 })
	if v := c.(*dialedConn).Conn.(*tls.Conn).ConnectionState().Version; v != tls.VersionTLS13 {
		t.Fatalf("TLS version %x, want 1.3", v)
	}
}

// Every way in without a valid peer certificate is refused before raft or
// the RPC listener sees anything, while a real peer keeps working.
func TestTLSRefusesWhatIsNotAPeer(t *testing.T) {
	p := newPKI(t, "ensemble CA")
	other := newPKI(t, "another CA")
	var m staticMembers
	b := tlsTransport(t, p.tlsFor([]string{"127.0.0.1"}), m.list)
	a := tlsTransport(t, p.tlsFor([]string{"127.0.0.1"}), m.list)
	m.add(a.Addr().String())
	m.add(b.Addr().String())
	got := watchDelivery(t, b)
	target := b.Addr().String()

	t.Run("plaintext", func(t *testing.T) {
		c, err := net.Dial("tcp", target)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write([]byte{KindRaft, 0x82, 0xa4, 'T', 'e', 'r', 'm', 0x01})
		waitClosed(t, c, 5*time.Second)
	})
	dialTLS := func(t *testing.T, conf *tls.Config) error {
		t.Helper()
		conf = conf.Clone()
		conf.ServerName = "127.0.0.1"
		c, err := tls.Dial("tcp", target, conf)
		if err != nil {
			return err
		}
		defer c.Close()
		// TLS 1.3 clients finish before the server checked their
		// certificate: the refusal shows on the first read.
		c.Write([]byte{KindRPC})
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = c.Read(make([]byte, 1))
		if err == nil {
			return errors.New("server answered")
		}
		return err
	}
	base := func(s *TLS) *tls.Config { c, _ := s.Base(); return c }
	t.Run("no client certificate", func(t *testing.T) {
		conf := base(p.tlsFor([]string{"127.0.0.1"})).Clone()
		conf.Certificates = nil
		if err := dialTLS(t, conf); err == nil || !strings.Contains(err.Error(), "certificate required") {
			t.Fatalf("err = %v, want the server to require a certificate", err)
		}
	})
	t.Run("certificate from another CA", func(t *testing.T) {
		// Go's client would send no certificate the server's CA list does
		// not name; an attacker's client sends it anyway.
		conf := base(other.tlsFor([]string{"127.0.0.1"}, p)).Clone()
		cert := conf.Certificates[0]
		conf.Certificates = nil
		conf.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
		if err := dialTLS(t, conf); err == nil || !strings.Contains(err.Error(), "bad certificate") {
			t.Fatalf("err = %v, want a refused certificate", err)
		}
	})
	t.Run("valid certificate of a host that is not a member", func(t *testing.T) {
		for _, hosts := range [][]string{{"127.0.0.2"}, {"stranger.example"}} {
			if err := dialTLS(t, base(p.tlsFor(hosts))); err == nil || !strings.Contains(err.Error(), "bad certificate") {
				t.Fatalf("hosts %v: err = %v, want a refused certificate", hosts, err)
			}
		}
	})
	t.Run("a stranger's transport", func(t *testing.T) {
		stranger := tlsTransport(t, p.tlsFor([]string{"stranger.example"}), m.list)
		if err := appendEntries(stranger, b); err == nil {
			t.Fatal("AppendEntries from a non-member was answered")
		}
	})
	t.Run("stalled handshake", func(t *testing.T) {
		c, err := net.Dial("tcp", target)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		waitClosed(t, c, 5*time.Second) // handshake timeout is 1s here
	})

	if err := appendEntries(a, b); err != nil {
		t.Fatalf("a member after the strangers: %v", err)
	}
	testkit.Eventually(t, 10*time.Second, "the condition", func() bool { return got.raft.Load() == 1 })
	time.Sleep(100 * time.Millisecond) // a late delivery would show now
	if r, c := got.raft.Load(), got.rpc.Load(); r != 1 || c != 0 {
		t.Fatalf("raft saw %d RPCs and the RPC listener %d conns, want only the member's 1 and 0", r, c)
	}
}

// The dialling end checks the host it dialled is the one the certificate
// names: a replica at an address whose certificate says otherwise is not
// talked to.
func TestTLSDialerChecksTheHostItDialled(t *testing.T) {
	p := newPKI(t, "ensemble CA")
	b := tlsTransport(t, p.tlsFor([]string{"zoo2.example"}), nil)
	a := tlsTransport(t, p.tlsFor([]string{"127.0.0.1"}), nil)
	if _, err := a.Dial(context.Background(), b.Raft().LocalAddr()); err == nil || !strings.Contains(err.Error(), "127.0.0.1") {
		t.Fatalf("Dial = %v, want a certificate name mismatch", err)
	}
	// With the checks off, the CA alone vouches.
	a.opts.TLS.SkipHostnameCheck = true
	if c, err := a.Dial(context.Background(), b.Raft().LocalAddr()); err != nil {
		t.Fatalf("Dial without host check: %v", err)
	} else {
		c.Close()
	}
}

func TestTLSIdentitiesAdmitNamedPeers(t *testing.T) {
	p := newPKI(t, "ensemble CA")
	var m staticMembers
	s := p.tlsFor([]string{"127.0.0.1"})
	s.Identities = []string{"ops.example"}
	b := tlsTransport(t, s, m.list)
	m.add(b.Addr().String())
	m.add("10.9.9.9:1") // the only other member is elsewhere
	got := watchDelivery(t, b)

	ops := tlsTransport(t, p.tlsFor([]string{"ops.example"}), nil)
	if err := appendEntries(ops, b); err != nil {
		t.Fatalf("a configured identity: %v", err)
	}
	testkit.Eventually(t, 10*time.Second, "the condition", func() bool { return got.raft.Load() == 1 })
}

// A replica that knows no members yet (waiting to be added) takes the CA's
// word alone: the leader adding it must get in.
func TestTLSReplicaWithoutMembersTrustsTheCA(t *testing.T) {
	p := newPKI(t, "ensemble CA")
	b := tlsTransport(t, p.tlsFor([]string{"127.0.0.1"}), func() []string { return nil })
	got := watchDelivery(t, b)
	a := tlsTransport(t, p.tlsFor([]string{"leader.example"}), nil)
	if err := appendEntries(a, b); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, "the condition", func() bool { return got.raft.Load() == 1 })
}

// Without TLS, only members' addresses get in: a connection from
// 127.0.0.2 when every member is on 127.0.0.1 is dropped before its kind
// byte is read.
func TestPlaintextAdmitsMembersAddressesOnly(t *testing.T) {
	var m staticMembers
	b, err := NewTCP(Options{Bind: "127.0.0.1:0", Members: m.list})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	m.add(b.Addr().String())
	m.add("localhost:1") // names resolve too
	got := watchDelivery(t, b)

	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
	c, err := d.Dial("tcp", b.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte{KindRPC})
	waitClosed(t, c, 5*time.Second)

	a, err := NewTCP(Options{Bind: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	if err := appendEntries(a, b); err != nil {
		t.Fatalf("from a member's address: %v", err)
	}
	testkit.Eventually(t, 10*time.Second, "the condition", func() bool { return got.raft.Load() == 1 })
	if got.rpc.Load() != 0 {
		t.Fatal("the stranger's RPC conn was delivered")
	}

	if err := newMemberAddrs(func() []string { return []string{"localhost:1"} }).admitsAddr(context.Background(), mustAddr("127.0.0.1")); err != nil {
		t.Fatalf("localhost resolves to 127.0.0.1: %v", err)
	}
	err = newMemberAddrs(m.list).admitsAddr(context.Background(), mustAddr("10.1.2.3"))
	if !errors.Is(err, ErrNotAdmitted) || !strings.Contains(err.Error(), "10.1.2.3") {
		t.Fatalf("stranger: %v", err)
	}
}

func TestConnectionsPerIPAreBounded(t *testing.T) {
	b, err := NewTCP(Options{Bind: "127.0.0.1:0", MaxConnsPerIP: 4, MaxPendingPerIP: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	got := watchDelivery(t, b)
	var idle []net.Conn
	for range 4 {
		c, err := net.Dial("tcp", b.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		idle = append(idle, c)
	}
	testkit.Eventually(t, 10*time.Second, "the condition", func() bool { held, _ := b.table.count(); return held == 4 })
	extra, err := net.Dial("tcp", b.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	waitClosed(t, extra, 5*time.Second)

	// A slot freed is a slot for a member again.
	idle[0].Close()
	testkit.Eventually(t, 10*time.Second, "the condition", func() bool { held, _ := b.table.count(); return held == 3 })
	a, err := NewTCP(Options{Bind: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	if err := appendEntries(a, b); err != nil {
		t.Fatalf("after a slot freed: %v", err)
	}
	testkit.Eventually(t, 10*time.Second, "the condition", func() bool { return got.raft.Load() == 1 })
}

// A frame header that claims 60 MiB costs the sender the bytes: the
// reader's buffer grows only as they arrive.
func TestFrameBufferGrowsWithWhatArrives(t *testing.T) {
	var hdr [headerSize]byte
	binary.BigEndian.PutUint32(hdr[:4], 60<<20)
	payload := make([]byte, 100<<10)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range 20 {
		r := io.MultiReader(strings.NewReader(string(hdr[:])), strings.NewReader(string(payload)))
		var h [headerSize]byte
		if _, _, _, err := readFrame(r, &h); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("readFrame = %v, want ErrUnexpectedEOF", err)
		}
	}
	runtime.ReadMemStats(&after)
	if per := (after.TotalAlloc - before.TotalAlloc) / 20; per > 2<<20 {
		t.Fatalf("each lying frame allocated %d bytes for 100 KiB received", per)
	}
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

// clientTLS is TLS settings that present a client certificate of p's CA
// (for dialling only, as zoo certs makes them for applications).
func (p *pki) clientTLS(cn string) *TLS {
	p.t.Helper()
	leaf, err := p.ca.Client(pkix.Name{CommonName: cn}, certgen.Options{})
	if err != nil {
		p.t.Fatal(err)
	}
	roots := certgen.Pool(p.ca)
	conf := &tls.Config{RootCAs: roots, GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		c := leaf.TLSCertificate()
		return &c, nil
	}}
	return &TLS{Base: func() (*tls.Config, error) { return conf, nil }}
}

// An application's client certificate from the ensemble's CA is not a
// replica's, even where names are not checked: with the checks off, and on
// a replica that knows no members yet.
func TestClientCertificateIsNotAReplica(t *testing.T) {
	p := newPKI(t, "one CA for replicas and clients")
	skip := p.tlsFor([]string{"127.0.0.1"})
	skip.SkipHostnameCheck = true
	for name, b := range map[string]*Transport{
		"hostname checks off": tlsTransport(t, skip, nil),
		"no members known":    tlsTransport(t, p.tlsFor([]string{"127.0.0.1"}), func() []string { return nil }),
	} {
		got := watchDelivery(t, b)
		app := tlsTransport(t, p.clientTLS("app"), nil)
		if err := appendEntries(app, b); err == nil {
			t.Fatalf("%s: a client certificate's AppendEntries was answered", name)
		}
		if got.raft.Load() != 0 {
			t.Fatalf("%s: raft saw it", name)
		}
	}
}

// Admission holds while a link lives: a member removed from the ensemble
// loses its open links, and so does a peer whose CA is no longer trusted.
func TestAdmittedLinksAreCheckedAgain(t *testing.T) {
	p := newPKI(t, "CA 1")
	var m staticMembers
	bTLS := p.tlsFor([]string{"127.0.0.1"})
	var bBase atomic.Pointer[tls.Config]
	first, _ := bTLS.Base()
	bBase.Store(first)
	bTLS.Base = func() (*tls.Config, error) { return bBase.Load(), nil }
	b := tlsTransport(t, bTLS, m.list)
	m.add(b.Addr().String())
	m.add("a.example:1")
	a := tlsTransport(t, p.tlsFor([]string{"a.example"}), nil)
	serveEcho(t, b.Listener())
	c := NewClient(func(ctx context.Context) (net.Conn, error) { return a.Dial(ctx, b.Raft().LocalAddr()) }, nil)
	t.Cleanup(func() { c.Close() })
	if _, err := c.Call(context.Background(), 1, nil); err != nil {
		t.Fatalf("a member's call: %v", err)
	}

	// a.example leaves the ensemble: its open link is closed.
	m.mu.Lock()
	m.addrs = m.addrs[:1]
	m.mu.Unlock()
	testkit.Eventually(t, 10*time.Second, "the condition", func() bool { _, err := c.Call(context.Background(), 1, nil); return err != nil })
	if _, err := c.Call(context.Background(), 1, nil); err == nil {
		t.Fatal("a removed member got a new link")
	}

	// A new CA replaces the old: links made under the old one are closed,
	// inbound and outbound.
	m.add("a.example:1")
	testkit.Eventually(t, 10*time.Second, "the condition", func() bool { _, err := c.Call(context.Background(), 1, nil); return err == nil })
	out, err := b.Dial(context.Background(), raft.ServerAddress(a.Addr().String()))
	if err == nil {
		// a's certificate names a.example, not 127.0.0.1: b must refuse it.
		out.Close()
		t.Fatal("b dialled a peer whose certificate does not name the host dialled")
	}
	p2 := newPKI(t, "CA 2")
	conf, _ := p2.tlsFor([]string{"127.0.0.1"}).Base()
	bBase.Store(conf)
	testkit.Eventually(t, 10*time.Second, "the condition", func() bool { _, err := c.Call(context.Background(), 1, nil); return err != nil })
}

// A base that asks to skip verification does not get to: the dialling end
// still checks the peer's CA and name.
func TestInsecureBaseIsStillVerified(t *testing.T) {
	p, other := newPKI(t, "CA"), newPKI(t, "impostor CA")
	impostor := tlsTransport(t, other.tlsFor([]string{"wrong.example"}), nil)
	s := p.tlsFor([]string{"127.0.0.1"})
	conf, _ := s.Base()
	conf.InsecureSkipVerify = true
	a := tlsTransport(t, s, nil)
	if c, err := a.Dial(context.Background(), raft.ServerAddress(impostor.Addr().String())); err == nil {
		c.Close()
		t.Fatal("dialled an impostor of another CA with a base that skips verification")
	}
}

// Unfinished handshakes are bounded per address apart from admitted links,
// so a stranger sharing a member's address cannot take its slots.
func TestPendingHandshakesAreBoundedApart(t *testing.T) {
	b, err := NewTCP(Options{Bind: "127.0.0.1:0", MaxConnsPerIP: 100, MaxPendingPerIP: 3})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	got := watchDelivery(t, b)
	var idle []net.Conn
	for range 10 {
		c, err := net.Dial("tcp", b.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		idle = append(idle, c)
	}
	testkit.Eventually(t, 10*time.Second, "the condition", func() bool { _, pending := b.table.count(); return pending == 3 })
	closed := 0
	for _, c := range idle {
		c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		if _, err := c.Read(make([]byte, 1)); err != nil && !isTimeout(err) {
			closed++
		}
	}
	if closed != 7 {
		t.Fatalf("%d connections refused beyond 3 pending, want 7", closed)
	}
	// An admitted member from the same address still gets in only once a
	// pending slot frees: the stranger holds them until the deadline.
	a, err := NewTCP(Options{Bind: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	idle[0].Close()
	testkit.Eventually(t, 10*time.Second, "the condition", func() bool { _, pending := b.table.count(); return pending == 2 })
	if err := appendEntries(a, b); err != nil {
		t.Fatalf("a peer beside the stranger: %v", err)
	}
	testkit.Eventually(t, 10*time.Second, "the condition", func() bool { return got.raft.Load() == 1 })
}

// A refused certificate reaches the caller as "not sent": the peer ran
// nothing, so a forwarded write may be retried rather than reported as of
// unknown outcome.
func TestRefusedHandshakeIsNotSent(t *testing.T) {
	p := newPKI(t, "CA")
	b := tlsTransport(t, p.tlsFor([]string{"127.0.0.1"}), func() []string { return []string{"member.example:1"} })
	serveEcho(t, b.Listener())
	a := tlsTransport(t, p.tlsFor([]string{"stranger.example"}), nil)
	c := NewClient(func(ctx context.Context) (net.Conn, error) { return a.Dial(ctx, b.Raft().LocalAddr()) }, nil)
	t.Cleanup(func() { c.Close() })
	_, err := c.Call(context.Background(), 1, []byte("write"))
	if !errors.Is(err, ErrNotSent) || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Call = %v, want ErrUnavailable and ErrNotSent", err)
	}
}
