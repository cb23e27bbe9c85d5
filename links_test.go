package zoo_test

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/zooraft/zoo"
	"github.com/zooraft/zoo/internal/certgen"
	"github.com/zooraft/zoo/internal/peer"
	"github.com/zooraft/zoo/internal/testkit"
	"github.com/zooraft/zoo/zootest"
)

// linkedTick is the tick of linkedEnsembles: long enough that a loaded
// machine does not change leaders during a test that checks it stays.
const linkedTick = time.Second

// linkedEnsemble is a real TCP ensemble on 127.0.0.1 in this process.
type linkedEnsemble struct {
	t        *testing.T
	peers    []zoo.Peer
	dirs     []string
	tlsFiles []*zoo.PeerTLS // nil entries: plaintext
	reps     []*zoo.Ensemble
}

// writePKIFiles writes ca.pem and server.<i>.pem for n replicas on
// 127.0.0.1 into dir and returns their PeerTLS settings.
func writePKIFiles(t *testing.T, ca *certgen.CA, dir string, n int) []*zoo.PeerTLS {
	t.Helper()
	caFile := filepath.Join(dir, "ca.pem")
	if err := certgen.WriteFile(caFile, ca.CertPEM()); err != nil {
		t.Fatal(err)
	}
	var out []*zoo.PeerTLS
	for i := range n {
		leaf, err := ca.Replica(fmt.Sprintf("replica %d", i+1), []string{"127.0.0.1", "localhost"}, certgen.Options{})
		if err != nil {
			t.Fatal(err)
		}
		b, err := leaf.PEM()
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(dir, fmt.Sprintf("server.%d.pem", i+1))
		if err := certgen.WriteFile(f, b); err != nil {
			t.Fatal(err)
		}
		out = append(out, &zoo.PeerTLS{CertFile: f, CAFile: caFile})
	}
	return out
}

func newLinkedEnsemble(t *testing.T, n int, tlsFiles []*zoo.PeerTLS) *linkedEnsemble {
	t.Helper()
	le := &linkedEnsemble{t: t, tlsFiles: tlsFiles, reps: make([]*zoo.Ensemble, n)}
	for i, a := range freeLoopbackAddrs(t, n) {
		le.peers = append(le.peers, zoo.Peer{ID: fmt.Sprint(i + 1), Addr: a})
		le.dirs = append(le.dirs, filepath.Join(t.TempDir(), fmt.Sprint(i+1)))
	}
	for i := range n {
		le.start(i)
	}
	t.Cleanup(func() {
		for _, e := range le.reps {
			if e != nil {
				e.Close()
			}
		}
	})
	return le
}

func (le *linkedEnsemble) start(i int) {
	le.t.Helper()
	cfg := zoo.Config{ID: le.peers[i].ID, Dir: le.dirs[i], BindAddr: le.peers[i].Addr, Peers: le.peers, TickTime: linkedTick}
	if le.tlsFiles != nil {
		cfg.PeerTLS = le.tlsFiles[i]
	}
	e, err := zoo.Open(cfg)
	if err != nil {
		le.t.Fatal(err)
	}
	le.reps[i] = e
}

func (le *linkedEnsemble) stop(i int) {
	le.reps[i].Close()
	le.reps[i] = nil
}

// leader waits for one replica to lead and every live one to know it.
func (le *linkedEnsemble) leader() (int, zoo.Status) {
	le.t.Helper()
	var at int
	var st zoo.Status
	testkit.Eventually(le.t, 20*time.Second, "a leader known to every replica", func() bool {
		at = -1
		for i, e := range le.reps {
			if e == nil {
				continue
			}
			s, err := e.Status()
			if err != nil || s.LeaderID == "" {
				return false
			}
			if s.Role == zoo.RoleLeader {
				at, st = i, s
			}
		}
		return at >= 0
	})
	return at, st
}

// attackTransport is a raw replica port of a would-be peer.
func attackTransport(t *testing.T, bind string, s *peer.TLS) *peer.Transport {
	t.Helper()
	tr, err := peer.NewTCP(peer.Options{Bind: bind, TLS: s})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

// attack sends every replica what only a leader or a peer may send: an
// AppendEntries of a far later term (which would depose the leader) and a
// membership change adding the attacker as a voter. It returns how many
// got through.
func (le *linkedEnsemble) attack(tr *peer.Transport) (int, error) {
	through := 0
	var last error
	for _, p := range le.peers {
		var resp raft.AppendEntriesResponse
		req := &raft.AppendEntriesRequest{RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte("evil"), Addr: []byte(tr.Addr().String())},
			Term: 1 << 40, PrevLogEntry: 0, PrevLogTerm: 0, LeaderCommitIndex: 0}
		if err := tr.Raft().AppendEntries(raft.ServerID(p.ID), raft.ServerAddress(p.Addr), req, &resp); err == nil {
			through++
		} else {
			last = err
		}
		c := peer.NewClient(func(ctx context.Context) (net.Conn, error) { return tr.Dial(ctx, raft.ServerAddress(p.Addr)) }, nil)
		payload := []byte{1} // add voter
		payload = binary.BigEndian.AppendUint32(payload, 4)
		payload = append(payload, "evil"...)
		payload = binary.BigEndian.AppendUint32(payload, uint32(len(tr.Addr().String())))
		payload = append(payload, tr.Addr().String()...)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := c.Call(ctx, 4, payload)
		cancel()
		c.Close()
		var re *peer.RemoteError
		if err == nil || errors.As(err, &re) {
			through++ // answered, if only with an error: it reached the handler
		} else {
			last = err
		}
	}
	return through, last
}

