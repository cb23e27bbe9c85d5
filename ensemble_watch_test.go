package zoo_test

import (
	"runtime"
	"testing"
	"time"

	"github.com/zooraft/zoo"
	"github.com/zooraft/zoo/internal/testkit"
	"github.com/zooraft/zoo/zootest"
)

// pending returns the event waiting in ch, if any, without blocking.
func pending(ch <-chan zoo.Event) (zoo.Event, bool) {
	select {
	case ev, ok := <-ch:
		return ev, ok
	default:
		return zoo.Event{}, false
	}
}

func TestWatchesAcrossReplicas(t *testing.T) {
	c := newCluster(t, 3, zootest.Options{})
	ctx := testkit.Context(t)
	leader := c.WaitLeader()
	fs := followers(c, leader)
	watcherAt := fs[0]
	watcher := sess(t, c, watcherAt)

	type watchCase struct {
		name  string
		setup func(w *zoo.Session, base string) error // run by the writer first
		watch func(base string) (<-chan zoo.Event, error)
		write func(w *zoo.Session, base string) error
		want  zoo.Event               // Path relative to base
		check func(base string) error // a read that must reflect the change
	}
	cases := []watchCase{
		{
			name: "GetW data change",
			setup: func(w *zoo.Session, base string) error {
				_, err := w.Create(ctx, base+"/n", []byte("old"), zoo.ModePersistent, nil)
				return err
			},
			watch: func(base string) (<-chan zoo.Event, error) {
				_, _, ch, err := watcher.GetW(ctx, base+"/n")
				return ch, err
			},
			write: func(w *zoo.Session, base string) error {
				_, err := w.Set(ctx, base+"/n", []byte("new"), 0)
				return err
			},
			want: zoo.Event{Type: zoo.EventNodeDataChanged, Path: "/n"},
			check: func(base string) error {
				data, _, err := watcher.Get(ctx, base+"/n")
				if err == nil && string(data) != "new" {
					t.Errorf("read after event: %q", data)
				}
				return err
			},
		},
		{
			name: "GetW delete",
			setup: func(w *zoo.Session, base string) error {
				_, err := w.Create(ctx, base+"/n", nil, zoo.ModePersistent, nil)
				return err
			},
			watch: func(base string) (<-chan zoo.Event, error) {
				_, _, ch, err := watcher.GetW(ctx, base+"/n")
				return ch, err
			},
			write: func(w *zoo.Session, base string) error { return w.Delete(ctx, base+"/n", -1) },
			want:  zoo.Event{Type: zoo.EventNodeDeleted, Path: "/n"},
			check: func(base string) error {
				if ok, _, err := watcher.Exists(ctx, base+"/n"); err != nil || ok {
					t.Errorf("exists after delete event: %v %v", ok, err)
				}
				return nil
			},
		},
		{
			name: "ChildrenW child created",
			watch: func(base string) (<-chan zoo.Event, error) {
				_, _, ch, err := watcher.ChildrenW(ctx, base)
				return ch, err
			},
			write: func(w *zoo.Session, base string) error {
				_, err := w.Create(ctx, base+"/kid", nil, zoo.ModeEphemeral, nil)
				return err
			},
			want: zoo.Event{Type: zoo.EventNodeChildrenChanged, Path: ""},
			check: func(base string) error {
				kids, _, err := watcher.Children(ctx, base)
				if err == nil && len(kids) != 1 {
					t.Errorf("children after event: %v", kids)
				}
				return err
			},
		},
		{
			name: "ExistsW on an absent node",
			watch: func(base string) (<-chan zoo.Event, error) {
				ok, _, ch, err := watcher.ExistsW(ctx, base+"/later")
				if ok {
					t.Errorf("%s/later exists already", base)
				}
				return ch, err
			},
			write: func(w *zoo.Session, base string) error {
				_, err := w.Create(ctx, base+"/later", nil, zoo.ModePersistent, nil)
				return err
			},
			want: zoo.Event{Type: zoo.EventNodeCreated, Path: "/later"},
			check: func(base string) error {
				ok, _, err := watcher.Exists(ctx, base+"/later")
				if err == nil && !ok {
					t.Errorf("%s/later absent after its created event", base)
				}
				return err
			},
		},
	}
	for _, wr := range []struct {
		name string
		at   int
	}{{"leader", leader}, {"other follower", fs[1]}} {
		wname, w := wr.name, sess(t, c, wr.at)
		for _, tc := range cases {
			t.Run(tc.name+" written via "+wname, func(t *testing.T) {
				base := "/w-" + sanitize(tc.name+"-"+wname)
				mustCreate(t, ctx, w, base, nil, zoo.ModePersistent)
				if tc.setup != nil {
					if err := zootest.Retry(ctx, func() error { return tc.setup(w, base) }, zoo.ErrNodeExists); err != nil {
						t.Fatal(err)
					}
				}
				// The watcher's replica must have seen the setup before it sets the watch.
				if err := zootest.Retry(ctx, func() error { return watcher.Sync(ctx, "/") }); err != nil {
					t.Fatal(err)
				}
				var ch <-chan zoo.Event
				if err := zootest.Retry(ctx, func() (err error) { ch, err = tc.watch(base); return err }); err != nil {
					t.Fatal(err)
				}
				if ev, ok := pending(ch); ok {
					t.Fatalf("event before the write: %+v", ev)
				}
				err := zootest.Retry(ctx, func() error { return tc.write(w, base) }, zoo.ErrNodeExists, zoo.ErrNoNode, zoo.ErrBadVersion)
				if err != nil {
					t.Fatal(err)
				}
				if err := zootest.Retry(ctx, func() error { return watcher.Sync(ctx, "/") }); err != nil {
					t.Fatal(err)
				}
				// Sync returned: the event is already there.
				ev, ok := pending(ch)
				want := tc.want
				want.Path = base + want.Path
				if !ok || ev.Type != want.Type || ev.Path != want.Path || ev.Zxid == 0 {
					t.Fatalf("after writer and Sync returned: event %+v (%v), want %v on %s", ev, ok, want.Type, want.Path)
				}
				if err := zootest.Retry(ctx, func() error { return tc.check(base) }); err != nil {
					t.Fatal(err)
				}
				// One-shot: the channel is closed after its one event.
				if _, open := <-ch; open {
					t.Fatal("one-shot watch channel still open after firing")
				}
			})
		}
	}
}

