package zoo_test

import (
	"errors"
	"testing"
	"time"

	"github.com/zooraft/zoo"
	"github.com/zooraft/zoo/internal/testkit"
)

// Watch events reach only sessions allowed to read the changed node, as in
// ZooKeeper 3.8.4+ (CVE-2024-23944): a recursive watch on "/" must not reveal
// the paths or changes of nodes its session cannot read.
func TestWatchEventsFilteredByACL(t *testing.T) {
	e, err := zoo.Open(zoo.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx := testkit.Context(t)
	owner, err := e.NewSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := owner.AddAuth(ctx, "digest", []byte("alice:pw")); err != nil {
		t.Fatal(err)
	}
	spy, err := e.NewSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	friend, err := e.NewSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := friend.AddAuth(ctx, "digest", []byte("alice:pw")); err != nil {
		t.Fatal(err)
	}
	private := []zoo.ACL{{Perms: zoo.PermAll, ID: zoo.ID{Scheme: "digest", ID: zoo.DigestID("alice", "pw")}}}
	if _, err := owner.Create(ctx, "/secret", nil, zoo.ModePersistent, private); err != nil {
		t.Fatal(err)
	}

	spyAll, err := spy.AddWatch(ctx, "/", zoo.WatchPersistentRecursive)
	if err != nil {
		t.Fatal(err)
	}
	friendAll, err := friend.AddWatch(ctx, "/", zoo.WatchPersistentRecursive)
	if err != nil {
		t.Fatal(err)
	}
	// exists on an absent node needs no permission, so the spy can watch for
	// a node it will not be allowed to read.
	_, _, spyOnce, err := spy.ExistsW(ctx, "/secret/plan")
	if err != nil {
		t.Fatal(err)
	}
	_, _, friendOnce, err := friend.ExistsW(ctx, "/secret/plan")
	if err != nil {
		t.Fatal(err)
	}

	if _, err := owner.Create(ctx, "/secret/plan", []byte("x"), zoo.ModePersistent, private); err != nil {
		t.Fatal(err)
	}
	if _, err := owner.Set(ctx, "/secret", []byte("y"), -1); err != nil {
		t.Fatal(err)
	}
	if _, err := owner.Create(ctx, "/public", nil, zoo.ModePersistent, nil); err != nil {
		t.Fatal(err)
	}

	next := func(w *zoo.PersistentWatch) zoo.Event {
		t.Helper()
		select {
		case ev := <-w.Events():
			return ev
		case <-time.After(10 * time.Second):
			t.Fatal("no event")
			return zoo.Event{}
		}
	}
	// Events come in zxid order: the spy's first is the public node's.
	if ev := next(spyAll); ev.Type != zoo.EventNodeCreated || ev.Path != "/public" {
		t.Fatalf("spy's recursive watch saw %v %s, want only NodeCreated /public", ev.Type, ev.Path)
	}
	for _, want := range []zoo.Event{
		{Type: zoo.EventNodeCreated, Path: "/secret/plan"},
		{Type: zoo.EventNodeDataChanged, Path: "/secret"},
		{Type: zoo.EventNodeCreated, Path: "/public"},
	} {
		if ev := next(friendAll); ev.Type != want.Type || ev.Path != want.Path {
			t.Fatalf("friend's recursive watch: %v %s, want %v %s", ev.Type, ev.Path, want.Type, want.Path)
		}
	}
	// The one-shot watch is used up without revealing the change.
	if ev := <-spyOnce; ev.Type != zoo.EventNotWatching || !errors.Is(ev.Err, zoo.ErrNoAuth) {
		t.Fatalf("spy's exists watch: %+v, want NotWatching with ErrNoAuth", ev)
	}
	if spy.HasWatches("/secret/plan", zoo.WatcherData) {
		t.Fatal("spy's exists watch still registered after the change")
	}
	if ev := <-friendOnce; ev.Type != zoo.EventNodeCreated || ev.Path != "/secret/plan" {
		t.Fatalf("friend's exists watch: %+v", ev)
	}
}
