package zoo

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"testing"

	"github.com/hashicorp/raft"
)

// testTime0 is the leader time the harness stamps on entry 0; entry i gets
// timeAt(i), so every ctime/mtime in a test is predictable.
const testTime0 = int64(1_700_000_000_000)

func timeAt(index uint64) int64 { return testTime0 + int64(index)*1000 }

// testFSM drives an FSM the way raft would, one committed entry at a time, with
// no raft underneath: entry i is zxid i.
type testFSM struct {
	t     testing.TB
	f     *fsm
	w     *watchRegistry
	index uint64
	ended []endedSession
}

func newTestFSM(t testing.TB) *testFSM {
	t.Helper()
	w := newWatchRegistry()
	h := &testFSM{t: t, w: w, f: newFSM(w, slog.New(slog.DiscardHandler))}
	h.f.onSessionsEnded = func(e []endedSession) { h.ended = append(h.ended, e...) }
	return h
}

// applyRaw applies encoded command bytes as the next log entry.
func (h *testFSM) applyRaw(data []byte) *applyResult {
	h.t.Helper()
	h.index++
	out := h.f.ApplyBatch([]*raft.Log{{Index: h.index, Type: raft.LogCommand, Data: data}})
	r, ok := out[0].(*applyResult)
	if !ok {
		h.t.Fatalf("entry %d: ApplyBatch returned %T", h.index, out[0])
	}
	return r
}

// apply applies c as the next log entry, stamping timeAt(index) unless c.time is set.
func (h *testFSM) apply(c *command) *applyResult {
	h.t.Helper()
	if c.time == 0 {
		c.time = timeAt(h.index + 1)
	}
	return h.applyRaw(encodeCommand(c))
}

func opCodeOf(op Op) opCode {
	switch op.(type) {
	case CreateOp:
		return opCreate
	case DeleteOp:
		return opDelete
	case SetDataOp:
		return opSetData
	case setACLOp:
		return opSetACL
	case CheckOp:
		return opCheck
	}
	panic(fmt.Sprintf("no opcode for %T", op))
}

// do applies a single op as session with identities ids; a whole-command error
// (such as an unknown session) comes back as the op's error.
func (h *testFSM) do(session int64, ids []ID, op Op) OpResult {
	h.t.Helper()
	r := h.apply(&command{op: opCodeOf(op), session: session, ids: ids, ops: []Op{op}})
	if r.err != nil {
		return OpResult{Err: r.err}
	}
	if len(r.results) != 1 {
		h.t.Fatalf("entry %d: %d results for one op", h.index, len(r.results))
	}
	return r.results[0]
}

func (h *testFSM) multi(session int64, ids []ID, ops ...Op) *applyResult {
	h.t.Helper()
	return h.apply(&command{op: opMulti, session: session, ids: ids, ops: ops})
}

// mustDo applies op without session or identities and fails the test on error.
func (h *testFSM) mustDo(op Op) OpResult {
	h.t.Helper()
	res := h.do(0, nil, op)
	if res.Err != nil {
		h.t.Fatalf("%T %+v: %v", op, op, res.Err)
	}
	return res
}

func (h *testFSM) mustCreate(path string, data []byte) string {
	h.t.Helper()
	return h.mustDo(CreateOp{Path: path, Data: data}).Path
}

func (h *testFSM) openSession() int64 {
	h.t.Helper()
	r := h.apply(&command{op: opCreateSession, timeout: 4000, password: []byte("0123456789abcdef")})
	if r.err != nil || r.sessionID != int64(h.index) {
		h.t.Fatalf("createSession: id %d, err %v", r.sessionID, r.err)
	}
	return r.sessionID
}

func (h *testFSM) closeSession(id int64) *applyResult {
	h.t.Helper()
	return h.apply(&command{op: opCloseSession, session: id})
}

func (h *testFSM) node(path string) *znode {
	h.f.mu.RLock()
	defer h.f.mu.RUnlock()
	return h.f.tree.get(path)
}

// exists reports whether path is in the tree.
func (h *testFSM) exists(path string) bool { return h.node(path) != nil }

func (h *testFSM) stat(path string) Stat {
	h.t.Helper()
	n := h.node(path)
	if n == nil {
		h.t.Fatalf("%s does not exist", path)
	}
	return n.stat()
}

// replaceNode overwrites a stored node through fn, for states that would take
// billions of operations to reach (counter wrap-around).
func (h *testFSM) replaceNode(path string, fn func(*znode)) {
	h.t.Helper()
	h.f.mu.Lock()
	defer h.f.mu.Unlock()
	n := h.f.tree.get(path)
	if n == nil {
		h.t.Fatalf("%s does not exist", path)
	}
	m := *n
	fn(&m)
	h.f.tree.put(&m)
}

