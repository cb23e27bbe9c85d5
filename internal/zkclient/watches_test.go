package zkclient

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zooraft/zoo"
	"github.com/zooraft/zoo/internal/jute"
	"github.com/zooraft/zoo/internal/testkit"
	"github.com/zooraft/zoo/zkwire"
)

// A one-shot watch fires once, and its event is handled by OnEvent before
// the reply of the write that fired it returns, even with a slow OnEvent.
func TestWatchFiresOnceBeforeReply(t *testing.T) {
	t.Parallel()
	_, addr := single(t, zkwire.Config{})
	rec := &recorder{delay: 30 * time.Millisecond}
	c, _ := connect(t, []string{addr}, Options{OnEvent: rec.onEvent})
	ctx := testkit.Context(t)
	mustCreate(t, c, "/w", []byte("0"))

	for i := 1; i <= 3; i++ {
		if _, _, err := c.Get(ctx, "/w", true); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Set(ctx, "/w", []byte(fmt.Sprint(i)), -1); err != nil {
			t.Fatal(err)
		}
		// The notification preceded the reply on the wire: it was handled.
		if got := rec.nodeEvents(); len(got) != i || got[i-1].Type != zoo.EventNodeDataChanged || got[i-1].Path != "/w" ||
			got[i-1].State != StateConnected {
			t.Fatalf("after set %d, events %v", i, got)
		}
	}
	// No watch left: another write fires nothing.
	if _, err := c.Set(ctx, "/w", []byte("x"), -1); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Get(ctx, "/w", false); err != nil {
		t.Fatal(err)
	}
	if got := rec.nodeEvents(); len(got) != 3 {
		t.Fatalf("a fired watch fired again: %v", got)
	}

	// Exists on a missing node sets an exist watch; on an existing one a
	// data watch; children set a child watch. Events come in order.
	if ok, _, err := c.Exists(ctx, "/w/new", true); err != nil || ok {
		t.Fatal(ok, err)
	}
	if _, err := c.Children(ctx, "/w", true); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, c, "/w/new", nil)
	if ok, _, err := c.Exists(ctx, "/w/new", true); err != nil || !ok {
		t.Fatal(ok, err)
	}
	if err := c.Delete(ctx, "/w/new", -1); err != nil {
		t.Fatal(err)
	}
	want := []string{"NodeCreated /w/new", "NodeChildrenChanged /w", "NodeDeleted /w/new"}
	var got []string
	for _, ev := range rec.nodeEvents()[3:] {
		got = append(got, ev.String())
	}
	if !slices.Equal(got, want) {
		t.Fatalf("events %q, want %q", got, want)
	}
	c.mu.Lock()
	left := len(c.watches)
	c.mu.Unlock()
	if left != 0 {
		t.Fatalf("fired watches still recorded: %v", c.watches)
	}
}

// Watch events from another client's writes arrive in order.
func TestWatchEventsFromOthers(t *testing.T) {
	t.Parallel()
	_, addr := single(t, zkwire.Config{})
	c, rec := connect(t, []string{addr}, Options{})
	other, _ := connect(t, []string{addr}, Options{})
	ctx := testkit.Context(t)
	var want []string
	for i := range 20 {
		p := fmt.Sprintf("/n%02d", i)
		if ok, _, err := c.Exists(ctx, p, true); err != nil || ok {
			t.Fatal(ok, err)
		}
		want = append(want, "NodeCreated "+p)
	}
	for i := range 20 {
		mustCreate(t, other, fmt.Sprintf("/n%02d", i), nil)
	}
	testkit.Eventually(t, waitLong, "20 events", func() bool { return len(rec.nodeEvents()) == 20 })
	var got []string
	for _, ev := range rec.nodeEvents() {
		got = append(got, ev.String())
	}
	if !slices.Equal(got, want) {
		t.Fatalf("events %q", got)
	}
}

