package zoo_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zooraft/zoo"
	"github.com/zooraft/zoo/internal/testkit"
	"github.com/zooraft/zoo/zootest"
)

// Integration tests of a whole ensemble: replication, sessions, failover.
// They run on zootest's in-process clusters (raft's in-memory transport, real
// bbolt data dirs); ensemble_membership_test.go uses real TCP.

const tick = 100 * time.Millisecond

// newCluster starts an n-replica cluster with a 100ms tick.
func newCluster(t *testing.T, n int, opts zootest.Options) *zootest.Cluster {
	t.Helper()
	if opts.TickTime == 0 {
		opts.TickTime = tick
	}
	return zootest.New(t, n, opts)
}

// sess opens a session on replica i as c.Session does, riding out elections.
func sess(t *testing.T, c *zootest.Cluster, i int, opts ...zoo.SessionOption) *zoo.Session {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var s *zoo.Session
	if err := zootest.Retry(ctx, func() (err error) { s, err = c.Replica(i).NewSession(ctx, opts...); return err }); err != nil {
		t.Fatalf("session on replica %d: %v", i, err)
	}
	return s
}

// serverSess opens a server session on replica i whose watches report to w,
// and whose client keeps pinging (Touch) until the test ends, as a
// connected ZooKeeper client does.
func serverSess(t *testing.T, c *zootest.Cluster, i int, w zoo.Watcher, opts ...zoo.SessionOption) *zoo.ServerSession {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var s *zoo.ServerSession
	if err := zootest.Retry(ctx, func() (err error) { s, err = c.Replica(i).NewServerSession(ctx, w, opts...); return err }); err != nil {
		t.Fatalf("server session on replica %d: %v", i, err)
	}
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	go func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				s.Touch()
			case <-stop:
				return
			}
		}
	}()
	return s
}

// mustCreate creates a node (riding out elections), failing the test on error.
func mustCreate(t *testing.T, ctx context.Context, s *zoo.Session, path string, data []byte, mode zoo.CreateMode) {
	t.Helper()
	if err := zootest.Retry(ctx, func() error {
		_, err := s.Create(ctx, path, data, mode, nil)
		return err
	}, zoo.ErrNodeExists); err != nil {
		t.Fatalf("create %s: %v", path, err)
	}
}

// znodeInfo is what dumpTree records of one node.
type znodeInfo struct {
	Data     string
	Null     bool // nil data, as opposed to empty
	Stat     zoo.Stat
	Children []string
}

// dumpTree reads every node reachable from "/" through s.
func dumpTree(ctx context.Context, s *zoo.Session) (map[string]znodeInfo, error) {
	out := map[string]znodeInfo{}
	var walk func(p string) error
	walk = func(p string) error {
		data, st, err := s.Get(ctx, p)
		if err != nil {
			return err
		}
		kids, _, err := s.Children(ctx, p)
		if err != nil {
			return err
		}
		out[p] = znodeInfo{Data: string(data), Null: data == nil, Stat: st, Children: kids}
		for _, k := range kids {
			if err := walk(join(p, k)); err != nil {
				return err
			}
		}
		return nil
	}
	return out, walk("/")
}

func join(parent, name string) string {
	if parent == "/" {
		return "/" + name
	}
	return parent + "/" + name
}

// syncedDump syncs replica i with the leader and dumps its tree.
func syncedDump(t *testing.T, ctx context.Context, c *zootest.Cluster, i int) map[string]znodeInfo {
	t.Helper()
	s := sess(t, c, i)
	defer s.Close(ctx)
	var d map[string]znodeInfo
	err := zootest.Retry(ctx, func() (err error) {
		if err := s.Sync(ctx, "/"); err != nil {
			return err
		}
		d, err = dumpTree(ctx, s)
		return err
	})
	if err != nil {
		t.Fatalf("replica %d: sync and dump: %v", i, err)
	}
	return d
}

