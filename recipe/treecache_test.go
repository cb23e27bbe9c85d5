package recipe

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zooraft/zoo"
	"github.com/zooraft/zoo/internal/testkit"
	"github.com/zooraft/zoo/zootest"
)

// Helpers of the tree cache tests.

// fullRead reads the subtree at root through s after a Sync: the truth a
// cache must converge to. Only meaningful while nobody writes.
func fullRead(ctx context.Context, s *zoo.Session, root string) (map[string]CachedNode, error) {
	if err := s.Sync(ctx, root); err != nil {
		return nil, err
	}
	out := map[string]CachedNode{}
	var walk func(p string) error
	walk = func(p string) error {
		data, st, err := s.Get(ctx, p)
		if errors.Is(err, zoo.ErrNoNode) {
			return nil
		}
		if err != nil {
			return err
		}
		out[p] = CachedNode{Data: data, Stat: st}
		names, _, err := s.Children(ctx, p)
		if errors.Is(err, zoo.ErrNoNode) {
			return nil
		}
		if err != nil {
			return err
		}
		for _, n := range names {
			if err := walk(joinPath(p, n)); err != nil {
				return err
			}
		}
		return nil
	}
	return out, walk(root)
}

// diffTree describes how got differs from want ("" if not at all).
func diffTree(got, want map[string]CachedNode) string {
	var b strings.Builder
	for p, w := range want {
		g, ok := got[p]
		switch {
		case !ok:
			fmt.Fprintf(&b, "missing %s; ", p)
		case !bytes.Equal(g.Data, w.Data):
			fmt.Fprintf(&b, "%s: data %q, want %q; ", p, g.Data, w.Data)
		case g.Stat != w.Stat:
			fmt.Fprintf(&b, "%s: stat %+v, want %+v; ", p, g.Stat, w.Stat)
		}
		if b.Len() > 600 {
			return b.String() + "..."
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			fmt.Fprintf(&b, "extra %s; ", p)
		}
		if b.Len() > 600 {
			return b.String() + "..."
		}
	}
	return b.String()
}

// converged waits until the cache equals a fresh full read of its root.
func converged(t testing.TB, c *TreeCache, timeout time.Duration) {
	t.Helper()
	testkit.EventuallyNil(t, timeout, func() error {
		if err := c.Err(); err != nil {
			return fmt.Errorf("cache stopped: %w", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		want, err := fullRead(ctx, c.s, c.root)
		if err != nil {
			return err
		}
		if d := diffTree(c.Snapshot(), want); d != "" {
			return errors.New(d)
		}
		return nil
	})
}

// eventModel replays a cache's events into a model of the tree (path to
// data and czxid/mzxid), checking that each event makes sense in order.
type eventModel struct {
	mu      sync.Mutex
	nodes   map[string]CachedNode
	errs    []string
	dropped int
	done    chan struct{}
}

func followEvents(c *TreeCache) *eventModel {
	m := &eventModel{nodes: map[string]CachedNode{}, done: make(chan struct{})}
	events := c.Events() // now, not in the goroutine: before Start
	go func() {
		defer close(m.done)
		for ev := range events {
			m.mu.Lock()
			_, had := m.nodes[ev.Path]
			switch ev.Type {
			case CacheNodeCreated:
				if had {
					m.errs = append(m.errs, "created twice: "+ev.Path)
				}
				if p := ev.Path; p != c.root {
					if _, ok := m.nodes[parentPath(p)]; !ok {
						m.errs = append(m.errs, "created before its parent: "+p)
					}
				}
				m.nodes[ev.Path] = CachedNode{Data: ev.Data, Stat: ev.Stat}
			case CacheNodeUpdated:
				if !had {
					m.errs = append(m.errs, "updated unknown: "+ev.Path)
				} else if old := m.nodes[ev.Path]; ev.Stat.Mzxid <= old.Stat.Mzxid {
					m.errs = append(m.errs, fmt.Sprintf("update of %s goes back: mzxid %d after %d", ev.Path, ev.Stat.Mzxid, old.Stat.Mzxid))
				}
				m.nodes[ev.Path] = CachedNode{Data: ev.Data, Stat: ev.Stat}
			case CacheNodeDeleted:
				if !had {
					m.errs = append(m.errs, "deleted unknown: "+ev.Path)
				}
				for p := range m.nodes {
					if strings.HasPrefix(p, ev.Path+"/") {
						m.errs = append(m.errs, "deleted before its child "+p+": "+ev.Path)
					}
				}
				delete(m.nodes, ev.Path)
			case CacheEventsDropped:
				m.dropped++
			}
			m.mu.Unlock()
		}
	}()
	return m
}

// check compares the model with the cache: same paths, data, czxid and mzxid
// (a parent's child counts move without an event).
func (m *eventModel) check(c *TreeCache) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.errs) > 0 {
		return fmt.Errorf("event stream: %v", m.errs[:min(len(m.errs), 5)])
	}
	if m.dropped > 0 {
		return nil // the model cannot be exact
	}
	snap := c.Snapshot()
	for p, n := range snap {
		e, ok := m.nodes[p]
		if !ok || !bytes.Equal(e.Data, n.Data) || e.Stat.Czxid != n.Stat.Czxid || e.Stat.Mzxid != n.Stat.Mzxid {
			return fmt.Errorf("events model at %s: %v %q %d/%d, cache %q %d/%d", p, ok, e.Data, e.Stat.Czxid, e.Stat.Mzxid, n.Data, n.Stat.Czxid, n.Stat.Mzxid)
		}
	}
	for p := range m.nodes {
		if _, ok := snap[p]; !ok {
			return fmt.Errorf("events model has %s, the cache does not", p)
		}
	}
	return nil
}