func TestPersistentRecursiveWatch(t *testing.T) {
	t.Parallel()
	_, addr := single(t, zkwire.Config{})
	c, rec := connect(t, []string{addr}, Options{})
	ctx := testkit.Context(t)
	mustCreate(t, c, "/r", nil)
	if err := c.AddWatch(ctx, "/r", zoo.WatchPersistentRecursive); err != nil {
		t.Fatal(err)
	}
	if err := c.CheckWatches(ctx, "/r", zoo.WatcherAny); err != nil {
		t.Fatalf("checkWatches after addWatch: %v", err)
	}
	mustCreate(t, c, "/r/a", nil)
	mustCreate(t, c, "/r/a/b", nil)
	if _, err := c.Set(ctx, "/r/a", []byte("x"), -1); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, "/r/a/b", -1); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, c, "/other", nil) // outside: no event
	if _, err := c.Set(ctx, "/r", []byte("y"), -1); err != nil {
		t.Fatal(err)
	}
	want := []string{"NodeCreated /r/a", "NodeCreated /r/a/b", "NodeDataChanged /r/a", "NodeDeleted /r/a/b", "NodeDataChanged /r"}
	var got []string
	for _, ev := range rec.nodeEvents() {
		got = append(got, ev.String())
	}
	if !slices.Equal(got, want) {
		t.Fatalf("recursive watch events %q, want %q", got, want)
	}

	// A persistent (not recursive) watch also sees child list changes.
	if err := c.AddWatch(ctx, "/other", zoo.WatchPersistent); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, c, "/other/kid", nil)
	mustCreate(t, c, "/other/kid/deep", nil) // not reported: not recursive
	if _, err := c.Set(ctx, "/other", []byte("1"), -1); err != nil {
		t.Fatal(err)
	}
	got = nil
	for _, ev := range rec.nodeEvents()[len(want):] {
		got = append(got, ev.String())
	}
	if !slices.Equal(got, []string{"NodeChildrenChanged /other", "NodeDataChanged /other"}) {
		t.Fatalf("persistent watch events %q", got)
	}
	isPathErr(t, c.AddWatch(ctx, "/missing/x", 5), "/missing/x", zoo.ErrBadArguments)
}

func TestRemoveAndCheckWatches(t *testing.T) {
	t.Parallel()
	_, addr := single(t, zkwire.Config{})
	c, rec := connect(t, []string{addr}, Options{})
	ctx := testkit.Context(t)
	mustCreate(t, c, "/x", nil)

	isPathErr(t, c.CheckWatches(ctx, "/x", zoo.WatcherData), "/x", zoo.ErrNoWatcher)
	isPathErr(t, c.RemoveWatches(ctx, "/x", zoo.WatcherData, false), "/x", zoo.ErrNoWatcher)

	if _, _, err := c.Get(ctx, "/x", true); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Children(ctx, "/x", true); err != nil {
		t.Fatal(err)
	}
	if err := c.CheckWatches(ctx, "/x", zoo.WatcherData); err != nil {
		t.Fatal(err)
	}
	if err := c.CheckWatches(ctx, "/x", zoo.WatcherChildren); err != nil {
		t.Fatal(err)
	}
	if err := c.RemoveWatches(ctx, "/x", zoo.WatcherData, false); err != nil {
		t.Fatal(err)
	}
	isPathErr(t, c.CheckWatches(ctx, "/x", zoo.WatcherData), "/x", zoo.ErrNoWatcher)
	if err := c.CheckWatches(ctx, "/x", zoo.WatcherChildren); err != nil {
		t.Fatalf("the child watch went with the data watch: %v", err)
	}
	// The data watch is gone: a write fires nothing; the child watch fires.
	if _, err := c.Set(ctx, "/x", []byte("1"), -1); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, c, "/x/k", nil)
	want := []string{"DataWatchRemoved /x", "NodeChildrenChanged /x"}
	var got []string
	for _, ev := range rec.nodeEvents() {
		got = append(got, fmt.Sprintf("%s %s", eventName(ev.Type), ev.Path))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("events %q, want %q", got, want)
	}

	// Any removes every kind, persistent included.
	if _, _, err := c.Get(ctx, "/x", true); err != nil {
		t.Fatal(err)
	}
	if err := c.AddWatch(ctx, "/x", zoo.WatchPersistent); err != nil {
		t.Fatal(err)
	}
	if err := c.RemoveWatches(ctx, "/x", zoo.WatcherAny, false); err != nil {
		t.Fatal(err)
	}
	isPathErr(t, c.CheckWatches(ctx, "/x", zoo.WatcherAny), "/x", zoo.ErrNoWatcher)
	n := len(rec.nodeEvents())
	if _, err := c.Set(ctx, "/x", []byte("2"), -1); err != nil {
		t.Fatal(err)
	}
	if got := rec.nodeEvents()[n:]; len(got) != 0 {
		t.Fatalf("removed watches fired: %v", got)
	}
	if got := rec.nodeEvents()[2:]; len(got) != 2 || got[0].Type != EventDataWatchRemoved || got[1].Type != EventPersistentWatchRemoved {
		t.Fatalf("removal events %v", got)
	}
}

