package zkwire

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/zooraft/zoo/internal/testkit"
)

// backends runs a test against one Server in front of a one-replica
// ensemble, and against a 3-replica cluster with one Server per replica
// (addrs[0] and addrs[1] then reach different replicas).
func backends(t *testing.T, run func(t *testing.T, addrs []string)) {
	t.Run("single", func(t *testing.T) {
		t.Parallel()
		_, addr := serve(t, openSingle(t), Config{})
		run(t, []string{addr, addr})
	})
	t.Run("cluster", func(t *testing.T) {
		t.Parallel()
		c := newCluster(t, Config{})
		run(t, c.addrs)
	})
}

func TestGoZKOps(t *testing.T) {
	backends(t, func(t *testing.T, addrs []string) {
		conn, _ := connectZK(t, addrs[:1], 10*time.Second)
		acl := zk.WorldACL(zk.PermAll)

		// create / get / set / exists with Stat checks.
		if p, err := conn.Create("/a", []byte("x"), 0, acl); err != nil || p != "/a" {
			t.Fatalf("create /a = %q, %v", p, err)
		}
		data, st, err := conn.Get("/a")
		if err != nil || string(data) != "x" {
			t.Fatalf("get /a = %q, %v", data, err)
		}
		if st.Czxid <= 0 || st.Mzxid != st.Czxid || st.Pzxid != st.Czxid || st.Version != 0 ||
			st.DataLength != 1 || st.NumChildren != 0 || st.EphemeralOwner != 0 || st.Ctime == 0 || st.Mtime != st.Ctime {
			t.Fatalf("stat of new /a: %+v", st)
		}
		st2, err := conn.Set("/a", []byte("yy"), 0)
		if err != nil || st2.Version != 1 || st2.Mzxid <= st.Czxid || st2.Czxid != st.Czxid || st2.DataLength != 2 {
			t.Fatalf("set /a: %+v, %v", st2, err)
		}
		if _, err := conn.Set("/a", []byte("z"), 0); !errors.Is(err, zk.ErrBadVersion) {
			t.Fatalf("set with a stale version: %v", err)
		}
		if ok, st3, err := conn.Exists("/a"); err != nil || !ok || *st3 != *st2 {
			t.Fatalf("exists /a = %v %+v %v, want %+v", ok, st3, err, st2)
		}
		if ok, _, err := conn.Exists("/nope"); err != nil || ok {
			t.Fatalf("exists /nope = %v, %v", ok, err)
		}
		if _, _, err := conn.Get("/nope"); !errors.Is(err, zk.ErrNoNode) {
			t.Fatalf("get /nope: %v", err)
		}
		if _, err := conn.Create("/a", nil, 0, acl); !errors.Is(err, zk.ErrNodeExists) {
			t.Fatalf("create existing: %v", err)
		}
		if _, err := conn.Create("/none/child", nil, 0, acl); !errors.Is(err, zk.ErrNoNode) {
			t.Fatalf("create without parent: %v", err)
		}

		// children.
		for _, name := range []string{"c", "b"} {
			if _, err := conn.Create("/a/"+name, nil, 0, acl); err != nil {
				t.Fatal(err)
			}
		}
		kids, pst, err := conn.Children("/a")
		slices.Sort(kids)
		if err != nil || fmt.Sprint(kids) != "[b c]" || pst.NumChildren != 2 || pst.Cversion != 2 || pst.Pzxid <= st2.Mzxid {
			t.Fatalf("children /a = %v %+v %v", kids, pst, err)
		}
		// Null data stays null.
		if data, _, err := conn.Get("/a/b"); err != nil || data != nil {
			t.Fatalf("get of a node created with nil data = %q (nil %v), %v", data, data == nil, err)
		}

		// delete.
		if err := conn.Delete("/a", -1); !errors.Is(err, zk.ErrNotEmpty) {
			t.Fatalf("delete non-empty: %v", err)
		}
		if err := conn.Delete("/a/b", 5); !errors.Is(err, zk.ErrBadVersion) {
			t.Fatalf("delete with wrong version: %v", err)
		}
		for _, p := range []string{"/a/b", "/a/c"} {
			if err := conn.Delete(p, -1); err != nil {
				t.Fatal(err)
			}
		}
		_, pst2, _ := conn.Exists("/a")
		if pst2.NumChildren != 0 || pst2.Cversion != 4 || pst2.Pzxid <= pst.Pzxid {
			t.Fatalf("parent after deletes: %+v", pst2)
		}
		if err := conn.Delete("/a", 1); err != nil {
			t.Fatal(err)
		}

		// ephemeral + sequential.
		if _, err := conn.Create("/q", nil, 0, acl); err != nil {
			t.Fatal(err)
		}
		p1, err1 := conn.Create("/q/job-", []byte("1"), zk.FlagSequence, acl)
		p2, err2 := conn.Create("/q/job-", []byte("2"), zk.FlagEphemeralSequential, acl)
		if err1 != nil || err2 != nil || p1 != "/q/job-0000000000" || p2 != "/q/job-0000000001" {
			t.Fatalf("sequential creates: %q %v, %q %v", p1, err1, p2, err2)
		}
		_, est, err := conn.Get(p2)
		if err != nil || est.EphemeralOwner != conn.SessionID() {
			t.Fatalf("ephemeral owner %x, session %x, %v", est.EphemeralOwner, conn.SessionID(), err)
		}
		if _, err := conn.Create(p2+"/kid", nil, 0, acl); !errors.Is(err, zk.ErrNoChildrenForEphemerals) {
			t.Fatalf("child of an ephemeral: %v", err)
		}
		// A second client sees the ephemeral; after the first closes it is gone.
		other, _ := connectZK(t, addrs[1:2], 10*time.Second)
		if _, err := other.Sync("/q"); err != nil {
			t.Fatal(err)
		}
		if ok, _, err := other.Exists(p2); err != nil || !ok {
			t.Fatalf("other client: exists %s = %v, %v", p2, ok, err)
		}
		conn.Close()
		testkit.Eventually(t, 10*time.Second, "the ephemeral goes with its session", func() bool {
			ok, _, err := other.Exists(p2)
			return err == nil && !ok
		})
	})
}

