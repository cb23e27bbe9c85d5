package zoo

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

func readCloser(b []byte) io.ReadCloser { return io.NopCloser(bytes.NewReader(b)) }

// richFSM builds a state with every kind of node, ACLs, sessions and counters
// away from their defaults.
func richFSM(t testing.TB) *testFSM {
	t.Helper()
	h := newTestFSM(t)
	s1 := h.openSession()
	s2 := h.openSession()
	h.mustCreate("/app", []byte("config"))
	h.mustCreate("/app/null", nil)
	h.mustCreate("/app/empty", []byte{})
	h.mustDo(CreateOp{Path: "/app/acl", ACL: []ACL{{PermRead, ID{"ip", "10.0.0.0/8"}}, {PermAll, ID{"digest", DigestID("u", "p")}}}})
	h.mustDo(CreateOp{Path: "/app/q-", Mode: ModePersistentSequential})
	h.mustDo(CreateOp{Path: "/c", Mode: ModeContainer})
	h.mustDo(CreateOp{Path: "/ttl", Mode: ModePersistentWithTTL, TTL: time.Minute})
	h.mustCreate("/c/child", []byte{0, 1, 2})
	for _, p := range []string{"/app/e1", "/c/e2"} {
		if res := h.do(s1, nil, CreateOp{Path: p, Mode: ModeEphemeral}); res.Err != nil {
			t.Fatal(res.Err)
		}
	}
	if res := h.do(s2, nil, CreateOp{Path: "/app/e-", Mode: ModeEphemeralSequential}); res.Err != nil {
		t.Fatal(res.Err)
	}
	h.mustDo(SetDataOp{Path: "/app", Data: []byte("v2"), Version: -1})
	h.mustDo(setACLOp{path: "/app/null", acl: ReadACL, version: -1})
	h.mustDo(DeleteOp{Path: "/app/empty", Version: -1})
	h.mustDo(SetDataOp{Path: "/", Data: []byte("root"), Version: -1})
	checkFSM(t, h.f)
	return h
}

// fsmState captures everything observable about an FSM for comparisons.
func fsmState(t testing.TB, f *fsm) (nodes []znode, sessions map[int64]sessionEntry, applied uint64) {
	t.Helper()
	f.mu.RLock()
	defer f.mu.RUnlock()
	f.tree.nodes.Ascend(func(n *znode) bool {
		nodes = append(nodes, *n)
		return true
	})
	sessions = map[int64]sessionEntry{}
	for id, s := range f.sessions {
		e := *s
		e.ephemerals = nil
		sessions[id] = e
	}
	return nodes, sessions, f.applied
}

func ephemeralIndex(f *fsm) map[int64][]string {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := map[int64][]string{}
	for id, s := range f.sessions {
		for p := range s.ephemerals {
			out[id] = append(out[id], p)
		}
		slices.Sort(out[id])
	}
	return out
}