// churn makes random changes under root through s until n operations were
// attempted: creates (nested up to depth 3), sets and deletes. Errors from
// races with other writers (and transient ones) are ignored.
func churn(ctx context.Context, s *zoo.Session, root string, seed uint64, n int) {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	names := []string{"a", "b", "c", "d"}
	randPath := func() string {
		p := root
		for d := 0; d < 1+r.IntN(3); d++ {
			p += "/" + names[r.IntN(len(names))]
		}
		return p
	}
	for i := 0; i < n && ctx.Err() == nil; i++ {
		p := randPath()
		data := fmt.Appendf(nil, "v%d-%d", seed, i)
		switch r.IntN(4) {
		case 0, 1:
			_, _ = s.Create(ctx, p, data, zoo.ModePersistent, nil)
		case 2:
			_, _ = s.Set(ctx, p, data, -1)
		case 3:
			_ = s.Delete(ctx, p, -1)
		}
		if s.Err() != nil {
			return
		}
	}
}

func startCache(t testing.TB, s *zoo.Session, root string, opts TreeCacheOptions) *TreeCache {
	t.Helper()
	c, _ := startCacheModel(t, s, root, opts, false)
	return c
}

// startCacheModel starts a cache; with follow, its events (from the initial
// load on) are replayed into a model.
func startCacheModel(t testing.TB, s *zoo.Session, root string, opts TreeCacheOptions, follow bool) (*TreeCache, *eventModel) {
	t.Helper()
	c, err := NewTreeCache(s, root, opts)
	must(t, err)
	var m *eventModel
	if follow {
		m = followEvents(c)
	}
	must(t, c.Start(testkit.ContextFor(t, 30*time.Second)))
	t.Cleanup(func() { c.Close() })
	return c, m
}

