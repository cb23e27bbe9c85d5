package zkclient

import (
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/zooraft/zoo"
	"github.com/zooraft/zoo/internal/testkit"
	"github.com/zooraft/zoo/zkwire"
)

// The client's server goes away: the session resumes on another replica,
// keeps its ephemeral, re-arms its watches through setWatches, and the
// changes made while it was cut off arrive as catch-up events.
func TestSessionResumeOnAnotherReplica(t *testing.T) {
	t.Parallel()
	c := newCluster(t, zkwire.Config{})
	g := &gate{}
	conn, rec := connect(t, c.addrs, Options{Dialer: g.dial})
	ctx := testkit.Context(t)
	sid := conn.SessionID()
	if _, err := conn.Create(ctx, "/eph", nil, zoo.ModeEphemeral, nil); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/watched", "/gone", "/kids", "/tree", "/same"} {
		mustCreate(t, conn, p, nil)
	}
	if _, _, err := conn.Get(ctx, "/watched", true); err != nil {
		t.Fatal(err)
	}
	if ok, _, err := conn.Exists(ctx, "/gone", true); err != nil || !ok {
		t.Fatal(ok, err)
	}
	if _, err := conn.Children(ctx, "/kids", true); err != nil {
		t.Fatal(err)
	}
	if ok, _, err := conn.Exists(ctx, "/later", true); err != nil || ok {
		t.Fatal(ok, err)
	}
	if _, _, err := conn.Get(ctx, "/same", true); err != nil {
		t.Fatal(err)
	}
	if err := conn.AddWatch(ctx, "/tree", zoo.WatchPersistentRecursive); err != nil {
		t.Fatal(err)
	}

	first := c.index(conn.Server())
	if first < 0 {
		t.Fatalf("connected to unknown server %q", conn.Server())
	}
	g.set(true) // cut off: no reconnection until the changes are made
	c.srvs[first].Close()
	testkit.Eventually(t, waitLong, "disconnected", func() bool { return conn.State() == StateDisconnected })

	other := (first + 1) % 3
	s := c.Session(other)
	if _, err := s.Set(ctx, "/watched", []byte("new"), -1); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "/gone", -1); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, "/kids/k", nil, zoo.ModePersistent, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, "/later", nil, zoo.ModePersistent, nil); err != nil {
		t.Fatal(err)
	}
	g.set(false)

	testkit.Eventually(t, waitLong, "resumed on another server", func() bool {
		i := c.index(conn.Server())
		return conn.State() == StateConnected && i >= 0 && i != first
	})
	if conn.SessionID() != sid {
		t.Fatalf("session id changed from %x to %x", sid, conn.SessionID())
	}
	for _, ev := range []struct {
		typ  zoo.EventType
		path string
	}{
		{zoo.EventNodeDataChanged, "/watched"},
		{zoo.EventNodeDeleted, "/gone"},
		{zoo.EventNodeChildrenChanged, "/kids"},
		{zoo.EventNodeCreated, "/later"},
	} {
		rec.waitEvent(t, ev.typ, ev.path)
	}
	if rec.has(zoo.EventNodeDataChanged, "/same") {
		t.Fatal("catch-up event for a node that did not change")
	}
	ok, st, err := conn.Exists(ctx, "/eph", false)
	if err != nil || !ok || st.EphemeralOwner != sid {
		t.Fatalf("ephemeral after failover: %v %+v %v", ok, st, err)
	}
	// The unchanged node's watch and the recursive watch were re-armed.
	if _, err := s.Create(ctx, "/tree/x", nil, zoo.ModePersistent, nil); err != nil {
		t.Fatal(err)
	}
	rec.waitEvent(t, zoo.EventNodeCreated, "/tree/x")
	if _, err := s.Set(ctx, "/same", []byte("1"), -1); err != nil {
		t.Fatal(err)
	}
	rec.waitEvent(t, zoo.EventNodeDataChanged, "/same")
	if got := rec.states(); !slices.Equal(got, []State{StateConnected, StateDisconnected, StateConnected}) {
		t.Fatalf("states %v (Disconnected once, however many dials failed)", got)
	}
}

