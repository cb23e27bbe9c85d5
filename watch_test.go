package zoo

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// recWatcher records every notification, so tests can see duplicates that a
// oneShotWatch would swallow.
type recWatcher struct {
	sess   int64
	events []Event
	full   bool // refuse further events, as an overflowing consumer does
}

func (w *recWatcher) notify(ev Event) bool {
	w.events = append(w.events, ev)
	return !w.full
}

func (w *recWatcher) session() int64 { return w.sess }

func (r *watchRegistry) registrations() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.count
}

// drain reads a one-shot watch channel without blocking: its events and
// whether it is closed.
func drain(ch <-chan Event) (evs []Event, closed bool) {
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				return evs, true
			}
			evs = append(evs, ev)
		default:
			return evs, false
		}
	}
}

func TestOneShotWatchTriggers(t *testing.T) {
	data := func(p string) Op { return SetDataOp{Path: p, Data: []byte("x"), Version: -1} }
	del := func(p string) Op { return DeleteOp{Path: p, Version: -1} }
	create := func(p string) Op { return CreateOp{Path: p} }
	tests := []struct {
		name    string
		table   watchTable
		path    string
		trigger Op
		want    EventType // 0: must not fire
		evPath  string
	}{
		// exists/getData share the data table.
		{"exists absent, created", tableData, "/new", create("/new"), EventNodeCreated, "/new"},
		{"exists absent, sequential name differs", tableData, "/w/s", CreateOp{Path: "/w/s", Mode: ModePersistentSequential}, 0, ""},
		{"data, setData", tableData, "/w", data("/w"), EventNodeDataChanged, "/w"},
		{"data, delete", tableData, "/w/c", del("/w/c"), EventNodeDeleted, "/w/c"},
		{"data, setACL fires nothing", tableData, "/w", setACLOp{path: "/w", acl: OpenACL, version: -1}, 0, ""},
		{"data, child create fires nothing", tableData, "/w", create("/w/d"), 0, ""},
		{"data, failed setData fires nothing", tableData, "/w", SetDataOp{Path: "/w", Version: 9}, 0, ""},
		{"data, check fires nothing", tableData, "/w", CheckOp{Path: "/w", Version: -1}, 0, ""},
		{"child, child created", tableChild, "/w", create("/w/d"), EventNodeChildrenChanged, "/w"},
		{"child, child deleted", tableChild, "/w", del("/w/c"), EventNodeChildrenChanged, "/w"},
		{"child, node deleted", tableChild, "/w/c", del("/w/c"), EventNodeDeleted, "/w/c"},
		{"child, setData fires nothing", tableChild, "/w", data("/w"), 0, ""},
		{"child, child setData fires nothing", tableChild, "/w", data("/w/c"), 0, ""},
		{"child, grandchild fires nothing", tableChild, "/w", create("/w/c/g"), 0, ""},
		{"child of root", tableChild, "/", create("/top"), EventNodeChildrenChanged, "/"},
		{"data of root", tableData, "/", data("/"), EventNodeDataChanged, "/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newTestFSM(t)
			h.mustCreate("/w", nil)
			h.mustCreate("/w/c", nil)
			w := newOneShotWatch(1)
			rec := &recWatcher{sess: 1}
			h.w.add(tt.table, tt.path, w)
			h.w.add(tt.table, tt.path, rec)
			h.do(0, nil, tt.trigger)
			evs, closed := drain(w.ch)
			if tt.want == 0 {
				if len(evs) != 0 || closed || len(rec.events) != 0 {
					t.Fatalf("fired: %v closed %v, rec %v", evs, closed, rec.events)
				}
				if n := h.w.registrations(); n != 2 {
					t.Fatalf("%d registrations left, want 2 (unfired watch stays)", n)
				}
				return
			}
			want := []Event{{Type: tt.want, Path: tt.evPath, Zxid: int64(h.index)}}
			if !slices.Equal(evs, want) || !closed {
				t.Fatalf("one-shot got %v closed %v, want %v then closed", evs, closed, want)
			}
			if !slices.Equal(rec.events, want) {
				t.Fatalf("recorded %v, want %v", rec.events, want)
			}
			if n := h.w.registrations(); n != 0 {
				t.Fatalf("%d registrations left after firing", n)
			}
			// Fired means gone: the same change again notifies nobody.
			h.mustDo(SetDataOp{Path: "/w", Version: -1})
			h.mustCreate("/w/again", nil)
			if len(rec.events) != 1 {
				t.Fatalf("one-shot watch fired again: %v", rec.events)
			}
		})
	}
}