// snapshotBytes persists a snapshot of f into memory.
func snapshotBytes(t testing.TB, f *fsm) []byte {
	t.Helper()
	s, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := s.(*fsmSnapshot).writeTo(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// stateBytes is a snapshot with the applied index zeroed: it changes exactly
// when the tree or the session table does.
func stateBytes(t testing.TB, f *fsm) []byte {
	t.Helper()
	s, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	fs := s.(*fsmSnapshot)
	fs.applied = 0
	var buf bytes.Buffer
	if err := fs.writeTo(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func wantErr(t testing.TB, what string, got, want error) {
	t.Helper()
	if want == nil {
		if got != nil {
			t.Fatalf("%s: unexpected error %v", what, got)
		}
		return
	}
	if !errors.Is(got, want) {
		t.Fatalf("%s: error %v, want %v", what, got, want)
	}
}

func TestFSMSessionLifecycle(t *testing.T) {
	h := newTestFSM(t)
	h.mustCreate("/app", nil)
	h.mustCreate("/other", nil)
	s := h.openSession()
	s2 := h.openSession()

	for _, p := range []string{"/app/e1", "/app/e2", "/other/e3"} {
		res := h.do(s, nil, CreateOp{Path: p, Mode: ModeEphemeral})
		wantErr(t, "create "+p, res.Err, nil)
		if res.Stat.EphemeralOwner != s {
			t.Fatalf("%s: ephemeralOwner %d, want %d", p, res.Stat.EphemeralOwner, s)
		}
	}
	seq := h.do(s, nil, CreateOp{Path: "/app/q-", Mode: ModeEphemeralSequential})
	wantErr(t, "ephemeral sequential", seq.Err, nil)
	keep := h.do(s2, nil, CreateOp{Path: "/app/keep", Mode: ModeEphemeral})
	wantErr(t, "create /app/keep", keep.Err, nil)
	h.mustCreate("/app/plain", nil) // persistent nodes survive the session

	h.f.mu.RLock()
	got := len(h.f.sessions[s].ephemerals)
	h.f.mu.RUnlock()
	if got != 4 {
		t.Fatalf("session has %d ephemerals indexed, want 4", got)
	}
	checkFSM(t, h.f)

	rec := &recWatcher{sess: 99}
	for _, p := range []string{"/app/e1", "/app/e2", "/other/e3", seq.Path} {
		h.w.add(tableData, p, rec)
	}
	h.w.add(tableChild, "/app", rec)
	h.w.add(tableChild, "/other", rec)

	r := h.closeSession(s)
	wantErr(t, "closeSession", r.err, nil)
	zxid := int64(h.index)
	for _, p := range []string{"/app/e1", "/app/e2", "/other/e3", seq.Path} {
		if h.node(p) != nil {
			t.Errorf("%s survived its session", p)
		}
	}
	for _, p := range []string{"/app/keep", "/app/plain"} {
		if h.node(p) == nil {
			t.Errorf("%s was deleted with another session", p)
		}
	}
	if st := h.stat("/app"); st.Pzxid != zxid || st.NumChildren != 2 {
		t.Errorf("/app after close: pzxid %d numChildren %d, want %d and 2", st.Pzxid, st.NumChildren, zxid)
	}
	if st := h.stat("/other"); st.Pzxid != zxid || st.NumChildren != 0 {
		t.Errorf("/other after close: pzxid %d numChildren %d, want %d and 0", st.Pzxid, st.NumChildren, zxid)
	}
	// One zxid for all of it; paths deleted in sorted order, each followed by
	// its parent's child event while the one-shot child watch still stands.
	want := []Event{
		{Type: EventNodeDeleted, Path: "/app/e1", Zxid: zxid},
		{Type: EventNodeChildrenChanged, Path: "/app", Zxid: zxid},
		{Type: EventNodeDeleted, Path: "/app/e2", Zxid: zxid},
		{Type: EventNodeDeleted, Path: seq.Path, Zxid: zxid},
		{Type: EventNodeDeleted, Path: "/other/e3", Zxid: zxid},
		{Type: EventNodeChildrenChanged, Path: "/other", Zxid: zxid},
	}
	if !slices.Equal(rec.events, want) {
		t.Errorf("events on close:\n got %v\nwant %v", rec.events, want)
	}
	if !slices.Equal(h.ended, []endedSession{{id: s}}) {
		t.Errorf("onSessionsEnded got %v, want [{%d false}]", h.ended, s)
	}
	checkFSM(t, h.f)

	// The closed session is gone: its writes and a second close fail, changing nothing.
	before := stateBytes(t, h.f)
	for _, op := range []Op{
		CreateOp{Path: "/app/late", Mode: ModeEphemeral},
		CreateOp{Path: "/app/late"},
		SetDataOp{Path: "/app", Data: []byte("x"), Version: -1},
		DeleteOp{Path: "/app/plain", Version: -1},
		CheckOp{Path: "/app", Version: -1},
	} {
		wantErr(t, fmt.Sprintf("%T by closed session", op), h.do(s, nil, op).Err, ErrSessionExpired)
	}
	r = h.multi(s, nil, CreateOp{Path: "/app/m"})
	wantErr(t, "multi by closed session", r.err, ErrSessionExpired)
	wantErr(t, "second close", h.closeSession(s).err, ErrSessionExpired)
	wantErr(t, "close of a never-created session", h.closeSession(12345).err, ErrSessionExpired)
	if !bytes.Equal(before, stateBytes(t, h.f)) {
		t.Error("state changed by writes of an unknown session")
	}

	// An expiry is reported as such.
	h.ended = nil
	r = h.apply(&command{op: opCloseSession, session: s2, expired: true})
	wantErr(t, "expire", r.err, nil)
	if !slices.Equal(h.ended, []endedSession{{id: s2, expired: true}}) {
		t.Errorf("onSessionsEnded got %v, want expired %d", h.ended, s2)
	}
	if h.node("/app/keep") != nil {
		t.Error("ephemeral of expired session survived")
	}
	checkFSM(t, h.f)
}

func TestFSMEphemeralNeedsLiveSession(t *testing.T) {
	h := newTestFSM(t)
	before := stateBytes(t, h.f)
	// No session at all: the node could never be reaped, so it is refused.
	wantErr(t, "ephemeral without session", h.do(0, nil, CreateOp{Path: "/e", Mode: ModeEphemeral}).Err, ErrSessionExpired)
	r := h.multi(0, nil, CreateOp{Path: "/p"}, CreateOp{Path: "/p/e", Mode: ModeEphemeralSequential})
	wantErr(t, "multi ephemeral without session", r.results[1].Err, ErrSessionExpired)
	if !bytes.Equal(before, stateBytes(t, h.f)) {
		t.Error("state changed")
	}
}

func TestFSMApplyBatch(t *testing.T) {
	h := newTestFSM(t)
	logs := []*raft.Log{
		{Index: 1, Type: raft.LogCommand, Data: encodeCommand(&command{op: opCreate, time: timeAt(1), ops: []Op{CreateOp{Path: "/a"}}})},
		{Index: 2, Type: raft.LogNoop},
		{Index: 3, Type: raft.LogCommand, Data: encodeCommand(&command{op: opCreate, time: timeAt(3), ops: []Op{CreateOp{Path: "/a/b"}}})},
	}
	out := h.f.ApplyBatch(logs)
	if len(out) != 3 {
		t.Fatalf("%d results for 3 entries", len(out))
	}
	if r := out[0].(*applyResult); r.err != nil || r.results[0].Err != nil || r.index != 1 {
		t.Errorf("entry 1: %+v", r)
	}
	if out[1] != nil {
		t.Errorf("noop entry result %v, want nil", out[1])
	}
	if st := h.stat("/a/b"); st.Czxid != 3 || st.Ctime != timeAt(3) {
		t.Errorf("/a/b: czxid %d ctime %d", st.Czxid, st.Ctime)
	}
	if got := h.f.appliedIndex(); got != 3 {
		t.Errorf("applied %d, want 3", got)
	}
	// Already-reached index: waitApplied returns at once.
	if err := h.f.waitApplied(t.Context(), 3); err != nil {
		t.Error(err)
	}
}

// An entry that fails its checksum or does not decode stops the FSM: it is
// neither applied nor skipped, nothing after it is applied, the applied index
// stays at the last good entry, no snapshot is taken, and the replica is told
// once.
func TestFSMStopsAtACorruptEntry(t *testing.T) {
	good := func(i uint64, path string) *raft.Log {
		return &raft.Log{Index: i, Type: raft.LogCommand, Data: encodeCommand(&command{op: opCreate, time: timeAt(i), ops: []Op{CreateOp{Path: path}}})}
	}
	flipped := good(2, "/b")
	flipped.Data[len(flipped.Data)/2] ^= 0x01
	for _, tc := range []struct {
		name    string
		corrupt *raft.Log
		want    error
	}{
		{"flipped byte", flipped, errChecksum},
		{"undecodable", &raft.Log{Index: 2, Type: raft.LogCommand, Data: []byte{commandVersion, 0xee}}, errCorrupt},
		{"unknown version", &raft.Log{Index: 2, Type: raft.LogCommand, Data: []byte{9, 1, 2, 3, 4, 5}}, errCorrupt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newTestFSM(t)
			var told []*CorruptionError
			h.f.onBroken = func(c *CorruptionError) { told = append(told, c) }
			h.f.store = "dir/raft.db"
			out := h.f.ApplyBatch([]*raft.Log{good(1, "/a"), tc.corrupt, good(3, "/c")})
			var ce *CorruptionError
			if err := out[1].(*applyResult).err; !errors.As(err, &ce) || ce.Index != 2 || ce.Store != "dir/raft.db" ||
				!errors.Is(err, tc.want) || !errors.Is(err, ErrConnectionLoss) {
				t.Fatalf("corrupt entry: %v", err)
			}
			if err := out[2].(*applyResult).err; !errors.Is(err, ce) {
				t.Fatalf("entry after it: %v, want the same CorruptionError", err)
			}
			if h.exists("/c") || !h.exists("/a") {
				t.Fatal("an entry after the corrupt one was applied, or one before it was not")
			}
			if got := h.f.appliedIndex(); got != 1 {
				t.Fatalf("applied %d, want 1 (the last good entry)", got)
			}
			out = h.f.ApplyBatch([]*raft.Log{good(4, "/d")})
			if err := out[0].(*applyResult).err; !errors.Is(err, ce) || h.exists("/d") {
				t.Fatalf("a later batch: %v", err)
			}
			if len(told) != 1 || told[0] != ce {
				t.Fatalf("onBroken called %d times", len(told))
			}
			if _, err := h.f.Snapshot(); !errors.Is(err, ce) {
				t.Fatalf("Snapshot of a stopped FSM: %v", err)
			}
			if err := h.f.waitApplied(t.Context(), 2); !errors.Is(err, ce) {
				t.Fatalf("waitApplied past the corrupt entry: %v", err)
			}
		})
	}
}

func TestMulti(t *testing.T) {
	h := newTestFSM(t)
	h.mustCreate("/q", nil)
	s := h.openSession()

	// Later ops see earlier ones: a parent and its children in one transaction,
	// one zxid for all.
	r := h.multi(s, nil,
		CreateOp{Path: "/q/p", Data: []byte("v")},
		CreateOp{Path: "/q/p/c-", Mode: ModePersistentSequential},
		CreateOp{Path: "/q/p/c-", Mode: ModeEphemeralSequential},
		SetDataOp{Path: "/q/p", Data: []byte("w"), Version: 0},
		CheckOp{Path: "/q/p", Version: 1},
		DeleteOp{Path: "/q/p/c-0000000000", Version: 0},
	)
	wantErr(t, "multi", r.err, nil)
	z := int64(h.index)
	wantPaths := []string{"/q/p", "/q/p/c-0000000000", "/q/p/c-0000000001", "/q/p", "/q/p", ""}
	for i, res := range r.results {
		wantErr(t, fmt.Sprintf("op %d", i), res.Err, nil)
		if res.Path != wantPaths[i] {
			t.Errorf("op %d path %q, want %q", i, res.Path, wantPaths[i])
		}
	}
	if st := r.results[0].Stat; st.Czxid != z || st.Version != 0 {
		t.Errorf("create result stat %+v: the state right after that op", st)
	}
	if st := r.results[3].Stat; st.Version != 1 || st.Mzxid != z || st.NumChildren != 2 {
		t.Errorf("setData result stat %+v", st)
	}
	want := Stat{Czxid: z, Mzxid: z, Pzxid: z, Ctime: timeAt(h.index), Mtime: timeAt(h.index),
		Version: 1, Cversion: 3, DataLength: 1, NumChildren: 1}
	if st := h.stat("/q/p"); st != want {
		t.Errorf("/q/p\n got %+v\nwant %+v", st, want)
	}
	if st := h.stat("/q/p/c-0000000001"); st.Czxid != z || st.EphemeralOwner != s {
		t.Errorf("ephemeral child %+v", st)
	}
	checkFSM(t, h.f)

	// The empty transaction is a successful no-op.
	before := stateBytes(t, h.f)
	if r := h.multi(0, nil); r.err != nil || len(r.results) != 0 {
		t.Errorf("empty multi: %+v", r)
	}
	if !bytes.Equal(before, stateBytes(t, h.f)) {
		t.Error("empty multi changed the state")
	}
}

func TestMultiFailure(t *testing.T) {
	type tc struct {
		name   string
		ops    []Op
		failAt int
		want   error
	}
	tests := []tc{
		{"first op", []Op{CreateOp{Path: "/f/x"}, CreateOp{Path: "/f/y"}}, 0, ErrNodeExists},
		{"middle op", []Op{
			CreateOp{Path: "/f/n1"},
			CreateOp{Path: "/f/s-", Mode: ModePersistentSequential},
			SetDataOp{Path: "/f/missing", Version: -1},
			DeleteOp{Path: "/f/x", Version: -1},
		}, 2, ErrNoNode},
		{"last op", []Op{
			DeleteOp{Path: "/f/x", Version: -1},
			CreateOp{Path: "/f/x", Data: []byte("again")},
			SetDataOp{Path: "/f", Data: []byte("d"), Version: -1},
			CheckOp{Path: "/f", Version: 0},
		}, 3, ErrBadVersion},
		{"sees own deletes", []Op{DeleteOp{Path: "/f/x", Version: -1}, CheckOp{Path: "/f/x", Version: -1}}, 1, ErrNoNode},
		{"sees own creates", []Op{CreateOp{Path: "/f/n"}, CreateOp{Path: "/f/n"}}, 1, ErrNodeExists},
		{"sees own versions", []Op{SetDataOp{Path: "/f/x", Version: 0}, SetDataOp{Path: "/f/x", Version: 0}}, 1, ErrBadVersion},
		{"not empty after own create", []Op{CreateOp{Path: "/f/x/c"}, DeleteOp{Path: "/f/x", Version: -1}}, 1, ErrNotEmpty},
		{"ephemeral then child", []Op{
			CreateOp{Path: "/f/e", Mode: ModeEphemeral},
			CreateOp{Path: "/f/e/c"},
		}, 1, ErrNoChildrenForEphemerals},
		{"ephemeral delete then fail", []Op{
			DeleteOp{Path: "/f/eph", Version: -1},
			CreateOp{Path: "/f/e2", Mode: ModeEphemeral},
			CreateOp{Path: "/nope/x"},
		}, 2, ErrNoNode},
		{"no auth", []Op{CreateOp{Path: "/f/n"}, CreateOp{Path: "/ro/n"}}, 1, ErrNoAuth},
		{"bad arguments", []Op{CreateOp{Path: "/f/n"}, CreateOp{Path: "/f/n/"}, CreateOp{Path: "/f/m"}}, 1, ErrBadArguments},
		{"setACL then fail", []Op{setACLOp{path: "/f", acl: ReadACL, version: -1}, CreateOp{Path: "/f/n"}}, 1, ErrNoAuth},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newTestFSM(t)
			s := h.openSession()
			h.mustCreate("/f", nil)
			h.mustCreate("/f/x", nil)
			wantErr(t, "ephemeral", h.do(s, nil, CreateOp{Path: "/f/eph", Mode: ModeEphemeral}).Err, nil)
			h.mustDo(CreateOp{Path: "/ro", ACL: ReadACL})
			rec := &recWatcher{sess: 1}
			h.w.add(tableRecursive, "/", rec)
			before := stateBytes(t, h.f)
			r := h.multi(s, nil, tt.ops...)
			wantErr(t, "multi", r.err, nil)
			if len(r.results) != len(tt.ops) {
				t.Fatalf("%d results for %d ops", len(r.results), len(tt.ops))
			}
			for i, res := range r.results {
				var want error
				switch {
				case i < tt.failAt:
					want = ErrRolledBack
				case i == tt.failAt:
					want = tt.want
				default:
					want = ErrRuntimeInconsistency
				}
				if !errors.Is(res.Err, want) || res.Stat != nil {
					t.Errorf("op %d: %v (stat %v), want %v", i, res.Err, res.Stat, want)
				}
			}
			if c := CodeOf(r.results[0].Err); tt.failAt > 0 && c != CodeOK {
				t.Errorf("rolled-back op code %d, want 0", c)
			}
			if !bytes.Equal(before, stateBytes(t, h.f)) {
				t.Error("failed multi changed the state")
			}
			if len(rec.events) != 0 {
				t.Errorf("failed multi fired %v", rec.events)
			}
			checkFSM(t, h.f)
			// Sequence counters were rolled back too.
			if got := h.mustDo(CreateOp{Path: "/f/s-", Mode: ModePersistentSequential}).Path; got != "/f/s-0000000002" {
				t.Errorf("next sequential %s, want /f/s-0000000002", got)
			}
		})
	}
}