func eventName(t zoo.EventType) string {
	switch t {
	case EventDataWatchRemoved:
		return "DataWatchRemoved"
	case EventChildWatchRemoved:
		return "ChildWatchRemoved"
	case EventPersistentWatchRemoved:
		return "PersistentWatchRemoved"
	}
	return t.String()
}

// local removes a watch while the client cannot reach any server.
func TestRemoveWatchesLocal(t *testing.T) {
	t.Parallel()
	_, addr := single(t, zkwire.Config{})
	g := &gate{}
	c, rec := connect(t, []string{addr}, Options{Dialer: g.dial})
	ctx := testkit.Context(t)
	mustCreate(t, c, "/l", nil)
	if _, _, err := c.Get(ctx, "/l", true); err != nil {
		t.Fatal(err)
	}
	g.set(true)
	g.cut()
	testkit.Eventually(t, waitLong, "disconnected", func() bool { return c.State() == StateDisconnected })
	if err := c.RemoveWatches(ctx, "/l", zoo.WatcherAny, true); err != nil {
		t.Fatalf("local removal while disconnected: %v", err)
	}
	isPathErr(t, c.RemoveWatches(ctx, "/l", zoo.WatcherAny, true), "/l", zoo.ErrNoWatcher)
	if !rec.has(EventDataWatchRemoved, "/l") {
		t.Fatalf("no removal event: %v", rec.nodeEvents())
	}
	g.set(false)
	testkit.Eventually(t, waitLong, "reconnected", func() bool { return c.State() == StateConnected })
	// Nothing was re-armed.
	isPathErr(t, c.CheckWatches(ctx, "/l", zoo.WatcherAny), "/l", zoo.ErrNoWatcher)
}

func TestWatchBatches(t *testing.T) {
	reg := watchRegistry{}
	long := strings.Repeat("x", 1000)
	for i := range 300 {
		reg.add(fmt.Sprintf("/d/%s%03d", long, i), kindData|kindChild)
		reg.add(fmt.Sprintf("/p/%s%03d", long, i), kindRecursive)
	}
	reg.add("/e", kindExist)
	reg.add("/q", kindPersistent)
	batches := reg.lists().batches(setWatchesBatch)
	if len(batches) < 7 {
		t.Fatalf("%d batches for ~900 KB of paths", len(batches))
	}
	var total watchLists
	for _, b := range batches {
		size := 0
		for _, l := range [][]string{b.data, b.exist, b.child, b.persistent, b.recursive} {
			for _, p := range l {
				size += len(p)
			}
		}
		if size > setWatchesBatch+1100 {
			t.Fatalf("batch of %d path bytes", size)
		}
		total.data = append(total.data, b.data...)
		total.exist = append(total.exist, b.exist...)
		total.child = append(total.child, b.child...)
		total.persistent = append(total.persistent, b.persistent...)
		total.recursive = append(total.recursive, b.recursive...)
	}
	if len(total.data) != 300 || len(total.child) != 300 || len(total.recursive) != 300 ||
		!slices.Equal(total.exist, []string{"/e"}) || !slices.Equal(total.persistent, []string{"/q"}) {
		t.Fatalf("batches lost watches: %d %d %d %v %v", len(total.data), len(total.child), len(total.recursive), total.exist, total.persistent)
	}
	// Each batch is one frame well under the server's 1 MiB limit, and
	// setWatches2 only where persistent watches are.
	c := &Conn{watches: reg}
	reqs := c.setWatchesRequests()
	if len(reqs) != len(batches) {
		t.Fatalf("%d requests for %d batches", len(reqs), len(batches))
	}
	for _, req := range reqs {
		if len(req.frame) > jute.MaxBuffer/4 {
			t.Fatalf("setWatches frame of %d bytes", len(req.frame))
		}
		r := jute.NewReader(req.frame[4:])
		if xid, op := r.Int(), r.Int(); xid != 0 || (op != jute.OpSetWatches && op != jute.OpSetWatches2) || req.xid != jute.XidSetWatches {
			t.Fatalf("setWatches header xid %d op %d", xid, op)
		}
	}
	if op := jute.NewReader(reqs[0].frame[8:]).Int(); op != jute.OpSetWatches {
		t.Fatalf("a batch without persistent watches used op %d", op)
	}
	if op := jute.NewReader(reqs[len(reqs)-1].frame[8:]).Int(); op != jute.OpSetWatches2 {
		t.Fatalf("a batch with persistent watches used op %d", op)
	}
	if got := (watchRegistry{}).lists().batches(setWatchesBatch); len(got) != 0 {
		t.Fatalf("no watches gave %d batches", len(got))
	}
	_ = errors.New
}