func TestSnapshotRoundTrip(t *testing.T) {
	src := richFSM(t)
	b := snapshotBytes(t, src.f)

	dst := newTestFSM(t)
	if err := dst.f.Restore(readCloser(b)); err != nil {
		t.Fatal(err)
	}
	wn, ws, wa := fsmState(t, src.f)
	gn, gs, ga := fsmState(t, dst.f)
	if wa != ga || wa != src.index {
		t.Errorf("applied %d, want %d", ga, wa)
	}
	if len(gn) != len(wn) {
		t.Fatalf("%d nodes, want %d", len(gn), len(wn))
	}
	for i := range wn {
		w, g := wn[i], gn[i]
		if g.path != w.path || g.stat() != w.stat() || g.childCreates != w.childCreates || g.owner != w.owner ||
			!slices.Equal(g.acl, w.acl) || !bytes.Equal(g.data, w.data) || (g.data == nil) != (w.data == nil) ||
			g.parentEnd != w.parentEnd || g.nameStart != w.nameStart {
			t.Errorf("node %d:\n got %+v\nwant %+v", i, g, w)
		}
	}
	if len(gs) != len(ws) {
		t.Fatalf("sessions %v, want %v", gs, ws)
	}
	for id, w := range ws {
		g := gs[id]
		if g.id != w.id || g.timeout != w.timeout || !bytes.Equal(g.password, w.password) {
			t.Errorf("session %d: %+v, want %+v", id, g, w)
		}
	}
	if got, want := ephemeralIndex(dst.f), ephemeralIndex(src.f); !mapsEqual(got, want) {
		t.Errorf("ephemeral index %v, want %v", got, want)
	}
	checkFSM(t, dst.f)
	if !bytes.Equal(snapshotBytes(t, dst.f), b) {
		t.Error("re-snapshot of the restored FSM differs")
	}

	// The restored FSM goes on exactly like the original.
	dst.index = src.index
	for _, h := range []*testFSM{src, dst} {
		h.closeSession(2) // s1 was entry 1, s2 entry 2
		h.mustDo(CreateOp{Path: "/c/", Mode: ModePersistentSequential})
	}
	if !bytes.Equal(snapshotBytes(t, dst.f), snapshotBytes(t, src.f)) {
		t.Error("restored FSM diverged from the original")
	}

	// A snapshot is a point in time: later writes do not leak into it.
	s, _ := src.f.Snapshot()
	before := snapshotBytes(t, src.f)
	src.mustCreate("/later", nil)
	src.mustDo(SetDataOp{Path: "/app", Data: []byte("v3"), Version: -1})
	var buf bytes.Buffer
	if err := s.(*fsmSnapshot).writeTo(&buf); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), before) {
		t.Error("snapshot changed by writes after it was taken")
	}
}