func TestTreeCacheLoadAndEvents(t *testing.T) {
	cl := newCluster(t, 1)
	s := session(t, cl, 0)
	ctx := testkit.ContextFor(t, 60*time.Second)
	mustCreate(t, s, "/app", []byte("root"))
	mustCreate(t, s, "/app/x", []byte("1"))
	mustCreate(t, s, "/app/x/y", []byte("2"))
	mustCreate(t, s, "/app-b", []byte("outside"))

	c, err := NewTreeCache(s, "/app", TreeCacheOptions{})
	must(t, err)
	events := c.Events() // before Start: the initial load is reported too
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case <-c.Ready():
	default:
		t.Fatal("Ready not closed after Start")
	}
	if err := c.Start(ctx); !errors.Is(err, ErrCacheStarted) {
		t.Fatalf("second Start: %v", err)
	}
	var initial []string
	for ev := range events {
		if ev.Type == CacheInitialized {
			break
		}
		initial = append(initial, ev.Type.String()+" "+ev.Path+" "+string(ev.Data))
	}
	want := []string{"NodeCreated /app root", "NodeCreated /app/x 1", "NodeCreated /app/x/y 2"}
	if !slices.Equal(initial, want) {
		t.Fatalf("initial events %q, want %q", initial, want)
	}
	if data, st, ok := c.Get("/app/x"); !ok || string(data) != "1" || st.NumChildren != 1 {
		t.Fatalf("Get /app/x = %q %+v %v", data, st, ok)
	}
	if _, _, ok := c.Get("/app-b"); ok {
		t.Fatal("cached a node outside the root")
	}

	mustSet(t, s, "/app/x", []byte("1b"))
	mustCreate(t, s, "/app/z", []byte("3"))
	mustDelete(t, s, "/app/x/y")
	mustCreate(t, s, "/app-b/q", nil)

	var got []string
	for len(got) < 3 {
		select {
		case ev := <-c.Events():
			got = append(got, ev.Type.String()+" "+ev.Path+" "+string(ev.Data))
		case <-ctx.Done():
			t.Fatalf("events so far %q", got)
		}
	}
	want = []string{"NodeUpdated /app/x 1b", "NodeCreated /app/z 3", "NodeDeleted /app/x/y "}
	if !slices.Equal(got, want) {
		t.Fatalf("events %q, want %q", got, want)
	}
	// The parent's Stat follows its children (no event of its own).
	converged(t, c, 30*time.Second)
	if names, ok := c.Children("/app"); !ok || !slices.Equal(names, []string{"x", "z"}) {
		t.Fatalf("Children(/app) = %v %v", names, ok)
	}
	var walked []string
	must(t, c.Walk(func(p string, _ []byte, _ zoo.Stat) error { walked = append(walked, p); return nil }))
	if !slices.Equal(walked, []string{"/app", "/app/x", "/app/z"}) {
		t.Fatalf("Walk order %v", walked)
	}
	stop := errors.New("stop")
	if err := c.Walk(func(string, []byte, zoo.Stat) error { return stop }); err != stop {
		t.Fatalf("Walk error %v", err)
	}

	// Deleting the root empties the cache; creating it again refills it.
	mustDelete(t, s, "/app/x")
	mustDelete(t, s, "/app/z")
	mustDelete(t, s, "/app")
	testkit.EventuallyNil(t, 30*time.Second, func() error {
		if err := c.Err(); err != nil {
			t.Fatalf("cache stopped: %v", err)
		}
		if n := len(c.Snapshot()); n != 0 {
			return fmt.Errorf("%d nodes cached", n)
		}
		return nil
	})
	mustCreate(t, s, "/app/again", []byte("x"))
	converged(t, c, 30*time.Second)
}

func TestTreeCacheMaxDepthAndDecode(t *testing.T) {
	cl := newCluster(t, 1)
	s := session(t, cl, 0)
	mustCreate(t, s, "/cfg/svc/deep", []byte(`{}`))
	mustCreate(t, s, "/cfg/db", []byte(`{"host":"db1","port":5432}`))
	mustCreate(t, s, "/cfg/bad", []byte(`{`))

	c := startCache(t, s, "/cfg", TreeCacheOptions{MaxDepth: 1})
	if _, _, ok := c.Get("/cfg/svc/deep"); ok {
		t.Fatal("cached a node below MaxDepth")
	}
	mustCreate(t, s, "/cfg/svc/deep2", nil)
	mustCreate(t, s, "/cfg/new", []byte(`{"host":"x"}`))
	testkit.EventuallyNil(t, 30*time.Second, func() error {
		if _, _, ok := c.Get("/cfg/new"); !ok {
			return errors.New("no /cfg/new")
		}
		return nil
	})
	if _, _, ok := c.Get("/cfg/svc/deep2"); ok {
		t.Fatal("cached a created node below MaxDepth")
	}
	// The depth-1 parent's Stat still follows its (uncached) children.
	testkit.EventuallyNil(t, 30*time.Second, func() error {
		if _, st, _ := c.Get("/cfg/svc"); st.NumChildren != 2 {
			return fmt.Errorf("NumChildren %d", st.NumChildren)
		}
		return nil
	})

	var db struct {
		Host string
		Port int
	}
	must(t, c.Decode("/cfg/db", &db))
	if db.Host != "db1" || db.Port != 5432 {
		t.Fatalf("decoded %+v", db)
	}
	var pe *zoo.PathError
	if err := c.Decode("/cfg/none", &db); !errors.Is(err, zoo.ErrNoNode) || !errors.As(err, &pe) {
		t.Fatalf("Decode of a missing node: %v", err)
	}
	if err := c.Decode("/cfg/bad", &db); err == nil || !errors.As(err, &pe) {
		t.Fatalf("Decode of bad JSON: %v", err)
	}

	for _, bad := range []string{"", "cfg", "/cfg/", "/a//b", "/a/../b"} {
		if _, err := NewTreeCache(s, bad, TreeCacheOptions{}); !errors.Is(err, zoo.ErrBadArguments) {
			t.Errorf("NewTreeCache(%q): %v", bad, err)
		}
	}
	if _, err := NewTreeCache(s, "/x", TreeCacheOptions{MaxDepth: -1}); !errors.Is(err, zoo.ErrBadArguments) {
		t.Errorf("negative MaxDepth: %v", err)
	}
	if _, err := NewTreeCache(nil, "/x", TreeCacheOptions{}); !errors.Is(err, zoo.ErrBadArguments) {
		t.Errorf("nil session: %v", err)
	}
}