// A client cut off for longer than its session timeout learns, when it
// reconnects, that its session expired; waiting and later requests fail.
func TestSessionExpiry(t *testing.T) {
	t.Parallel()
	ens := openSingle(t, zoo.Config{TickTime: 200 * time.Millisecond})
	srv, addr := serve(t, ens, zkwire.Config{})
	g := &gate{}
	conn, rec := connect(t, []string{addr}, Options{SessionTimeout: 2 * time.Second, Dialer: g.dial})
	ctx := testkit.Context(t)
	if _, err := conn.Create(ctx, "/exp", nil, zoo.ModeEphemeral, nil); err != nil {
		t.Fatal(err)
	}
	g.set(true)
	srv.Close()
	testkit.Eventually(t, waitLong, "disconnected", func() bool { return conn.State() == StateDisconnected })
	waiting := make(chan error, 1)
	go func() {
		_, _, err := conn.Get(ctx, "/", false)
		waiting <- err
	}()

	s, err := ens.NewSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(ctx)
	testkit.Eventually(t, waitLong, "the ephemeral of the expired session is deleted", func() bool {
		ok, _, err := s.Exists(ctx, "/exp")
		return err == nil && !ok
	})
	_, addr2 := serve(t, ens, zkwire.Config{})
	g.route(addr, addr2)
	g.set(false)
	testkit.Eventually(t, waitLong, "expired", func() bool { return conn.State() == StateExpired })
	if err := <-waiting; !errors.Is(err, zoo.ErrSessionExpired) {
		t.Fatalf("request waiting for the session: %v", err)
	}
	if _, err := conn.Create(ctx, "/x", nil, zoo.ModePersistent, nil); !errors.Is(err, zoo.ErrSessionExpired) {
		t.Fatalf("request after expiry: %v", err)
	}
	testkit.Eventually(t, waitLong, "Expired event", func() bool { return rec.count(StateExpired) == 1 })
	if got := rec.states(); !slices.Equal(got, []State{StateConnected, StateDisconnected, StateExpired}) {
		t.Fatalf("states %v", got)
	}
	if err := conn.Close(); err != nil || conn.State() != StateClosed {
		t.Fatalf("Close after expiry: %v %v", err, conn.State())
	}
}

// Pings keep an idle session alive well past its timeout.
func TestPingsKeepSessionAlive(t *testing.T) {
	t.Parallel()
	ens := openSingle(t, zoo.Config{TickTime: 200 * time.Millisecond})
	_, addr := serve(t, ens, zkwire.Config{})
	conn, rec := connect(t, []string{addr}, Options{SessionTimeout: 3 * time.Second})
	ctx := testkit.Context(t)
	sid := conn.SessionID()
	if _, err := conn.Create(ctx, "/alive", nil, zoo.ModeEphemeral, nil); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * conn.SessionTimeout()) // idle on purpose: only pings flow
	if ok, _, err := conn.Exists(ctx, "/alive", false); err != nil || !ok || conn.SessionID() != sid {
		t.Fatalf("after idling: %v %v, session %x (was %x)", ok, err, conn.SessionID(), sid)
	}
	if got := rec.states(); !slices.Equal(got, []State{StateConnected}) {
		t.Fatalf("states %v", got)
	}
}

