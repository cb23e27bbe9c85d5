package recipe

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/zooraft/zoo"
	"github.com/zooraft/zoo/internal/testkit"
)

func TestEnsurePathAndWaitDeleted(t *testing.T) {
	c := newCluster(t, 3)
	ctx := testkit.ContextFor(t, time.Minute)
	s0, s1 := session(t, c, 0), session(t, c, 1)

	// Concurrent creators of overlapping paths all succeed.
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for i := range 6 {
		s := []*zoo.Session{s0, s1}[i%2]
		wg.Go(func() { errs <- ensurePath(ctx, s, fmt.Sprintf("/t1/ensure/a/b%d", i%3)) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("ensurePath: %v", err)
		}
	}
	if got := children(t, s0, "/t1/ensure/a"); !slices.Equal(got, []string{"b0", "b1", "b2"}) {
		t.Fatalf("children %v", got)
	}
	if err := ensurePath(ctx, s0, "/t1/ensure/a/b0"); err != nil {
		t.Fatalf("ensurePath of an existing path: %v", err)
	}
	// createNode keeps an existing node's data.
	must(t, createNode(ctx, s0, "/t1/ensure/x/y", []byte("1")))
	must(t, createNode(ctx, s1, "/t1/ensure/x/y", []byte("2")))
	if data, _, err := s1.Get(ctx, "/t1/ensure/x/y"); err != nil || string(data) != "1" {
		t.Fatalf("createNode of an existing node: %q, %v", data, err)
	}
	// deleteNode of a node already gone is fine.
	must(t, deleteNode(ctx, s1, "/t1/ensure/x/y"))
	must(t, deleteNode(ctx, s1, "/t1/ensure/x/y"))

	// waitDeleted: at once for an absent node, leaving no watch.
	if err := waitDeleted(ctx, s0, "/t1/none"); err != nil {
		t.Fatalf("waitDeleted(absent): %v", err)
	}
	if s0.HasWatches("/t1/none", zoo.WatcherData) {
		t.Error("waitDeleted left a watch on an absent node")
	}
	// Returns when the node is deleted by another session, not on a data change.
	mustCreate(t, s1, "/t1/node", nil)
	mustSync(t, s0)
	done := make(chan error, 1)
	go func() { done <- waitDeleted(ctx, s0, "/t1/node") }()
	testkit.EventuallyNil(t, 10*time.Second, func() error { return testkit.Holds(s0.HasWatches("/t1/node", zoo.WatcherData), "the watch") })
	mustSet(t, s1, "/t1/node", []byte("x"))
	testkit.EventuallyNil(t, 10*time.Second, func() error {
		return testkit.Holds(s0.HasWatches("/t1/node", zoo.WatcherData), "the re-armed watch")
	})
	select {
	case err := <-done:
		t.Fatalf("waitDeleted returned on a data change: %v", err)
	default:
	}
	mustDelete(t, s1, "/t1/node")
	if err := <-done; err != nil {
		t.Fatalf("waitDeleted: %v", err)
	}

	// ctx end: its error, and the watch is removed.
	mustCreate(t, s1, "/t1/node2", nil)
	mustSync(t, s0)
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if err := waitDeleted(short, s0, "/t1/node2"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waitDeleted with an ending ctx: %v", err)
	}
	if s0.HasWatches("/t1/node2", zoo.WatcherData) {
		t.Error("waitDeleted left its watch after ctx ended")
	}

	// Session end: the session's error.
	go func() { done <- waitDeleted(ctx, s0, "/t1/node2") }()
	testkit.EventuallyNil(t, 10*time.Second, func() error { return testkit.Holds(s0.HasWatches("/t1/node2", zoo.WatcherData), "the watch") })
	mustClose(t, s0)
	if err := <-done; !errors.Is(err, zoo.ErrClosed) {
		t.Fatalf("waitDeleted after Close: %v, want ErrClosed", err)
	}
}

// createTokened finds its node again by token; once, it reports an unknown
// outcome instead of creating a second node.
func TestCreateTokened(t *testing.T) {
	c := newCluster(t, 1)
	ctx := testkit.ContextFor(t, time.Minute)
	s := session(t, c, 0)
	p, _, err := createTokened(ctx, s, "/t2/tok/dir", "p-"+newToken()+"-", []byte("x"), zoo.ModePersistentSequential, true)
	if err != nil {
		t.Fatal(err)
	}
	if tok, _, ok := parseTokened(baseName(p), "p-"); !ok || len(tok) != tokenLen {
		t.Fatalf("created %s", p)
	}
	found, err := findChild(ctx, s, "/t2/tok/dir", baseName(p)[:len("p-")+tokenLen])
	if err != nil || found != p {
		t.Fatalf("findChild = %q, %v; want %s", found, err, p)
	}
	done, cancel := context.WithCancel(ctx)
	cancel()
	_, _, err = createTokened(done, s, "/t2/tok/dir", "p-"+newToken()+"-", nil, zoo.ModePersistentSequential, true)
	if !errors.Is(err, zoo.ErrConnectionLoss) || !errors.Is(err, context.Canceled) {
		t.Fatalf("once, with an ended context: %v; want ErrConnectionLoss and context.Canceled", err)
	}
	_, _, err = createTokened(done, s, "/t2/tok/dir", "p-"+newToken()+"-", nil, zoo.ModePersistentSequential, false)
	if errors.Is(err, zoo.ErrConnectionLoss) || !errors.Is(err, context.Canceled) {
		t.Fatalf("with an ended context: %v; want context.Canceled alone", err)
	}
}