func TestOneNotificationPerWatcher(t *testing.T) {
	h := newTestFSM(t)
	h.mustCreate("/x", nil)
	h.mustCreate("/x/c", nil)

	// Registered via exists, getData (same table, deduplicated) and getChildren:
	// deleting the node notifies once.
	rec := &recWatcher{sess: 1}
	h.w.add(tableData, "/x/c", rec)
	h.w.add(tableData, "/x/c", rec)
	h.w.add(tableChild, "/x/c", rec)
	if n := h.w.registrations(); n != 2 {
		t.Fatalf("%d registrations, want 2", n)
	}
	// The same watcher on the parent's child list still hears about that:
	// a different path.
	h.w.add(tableChild, "/x", rec)
	other := &recWatcher{sess: 2}
	h.w.add(tableData, "/x/c", other)
	h.w.add(tableChild, "/x/c", other)

	h.mustDo(DeleteOp{Path: "/x/c", Version: -1})
	z := int64(h.index)
	want := []Event{{EventNodeDeleted, "/x/c", z, nil}, {EventNodeChildrenChanged, "/x", z, nil}}
	if !slices.Equal(rec.events, want) {
		t.Errorf("got %v, want %v", rec.events, want)
	}
	if !slices.Equal(other.events, want[:1]) {
		t.Errorf("second watcher got %v, want %v", other.events, want[:1])
	}
	if n := h.w.registrations(); n != 0 {
		t.Errorf("%d registrations left", n)
	}
}

func TestPersistentWatch(t *testing.T) {
	h := newTestFSM(t)
	rec := &recWatcher{sess: 1}
	h.w.add(tablePersistent, "/p", rec)

	type step struct {
		op   Op
		want []Event // Zxid filled in
	}
	steps := []step{
		{CreateOp{Path: "/p"}, []Event{{Type: EventNodeCreated, Path: "/p"}}},
		{SetDataOp{Path: "/p", Version: -1}, []Event{{Type: EventNodeDataChanged, Path: "/p"}}},
		{CreateOp{Path: "/p/c"}, []Event{{Type: EventNodeChildrenChanged, Path: "/p"}}},
		{SetDataOp{Path: "/p/c", Version: -1}, nil},
		{CreateOp{Path: "/p/c/g"}, nil},
		{DeleteOp{Path: "/p/c/g", Version: -1}, nil},
		{setACLOp{path: "/p", acl: OpenACL, version: -1}, nil},
		{DeleteOp{Path: "/p/c", Version: -1}, []Event{{Type: EventNodeChildrenChanged, Path: "/p"}}},
		{DeleteOp{Path: "/p", Version: -1}, []Event{{Type: EventNodeDeleted, Path: "/p"}}},
		{CreateOp{Path: "/p"}, []Event{{Type: EventNodeCreated, Path: "/p"}}},
	}
	var want []Event
	for _, s := range steps {
		h.mustDo(s.op)
		for _, ev := range s.want {
			ev.Zxid = int64(h.index)
			want = append(want, ev)
		}
	}
	if !slices.Equal(rec.events, want) {
		t.Errorf("events\n got %v\nwant %v", rec.events, want)
	}
	if n := h.w.registrations(); n != 1 {
		t.Errorf("%d registrations, want the persistent watch to stay", n)
	}
}