func TestTreeCacheWatchJSON(t *testing.T) {
	cl := newCluster(t, 1)
	s := session(t, cl, 0)
	ctx := testkit.ContextFor(t, 60*time.Second)
	type config struct{ Level string }
	c, err := NewTreeCache(s, "/conf", TreeCacheOptions{})
	must(t, err)
	defer c.Close()
	// Subscribed before Start: the feed waits for the initial load.
	f := WatchJSON[config](ctx, c, "/conf/log")
	must(t, c.Start(ctx))

	next := func(want func(JSONValue[config]) bool) JSONValue[config] {
		t.Helper()
		for {
			select {
			case v, ok := <-f.C():
				if !ok {
					t.Fatalf("feed ended: %v", f.Err())
				}
				if want(v) {
					return v
				}
			case <-ctx.Done():
				t.Fatal("timed out waiting for a config value")
			}
		}
	}
	next(func(v JSONValue[config]) bool { return !v.Exists })
	mustCreate(t, s, "/conf/log", []byte(`{"Level":"info"}`))
	next(func(v JSONValue[config]) bool { return v.Exists && v.Value.Level == "info" })
	mustSet(t, s, "/conf/log", []byte(`{"Level":`))
	if v := next(func(v JSONValue[config]) bool { return v.Err != nil }); v.Value.Level != "" {
		t.Fatalf("a bad document kept value %+v", v.Value)
	}
	mustSet(t, s, "/conf/log", []byte(`{"Level":"debug"}`))
	next(func(v JSONValue[config]) bool { return v.Err == nil && v.Value.Level == "debug" })
	mustDelete(t, s, "/conf/log")
	next(func(v JSONValue[config]) bool { return !v.Exists })

	g := WatchJSON[config](ctx, c, "/elsewhere")
	<-g.Done()
	if !errors.Is(g.Err(), zoo.ErrBadArguments) {
		t.Fatalf("WatchJSON outside the cache: %v", g.Err())
	}
	c.Close()
	<-f.Done()
	if !errors.Is(f.Err(), ErrCacheClosed) {
		t.Fatalf("feed after Close: %v", f.Err())
	}
}

// TestTreeCacheConcurrentWriters: bursts of concurrent changes from sessions
// on every replica; the cache (on one replica) must end equal to a fresh
// read, and its events must replay into the same tree.
func TestTreeCacheConcurrentWriters(t *testing.T) {
	cl := newCluster(t, 3)
	cs := session(t, cl, 1)
	mustCreate(t, cs, "/tree", nil)
	c, model := startCacheModel(t, cs, "/tree", TreeCacheOptions{}, true)

	ctx := testkit.ContextFor(t, 120*time.Second)
	for round := 0; round < 2; round++ {
		var wg sync.WaitGroup
		for w := 0; w < 6; w++ {
			s := session(t, cl, w%3)
			wg.Go(func() { churn(ctx, s, "/tree", uint64(round*10+w), 120) })
		}
		wg.Wait()
		converged(t, c, 60*time.Second)
	}
	testkit.EventuallyNil(t, 30*time.Second, func() error { return model.check(c) })
	if n := len(c.Snapshot()); n < 2 {
		t.Fatalf("only %d nodes: the churn did nothing", n)
	}
}