func TestGoZKMulti(t *testing.T) {
	backends(t, func(t *testing.T, addrs []string) {
		conn, _ := connectZK(t, addrs[:1], 10*time.Second)
		acl := zk.WorldACL(zk.PermAll)
		res, err := conn.Multi(
			&zk.CreateRequest{Path: "/m", Data: []byte("a"), Acl: acl},
			&zk.CreateRequest{Path: "/m/kid", Acl: acl}, // sees the op before it
			&zk.SetDataRequest{Path: "/m", Data: []byte("b"), Version: 0},
			&zk.CheckVersionRequest{Path: "/m", Version: 1},
			&zk.DeleteRequest{Path: "/m/kid", Version: -1},
		)
		if err != nil || len(res) != 5 {
			t.Fatalf("multi: %v %v", res, err)
		}
		if res[0].String != "/m" || res[1].String != "/m/kid" || res[2].Stat == nil || res[2].Stat.Version != 1 {
			t.Fatalf("multi results: %+v", res)
		}
		for _, r := range res {
			if r.Error != nil {
				t.Fatalf("multi result error: %+v", res)
			}
		}
		// One zxid for the whole transaction.
		_, st, _ := conn.Get("/m")
		if st.Czxid != st.Mzxid || st.Pzxid != st.Czxid {
			t.Fatalf("multi did not share one zxid: %+v", st)
		}

		// Failure: per-op results, nothing applied.
		res, err = conn.Multi(
			&zk.CreateRequest{Path: "/m2", Acl: acl},
			&zk.CreateRequest{Path: "/m", Acl: acl},
			&zk.SetDataRequest{Path: "/m", Data: []byte("c"), Version: -1},
		)
		if !errors.Is(err, zk.ErrNodeExists) || len(res) != 3 {
			t.Fatalf("failed multi: %+v, %v", res, err)
		}
		if res[0].Error != nil || !errors.Is(res[1].Error, zk.ErrNodeExists) || res[2].Error == nil ||
			res[2].Error.Error() != "unknown error: -2" {
			t.Fatalf("failed multi per-op results: %v / %v / %v", res[0].Error, res[1].Error, res[2].Error)
		}
		if ok, _, _ := conn.Exists("/m2"); ok {
			t.Fatal("a failed multi left /m2 behind")
		}
		if res, err := conn.Multi(&zk.CheckVersionRequest{Path: "/m", Version: 7}); !errors.Is(err, zk.ErrBadVersion) || len(res) != 1 {
			t.Fatalf("failed check: %+v %v", res, err)
		}
	})
}