func TestPersistentRecursiveWatch(t *testing.T) {
	h := newTestFSM(t)
	h.mustCreate("/rx", nil) // a sibling sharing the prefix: not a descendant
	rec := &recWatcher{sess: 1}
	root := &recWatcher{sess: 2}
	h.w.add(tableRecursive, "/r", rec)
	h.w.add(tableRecursive, "/", root)

	ops := []struct {
		op   Op
		want *Event // for rec; Zxid filled in
	}{
		{CreateOp{Path: "/r"}, &Event{Type: EventNodeCreated, Path: "/r"}},
		{CreateOp{Path: "/r/a"}, &Event{Type: EventNodeCreated, Path: "/r/a"}},
		{CreateOp{Path: "/r/a/b"}, &Event{Type: EventNodeCreated, Path: "/r/a/b"}},
		{SetDataOp{Path: "/r/a/b", Version: -1}, &Event{Type: EventNodeDataChanged, Path: "/r/a/b"}},
		{SetDataOp{Path: "/r", Version: -1}, &Event{Type: EventNodeDataChanged, Path: "/r"}},
		{CreateOp{Path: "/rx/y"}, nil},
		{setACLOp{path: "/r/a", acl: OpenACL, version: -1}, nil},
		{DeleteOp{Path: "/r/a/b", Version: -1}, &Event{Type: EventNodeDeleted, Path: "/r/a/b"}},
		{DeleteOp{Path: "/r/a", Version: -1}, &Event{Type: EventNodeDeleted, Path: "/r/a"}},
		{DeleteOp{Path: "/r", Version: -1}, &Event{Type: EventNodeDeleted, Path: "/r"}},
	}
	var want []Event
	for _, o := range ops {
		h.mustDo(o.op)
		if o.want != nil {
			ev := *o.want
			ev.Zxid = int64(h.index)
			want = append(want, ev)
		}
	}
	if !slices.Equal(rec.events, want) {
		t.Errorf("events\n got %v\nwant %v", rec.events, want)
	}
	// The root watch saw every change, and never a child event.
	if len(root.events) != len(want)+1 {
		t.Errorf("root watch got %d events, want %d: %v", len(root.events), len(want)+1, root.events)
	}
	for _, ev := range root.events {
		if ev.Type == EventNodeChildrenChanged {
			t.Errorf("recursive watch got %v", ev)
		}
	}
	if n := h.w.registrations(); n != 2 {
		t.Errorf("%d registrations, want 2", n)
	}
}