func TestAuthAndACL(t *testing.T) {
	t.Parallel()
	_, addr := single(t, zkwire.Config{})
	g := &gate{}
	alice, aliceEvents := connect(t, []string{addr}, Options{Dialer: g.dial})
	ctx := testkit.Context(t)
	if err := alice.AddAuth(ctx, "digest", []byte("alice:secret")); err != nil {
		t.Fatal(err)
	}
	ids, err := alice.WhoAmI(ctx)
	if err != nil || !slices.Contains(ids, zoo.ID{Scheme: "digest", ID: "alice"}) || !slices.Contains(ids, zoo.ID{Scheme: "ip", ID: "127.0.0.1"}) {
		t.Fatalf("whoAmI = %+v %v", ids, err)
	}
	aliceOnly := []zoo.ACL{{Perms: zoo.PermAll, ID: zoo.ID{Scheme: "digest", ID: zoo.DigestID("alice", "secret")}}}
	if _, err := alice.Create(ctx, "/secure", []byte("s"), zoo.ModePersistent, aliceOnly); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Create(ctx, "/mine", nil, zoo.ModePersistent, zoo.CreatorACL); err != nil {
		t.Fatal(err)
	}
	acl, _, err := alice.GetACL(ctx, "/mine")
	if err != nil || len(acl) != 1 || acl[0].Scheme != "digest" || acl[0].ID.ID != zoo.DigestID("alice", "secret") {
		t.Fatalf("creator ACL = %+v %v", acl, err)
	}

	bob, _ := connect(t, []string{addr}, Options{})
	_, _, err = bob.Get(ctx, "/secure", false)
	isPathErr(t, err, "/secure", zoo.ErrNoAuth)
	if err := bob.AddAuth(ctx, "digest", []byte("bob:pw")); err != nil {
		t.Fatal(err)
	}
	_, _, err = bob.Get(ctx, "/secure", false)
	isPathErr(t, err, "/secure", zoo.ErrNoAuth)
	_, err = bob.Set(ctx, "/mine", nil, -1)
	isPathErr(t, err, "/mine", zoo.ErrNoAuth)

	// Auth is replayed on a new connection.
	g.cut()
	testkit.Eventually(t, waitLong, "reconnected", func() bool {
		return alice.State() == StateConnected && aliceEvents.count(StateDisconnected) == 1
	})
	if data, _, err := alice.Get(ctx, "/secure", false); err != nil || string(data) != "s" {
		t.Fatalf("after reconnecting: %q %v", data, err)
	}
	if ids, err := alice.WhoAmI(ctx); err != nil || !slices.Contains(ids, zoo.ID{Scheme: "digest", ID: "alice"}) {
		t.Fatalf("whoAmI after reconnecting = %+v %v", ids, err)
	}
}

func TestAuthFailed(t *testing.T) {
	t.Parallel()
	_, addr := single(t, zkwire.Config{})
	c, r := connect(t, []string{addr}, Options{})
	ctx := testkit.Context(t)
	if err := c.AddAuth(ctx, "bogus", []byte("x")); !errors.Is(err, zoo.ErrAuthFailed) {
		t.Fatalf("AddAuth with an unknown scheme: %v", err)
	}
	if st := c.State(); st != StateAuthFailed {
		t.Fatalf("state %v", st)
	}
	if _, _, err := c.Get(ctx, "/", false); !errors.Is(err, zoo.ErrAuthFailed) {
		t.Fatalf("request after AUTH_FAILED: %v", err)
	}
	if got := r.states(); !slices.Equal(got, []State{StateConnected, StateAuthFailed}) {
		t.Fatalf("states %v", got)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
}

// isro asks a server the isro four-letter word.
func isro(addr string) string {
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return ""
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	nc.Write([]byte("isro"))
	b, _ := io.ReadAll(nc)
	return string(b)
}

// A replica cut off from its quorum serves read-only clients; when it
// serves again the client gets a read-write session.
func TestReadOnlyMode(t *testing.T) {
	t.Parallel()
	c := newCluster(t, zkwire.Config{ReadOnlyMode: true})
	leader := c.WaitLeader()
	alone := (leader + 1) % 3
	rw, _ := connect(t, c.addrs[alone:alone+1], Options{})
	mustCreate(t, rw, "/ro", []byte("v"))
	rw.Close()

	c.Isolate(alone)
	testkit.Eventually(t, waitLong, "isolated server is read-only", func() bool { return isro(c.addrs[alone]) == "ro" })
	ctx := testkit.Context(t)

	// A client that cannot be read-only is refused.
	strict, err := Connect(c.addrs[alone:alone+1], Options{SessionTimeout: testSessionTTL})
	if err != nil {
		t.Fatal(err)
	}
	defer strict.Close()

	ro, r := connect(t, c.addrs[alone:alone+1], Options{CanBeReadOnly: true})
	if ro.State() != StateConnectedReadOnly || ro.SessionID() >= 0 {
		t.Fatalf("state %v session %x, want read-only with a local (negative) id", ro.State(), ro.SessionID())
	}
	if data, _, err := ro.Get(ctx, "/ro", false); err != nil || string(data) != "v" {
		t.Fatalf("read-only get = %q %v", data, err)
	}
	_, err = ro.Create(ctx, "/ro/x", nil, zoo.ModePersistent, nil)
	isPathErr(t, err, "/ro/x", zoo.ErrNotReadOnly)
	isPathErr(t, ro.Sync(ctx, "/"), "/", zoo.ErrNotReadOnly)
	if st := strict.State(); st != StateConnecting {
		t.Fatalf("a client that cannot be read-only is %v", st)
	}

	c.Heal()
	testkit.Eventually(t, waitLong, "read-write again", func() bool { return ro.State() == StateConnected })
	if ro.SessionID() <= 0 {
		t.Fatalf("read-write session id %x", ro.SessionID())
	}
	if _, err := ro.Create(ctx, "/ro/x", nil, zoo.ModePersistent, nil); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, waitLong, "the strict client connects", func() bool { return strict.State() == StateConnected })
	if got := r.states(); len(got) < 3 || got[0] != StateConnectedReadOnly || got[len(got)-1] != StateConnected {
		t.Fatalf("states %v", got)
	}
}