// staticTLS is peer TLS settings from a leaf and the CAs to trust.
func staticTLS(leaf *certgen.Leaf, trust ...*certgen.CA) *peer.TLS {
	pool := certgen.Pool(trust...)
	// Sent whatever the server's CA list says, as an attacker's client
	// would (Go's own sends none the server does not name).
	conf := &tls.Config{RootCAs: pool, GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		if leaf == nil {
			return &tls.Certificate{}, nil
		}
		c := leaf.TLSCertificate()
		return &c, nil
	}}
	return &peer.TLS{Base: func() (*tls.Config, error) { return conf, nil }, SkipHostnameCheck: true}
}

func TestPeerTLSEnsembleServesAndRefusesStrangers(t *testing.T) {
	ca, err := certgen.NewCA("ensemble CA", certgen.Options{})
	if err != nil {
		t.Fatal(err)
	}
	le := newLinkedEnsemble(t, 3, writePKIFiles(t, ca, t.TempDir(), 3))
	ctx := testkit.Context(t)
	at, before := le.leader()
	s, err := le.reps[(at+1)%3].NewSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := zootest.Retry(ctx, func() error { _, err := s.Create(ctx, "/over-tls", []byte("x"), zoo.ModePersistent, nil); return err }, zoo.ErrNodeExists); err != nil {
		t.Fatalf("write through a follower over TLS: %v", err)
	}

	otherCA, _ := certgen.NewCA("another CA", certgen.Options{})
	fromOther, _ := otherCA.Replica("impostor", []string{"127.0.0.1"}, certgen.Options{})
	stranger, _ := ca.Replica("stranger", []string{"stranger.example", "127.0.0.2"}, certgen.Options{})
	attackers := []struct {
		name string
		tr   *peer.Transport
	}{
		{"plaintext", attackTransport(t, "127.0.0.1:0", nil)},
		{"certificate from another CA", attackTransport(t, "127.0.0.1:0", staticTLS(fromOther, ca, otherCA))},
		{"valid certificate of a host that is not a member", attackTransport(t, "127.0.0.2:0", staticTLS(stranger, ca))},
		{"no certificate", attackTransport(t, "127.0.0.1:0", staticTLS(nil, ca))},
	}
	for _, a := range attackers {
		if n, err := le.attack(a.tr); n != 0 {
			t.Errorf("%s: %d requests reached raft or the peer RPC", a.name, n)
		} else {
			t.Logf("%s: refused (%v)", a.name, err)
		}
	}

	// A stranger with a valid certificate that tries to join: a replica
	// bootstrapped with the members plus itself campaigns and replicates to
	// them; nobody listens.
	strangerDir := t.TempDir()
	sb, _ := stranger.PEM()
	if err := certgen.WriteFile(filepath.Join(strangerDir, "s.pem"), sb); err != nil {
		t.Fatal(err)
	}
	evilAddr := freeAddrOn(t, "127.0.0.2")
	bogus, err := zoo.Open(zoo.Config{ID: "evil", Dir: filepath.Join(strangerDir, "data"), BindAddr: evilAddr, TickTime: linkedTick,
		Peers:   append(append([]zoo.Peer(nil), le.peers...), zoo.Peer{ID: "evil", Addr: evilAddr}),
		PeerTLS: &zoo.PeerTLS{CertFile: filepath.Join(strangerDir, "s.pem"), CAFile: le.tlsFiles[0].CAFile}})
	if err != nil {
		t.Fatal(err)
	}
	defer bogus.Close()
	time.Sleep(5 * linkedTick) // several election timeouts of campaigning

	_, after := le.leader()
	if after.LeaderID != before.LeaderID || !after.LeaderSince.Equal(before.LeaderSince) || len(after.Members) != 3 {
		t.Fatalf("the ensemble changed under the strangers: before %+v, after %+v", before, after)
	}
	if err := zootest.Retry(ctx, func() error { _, err := s.Set(ctx, "/over-tls", []byte("y"), -1); return err }); err != nil {
		t.Fatalf("write after the strangers: %v", err)
	}
}