// TestTreeCacheLeaderFailover: the raft leader is stopped in the middle of a
// burst of changes; the cache lives on a surviving replica and converges.
func TestTreeCacheLeaderFailover(t *testing.T) {
	cl := newCluster(t, 3)
	leader := cl.WaitLeader()
	survivor := (leader + 1) % 3
	other := (leader + 2) % 3
	cs := session(t, cl, survivor)
	mustCreate(t, cs, "/fo", nil)
	c, model := startCacheModel(t, cs, "/fo", TreeCacheOptions{}, true)

	ctx := testkit.ContextFor(t, 120*time.Second)
	var wg sync.WaitGroup
	for i, r := range []int{survivor, other, leader, other} {
		s := session(t, cl, r)
		wg.Go(func() { churn(ctx, s, "/fo", uint64(100+i), 150) })
	}
	// Stop the leader once some changes are in.
	testkit.EventuallyNil(t, 60*time.Second, func() error {
		if n := len(c.Snapshot()); n < 10 {
			return fmt.Errorf("%d nodes so far", n)
		}
		return nil
	})
	cl.Stop(leader)
	wg.Wait()
	cl.WaitLeader()
	// More changes under the new leader.
	for i, r := range []int{survivor, other} {
		s := session(t, cl, r)
		wg.Go(func() { churn(ctx, s, "/fo", uint64(200+i), 80) })
	}
	wg.Wait()
	converged(t, c, 60*time.Second)
	testkit.EventuallyNil(t, 30*time.Second, func() error { return model.check(c) })
	if err := c.Err(); err != nil {
		t.Fatalf("cache stopped: %v", err)
	}
}

// TestTreeCacheResyncAfterOverflow: a transaction with more changes than a
// persistent watch buffers ends the watch with ErrWatchOverflow; the cache
// resyncs and reports the difference.
func TestTreeCacheResyncAfterOverflow(t *testing.T) {
	cl := newCluster(t, 1)
	s := session(t, cl, 0)
	ctx := testkit.ContextFor(t, 120*time.Second)
	mustCreate(t, s, "/big", nil)
	mustCreate(t, s, "/big/keep", []byte("k"))
	c, model := startCacheModel(t, s, "/big", TreeCacheOptions{EventBuffer: 100000}, true)

	// More events than the watch buffers (4096) plus what the cache can take
	// out before it blocks on its first read (the transaction holds the
	// tree's lock while it fires them).
	const n = 4096 + cacheBatchMax + 1000
	ops := make([]zoo.Op, 0, n+1)
	for i := range n {
		ops = append(ops, zoo.CreateOp{Path: fmt.Sprintf("/big/n%05d", i), Data: []byte{byte(i)}})
	}
	ops = append(ops, zoo.DeleteOp{Path: "/big/keep", Version: -1})
	_, err := s.Multi(ctx, ops...)
	must(t, err)
	testkit.EventuallyNil(t, 60*time.Second, func() error {
		if c.resyncs.Load() == 0 {
			return errors.New("no resync yet")
		}
		return nil
	})
	converged(t, c, 60*time.Second)
	testkit.EventuallyNil(t, 30*time.Second, func() error { return model.check(c) })
	if len(c.Snapshot()) != n+1 {
		t.Fatalf("%d nodes cached, want %d", len(c.Snapshot()), n+1)
	}
}

// TestTreeCacheResyncAfterSnapshotInstall: the replica serving the cache is
// cut off while the others write far past their log retention, so it catches
// up by installing a snapshot, which resets persistent watches
// (ErrWatchReset). The cache resyncs and converges.
func TestTreeCacheResyncAfterSnapshotInstall(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	cl := zootest.New(t, 3, zootest.Options{
		SnapshotThreshold: 64,
		Configure: func(_ int, cfg *zoo.Config) {
			cfg.MaxSessionTimeout = time.Minute // the cache's session outlives the cut
		},
	})
	leader := cl.WaitLeader()
	follower := (leader + 1) % 3
	cs := session(t, cl, follower, zoo.WithSessionTimeout(time.Minute))
	mustCreate(t, cs, "/snap", nil)
	c, model := startCacheModel(t, cs, "/snap", TreeCacheOptions{}, true)

	ws := session(t, cl, leader)
	ctx := testkit.ContextFor(t, 120*time.Second)
	cl.Isolate(follower)
	// Write until the majority has taken (and compacted behind) a snapshot:
	// SnapshotThreshold 64 with retention of 64 entries, checked every second.
	deadline := time.Now().Add(4 * time.Second)
	for i := 0; time.Now().Before(deadline) || i < 300; i++ {
		p := fmt.Sprintf("/snap/n%04d", i%200)
		_, err := ws.Create(ctx, p, []byte("x"), zoo.ModePersistent, nil)
		if errors.Is(err, zoo.ErrNodeExists) {
			_, err = ws.Set(ctx, p, fmt.Appendf(nil, "v%d", i), -1)
		}
		if err != nil && !transient(err) {
			t.Fatal(err)
		}
	}
	cl.Heal()
	testkit.EventuallyNil(t, 60*time.Second, func() error {
		if c.resyncs.Load() == 0 {
			return errors.New("no resync yet (the replica may have caught up from the log)")
		}
		return nil
	})
	converged(t, c, 60*time.Second)
	testkit.EventuallyNil(t, 30*time.Second, func() error { return model.check(c) })
}