// manyWatchesRearmed sets more watches than fit one setWatches batch,
// reconnects, and checks every one of them was re-armed.
func manyWatchesRearmed(t *testing.T, addr string) {
	ctx := testkit.Context(t)
	g := &gate{}
	c, r := connect(t, []string{addr}, Options{Dialer: g.dial})
	other, _ := connect(t, []string{addr}, Options{})
	mustCreate(t, c, "/many", nil)
	const n = 300
	long := strings.Repeat("w", 600)
	var paths []string
	var ops []zoo.Op
	for i := range n {
		p := fmt.Sprintf("/many/%s%03d", long, i)
		paths = append(paths, p)
		ops = append(ops, zoo.CreateOp{Path: p})
	}
	if _, err := c.Multi(ctx, ops...); err != nil {
		t.Fatal(err)
	}
	for _, p := range paths {
		if _, _, err := c.Get(ctx, p, true); err != nil {
			t.Fatal(err)
		}
	}
	c.mu.Lock()
	batches := len(c.setWatchesRequests())
	c.mu.Unlock()
	if batches < 2 {
		t.Fatalf("%d watches fit one batch", n)
	}
	g.cut()
	testkit.Eventually(t, waitLong, "reconnected", func() bool { return r.count(StateConnected) == 2 && c.State() == StateConnected })
	var sets []zoo.Op
	for _, p := range paths {
		sets = append(sets, zoo.SetDataOp{Path: p, Data: []byte("x"), Version: -1})
	}
	if _, err := other.Multi(ctx, sets...); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, waitLong, "every re-armed watch fired", func() bool { return len(r.nodeEvents()) == n })
	for i, ev := range r.nodeEvents() {
		if ev.Type != zoo.EventNodeDataChanged || ev.Path != paths[i] {
			t.Fatalf("event %d: %v", i, ev)
		}
	}
}

func TestManyWatchesRearmed(t *testing.T) {
	t.Parallel()
	_, addr := single(t, zkwire.Config{})
	manyWatchesRearmed(t, addr)
}

// OnEvent may call the Conn: re-arming a watch from the callback (the usual
// pattern) and closing the Conn from it do not deadlock.
func TestOnEventCallsBack(t *testing.T) {
	t.Parallel()
	_, addr := single(t, zkwire.Config{})
	ctx := testkit.Context(t)
	var (
		c       *Conn
		mu      sync.Mutex
		seen    []string
		closing = make(chan error, 1)
	)
	ready := make(chan struct{})
	onEvent := func(ev Event) {
		<-ready
		if ev.Type != zoo.EventNodeDataChanged {
			return
		}
		data, _, err := c.Get(ctx, ev.Path, true) // re-arm
		mu.Lock()
		seen = append(seen, string(data))
		n := len(seen)
		mu.Unlock()
		if err != nil {
			t.Errorf("get from OnEvent: %v", err)
		}
		if n == 3 {
			closing <- c.Close()
		}
	}
	c, _ = connect(t, []string{addr}, Options{OnEvent: onEvent})
	close(ready)
	other, _ := connect(t, []string{addr}, Options{})
	mustCreate(t, c, "/cb", nil)
	if _, _, err := c.Get(ctx, "/cb", true); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		want := i
		if _, err := other.Set(ctx, "/cb", []byte(fmt.Sprint(i)), -1); err != nil {
			t.Fatal(err)
		}
		testkit.Eventually(t, waitLong, "the callback re-armed the watch", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(seen) == want
		})
	}
	select {
	case err := <-closing:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(waitLong):
		t.Fatal("Close from OnEvent hung")
	}
	if c.State() != StateClosed {
		t.Fatalf("state %v", c.State())
	}
}