// Without TLS a replica cannot check who is calling, only where from: a
// peer port admits members' addresses only. The last step shows why that
// is not enough on a shared network: the same forged AppendEntries from a
// member's address (127.0.0.1) deposes the leader.
func TestPlaintextEnsembleRefusesOtherAddresses(t *testing.T) {
	le := newLinkedEnsemble(t, 3, nil)
	_, before := le.leader()
	if n, err := le.attack(attackTransport(t, "127.0.0.2:0", nil)); n != 0 {
		t.Fatalf("%d requests from 127.0.0.2 reached raft or the peer RPC", n)
	} else {
		t.Logf("from 127.0.0.2: refused (%v)", err)
	}
	time.Sleep(linkedTick)
	if _, after := le.leader(); after.LeaderID != before.LeaderID || !after.LeaderSince.Equal(before.LeaderSince) {
		t.Fatalf("leadership changed: before %+v, after %+v", before, after)
	}

	tr := attackTransport(t, "127.0.0.1:0", nil)
	var resp raft.AppendEntriesResponse
	leaderAddr := raft.ServerAddress(before.LeaderAddr)
	if err := tr.Raft().AppendEntries("x", leaderAddr, &raft.AppendEntriesRequest{
		RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax}, Term: 1 << 40}, &resp); err != nil {
		t.Fatalf("from a member's address: %v", err)
	}
	testkit.Eventually(t, 10*time.Second, "the forged term deposes the leader", func() bool {
		_, st := le.leader()
		return !st.LeaderSince.Equal(before.LeaderSince)
	})
}

// Certificates renewed under load: every replica's files are replaced by
// ones from a new CA while writes go on, and a restarted follower (whose
// links are all new) catches up, so the running replicas must be using the
// new files on both ends of a link. A client of the old CA is then refused.
func TestPeerTLSCertificatesRotateUnderLoad(t *testing.T) {
	ca1, _ := certgen.NewCA("CA 1", certgen.Options{})
	dir := t.TempDir()
	files := writePKIFiles(t, ca1, dir, 3)
	le := newLinkedEnsemble(t, 3, files)
	ctx := testkit.Context(t)
	at, _ := le.leader()
	s, err := le.reps[at].NewSession(ctx)
	if err != nil {
		t.Fatal(err)
	}

	var written, failed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			err := zootest.Retry(ctx, func() error {
				_, err := s.Create(ctx, fmt.Sprintf("/load-%d", i), nil, zoo.ModePersistent, nil)
				return err
			}, zoo.ErrNodeExists)
			if err != nil {
				failed.Add(1)
				return
			}
			written.Add(1)
		}
	}()
	waitWritten := func(n int64) {
		target := written.Load() + n
		testkit.Eventually(t, 20*time.Second, "writes go on", func() bool { return written.Load() >= target || failed.Load() > 0 })
	}
	waitWritten(20)

	// Every file replaced by one of a new CA, as a renewal that also
	// retires the CA would do; each replica picks them up at its next
	// handshake.
	ca2, _ := certgen.NewCA("CA 2", certgen.Options{})
	writePKIFiles(t, ca2, dir, 3) // same paths, new content
	waitWritten(20)

	f := (at + 1) % 3
	le.stop(f)
	waitWritten(20)
	le.start(f)
	testkit.Eventually(t, 30*time.Second, "the restarted follower catches up over links with the new certificates", func() bool {
		st, err := le.reps[f].Status()
		lst, lerr := le.reps[at].Status()
		return err == nil && lerr == nil && st.LeaderID != "" && st.AppliedIndex+10 >= lst.AppliedIndex && st.AppliedIndex > 0
	})
	close(stop)
	wg.Wait()
	if failed.Load() > 0 {
		t.Fatal("a write failed during the rotation")
	}

	// A would-be replica with a certificate of the retired CA is refused.
	old, _ := ca1.Replica("old", []string{"127.0.0.1"}, certgen.Options{})
	if n, err := le.attack(attackTransport(t, "127.0.0.1:0", staticTLS(old, ca1, ca2))); n != 0 {
		t.Fatalf("a certificate of the retired CA got %d requests through", n)
	} else {
		t.Logf("old CA refused: %v", err)
	}
}