func TestGoZKACL(t *testing.T) {
	backends(t, func(t *testing.T, addrs []string) {
		owner, _ := connectZK(t, addrs[:1], 10*time.Second)
		stranger, _ := connectZK(t, addrs[1:2], 10*time.Second)
		if err := owner.AddAuth("digest", []byte("alice:secret")); err != nil {
			t.Fatal(err)
		}
		acl := zk.DigestACL(zk.PermAll, "alice", "secret")
		if _, err := owner.Create("/secure", []byte("s"), 0, acl); err != nil {
			t.Fatal(err)
		}
		if data, _, err := owner.Get("/secure"); err != nil || string(data) != "s" {
			t.Fatalf("owner get: %q %v", data, err)
		}
		got, _, err := owner.GetACL("/secure")
		if err != nil || len(got) != 1 || got[0] != acl[0] {
			t.Fatalf("getACL = %+v, %v; want %+v", got, err, acl)
		}
		if _, err := stranger.Sync("/secure"); err != nil {
			t.Fatal(err)
		}
		if _, _, err := stranger.Get("/secure"); !errors.Is(err, zk.ErrNoAuth) {
			t.Fatalf("stranger get: %v", err)
		}
		if _, err := stranger.Set("/secure", nil, -1); !errors.Is(err, zk.ErrNoAuth) {
			t.Fatalf("stranger set: %v", err)
		}
		if err := stranger.AddAuth("digest", []byte("alice:wrong")); err != nil {
			t.Fatal(err) // digest auth never fails; it just grants another id
		}
		if _, _, err := stranger.Get("/secure"); !errors.Is(err, zk.ErrNoAuth) {
			t.Fatalf("stranger with the wrong password: %v", err)
		}
		if err := stranger.AddAuth("digest", []byte("alice:secret")); err != nil {
			t.Fatal(err)
		}
		if data, _, err := stranger.Get("/secure"); err != nil || string(data) != "s" {
			t.Fatalf("stranger after auth: %q %v", data, err)
		}
		// An unsupported scheme fails the auth and closes the connection;
		// go-zookeeper reconnects and resubmits only the successful creds.
		if err := stranger.AddAuth("kerberos", []byte("x")); err == nil {
			t.Fatal("auth with an unknown scheme succeeded")
		}
		// The "auth" ACL scheme expands to the caller's identities.
		if _, err := owner.Create("/mine", nil, 0, zk.AuthACL(zk.PermAll)); err != nil {
			t.Fatal(err)
		}
		if got, _, err := owner.GetACL("/mine"); err != nil || len(got) != 1 || got[0].Scheme != "digest" {
			t.Fatalf("auth ACL = %+v, %v", got, err)
		}
	})
}

