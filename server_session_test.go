package zoo_test

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/zooraft/zoo"
	"github.com/zooraft/zoo/internal/testkit"
	"github.com/zooraft/zoo/zootest"
)

// recorder is a zoo.Watcher that keeps what it is told.
type recorder struct {
	mu     sync.Mutex
	events []zoo.Event
}

func (r *recorder) Notify(ev zoo.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
}

func (r *recorder) got() []zoo.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

func TestResumeSessionOnAnotherReplica(t *testing.T) {
	c := newCluster(t, 3, zootest.Options{})
	ctx := testkit.Context(t)
	leader := c.WaitLeader()
	f := followers(c, leader)
	s := serverSess(t, c, f[0], nil, zoo.WithSessionTimeout(2*time.Second))
	mustCreate(t, ctx, s.Session, "/owned", nil, zoo.ModeEphemeral)
	id, pw := s.ID(), s.Password()

	// The client's connection to its replica drops: the session stays.
	s.Detach()
	if _, _, err := s.Get(ctx, "/owned"); !errors.Is(err, zoo.ErrClosed) {
		t.Fatalf("detached handle: got %v, want ErrClosed", err)
	}

	bad := slices.Clone(pw)
	bad[0] ^= 1
	if _, err := c.Replica(f[1]).ResumeSession(ctx, id, bad, nil); !errors.Is(err, zoo.ErrSessionExpired) {
		t.Fatalf("wrong password: got %v, want ErrSessionExpired", err)
	}
	if _, err := c.Replica(f[1]).ResumeSession(ctx, id+1000, pw, nil); !errors.Is(err, zoo.ErrSessionExpired) {
		t.Fatalf("unknown session: got %v, want ErrSessionExpired", err)
	}

	r, err := c.Replica(f[1]).ResumeSession(ctx, id, pw, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.ID() != id {
		t.Fatalf("resumed id %#x, want %#x", r.ID(), id)
	}
	// Kept alive through its new replica well past the timeout while its
	// client pings, ephemeral intact.
	deadline := time.Now().Add(3 * r.Timeout())
	for time.Now().Before(deadline) {
		r.Touch()
		if r.Err() != nil {
			t.Fatalf("resumed session ended: %v", r.Err())
		}
		time.Sleep(50 * time.Millisecond) // observing that nothing happens over time
	}
	if owner, _, err := r.Exists(ctx, "/owned"); err != nil || !owner {
		t.Fatalf("ephemeral after resume: %v %v", owner, err)
	}
	if _, err := r.Create(ctx, "/owned2", nil, zoo.ModeEphemeral, nil); err != nil {
		t.Fatal(err)
	}

	// Resuming again on the same replica moves the session off the old handle.
	r2, err := c.Replica(f[1]).ResumeSession(ctx, id, pw, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.Get(ctx, "/owned"); !errors.Is(err, zoo.ErrSessionMoved) {
		t.Fatalf("replaced handle: got %v, want ErrSessionMoved", err)
	}
	if err := r2.Close(ctx); err != nil {
		t.Fatal(err)
	}
	// Another replica may not have applied the close yet: catch it up first.
	if err := c.Replica(f[0]).WaitServing(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Replica(f[0]).ResumeSession(ctx, id, pw, nil); !errors.Is(err, zoo.ErrSessionExpired) {
		t.Fatalf("closed session: got %v, want ErrSessionExpired", err)
	}
}

func TestDetachedSessionExpires(t *testing.T) {
	c := newCluster(t, 3, zootest.Options{})
	ctx := testkit.Context(t)
	s := serverSess(t, c, 0, nil, zoo.WithSessionTimeout(500*time.Millisecond))
	mustCreate(t, ctx, s.Session, "/gone-soon", nil, zoo.ModeEphemeral)
	s.Detach()
	testkit.Eventually(t, 10*time.Second, "detached session's ephemeral removed", func() bool {
		return !existsOn(t, ctx, c, 1, "/gone-soon")
	})
	if _, err := c.Replica(2).ResumeSession(ctx, s.ID(), s.Password(), nil); !errors.Is(err, zoo.ErrSessionExpired) {
		t.Fatalf("resume after expiry: got %v, want ErrSessionExpired", err)
	}
}

func TestWatcherGetsOneEventPerPathAndType(t *testing.T) {
	e, err := zoo.Open(zoo.Config{TickTime: 50 * time.Millisecond, MaxSessionTimeout: time.Minute}) // no Touch needed
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx := testkit.Context(t)
	rec := &recorder{}
	s, err := e.NewServerSession(ctx, rec)
	if err != nil {
		t.Fatal(err)
	}
	blind, err := e.NewServerSession(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := blind.GetNotify(ctx, "/"); !errors.Is(err, zoo.ErrBadArguments) {
		t.Fatalf("GetNotify without Watcher: got %v, want ErrBadArguments", err)
	}
	mustCreate(t, ctx, s.Session, "/n", []byte("a"), zoo.ModePersistent)
	if _, _, err := s.GetNotify(ctx, "/n"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.ExistsNotify(ctx, "/n"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.ChildrenNotify(ctx, "/"); err != nil {
		t.Fatal(err)
	}
	if !s.HasWatches("/n", zoo.WatcherData) || s.HasWatches("/n", zoo.WatcherChildren) {
		t.Fatal("HasWatches disagrees with the watches set")
	}
	if _, err := s.Set(ctx, "/n", []byte("b"), -1); err != nil {
		t.Fatal(err)
	}
	// The event is delivered before the write returns: no waiting needed.
	want := []zoo.Event{{Type: zoo.EventNodeDataChanged, Path: "/n"}}
	if got := stripZxid(rec.got()); !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	if s.HasWatches("/n", zoo.WatcherData) {
		t.Fatal("one-shot watch still set after firing")
	}
	if err := s.Delete(ctx, "/n", -1); err != nil {
		t.Fatal(err)
	}
	want = append(want, zoo.Event{Type: zoo.EventNodeChildrenChanged, Path: "/"})
	if got := stripZxid(rec.got()); !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
}

func TestSetWatchesCatchesUp(t *testing.T) {
	e, err := zoo.Open(zoo.Config{TickTime: 50 * time.Millisecond, MaxSessionTimeout: time.Minute}) // no Touch needed
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx := testkit.Context(t)
	w, err := e.NewSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/changed", "/same", "/deleted", "/parent"} {
		mustCreate(t, ctx, w, p, nil, zoo.ModePersistent)
	}
	rel := e.LastZxid()
	if _, err := w.Set(ctx, "/changed", []byte("x"), -1); err != nil {
		t.Fatal(err)
	}
	if err := w.Delete(ctx, "/deleted", -1); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, ctx, w, "/born", nil, zoo.ModePersistent)
	mustCreate(t, ctx, w, "/parent/kid", nil, zoo.ModePersistent)

	rec := &recorder{}
	s, err := e.NewServerSession(ctx, rec)
	if err != nil {
		t.Fatal(err)
	}
	err = s.SetWatches(ctx, zoo.WatchSet{RelativeZxid: rel,
		Data:  []string{"/changed", "/same", "/deleted"},
		Exist: []string{"/born", "/unborn"},
		Child: []string{"/parent", "/same"},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []zoo.Event{
		{Type: zoo.EventNodeDataChanged, Path: "/changed"},
		{Type: zoo.EventNodeDeleted, Path: "/deleted"},
		{Type: zoo.EventNodeCreated, Path: "/born"},
		{Type: zoo.EventNodeChildrenChanged, Path: "/parent"},
	}
	if got := stripZxid(rec.got()); !slices.Equal(got, want) {
		t.Fatalf("catch-up events %v, want %v", got, want)
	}
	// What had not changed is re-armed and fires on the next change.
	mustCreate(t, ctx, w, "/unborn", nil, zoo.ModePersistent)
	if _, err := w.Set(ctx, "/same", []byte("y"), -1); err != nil {
		t.Fatal(err)
	}
	want = append(want, zoo.Event{Type: zoo.EventNodeCreated, Path: "/unborn"},
		zoo.Event{Type: zoo.EventNodeDataChanged, Path: "/same"})
	if got := stripZxid(rec.got()); !slices.Equal(got, want) {
		t.Fatalf("events after re-arming %v, want %v", got, want)
	}
}

func stripZxid(evs []zoo.Event) []zoo.Event {
	out := make([]zoo.Event, len(evs))
	for i, ev := range evs {
		ev.Zxid = 0
		out[i] = ev
	}
	return out
}

// A server session lives while its client is heard from, and expires about
// one timeout after the last Touch, like a ZooKeeper client that went silent;
// an embedded session lives as long as its replica reports it.
func TestClientLivenessFollowsTouches(t *testing.T) {
	c := newCluster(t, 3, zootest.Options{})
	ctx := testkit.Context(t)
	leader := c.WaitLeader()
	f := followers(c, leader)[0]
	const timeout = 600 * time.Millisecond
	var s *zoo.ServerSession
	if err := zootest.Retry(ctx, func() (err error) {
		s, err = c.Replica(f).NewServerSession(ctx, nil, zoo.WithSessionTimeout(timeout))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	embedded := sess(t, c, f, zoo.WithSessionTimeout(timeout))
	mustCreate(t, ctx, s.Session, "/client-eph", nil, zoo.ModeEphemeral)

	// Touched for four timeouts: alive.
	until := time.Now().Add(4 * timeout)
	var lastTouch time.Time
	for time.Now().Before(until) {
		s.Touch()
		lastTouch = time.Now()
		if err := s.Err(); err != nil {
			t.Fatalf("touched session ended: %v", err)
		}
		time.Sleep(timeout / 6) // the client's pings
	}
	// Silent: gone within its timeout plus the tracker's granularity.
	select {
	case <-s.Done():
	case <-time.After(10 * timeout):
		t.Fatal("silent session did not expire")
	}
	if took := time.Since(lastTouch); took < timeout {
		t.Fatalf("expired %v after the last touch, before its timeout %v", took, timeout)
	}
	if !errors.Is(s.Err(), zoo.ErrSessionExpired) {
		t.Fatalf("Err %v, want ErrSessionExpired", s.Err())
	}
	if existsOn(t, ctx, c, f, "/client-eph") {
		t.Fatal("expired session's ephemeral is still there")
	}
	if err := embedded.Err(); err != nil {
		t.Fatalf("an embedded session ended: %v", err)
	}
}