func TestTreeCacheSessionEndAndClose(t *testing.T) {
	cl := newCluster(t, 1)
	s := session(t, cl, 0)
	mustCreate(t, s, "/end/a", []byte("a"))
	c := startCache(t, s, "/end", TreeCacheOptions{})
	if !s.HasWatches("/end", zoo.WatcherPersistentRecursive) {
		t.Fatal("no recursive watch")
	}
	mustClose(t, s)
	select {
	case <-c.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("cache did not stop with its session")
	}
	if !errors.Is(c.Err(), zoo.ErrClosed) {
		t.Fatalf("Err after session close: %v", c.Err())
	}
	for range c.Events() { // drained, then closed
	}
	if data, _, ok := c.Get("/end/a"); !ok || string(data) != "a" {
		t.Fatal("the last state is gone after the cache stopped")
	}
	must(t, c.Close())
	must(t, c.Close())

	// Close removes the watch and closes Events; Start after Close fails.
	s2 := session(t, cl, 0)
	c2 := startCache(t, s2, "/end", TreeCacheOptions{})
	must(t, c2.Close())
	if s2.HasWatches("/end", zoo.WatcherPersistentRecursive) {
		t.Fatal("Close left the watch")
	}
	if _, ok := <-c2.Events(); ok {
		// Queued events may still come; what matters is that it closes.
		for range c2.Events() {
		}
	}
	if !errors.Is(c2.Err(), ErrCacheClosed) {
		t.Fatalf("Err after Close: %v", c2.Err())
	}
	c3, err := NewTreeCache(s2, "/end", TreeCacheOptions{})
	must(t, err)
	must(t, c3.Close())
	if err := c3.Start(testkit.ContextFor(t, time.Minute)); !errors.Is(err, ErrCacheClosed) {
		t.Fatalf("Start after Close: %v", err)
	}
	if _, ok := <-c3.Events(); ok {
		t.Fatal("Events of a never started, closed cache not closed")
	}
}

// TestTreeCacheSlowReader: a reader that does not keep up loses events
// visibly (CacheEventsDropped), never silently, and the cache stays current.
func TestTreeCacheSlowReader(t *testing.T) {
	cl := newCluster(t, 1)
	s := session(t, cl, 0)
	ctx := testkit.ContextFor(t, 60*time.Second)
	mustCreate(t, s, "/slow", nil)
	c := startCache(t, s, "/slow", TreeCacheOptions{EventBuffer: 4})
	c.Events() // from now on events are queued (and, unread, dropped)
	for i := range 200 {
		mustCreate(t, s, fmt.Sprintf("/slow/n%03d", i), nil)
	}
	converged(t, c, 30*time.Second)
	dropped := false
	for !dropped {
		select {
		case ev := <-c.Events():
			dropped = ev.Type == CacheEventsDropped
		case <-ctx.Done():
			t.Fatal("no CacheEventsDropped")
		}
	}
	// After the drop notice events flow again.
	mustCreate(t, s, "/slow/after", nil)
	for {
		select {
		case ev := <-c.Events():
			if ev.Type == CacheNodeCreated && ev.Path == "/slow/after" {
				return
			}
		case <-ctx.Done():
			t.Fatal("no event after the drop")
		}
	}
}

// TestTreeCacheSharedSessionClose: zoo removes persistent watches by session,
// path and type, so closing one cache removes the watch of another cache of
// the same session on the same root; that one resyncs and stays current.
func TestTreeCacheSharedSessionClose(t *testing.T) {
	cl := newCluster(t, 1)
	s := session(t, cl, 0)
	mustCreate(t, s, "/shared/a", nil)
	c1 := startCache(t, s, "/shared", TreeCacheOptions{})
	c2, model := startCacheModel(t, s, "/shared", TreeCacheOptions{}, true)
	must(t, c1.Close())
	mustCreate(t, s, "/shared/b", []byte("b"))
	testkit.EventuallyNil(t, 30*time.Second, func() error {
		if c2.resyncs.Load() == 0 {
			return errors.New("no resync")
		}
		return nil
	})
	converged(t, c2, 30*time.Second)
	testkit.EventuallyNil(t, 30*time.Second, func() error { return model.check(c2) })
	if !s.HasWatches("/shared", zoo.WatcherPersistentRecursive) {
		t.Fatal("the surviving cache has no watch")
	}
}