// diffTrees describes how two dumps differ ("" if they are equal).
func diffTrees(a, b map[string]znodeInfo) string {
	var paths []string
	for p := range a {
		paths = append(paths, p)
	}
	for p := range b {
		if _, ok := a[p]; !ok {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	var out []string
	for _, p := range paths {
		x, okx := a[p]
		y, oky := b[p]
		switch {
		case !okx:
			out = append(out, "only in second: "+p)
		case !oky:
			out = append(out, "only in first: "+p)
		case !reflect.DeepEqual(x, y):
			out = append(out, fmt.Sprintf("%s: %+v != %+v", p, x, y))
		}
		if len(out) >= 10 {
			out = append(out, "...")
			break
		}
	}
	return strings.Join(out, "\n")
}

// assertAllAgree syncs every running replica and checks their trees are equal.
func assertAllAgree(t *testing.T, ctx context.Context, c *zootest.Cluster) map[string]znodeInfo {
	t.Helper()
	var first map[string]znodeInfo
	firstIdx := -1
	for i := 0; i < c.Size(); i++ {
		if c.Replica(i) == nil {
			continue
		}
		d := syncedDump(t, ctx, c, i)
		if first == nil {
			first, firstIdx = d, i
			continue
		}
		if diff := diffTrees(first, d); diff != "" {
			t.Fatalf("replicas %d and %d disagree:\n%s", firstIdx, i, diff)
		}
	}
	return first
}

// existsOn syncs a fresh session on replica i and reports whether path exists.
func existsOn(t *testing.T, ctx context.Context, c *zootest.Cluster, i int, path string) bool {
	t.Helper()
	s := sess(t, c, i)
	defer s.Close(ctx)
	var ok bool
	err := zootest.Retry(ctx, func() (err error) {
		if err := s.Sync(ctx, "/"); err != nil {
			return err
		}
		ok, _, err = s.Exists(ctx, path)
		return err
	})
	if err != nil {
		t.Fatalf("replica %d: exists %s: %v", i, path, err)
	}
	return ok
}

func followers(c *zootest.Cluster, leader int) []int {
	var out []int
	for i := 0; i < c.Size(); i++ {
		if i != leader && c.Replica(i) != nil {
			out = append(out, i)
		}
	}
	return out
}

func TestReplicationWriteAnywhereReadEverywhere(t *testing.T) {
	c := newCluster(t, 3, zootest.Options{})
	ctx := testkit.Context(t)
	leader := c.WaitLeader()
	fs := followers(c, leader)
	for _, tc := range []struct {
		name   string
		writer int
	}{
		{"from leader", leader},
		{"from follower", fs[0]},
		{"from other follower", fs[1]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := sess(t, c, tc.writer)
			defer w.Close(ctx)
			path := "/rw-" + strings.ReplaceAll(tc.name, " ", "-")
			p, cst, err := w.CreateWithStat(ctx, zoo.CreateOp{Path: path, Data: []byte("v1")})
			if err != nil || p != path {
				t.Fatalf("create: %q %v", p, err)
			}
			sst, err := w.Set(ctx, path, []byte("v2"), 0)
			if err != nil {
				t.Fatal(err)
			}
			if sst.Version != 1 || sst.Czxid != cst.Czxid || sst.Mzxid <= cst.Mzxid {
				t.Fatalf("stat after set %+v, after create %+v", sst, cst)
			}
			for i := 0; i < c.Size(); i++ {
				r := sess(t, c, i)
				var data []byte
				var st zoo.Stat
				err := zootest.Retry(ctx, func() (err error) {
					if err := r.Sync(ctx, "/"); err != nil {
						return err
					}
					data, st, err = r.Get(ctx, path)
					return err
				})
				if err != nil || string(data) != "v2" || st != sst {
					t.Fatalf("replica %d: %q %+v %v, want v2 %+v", i, data, st, err, sst)
				}
				r.Close(ctx)
			}
		})
	}
}

func TestReplicationConcurrentWritersAgree(t *testing.T) {
	c := newCluster(t, 3, zootest.Options{})
	ctx := testkit.Context(t)
	root := sess(t, c, 0)
	for _, p := range []string{"/conc", "/conc/seq"} {
		mustCreate(t, ctx, root, p, nil, zoo.ModePersistent)
	}

	// A write whose outcome is unknown (a leader stepped down under it) is
	// counted, not retried: the invariants below hold either way.
	const writersPerReplica, opsPerWriter = 3, 15
	var (
		mu       sync.Mutex
		acked    = map[string]string{} // path -> data it must hold
		created  = map[string]bool{}   // acknowledged creates whose set was unknown
		seqNames []string
		unknown  int // writes with unknown outcome
		wg       sync.WaitGroup
	)
	for i := 0; i < c.Size(); i++ {
		for w := 0; w < writersPerReplica; w++ {
			s := sess(t, c, i)
			wg.Add(1)
			go func() {
				defer wg.Done()
				check := func(what string, err error) bool {
					if err == nil {
						return true
					}
					if !zootest.UnknownOutcome(err) {
						t.Errorf("%s: %v", what, err)
					}
					mu.Lock()
					unknown++
					mu.Unlock()
					return false
				}
				for k := 0; k < opsPerWriter && !t.Failed(); k++ {
					path := fmt.Sprintf("/conc/r%d-w%d-%02d", i, w, k)
					if _, err := s.Create(ctx, path, []byte("created"), zoo.ModePersistent, nil); !check("create "+path, err) {
						continue
					}
					data := fmt.Sprintf("set by %d/%d", i, w)
					if _, err := s.Set(ctx, path, []byte(data), 0); check("set "+path, err) {
						mu.Lock()
						acked[path] = data
						mu.Unlock()
					} else {
						mu.Lock()
						created[path] = true
						mu.Unlock()
					}
					seq, err := s.Create(ctx, "/conc/seq/n-", nil, zoo.ModePersistentSequential, nil)
					if check("create sequential", err) {
						mu.Lock()
						seqNames = append(seqNames, seq)
						mu.Unlock()
					}
				}
			}()
		}
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	if unknown > 0 {
		t.Logf("%d writes with unknown outcome (a leader change)", unknown)
	}

	tree := assertAllAgree(t, ctx, c)
	for p, want := range acked {
		n, ok := tree[p]
		if !ok || n.Data != want || n.Stat.Version != 1 {
			t.Errorf("%s: %+v (present %v), want data %q version 1", p, n, ok, want)
		}
	}
	for p := range created {
		if _, ok := tree[p]; !ok {
			t.Errorf("acknowledged create %s missing", p)
		}
	}
	total := c.Size() * writersPerReplica * opsPerWriter
	if len(acked)+len(created) < total-unknown || len(acked) == 0 {
		t.Fatalf("%d+%d acknowledged of %d writes, %d unknown", len(acked), len(created), total, unknown)
	}
	// Every committed sequential create got the next suffix: the children of
	// /conc/seq are n-0000000000 up without a gap, and every acknowledged
	// name is among them.
	seq := tree["/conc/seq"]
	n := int(seq.Stat.NumChildren)
	if n < len(seqNames) || n > len(seqNames)+unknown || int(seq.Stat.Cversion) != n || len(seq.Children) != n {
		t.Fatalf("%d acknowledged sequential creates (%d unknown writes); parent %+v", len(seqNames), unknown, seq.Stat)
	}
	for k, name := range seq.Children {
		if want := fmt.Sprintf("n-%010d", k); name != want {
			t.Fatalf("sequential child %d = %s, want %s", k, name, want)
		}
	}
	seen := map[string]bool{}
	for _, name := range seqNames {
		if _, ok := tree[name]; !ok || seen[name] {
			t.Fatalf("acknowledged sequential name %s missing or given twice", name)
		}
		seen[name] = true
	}
	if got, want := len(tree["/conc"].Children), len(acked)+len(created)+1; got < want {
		t.Fatalf("/conc has %d children, want at least %d", got, want)
	}
}

func TestEphemerals(t *testing.T) {
	t.Run("Session.Close removes them everywhere", func(t *testing.T) {
		c := newCluster(t, 3, zootest.Options{})
		ctx := testkit.Context(t)
		f := followers(c, c.WaitLeader())[0]
		owner := sess(t, c, f)
		mustCreate(t, ctx, owner, "/eph", nil, zoo.ModePersistent)
		e1 := "/eph/e1"
		mustCreate(t, ctx, owner, e1, []byte("x"), zoo.ModeEphemeral)
		e2, err := owner.Create(ctx, "/eph/e-", nil, zoo.ModeEphemeralSequential, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := owner.GetEphemerals(ctx, "/eph"); err != nil || !slices.Equal(got, []string{e2, e1}) {
			t.Fatalf("GetEphemerals = %v, %v", got, err)
		}
		for i := 0; i < c.Size(); i++ {
			s := sess(t, c, i)
			for _, p := range []string{e1, e2} {
				var ok bool
				var st zoo.Stat
				err := zootest.Retry(ctx, func() (err error) {
					if err := s.Sync(ctx, "/"); err != nil {
						return err
					}
					ok, st, err = s.Exists(ctx, p)
					return err
				})
				if err != nil || !ok || st.EphemeralOwner != owner.ID() {
					t.Fatalf("replica %d: %s: %v %+v %v", i, p, ok, st, err)
				}
			}
			s.Close(ctx)
		}

		if err := zootest.Retry(ctx, func() error { return owner.Close(ctx) }); err != nil {
			t.Fatal(err)
		}
		select {
		case <-owner.Done():
		default:
			t.Fatal("Done not closed after Close")
		}
		if !errors.Is(owner.Err(), zoo.ErrClosed) || owner.State() != zoo.StateClosed {
			t.Fatalf("after Close: Err %v, State %v", owner.Err(), owner.State())
		}
		tree := assertAllAgree(t, ctx, c)
		if n := tree["/eph"]; len(n.Children) != 0 || n.Stat.NumChildren != 0 {
			t.Fatalf("/eph after close: %+v", n)
		}
	})

	t.Run("stopped replica's sessions expire on the survivors", func(t *testing.T) {
		c := newCluster(t, 3, zootest.Options{})
		ctx := testkit.Context(t)
		leader := c.WaitLeader()
		fs := followers(c, leader)
		victim, survivor := fs[0], fs[1]
		const timeout = 500 * time.Millisecond
		lost := sess(t, c, victim, zoo.WithSessionTimeout(timeout))
		kept := sess(t, c, survivor, zoo.WithSessionTimeout(timeout))
		if lost.Timeout() != timeout {
			t.Fatalf("negotiated timeout %v, want %v", lost.Timeout(), timeout)
		}
		mustCreate(t, ctx, lost, "/lost", nil, zoo.ModeEphemeral)
		mustCreate(t, ctx, kept, "/kept", nil, zoo.ModeEphemeral)

		c.Stop(victim)
		select {
		case <-lost.Done():
		default:
			t.Fatal("Done not closed after the replica stopped")
		}
		if !errors.Is(lost.Err(), zoo.ErrClosed) {
			t.Fatalf("Err = %v, want ErrClosed", lost.Err())
		}
		if _, _, err := lost.Get(ctx, "/lost"); !errors.Is(err, zoo.ErrClosed) {
			t.Fatalf("Get on a stopped replica: %v, want ErrClosed", err)
		}
		if _, err := lost.Create(ctx, "/lost2", nil, zoo.ModePersistent, nil); !errors.Is(err, zoo.ErrClosed) {
			t.Fatalf("Create on a stopped replica: %v, want ErrClosed", err)
		}

		watcher := sess(t, c, leader)
		testkit.Eventually(t, 6*timeout, "the stopped replica's ephemeral is removed", func() bool {
			ok, _, err := watcher.Exists(ctx, "/lost")
			return err == nil && !ok
		})
		if kept.Err() != nil {
			t.Fatalf("surviving session ended: %v", kept.Err())
		}
		for _, i := range []int{leader, survivor} {
			if existsOn(t, ctx, c, i, "/lost") || !existsOn(t, ctx, c, i, "/kept") {
				t.Fatalf("replica %d: wrong ephemerals after expiry", i)
			}
		}
		assertAllAgree(t, ctx, c)
	})
}

func TestSessionExpiryVisibleToIsolatedOwner(t *testing.T) {
	c := newCluster(t, 3, zootest.Options{})
	ctx := testkit.Context(t)
	leader := c.WaitLeader()
	f := followers(c, leader)[0]
	const timeout = 400 * time.Millisecond
	s := sess(t, c, f, zoo.WithSessionTimeout(timeout))
	mustCreate(t, ctx, s, "/persist", []byte("p"), zoo.ModePersistent)
	mustCreate(t, ctx, s, "/mine", nil, zoo.ModeEphemeral)
	obs := sess(t, c, leader)

	c.Isolate(f)
	// The leader expires the session: nobody reports it alive any more.
	testkit.Eventually(t, 10*timeout, "the leader expires the isolated session", func() bool {
		ok, _, err := obs.Exists(ctx, "/mine")
		return err == nil && !ok
	})

	// The isolated replica, cut off, refuses to serve: reads, writes, sync and
	// new sessions all say ErrNotServing, within a bounded time.
	testkit.Eventually(t, 5*time.Second, "the isolated replica stops serving reads", func() bool {
		_, _, err := s.Get(ctx, "/persist")
		return errors.Is(err, zoo.ErrNotServing)
	})
	bounded, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	calls := []struct {
		name string
		call func() error
	}{
		{"Get", func() error { _, _, err := s.Get(bounded, "/persist"); return err }},
		{"Exists", func() error { _, _, err := s.Exists(bounded, "/persist"); return err }},
		{"Children", func() error { _, _, err := s.Children(bounded, "/"); return err }},
		{"MultiRead", func() error { _, err := s.MultiRead(bounded, zoo.GetDataOp{Path: "/persist"}); return err }},
		{"Create", func() error {
			_, err := s.Create(bounded, "/while-isolated", nil, zoo.ModePersistent, nil)
			return err
		}},
		{"Set", func() error { _, err := s.Set(bounded, "/persist", []byte("isolated"), -1); return err }},
		{"Delete", func() error { return s.Delete(bounded, "/persist", -1) }},
		{"Sync", func() error { return s.Sync(bounded, "/") }},
		{"NewSession", func() error { _, err := c.Replica(f).NewSession(bounded); return err }},
	}
	for _, tc := range calls {
		t.Run("isolated "+tc.name, func(t *testing.T) {
			if err := tc.call(); !errors.Is(err, zoo.ErrNotServing) {
				t.Fatalf("%s on an isolated replica: %v, want ErrNotServing", tc.name, err)
			}
		})
	}
	if s.Err() != nil {
		t.Fatalf("isolated replica already knows its session ended: %v", s.Err())
	}

	c.Heal()
	select {
	case <-s.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("session not ended within 10s of healing")
	}
	if !errors.Is(s.Err(), zoo.ErrSessionExpired) || s.State() != zoo.StateExpired {
		t.Fatalf("after heal: Err %v, State %v", s.Err(), s.State())
	}
	if _, _, err := s.Get(ctx, "/persist"); !errors.Is(err, zoo.ErrSessionExpired) {
		t.Fatalf("Get after expiry: %v", err)
	}
	if _, err := s.Create(ctx, "/after", nil, zoo.ModePersistent, nil); !errors.Is(err, zoo.ErrSessionExpired) {
		t.Fatalf("Create after expiry: %v", err)
	}
	if err := s.Sync(ctx, "/"); !errors.Is(err, zoo.ErrSessionExpired) {
		t.Fatalf("Sync after expiry: %v", err)
	}

	tree := assertAllAgree(t, ctx, c)
	if _, ok := tree["/mine"]; ok {
		t.Fatal("expired session's ephemeral survived")
	}
	if _, ok := tree["/while-isolated"]; ok {
		t.Fatal("a write refused while isolated was applied")
	}
	if n := tree["/persist"]; n.Data != "p" || n.Stat.Version != 0 {
		t.Fatalf("/persist changed while isolated: %+v", n)
	}
}

func TestFailoverLosesNoAcknowledgedWrite(t *testing.T) {
	c := newCluster(t, 3, zootest.Options{})
	ctx := testkit.Context(t)
	leader := c.WaitLeader()
	setup := sess(t, c, leader)
	mustCreate(t, ctx, setup, "/fo", nil, zoo.ModePersistent)
	setup.Close(ctx)

	// Survivors' sessions have a timeout well above the failover time; the
	// test keeps running for more than two timeouts after the failover, so a
	// new leader that did not renew them would expire them.
	const longTimeout = time.Second
	const shortTimeout = 500 * time.Millisecond
	owners := map[int]*zoo.Session{}
	for _, i := range followers(c, leader) {
		owners[i] = sess(t, c, i, zoo.WithSessionTimeout(longTimeout))
		mustCreate(t, ctx, owners[i], fmt.Sprintf("/fo-eph-%d", i), nil, zoo.ModeEphemeral)
	}
	doomed := sess(t, c, leader, zoo.WithSessionTimeout(shortTimeout))
	mustCreate(t, ctx, doomed, "/fo-eph-old-leader", nil, zoo.ModeEphemeral)

	var (
		mu    sync.Mutex
		acked []string
		after int // acknowledged by survivors after the new leader was seen
		phase int // 0 before failover, 1 after
		wg    sync.WaitGroup
	)
	stop := make(chan struct{})
	writer := func(i, w int, s *zoo.Session) {
		defer wg.Done()
		for k := 0; ; k++ {
			select {
			case <-stop:
				return
			default:
			}
			path := fmt.Sprintf("/fo/r%d-w%d-%04d", i, w, k)
			_, err := s.Create(ctx, path, []byte(path), zoo.ModePersistent, nil)
			switch {
			case err == nil:
				mu.Lock()
				acked = append(acked, path)
				if phase == 1 {
					after++
				}
				mu.Unlock()
			case errors.Is(err, zoo.ErrClosed):
				return // this writer's replica was stopped
			case zootest.UnknownOutcome(err):
				// May or may not have happened: not recorded, and the next
				// attempt uses a new path.
			default:
				t.Errorf("writer %d/%d: %s: %v", i, w, path, err)
				return
			}
		}
	}
	for i := 0; i < c.Size(); i++ {
		for w := 0; w < 2; w++ {
			s := sess(t, c, i, zoo.WithSessionTimeout(longTimeout))
			wg.Add(1)
			go writer(i, w, s)
		}
	}
	count := func() (int, int) {
		mu.Lock()
		defer mu.Unlock()
		return len(acked), after
	}
	testkit.Eventually(t, 20*time.Second, "writes before the failover", func() bool { n, _ := count(); return n >= 30 })

	c.Stop(leader)
	if !errors.Is(doomed.Err(), zoo.ErrClosed) {
		t.Fatalf("session on the stopped leader: Err %v, want ErrClosed", doomed.Err())
	}
	newLeader := c.WaitLeader()
	if newLeader == leader {
		t.Fatal("stopped replica still leads")
	}
	failoverAt := time.Now()
	mu.Lock()
	phase = 1
	mu.Unlock()
	// Writes continue, and for longer than two session timeouts.
	testkit.Eventually(t, 20*time.Second, "writes after the failover", func() bool {
		_, n := count()
		return n >= 30 && time.Since(failoverAt) > 2*longTimeout
	})
	close(stop)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	// The dead leader's short session expires under the new leader...
	obs := sess(t, c, newLeader)
	testkit.Eventually(t, 10*shortTimeout+2*time.Second, "the old leader's session expires", func() bool {
		ok, _, err := obs.Exists(ctx, "/fo-eph-old-leader")
		return err == nil && !ok
	})
	// ...while the survivors' sessions live on with their ephemerals.
	for i, s := range owners {
		if s.Err() != nil {
			t.Fatalf("session on surviving replica %d ended: %v", i, s.Err())
		}
		for j := range owners {
			if !existsOn(t, ctx, c, j, fmt.Sprintf("/fo-eph-%d", i)) {
				t.Fatalf("replica %d lost the ephemeral of a live session on %d", j, i)
			}
		}
	}

	checkAcked := func(label string) {
		t.Helper()
		tree := assertAllAgree(t, ctx, c)
		for _, p := range acked {
			if n, ok := tree[p]; !ok || n.Data != p {
				t.Fatalf("%s: acknowledged write %s lost (%+v)", label, p, n)
			}
		}
	}
	checkAcked("survivors")
	t.Logf("%d acknowledged writes, %d after the failover", len(acked), after)

	// The restarted replica soon hears the leader's heartbeats, but raft's
	// replication to it may still be backing off from the failures while it
	// was down (uncapped: up to 10ms<<10): wait until it has caught up.
	restartedAt := time.Now()
	if err := c.Restart(leader).WaitServing(ctx); err != nil {
		t.Fatalf("restarted old leader: %v", err)
	}
	t.Logf("restarted old leader caught up in %v", time.Since(restartedAt).Round(time.Millisecond))
	checkAcked("after restarting the old leader")
}