// freeAddrOn returns a port of ip that was free a moment ago.
func freeAddrOn(t *testing.T, ip string) string {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// The replica port under abuse while the ensemble keeps serving: a flood of
// connections that never finish their handshake, beyond the per-address
// limit, and (from a stolen member certificate) frames whose headers claim
// 60 MiB. Writes go on; the flood is cut at the limit and dropped at the
// handshake deadline; the lying frames cost what was really sent.
func TestReplicaPortSurvivesMisbehavingClients(t *testing.T) {
	ca, _ := certgen.NewCA("ensemble CA", certgen.Options{})
	le := newLinkedEnsemble(t, 3, writePKIFiles(t, ca, t.TempDir(), 3))
	ctx := testkit.Context(t)
	at, _ := le.leader()
	s, err := le.reps[(at+1)%3].NewSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	target := le.peers[at].Addr
	from := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}

	var flood []net.Conn
	for range peer.DefaultMaxConnsPerIP + 72 {
		c, err := from.Dial("tcp", target)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		flood = append(flood, c)
	}
	stolen, _ := ca.Replica("stolen", []string{"127.0.0.1"}, certgen.Options{})
	var liars []net.Conn
	conf, _ := staticTLS(stolen, ca).Base()
	conf = conf.Clone()
	conf.ServerName = "127.0.0.1"
	for range 20 {
		// A raw TLS conn: the flood holds every slot of 127.0.0.2, so these
		// come from 127.0.0.3.
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 3)}}
		c, err := tls.DialWithDialer(d, "tcp", target, conf)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		hdr := make([]byte, 13)
		binary.BigEndian.PutUint32(hdr, 60<<20)
		hdr[12] = 1 // a forwarded write
		hello := append([]byte{peer.KindRPC}, make([]byte, peer.EnsembleIDLen)...)
		if _, err := c.Write(append(append(hello, hdr...), make([]byte, 64<<10)...)); err != nil {
			t.Fatal(err)
		}
		liars = append(liars, c)
	}

	for i := range 30 {
		if err := zootest.Retry(ctx, func() error {
			_, err := s.Create(ctx, fmt.Sprintf("/under-abuse-%d", i), nil, zoo.ModePersistent, nil)
			return err
		}, zoo.ErrNodeExists); err != nil {
			t.Fatalf("write %d under abuse: %v", i, err)
		}
	}
	var ms runtimeMem
	if heap := ms.heapMiB(); heap > 600 {
		t.Fatalf("heap is %d MiB with 20 frames claiming 60 MiB each", heap)
	}

	// Beyond the limit: closed at once. The rest: at the handshake deadline.
	closed := 0
	for _, c := range flood {
		c.SetReadDeadline(time.Now().Add(peer.DefaultHandshakeTimeout + 5*time.Second))
		if _, err := c.Read(make([]byte, 1)); err != nil && !isTimeoutErr(err) {
			closed++
		}
	}
	if closed != len(flood) {
		t.Fatalf("%d of %d idle connections were closed by the handshake deadline", closed, len(flood))
	}
	for _, c := range liars {
		c.Close()
	}
	if err := zootest.Retry(ctx, func() error { _, err := s.Set(ctx, "/under-abuse-0", []byte("after"), -1); return err }); err != nil {
		t.Fatalf("write after the abuse: %v", err)
	}
}

func isTimeoutErr(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// runtimeMem reads the Go heap of this process (where the replicas run).
type runtimeMem struct{}

func (runtimeMem) heapMiB() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc >> 20
}

// A replica waiting to be added admits only the members it was told to
// expect (Join with Peers): a stranger cannot feed it a log before the real
// leader does, and the real leader still adds it.
func TestJoiningReplicaAdmitsOnlyExpectedMembers(t *testing.T) {
	ctx := testkit.Context(t)
	e1, err := zoo.Open(zoo.Config{ID: "1", Dir: t.TempDir(), BindAddr: "127.0.0.1:0", TickTime: linkedTick})
	if err != nil {
		t.Fatal(err)
	}
	defer e1.Close()
	if err := e1.WaitServing(ctx); err != nil {
		t.Fatal(err)
	}
	e2, err := zoo.Open(zoo.Config{ID: "2", Dir: t.TempDir(), BindAddr: "127.0.0.1:0", TickTime: linkedTick, Join: true,
		Peers: []zoo.Peer{{ID: "1", Addr: e1.Addr()}}})
	if err != nil {
		t.Fatal(err)
	}
	defer e2.Close()

	stranger := attackTransport(t, "127.0.0.2:0", nil)
	var resp raft.AppendEntriesResponse
	if err := stranger.Raft().AppendEntries("2", raft.ServerAddress(e2.Addr()), &raft.AppendEntriesRequest{
		RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax}, Term: 7}, &resp); err == nil {
		t.Fatal("a joining replica took AppendEntries from a stranger")
	}
	if err := zootest.Retry(ctx, func() error { return e1.AddVoter(ctx, "2", e2.Addr()) }); err != nil {
		t.Fatalf("AddVoter: %v", err)
	}
	testkit.Eventually(t, 30*time.Second, "the joined replica follows", func() bool {
		st, err := e2.Status()
		return err == nil && st.LeaderID == "1" && len(st.Members) == 2
	})
}