func sanitize(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c == ' ' {
			b[i] = '-'
		}
	}
	return string(b)
}

// A read on the watching replica never reflects a change before the watch
// event for it is delivered: poll the follower (without Sync) and, the first
// time it shows the new data, the event must already be waiting.
func TestWatchEventBeforeReadReflectsChange(t *testing.T) {
	c := newCluster(t, 3, zootest.Options{})
	ctx := testkit.Context(t)
	leader := c.WaitLeader()
	fs := followers(c, leader)
	watcher, writer := sess(t, c, fs[0]), sess(t, c, fs[1])
	mustCreate(t, ctx, writer, "/order", []byte("0"), zoo.ModePersistent)
	if err := zootest.Retry(ctx, func() error { return watcher.Sync(ctx, "/") }); err != nil {
		t.Fatal(err)
	}
	for round := 1; round <= 20; round++ {
		var st zoo.Stat
		var ch <-chan zoo.Event
		if err := zootest.Retry(ctx, func() (err error) { _, st, ch, err = watcher.GetW(ctx, "/order"); return err }); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			done <- zootest.Retry(ctx, func() error {
				_, err := writer.Set(ctx, "/order", []byte{byte('0' + round%10)}, st.Version)
				return err
			}, zoo.ErrBadVersion)
		}()
		deadline := time.Now().Add(10 * time.Second)
	poll:
		for {
			_, now, err := watcher.Get(ctx, "/order")
			switch {
			case zootest.UnknownOutcome(err):
				// Between leaders: not what this test is about.
			case err != nil:
				t.Fatal(err)
			case now.Version != st.Version:
				if ev, ok := pending(ch); !ok || ev.Type != zoo.EventNodeDataChanged || ev.Zxid != now.Mzxid {
					t.Fatalf("round %d: read shows version %d but the event is %+v (%v)", round, now.Version, ev, ok)
				}
				break poll
			}
			if time.Now().After(deadline) {
				t.Fatalf("round %d: change never reached the watcher's replica", round)
			}
			runtime.Gosched()
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

// Persistent recursive watches on a follower see changes made through other
// replicas in zxid order.
func TestPersistentWatchAcrossReplicas(t *testing.T) {
	c := newCluster(t, 3, zootest.Options{})
	ctx := testkit.Context(t)
	leader := c.WaitLeader()
	fs := followers(c, leader)
	watcher, writer := sess(t, c, fs[0]), sess(t, c, leader)
	var w *zoo.PersistentWatch
	if err := zootest.Retry(ctx, func() (err error) { w, err = watcher.AddWatch(ctx, "/pw", zoo.WatchPersistentRecursive); return err }); err != nil {
		t.Fatal(err)
	}
	// Each op applies at most once even if retried after an unknown outcome.
	ops := []func() error{
		func() error { _, err := writer.Create(ctx, "/pw", nil, zoo.ModePersistent, nil); return err },
		func() error { _, err := writer.Create(ctx, "/pw/a", nil, zoo.ModePersistent, nil); return err },
		func() error { _, err := writer.Set(ctx, "/pw/a", []byte("x"), 0); return err },
		func() error { return writer.Delete(ctx, "/pw/a", 1) },
	}
	for _, op := range ops {
		if err := zootest.Retry(ctx, op, zoo.ErrNodeExists, zoo.ErrBadVersion, zoo.ErrNoNode); err != nil {
			t.Fatal(err)
		}
	}
	if err := zootest.Retry(ctx, func() error { return watcher.Sync(ctx, "/") }); err != nil {
		t.Fatal(err)
	}
	want := []zoo.Event{
		{Type: zoo.EventNodeCreated, Path: "/pw"},
		{Type: zoo.EventNodeCreated, Path: "/pw/a"},
		{Type: zoo.EventNodeDataChanged, Path: "/pw/a"},
		{Type: zoo.EventNodeDeleted, Path: "/pw/a"},
	}
	var last int64
	for i, wv := range want {
		ev, ok := pending(w.Events())
		if !ok || ev.Type != wv.Type || ev.Path != wv.Path || ev.Zxid <= last {
			t.Fatalf("event %d: %+v (%v), want %v %s after zxid %d", i, ev, ok, wv.Type, wv.Path, last)
		}
		last = ev.Zxid
	}
	if ev, ok := pending(w.Events()); ok {
		t.Fatalf("unexpected extra event %+v", ev)
	}
	if err := watcher.RemoveWatches(ctx, "/pw", zoo.WatcherPersistentRecursive); err != nil {
		t.Fatal(err)
	}
	// A removed persistent watch ends by closing its channel, with a nil Err
	// (no EventNotWatching is queued, unlike a removed one-shot watch).
	if ev, ok := <-w.Events(); ok || w.Err() != nil {
		t.Fatalf("after RemoveWatches: event %+v, open %v, Err %v", ev, ok, w.Err())
	}
}