func TestPersistentWatchOverflow(t *testing.T) {
	h := newTestFSM(t)
	h.mustCreate("/o", nil)
	w := &PersistentWatch{sess: 1, path: "/o", mode: WatchPersistentRecursive, ch: make(chan Event, 2)}
	h.w.add(tableRecursive, "/o", w)
	other := &recWatcher{sess: 2}
	h.w.add(tableRecursive, "/o", other)

	// Nobody reads w: apply must go on regardless.
	var logs []*raft.Log
	for range 5 {
		h.index++
		logs = append(logs, &raft.Log{Index: h.index, Type: raft.LogCommand, Data: encodeCommand(&command{
			op: opSetData, time: timeAt(h.index), ops: []Op{SetDataOp{Path: "/o", Version: -1}}})})
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, l := range logs {
			h.f.ApplyBatch([]*raft.Log{l})
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("apply blocked on a full persistent watch")
	}
	var got []Event
	for ev := range w.Events() { // closed when the watch ended
		got = append(got, ev)
	}
	if len(got) != 2 || got[0].Zxid >= got[1].Zxid {
		t.Errorf("buffered events %v, want the first two in order", got)
	}
	if !errors.Is(w.Err(), ErrWatchOverflow) {
		t.Errorf("Err() = %v, want ErrWatchOverflow", w.Err())
	}
	if len(other.events) != 5 {
		t.Errorf("a healthy watcher on the same path got %d events, want 5", len(other.events))
	}
	if n := h.w.registrations(); n != 1 {
		t.Errorf("%d registrations, want only the healthy one", n)
	}
	// A watcher that refuses an event is removed from every table at once.
	full := &recWatcher{sess: 3, full: true}
	h.w.add(tablePersistent, "/o", full)
	h.w.add(tableChild, "/o", full)
	h.w.add(tableData, "/elsewhere", full)
	h.mustDo(SetDataOp{Path: "/o", Version: -1})
	if len(full.events) != 1 || h.w.registrations() != 1 {
		t.Errorf("refusing watcher: %d events, %d registrations", len(full.events), h.w.registrations())
	}
}

func TestWatchRemoval(t *testing.T) {
	r := newWatchRegistry()
	reason := errors.New("test reason")
	d := newOneShotWatch(1)
	c := newOneShotWatch(1)
	p := &PersistentWatch{sess: 1, ch: make(chan Event, 4)}
	rec := &PersistentWatch{sess: 1, ch: make(chan Event, 4)}
	otherSession := newOneShotWatch(2)
	r.add(tableData, "/a", d)
	r.add(tableChild, "/a", c)
	r.add(tablePersistent, "/a", p)
	r.add(tableRecursive, "/a", rec)
	r.add(tableData, "/a", otherSession)

	if r.remove(1, "/b", WatcherAny, ErrNoWatcher) {
		t.Error("removed a watch on a path without one")
	}
	if r.remove(3, "/a", WatcherAny, ErrNoWatcher) {
		t.Error("removed another session's watch")
	}
	if !r.remove(1, "/a", WatcherData, reason) {
		t.Fatal("data watch not found")
	}
	if evs, closed := drain(d.ch); len(evs) != 1 || evs[0].Type != EventNotWatching || evs[0].Err != reason || !closed {
		t.Errorf("removed data watch: %v closed %v", evs, closed)
	}
	if evs, closed := drain(c.ch); len(evs) != 0 || closed {
		t.Errorf("child watch touched: %v", evs)
	}
	if !r.remove(1, "/a", WatcherPersistent, ErrNoWatcher) {
		t.Fatal("persistent watch not found")
	}
	if _, ok := <-p.Events(); ok || p.Err() != nil {
		t.Errorf("persistent watch removed by the client: open, or Err %v", p.Err())
	}
	if r.remove(1, "/a", WatcherPersistent, ErrNoWatcher) {
		t.Error("persistent watch removed twice")
	}

	r.removeSession(1, ErrSessionExpired)
	if evs, closed := drain(c.ch); len(evs) != 1 || evs[0].Type != EventNotWatching || !closed {
		t.Errorf("child watch at session end: %v closed %v", evs, closed)
	}
	if _, ok := <-rec.Events(); ok || !errors.Is(rec.Err(), ErrSessionExpired) {
		t.Errorf("recursive watch at session end: Err %v", rec.Err())
	}
	if n := r.registrations(); n != 1 {
		t.Errorf("%d registrations, want session 2's only", n)
	}
	r.trigger(change{typ: EventNodeDataChanged, path: "/a"}, 7)
	if evs, _ := drain(otherSession.ch); len(evs) != 1 || evs[0].Zxid != 7 {
		t.Errorf("surviving watch: %v", evs)
	}
}

func TestFSMWatchEvents(t *testing.T) {
	h := newTestFSM(t)
	h.mustCreate("/m", nil)
	rec := &recWatcher{sess: 1}
	h.w.add(tableRecursive, "/", rec)
	h.w.add(tableChild, "/m", rec) // with the recursive watch: deduplicated per change only

	// A successful multi publishes in op order, all with its one zxid.
	r := h.multi(0, nil,
		CreateOp{Path: "/m/a"},
		CreateOp{Path: "/m/a/b"},
		SetDataOp{Path: "/m/a", Version: -1},
		DeleteOp{Path: "/m/a/b", Version: -1},
	)
	z := int64(h.index)
	for _, res := range r.results {
		wantErr(t, "multi op", res.Err, nil)
	}
	want := []Event{
		{Type: EventNodeCreated, Path: "/m/a", Zxid: z},
		{Type: EventNodeChildrenChanged, Path: "/m", Zxid: z},
		{Type: EventNodeCreated, Path: "/m/a/b", Zxid: z},
		{Type: EventNodeDataChanged, Path: "/m/a", Zxid: z},
		{Type: EventNodeDeleted, Path: "/m/a/b", Zxid: z},
	}
	if !slices.Equal(rec.events, want) {
		t.Errorf("multi events\n got %v\nwant %v", rec.events, want)
	}

	// Failures publish nothing.
	rec.events = nil
	h.multi(0, nil, CreateOp{Path: "/m/x"}, SetDataOp{Path: "/m/x", Version: 3})
	h.do(0, nil, CreateOp{Path: "/m/a"})
	h.do(0, nil, DeleteOp{Path: "/m", Version: -1})
	h.do(12345, nil, CreateOp{Path: "/m/y"})
	if len(rec.events) != 0 {
		t.Errorf("failed writes fired %v", rec.events)
	}
}

func TestEnumStrings(t *testing.T) {
	for _, tt := range []struct{ got, want string }{
		{EventNodeCreated.String(), "NodeCreated"},
		{EventNodeDeleted.String(), "NodeDeleted"},
		{EventNodeDataChanged.String(), "NodeDataChanged"},
		{EventNodeChildrenChanged.String(), "NodeChildrenChanged"},
		{EventNotWatching.String(), "NotWatching"},
		{EventNone.String(), "None"},
		{EventType(42).String(), "EventType(42)"},
		{WatchPersistent.String(), "PERSISTENT"},
		{WatchPersistentRecursive.String(), "PERSISTENT_RECURSIVE"},
		{WatchMode(7).String(), "WatchMode(7)"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}