func mapsEqual(a, b map[int64][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

type memSink struct {
	bytes.Buffer
	closed, cancelled bool
}

func (s *memSink) ID() string    { return "mem" }
func (s *memSink) Close() error  { s.closed = true; return nil }
func (s *memSink) Cancel() error { s.cancelled = true; return nil }

type failingSink struct{ memSink }

func (s *failingSink) Write([]byte) (int, error) { return 0, errors.New("disk full") }

var _ raft.SnapshotSink = (*memSink)(nil)

func TestSnapshotPersist(t *testing.T) {
	h := richFSM(t)
	s, err := h.f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	sink := &memSink{}
	if err := s.Persist(sink); err != nil || !sink.closed || sink.cancelled {
		t.Fatalf("Persist: %v, closed %v cancelled %v", err, sink.closed, sink.cancelled)
	}
	s.Release()
	if !bytes.Equal(sink.Bytes(), snapshotBytes(t, h.f)) {
		t.Error("Persist wrote something else than writeTo")
	}
	bad := &failingSink{}
	if err := s.Persist(bad); err == nil || !bad.cancelled || bad.closed {
		t.Errorf("Persist to a failing sink: %v, cancelled %v closed %v", err, bad.cancelled, bad.closed)
	}
}

func TestSnapshotCorruption(t *testing.T) {
	src := richFSM(t)
	b := snapshotBytes(t, src.f)

	// The target has a state of its own, which a failed restore must keep.
	dst := newTestFSM(t)
	s := dst.openSession()
	dst.mustCreate("/mine", []byte("keep"))
	dst.do(s, nil, CreateOp{Path: "/mine-e", Mode: ModeEphemeral})
	rec := &recWatcher{sess: 1}
	dst.w.add(tableData, "/mine", rec)
	want := snapshotBytes(t, dst.f)

	restoreFails := func(what string, bad []byte) {
		t.Helper()
		if err := dst.f.Restore(readCloser(bad)); err == nil {
			t.Fatalf("%s: restored", what)
		}
		if !bytes.Equal(snapshotBytes(t, dst.f), want) {
			t.Fatalf("%s: failed restore changed the state", what)
		}
	}
	for i := range b {
		for _, mask := range []byte{0x01, 0x80} {
			bad := slices.Clone(b)
			bad[i] ^= mask
			restoreFails("flipped byte", bad)
		}
	}
	for _, n := range []int{0, 1, 8, 15, 16, len(b) / 2, len(b) - 1} {
		restoreFails("truncated", b[:n])
	}
	restoreFails("extra byte", append(slices.Clone(b), 0))
	if _, err := decodeSnapshot(append(slices.Clone(b[:len(b)-2]), b[len(b)-1], b[len(b)-2])); !errors.Is(err, errSnapshotChecksum) {
		t.Errorf("swapped checksum bytes: %v, want errSnapshotChecksum", err)
	}
	if len(rec.events) != 0 || len(dst.ended) != 0 {
		t.Errorf("failed restores fired %v, ended %v", rec.events, dst.ended)
	}
	checkFSM(t, dst.f)
}

// resum rewrites the trailing checksum so corrupt content gets past it and
// reaches the structural checks.
func resum(b []byte) []byte {
	b = slices.Clone(b)
	if len(b) >= 4 {
		binary.BigEndian.PutUint32(b[len(b)-4:], crc32.Checksum(b[:len(b)-4], castagnoli))
	}
	return b
}

func TestSnapshotStructuralErrors(t *testing.T) {
	h := newTestFSM(t)
	s := h.openSession()
	h.do(s, nil, CreateOp{Path: "/e", Mode: ModeEphemeral})
	b := snapshotBytes(t, h.f)
	if _, err := decodeSnapshot(b); err != nil {
		t.Fatal(err)
	}
	// Layout: magic 8 | version 4 | ...
	withVersion := slices.Clone(b)
	binary.BigEndian.PutUint32(withVersion[8:], snapshotVersion+1)
	snap, _ := h.f.Snapshot()
	snap.(*fsmSnapshot).sessions = nil
	var noSessions bytes.Buffer
	if err := snap.(*fsmSnapshot).writeTo(&noSessions); err != nil {
		t.Fatal(err)
	}
	tests := map[string][]byte{
		"future version":               resum(withVersion),
		"ephemeral of unknown session": noSessions.Bytes(),
		"not a snapshot":               resum([]byte("ZOOSNAQ\x00 and then some")),
		"trailing garbage":             resum(append(slices.Clone(b[:len(b)-4]), 0, 0, 0, 0, 0)),
	}
	for name, bad := range tests {
		if _, err := decodeSnapshot(bad); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
}

func TestRestoreReplacesState(t *testing.T) {
	src := richFSM(t) // sessions 1 and 2
	b := snapshotBytes(t, src.f)

	dst := newTestFSM(t)
	dst.mustCreate("/old", nil)
	dst.mustCreate("/old/child", nil)
	dst.mustCreate("/app", nil) // also in the snapshot, with other content
	dst.mustCreate("/c", nil)   // will carry a child there
	gone := dst.openSession()   // entry 5: not a session in the snapshot
	kept := int64(1)            // entry 1 there is a session, here a create
	dst.openSession()
	dst.openSession()
	if dst.index >= src.index {
		t.Fatalf("the replica (at %d) must be behind the snapshot (at %d)", dst.index, src.index)
	}

	// Watches on this replica see what the skipped entries would have fired.
	data := map[string]*oneShotWatch{}
	for _, p := range []string{"/old", "/app", "/app/e1", "/never"} {
		data[p] = newOneShotWatch(1)
		dst.w.add(tableData, p, data[p])
	}
	child := map[string]*oneShotWatch{}
	for _, p := range []string{"/old", "/c", zookeeperPath} { // child watches need an existing node
		child[p] = newOneShotWatch(1)
		dst.w.add(tableChild, p, child[p])
	}
	persistent := &PersistentWatch{sess: 1, path: "/", ch: make(chan Event, 8)}
	dst.w.add(tableRecursive, "/", persistent)

	if err := dst.f.Restore(readCloser(b)); err != nil {
		t.Fatal(err)
	}
	if dst.node("/old") != nil || dst.node("/old/child") != nil {
		t.Error("nodes of the previous state survived the restore")
	}
	if !bytes.Equal(dst.node("/app").data, []byte("v2")) {
		t.Error("/app not replaced")
	}
	if !bytes.Equal(snapshotBytes(t, dst.f), b) {
		t.Error("restored state differs from the snapshot")
	}
	if got := dst.f.appliedIndex(); got != src.index {
		t.Errorf("applied %d, want the snapshot's %d", got, src.index)
	}
	checkFSM(t, dst.f)

	wantEnded := []endedSession{{id: gone, expired: true}, {id: gone + 1, expired: true}, {id: gone + 2, expired: true}}
	if !slices.Equal(dst.ended, wantEnded) {
		t.Errorf("ended %v, want %v (session %d exists in both)", dst.ended, wantEnded, kept)
	}

	z := int64(src.index)
	one := func(what string, w *oneShotWatch, want *Event) {
		t.Helper()
		evs, closed := drain(w.ch)
		switch {
		case want == nil && (len(evs) != 0 || closed):
			t.Errorf("%s: fired %v", what, evs)
		case want != nil && (!slices.Equal(evs, []Event{*want}) || !closed):
			t.Errorf("%s: got %v closed %v, want %v", what, evs, closed, *want)
		}
	}
	one("data /old", data["/old"], &Event{Type: EventNodeDeleted, Path: "/old", Zxid: z})
	one("data /app", data["/app"], &Event{Type: EventNodeDataChanged, Path: "/app", Zxid: z})
	one("data /app/e1", data["/app/e1"], &Event{Type: EventNodeCreated, Path: "/app/e1", Zxid: z})
	one("data /never", data["/never"], nil)
	one("child /old", child["/old"], &Event{Type: EventNodeDeleted, Path: "/old", Zxid: z})
	one("child /c", child["/c"], &Event{Type: EventNodeChildrenChanged, Path: "/c", Zxid: z})
	one("child /zookeeper", child[zookeeperPath], nil)
	if _, ok := <-persistent.Events(); ok || !errors.Is(persistent.Err(), ErrWatchReset) {
		t.Errorf("persistent watch after restore: Err %v", persistent.Err())
	}
	if n := dst.w.registrations(); n != 2 {
		t.Errorf("%d registrations left, want the two unfired ones", n)
	}
}

// FuzzDecodeSnapshot feeds arbitrary bytes to the snapshot decoder, once as
// they are (the checksum rejects nearly all) and once with a valid checksum so
// the structural decoding is exercised. Nothing may panic, and whatever decodes
// must re-encode to something that decodes to the same bytes again.
func FuzzDecodeSnapshot(f *testing.F) {
	empty := newTestFSM(f)
	f.Add(snapshotBytes(f, empty.f))
	f.Add(snapshotBytes(f, richFSM(f).f))
	f.Add([]byte(snapshotMagic))
	f.Fuzz(func(t *testing.T, b []byte) {
		decodeSnapshot(b) //nolint:errcheck // only must not panic
		st, err := decodeSnapshot(resum(b))
		if err != nil {
			return
		}
		snap := &fsmSnapshot{nodes: st.tree.nodes, applied: st.applied}
		for _, s := range st.sessions {
			snap.sessions = append(snap.sessions, sessionEntry{id: s.id, timeout: s.timeout, password: s.password})
		}
		slices.SortFunc(snap.sessions, func(a, b sessionEntry) int { return compareInt64(a.id, b.id) })
		var b1 bytes.Buffer
		if err := snap.writeTo(&b1); err != nil {
			t.Fatal(err)
		}
		st2, err := decodeSnapshot(b1.Bytes())
		if err != nil {
			t.Fatalf("re-encoded snapshot does not decode: %v", err)
		}
		if st2.tree.nodes.Len() != st.tree.nodes.Len() || len(st2.sessions) != len(st.sessions) || st2.applied != st.applied {
			t.Fatal("re-encoded snapshot decodes to something else")
		}
	})
}