// A client without READ on a node gets no event for it (ZooKeeper 3.8.4+),
// even from a watch it was allowed to set.
func TestGoZKWatchEventsFilteredByACL(t *testing.T) {
	backends(t, func(t *testing.T, addrs []string) {
		owner, _ := connectZK(t, addrs[:1], 10*time.Second)
		stranger, _ := connectZK(t, addrs[1:2], 10*time.Second)
		if err := owner.AddAuth("digest", []byte("alice:secret")); err != nil {
			t.Fatal(err)
		}
		private := zk.DigestACL(zk.PermAll, "alice", "secret")
		if _, err := owner.Create("/vault", nil, 0, private); err != nil {
			t.Fatal(err)
		}
		if _, err := stranger.Sync("/vault"); err != nil {
			t.Fatal(err)
		}
		// exists on an absent node is allowed, so both watches are set.
		_, _, hidden, err := stranger.ExistsW("/vault/key")
		if err != nil {
			t.Fatal(err)
		}
		_, _, open, err := stranger.ExistsW("/open")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := owner.Create("/vault/key", []byte("k"), 0, private); err != nil {
			t.Fatal(err)
		}
		if _, err := owner.Create("/open", nil, 0, zk.WorldACL(zk.PermAll)); err != nil {
			t.Fatal(err)
		}
		select {
		case ev := <-open:
			if ev.Type != zk.EventNodeCreated || ev.Path != "/open" {
				t.Fatalf("/open watch: %+v", ev)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no event for /open")
		}
		// Events arrive in zxid order: had /vault/key's been sent, it would be here now.
		select {
		case ev := <-hidden:
			t.Fatalf("stranger saw an event for a node it cannot read: %+v", ev)
		default:
		}
	})
}

func TestGoZKWatches(t *testing.T) {
	backends(t, func(t *testing.T, addrs []string) {
		// The watcher and the writer are on different replicas in the cluster case.
		watcher, _ := connectZK(t, addrs[:1], 10*time.Second)
		writer, _ := connectZK(t, addrs[1:2], 10*time.Second)
		acl := zk.WorldACL(zk.PermAll)
		wait := func(ch <-chan zk.Event, typ zk.EventType, path string) {
			t.Helper()
			select {
			case ev := <-ch:
				if ev.Type != typ || ev.Path != path || ev.Err != nil {
					t.Fatalf("event %+v, want %v on %s", ev, typ, path)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("no %v event on %s", typ, path)
			}
		}

		// exists on an absent node, fired by a create through the other server.
		ok, _, ch, err := watcher.ExistsW("/w")
		if err != nil || ok {
			t.Fatalf("existsW /w = %v, %v", ok, err)
		}
		if _, err := writer.Create("/w", []byte("1"), 0, acl); err != nil {
			t.Fatal(err)
		}
		wait(ch, zk.EventNodeCreated, "/w")

		// data watch.
		_, _, ch, err = watcher.GetW("/w")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := writer.Set("/w", []byte("2"), -1); err != nil {
			t.Fatal(err)
		}
		wait(ch, zk.EventNodeDataChanged, "/w")
		// The event came before the data: a read now sees the new value.
		if data, _, err := watcher.Get("/w"); err != nil || string(data) != "2" {
			t.Fatalf("get after the event: %q %v", data, err)
		}

		// child watch.
		_, _, ch, err = watcher.ChildrenW("/w")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := writer.Create("/w/kid", nil, zk.FlagEphemeral, acl); err != nil {
			t.Fatal(err)
		}
		wait(ch, zk.EventNodeChildrenChanged, "/w")

		// delete fires data and child watches with NodeDeleted.
		_, _, dch, err := watcher.GetW("/w/kid")
		if err != nil {
			t.Fatal(err)
		}
		if err := writer.Delete("/w/kid", -1); err != nil {
			t.Fatal(err)
		}
		wait(dch, zk.EventNodeDeleted, "/w/kid")

		// A watch set by the writer itself fires before the write's reply.
		_, _, ch, err = writer.GetW("/w")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := writer.Set("/w", []byte("3"), -1); err != nil {
			t.Fatal(err)
		}
		select {
		case ev := <-ch:
			if ev.Type != zk.EventNodeDataChanged {
				t.Fatalf("self-triggered event %+v", ev)
			}
		default:
			t.Fatal("the write's reply arrived before its own watch event")
		}
	})
}

// A client connected to all three servers survives the loss of the one it
// uses: it resumes its session on another replica and keeps its ephemeral.
// TestGoZKWatchRearmAfterFailover (gozk_rearm_test.go) adds a watch to this
// scenario; it cannot run under the race detector, see there.
func TestGoZKSessionResume(t *testing.T) { resumeAfterFailover(t, false) }

// resumeAfterFailover runs the failover scenario: the client's server (or its
// whole replica) goes, the client resumes its session on another replica and
// keeps its ephemeral; with watch, a data watch set before is re-armed through
// setWatches and fires for a write made through the third replica.
func resumeAfterFailover(t *testing.T, watch bool) {
	for _, stopReplica := range []bool{false, true} {
		name := "server closed"
		if stopReplica {
			name = "replica stopped"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c := newCluster(t, Config{})
			conn, rec := connectZK(t, c.addrs, 4*time.Second)
			acl := zk.WorldACL(zk.PermAll)
			sid := conn.SessionID()
			if _, err := conn.Create("/eph", []byte("e"), zk.FlagEphemeral, acl); err != nil {
				t.Fatal(err)
			}
			var wch <-chan zk.Event
			if watch {
				if _, err := conn.Create("/watched", nil, 0, acl); err != nil {
					t.Fatal(err)
				}
				var err error
				if _, _, wch, err = conn.GetW("/watched"); err != nil {
					t.Fatal(err)
				}
			}
			first := c.index(conn.Server())
			if first < 0 {
				t.Fatalf("connected to unknown server %q", conn.Server())
			}
			c.srvs[first].Close()
			if stopReplica {
				c.Stop(first)
			}
			testkit.Eventually(t, 15*time.Second, "reconnected to another server", func() bool {
				i := c.index(conn.Server())
				return i >= 0 && i != first && conn.State() == zk.StateHasSession && rec.count(zk.StateHasSession) >= 2
			})
			if conn.SessionID() != sid {
				t.Fatalf("session id changed from %x to %x", sid, conn.SessionID())
			}
			if rec.count(zk.StateExpired) != 0 {
				t.Fatal("the session expired")
			}
			ok, st, err := conn.Exists("/eph")
			if err != nil || !ok || st.EphemeralOwner != sid {
				t.Fatalf("ephemeral after failover: %v %+v %v", ok, st, err)
			}
			if !watch {
				return
			}
			// The data watch was re-armed through setWatches on the new server.
			other := (first + 1) % 3
			if c.index(conn.Server()) == other {
				other = (first + 2) % 3
			}
			writer, _ := connectZK(t, c.addrs[other:other+1], 4*time.Second)
			if _, err := writer.Set("/watched", []byte("x"), -1); err != nil {
				t.Fatal(err)
			}
			select {
			case ev := <-wch:
				if ev.Type != zk.EventNodeDataChanged || ev.Path != "/watched" {
					t.Fatalf("re-armed watch delivered %+v", ev)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("re-armed watch did not fire")
			}
		})
	}
}

// A client cut off for longer than its session timeout learns, when it
// reconnects, that its session expired; its ephemerals are gone by then.
func TestGoZKSessionExpiry(t *testing.T) {
	t.Parallel()
	c := newCluster(t, Config{})
	gate := &dialGate{target: c.addrs[0]}
	conn, rec := connectZKDial(t, c.addrs[:1], time.Second, gate.dial)
	if _, err := conn.Create("/exp", nil, zk.FlagEphemeral, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
	gate.set(true, c.addrs[1])
	c.srvs[0].Close()
	// The session is detached and expires on the ensemble after its timeout.
	s := c.Session(1)
	ctx := testkit.Context(t)
	testkit.Eventually(t, 15*time.Second, "the ephemeral of the expired session is deleted", func() bool {
		if err := s.Sync(ctx, "/"); err != nil {
			return false
		}
		ok, _, err := s.Exists(ctx, "/exp")
		return err == nil && !ok
	})
	gate.set(false, c.addrs[1])
	testkit.Eventually(t, 15*time.Second, "go-zookeeper reports the session expired", func() bool {
		return rec.count(zk.StateExpired) > 0
	})
}

// dialGate is a go-zookeeper Dialer that can refuse every dial (the client
// is cut off) and redirects dials to one target address.
type dialGate struct {
	mu      sync.Mutex // guards blocked, target
	blocked bool
	target  string
}

func (g *dialGate) set(blocked bool, target string) {
	g.mu.Lock()
	g.blocked, g.target = blocked, target
	g.mu.Unlock()
}

func (g *dialGate) dial(network, _ string, timeout time.Duration) (net.Conn, error) {
	g.mu.Lock()
	blocked, target := g.blocked, g.target
	g.mu.Unlock()
	if blocked {
		return nil, errors.New("cut off")
	}
	return net.DialTimeout(network, target, timeout)
}