// A read-only client with other servers in its list finds a read-write one
// by asking isro, and moves there.
func TestReadOnlyFindsReadWriteServer(t *testing.T) {
	t.Parallel()
	c := newCluster(t, zkwire.Config{ReadOnlyMode: true})
	leader := c.WaitLeader()
	alone := (leader + 1) % 3
	c.Isolate(alone)
	testkit.Eventually(t, waitLong, "isolated server is read-only", func() bool { return isro(c.addrs[alone]) == "ro" })
	rest := (alone + 1) % 3
	rec := &recorder{}
	conn, err := Connect([]string{c.addrs[alone], c.addrs[rest]}, Options{SessionTimeout: testSessionTTL, CanBeReadOnly: true, OnEvent: rec.onEvent})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	testkit.Eventually(t, waitLong, "read-write session on the other server", func() bool {
		return conn.State() == StateConnected && conn.Server() == c.addrs[rest]
	})
	if got := rec.states(); got[0] != StateConnectedReadOnly {
		t.Fatalf("states %v: the first server should have given a read-only session", got)
	}
	if _, err := conn.Create(testkit.Context(t), "/rw", nil, zoo.ModePersistent, nil); err != nil {
		t.Fatal(err)
	}
}

// Many goroutines share one connection: requests are pipelined, each reply
// goes to its caller, and each goroutine's requests apply in its order.
func TestPipelining(t *testing.T) {
	t.Parallel()
	_, addr := single(t, zkwire.Config{})
	c, _ := connect(t, []string{addr}, Options{})
	ctx := testkit.Context(t)
	mustCreate(t, c, "/p", nil)
	const goroutines, rounds = 32, 30
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := fmt.Sprintf("/p/g%02d", g)
			if _, err := c.Create(ctx, p, []byte("0"), zoo.ModePersistent, nil); err != nil {
				errs <- err
				return
			}
			for i := 1; i <= rounds; i++ {
				want := fmt.Sprintf("%s=%d", p, i)
				st, err := c.Set(ctx, p, []byte(want), int32(i-1)) // fails unless the previous set applied first
				if err != nil || st.Version != int32(i) {
					errs <- fmt.Errorf("set %s #%d: %+v %v", p, i, st, err)
					return
				}
				data, _, err := c.Get(ctx, p, false)
				if err != nil || string(data) != want {
					errs <- fmt.Errorf("get %s #%d = %q %v", p, i, data, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	c.mu.Lock()
	depth := c.maxPending
	c.mu.Unlock()
	if depth < 2 {
		t.Fatalf("at most %d request in flight: nothing was pipelined", depth)
	}
	if names, err := c.Children(ctx, "/p", false); err != nil || len(names) != goroutines {
		t.Fatalf("children = %d %v", len(names), err)
	}
}

// A server that closes without answering the handshake (it is behind the
// client, or read-only) makes the client try the next one.
func TestNextServerAfterRefusal(t *testing.T) {
	t.Parallel()
	_, addr := single(t, zkwire.Config{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			nc.Close()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	c, r := connect(t, []string{ln.Addr().String(), addr}, Options{})
	if c.Server() != addr {
		t.Fatalf("connected to %q", c.Server())
	}
	if got := r.states(); !slices.Equal(got, []State{StateConnected}) {
		t.Fatalf("states %v: failed attempts must not be announced", got)
	}
}
